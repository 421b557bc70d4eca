"""Metrics for counterfactual explanations: pure functions over batched tensors, and ``evaluate`` for a result.

Every function validates its input once, runs models in eval mode under ``torch.no_grad()`` (chunked to bound
memory), works on CPU or CUDA tensors and returns per-sample tensors on the input's device (or a float for rates).
Metrics: validity, proximity (L1/L2), sparsity, oracle validity, COUT (Khorram & Li, CVPR 2022), MNAC, IM1/IM2
(Van Looveren & Klaise, 2021), FID over a named domain network (``metrics_fid``) and LPIPS (``metrics_lpips``).
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from .metrics_fid import FIDResult, domain_features, fid, frechet_distance
from .metrics_inputs import (
    apply_in_batches,
    as_labels,
    check_images,
    check_logits,
    check_model,
    check_number,
    check_pair,
    check_positive_int,
)
from .metrics_lpips import LPIPSUnavailable, lpips_distance
from .results import Counterfactuals

__all__ = [
    "validity", "proximity", "sparsity", "oracle_agrees", "oracle_validity", "cout", "mnac", "im1", "im2",
    "frechet_distance", "fid", "FIDResult", "domain_features", "lpips_distance", "LPIPSUnavailable", "evaluate",
]

Autoencoder = Callable[[torch.Tensor], torch.Tensor]


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
def _logits(
    name: str, model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """The model's (N, K) logits on ``images``, checked."""
    return check_logits(name, apply_in_batches(model, images, batch_size), images.shape[0])


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
    check_images("counterfactual", counterfactual)
    logits = _logits("oracle", oracle, counterfactual, batch_size)
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


def _insertion_ranks(original: torch.Tensor, counterfactual: torch.Tensor) -> torch.Tensor:
    """(N, H*W) rank of each pixel by |x' - x| summed over channels, largest first (ties in raster order)."""
    change = (counterfactual - original).abs().sum(dim=1).flatten(1)
    order = torch.argsort(change, dim=1, descending=True, stable=True)
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def _insertion_curves(
    classifier: Callable[[torch.Tensor], torch.Tensor],
    original: torch.Tensor,
    counterfactual: torch.Tensor,
    classes: torch.Tensor,
    steps: int,
    batch_size: int,
) -> torch.Tensor:
    """(steps + 1, N, 2) probabilities of ``classes[:, 0]`` and ``classes[:, 1]`` along the pixel insertion.

    Frame k of sample n is ``original[n]`` with its ``floor(k * H*W / steps)`` most changed pixels taken from
    ``counterfactual[n]``; frames are built chunk by chunk, so at most ``batch_size`` images exist at once.
    """
    n, _, height, width = original.shape
    ranks = _insertion_ranks(original, counterfactual)
    counts = torch.arange(steps + 1, device=original.device) * (height * width) // steps
    curves = torch.empty((steps + 1) * n, 2, dtype=original.dtype, device=original.device)
    for flat in torch.arange((steps + 1) * n, device=original.device).split(batch_size):
        frame, sample = flat // n, flat % n
        inserted = (ranks[sample] < counts[frame, None]).view(-1, 1, height, width)
        frames = torch.where(inserted, counterfactual[sample], original[sample])
        logits = _logits("classifier", classifier, frames, batch_size)
        if int(classes.max()) >= logits.shape[1]:
            raise ValueError(f"source/target labels must be below the classifier's {logits.shape[1]} classes")
        curves[flat] = logits.softmax(dim=1).gather(1, classes[sample]).to(curves.dtype)
    return curves.view(steps + 1, n, 2)


def cout(
    classifier: Callable[[torch.Tensor], torch.Tensor],
    original: torch.Tensor,
    counterfactual: torch.Tensor,
    source: int | torch.Tensor,
    target: int | torch.Tensor,
    steps: int = 50,
    batch_size: int = 256,
) -> torch.Tensor:
    """COUT (counterfactual transition, Khorram & Li 2022): how fast inserting the changed pixels moves the class.

    Pixels are ranked by |x' - x| summed over channels; frame k (k = 0..steps) is x with its top
    ``floor(k * H*W / steps)`` pixels taken from x' (frame 0 is x, frame ``steps`` is x'). COUT is the area under
    p(target) minus the area under p(source) along the frames (trapezoid rule on [0, 1]), so it lies in [-1, 1];
    higher is better. Note that a counterfactual equal to the original scores ``p_target(x) - p_source(x)``
    (constant curves), which is about -1 for a confidently classified x, not 0.

    Args:
        classifier: images (B, C, H, W) -> logits (B, K); probabilities are its softmax.
        original: (N, C, H, W) images.
        counterfactual: (N, C, H, W) counterfactuals.
        source: (N,) source labels (the prediction on ``original``) or one int.
        target: (N,) target labels or one int.
        steps: number of insertion steps (50 in the reference definition).
        batch_size: frames per forward pass; bounds memory (all N * (steps + 1) frames are evaluated in chunks).

    Returns:
        (N,) COUT scores in [-1, 1].

    Raises:
        TypeError / ValueError: bad images, labels, steps, or classifier output.
    """
    check_model("classifier", classifier)
    check_pair(original, counterfactual)
    check_positive_int("steps", steps)
    check_positive_int("batch_size", batch_size)
    n = original.shape[0]
    classes = torch.stack([
        as_labels("source", source, n, original.device), as_labels("target", target, n, original.device),
    ], dim=1)
    with torch.no_grad():
        curves = _insertion_curves(classifier, original, counterfactual, classes, steps, batch_size)
        areas = torch.trapezoid(curves, dx=1.0 / steps, dim=0)
    return areas[:, 1] - areas[:, 0]


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
    before = _logits("attribute_classifier", attribute_classifier, original, batch_size).sigmoid() > threshold
    after = _logits("attribute_classifier", attribute_classifier, counterfactual, batch_size).sigmoid() > threshold
    counted = _attribute_mask(before.shape[1], exclude, before.device)
    return (before != after)[:, counted].sum(dim=1)


