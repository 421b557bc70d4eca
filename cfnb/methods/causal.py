"""Causally-guided adversarial steering (after CECAS, Qiao et al.): a targeted adversarial direction on the
classifier, carried into a generator's latent space where the factors declared spurious are held fixed; a mask from
where the image changed; the original kept outside the mask and the generator's drawing inside it (inpainting).

With ``move="spurious"`` the roles swap: only the spurious factors may move. A classifier that can be flipped that
way relies on the shortcut, which is how ``cfnb.audit`` measures reliance instead of hiding it.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from . import common_options as common
from .base import MethodOutput, Problem, StepOutcome, interpolate, margin, pick, proximity_term, run_batched
from .registry import Helper, Option, register


def spurious_dims(generator: object, spurious: Sequence[int] | Sequence[str] | None) -> list[int]:
    """Latent dims of the spurious factors: given as dims, as factor names of ``generator.factor_dims``, or None."""
    if spurious is None:
        return []
    factors = getattr(generator, "factor_dims", {})
    dims: list[int] = []
    for item in spurious:
        if isinstance(item, str):
            if item not in factors:
                raise ValueError(f"unknown factor {item!r}; this generator names {sorted(factors) or 'no factors'} "
                                 "(give latent dims as ints instead)")
            dims.extend(factors[item])
        else:
            dims.append(int(item))
    return sorted(set(dims))


def change_mask(change: torch.Tensor, threshold: float, grow: int) -> torch.Tensor:
    """(n, 1, H, W) mask in [0, 1] from an image change: ℓ1 over channels, divided by its per-sample maximum,
    scaled so values above ``threshold`` count fully, then grown by ``grow`` pixels (max-pooling)."""
    strength = change.abs().sum(1, keepdim=True)
    strength = strength / strength.flatten(1).amax(1).clamp_min(1e-8)[:, None, None, None]
    mask = (strength / threshold).clamp(0, 1)
    return F.max_pool2d(mask, 2 * grow + 1, 1, grow) if grow > 0 else mask


@register("causal", summary="adversarial steering restricted to causal latent factors, masked and inpainted",
          reference="after CECAS (Qiao et al.), causally-guided adversarial steering",
          helpers=[Helper("generator", ("encode", "decode"),
                          "a generator with encode() and decode(); factor_dims names its latent factors")],
          options=[common.steps(150), common.learning_rate(0.1), common.lam(0.05), common.norm(1.0),
                   common.kappa(4.0),
                   Option("spurious", "any", None, "the spurious factors: latent dims, or names of factor_dims"),
                   Option("move", "choice", "causal", "'causal': spurious factors held fixed; 'spurious': only they "
                          "move (the audit's probe)", choices=("causal", "spurious")),
                   Option("prior", "float", 0.01, "weight of mean(z'^2), the VAE's standard-normal prior", low=0,
                          span=(0.0, 1.0)),
                   Option("mask_threshold", "float", 0.2, "share of the largest change that counts fully in the mask",
                          low=0, high=1, low_open=True),
                   Option("grow", "int", 1, "pixels the mask is grown by", low=0, span=(0, 4))])
def causal(problem: Problem, *, steps: int, lr: float, lam: float, p: float, kappa: float,
           spurious: Sequence[int] | Sequence[str] | None, move: str, prior: float, mask_threshold: float,
           grow: int) -> MethodOutput:
    """Causal steering in a generator's latent space, masked and inpainted.

    Args:
        spurious: the spurious factors, as latent dims or names of ``generator.factor_dims`` (e.g. ``["colour"]``).
        move: ``"causal"`` (spurious dims held fixed: the explanation) or ``"spurious"`` (only they move: the
            audit's probe of shortcut reliance).
        steps, lr, lam, p, kappa, prior: as for the latent method (Adam on the free latent dims).
        mask_threshold, grow: how the mask is made from the generator's change (see ``change_mask``).
    """
    if move not in ("causal", "spurious"):
        raise ValueError(f"move must be 'causal' or 'spurious', got {move!r}")
    generator, classifier, target, x = problem.models["generator"], problem.classifier, problem.target, problem.images
    with torch.no_grad():
        z0 = generator.encode(x)
        base = generator.decode(z0)
    dims = spurious_dims(generator, spurious)
    if move == "spurious" and not dims:
        raise ValueError("move='spurious' needs spurious=[...] factors to move")
    if any(d >= z0.shape[1] or d < 0 for d in dims):
        raise ValueError(f"spurious dims {dims} out of range for a {z0.shape[1]}-d latent code")
    free = torch.ones(z0.shape[1], device=x.device)
    free[dims] = 0.0
    if move == "spurious":
        free = 1.0 - free

    def compose(z: torch.Tensor, fade: float = 1.0,
                rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        original, start = pick(x, rows), pick(base, rows)
        drawn = generator.decode(z)
        mask = change_mask((drawn - start).detach(), mask_threshold, grow)
        inside = drawn + (1.0 - fade) * (original - start)
        return (1 - mask) * original + mask * inside, mask

    def objective(delta: torch.Tensor, rows: torch.Tensor | None) -> StepOutcome:
        z = pick(z0, rows) + delta * free
        image, _ = compose(z, rows=rows)
        logits, wanted = classifier(image), pick(target, rows)
        loss = lam * F.cross_entropy(logits, wanted, reduction="none") + proximity_term(pick(x, rows), image, p)
        loss = loss + prior * z.pow(2).flatten(1).mean(1)
        return StepOutcome(loss, margin(logits, wanted) > kappa)

    run = run_batched(torch.zeros_like(z0), objective, steps=steps, lr=lr, progress=problem.progress,
                      should_stop=problem.should_stop)
    z_end = z0 + run.params * free
    path_codes = interpolate(z0, z_end, problem.frames)
    with torch.no_grad():
        counterfactual, mask = compose(z_end)
        fades = torch.linspace(0, 1, problem.frames).tolist()
        frames = torch.stack([compose(code, fade)[0] for code, fade in zip(path_codes, fades)])
        frames[0] = x
        frames[-1] = counterfactual
    return MethodOutput(counterfactual, frames, run.steps_used, cancelled=run.cancelled, extras={
        "mask": mask, "latent_start": z0, "latent_end": z_end, "spurious_dims": dims, "moved": move,
    })
