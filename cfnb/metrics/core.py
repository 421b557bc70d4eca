"""Core metrics: validity, proximity, sparsity, oracle validity and MNAC; pure functions over batched tensors.

Every function validates its input once (``cfnb.checks``), runs models in eval mode under ``torch.no_grad()``
(chunked to bound memory, ``cfnb.forward``), works on CPU or CUDA tensors and returns per-sample tensors on the
input's device (or a float for rates). Functions that run a model take it first, then ``original`` and
``counterfactual``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..checks import as_labels, check_images, check_logits, check_model, check_number, check_pair
from ..forward import forward_in_batches
from ..results import Counterfactuals


# --- validity ------------------------------------------------------------------------------------------------------
def validity(result_or_predictions: Counterfactuals | torch.Tensor, target: int | torch.Tensor | None = None) -> float:
    """Flip rate: the share of counterfactuals classified as their target.

    Args:
        result_or_predictions: a ``Counterfactuals`` (its ``prediction`` and ``target`` are used), or the
            classifier's output on the counterfactuals: (N,) predicted labels or (N, K) logits/probabilities.
        target: (N,) target labels or one int for all; required with predictions, not allowed with a result.

    Returns:
        A float in [0, 1].

    Raises:
        TypeError: wrong types. ValueError: shape mismatch, empty batch, NaN, or ``target`` given with a result.
    """
    if isinstance(result_or_predictions, Counterfactuals):
        if target is not None:
            raise ValueError("pass either a Counterfactuals (which holds its targets) or predictions and a target")
        predictions, target = result_or_predictions.prediction, result_or_predictions.target
    elif torch.is_tensor(result_or_predictions):
        predictions = result_or_predictions
        if target is None:
            raise ValueError("target is required when validity() is given predictions")
    else:
        kind = type(result_or_predictions).__name__
        raise TypeError(f"expected a Counterfactuals or a tensor of predictions, got {kind}")
    predicted = _predicted_labels(predictions)
    target = as_labels("target", target, predicted.shape[0], predicted.device)
    return (predicted == target).float().mean().item()


def _predicted_labels(predictions: torch.Tensor) -> torch.Tensor:
    """(N,) labels from (N,) integer predictions or (N, K) scores (argmax)."""
    if predictions.ndim == 2 and predictions.is_floating_point():
        check_logits("predictions", predictions, predictions.shape[0])
        predictions = predictions.argmax(dim=1)
    elif predictions.ndim != 1 or predictions.is_floating_point() or predictions.dtype == torch.bool:
        raise ValueError(
            f"predictions must be (N,) integer labels or (N, K) floating scores, got shape {tuple(predictions.shape)} "
            f"and dtype {predictions.dtype}"
        )
    if predictions.shape[0] == 0:
        raise ValueError("predictions is an empty batch (N = 0)")
    return predictions


# --- pixel-space closeness -----------------------------------------------------------------------------------------
@torch.no_grad()
def proximity(original: torch.Tensor, counterfactual: torch.Tensor, p: float = 1) -> torch.Tensor:
    """Per-sample distance between images as a power mean over all C*H*W values: ``(mean |x - x'|^p)^(1/p)``.

    p = 1 is the mean absolute difference (L1 proximity, C3LT's ``sum |x - x'| / (H*W)`` for one channel); p = 2 is
    the root of the mean squared difference (RMS, i.e. L2 norm / sqrt(C*H*W)); p = inf is the largest change.
    Averaging makes values comparable across image sizes; for p >= 1 they lie in [0, 1] for images in [0, 1].

    Args:
        original: (N, C, H, W) images.
        counterfactual: (N, C, H, W) counterfactuals.
        p: order of the power mean, > 0 (``math.inf`` allowed).

    Returns:
        (N,) distances.

    Raises:
        TypeError / ValueError: bad images or shape mismatch; ``p`` not a positive number.
    """
    check_pair(original, counterfactual)
    p = check_number("p", p, 0.0, math.inf, include_low=False)
    difference = (counterfactual - original).abs().flatten(1)
    if math.isinf(p):
        return difference.amax(dim=1)
    return difference.pow(p).mean(dim=1).pow(1 / p)


@torch.no_grad()
def sparsity(original: torch.Tensor, counterfactual: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Share of the H*W pixels changed: a pixel is changed when any channel changed by more than ``threshold``.

    Args:
        original: (N, C, H, W) images.
        counterfactual: (N, C, H, W) counterfactuals.
        threshold: absolute change (in image units) a channel must exceed, >= 0.

    Returns:
        (N,) shares in [0, 1] (lower is sparser).

    Raises:
        TypeError / ValueError: bad images or shape mismatch; negative or NaN threshold.
    """
    check_pair(original, counterfactual)
    threshold = check_number("threshold", threshold, 0.0)
    changed = ((counterfactual - original).abs() > threshold).any(dim=1)
    return changed.flatten(1).to(original.dtype).mean(dim=1)


# --- classifiers' judgements ---------------------------------------------------------------------------------------
def classifier_logits(
    name: str, model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """The model's (N, K) logits on ``images``, checked."""
    return check_logits(name, forward_in_batches(model, images, batch_size), images.shape[0])


def oracle_agrees(
    oracle: Callable[[torch.Tensor], torch.Tensor],
    counterfactual: torch.Tensor,
    target: int | torch.Tensor,
    batch_size: int = 256,
) -> torch.Tensor:
    """Whether an independent classifier (the oracle) also predicts the target for each counterfactual.

    Args:
        oracle: images (B, C, H, W) -> logits (B, K); put in eval mode for the call.
        counterfactual: (N, C, H, W) counterfactuals.
        target: (N,) target labels or one int.
        batch_size: images per forward pass.

    Returns:
        (N,) bool tensor.

    Raises:
        TypeError / ValueError: bad images, labels or oracle output.
    """
    check_model("oracle", oracle)
    check_images(counterfactual, "counterfactual", unit_range=False)
    logits = classifier_logits("oracle", oracle, counterfactual, batch_size)
    target = as_labels("target", target, counterfactual.shape[0], logits.device, logits.shape[1])
    return logits.argmax(dim=1) == target


def oracle_validity(
    oracle: Callable[[torch.Tensor], torch.Tensor],
    counterfactual: torch.Tensor,
    target: int | torch.Tensor,
    batch_size: int = 256,
) -> float:
    """Share of counterfactuals the oracle classifies as the target (see ``oracle_agrees``), a float in [0, 1]."""
    return oracle_agrees(oracle, counterfactual, target, batch_size).float().mean().item()


def mnac(
    attribute_classifier: Callable[[torch.Tensor], torch.Tensor],
    original: torch.Tensor,
    counterfactual: torch.Tensor,
    threshold: float = 0.5,
    exclude: int | Sequence[int] | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """MNAC: number of attributes whose presence (sigmoid of the logit > threshold) differs between x and x'.

    Args:
        attribute_classifier: multi-label classifier, images (B, C, H, W) -> logits (B, A).
        original: (N, C, H, W) images.
        counterfactual: (N, C, H, W) counterfactuals.
        threshold: probability above which an attribute is present, in (0, 1).
        exclude: attribute index (or indices) left out of the count, e.g. the query attribute.
        batch_size: images per forward pass.

    Returns:
        (N,) long tensor of counts in [0, A - len(exclude)] (lower is better).

    Raises:
        TypeError / ValueError: bad images, threshold, indices or classifier output.
    """
    check_model("attribute_classifier", attribute_classifier)
    check_pair(original, counterfactual)
    threshold = check_number("threshold", threshold, 0.0, 1.0, include_low=False)
    if threshold == 1.0:
        raise ValueError("threshold must be below 1")
    before = classifier_logits("attribute_classifier", attribute_classifier, original, batch_size).sigmoid() > threshold
    after = (classifier_logits("attribute_classifier", attribute_classifier, counterfactual, batch_size).sigmoid()
             > threshold)
    counted = counted_attributes(before.shape[1], exclude, before.device)
    return (before != after)[:, counted].sum(dim=1)


def counted_attributes(num_attributes: int, exclude: int | Sequence[int] | None, device: torch.device) -> torch.Tensor:
    """(A,) bool mask of the attributes counted: all but ``exclude``."""
    counted = torch.ones(num_attributes, dtype=torch.bool, device=device)
    if exclude is None:
        return counted
    indices = [exclude] if isinstance(exclude, int) else list(exclude)
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"exclude must hold int attribute indices, got {type(index).__name__}")
        if not 0 <= index < num_attributes:
            raise ValueError(f"exclude index {index} is outside [0, {num_attributes - 1}]")
        counted[index] = False
    return counted
