"""What every method receives (``Problem``) and returns (``MethodOutput``); the glue between ``explain`` and methods."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .optimise import Progress, StopFlag


@dataclass
class Problem:
    """A batch to explain, already validated and on the right device.

    Attributes:
        classifier: frozen, in eval mode.
        images: (n, C, H, W) in [0, 1].
        source: (n,) current predictions.
        target: (n,) classes asked for (never equal to ``source``).
        frames: number of trajectory frames to return.
        progress / should_stop: the caller's callbacks (may be None).
        models: the helper models the call was given (``generator``, ``decoder``, ``editor``...).
    """

    classifier: nn.Module
    images: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    frames: int
    progress: Progress | None = None
    should_stop: StopFlag | None = None
    models: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodOutput:
    """What a method returns: the counterfactuals, the path to them, steps used and per-method extras."""

    counterfactual: torch.Tensor
    trajectory: torch.Tensor
    steps_used: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False


def interpolate(start: torch.Tensor, end: torch.Tensor, frames: int) -> torch.Tensor:
    """(frames, N, ...) straight-line path from ``start`` (t=0) to ``end`` (t=frames-1)."""
    weights = torch.linspace(0, 1, frames, device=start.device, dtype=start.dtype)
    weights = weights.view(frames, *([1] * start.ndim))
    return start.unsqueeze(0) + weights * (end - start).unsqueeze(0)


def decode_path(render: Callable[[torch.Tensor], torch.Tensor], path: torch.Tensor) -> torch.Tensor:
    """Render a (T, N, ...) path frame by frame into (T, N, C, H, W) images, without gradients.

    Frame by frame, because ``render`` may carry per-image state (a residual, an editor's content) for the N images.
    """
    with torch.no_grad():
        return torch.stack([render(frame) for frame in path])
