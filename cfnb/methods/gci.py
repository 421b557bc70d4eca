"""Generative Counterfactual Introspection (Liu et al., GlobalSIP 2019).

``min_A' λ·CE(C(G(A')), t) + ‖x − G(A')‖_p``: search the input of a generator instead of the pixels.
- ``latent`` (unknown attributes): A' is the latent code z' of a generator with ``encode``/``decode`` (a VAE).
- ``attribute`` (known attributes): A' is the attribute vector a' fed to an attribute-conditioned editor,
  ``G(x; a') = editor.decode(editor.encode(x), a')``; the result says which attributes moved and by how much.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from . import common_options as common
from .base import (
    MethodOutput,
    Problem,
    StepOutcome,
    decode_path,
    interpolate,
    jitter,
    margin,
    pick,
    proximity_term,
    run_batched,
)
from .registry import Helper, Option, register

ONE_CALL_ROWS = 16  # up to this many images, the plain and the jittered drawing share one classifier call
GCI = "Liu, Kailkhura, Loveland, Han: Generative Counterfactual Introspection, GlobalSIP 2019"


@register("latent", summary="GCI over a generator's latent code", reference=GCI,
          helpers=[Helper("generator", ("encode", "decode"), "a generator with encode() and decode(), e.g. a VAE")],
          options=[common.steps(100), common.learning_rate(0.8), common.lam(10.0), common.norm(1.0),
                   common.kappa(8.0),
                   Option("prior", "float", 0.01, "weight of mean(z'^2), the VAE's standard-normal prior", low=0,
                          span=(0.0, 1.0)),
                   Option("cycle", "float", 10.0, "weight of mean((E(G(z')) − z')^2): stay where the encoder agrees",
                          low=0, span=(0.0, 50.0)),
                   Option("noise", "float", 0.0, "std of Gaussian noise the edit must survive during the search",
                          low=0, span=(0.0, 0.5)),
                   Option("shift", "int", 2, "random shifts (pixels) the edit must survive during the search", low=0,
                          span=(0, 4)),
                   common.residual("G(E(x))")])
def latent(problem: Problem, *, steps: int, lr: float, lam: float, p: float, kappa: float, prior: float,
           cycle: float, noise: float, shift: int, residual: bool) -> MethodOutput:
    """GCI over a generator's latent code, starting from the encoder's ``z = E(x)``.

    Defaults are chosen on the selection set of ``benchmarks/bench_faithfulness.py`` (mnist-classifier + mnist-vae;
    docs/benchmarks.md): a large margin, the cycle term and an edit that must survive shifts of 2 pixels make it
    convincing to independent classifiers; a bare flip (kappa 0) fools only the classifier.

    Args:
        steps, lr: Adam steps and step size on z'.
        lam: weight λ of the cross-entropy towards the target.
        p: norm of the proximity term (mean per pixel of |x − G(z')|^p).
        kappa: stop a sample once its target logit leads every other by ``kappa``. A margin, not a bare flip, is
            what makes the edit convincing to a second classifier (see docs/benchmarks.md).
        prior: weight of ``mean(z'^2)``, the VAE's standard-normal prior, which keeps z' on the generator's manifold.
        cycle: weight of ``mean((E(G(z')) − z')^2)``: codes the encoder would not give back for their own drawing
            are off the generator's manifold, and that is where edits that fool only this classifier live.
        noise, shift: during the search the cross-entropy is taken on G(z') with Gaussian noise of this std and
            random shifts of up to ``shift`` pixels (``cfnb.methods.base.jitter``), so the edit must survive them.
        residual: add back ``x − G(E(x))`` so the counterfactual keeps details the generator cannot draw.
    """
    generator, classifier, target, x = problem.models["generator"], problem.classifier, problem.target, problem.images
    with torch.no_grad():
        z0 = generator.encode(x)
        rest = (x - generator.decode(z0)) if residual else torch.zeros_like(x)

    def render(z: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        image = generator.decode(z) + pick(rest, rows)
        return image.clamp(0, 1) if residual else image

    def objective(z: torch.Tensor, rows: torch.Tensor | None) -> StepOutcome:
        image, wanted = render(z, rows), pick(target, rows)
        if not (noise > 0 or shift > 0):
            logits = seen = classifier(image)
        elif len(image) <= ONE_CALL_ROWS:  # small batches: one call for both, the call's fixed cost dominates
            logits, seen = classifier(torch.cat([image, jitter(image, shift, noise)])).chunk(2)
        else:  # large ones: two calls, a doubled batch is slower than two (measured 11 against 15 cf/s at 256)
            logits, seen = classifier(image), classifier(jitter(image, shift, noise))
        loss = lam * F.cross_entropy(seen, wanted, reduction="none") + proximity_term(pick(x, rows), image, p)
        loss = loss + prior * z.pow(2).flatten(1).mean(1)
        if cycle > 0:
            loss = loss + cycle * (generator.encode(image) - z).pow(2).flatten(1).mean(1)
        return StepOutcome(loss, margin(logits, wanted) > kappa)

    run = run_batched(z0, objective, steps=steps, lr=lr, progress=problem.progress, should_stop=problem.should_stop)
    path = decode_path(render, interpolate(z0, run.params, problem.frames))
    return MethodOutput(path[-1], path, run.steps_used, extras={"latent_start": z0, "latent_end": run.params},
                        cancelled=run.cancelled)


def editable_mask(names: Sequence[str], editable: Sequence[str] | None, device: torch.device) -> torch.Tensor:
    """(K,) 1 for the attributes allowed to move, 0 for the others (all move when ``editable`` is None)."""
    if editable is None:
        return torch.ones(len(names), device=device)
    unknown = [a for a in editable if a not in names]
    if unknown:
        raise ValueError(f"unknown attribute(s) {unknown} for this editor; it knows: {', '.join(names)}")
    return torch.tensor([1.0 if n in editable else 0.0 for n in names], device=device)


def starting_attributes(problem: Problem, attributes: torch.Tensor | None, names: Sequence[str]) -> torch.Tensor:
    """The attribute vector a of each image: given, or read by an attribute classifier.

    The classifier is ``attribute_classifier`` from the call's models, or the multi-label model behind an
    ``AttributeClassifier`` view when it covers the editor's attributes.
    """
    x = problem.images
    if attributes is not None:
        attributes = torch.as_tensor(attributes, dtype=x.dtype, device=x.device)
        if attributes.shape != (x.shape[0], len(names)):
            raise ValueError(f"attributes must be ({x.shape[0]}, {len(names)}) for this editor, "
                             f"got {tuple(attributes.shape)}")
        return attributes
    reader = problem.models.get("attribute_classifier")
    reader_names = list(getattr(reader, "attribute_names", names)) if reader is not None else []
    classifier: Any = problem.classifier  # an AttributeClassifier view when it has ``multilabel``
    if reader is None and hasattr(classifier, "multilabel"):
        reader, reader_names = classifier.multilabel, list(classifier.attribute_names)
    if reader is None:
        raise TypeError(
            "method='attribute' needs the images' current attributes: pass attributes=(N, K) tensor, or "
            "attribute_classifier=<multi-label classifier over the editor's attributes>"
        )
    missing = [n for n in names if n not in reader_names]
    if missing:
        raise ValueError(f"the attribute classifier does not predict {missing}; it knows {reader_names}")
    with torch.no_grad():
        probs = torch.sigmoid(reader(x))
    return probs[:, [reader_names.index(n) for n in names]].round()


@register("attribute", summary="GCI over an editor's attribute vector", reference=GCI,
          helpers=[Helper("editor", ("encode", "decode"),
                          "an attribute editor with encode(), decode(content, attributes) and attribute_names"),
                   Helper("attribute_classifier", (), "a multi-label model that reads the images' attributes",
                          required=False)],
          options=[common.steps(100), common.learning_rate(0.2), common.lam(1.0), common.norm(1.0),
                   common.kappa(2.0),
                   Option("sparsity", "float", 0.02, "L1 weight on the attribute change: few attributes move", low=0,
                          span=(0.0, 1.0)),
                   Option("editable", "any", None, "attribute names allowed to move (default: all)"),
                   Option("attributes", "any", None, "(N, K) the images' attributes (default: read by a classifier)"),
                   common.residual("the editor's redraw")])
def attribute(problem: Problem, *, steps: int, lr: float, lam: float, p: float, kappa: float, sparsity: float,
              editable: Sequence[str] | None, attributes: torch.Tensor | None, residual: bool) -> MethodOutput:
    """GCI over an attribute vector: ``min_a' λ·CE(C(G(x; a')), t) + ‖x − G(x; a')‖_p + sparsity·‖a' − a‖_1``.

    a' is kept in [0, 1] through a sigmoid and starts from the image's attributes ``a``. The extras
    ``attribute_delta`` (N, K) and ``attribute_names`` say which attributes moved and by how much.

    Args:
        editable: attribute names allowed to move (default: all).
        attributes: the images' current attributes (default: read by the attribute classifier, see
            ``starting_attributes``).
        sparsity: L1 weight on the attribute change, so the explanation names few attributes.
        residual: add back ``x − G(x; a)`` to keep details the editor cannot redraw.
    """
    editor, classifier, target, x = problem.models["editor"], problem.classifier, problem.target, problem.images
    names = list(getattr(editor, "attribute_names", []))
    if not names:
        raise TypeError("method='attribute' needs an editor with an `attribute_names` list")
    a0 = starting_attributes(problem, attributes, names)
    mask = editable_mask(names, editable, x.device)
    with torch.no_grad():
        content = editor.encode(x)
        rest = (x - editor.decode(content, a0)) if residual else torch.zeros_like(x)
    start_logit = torch.logit(a0.clamp(0.05, 0.95))

    def to_attributes(s: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        start = pick(a0, rows)
        return start + mask * (torch.sigmoid(s) - start)

    def render(a: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        image = editor.decode(pick(content, rows), a) + pick(rest, rows)
        return image.clamp(0, 1) if residual else image

    def objective(s: torch.Tensor, rows: torch.Tensor | None) -> StepOutcome:
        a, wanted = to_attributes(s, rows), pick(target, rows)
        image = render(a, rows)
        logits = classifier(image)
        loss = lam * F.cross_entropy(logits, wanted, reduction="none") + proximity_term(pick(x, rows), image, p)
        loss = loss + sparsity * (a - pick(a0, rows)).abs().sum(1)
        return StepOutcome(loss, margin(logits, wanted) > kappa)

    run = run_batched(start_logit, objective, steps=steps, lr=lr, progress=problem.progress,
                      should_stop=problem.should_stop)
    with torch.no_grad():
        a_end = to_attributes(run.params)
    path = decode_path(render, interpolate(a0, a_end, problem.frames))
    return MethodOutput(path[-1], path, run.steps_used, cancelled=run.cancelled, extras={
        "attribute_names": names, "attribute_start": a0, "attribute_end": a_end, "attribute_delta": a_end - a0,
    })

