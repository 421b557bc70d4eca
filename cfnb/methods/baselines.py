"""Pixel-space baselines: Wachter-style optimisation (``"pixel"``) and a targeted PGD attack (``"pgd"``).

They flip the classifier with small pixel changes: an independent classifier rarely agrees, which is why cfnb's
main methods search in a generator's space instead.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .optimise import StepOutcome, margin, pick, run_batched
from .problem import MethodOutput, Problem, interpolate


def proximity_term(original: torch.Tensor, candidate: torch.Tensor, p: float) -> torch.Tensor:
    """Per-sample mean over pixels of |x - x'|^p (the ``‖x − x'‖_p`` term of every method, averaged per pixel)."""
    return (original - candidate).abs().pow(p).flatten(1).mean(1)


def pixel(problem: Problem, *, steps: int = 300, lr: float = 0.01, lam: float = 0.1, p: float = 1.0,
          kappa: float = 0.0) -> MethodOutput:
    """Wachter et al.: ``min_x' λ·CE(C(x'), t) + mean|x − x'|^p`` over the pixels, x' kept in [0, 1].

    Defaults (ours, by measurement on mnist-classifier): 300 Adam steps at lr 0.01, λ = 0.1, stop once the target's
    logit leads by ``kappa``.
    """
    x, classifier, target = problem.images, problem.classifier, problem.target

    def objective(candidate: torch.Tensor, rows: torch.Tensor | None) -> StepOutcome:
        logits, wanted = classifier(candidate), pick(target, rows)
        loss = lam * F.cross_entropy(logits, wanted, reduction="none") + proximity_term(pick(x, rows), candidate, p)
        return StepOutcome(loss, margin(logits, wanted) > kappa)

    run = run_batched(x, objective, steps=steps, lr=lr, progress=problem.progress, should_stop=problem.should_stop,
                      project=lambda v: v.clamp(0, 1))
    return MethodOutput(run.params, interpolate(x, run.params, problem.frames), run.steps_used, cancelled=run.cancelled)


def pgd(problem: Problem, *, steps: int = 100, eps: float = 0.3, alpha: float = 0.01, kappa: float = 0.0) -> MethodOutput:
    """Targeted PGD (Madry et al.) in an L∞ ball of radius ``eps``: signed steps of ``alpha`` down CE(C(x'), t).

    Stops per sample once the target's logit leads by ``kappa``.
    """
    x, classifier, target = problem.images, problem.classifier, problem.target

    def objective(candidate: torch.Tensor, rows: torch.Tensor | None) -> StepOutcome:
        logits, wanted = classifier(candidate), pick(target, rows)
        return StepOutcome(F.cross_entropy(logits, wanted, reduction="none"), margin(logits, wanted) > kappa)

    def project(candidate: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(candidate, x - eps), x + eps).clamp(0, 1)

    run = run_batched(x, objective, steps=steps, lr=alpha, optimiser="sign", progress=problem.progress,
                      should_stop=problem.should_stop, project=project)
    return MethodOutput(run.params, interpolate(x, run.params, problem.frames), run.steps_used, cancelled=run.cancelled)
