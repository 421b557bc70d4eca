"""IM1 and IM2 (Van Looveren & Klaise, 2021): does a counterfactual look like its target class's data?"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from ..checks import as_labels, check_images, check_model, check_number
from ..forward import forward_in_batches

Autoencoder = Callable[[torch.Tensor], torch.Tensor]

def _reconstruct(name: str, autoencoder: Autoencoder, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    check_model(name, autoencoder)
    reconstruction = forward_in_batches(autoencoder, images, batch_size)
    if reconstruction.shape != images.shape:
        raise ValueError(f"{name} must return images of shape {tuple(images.shape)}, got {tuple(reconstruction.shape)}")
    return reconstruction.to(images.dtype)


def _reconstruct_by_class(
    role: str,
    autoencoders: Mapping[int, Autoencoder],
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
) -> torch.Tensor:
    """Each image reconstructed by the autoencoder of its class (one call per class present, not per image)."""
    if not isinstance(autoencoders, Mapping):
        kind = type(autoencoders).__name__
        raise TypeError(f"autoencoders must be a mapping from class label to autoencoder, got {kind}")
    missing = sorted(set(labels.tolist()) - set(autoencoders))
    if missing:
        raise ValueError(f"no autoencoder for {role} class(es) {missing}; autoencoders has {sorted(autoencoders)}")
    reconstruction = torch.empty_like(images)
    for label in labels.unique().tolist():
        chosen = labels == label
        reconstruction[chosen] = _reconstruct(f"autoencoders[{label}]", autoencoders[label], images[chosen], batch_size)
    return reconstruction


def _squared_norm(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(1).square().sum(dim=1)


@torch.no_grad()
def im1(
    autoencoders: Mapping[int, Autoencoder],
    counterfactual: torch.Tensor,
    target: int | torch.Tensor,
    source: int | torch.Tensor,
    eps: float = 1e-8,
    batch_size: int = 256,
) -> torch.Tensor:
    """IM1 = ||x' - AE_t(x')||^2 / (||x' - AE_s(x')||^2 + eps), per sample (lower is better).

    Below 1 when the target class's autoencoder reconstructs the counterfactual better than the source class's,
    i.e. x' looks like the target class's data.

    Args:
        autoencoders: class label -> autoencoder (images -> reconstructions of the same shape) trained on that class
            only; must cover every label in ``target`` and ``source``.
        counterfactual: (N, C, H, W) counterfactuals x'.
        target: (N,) target labels or one int.
        source: (N,) source labels or one int.
        eps: added to the denominator, >= 0.
        batch_size: images per forward pass.

    Returns:
        (N,) IM1 values; average them for the usual dataset-level score.

    Raises:
        TypeError / ValueError: bad images, labels or eps; a class without an autoencoder; wrong output shape.
    """
    check_images(counterfactual, "counterfactual", unit_range=False)
    eps = check_number("eps", eps, 0.0)
    n, device = counterfactual.shape[0], counterfactual.device
    target = as_labels("target", target, n, device)
    source = as_labels("source", source, n, device)
    by_target = _reconstruct_by_class("target", autoencoders, counterfactual, target, batch_size)
    by_source = _reconstruct_by_class("source", autoencoders, counterfactual, source, batch_size)
    return _squared_norm(counterfactual - by_target) / (_squared_norm(counterfactual - by_source) + eps)


@torch.no_grad()
def im2(
    autoencoders: Mapping[int, Autoencoder],
    autoencoder: Autoencoder,
    counterfactual: torch.Tensor,
    target: int | torch.Tensor,
    eps: float = 1e-8,
    batch_size: int = 256,
) -> torch.Tensor:
    """IM2 = ||AE_t(x') - AE(x')||^2 / (||x'||_1 + eps), per sample (lower is better).

    Small when the target class's autoencoder and one trained on all classes agree on x', i.e. x' is as
    plausible to the target class as to the data overall.

    Args:
        autoencoders: class label -> class-specific autoencoder; must cover every label in ``target``.
        autoencoder: the autoencoder trained on all classes.
        counterfactual: (N, C, H, W) counterfactuals x'.
        target: (N,) target labels or one int.
        eps: added to the denominator, >= 0.
        batch_size: images per forward pass.

    Returns:
        (N,) IM2 values; average them for the usual dataset-level score.

    Raises:
        TypeError / ValueError: bad images, labels or eps; a class without an autoencoder; wrong output shape.
    """
    check_images(counterfactual, "counterfactual", unit_range=False)
    eps = check_number("eps", eps, 0.0)
    target = as_labels("target", target, counterfactual.shape[0], counterfactual.device)
    by_target = _reconstruct_by_class("target", autoencoders, counterfactual, target, batch_size)
    by_all = _reconstruct("autoencoder", autoencoder, counterfactual, batch_size)
    return _squared_norm(by_target - by_all) / (counterfactual.flatten(1).abs().sum(dim=1) + eps)
