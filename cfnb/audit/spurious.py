"""``cfnb.audit.spurious``: which factors does a classifier rely on, how much, and for which classes?

For each candidate factor, every image is intervened on that factor alone (``cfnb.audit.factors``) and the
classifier's decision is compared before and after: the flip rate is the factor's reliance score. Beside it:
the mean drop of the predicted probability, the flip rate per class and per (label, factor value) group, accuracy
per group and the worst group's, and counterfactuals towards the other class split by factor
(``cfnb.audit.shares``) with the correlation difference between their co-changes and the data's correlations.

Everything streams: each batch updates running sums with Poisson-bootstrap replicates (``cfnb.audit.statistics``)
and only the gallery's few most telling pairs are kept, so memory does not grow with the number of images.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..engine import class_names_of, frozen
from ..validation import check_images, expected_channels, model_device
from .factors import EditorInterventions, TransformInterventions, card_value, read_values, resolve_factors
from .report import AuditReport, GalleryPair
from .shares import CounterfactualBatch, editor_counterfactuals, generator_components, generator_counterfactuals
from .statistics import Estimate, PoissonWeights, RunningCorrelation, RunningMean, TopK, difference
from .stream import data_attribute_names, data_size, reorder_attributes, stream

REDRAW_AGREEMENT_WARNING = 0.95
"""Below this share of decisions kept on the unchanged redraws, the summary warns that flips are partly artefacts."""

FLAG_THRESHOLD = 0.2
"""A factor is flagged when changing it alone flips at least this share of decisions.

Set from measurement (docs/audits.md): unbiased twins score at most 0.01 on the planted factors (colour, patch,
Blond_Hair) under exact interventions, the biased ones 0.67 (colour) and 0.29 (patch); 0.2 sits between. A
partial shortcut (faces-smiling-biased: Blond_Hair 0.13) stays under it: read the scores, not only the flags.
"""


COUNTERFACTUAL_DEFAULTS: dict[str, Any] = {"kappa": 1.0}
"""Options the audit's counterfactual searches start from (``counterfactual_options`` override them).

The audit needs where the smallest edit crosses the decision, not a picture convincing enough to show alone:
a margin of 1 logit instead of the methods' default 4 (causal) / 2 (attribute) stops most searches within a few
steps (median 6 instead of all 150 on colored-mnist-biased), which makes the counterfactual part of an audit about
as fast as its interventions.
"""


def _progress_bar(progress: bool | Callable[[int, int], None] | None, total: int | None):
    """A callable ``update(done, total)`` and a closer: tqdm.auto (notebook widget or text), a callback, or nothing."""
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return (lambda done, total: None), lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="img", desc="audit", leave=True)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def _declared_size(model: Any) -> tuple[int, int] | None:
    """The image size (H, W) a model declares: its ``image_size`` attribute, or its registry card's."""
    size = getattr(model, "image_size", None)
    if size is None:
        size = card_value(model, "image_size")
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    return tuple(int(s) for s in size)  # type: ignore[return-value]


def _check_sizes(images: torch.Tensor, classifier: nn.Module, editor: nn.Module | None) -> None:
    side = tuple(images.shape[-2:])
    declared = _declared_size(classifier)
    if declared is not None and declared != side:
        raise ValueError(f"the classifier works at {declared[0]}x{declared[1]} but the audited images are "
                         f"{side[0]}x{side[1]}")
    if editor is not None:
        drawn = _declared_size(editor)
        if drawn is not None and drawn != side:
            raise ValueError(
                f"the editor draws {drawn[0]}x{drawn[1]} images but the classifier's images are {side[0]}x{side[1]}: "
                "editor and classifier must work at the same image size; resize the images or use an editor trained "
                "at the classifier's size"
            )


def _name_of(classifier: nn.Module) -> str:
    return str(getattr(classifier, "cfnb_name", None) or type(classifier).__name__)


