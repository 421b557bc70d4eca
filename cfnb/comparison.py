"""One method, one image batch and one target on two to four classifiers: the counterfactual each one needs.

``compare_classifiers`` checks that the classifiers can be compared (same classes, images they all read, a method
every one of them supports), runs ``cfnb.explain`` on each, and returns a ``Comparison``: one ``Counterfactuals``
per classifier plus what every classifier predicts on every other classifier's counterfactual. A classifier that
learned a shortcut (e.g. ``colored-mnist-biased``) and one that did not (``colored-mnist-unbiased``) then differ
visibly on the same digit. ``cfnb.widgets.ComparePanel`` shows it side by side.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import methods
from .checks import check_classifier, check_images, class_names_of, expected_channels
from .forward import probabilities
from .progress import Progress, check_progress
from .results import Counterfactuals

MIN_CLASSIFIERS, MAX_CLASSIFIERS = 2, 4
HELPER_ROLES = ("generator", "decoder", "editor", "attribute_classifier")

ExplainFn = Callable[..., Counterfactuals]
Classifiers = Mapping[str, nn.Module] | Sequence[nn.Module]


# --- checks ----------------------------------------------------------------------------------------------------------
def named_classifiers(classifiers: Classifiers) -> dict[str, nn.Module]:
    """The classifiers by name: a mapping's keys, else each model's shipped name (``cfnb_name``, set by
    ``cfnb.models.load``), else "classifier 1", "classifier 2"... (a repeated name gets " (2)" appended).

    Raises:
        TypeError: not a list or dict of ``nn.Module`` classifiers.
        ValueError: fewer than 2 or more than 4 classifiers.
    """
    if isinstance(classifiers, nn.Module):
        raise TypeError("classifiers must be a list (or a name -> model dict) of 2 to 4 classifiers, got one "
                        f"{type(classifiers).__name__}; pass [classifier_a, classifier_b]")
    if isinstance(classifiers, Mapping):
        pairs = [(str(name), model) for name, model in classifiers.items()]
    elif isinstance(classifiers, Sequence) and not isinstance(classifiers, str):
        pairs = [(str(getattr(model, "cfnb_name", None) or f"classifier {k + 1}"), model)
                 for k, model in enumerate(classifiers)]
    else:
        raise TypeError("classifiers must be a list (or a name -> model dict) of 2 to 4 classifiers, got "
                        f"{type(classifiers).__name__}")
    count = len(pairs)
    if count < MIN_CLASSIFIERS:
        raise ValueError(f"a comparison needs {MIN_CLASSIFIERS} to {MAX_CLASSIFIERS} classifiers, got {count}; pass "
                         "at least two (e.g. [biased, unbiased]), or use cfnb.ExplainerPanel for one classifier")
    if count > MAX_CLASSIFIERS:
        raise ValueError(f"a comparison needs {MIN_CLASSIFIERS} to {MAX_CLASSIFIERS} classifiers, got {count}; "
                         f"compare at most {MAX_CLASSIFIERS} side by side (split them into several comparisons)")
    named: dict[str, nn.Module] = {}
    for name, model in pairs:
        try:
            check_classifier(model)
        except TypeError as error:
            raise TypeError(f"classifier {name!r}: {error}") from None
        unique, k = name, 2
        while unique in named:
            unique, k = f"{name} ({k})", k + 1
        named[unique] = model
    return named


def check_channels(classifiers: Mapping[str, nn.Module], images: torch.Tensor, name: str = "images") -> None:
    """Raise ``ValueError`` naming the first classifier whose declared input channels differ from the images'."""
    for label, model in classifiers.items():
        wanted = expected_channels(model)
        if wanted is not None and images.shape[1] != wanted:
            raise ValueError(f"classifier {label!r} expects {wanted} channel(s), {name} have {images.shape[1]} "
                             f"(shape {tuple(images.shape)}); compare classifiers that read the same images")


