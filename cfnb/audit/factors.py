"""Interventions on one factor at a time: what an audit changes in each image, and what it compares against.

Two families, each producing, per batch, the images with one factor changed and the images to compare them with:

- ``EditorInterventions``: the factors are attribute names of an attribute editor (``edit``/``encode``/``decode``,
  ``attribute_names``). Each image's attributes are read (an attribute classifier, or given), the named attribute
  alone is flipped (0 <-> 1, mutually exclusive partners such as Blond_Hair / Black_Hair set to 0 when it is set to
  1), and the editor redraws the image. The comparison is the editor's redraw with the attributes unchanged, not the
  original image: an editor never reproduces a face exactly, and comparing with the original would count its
  reconstruction error as an effect of every factor.
- ``TransformInterventions``: the factors are ``Factor``s (or plain callables ``images -> images``) that change one
  factor alone, e.g. ``lambda x: data.set_shortcut(x, other_colour)``; compared against the images themselves, or
  against the factor's ``reference`` drawing (e.g. a generator's reconstruction for a latent move, see
  ``latent_factor``).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..methods.causal import spurious_dims

Intervention = Callable[..., torch.Tensor]


def _wants_index(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes the batch's positions in the data as a second argument (``fn(images, index)``)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.name == "index" for p in parameters):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def call_with_index(fn: Callable[..., torch.Tensor], images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Call ``fn(images)``, or ``fn(images, index)`` when it asks for the images' positions in the data."""
    return fn(images, index) if _wants_index(fn) else fn(images)


@dataclass(frozen=True)
class Factor:
    """One candidate factor and how to intervene on it alone.

    Attributes:
        name: the factor's name in reports.
        intervene: ``images -> images`` with this factor alone changed (or ``(images, index) -> images`` when it
            needs the images' positions in the audited data, e.g. a renderer that redraws from scene parameters).
        reference: ``images -> images`` drawn the same way with the factor unchanged (e.g. a generator's
            reconstruction); None compares with the images themselves. Give the same object to factors that share
            it: it is computed once per batch.
        read: ``images -> (n,)`` integer value of the factor in each image, for the group figures (accuracy per
            label x factor value); None when the values come from ``factor_values`` or are unknown.
        latent_dims: dims of a generator's latent code that hold this factor, for the counterfactual shares (None:
            the generator's ``factor_dims[name]`` when it has one).
        value_names: names of the values ``read`` gives (0, 1, ...), for reports.
    """

    name: str
    intervene: Intervention
    reference: Intervention | None = None
    read: Callable[..., torch.Tensor] | None = None
    latent_dims: Sequence[int] | None = None
    value_names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"a factor's name must be a non-empty str, got {self.name!r}")
        for role in ("intervene", "reference", "read"):
            value = getattr(self, role)
            if value is not None and not callable(value):
                raise TypeError(f"factor {self.name!r}: {role} must be callable (images -> ...), got "
                                f"{type(value).__name__}")
        if self.intervene is None:
            raise TypeError(f"factor {self.name!r} needs an intervene callable")


class Reconstruction:
    """``images -> generator.decode(generator.encode(images))``: the reference for latent-space interventions.

    Equal (and hashed) by generator, so factors of one generator share one reconstruction per batch.
    """

    def __init__(self, generator: nn.Module):
        self.generator: Any = generator

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator.decode(self.generator.encode(images))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reconstruction) and other.generator is self.generator

    def __hash__(self) -> int:
        return id(self.generator)


