"""Checks at the door, in one place: images, labels and targets, class names, numbers, models and devices.

Every entry point (``cfnb.explain``, the metrics, the audit, the data sets, the panels) validates its input with
these functions, so the same mistake gets the same message everywhere: what is wrong, and how to fix it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


# --- images ----------------------------------------------------------------------------------------------------------
def check_images(images: Any, name: str = "images", *, channels: int | Sequence[int] | None = None,
                 unit_range: bool = True, finite: bool = True) -> torch.Tensor:
    """Raise unless ``images`` is a floating-point (N, C, H, W) tensor with N >= 1; return it.

    Args:
        images: the tensor to check.
        name: what the caller calls it, for the messages.
        channels: the channel count the consumer expects (one int, or the allowed counts).
        unit_range: also require every value in [0, 1] (images, not arbitrary tensors).
        finite: also refuse NaN and infinite values.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong rank, empty batch, NaN/Inf, values outside [0, 1], wrong channel count.
    """
    if not torch.is_tensor(images):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {images.dtype}; convert with "
                        f"{name}.float() / 255")
    if images.ndim != 4:
        hint = f" (add a batch dimension with {name}.unsqueeze(0))" if images.ndim == 3 else ""
        raise ValueError(f"{name} must have 4 dimensions (N, C, H, W), got shape {tuple(images.shape)}{hint}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0); pass at least one image")
    if finite and not bool(torch.isfinite(images).all()):
        bad = (~torch.isfinite(images)).flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"{name} contain NaN or infinite values (images {bad[:5]}); clean them first")
    if unit_range:
        low, high = images.min().item(), images.max().item()
        if low < 0 or high > 1:
            raise ValueError(f"{name} must lie in [0, 1], got values in [{low:.3g}, {high:.3g}]; rescale (e.g. x / 255 "
                             "or undo normalisation) rather than clipping")
    if channels is not None:
        allowed = (channels,) if isinstance(channels, int) else tuple(channels)
        if images.shape[1] not in allowed:
            wanted = " or ".join(str(c) for c in allowed)
            raise ValueError(f"expected {wanted} channel(s), {name} have {images.shape[1]} "
                             f"(shape {tuple(images.shape)})")
    return images


def check_pair(original: Any, counterfactual: Any) -> None:
    """Raise unless ``original`` and ``counterfactual`` are finite image batches of one shape on one device."""
    check_images(original, "original", unit_range=False)
    check_images(counterfactual, "counterfactual", unit_range=False)
    if original.shape != counterfactual.shape:
        raise ValueError(
            f"original and counterfactual must have the same shape, got {tuple(original.shape)} and "
            f"{tuple(counterfactual.shape)}"
        )
    if original.device != counterfactual.device:
        raise ValueError(f"original is on {original.device} but counterfactual is on {counterfactual.device}")


def expected_channels(classifier: nn.Module) -> int | None:
    """Input channels a classifier declares (``in_channels`` attribute or its first conv layer), if any."""
    declared = getattr(classifier, "in_channels", None)
    if isinstance(declared, int):
        return declared
    for module in classifier.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return None


def check_classifier_images(classifier: nn.Module, images: Any, name: str = "images") -> torch.Tensor:
    """``check_images`` with the channel count ``classifier`` declares, and a message that names the classifier."""
    check_images(images, name)
    wanted = expected_channels(classifier)
    if wanted is not None and images.shape[1] != wanted:
        raise ValueError(f"the classifier expects {wanted} channel(s), {name} have {images.shape[1]} "
                         f"(shape {tuple(images.shape)})")
    return images


# --- numbers ---------------------------------------------------------------------------------------------------------
def check_positive_int(name: str, value: Any) -> int:
    """``value`` after checking it is an ``int`` (not a bool) greater than zero."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


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


# --- labels, targets and class names ----------------------------------------------------------------------------------
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


