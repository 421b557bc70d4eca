"""Fréchet distance between Gaussian fits of two feature sets, and FID over a named (domain) network's features.

On MNIST-like data the Inception network of the original FID says little, so cfnb computes FID over a domain
network's features and always reports which network (``FIDResult.network``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..checks import check_images, check_model
from ..forward import forward_in_batches

__all__ = ["FIDResult", "frechet_distance", "frechet_from_statistics", "fid", "domain_features", "PooledFeatures",
           "PenultimateFeatures"]


@dataclass(frozen=True)
class FIDResult:
    """A Fréchet Inception-style distance and the network whose features it was computed on.

    Attributes:
        value: the Fréchet distance (>= 0; lower means the two image sets look more alike to ``network``).
        network: name of the feature network, e.g. ``"GAPClassifier.features+GAP"``.
    """

    value: float
    network: str

    def __float__(self) -> float:
        return self.value


def _check_features(name: str, features: Any) -> torch.Tensor:
    if not torch.is_tensor(features):
        raise TypeError(f"{name} must be a torch.Tensor of shape (M, D), got {type(features).__name__}")
    if features.ndim != 2:
        raise ValueError(f"{name} must have shape (M, D), got shape {tuple(features.shape)}")
    if features.is_complex() or features.dtype == torch.bool:
        raise TypeError(f"{name} must be a real tensor, got dtype {features.dtype}")
    if features.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 rows to estimate a covariance, got {features.shape[0]}")
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return features.detach().to(device="cpu", dtype=torch.float64)


def _mean_and_covariance(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of the rows of a float64 (M, D) tensor."""
    mean = features.mean(dim=0)
    centred = features - mean
    return mean, centred.T @ centred / (features.shape[0] - 1)


def _psd_square_root(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues clipped)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def _trace_sqrt_product(cov_a: torch.Tensor, cov_b: torch.Tensor) -> torch.Tensor:
    """tr((cov_a cov_b)^(1/2)), via the symmetric matrix cov_a^(1/2) cov_b cov_a^(1/2), which has the same eigenvalues.

    Working with a symmetric matrix keeps every eigenvalue real, so no imaginary parts arise (``scipy.linalg.sqrtm``
    of the non-symmetric product can return small imaginary components that must otherwise be discarded).
    """
    root_a = _psd_square_root(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = (middle + middle.T) / 2
    return torch.linalg.eigvalsh(middle).clamp_min(0).sqrt().sum()


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    ``d = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))`` with unbiased covariances S, computed in
    float64 on the CPU through eigen-decompositions of symmetric matrices.

    Args:
        features_a: (M_a, D) features of the first set, M_a >= 2.
        features_b: (M_b, D) features of the second set, M_b >= 2.

    Returns:
        The distance, a float >= 0 (rounding below zero is clipped).

    Raises:
        TypeError: not real tensors.
        ValueError: wrong rank, different feature sizes, fewer than 2 rows, NaN or infinite values.
    """
    a = _check_features("features_a", features_a)
    b = _check_features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must have the same size D, got {a.shape[1]} and {b.shape[1]}")
    return frechet_from_statistics(*_mean_and_covariance(a), *_mean_and_covariance(b))


def frechet_from_statistics(mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor,
                            cov_b: torch.Tensor) -> float:
    """The Fréchet distance of ``frechet_distance`` from two Gaussians' float64 means (D,) and covariances (D, D),
    e.g. ones accumulated over a stream of features."""
    distance = (mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * _trace_sqrt_product(cov_a, cov_b)
    return max(float(distance), 0.0)


def fid(
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    feature_extractor: Callable[[torch.Tensor], torch.Tensor],
    name: str,
    batch_size: int = 256,
) -> FIDResult:
    """FID between two image sets over the features of a named network.

    Args:
        images_a: (M_a, C, H, W) images, e.g. counterfactuals; M_a >= 2.
        images_b: (M_b, C, H, W) images, e.g. real images of the target class; M_b >= 2.
        feature_extractor: images (B, C, H, W) -> features (B, D), e.g. ``domain_features(classifier)``. Run in eval
            mode (if an ``nn.Module``) without gradients, in chunks of ``batch_size``.
        name: the feature network's name, reported with the value.
        batch_size: images per forward pass.

    Returns:
        ``FIDResult(value, network=name)``.

    Raises:
        TypeError: bad images, a non-callable extractor, or a non-string name.
        ValueError: bad images, or features that are not (M, D).
    """
    check_images(images_a, "images_a", unit_range=False)
    check_images(images_b, "images_b", unit_range=False)
    check_model("feature_extractor", feature_extractor)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string naming the feature network, got {name!r}")
    features_a = forward_in_batches(feature_extractor, images_a, batch_size)
    features_b = forward_in_batches(feature_extractor, images_b, batch_size)
    return FIDResult(value=frechet_distance(features_a, features_b), network=name)


class PooledFeatures(nn.Module):
    """Globally average-pooled feature map of a cfnb classifier: ``classifier.features(x).mean((2, 3))``."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier: Any = classifier  # any cfnb classifier with features()
        self.name = f"{type(classifier).__name__}.features+GAP"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feature_map = self.classifier.features(images)
        if not torch.is_tensor(feature_map) or feature_map.ndim != 4:
            shape = tuple(feature_map.shape) if torch.is_tensor(feature_map) else type(feature_map).__name__
            raise ValueError(f"{type(self.classifier).__name__}.features must return (N, D, h, w), got {shape}")
        return feature_map.mean(dim=(2, 3))


class PenultimateFeatures(nn.Module):
    """Input of a classifier's last ``nn.Linear`` (in registration order), captured by a forward pre-hook."""

    def __init__(self, classifier: nn.Module, layer_name: str):
        super().__init__()
        self.classifier = classifier
        self.layer_name = layer_name
        self.name = f"{type(classifier).__name__}.penultimate({layer_name})"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        layer = self.classifier.get_submodule(self.layer_name)
        handle = layer.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0]))
        try:
            self.classifier(images)
        finally:
            handle.remove()
        if not captured:
            raise RuntimeError(f"{type(self.classifier).__name__}.{self.layer_name} was not called in forward")
        return captured[-1].flatten(1)


def domain_features(classifier: nn.Module) -> PooledFeatures | PenultimateFeatures:
    """Feature extractor for FID from a domain classifier.

    Args:
        classifier: a cfnb classifier with ``features(x)`` -> (N, D, h, w) (its pooled features are used), or any
            ``nn.Module`` containing an ``nn.Linear`` (the input of the last one registered is used, i.e. the
            penultimate layer of a plain ``... -> Linear`` network).

    Returns:
        An ``nn.Module`` mapping images (N, C, H, W) to features (N, D), with a ``name`` attribute for ``FIDResult``.

    Raises:
        TypeError: ``classifier`` is not an ``nn.Module``, or has neither ``features`` nor an ``nn.Linear`` layer.
    """
    if not isinstance(classifier, nn.Module):
        raise TypeError(f"classifier must be an nn.Module, got {type(classifier).__name__}")
    if callable(getattr(classifier, "features", None)):
        return PooledFeatures(classifier)
    linear_names = [name for name, module in classifier.named_modules() if isinstance(module, nn.Linear)]
    if not linear_names:
        raise TypeError(
            f"{type(classifier).__name__} has neither a `features(x)` method (GAP features) nor an nn.Linear layer "
            "(penultimate features); pass a feature extractor to fid() instead"
        )
    return PenultimateFeatures(classifier, linear_names[-1])