def latent_factor(generator: nn.Module, factor: str | Sequence[int], change: Callable[[torch.Tensor], torch.Tensor],
                  name: str | None = None, read: Callable[..., torch.Tensor] | None = None) -> Factor:
    """A factor moved inside a generator's latent subspace: ``decode(z with z[:, dims] = change(z[:, dims]))``.

    Args:
        generator: a model with ``encode``/``decode`` (and ``factor_dims`` to name factors).
        factor: a name of ``generator.factor_dims`` (e.g. ``"colour"``) or the latent dims themselves.
        change: maps the subspace's current values (n, d) to new ones (n, d).
        name: the factor's name in reports (default: ``factor`` when it is a name).
        read: optional ``images -> (n,)`` factor values for the group figures.

    Returns:
        A ``Factor`` compared against the generator's own reconstruction, so the generator's error is not counted.
    """
    for needed in ("encode", "decode"):
        if not callable(getattr(generator, needed, None)):
            raise TypeError(f"latent_factor needs a generator with encode() and decode(); "
                            f"{type(generator).__name__} lacks {needed}()")
    dims = spurious_dims(generator, [factor] if isinstance(factor, str) else list(factor))
    if name is None:
        if not isinstance(factor, str):
            raise ValueError("latent_factor: give name=... when the factor is given as latent dims")
        name = factor

    coder: Any = generator

    def intervene(images: torch.Tensor) -> torch.Tensor:
        z = coder.encode(images)
        moved = z.clone()
        moved[:, dims] = change(z[:, dims])
        return coder.decode(moved)

    return Factor(name, intervene, reference=Reconstruction(generator), read=read, latent_dims=dims)


@dataclass
class InterventionBatch:
    """One batch's interventions.

    Attributes:
        references: factor -> images the intervened ones are compared with (shared tensors where shared).
        edited: factor -> images with that factor alone changed.
        values: factor -> (n,) long current value of the factor, where known (for group figures).
        attributes: (n, K) the editor's attribute vectors (editor interventions only).
    """

    references: dict[str, torch.Tensor]
    edited: dict[str, torch.Tensor]
    values: dict[str, torch.Tensor] = field(default_factory=dict)
    attributes: torch.Tensor | None = None


