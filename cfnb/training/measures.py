"""Measurements the recipes record on their model cards: accuracy per attribute and per (label, group)."""
from __future__ import annotations

import torch
from torch import nn

from ..forward import forward_in_batches


@torch.no_grad()
def per_attribute_accuracy(model: nn.Module, images: torch.Tensor, attributes: torch.Tensor,
                           names: list[str]) -> dict[str, float]:
    """Share of images whose thresholded logit (> 0) matches each attribute."""
    logits = forward_in_batches(model, images, 500)
    correct = ((logits > 0).float() == attributes).float().mean(0)
    return {name: round(value.item(), 4) for name, value in zip(names, correct)}


@torch.no_grad()
def group_accuracies(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     groups: torch.Tensor) -> dict[str, float]:
    """Accuracy per (label, group) cell and the worst of them."""
    predictions = forward_in_batches(model, images, 500).argmax(1)
    out: dict[str, float] = {}
    for label in labels.unique().tolist():
        for group in groups.unique().tolist():
            cell = (labels == label) & (groups == group)
            if cell.any():
                out[f"label{label}_group{group}"] = round((predictions[cell] == labels[cell]).float().mean().item(), 4)
    out["worst_group"] = min(out.values())
    return out