def spurious(
    classifier: nn.Module,
    images: Any,
    factors: Sequence[str] | Mapping[str, Any] | Sequence[Any],
    editor: nn.Module | None = None,
    labels: Any = None,
    *,
    attribute_classifier: nn.Module | None = None,
    attributes: Any = None,
    generator: nn.Module | None = None,
    factor_values: Mapping[str, Any] | None = None,
    expected: Sequence[str] = (),
    exclusive: Sequence[Sequence[str]] | None = None,
    limit: int | None = None,
    batch_size: int = 256,
    counterfactuals: int = 64,
    counterfactual_options: Mapping[str, Any] | None = None,
    groups: bool | None = None,
    min_group: int = 20,
    threshold: float = FLAG_THRESHOLD,
    bootstrap: int = 200,
    seed: int = 0,
    gallery: int = 4,
    progress: bool | Callable[[int, int], None] | None = True,
    device: str | torch.device | None = None,
    class_names: Sequence[str] | None = None,
) -> AuditReport:
    """Audit which factors ``classifier`` relies on, by intervening on each factor alone.

    Args:
        classifier: a PyTorch classifier returning logits (N, K); frozen during the audit, restored afterwards.
        images: (N, C, H, W) tensor in [0, 1], a ``Dataset`` or a ``DataLoader`` (batches: images, (images, labels),
            (images, attributes) or dicts with ``images``/``labels``/``attributes``).
        factors: the candidate factors: attribute names of ``editor``; or a mapping ``name -> callable`` that
            changes that factor alone (``images -> images``, or ``(images, index) -> images`` to get the images'
            positions in the data); or a list of ``cfnb.audit.Factor``.
        editor: an attribute editor (``encode``, ``decode(content, attributes)``, ``attribute_names``), needed when
            ``factors`` are attribute names.
        labels: (N,) true classes, for accuracy per (label, factor value) group, worst-group accuracy and the data
            correlations (default: carried by the data's batches, if any).
        attribute_classifier: multi-label model that reads each image's attributes for an editor audit.
        attributes: (N, K) the images' attributes (in the data's ``attribute_names`` order, else the editor's);
            take precedence over ``attribute_classifier``.
        generator: a generator with named latent factors (``factor_dims``, e.g. ``cfnb.generators.ColourGenerator``)
            for the counterfactual shares of a non-editor audit.
        factor_values: factor -> (N,) integer value of the factor in each image, for the group figures (when the
            factor cannot read it itself).
        expected: factors the classifier should rely on (e.g. the label's own attribute, or ``"shape"``): flagged
            but not called shortcuts.
        exclusive: groups of mutually exclusive editor attributes (default: the editor's ``exclusive``, else those
            ``cfnb.data.faces`` documents).
        limit: audit only the first ``limit`` images (quick looks).
        batch_size: images per batch.
        counterfactuals: how many images (the first ones) also get a counterfactual towards the other class
            (the runner-up class for more than two classes); 0 skips them.
        counterfactual_options: options for ``cfnb.explain`` (``steps``, ``lam``...), over
            ``COUNTERFACTUAL_DEFAULTS``.
        groups: compute the group figures: True requires labels and factor values (raises without), None computes
            them where possible, False skips them.
        min_group: smallest group counted for the worst-group accuracy.
        threshold: flip rate at which a factor is flagged (default ``FLAG_THRESHOLD``, set from measurement).
        bootstrap: bootstrap replicates for the 95% intervals.
        seed: seeds the bootstrap and the counterfactual searches.
        gallery: pairs kept per factor and kind for the gallery.
        progress: True for a progress bar (tqdm.auto: a widget in notebooks, text in terminals), False for none, or
            a callback ``progress(done, total)``.
        device: where to compute (default: the classifier's device).
        class_names: the classifier's class names (default: ``classifier.class_names`` or indices).

    Returns:
        An ``AuditReport``: ``scores`` (factor -> flip rate with interval), ``table()``, ``summary()``, ``chart()``,
        ``to_html(path)``, ``to_json()``.

    Raises:
        TypeError / ValueError: unknown factor names, interventions that change the image shape, an editor whose
        image size differs from the classifier's, group figures asked for without labels, misaligned inputs.
    """
    if not isinstance(classifier, nn.Module):
        raise TypeError(f"classifier must be a torch.nn.Module returning logits, got {type(classifier).__name__}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(counterfactuals, int) or counterfactuals < 0:
        raise ValueError(f"counterfactuals must be an int >= 0, got {counterfactuals!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if groups not in (None, True, False):
        raise ValueError(f"groups must be True, False or None, got {groups!r}")
    interventions = resolve_factors(factors, editor, attribute_classifier, exclusive)
    cf_options = {**COUNTERFACTUAL_DEFAULTS, **dict(counterfactual_options or {})}
    unknown_expected = [e for e in expected if e not in interventions.names and not _is_component(e, generator)]
    if unknown_expected:
        raise ValueError(f"expected names {unknown_expected} are neither audited factors ({interventions.names}) "
                         "nor generator factors")
    if factor_values:
        strangers = [name for name in factor_values if name not in interventions.names]
        if strangers:
            raise ValueError(f"factor_values given for {strangers}, which are not audited factors {interventions.names}")
    if counterfactuals and isinstance(interventions, TransformInterventions) and generator is not None:
        for needed in ("encode", "decode"):
            if not callable(getattr(generator, needed, None)):
                raise TypeError(f"generator must have encode() and decode(); {type(generator).__name__} lacks {needed}()")
    total = data_size(images)
    total = min(total, limit) if (total is not None and limit is not None) else (limit if total is None else total)
    if total == 0:
        raise ValueError("the audited data is empty")
    run_device = torch.device(device) if device is not None else (model_device(classifier) or torch.device("cpu"))
    models = [m for m in (classifier, editor, attribute_classifier, generator) if isinstance(m, nn.Module)]
    data_names = data_attribute_names(images)
    audit = _Accumulators(interventions.names, bootstrap, seed, gallery)
    notes: list[str] = []
    update, close = _progress_bar(progress, total)
    start = time.perf_counter()
    done = 0
    cf_done = 0
    names_of_classes: list[str] | None = None
    seen_labels = False
    try:
        with frozen(models, run_device):
            for batch in stream(images, labels=labels, attributes=attributes, factor_values=factor_values,
                                batch_size=batch_size, limit=limit):
                x = batch.images.to(run_device)
                if done == 0:
                    if not torch.is_tensor(x):
                        raise TypeError(f"images must be tensors, got {type(x).__name__}")
                    check_images(x, expected_channels(classifier))
                    _check_sizes(x, classifier, editor if isinstance(interventions, EditorInterventions) else None)
                else:
                    check_images(x, expected_channels(classifier))
                y = batch.labels.long().cpu() if batch.labels is not None else None
                seen_labels = seen_labels or y is not None
                if groups is True and y is None:
                    raise ValueError(
                        "the group figures (accuracy per label x factor group, worst-group accuracy) need labels: "
                        "pass labels=..., or data whose batches carry (images, labels); or groups=False to skip them"
                    )
                batch_attributes = None
                if isinstance(interventions, EditorInterventions) and batch.attributes is not None:
                    batch_attributes = reorder_attributes(torch.as_tensor(batch.attributes).float(), data_names,
                                                          interventions.attribute_names).to(run_device)
                with torch.no_grad():
                    original = torch.softmax(classifier(x), 1)
                    if names_of_classes is None:
                        names_of_classes = class_names_of(classifier, original.shape[1],
                                                          class_names or card_value(classifier, "class_names"))
                    drawn = interventions.batch(x, batch.index, batch_attributes)
                    values = dict(drawn.values)
                    for name, given in batch.factor_values.items():
                        values[name] = read_values(name, given, len(x))
                    if groups is True:
                        missing = [n for n in interventions.names if n not in values]
                        if missing:
                            raise ValueError(f"the group figures need each image's value of factor(s) {missing}: give "
                                             "factor_values={name: (N,) values}, a Factor with read=..., or groups=False")
                    audit.add_batch(classifier, x, original, drawn, values, y if groups is not False else None,
                                    names_of_classes)
                if counterfactuals and cf_done < counterfactuals:
                    take = min(counterfactuals - cf_done, len(x))
                    outcome = _counterfactuals(interventions, classifier, x[:take], drawn, generator,
                                               cf_options, seed + cf_done, notes)
                    if outcome is not None:
                        audit.add_counterfactuals(outcome, y[:take] if y is not None else None, names_of_classes)
                    cf_done += take
                done += len(x)
                update(done, total or done)
    finally:
        close()
    if done == 0:
        raise ValueError("the audited data is empty")
    seconds = time.perf_counter() - start
    if not seen_labels:
        notes.append("no labels: accuracy, group figures and data correlations were not computed")
    elif groups is not False:
        no_values = [n for n in interventions.names if not audit.group_accuracy[n].by_key]
        if no_values:
            notes.append(f"no factor values for {no_values}: no group figures for them (give factor_values=...)")
    settings = {
        "kind": interventions.kind, "factors": list(interventions.names), "limit": limit, "batch_size": batch_size,
        "counterfactuals": counterfactuals, "counterfactual_options": cf_options,
        "min_group": min_group, "threshold": threshold, "bootstrap": bootstrap, "seed": seed,
        "device": str(run_device), "editor": _name_of(editor) if editor is not None else None,
        "generator": _name_of(generator) if generator is not None else None,
        "attribute_classifier": _name_of(attribute_classifier) if attribute_classifier is not None else None,
        "exclusive": getattr(interventions, "exclusive", None),
    }
    report = audit.report(_name_of(classifier), names_of_classes or [], list(expected), done, threshold, min_group,
                          settings, seconds, notes)
    return replace(report, value_names=interventions.value_names())


def _is_component(name: str, generator: nn.Module | None) -> bool:
    return generator is not None and name in (getattr(generator, "factor_dims", None) or {})


def _counterfactuals(interventions, classifier, x, drawn, generator, options, seed, notes) -> CounterfactualBatch | None:
    if isinstance(interventions, EditorInterventions):
        return editor_counterfactuals(classifier, x, drawn.attributes[: len(x)], interventions.editor, seed, options)
    if generator is None:
        note = "no generator given: no counterfactual shares (pass generator=... with named latent factors)"
        if note not in notes:
            notes.append(note)
        return None
    extra = {f.name: list(f.latent_dims) for f in interventions.factors if f.latent_dims is not None}
    components = generator_components(generator, extra)
    return generator_counterfactuals(classifier, x, generator, components, seed, options)


class _Accumulators:
    """Every running figure of one audit."""

    def __init__(self, names: Sequence[str], bootstrap: int, seed: int, gallery: int):
        self.names = list(names)
        self.weights = PoissonWeights(bootstrap, seed)
        self.cf_weights = PoissonWeights(bootstrap, seed + 1)
        self.replicates = bootstrap
        self.flips = {n: RunningMean(bootstrap) for n in names}
        self.drops = {n: RunningMean(bootstrap) for n in names}
        self.group_flips = {n: RunningMean(bootstrap) for n in names}
        self.group_accuracy = {n: RunningMean(bootstrap) for n in names}
        self.accuracy = RunningMean(bootstrap)
        self.gallery_size = gallery
        self.intervention_pairs = {n: TopK(gallery) for n in names}
        self.counterfactual_pairs: dict[str, TopK] = {}
        self.shares: dict[str, RunningMean] = {}
        self.dominant: dict[str, RunningMean] = {}
        self.sufficient: dict[str, RunningMean] = {}
        self.validity = RunningMean(bootstrap)
        self.redraw_agreement = RunningMean(bootstrap)
        self.components: list[str] | None = None
        self.cf_correlation: RunningCorrelation | None = None
        self.data_correlation: RunningCorrelation | None = None
        self.attribute_names: list[str] | None = None

    def add_batch(self, classifier, images, original, drawn, values, labels, class_names) -> None:
        n = original.shape[0]
        w = self.weights.draw(n)
        cache: dict[int, torch.Tensor] = {id(images): original}
        for name in self.names:
            reference = drawn.references[name]
            key = id(reference)
            if key not in cache:
                cache[key] = torch.softmax(classifier(reference), 1)
                if reference is not images:  # a redraw (editor, generator): does the decision survive it?
                    same = (cache[key].argmax(1) == original.argmax(1)).double().cpu()
                    self.redraw_agreement.add(same, w)
            before = cache[key]
            after = torch.softmax(classifier(drawn.edited[name]), 1)
            decision = before.argmax(1)
            new = after.argmax(1)
            flip = (new != decision).double().cpu()
            p_before = before.gather(1, decision[:, None]).squeeze(1)
            p_after = after.gather(1, decision[:, None]).squeeze(1)
            drop = (p_before - p_after).double().cpu()
            self.flips[name].add(flip, w, [class_names[int(c)] for c in decision.cpu()])
            self.drops[name].add(drop, w)
            self.intervention_pairs[name].add(
                flip + drop, before=reference, after=drawn.edited[name], before_class=decision, after_class=new,
                before_probability=p_before, after_probability=p_after)
            if labels is not None and name in values:
                keys = list(zip(labels.tolist(), values[name].tolist()))
                correct = (original.argmax(1).cpu() == labels).double()
                self.group_flips[name].add(flip, w, keys)
                self.group_accuracy[name].add(correct, w, keys)
        if labels is not None:
            correct = (original.argmax(1).cpu() == labels).double()
            self.accuracy.add(correct, w, labels.tolist())
            if drawn.attributes is not None and original.shape[1] == 2:
                if self.data_correlation is None:
                    self.data_correlation = RunningCorrelation(drawn.attributes.shape[1], self.replicates)
                self.data_correlation.add(drawn.attributes.cpu(), (labels == 1).double(), w)

    def add_counterfactuals(self, outcome: CounterfactualBatch, labels, class_names) -> None:
        n = outcome.valid.shape[0]
        w = self.cf_weights.draw(n)
        if self.components is None:
            self.components = list(outcome.components)
            self.shares = {c: RunningMean(self.replicates) for c in self.components}
            self.dominant = {c: RunningMean(self.replicates) for c in self.components}
            self.sufficient = {c: RunningMean(self.replicates) for c in self.components}
        self.validity.add(outcome.valid.double(), w)
        valid = outcome.valid.bool()
        if valid.any():
            wv = w[:, valid]
            shares = outcome.shares[valid].double()
            largest = shares.argmax(1)
            moved = shares.sum(1) > 0
            for k, component in enumerate(self.components):
                self.shares[component].add(shares[:, k], wv)
                self.dominant[component].add(((largest == k) & moved).double(), wv)
                self.sufficient[component].add(outcome.sufficient[valid][:, k].double(), wv)
            if outcome.changes is not None and outcome.result.probabilities.shape[1] == 2:
                if self.cf_correlation is None:
                    self.cf_correlation = RunningCorrelation(len(self.components), self.replicates)
                    self.attribute_names = list(self.components)
                self.cf_correlation.add(outcome.changes[valid], outcome.query_change[valid], wv)
        result = outcome.result
        for k, component in enumerate(self.components):
            if component not in self.names:
                continue
            pairs = self.counterfactual_pairs.setdefault(component, TopK(self.gallery_size))
            score = torch.where(valid, outcome.shares[:, k].double(), torch.full((n,), -1.0, dtype=torch.float64))
            source = result.source
            pairs.add(score, before=result.original, after=result.counterfactual, before_class=source,
                      after_class=result.prediction,
                      before_probability=result.original_probabilities.gather(1, source[:, None]).squeeze(1),
                      after_probability=result.probabilities.gather(1, source[:, None]).squeeze(1))

    def report(self, classifier_name, class_names, expected, n_images, threshold, min_group, settings, seconds,
               notes) -> AuditReport:
        scores = {n: self.flips[n].estimate() for n in self.names}
        figures: dict[str, dict[str, Estimate]] = {}
        per_class: dict[str, dict[str, Estimate]] = {}
        groups: dict[str, list[dict[str, Any]]] = {}
        worst: dict[str, dict[str, Any]] = {}
        correlations = self._correlations()
        for name in self.names:
            figs = {"flip_rate": scores[name], "probability_drop": self.drops[name].estimate()}
            if name in self.shares:
                figs["counterfactual_share"] = self.shares[name].estimate()
                figs["counterfactual_dominant"] = self.dominant[name].estimate()
                figs["counterfactual_sufficient"] = self.sufficient[name].estimate()
            figs.update(correlations.get(name, {}))
            accuracy = self.group_accuracy[name]
            if accuracy.by_key:
                groups[name] = [{"label": label, "value": value, "n": accuracy.by_key[(label, value)].count,
                                 "accuracy": accuracy.estimate((label, value)),
                                 "flip_rate": self.group_flips[name].estimate((label, value))}
                                for label, value in accuracy.keys()]
                key, estimate = accuracy.worst(min_group)
                if key is not None:
                    worst[name] = {"label": key[0], "value": key[1], "accuracy": estimate}
                    figs["worst_group_accuracy"] = estimate
                else:
                    note = f"no (label, {name}) group has {min_group} images: no worst-group accuracy (lower min_group)"
                    notes.append(note)
            figures[name] = figs
            per_class[name] = {c: self.flips[name].estimate(c) for c in self.flips[name].keys()}
        flagged = [n for n in self.names if not math.isnan(scores[n].value) and scores[n].value >= threshold]
        gallery = self._gallery(class_names)
        shares = {c: self.shares[c].estimate() for c in (self.components or [])}
        validity = self.validity.estimate() if self.validity.overall.count else Estimate.missing()
        return AuditReport(
            classifier=classifier_name, class_names=list(class_names), factors=list(self.names),
            expected=list(expected), n_images=n_images, scores=scores, figures=figures, per_class=per_class,
            groups=groups, worst_group=worst, accuracy=self.accuracy.estimate() if self.accuracy.overall.count else None,
            shares=shares, counterfactual_validity=validity, flagged=flagged, threshold=threshold, gallery=gallery,
            settings=settings, seconds=seconds, notes=notes + self._redraw_note(),
            redraw_agreement=self.redraw_agreement.estimate() if self.redraw_agreement.overall.count else None,
        )

    def _redraw_note(self) -> list[str]:
        if not self.redraw_agreement.overall.count:
            return []
        agreement = self.redraw_agreement.estimate().value
        if agreement >= REDRAW_AGREEMENT_WARNING:
            return []
        return [f"the classifier keeps its decision on only {agreement:.0%} of the unchanged redraws: it reads the "
                f"generator's drawings differently from real images, so part of every flip rate is the redraw, not "
                f"the factor (use exact interventions, or a generator whose drawings this classifier reads)"]

    def _correlations(self) -> dict[str, dict[str, Estimate]]:
        if self.cf_correlation is None or self.data_correlation is None or self.attribute_names is None:
            return {}
        cf = self.cf_correlation.estimates()
        data = self.data_correlation.estimates()
        cd = difference(self.cf_correlation, self.data_correlation)
        out = {}
        for k, name in enumerate(self.attribute_names):
            if name in self.names:
                out[name] = {"counterfactual_correlation": cf[k], "data_correlation": data[k],
                             "correlation_difference": cd[k]}
        return out

    def _gallery(self, class_names: Sequence[str]) -> list[GalleryPair]:
        def name(c: Any) -> str:
            c = int(c)
            return class_names[c] if 0 <= c < len(class_names) else str(c)

        pairs = []
        for kind, store in (("intervention", self.intervention_pairs), ("counterfactual", self.counterfactual_pairs)):
            for factor, top in store.items():
                for i in range(len(top)):
                    if kind == "counterfactual" and top.scores[i] < 0:
                        continue
                    items = top.items
                    pairs.append(GalleryPair(
                        factor, kind, items["before"][i], items["after"][i], name(items["before_class"][i]),
                        name(items["after_class"][i]), float(items["before_probability"][i]),
                        float(items["after_probability"][i]), float(top.scores[i])))
        return pairs