def _check_drawn(name: str, drawn: Any, images: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.is_tensor(drawn):
        raise TypeError(f"factor {name!r}: the {what} must return a tensor of images, got {type(drawn).__name__}")
    if drawn.shape != images.shape:
        raise ValueError(
            f"factor {name!r}: the {what} changed the image shape from {tuple(images.shape)} to {tuple(drawn.shape)}; "
            "an intervention must change one factor and keep the images' shape (N, C, H, W)"
        )
    if not drawn.is_floating_point() or not torch.isfinite(drawn).all():
        raise ValueError(f"factor {name!r}: the {what} returned non-float or non-finite values")
    return drawn


class TransformInterventions:
    """Interventions given as callables or ``Factor`` objects (see the module docstring)."""

    kind = "transform"

    def __init__(self, factors: Sequence[Factor]):
        names = [f.name for f in factors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"factor names must be unique; repeated: {duplicates}")
        if not factors:
            raise ValueError("factors is empty: name at least one factor to audit")
        self.factors = list(factors)
        self.names = names

    def value_names(self) -> dict[str, list[str]]:
        """Factor -> names of its values, where the factor gives them."""
        return {f.name: list(f.value_names) for f in self.factors if f.value_names}

    def batch(self, images: torch.Tensor, index: torch.Tensor,
              attributes: torch.Tensor | None = None) -> InterventionBatch:
        """Each factor's reference and intervened images for one batch, and the values its ``read`` gives."""
        cache: dict[Any, torch.Tensor] = {}
        references, edited, values = {}, {}, {}
        for factor in self.factors:
            if factor.reference is None:
                references[factor.name] = images
            else:
                key = factor.reference
                if key not in cache:
                    cache[key] = _check_drawn(factor.name, call_with_index(factor.reference, images, index), images,
                                              "reference")
                references[factor.name] = cache[key]
            edited[factor.name] = _check_drawn(factor.name, call_with_index(factor.intervene, images, index), images,
                                               "intervention")
            if factor.read is not None:
                values[factor.name] = read_values(factor.name, call_with_index(factor.read, images, index), len(images))
        return InterventionBatch(references, edited, values)


def card_value(model: Any, key: str) -> Any:
    """``key`` from the registry card of a shipped model (its ``extra``, then its ``kwargs``), or None."""
    name = getattr(model, "cfnb_name", None)
    if not name:
        return None
    try:
        from ..models.registry import read_registry

        card = read_registry().get(name)
    except (OSError, ValueError):  # an unreadable registry only means "not declared"
        return None
    if card is None:
        return None
    return card.extra.get(key, card.kwargs.get(key))


def read_values(name: str, values: Any, n: int) -> torch.Tensor:
    """Check and convert one factor's values for a batch of ``n`` images to an (n,) long CPU tensor."""
    values = torch.as_tensor(values)
    if values.shape != (n,):
        raise ValueError(f"factor {name!r}: its values must be one per image, shape ({n},), got {tuple(values.shape)}")
    if values.is_floating_point():
        if not torch.equal(values, values.round()):
            raise ValueError(f"factor {name!r}: its values must be integers (categories), got fractional values")
    return values.long().cpu()


class EditorInterventions:
    """Flip one attribute at a time through an attribute editor (see the module docstring).

    Args:
        editor: a model with ``edit(images, attributes)``, ``encode``, ``decode(content, attributes)`` and
            ``attribute_names``.
        names: the attributes to audit (a subset of ``editor.attribute_names``).
        attribute_classifier: a multi-label model whose sigmoid outputs are the images' attributes (with
            ``attribute_names``, or in the editor's order); not needed when attributes come with the data.
        exclusive: groups of mutually exclusive attributes: setting one to 1 sets the others of its group to 0.
    """

    kind = "editor"

    def __init__(self, editor: nn.Module, names: Sequence[str], attribute_classifier: nn.Module | None = None,
                 exclusive: Sequence[Sequence[str]] = ()):
        missing = [a for a in ("encode", "decode") if not callable(getattr(editor, a, None))]
        known = list(getattr(editor, "attribute_names", None) or [])
        if missing or not known:
            lacks = ", ".join([m + "()" for m in missing] + ([] if known else ["attribute_names"]))
            raise TypeError(f"an audit over attribute names needs an editor with encode(), decode() and "
                            f"attribute_names; {type(editor).__name__} lacks {lacks}")
        names = list(names)
        if not names:
            raise ValueError("factors is empty: name at least one of the editor's attributes")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"the editor does not know the factor(s) {unknown}; its attributes are: "
                             f"{', '.join(known)}")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"factor names must be unique; repeated: {duplicates}")
        groups = [list(g) for g in exclusive]
        for group in groups:
            strangers = [a for a in group if a not in known]
            if strangers:
                raise ValueError(f"exclusive group {group} names attribute(s) {strangers} the editor does not know")
        self.editor = editor
        self.names = names
        self.attribute_names = known
        self.attribute_classifier = attribute_classifier
        self.exclusive = groups

    def value_names(self) -> dict[str, list[str]]:
        """Factor -> names of its values: ``not <attribute>`` (0) and ``<attribute>`` (1)."""
        return {name: [f"not {name}", name] for name in self.names}

    def read_attributes(self, images: torch.Tensor) -> torch.Tensor:
        """(n, K) 0/1 attributes in the editor's order, read by the attribute classifier."""
        reader = self.attribute_classifier
        if reader is None:
            raise TypeError(
                "an editor audit needs each image's current attributes: pass attribute_classifier=<multi-label model "
                "over the editor's attributes>, attributes=(N, K) tensor, or data whose batches carry attributes"
            )
        logits = reader(images)
        reader_names = list(getattr(reader, "attribute_names", None) or card_value(reader, "attribute_names") or [])
        if not reader_names:
            if logits.shape[1] != len(self.attribute_names):
                raise ValueError(f"the attribute classifier gives {logits.shape[1]} outputs without attribute_names; "
                                 f"the editor has {len(self.attribute_names)} attributes")
            reader_names = self.attribute_names
        absent = [n for n in self.attribute_names if n not in reader_names]
        if absent:
            raise ValueError(f"the attribute classifier does not predict {absent}; it knows {reader_names}")
        columns = [reader_names.index(n) for n in self.attribute_names]
        return (torch.sigmoid(logits[:, columns]) > 0.5).to(images.dtype)

    def flipped(self, attributes: torch.Tensor, name: str) -> torch.Tensor:
        """Attributes with ``name`` flipped (0 <-> 1); its exclusive partners set to 0 where it becomes 1."""
        k = self.attribute_names.index(name)
        out = attributes.clone()
        out[:, k] = 1 - attributes[:, k].round()
        for group in self.exclusive:
            if name in group:
                turned_on = out[:, k] > 0.5
                for partner in group:
                    if partner != name:
                        out[turned_on, self.attribute_names.index(partner)] = 0
        return out

    def batch(self, images: torch.Tensor, index: torch.Tensor,
              attributes: torch.Tensor | None = None) -> InterventionBatch:
        """The editor's redraw of each image (the reference) and one redraw per audited attribute flipped."""
        if attributes is None:
            attributes = self.read_attributes(images)
        attributes = attributes.to(images.device, images.dtype)
        if attributes.shape != (len(images), len(self.attribute_names)):
            raise ValueError(f"attributes must be ({len(images)}, {len(self.attribute_names)}) in the editor's order "
                             f"({', '.join(self.attribute_names)}), got {tuple(attributes.shape)}")
        editor: Any = self.editor
        content = editor.encode(images)
        reference = editor.decode(content, attributes)
        if reference.shape != images.shape:
            raise ValueError(
                f"the editor draws images of shape {tuple(reference.shape[1:])} but the audited images (the "
                f"classifier's input) are {tuple(images.shape[1:])}: editor and classifier must work at the same "
                "image size; resize the images or use an editor trained at the classifier's size"
            )
        edited = {name: editor.decode(content, self.flipped(attributes, name)) for name in self.names}
        values = {name: attributes[:, self.attribute_names.index(name)].round().long().cpu() for name in self.names}
        return InterventionBatch({name: reference for name in self.names}, edited, values, attributes)