def shared_class_names(classifiers: Mapping[str, nn.Module], images: torch.Tensor,
                       class_names: Sequence[str] | None = None) -> list[str]:
    """The K class names every classifier shares, after checking they output K classes with the same names.

    The class count comes from each classifier's output on ``images[:1]``; names from ``class_names`` (for all),
    else each classifier's ``class_names`` attribute (a classifier without one takes the others').

    Raises:
        ValueError: the classifiers output different numbers of classes, or name their classes differently.
    """
    counts = {name: int(probabilities(model, images[:1]).shape[-1]) for name, model in classifiers.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{name!r} {k}" for name, k in counts.items())
        raise ValueError(f"the classifiers output different numbers of classes ({listed}); compare classifiers of "
                         "one task, with the same classes")
    num_classes = next(iter(counts.values()))
    if class_names is not None:
        return class_names_of(next(iter(classifiers.values())), num_classes, class_names)
    declared = {name: [str(c) for c in getattr(model, "class_names", None) or []]
                for name, model in classifiers.items()}
    declared = {name: names for name, names in declared.items() if names}
    distinct = {tuple(names) for names in declared.values()}
    if len(distinct) > 1:
        listed = "; ".join(f"{name!r}: {', '.join(names[:6])}{'...' if len(names) > 6 else ''}"
                           for name, names in declared.items())
        raise ValueError(f"the classifiers name their classes differently ({listed}); compare classifiers of the "
                         "same classes, or pass class_names=[...] if they only spell the same classes differently")
    first = next(iter(declared.values()), None)
    return class_names_of(next(iter(classifiers.values())), num_classes, first)


def helpers_for(classifiers: Mapping[str, nn.Module], helpers: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each classifier's helper models: a helper given as one model is shared by all; as a list or tuple, it holds
    one model (or None) per classifier, in order (e.g. each classifier's own Mirror-CFE decoder).

    Raises:
        TypeError: an unknown helper role.
        ValueError: a list of helpers whose length is not the number of classifiers.
    """
    unknown = sorted(set(helpers) - set(HELPER_ROLES))
    if unknown:
        raise TypeError(f"unknown helper model(s) {unknown}; the roles are {', '.join(HELPER_ROLES)}")
    names = list(classifiers)
    per: dict[str, dict[str, Any]] = {name: {} for name in names}
    for role, given in helpers.items():
        if given is None:
            continue
        if isinstance(given, (list, tuple)):
            if len(given) != len(names):
                raise ValueError(f"{role}= holds {len(given)} models for {len(names)} classifiers; give one per "
                                 f"classifier (None where it has none), or one model for all")
            for name, model in zip(names, given):
                if model is not None:
                    per[name][role] = model
        else:
            for name in names:
                per[name][role] = given
    return per


def unsupported(method: str, classifiers: Mapping[str, nn.Module],
                helpers: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why ``method`` cannot run on every classifier with the helper models given (None when it can).

    Finds nothing it would have to load: a helper a method can find for itself (a shipped decoder) counts as there.
    """
    spec = methods.get(method)
    for name, model in classifiers.items():
        if spec.check_classifier is not None:
            try:
                spec.check_classifier(model)
            except (TypeError, ValueError) as error:
                return f"classifier {name!r} does not support method {method!r}: {error}"
        why = spec.missing(model, helpers.get(name, {}))
        if why is not None:
            return f"for classifier {name!r}, {why}"
    return None


def comparable_methods(classifiers: Mapping[str, nn.Module], helpers: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The registered methods that can run on every classifier with the helper models given, in registry order."""
    return [m.name for m in methods.available() if unsupported(m.name, classifiers, helpers) is None]


def check_method(method: str, classifiers: Mapping[str, nn.Module], helpers: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise ``ValueError`` when ``method`` cannot run on every classifier; the message names the classifier, the
    reason and the methods that can."""
    why = unsupported(method, classifiers, helpers)
    if why is not None:
        possible = comparable_methods(classifiers, helpers)
        offer = f"methods every classifier supports: {', '.join(possible)}" if possible else (
            "no method runs on every classifier with the helper models given")
        raise ValueError(f"{why}; {offer}")


def default_explain() -> ExplainFn:
    """``cfnb.explain``, imported when first needed (the engine imports every method)."""
    from .engine import explain

    return explain


# --- the comparison --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """The counterfactuals of one method for one batch of images on several classifiers.

    Attributes:
        names: the classifiers' names, in order.
        results: one ``Counterfactuals`` per classifier (same images, targets, method and options).
        cross_predictions: (M, M, N) long: ``[i, j, n]`` is the class classifier ``j`` predicts on classifier
            ``i``'s counterfactual of image ``n`` (the diagonal is each result's own ``prediction``).
        method: the method's name.
        class_names: the classes every classifier shares.
    """

    names: tuple[str, ...]
    results: tuple[Counterfactuals, ...]
    cross_predictions: torch.Tensor
    method: str
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        """The number of images."""
        return len(self.results[0])

    def __getitem__(self, name: str) -> Counterfactuals:
        """The result of the classifier called ``name``."""
        if name not in self.names:
            raise KeyError(f"no classifier named {name!r}; the comparison holds {', '.join(self.names)}")
        return self.results[self.names.index(name)]

    @property
    def valid(self) -> torch.Tensor:
        """(M, N) bool: each classifier's counterfactual reached the target for that classifier."""
        return torch.stack([result.valid for result in self.results])

    @property
    def cancelled(self) -> bool:
        """The run was stopped before every search had finished."""
        return any(bool(result.settings.get("cancelled")) for result in self.results)

    @property
    def settings(self) -> dict[str, Any]:
        """The first result's settings, with ``cancelled`` true when any search was stopped."""
        return {**self.results[0].settings, "cancelled": self.cancelled}

    @property
    def steps_used(self) -> torch.Tensor:
        """(N,) the most steps any classifier's search used per image."""
        return torch.stack([result.steps_used for result in self.results]).amax(0)

    @property
    def seconds(self) -> float:
        """Time of all the searches together."""
        return sum(result.seconds for result in self.results)


def compare_classifiers(
    classifiers: Classifiers,
    images: torch.Tensor,
    target: int | str | Sequence[int] | torch.Tensor,
    method: str = "latent",
    *,
    generator: Any = None,
    decoder: Any = None,
    editor: Any = None,
    attribute_classifier: Any = None,
    class_names: Sequence[str] | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    frames: int = 24,
    progress: Progress = False,
    should_stop: Callable[[], bool] | None = None,
    explain_fn: ExplainFn | None = None,
    on_result: Callable[[int, Counterfactuals], None] | None = None,
    **options: Any,
) -> Comparison:
    """The counterfactuals of ``method`` on each of 2-4 classifiers for the same images and target.

    Args:
        classifiers: 2 to 4 classifiers of the same classes, as a list or a name -> model dict.
        images: (N, C, H, W) in [0, 1], with the channels every classifier expects.
        target: one class index or name for all images, or one index per image.
        method: a registered method every classifier supports (``cfnb.methods.available()``).
        generator / decoder / editor / attribute_classifier: helper models: one model for all classifiers, or a
            list with one per classifier (None where a classifier has none; e.g. each one's Mirror-CFE decoder).
            Helpers a method finds for itself (the shipped decoder of a shipped classifier) are found per classifier.
        class_names: K names for all classifiers (default: theirs, which must agree).
        device / seed / frames: as for ``cfnb.explain``; every classifier's search gets the same seed.
        progress: as for ``cfnb.explain``; a callable sees the searches as one: ``(done, total)`` over all of them.
        should_stop: polled every step; True ends the running search with what it has, and the classifiers after
            it return their starting point at once (their results say ``settings["cancelled"]``).
        explain_fn: the function that explains one classifier (default ``cfnb.explain``).
        on_result: called as ``on_result(k, result)`` as soon as classifier ``k``'s search has ended (a panel shows
            each column as it comes).
        **options: the method's options, the same for every classifier.

    Returns:
        A ``Comparison`` (results on the CPU, in the classifiers' order).

    Raises:
        TypeError / ValueError: fewer than 2 or more than 4 classifiers; classifiers with different class counts or
        class names; images that are not (N, C, H, W) in [0, 1] or whose channels a classifier does not read; a
        method a classifier does not support or without the helper models it needs; options the method does not
        take or out of their range.
    """
    named = named_classifiers(classifiers)
    check_images(images)
    check_channels(named, images)
    check_progress(progress)
    per = helpers_for(named, {"generator": generator, "decoder": decoder, "editor": editor,
                              "attribute_classifier": attribute_classifier})
    check_method(method, named, per)
    methods.get(method).resolve(options)  # bad options fail before any search
    names = shared_class_names(named, images, class_names)
    run = explain_fn if explain_fn is not None else default_explain()
    results: list[Counterfactuals] = []
    totals: list[int] = [0] * len(named)
    for k, (name, model) in enumerate(named.items()):
        step_progress: Progress = progress
        if callable(progress):
            step_progress = _combined(progress, k, len(named), totals)
        results.append(run(model, images, target, method=method, **per[name], device=device, seed=seed,
                           frames=frames, progress=step_progress, should_stop=should_stop, class_names=names,
                           **options))
        if on_result is not None:
            on_result(k, results[-1])
    cross = cross_predictions(list(named.values()), results)
    return Comparison(tuple(named), tuple(results), cross, method, tuple(names))


def _combined(progress: Callable[[int, int], None], k: int, count: int,
              totals: list[int]) -> Callable[[int, int], None]:
    """Search ``k``'s ``(done, total)`` as progress over all ``count`` searches (later ones assumed as long)."""
    def report(done: int, total: int) -> None:
        totals[k] = total
        before = sum(totals[:k])
        progress(before + done, before + total * (count - k))
    return report


def cross_predictions(classifiers: Sequence[nn.Module], results: Sequence[Counterfactuals]) -> torch.Tensor:
    """(M, M, N): the class classifier ``j`` predicts on ``results[i]``'s counterfactuals, for every ``i``, ``j``."""
    rows = []
    for result in results:
        rows.append(torch.stack([probabilities(model, result.counterfactual).argmax(-1).cpu()
                                 for model in classifiers]))
    return torch.stack(rows)
