"""Checks at the door of ``cfnb.explain``: every bad input gets an error that names the problem and the fix."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def check_images(images: torch.Tensor, expected_channels: int | None = None) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``images`` is a float (N, C, H, W) tensor in [0, 1] without NaN/Inf."""
    if not torch.is_tensor(images):
        raise TypeError(f"images must be a torch.Tensor of shape (N, C, H, W), got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(
            f"images must be floating point in [0, 1], got dtype {images.dtype}; convert with images.float() / 255"
        )
    if images.ndim != 4:
        hint = " (add a batch dimension with images.unsqueeze(0))" if images.ndim == 3 else ""
        raise ValueError(f"images must have 4 dimensions (N, C, H, W), got shape {tuple(images.shape)}{hint}")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch (N = 0); pass at least one image")
    if not torch.isfinite(images).all():
        bad = (~torch.isfinite(images)).flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"images contain NaN or Inf (images {bad[:5]}); clean them before explaining")
    low, high = images.min().item(), images.max().item()
    if low < 0 or high > 1:
        raise ValueError(
            f"images must lie in [0, 1], got values in [{low:.3g}, {high:.3g}]; rescale (e.g. x / 255 or undo "
            "normalisation) rather than clipping"
        )
    if expected_channels is not None and images.shape[1] != expected_channels:
        raise ValueError(
            f"the classifier expects {expected_channels} channel(s), images have {images.shape[1]} "
            f"(shape {tuple(images.shape)})"
        )


def expected_channels(classifier: nn.Module) -> int | None:
    """Input channels a classifier declares (``in_channels`` attribute or its first conv layer), if any."""
    declared = getattr(classifier, "in_channels", None)
    if isinstance(declared, int):
        return declared
    for module in classifier.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return None


def model_device(model: nn.Module) -> torch.device | None:
    """Device of a model's first parameter or buffer (None for a parameter-free model)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return None


def resolve_targets(
    target: int | str | Sequence[int] | torch.Tensor, n: int, num_classes: int, class_names: Sequence[str]
) -> torch.Tensor:
    """Turn an int, a class name or N ints into an (N,) long tensor, checking every class exists."""
    if isinstance(target, str):
        if target not in class_names:
            raise ValueError(f"unknown class name {target!r}; known: {', '.join(map(str, class_names))}")
        target = list(class_names).index(target)
    if isinstance(target, (int,)) and not isinstance(target, bool):
        targets = torch.full((n,), int(target), dtype=torch.long)
    else:
        targets = torch.as_tensor(target)
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise TypeError(f"target must be integer class indices, got dtype {targets.dtype}")
        targets = targets.long().flatten()
        if targets.numel() == 1:
            targets = targets.expand(n).clone()
        if targets.numel() != n:
            raise ValueError(f"target has {targets.numel()} entries for {n} images; give one int or one per image")
    bad = targets[(targets < 0) | (targets >= num_classes)]
    if bad.numel():
        raise ValueError(f"target class {bad[0].item()} is out of range: the classifier has {num_classes} classes (0..{num_classes - 1})")
    return targets


def require(model: object, attributes: Sequence[str], role: str, method: str) -> None:
    """Raise ``TypeError`` if ``model`` lacks any of ``attributes`` (callables a method needs)."""
    if model is None:
        raise TypeError(f"method={method!r} needs a {role}; pass {role}=...")
    missing = [a for a in attributes if not callable(getattr(model, a, None))]
    if missing:
        raise TypeError(
            f"method={method!r} needs a {role} with {', '.join(a + '()' for a in attributes)}; "
            f"{type(model).__name__} lacks {', '.join(missing)}"
        )