def resolve_factors(factors: Any, editor: nn.Module | None, attribute_classifier: nn.Module | None,
                    exclusive: Sequence[Sequence[str]] | None) -> TransformInterventions | EditorInterventions:
    """Turn the ``factors`` argument of ``cfnb.audit.spurious`` into an interventions object."""
    if isinstance(factors, str):
        factors = [factors]
    if isinstance(factors, Mapping):
        built = []
        for name, value in factors.items():
            if isinstance(value, Factor):
                built.append(value if value.name == name else Factor(name, value.intervene, value.reference,
                                                                     value.read, value.latent_dims, value.value_names))
            elif callable(value):
                built.append(Factor(str(name), value))
            else:
                raise TypeError(f"factor {name!r}: expected an intervention callable (images -> images) or a Factor, "
                                f"got {type(value).__name__}")
        return TransformInterventions(built)
    if isinstance(factors, Sequence) and factors and all(isinstance(f, Factor) for f in factors):
        return TransformInterventions(list(factors))
    if isinstance(factors, Sequence) and all(isinstance(f, str) for f in factors):
        if editor is None:
            raise TypeError(
                f"factors given as names {list(factors)} need an attribute editor (editor=...); without one, give a "
                "mapping {name: intervention callable images -> images}"
            )
        if exclusive is None:
            exclusive = getattr(editor, "exclusive", None) or default_exclusive(editor)
        return EditorInterventions(editor, list(factors), attribute_classifier, exclusive)
    raise TypeError("factors must be attribute names of the editor, a mapping {name: callable images -> images}, or a "
                    f"list of cfnb.audit.Factor; got {type(factors).__name__}")


def default_exclusive(editor: nn.Module) -> list[list[str]]:
    """Mutually exclusive attribute groups documented by ``cfnb.data.faces`` that this editor has (if any)."""
    try:
        from ..data import faces
    except ImportError:
        return []
    # faces.with_attribute documents that Blond_Hair and Black_Hair are one hair colour; the module keeps the pair in
    # _HAIR (a public EXCLUSIVE constant is preferred when it exists).
    groups = getattr(faces, "EXCLUSIVE", None) or [getattr(faces, "_HAIR", ())]
    names = set(getattr(editor, "attribute_names", []))
    kept = [[a for a in group if a in names] for group in groups]
    return [group for group in kept if len(group) >= 2]
