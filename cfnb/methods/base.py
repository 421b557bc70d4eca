"""What every method shares: the ``Problem`` it receives, the ``MethodOutput`` it returns, the batched optimisation
loop and the loss terms.

The loop works over (N, ...) parameters with per-sample early stopping: a sample whose target wins by the margin is
frozen at that step (its value recorded), and from then on the objective is evaluated on the samples still
searching only (``objective(params[rows], rows)``), so a batch costs what its unfinished samples cost, as a loop
over single images would. The loop ends when all are done, when ``steps`` run out, or when ``should_stop()`` says so.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

Progress = Callable[[int, int], None]
StopFlag = Callable[[], bool]


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


@dataclass
class StepOutcome:
    """What the caller's objective returns for one step.

    Attributes:
        loss: (N,) per-sample loss to minimise.
        done: (N,) bool, samples that met their stopping rule at the current parameters.
    """

    loss: torch.Tensor
    done: torch.Tensor


@dataclass
class OptimisationResult:
    params: torch.Tensor
    steps_used: torch.Tensor
    done: torch.Tensor
    cancelled: bool
    snapshots: list[torch.Tensor]


def pick(values: Any, rows: torch.Tensor | None) -> Any:
    """``values`` at the searching ``rows`` (all when rows is None): a per-sample tensor, or a tuple, list or dict of
    them (e.g. an editor's content); anything else (None, settings) is returned as it is."""
    if rows is None:
        return values
    if torch.is_tensor(values):
        return values[rows]
    if isinstance(values, (tuple, list)):
        return type(values)(pick(v, rows) for v in values)
    if isinstance(values, Mapping):
        return {k: pick(v, rows) for k, v in values.items()}
    return values


def margin(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample logit margin: target logit minus the largest other logit (positive when the target wins)."""
    target_logit = logits.gather(1, target[:, None]).squeeze(1)
    others = logits.scatter(1, target[:, None], float("-inf"))
    return target_logit - others.amax(1)


def jitter(images: torch.Tensor, shift: int, noise: float) -> torch.Tensor:
    """Random per-image integer shifts of up to ``shift`` pixels (zero fill) plus Gaussian noise of std ``noise``.

    Used inside objectives so that an edit must survive small, meaning-preserving perturbations: adversarial pixel
    patterns do not, real changes of shape do. Draws from torch's global generator (seeded by ``explain``).
    """
    out = images
    if shift > 0:
        n, _, h, w = images.shape
        offsets = torch.randint(-shift, shift + 1, (n, 2), device=images.device).to(images.dtype)
        theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, 0, 2] = offsets[:, 0] * 2 / w
        theta[:, 1, 2] = offsets[:, 1] * 2 / h
        grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
        out = torch.nn.functional.grid_sample(out, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if noise > 0:
        out = out + noise * torch.randn_like(out)
    return out


def run_batched(
    initial: torch.Tensor,
    objective: Callable[[torch.Tensor, torch.Tensor | None], StepOutcome],
    *,
    steps: int,
    lr: float,
    optimiser: str = "adam",
    progress: Progress | None = None,
    should_stop: StopFlag | None = None,
    snapshot_every: int = 0,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> OptimisationResult:
    """Minimise ``objective`` over a batch of parameters with per-sample early stopping.

    Args:
        initial: (N, ...) starting parameters (copied; not modified).
        objective: ``objective(params, rows)`` maps the parameters of the samples still searching to their losses
            and done flags; ``rows`` says which samples they are (None: all), for slicing per-sample constants
            with ``pick``.
        steps: maximum number of steps.
        lr: step size.
        optimiser: ``"adam"`` or ``"sgd"``, or ``"sign"`` (signed-gradient steps, as in PGD).
        progress: called as ``progress(done_steps, steps)`` about 20 times per run.
        should_stop: polled every step; returning True ends the loop with what it has.
        snapshot_every: if > 0, keep a copy of the parameters every that many steps (for trajectories).
        project: applied to the parameters after every step (e.g. clamping to a valid range).

    Returns:
        The final parameters (each sample at its stopping step), steps used per sample, which samples met their
        rule, whether it was cancelled, and the snapshots.
    """
    params = initial.detach().clone().requires_grad_(True)
    n = params.shape[0]
    frozen = torch.zeros(n, dtype=torch.bool, device=params.device)
    steps_used = torch.full((n,), steps, dtype=torch.long, device=params.device)
    final = params.detach().clone()
    opt = (torch.optim.Adam([params], lr=lr) if optimiser == "adam"
           else torch.optim.SGD([params], lr=lr) if optimiser == "sgd" else None)
    if opt is None and optimiser != "sign":
        raise ValueError(f"unknown optimiser {optimiser!r}; use 'adam', 'sgd' or 'sign'")
    snapshots: list[torch.Tensor] = [params.detach().clone()] if snapshot_every else []
    report_every = max(1, steps // 20)
    cancelled = False
    executed = 0
    for step in range(steps):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        executed = step + 1
        rows = torch.nonzero(~frozen).squeeze(1) if bool(frozen.any()) else None
        outcome = objective(params if rows is None else params[rows], rows)
        done = outcome.done.detach()
        newly = done.nonzero().squeeze(1) if rows is None else rows[done]
        if newly.numel():
            final[newly] = params.detach()[newly]
            steps_used[newly] = step
            frozen[newly] = True
        if bool(frozen.all()):
            break
        searching = (~done).to(outcome.loss.dtype)
        grad, = torch.autograd.grad((outcome.loss * searching).sum(), params)  # zero on every frozen sample
        if opt is None:
            with torch.no_grad():
                params -= lr * grad.sign()
        else:
            params.grad = grad
            opt.step()
        if project is not None:
            with torch.no_grad():
                params.copy_(project(params))
        with torch.no_grad():  # Adam's momentum moves frozen samples: pin them to their recorded value
            params[frozen] = final[frozen]
        if snapshot_every and (step + 1) % snapshot_every == 0:
            snapshots.append(params.detach().clone())
        if progress is not None and (step + 1) % report_every == 0:
            progress(step + 1, steps)
    still = ~frozen
    final[still] = params.detach()[still]
    steps_used[still] = executed
    if progress is not None:
        progress(steps, steps)
    return OptimisationResult(final, steps_used.cpu(), frozen.cpu(), cancelled, snapshots)


def proximity_term(original: torch.Tensor, candidate: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample mean over pixels of |x - x'|^p (the ``‖x − x'‖_p`` term of every method, averaged per pixel)."""
    return (original - candidate).abs().pow(p).flatten(1).mean(1)
