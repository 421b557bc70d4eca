"""How a counterfactual's change moves the class: COUT (counterfactual transition, Khorram & Li, CVPR 2022) over
inserted pixels, and the monotonicity of a method's own path."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..checks import as_labels, check_model, check_pair, check_positive_int
from .core import classifier_logits


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
        logits = classifier_logits("classifier", classifier, frames, batch_size)
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

    Pixels are ranked by ``|x' - x|`` summed over channels; frame k (k = 0..steps) is x with its top
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


def path_monotonicity(trajectory_probabilities: torch.Tensor, target: torch.Tensor,
                      tolerance: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether each path moves steadily to its target: ``(rises, monotone)``, two (N,) bool tensors.

    ``rises``: the target's probability is higher at the last frame than at the first. ``monotone``: it never
    falls by more than ``tolerance`` from one frame to the next (small wobbles of a decoded path are allowed).

    Args:
        trajectory_probabilities: (T, N, K) class probabilities of each frame (``Counterfactuals``' field).
        target: (N,) target classes.
    """
    if trajectory_probabilities.ndim != 3:
        raise ValueError(f"trajectory_probabilities must be (T, N, K), got {tuple(trajectory_probabilities.shape)}")
    frames, n, classes = trajectory_probabilities.shape
    target = as_labels("target", target, n, trajectory_probabilities.device, classes)
    p = trajectory_probabilities.gather(2, target[None, :, None].expand(frames, n, 1)).squeeze(2)
    return p[-1] > p[0], ((p[1:] - p[:-1]) >= -tolerance).all(0)
