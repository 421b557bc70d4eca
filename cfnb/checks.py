"""What ``cfnb.metrics`` does at the door: input checks, and running models on image batches without gradients.

Shared by ``metrics``, ``metrics_fid`` and ``metrics_lpips`` so every metric rejects bad input with the same messages.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from .modes import eval_mode


def check_images(name: str, images: Any) -> None:
    """Raise unless ``images`` is a finite floating-point (N, C, H, W) tensor with N >= 1.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong rank, empty batch, NaN or infinite values.
    """
    if not torch.is_tensor(images):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0)")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} contains NaN or infinite values")


def check_pair(original: Any, counterfactual: Any) -> None:
    """Raise unless ``original`` and ``counterfactual`` are valid image batches of one shape on one device."""
    check_images("original", original)
    check_images("counterfactual", counterfactual)
    if original.shape != counterfactual.shape:
        raise ValueError(
            f"original and counterfactual must have the same shape, got {tuple(original.shape)} and "
            f"{tuple(counterfactual.shape)}"
        )
    if original.device != counterfactual.device:
        raise ValueError(f"original is on {original.device} but counterfactual is on {counterfactual.device}")


def check_positive_int(name: str, value: Any) -> None:
    """Raise unless ``value`` is an ``int`` (not a bool) greater than zero."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def check_number(name: str, value: Any, low: float, high: float = math.inf, *, include_low: bool = True) -> float:
    """``value`` as a float, after checking it is a real number in [low, high] ((low, high] if not ``include_low``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    above = value >= low if include_low else value > low
    if not (above and value <= high):  # also false for NaN
        bracket = "[" if include_low else "("
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")
    return value


def as_labels(name: str, labels: Any, n: int, device: torch.device, num_classes: int | None = None) -> torch.Tensor:
    """Class labels as an (n,) long tensor on ``device``; an ``int`` is repeated n times.

    Raises:
        TypeError: not an int or an integer tensor.
        ValueError: wrong shape, or a label outside [0, num_classes).
    """
    if isinstance(labels, bool):
        raise TypeError(f"{name} must be an int or an integer tensor of shape (N,), got bool")
    if isinstance(labels, int):
        labels = torch.full((n,), labels, dtype=torch.long, device=device)
    elif torch.is_tensor(labels):
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
        if labels.ndim == 0:
            labels = labels.expand(n)
        if labels.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
        labels = labels.to(device=device, dtype=torch.long)
    else:
        raise TypeError(f"{name} must be an int or an integer tensor of shape (N,), got {type(labels).__name__}")
    if bool((labels < 0).any()) or (num_classes is not None and bool((labels >= num_classes).any())):
        upper = f"{num_classes - 1}" if num_classes is not None else "..."
        raise ValueError(f"{name} holds labels outside [0, {upper}]: {sorted(set(labels.tolist()))}")
    return labels


def check_model(name: str, model: Any) -> None:
    """Raise ``TypeError`` unless ``model`` is callable."""
    if not callable(model):
        raise TypeError(f"{name} must be a callable model (e.g. an nn.Module), got {type(model).__name__}")


def check_logits(name: str, logits: Any, n: int) -> torch.Tensor:
    """Return ``logits`` after checking it is a finite (n, K) floating tensor (what a classifier returns)."""
    if not torch.is_tensor(logits) or logits.ndim != 2 or logits.shape[0] != n:
        shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        raise ValueError(f"{name} must return logits of shape ({n}, K), got {shape}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must return floating-point logits, got dtype {logits.dtype}")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{name} returned NaN or infinite logits")
    return logits


def _placement(model: Callable[..., Any], images: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype the model computes in (its first floating parameter or buffer), else the images'."""
    if isinstance(model, nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
    return images.device, images.dtype


def apply_in_batches(
    model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """``model(images)`` in chunks of ``batch_size``, in eval mode and without gradients.

    Each chunk is moved to the model's device and dtype; the concatenated output comes back on the images' device.
    """
    check_positive_int("batch_size", batch_size)
    device, dtype = _placement(model, images)
    with torch.no_grad(), eval_mode([model]):
        outputs = [model(chunk.to(device=device, dtype=dtype)) for chunk in images.split(batch_size)]
    for output in outputs:
        if not torch.is_tensor(output):
            raise TypeError(f"the model must return a tensor, got {type(output).__name__}")
    return torch.cat(outputs).to(images.device)