def class_index(target: int | str, class_names: Sequence[str]) -> int:
    """One target given as a class index or a class name, as an index checked against ``class_names``.

    Raises:
        ValueError: an unknown name, or an index outside the classes.
        TypeError: neither an int nor a str.
    """
    if isinstance(target, str):
        if target not in class_names:
            raise ValueError(f"unknown class name {target!r}; known: {', '.join(map(str, class_names))}")
        return list(class_names).index(target)
    if isinstance(target, bool) or not isinstance(target, int):
        raise TypeError(f"target must be a class index or name, got {type(target).__name__}")
    if not 0 <= target < len(class_names):
        raise ValueError(f"target class {target} is out of range: the classifier has {len(class_names)} classes "
                         f"(0..{len(class_names) - 1})")
    return target


def resolve_targets(target: int | str | Sequence[int] | torch.Tensor, n: int,
                    class_names: Sequence[str]) -> torch.Tensor:
    """Turn a class index, a class name or N indices into an (N,) long tensor, checking every class exists."""
    if isinstance(target, (int, str)) and not isinstance(target, bool):
        return torch.full((n,), class_index(target, class_names), dtype=torch.long)
    targets = torch.as_tensor(target)
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise TypeError(f"target must be integer class indices, got dtype {targets.dtype}")
    targets = targets.long().flatten()
    if targets.numel() == 1:
        targets = targets.expand(n).clone()
    if targets.numel() != n:
        raise ValueError(f"target has {targets.numel()} entries for {n} images; give one int or one per image")
    bad = targets[(targets < 0) | (targets >= len(class_names))]
    if bad.numel():
        class_index(int(bad[0]), class_names)  # raises with the out-of-range message
    return targets


def class_names_of(classifier: nn.Module, num_classes: int, given: Sequence[str] | None = None) -> list[str]:
    """The classifier's K class names: ``given``, else ``classifier.class_names``, else the indices as text.

    Raises:
        ValueError: the names do not match the classifier's number of outputs.
    """
    names = list(given) if given is not None else list(getattr(classifier, "class_names", None) or [])
    if not names:
        names = [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} names but the classifier has {num_classes} outputs; give one "
                         "name per output")
    return [str(name) for name in names]


# --- models ----------------------------------------------------------------------------------------------------------
def check_model(name: str, model: Any) -> None:
    """Raise ``TypeError`` unless ``model`` is callable."""
    if not callable(model):
        raise TypeError(f"{name} must be a callable model (e.g. an nn.Module), got {type(model).__name__}")


def check_classifier(classifier: Any) -> nn.Module:
    """Raise ``TypeError`` unless ``classifier`` is an ``nn.Module`` (returning logits); return it."""
    if not isinstance(classifier, nn.Module):
        raise TypeError(f"classifier must be a torch.nn.Module returning logits, got {type(classifier).__name__}")
    return classifier


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


def require_callables(model: object, attributes: Sequence[str], role: str, method: str) -> None:
    """Raise ``TypeError`` if ``model`` is missing or lacks any of ``attributes`` (callables a method needs)."""
    if model is None:
        raise TypeError(f"method={method!r} needs a {role}; pass {role}=...")
    missing = [a for a in attributes if not callable(getattr(model, a, None))]
    if missing:
        raise TypeError(
            f"method={method!r} needs a {role} with {', '.join(a + '()' for a in attributes)}; "
            f"{type(model).__name__} lacks {', '.join(missing)}"
        )


# --- devices and dtypes ----------------------------------------------------------------------------------------------
def model_device(model: Any) -> torch.device | None:
    """Device of a model's first parameter or buffer (None for a parameter-free model or a plain function)."""
    if not isinstance(model, nn.Module):
        return None
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def model_dtype(model: Any) -> torch.dtype | None:
    """Floating dtype of a model's first floating parameter or buffer (None when it has none)."""
    if not isinstance(model, nn.Module):
        return None
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def resolve_device(device: str | torch.device | None, classifier: Any,
                   fallback: torch.device | None = None) -> torch.device:
    """cfnb's one device rule: an explicit ``device``, else the classifier's device, else ``fallback``, else the CPU."""
    if device is not None:
        return torch.device(device)
    return model_device(classifier) or fallback or torch.device("cpu")