def _attribute_mask(num_attributes: int, exclude: int | Sequence[int] | None, device: torch.device) -> torch.Tensor:
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


# --- interpretability (Van Looveren & Klaise) ------------------------------------------------------------------------
def _reconstruct(name: str, autoencoder: Autoencoder, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    check_model(name, autoencoder)
    reconstruction = apply_in_batches(autoencoder, images, batch_size)
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
    counterfactual: torch.Tensor,
    autoencoders: Mapping[int, Autoencoder],
    target: int | torch.Tensor,
    source: int | torch.Tensor,
    eps: float = 1e-8,
    batch_size: int = 256,
) -> torch.Tensor:
    """IM1 = ||x' - AE_t(x')||^2 / (||x' - AE_s(x')||^2 + eps), per sample (lower is better).

    Below 1 when the target class's autoencoder reconstructs the counterfactual better than the source class's,
    i.e. x' looks like the target class's data.

    Args:
        counterfactual: (N, C, H, W) counterfactuals x'.
        autoencoders: class label -> autoencoder (images -> reconstructions of the same shape) trained on that class
            only; must cover every label in ``target`` and ``source``.
        target: (N,) target labels or one int.
        source: (N,) source labels or one int.
        eps: added to the denominator, >= 0.
        batch_size: images per forward pass.

    Returns:
        (N,) IM1 values; average them for the usual dataset-level score.

    Raises:
        TypeError / ValueError: bad images, labels or eps; a class without an autoencoder; wrong output shape.
    """
    check_images("counterfactual", counterfactual)
    eps = check_number("eps", eps, 0.0)
    n, device = counterfactual.shape[0], counterfactual.device
    target = as_labels("target", target, n, device)
    source = as_labels("source", source, n, device)
    by_target = _reconstruct_by_class("target", autoencoders, counterfactual, target, batch_size)
    by_source = _reconstruct_by_class("source", autoencoders, counterfactual, source, batch_size)
    return _squared_norm(counterfactual - by_target) / (_squared_norm(counterfactual - by_source) + eps)


@torch.no_grad()
def im2(
    counterfactual: torch.Tensor,
    autoencoders: Mapping[int, Autoencoder],
    autoencoder: Autoencoder,
    target: int | torch.Tensor,
    eps: float = 1e-8,
    batch_size: int = 256,
) -> torch.Tensor:
    """IM2 = ||AE_t(x') - AE(x')||^2 / (||x'||_1 + eps), per sample (lower is better).

    Small when the target class's autoencoder and one trained on all classes agree on x', i.e. x' is as
    plausible to the target class as to the data overall.

    Args:
        counterfactual: (N, C, H, W) counterfactuals x'.
        autoencoders: class label -> class-specific autoencoder; must cover every label in ``target``.
        autoencoder: the autoencoder trained on all classes.
        target: (N,) target labels or one int.
        eps: added to the denominator, >= 0.
        batch_size: images per forward pass.

    Returns:
        (N,) IM2 values; average them for the usual dataset-level score.

    Raises:
        TypeError / ValueError: bad images, labels or eps; a class without an autoencoder; wrong output shape.
    """
    check_images("counterfactual", counterfactual)
    eps = check_number("eps", eps, 0.0)
    target = as_labels("target", target, counterfactual.shape[0], counterfactual.device)
    by_target = _reconstruct_by_class("target", autoencoders, counterfactual, target, batch_size)
    by_all = _reconstruct("autoencoder", autoencoder, counterfactual, batch_size)
    return _squared_norm(by_target - by_all) / (counterfactual.flatten(1).abs().sum(dim=1) + eps)


