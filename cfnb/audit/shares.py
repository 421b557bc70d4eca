"""Where a counterfactual's edit goes: the share of each factor in the smallest edit that changes the decision.

The interventions of an audit ask "what if only this factor changed?". Counterfactuals ask the converse: left free
to change anything, what does the search change to move the decision to the other class? A classifier that relies
on a shortcut is moved most cheaply through it, so its counterfactuals put their change there.

- Attribute editors: ``cfnb.explain(method="attribute")`` over the editor's attribute vector; the share of
  attribute k is ``|delta_k| / sum_j |delta_j|`` of the attribute change (``extras["attribute_delta"]``).
- Generators with named latent factors (``factor_dims``, e.g. ``ColourGenerator``: shape + colour):
  ``cfnb.explain(method="causal")`` with every latent dim free (no factor held fixed, so the search is not told
  which factor to use), then the edit is split in pixel space: the part of factor F is
  ``mean |decode(z0 + (z1 - z0) * 1_F) - decode(z0)|``, the image change made by moving F's dims alone from the
  start code z0 to the counterfactual code z1, and its share is that part over the sum of all parts. Pixels are the
  common unit: latent dims of different factors have different scales (a VAE's N(0, 1) shape code, a colour in
  [0, 1]), so shares of latent distance would compare incommensurable numbers. We chose this over comparing the
  success of ``move="spurious"`` with ``move="causal"`` searches because success says only whether a factor *can*
  flip the decision (a large enough colour change off the training distribution may flip even an unbiased
  classifier), while the shares say which factor the classifier's decision is cheapest to move through, which is
  what reliance means.

A share is reported over the valid counterfactuals only (those that reached the other class); ``dominant`` is
whether the factor takes the largest share of an edit; ``sufficient`` whether the factor's part of the edit alone
(its latent dims moved from z0 to z1, or its attribute delta alone, the rest kept at the start) already makes the
classifier say the other class. Shares are in pixels or attribute units, which weigh factors by how much they
change the image; sufficiency asks the classifier instead, so it compares factors of any size: on colored MNIST the
colour part alone carries 27% of the biased model's counterfactuals and 3% of the unbiased model's, while their
pixel shares hardly differ (docs/audits.md).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..results import Counterfactuals


@dataclass
class CounterfactualBatch:
    """The counterfactuals of one batch, reduced to what the audit's statistics need.

    Attributes:
        components: names of the parts an edit is split into (the editor's attributes, or the generator's factors).
        shares: (n, P) share of each edit in each part (rows sum to 1; rows of edits that changed nothing are 0).
        changes: (n, P) signed change of each part (attribute deltas), or None for generator splits.
        valid: (n,) bool, the counterfactual reached its target.
        sufficient: (n, P) bool, the part's change alone makes the classifier predict the target.
        query_change: (n,) change of the probability of class 1 (the "query attribute" of a 2-class classifier).
        result: the ``Counterfactuals`` themselves (for the gallery).
    """

    components: list[str]
    shares: torch.Tensor
    changes: torch.Tensor | None
    valid: torch.Tensor
    sufficient: torch.Tensor
    query_change: torch.Tensor
    result: Counterfactuals


def counterfactual_targets(probabilities: torch.Tensor) -> torch.Tensor:
    """The class each counterfactual goes to: the other class of a 2-class model, else the runner-up class."""
    if probabilities.shape[1] == 2:
        return 1 - probabilities.argmax(1)
    return probabilities.topk(2, dim=1).indices[:, 1]


def _normalise(parts: torch.Tensor) -> torch.Tensor:
    total = parts.sum(1, keepdim=True)
    return torch.where(total > 1e-12, parts / total.clamp_min(1e-12), torch.zeros_like(parts))


def _query_change(result: Counterfactuals) -> torch.Tensor:
    column = 1 if result.probabilities.shape[1] > 1 else 0
    return result.probabilities[:, column] - result.original_probabilities[:, column]


def editor_counterfactuals(classifier: nn.Module, images: torch.Tensor, attributes: torch.Tensor, editor: nn.Module,
                           seed: int, options: Mapping[str, Any]) -> CounterfactualBatch:
    """Attribute counterfactuals towards the other class, split by attribute (see the module docstring)."""
    from ..engine import explain

    with torch.no_grad():
        target = counterfactual_targets(torch.softmax(classifier(images), 1))
    result = explain(classifier, images, target, method="attribute", editor=editor, attributes=attributes,
                     seed=seed, frames=2, progress=False, **dict(options))
    delta = result.extras["attribute_delta"].float()
    start = result.extras["attribute_start"].float()
    device = images.device
    drawer: Any = editor
    with torch.no_grad():
        content = drawer.encode(images)
        alone = [(start + delta * _one_hot(delta.shape[1], [k])).to(device) for k in range(delta.shape[1])]
        sufficient = torch.stack([classifier(drawer.decode(content, attributes_k)).argmax(1).cpu() == result.target
                                  for attributes_k in alone], 1)
    return CounterfactualBatch(list(result.extras["attribute_names"]), _normalise(delta.abs()), delta, result.valid,
                               sufficient, _query_change(result), result)


def _one_hot(size: int, dims: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    select = torch.zeros(size, device=device)
    select[list(dims)] = 1.0
    return select


def generator_components(generator: nn.Module,
                         extra: Mapping[str, Sequence[int]] | None = None) -> dict[str, list[int]]:
    """Named groups of latent dims to split an edit into: ``generator.factor_dims``, audited factors' own dims, and
    ``"other"`` for dims no factor names."""
    components = {name: list(dims) for name, dims in (getattr(generator, "factor_dims", None) or {}).items()}
    for name, dims in (extra or {}).items():
        components.setdefault(name, list(dims))
    latent_dim = getattr(generator, "latent_dim", None)
    if isinstance(latent_dim, int):
        named = {d for dims in components.values() for d in dims}
        rest = [d for d in range(latent_dim) if d not in named]
        if rest:
            components["other"] = rest
    return components


def generator_counterfactuals(classifier: nn.Module, images: torch.Tensor, generator: nn.Module,
                              components: Mapping[str, Sequence[int]], seed: int,
                              options: Mapping[str, Any]) -> CounterfactualBatch:
    """Causal-steering counterfactuals with every latent dim free, split by factor in pixel space."""
    from ..engine import explain

    if not components:
        raise ValueError("the generator names no latent factors (factor_dims) and no audited factor gives latent_dims: "
                         "the counterfactual edit cannot be split into factors")
    with torch.no_grad():
        target = counterfactual_targets(torch.softmax(classifier(images), 1))
    search = {"spurious": None, "move": "causal", **dict(options)}
    result = explain(classifier, images, target, method="causal", generator=generator, seed=seed, frames=2,
                     progress=False, **search)
    start, end = result.extras["latent_start"], result.extras["latent_end"]
    names = list(components)
    device = next((p.device for p in generator.parameters()), torch.device("cpu"))
    coder: Any = generator
    with torch.no_grad():
        z0, z1 = start.to(device), end.to(device)
        base = coder.decode(z0)
        changes, sufficient = [], []
        for name in names:
            alone = coder.decode(z0 + (z1 - z0) * _one_hot(z0.shape[1], components[name], device))
            changes.append((alone - base).abs().flatten(1).mean(1))
            sufficient.append(classifier(alone.to(images.device)).argmax(1).cpu() == result.target)
        parts = torch.stack(changes, 1).cpu()
    return CounterfactualBatch(names, _normalise(parts), None, result.valid, torch.stack(sufficient, 1),
                               _query_change(result), result)
