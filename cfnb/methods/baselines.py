"""Pixel-space baselines: Wachter-style optimisation (``"pixel"``) and a targeted PGD attack (``"pgd"``).

They flip the classifier with small pixel changes: an independent classifier rarely agrees, which is why cfnb's
main methods search in a generator's space instead.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import common_options as common
from .base import MethodOutput, Problem, StepOutcome, interpolate, margin, pick, proximity_term, run_batched
from .registry import Option, register


@register("pixel", summary="Wachter-style optimisation of the pixels (baseline)",
          reference="Wachter, Mittelstadt, Russell 2017",
          options=[common.steps(300), common.learning_rate(0.01), common.lam(0.1), common.norm(1.0),
                   common.kappa(0.0)])
def pixel(problem: Problem, *, steps: int, lr: float, lam: float, p: float, kappa: float) -> MethodOutput:
    """Wachter et al.: ``min_x' λ·CE(C(x'), t) + mean|x − x'|^p`` over the pixels, x' kept in [0, 1].

    Stops per sample once the target's logit leads by ``kappa``. Defaults (by measurement on mnist-classifier):
    300 Adam steps at lr 0.01, λ = 0.1.
    """
    x, classifier, target = problem.images, problem.classifier, problem.target

    def objective(candidate: torch.Tensor, rows: torch.Tensor | None) -> StepOutcome:
        logits, wanted = classifier(candidate), pick(target, rows)
        loss = lam * F.cross_entropy(logits, wanted, reduction="none") + proximity_term(pick(x, rows), candidate, p)
        return StepOutcome(loss, margin(logits, wanted) > kappa)

    run = run_batched(x, objective, steps=steps, lr=lr, progress=problem.progress, should_stop=problem.should_stop,
                      project=lambda v: v.clamp(0, 1))
    return MethodOutput(run.params, interpolate(x, run.params, problem.frames), run.steps_used, cancelled=run.cancelled)


@register("pgd", summary="targeted PGD attack in an L-infinity ball (baseline)", reference="Madry et al. 2018",
          options=[common.steps(100),
                   Option("eps", "float", 0.3, "radius of the L-infinity ball around the image", low=0, high=1,
                          low_open=True, main=True),
                   Option("alpha", "float", 0.01, "size of each signed step", low=0, low_open=True, span=(1e-4, 0.1),
                          log=True),
                   common.kappa(0.0)])
def pgd(problem: Problem, *, steps: int, eps: float, alpha: float, kappa: float) -> MethodOutput:
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