# --- everything at once ----------------------------------------------------------------------------------------------
def evaluate(
    result: Counterfactuals,
    classifier: nn.Module | None = None,
    oracle: nn.Module | None = None,
    attribute_classifier: nn.Module | None = None,
    autoencoders: Mapping[int, Autoencoder] | None = None,
    autoencoder: Autoencoder | None = None,
    fid_reference: torch.Tensor | None = None,
    fid_network: nn.Module | None = None,
    lpips: bool = False,
    *,
    sparsity_threshold: float = 0.1,
    cout_steps: int = 50,
    mnac_exclude: int | Sequence[int] | None = None,
    lpips_net: str = "alex",
    batch_size: int = 256,
) -> dict[str, float]:
    """Every metric the given models allow, averaged over the samples of a ``Counterfactuals``.

    Always: ``validity`` (from the result's predictions), ``l1`` and ``l2`` (``proximity`` with p = 1, 2) and
    ``sparsity``. With ``classifier`` (the explained one): ``cout``. With ``oracle``: ``oracle_validity``. With
    ``attribute_classifier``: ``mnac``. With ``autoencoders`` (per class): ``im1``, and ``im2`` if ``autoencoder``
    (all classes) is given too. With ``fid_reference``: ``fid`` between the counterfactuals and those real images,
    over ``domain_features(fid_network or classifier)``. With ``lpips=True``: ``lpips`` between originals and
    counterfactuals. Metrics whose model is missing are left out of the dict (never NaN-filled). Averages are over all
    samples, valid or not. Models are put in eval mode for the calls and nothing is differentiated.

    Args:
        result: the counterfactuals to score.
        classifier: the classifier that was explained (logits over the result's classes).
        oracle: an independently trained classifier over the same classes.
        attribute_classifier: multi-label attribute classifier for MNAC.
        autoencoders: class label -> class-specific autoencoder, covering the result's sources and targets.
        autoencoder: autoencoder trained on all classes (for IM2).
        fid_reference: (M, C, H, W) real images to compare the counterfactuals with (e.g. of the target class), M >= 2.
        fid_network: network whose features FID uses; defaults to ``classifier``.
        lpips: compute LPIPS (needs the backbone weights on disk).
        sparsity_threshold: see ``sparsity``.
        cout_steps: see ``cout``.
        mnac_exclude: see ``mnac`` (e.g. the query attribute's index).
        lpips_net: LPIPS backbone.
        batch_size: images per forward pass.

    Returns:
        A flat dict of floats, keys among validity, oracle_validity, l1, l2, sparsity, cout, mnac, im1, im2, fid, lpips.

    Raises:
        TypeError: ``result`` is not a ``Counterfactuals``.
        ValueError: an empty result; ``fid_reference`` without a network; ``autoencoder`` without ``autoencoders``.
        LPIPSUnavailable: ``lpips=True`` but the LPIPS weights are not on disk.
    """
    if not isinstance(result, Counterfactuals):
        raise TypeError(f"result must be a Counterfactuals, got {type(result).__name__}")
    if len(result) == 0:
        raise ValueError("result holds no counterfactuals")
    x, x_cf = result.original, result.counterfactual
    scores = {
        "validity": validity(result),
        "l1": proximity(x, x_cf, p=1).mean().item(),
        "l2": proximity(x, x_cf, p=2).mean().item(),
        "sparsity": sparsity(x, x_cf, sparsity_threshold).mean().item(),
    }
    if oracle is not None:
        scores["oracle_validity"] = oracle_validity(oracle, x_cf, result.target, batch_size)
    if classifier is not None:
        scores["cout"] = cout(classifier, x, x_cf, result.source, result.target, cout_steps, batch_size).mean().item()
    if attribute_classifier is not None:
        counts = mnac(attribute_classifier, x, x_cf, exclude=mnac_exclude, batch_size=batch_size)
        scores["mnac"] = counts.float().mean().item()
    scores.update(_interpretability(result, autoencoders, autoencoder, batch_size))
    if fid_reference is not None:
        scores["fid"] = _fid_to_reference(x_cf, fid_reference, fid_network or classifier, batch_size).value
    if lpips:
        scores["lpips"] = lpips_distance(x, x_cf, net=lpips_net).mean().item()
    return scores


def _interpretability(
    result: Counterfactuals,
    autoencoders: Mapping[int, Autoencoder] | None,
    autoencoder: Autoencoder | None,
    batch_size: int,
) -> dict[str, float]:
    if autoencoders is None:
        if autoencoder is not None:
            raise ValueError("IM2 needs the class autoencoders too: pass `autoencoders` with `autoencoder`")
        return {}
    x_cf = result.counterfactual
    scores = {"im1": im1(x_cf, autoencoders, result.target, result.source, batch_size=batch_size).mean().item()}
    if autoencoder is not None:
        scores["im2"] = im2(x_cf, autoencoders, autoencoder, result.target, batch_size=batch_size).mean().item()
    return scores


def _fid_to_reference(
    counterfactual: torch.Tensor, reference: torch.Tensor, network: nn.Module | None, batch_size: int
) -> FIDResult:
    if network is None:
        raise ValueError("fid_reference needs a feature network: pass `fid_network` (or `classifier`)")
    extractor = domain_features(network)
    return fid(counterfactual, reference, extractor, extractor.name, batch_size)
