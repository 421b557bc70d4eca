"""``cfnb.audit.spurious``: which factors does a classifier rely on, how much, and for which classes?

For each candidate factor, every image is intervened on that factor alone (``cfnb.audit.factors``) and the
classifier's decision is compared before and after: the flip rate is the factor's reliance score. Beside it:
the mean drop of the predicted probability, the flip rate per class and per (label, factor value) group, accuracy
per group and the worst group's, and counterfactuals towards the other class split by factor
(``cfnb.audit.shares``) with the correlation difference between their co-changes and the data's correlations.

Everything streams: each batch updates running sums with Poisson-bootstrap replicates (``cfnb.audit.statistics``)
and only the gallery's few most telling pairs are kept, so memory does not grow with the number of images.

How one audit runs (``spurious`` reads top to bottom in this order):

1. set-up: the settings (``AuditSettings``), the factors' interventions, the device, the number of images;
2. per batch, four stages:
   - *interventions* (``_intervene``): the classifier's decisions on the images, and the images with each factor
     alone changed;
   - *statistics* (``_Reliance``): flip rate, probability drop, flips per class, agreement on unchanged redraws;
   - *groups* (``_Groups``): accuracy overall and per (label, factor value) group, flip rate per group;
   - *counterfactual evidence* (``_CounterfactualEvidence``): for the first ``counterfactuals`` images, where the
     smallest edit towards the other class goes, and the correlations behind the correlation difference;
3. the report (``_assemble_report``): every accumulator's figures, notes and gallery in one ``AuditReport``.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from ..checks import check_classifier, check_classifier_images, class_names_of, resolve_device
from ..distributed import Ranks, gather, join, leave, share
from ..modes import frozen
from ..progress import Progress, Reporter, check_progress
from .factors import (
    EditorInterventions,
    InterventionBatch,
    TransformInterventions,
    card_value,
    read_values,
    resolve_factors,
)
from .report import AuditReport, GalleryPair
from .shares import CounterfactualBatch, editor_counterfactuals, generator_components, generator_counterfactuals
from .statistics import Estimate, PoissonWeights, RunningCorrelation, RunningMean, TopK, difference
from .stream import AuditBatch, data_attribute_names, data_size, reorder_attributes, stream

Interventions = TransformInterventions | EditorInterventions

REDRAW_AGREEMENT_WARNING = 0.95
"""Below this share of decisions kept on the unchanged redraws, the summary warns that flips are partly artefacts."""

FLAG_THRESHOLD = 0.2
"""A factor is flagged when changing it alone flips at least this share of decisions.

Set from measurement (docs/audits.md): unbiased twins score at most 0.01 on the planted factors (colour, patch,
Blond_Hair) under exact interventions, the biased ones 0.67 (colour) and 0.29 (patch); 0.2 sits between. A
partial shortcut (faces-smiling-biased: Blond_Hair 0.13) stays under it: read the scores, not only the flags.
"""


COUNTERFACTUAL_DEFAULTS: dict[str, Any] = {"kappa": 1.0}
"""Options the audit's counterfactual searches start from (``options`` override them).

The audit needs where the smallest edit crosses the decision, not a picture convincing enough to show alone:
a margin of 1 logit instead of the methods' default 4 (causal) / 2 (attribute) stops most searches within a few
steps (median 6 instead of all 150 on colored-mnist-biased), which makes the counterfactual part of an audit about
as fast as its interventions.
"""


# --- settings ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditSettings:
    """How an audit runs (not what it audits): sizes, statistics and the gallery.

    Attributes:
        limit: audit only the first ``limit`` images (quick looks); None audits all.
        batch_size: images per batch.
        counterfactuals: how many images (the first ones) also get a counterfactual towards the other class
            (the runner-up class for more than two classes); 0 skips them.
        groups: compute the group figures: True requires labels and factor values (raises without), None computes
            them where possible, False skips them (and the accuracy).
        min_group: smallest group counted for the worst-group accuracy.
        threshold: flip rate at which a factor is flagged (default ``FLAG_THRESHOLD``, set from measurement).
        bootstrap: bootstrap replicates for the 95% intervals.
        seed: seeds the bootstrap and the counterfactual searches.
        gallery: pairs kept per factor and kind for the gallery.

    Raises:
        ValueError: a field out of its range (checked on construction, so also by ``dataclasses.replace``).
    """

    limit: int | None = None
    batch_size: int = 256
    counterfactuals: int = 64
    groups: bool | None = None
    min_group: int = 20
    threshold: float = FLAG_THRESHOLD
    bootstrap: int = 200
    seed: int = 0
    gallery: int = 4

    def __post_init__(self) -> None:
        limit, threshold = self.limit, self.threshold
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if not isinstance(self.counterfactuals, int) or self.counterfactuals < 0:
            raise ValueError(f"counterfactuals must be an int >= 0, got {self.counterfactuals!r}")
        if not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        if self.groups not in (None, True, False):
            raise ValueError(f"groups must be True, False or None, got {self.groups!r}")
        if not isinstance(self.bootstrap, int) or self.bootstrap < 10:
            raise ValueError(f"bootstrap must be an int >= 10 replicates, got {self.bootstrap!r}")
        if not isinstance(self.min_group, int) or self.min_group < 0:
            raise ValueError(f"min_group must be an int >= 0, got {self.min_group!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {self.seed!r}")
        if not isinstance(self.gallery, int) or self.gallery < 0:
            raise ValueError(f"gallery must be an int >= 0, got {self.gallery!r}")


def _resolve_settings(settings: AuditSettings | None = None, **overrides: Any) -> AuditSettings:
    """``settings`` (default: ``AuditSettings()``) with the fields named in ``overrides`` replaced.

    Raises:
        TypeError: ``settings`` is not an ``AuditSettings``, or an override names no field of it.
        ValueError: an overridden value out of its range.
    """
    if settings is None:
        settings = AuditSettings()
    elif not isinstance(settings, AuditSettings):
        raise TypeError(f"settings must be a cfnb.audit.AuditSettings or None, got {type(settings).__name__}")
    known = [f.name for f in fields(AuditSettings)]
    unknown = [name for name in overrides if name not in known]
    if unknown:
        raise TypeError(f"spurious() got unknown keyword argument(s) {unknown}; the settings it takes as keywords "
                        f"are the AuditSettings fields: {', '.join(known)} (method options for the counterfactual "
                        "searches go in options={...})")
    return replace(settings, **overrides) if overrides else settings


# --- the audit --------------------------------------------------------------------------------------------------------
def spurious(
    classifier: nn.Module,
    images: Any,
    factors: Sequence[str] | Mapping[str, Any] | Sequence[Any],
    *,
    editor: nn.Module | None = None,
    generator: nn.Module | None = None,
    attribute_classifier: nn.Module | None = None,
    labels: Any = None,
    attributes: Any = None,
    factor_values: Mapping[str, Any] | None = None,
    expected: Sequence[str] = (),
    exclusive: Sequence[Sequence[str]] | None = None,
    options: Mapping[str, Any] | None = None,
    settings: AuditSettings | None = None,
    progress: Progress = True,
    device: str | torch.device | None = None,
    class_names: Sequence[str] | None = None,
    **overrides: Any,
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
        generator: a generator with named latent factors (``factor_dims``, e.g. ``cfnb.models.ColourGenerator``)
            for the counterfactual shares of a non-editor audit.
        attribute_classifier: multi-label model that reads each image's attributes for an editor audit.
        labels: (N,) true classes, for accuracy per (label, factor value) group, worst-group accuracy and the data
            correlations (default: carried by the data's batches, if any).
        attributes: (N, K) the images' attributes (in the data's ``attribute_names`` order, else the editor's);
            take precedence over ``attribute_classifier``.
        factor_values: factor -> (N,) integer value of the factor in each image, for the group figures (when the
            factor cannot read it itself).
        expected: factors the classifier should rely on (e.g. the label's own attribute, or ``"shape"``): flagged
            but not called shortcuts.
        exclusive: groups of mutually exclusive editor attributes (default: the editor's ``exclusive``, else those
            ``cfnb.data.faces`` documents).
        options: method options for the counterfactual searches (``cfnb.explain(**options)``: ``steps``, ``lam``...),
            over ``COUNTERFACTUAL_DEFAULTS``.
        settings: how the audit runs (``AuditSettings``: limit, batch_size, counterfactuals, groups, min_group,
            threshold, bootstrap, seed, gallery); default ``AuditSettings()``.
        progress: True for a progress bar (tqdm.auto: a widget in notebooks, text in terminals), False for none, or
            a callable ``progress(done, total)``.
        device: where to compute (default: the classifier's device).
        class_names: the classifier's class names (default: ``classifier.class_names`` or indices).
        **overrides: ``AuditSettings`` fields given as keywords (``limit=400, bootstrap=100``), applied over
            ``settings``.

    Returns:
        An ``AuditReport``: ``scores`` (factor -> flip rate with interval), ``table()``, ``summary()``, ``chart()``,
        ``to_html(path)``, ``to_json()``.

    Raises:
        TypeError / ValueError: unknown factor names, interventions that change the image shape, an editor whose
        image size differs from the classifier's, group figures asked for without labels, misaligned inputs, an
        override that is no ``AuditSettings`` field, settings out of range.
    """
    check_classifier(classifier)
    run = _resolve_settings(settings, **overrides)
    check_progress(progress)
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a mapping of method options (e.g. {{'steps': 100}}), got "
                        f"{type(options).__name__}")
    interventions = resolve_factors(factors, editor, attribute_classifier, exclusive)
    _check_names(interventions, expected, factor_values, generator)
    if run.counterfactuals and isinstance(interventions, TransformInterventions) and generator is not None:
        for needed in ("encode", "decode"):
            if not callable(getattr(generator, needed, None)):
                raise TypeError(f"generator must have encode() and decode(); {type(generator).__name__} lacks "
                                f"{needed}()")
    total = _audit_size(images, run.limit)
    audit = _Audit(classifier, interventions, generator, run, {**COUNTERFACTUAL_DEFAULTS, **dict(options or {})},
                   resolve_device(device, classifier), class_names, data_attribute_names(images))
    models = [m for m in (classifier, editor, attribute_classifier, generator) if isinstance(m, nn.Module)]
    ranks = join(audit.device)
    start = time.perf_counter()
    try:
        shown = progress if ranks.main or progress is not True else False
        with Reporter(shown, total, "audit", "img") as reporter, frozen(models, audit.device):
            for number, batch in enumerate(stream(images, labels=labels, attributes=attributes,
                                                  factor_values=factor_values, batch_size=run.batch_size,
                                                  limit=run.limit)):
                if ranks.takes(number):
                    _audit_batch(audit, batch, number)
                seen = int(batch.index[-1]) + 1 if len(batch.index) else 0
                reporter.update(seen, total or seen)
        audit = _merged(ranks, audit)
        if audit.images_done == 0:
            raise ValueError("the audited data is empty")
        seconds = time.perf_counter() - start
        recorded = _recorded_settings(audit, editor, attribute_classifier)
        report = _assemble_report(audit, list(expected), recorded, seconds) if ranks.main else None
        return share(ranks, report)
    finally:
        leave(ranks)


def _audit_batch(audit: _Audit, batch: AuditBatch, number: int) -> None:
    """Every stage on one batch: interventions, statistics and groups, counterfactual evidence."""
    x, y, batch_attributes = _checked_batch(audit, batch)
    with torch.no_grad():
        original, drawn, values = _intervene(audit, x, batch, batch_attributes)
        _count(audit, x, original, drawn, values, y, number)
    _search_counterfactuals(audit, x, drawn, int(batch.index[0]), number)
    audit.images_done += len(x)


def _merged(ranks: Ranks, audit: _Audit) -> _Audit:
    """On rank 0, the audit with every rank's accumulators added up; the others keep theirs (they report nothing).

    Under ``torchrun`` each process audits the batches k with ``k % world_size == rank``; its bootstrap weights and
    counterfactual seeds depend on the batch alone, so the merged figures are those of one process (up to the
    order of floating-point sums, and ties in the gallery's scores)."""
    everyone = gather(ranks, audit.counts())
    if everyone is None or len(everyone) == 1:
        return audit
    for other in everyone[1:]:
        audit.merge(other)
    return audit


def _check_names(interventions: Interventions, expected: Sequence[str], factor_values: Mapping[str, Any] | None,
                 generator: nn.Module | None) -> None:
    """Raise unless every expected name and every factor_values key is an audited factor (or a generator's)."""
    unknown_expected = [e for e in expected if e not in interventions.names and not _is_component(e, generator)]
    if unknown_expected:
        raise ValueError(f"expected names {unknown_expected} are neither audited factors ({interventions.names}) "
                         "nor generator factors")
    if factor_values:
        strangers = [name for name in factor_values if name not in interventions.names]
        if strangers:
            raise ValueError(f"factor_values given for {strangers}, which are not audited factors "
                             f"{interventions.names}")


def _is_component(name: str, generator: nn.Module | None) -> bool:
    return generator is not None and name in (getattr(generator, "factor_dims", None) or {})


def _audit_size(images: Any, limit: int | None) -> int | None:
    """How many images the audit will see, when it can be known before streaming them."""
    total = data_size(images)
    if total is None:
        return limit
    total = min(total, limit) if limit is not None else total
    if total == 0:
        raise ValueError("the audited data is empty")
    return total


@dataclass
class _Audit:
    """One audit in progress: its fixed inputs, its accumulators and its counters."""

    classifier: nn.Module
    interventions: Interventions
    generator: nn.Module | None
    settings: AuditSettings
    options: dict[str, Any]
    device: torch.device
    given_class_names: Sequence[str] | None
    data_names: list[str] | None
    class_names: list[str] | None = None
    images_done: int = 0
    counterfactuals_done: int = 0
    seen_labels: bool = False
    notes: list[str] = field(default_factory=list)
    weights: PoissonWeights = field(init=False)
    reliance: _Reliance = field(init=False)
    groups: _Groups = field(init=False)
    evidence: _CounterfactualEvidence = field(init=False)

    def __post_init__(self) -> None:
        names, run = self.interventions.names, self.settings
        self.weights = PoissonWeights(run.bootstrap, run.seed)
        self.reliance = _Reliance(names, run.bootstrap, run.gallery)
        self.groups = _Groups(names, run.bootstrap)
        self.evidence = _CounterfactualEvidence(names, run.bootstrap, run.seed, run.gallery)

    def counts(self) -> dict[str, Any]:
        """What this process counted (picklable: no model, no intervention), to send to rank 0."""
        return {"class_names": self.class_names, "images_done": self.images_done,
                "counterfactuals_done": self.counterfactuals_done, "seen_labels": self.seen_labels,
                "notes": self.notes, "reliance": self.reliance, "groups": self.groups, "evidence": self.evidence}

    def merge(self, other: dict[str, Any]) -> None:
        """Add another process's ``counts()`` (its batches) to this audit."""
        self.class_names = self.class_names or other["class_names"]
        self.images_done += other["images_done"]
        self.counterfactuals_done += other["counterfactuals_done"]
        self.seen_labels = self.seen_labels or other["seen_labels"]
        self.notes += [note for note in other["notes"] if note not in self.notes]
        self.reliance.merge(other["reliance"])
        self.groups.merge(other["groups"])
        self.evidence.merge(other["evidence"])


def _checked_batch(audit: _Audit, batch: AuditBatch) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                torch.Tensor | None]:
    """The batch's images on the audit's device (checked), its labels (CPU) and its attributes in the editor's order."""
    if not torch.is_tensor(batch.images):
        raise TypeError(f"images must be tensors, got {type(batch.images).__name__}")
    x = batch.images.to(audit.device)
    check_classifier_images(audit.classifier, x)
    if audit.images_done == 0:
        editor = audit.interventions.editor if isinstance(audit.interventions, EditorInterventions) else None
        _check_sizes(x, audit.classifier, editor)
    y = batch.labels.long().cpu() if batch.labels is not None else None
    audit.seen_labels = audit.seen_labels or y is not None
    if audit.settings.groups is True and y is None:
        raise ValueError(
            "the group figures (accuracy per label x factor group, worst-group accuracy) need labels: "
            "pass labels=..., or data whose batches carry (images, labels); or groups=False to skip them"
        )
    attributes = None
    if isinstance(audit.interventions, EditorInterventions) and batch.attributes is not None:
        attributes = reorder_attributes(torch.as_tensor(batch.attributes).float(), audit.data_names,
                                        audit.interventions.attribute_names).to(audit.device)
    return x, y, attributes


def _declared_size(model: Any) -> tuple[int, ...] | None:
    """The image size (H, W) a model declares: its ``image_size`` attribute, or its registry card's."""
    size = getattr(model, "image_size", None)
    if size is None:
        size = card_value(model, "image_size")
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    return tuple(int(s) for s in size)


def _check_sizes(images: torch.Tensor, classifier: nn.Module, editor: nn.Module | None) -> None:
    """Raise when the classifier or the editor declares another image size than the audited images'."""
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


# --- stage: interventions ---------------------------------------------------------------------------------------------
def _intervene(audit: _Audit, x: torch.Tensor, batch: AuditBatch, attributes: torch.Tensor | None
               ) -> tuple[torch.Tensor, InterventionBatch, dict[str, torch.Tensor]]:
    """The classifier's probabilities on ``x``, the images with each factor alone changed, and each factor's value
    per image (read by the factor, or given with the data)."""
    original = torch.softmax(audit.classifier(x), 1)
    if audit.class_names is None:
        audit.class_names = class_names_of(audit.classifier, original.shape[1], audit.given_class_names
                                           or card_value(audit.classifier, "class_names"))
    drawn = audit.interventions.batch(x, batch.index, attributes)
    values = dict(drawn.values)
    for name, given in batch.factor_values.items():
        values[name] = read_values(name, given, len(x))
    if audit.settings.groups is True:
        missing = [n for n in audit.interventions.names if n not in values]
        if missing:
            raise ValueError(f"the group figures need each image's value of factor(s) {missing}: give "
                             "factor_values={name: (N,) values}, a Factor with read=..., or groups=False")
    return original, drawn, values


def _count(audit: _Audit, x: torch.Tensor, original: torch.Tensor, drawn: InterventionBatch,
           values: dict[str, torch.Tensor], labels: torch.Tensor | None, number: int) -> None:
    """Feed one batch to the statistics, the groups and the data side of the correlation difference.

    One draw of bootstrap weights serves every figure of the batch, so the figures' intervals are resampled
    together. Without group figures (``groups=False``) the labels are not used: no accuracy, no data correlation.
    """
    weights = audit.weights.draw(original.shape[0], batch=number)
    assert audit.class_names is not None  # set by _intervene on the first batch
    flips = audit.reliance.add(audit.classifier, x, original, drawn, audit.class_names, weights)
    if audit.settings.groups is False or labels is None:
        return
    audit.groups.add(original, labels, values, flips, weights)
    if drawn.attributes is not None and original.shape[1] == 2:
        audit.evidence.add_data(drawn.attributes, labels, weights)


class _Reliance:
    """Stage statistics: how decisions move when one factor alone changes.

    Per factor: the flip rate (the reliance score) overall and per predicted class, the mean drop of the predicted
    class's probability, and the gallery's most telling intervention pairs; overall: the share of decisions that
    survive the editor's or generator's unchanged redraw (the reference interventions through it are compared with).
    """

    def __init__(self, names: Sequence[str], replicates: int, gallery: int):
        self.names = list(names)
        self.flips = {n: RunningMean(replicates) for n in names}
        self.drops = {n: RunningMean(replicates) for n in names}
        self.redraw_agreement = RunningMean(replicates)
        self.pairs = {n: TopK(gallery) for n in names}

    def add(self, classifier: nn.Module, images: torch.Tensor, original: torch.Tensor, drawn: InterventionBatch,
            class_names: Sequence[str], weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """Count one batch; return each factor's (n,) flips (1.0 where the decision changed) for the groups."""
        probabilities: dict[int, torch.Tensor] = {id(images): original}  # per reference, computed once
        flips = {}
        for name in self.names:
            reference = drawn.references[name]
            if id(reference) not in probabilities:  # a redraw (editor, generator): does the decision survive it?
                probabilities[id(reference)] = torch.softmax(classifier(reference), 1)
                same = (probabilities[id(reference)].argmax(1) == original.argmax(1)).double().cpu()
                self.redraw_agreement.add(same, weights)
            before = probabilities[id(reference)]
            after = torch.softmax(classifier(drawn.edited[name]), 1)
            decision = before.argmax(1)
            new = after.argmax(1)
            flip = (new != decision).double().cpu()
            p_before = before.gather(1, decision[:, None]).squeeze(1)
            p_after = after.gather(1, decision[:, None]).squeeze(1)
            drop = (p_before - p_after).double().cpu()
            self.flips[name].add(flip, weights, [class_names[int(c)] for c in decision.cpu()])
            self.drops[name].add(drop, weights)
            self.pairs[name].add(
                flip + drop, before=reference, after=drawn.edited[name], before_class=decision, after_class=new,
                before_probability=p_before, after_probability=p_after)
            flips[name] = flip
        return flips

    def merge(self, other: _Reliance) -> None:
        """Add another process's counts."""
        for name in self.names:
            self.flips[name].merge(other.flips[name])
            self.drops[name].merge(other.drops[name])
            self.pairs[name].merge(other.pairs[name])
        self.redraw_agreement.merge(other.redraw_agreement)

    def scores(self) -> dict[str, Estimate]:
        """Factor -> flip rate, the reliance score."""
        return {n: self.flips[n].estimate() for n in self.names}

    def figures(self, name: str) -> dict[str, Estimate]:
        """The factor's flip rate and probability drop."""
        return {"flip_rate": self.flips[name].estimate(), "probability_drop": self.drops[name].estimate()}

    def per_class(self, name: str) -> dict[str, Estimate]:
        """Class name -> flip rate among the images the classifier put in that class."""
        return {c: self.flips[name].estimate(c) for c in self.flips[name].keys()}

    def agreement(self) -> Estimate | None:
        """Share of decisions kept on the unchanged redraws; None when every reference is the image itself."""
        return self.redraw_agreement.estimate() if self.redraw_agreement.overall.count else None

    def notes(self) -> list[str]:
        """A warning when the decisions survive the unchanged redraws too rarely for the flips to mean reliance."""
        agreement = self.agreement()
        if agreement is None or agreement.value >= REDRAW_AGREEMENT_WARNING:
            return []
        return [f"the classifier keeps its decision on only {agreement.value:.0%} of the unchanged redraws: it reads "
                f"the generator's drawings differently from real images, so part of every flip rate is the redraw, "
                f"not the factor (use exact interventions, or a generator whose drawings this classifier reads)"]


# --- stage: groups ----------------------------------------------------------------------------------------------------
class _Groups:
    """Stage groups: accuracy overall and per (label, factor value) group, flip rate per group, the worst group."""

    def __init__(self, names: Sequence[str], replicates: int):
        self.names = list(names)
        self.accuracy = RunningMean(replicates)
        self.group_accuracy = {n: RunningMean(replicates) for n in names}
        self.group_flips = {n: RunningMean(replicates) for n in names}

    def add(self, original: torch.Tensor, labels: torch.Tensor, values: Mapping[str, torch.Tensor],
            flips: Mapping[str, torch.Tensor], weights: torch.Tensor) -> None:
        """Count one batch: ``labels`` (n,) on the CPU; ``values`` factor -> (n,) values where known."""
        correct = (original.argmax(1).cpu() == labels).double()
        for name in self.names:
            if name in values:
                keys = list(zip(labels.tolist(), values[name].tolist()))
                self.group_flips[name].add(flips[name], weights, keys)
                self.group_accuracy[name].add(correct, weights, keys)
        self.accuracy.add(correct, weights, labels.tolist())

    def merge(self, other: _Groups) -> None:
        """Add another process's counts."""
        self.accuracy.merge(other.accuracy)
        for name in self.names:
            self.group_accuracy[name].merge(other.group_accuracy[name])
            self.group_flips[name].merge(other.group_flips[name])

    def has_groups(self, name: str) -> bool:
        """Whether any (label, value) group of ``name`` was counted."""
        return bool(self.group_accuracy[name].by_key)

    def overall(self) -> Estimate | None:
        """Accuracy on the audited images; None when no labels were counted."""
        return self.accuracy.estimate() if self.accuracy.overall.count else None

    def rows(self, name: str) -> list[dict[str, Any]]:
        """One row ``{"label", "value", "n", "accuracy", "flip_rate"}`` per (label, value) group of ``name``."""
        accuracy = self.group_accuracy[name]
        return [{"label": label, "value": value, "n": accuracy.by_key[(label, value)].count,
                 "accuracy": accuracy.estimate((label, value)),
                 "flip_rate": self.group_flips[name].estimate((label, value))}
                for label, value in accuracy.keys()]

    def worst(self, name: str, min_group: int) -> dict[str, Any] | None:
        """``{"label", "value", "accuracy"}`` of the least accurate group with ``min_group`` images, or None."""
        key, estimate = self.group_accuracy[name].worst(min_group)
        if key is None:
            return None
        return {"label": key[0], "value": key[1], "accuracy": estimate}


# --- stage: counterfactual evidence -----------------------------------------------------------------------------------
def _search_counterfactuals(audit: _Audit, x: torch.Tensor, drawn: InterventionBatch, position: int,
                            number: int) -> None:
    """Counterfactuals for the data's first ``settings.counterfactuals`` images: those of this batch (which starts at
    image ``position``), each search seeded by its first image's position."""
    wanted = audit.settings.counterfactuals
    if not wanted or position >= wanted:
        return
    take = min(wanted - position, len(x))
    outcome = _counterfactuals(audit, x[:take], drawn, audit.settings.seed + position)
    if outcome is not None:
        audit.evidence.add(outcome, number)
    audit.counterfactuals_done += take


def _counterfactuals(audit: _Audit, x: torch.Tensor, drawn: InterventionBatch, seed: int
                     ) -> CounterfactualBatch | None:
    """Editor counterfactuals split by attribute, or generator ones split by factor (None, with a note, without a
    generator)."""
    interventions = audit.interventions
    if isinstance(interventions, EditorInterventions):
        assert drawn.attributes is not None  # editor interventions always carry the attributes
        return editor_counterfactuals(audit.classifier, x, drawn.attributes[: len(x)], interventions.editor, seed,
                                      audit.options)
    if audit.generator is None:
        note = "no generator given: no counterfactual shares (pass generator=... with named latent factors)"
        if note not in audit.notes:
            audit.notes.append(note)
        return None
    extra = {f.name: list(f.latent_dims) for f in interventions.factors if f.latent_dims is not None}
    components = generator_components(audit.generator, extra)
    return generator_counterfactuals(audit.classifier, x, audit.generator, components, seed, audit.options)


class _CounterfactualEvidence:
    """Stage counterfactual evidence: where the counterfactual edits go, and the correlation difference (CD).

    Per part of the edit (attribute or generator factor): its mean share of the valid edits, how often it takes
    the largest share (dominant), how often its change alone reaches the other class (sufficient); the share of
    valid counterfactuals; and, for 2-class classifiers with attributes, the correlation between each attribute's
    counterfactual change and the decision's against the correlation between attribute and label in the data.
    Counterfactuals have their own bootstrap weights (seed + 1): they are a different sample from the images.
    """

    def __init__(self, names: Sequence[str], replicates: int, seed: int, gallery: int):
        self.names = list(names)
        self.replicates = replicates
        self.gallery = gallery
        self.weights = PoissonWeights(replicates, seed + 1)
        self.components: list[str] | None = None
        self.shares: dict[str, RunningMean] = {}
        self.dominant: dict[str, RunningMean] = {}
        self.sufficient: dict[str, RunningMean] = {}
        self.validity = RunningMean(replicates)
        self.pairs: dict[str, TopK] = {}
        self.cf_correlation: RunningCorrelation | None = None
        self.data_correlation: RunningCorrelation | None = None
        self.attribute_names: list[str] | None = None

    def add_data(self, attributes: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> None:
        """Count the data side of the CD: each attribute against ``label == 1``, with the images' weights."""
        if self.data_correlation is None:
            self.data_correlation = RunningCorrelation(attributes.shape[1], self.replicates)
        self.data_correlation.add(attributes.cpu(), (labels == 1).double(), weights)

    def add(self, outcome: CounterfactualBatch, batch: int) -> None:
        """Count the counterfactuals of batch ``batch``."""
        n = outcome.valid.shape[0]
        w = self.weights.draw(n, batch=batch)
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
        self._add_pairs(outcome, valid)

    def merge(self, other: _CounterfactualEvidence) -> None:
        """Add another process's counterfactual evidence."""
        if other.components is None:
            return
        if self.components is None:
            self.components, self.attribute_names = other.components, other.attribute_names
            self.shares, self.dominant, self.sufficient = other.shares, other.dominant, other.sufficient
            self.validity, self.pairs, self.cf_correlation = other.validity, other.pairs, other.cf_correlation
        else:
            for component in self.components:
                self.shares[component].merge(other.shares[component])
                self.dominant[component].merge(other.dominant[component])
                self.sufficient[component].merge(other.sufficient[component])
            self.validity.merge(other.validity)
            for name, pairs in other.pairs.items():
                self.pairs.setdefault(name, TopK(self.gallery)).merge(pairs)
            if other.cf_correlation is not None:
                if self.cf_correlation is None:
                    self.cf_correlation, self.attribute_names = other.cf_correlation, other.attribute_names
                else:
                    self.cf_correlation.merge(other.cf_correlation)
        self._merge_data(other)

    def _merge_data(self, other: _CounterfactualEvidence) -> None:
        if other.data_correlation is None:
            return
        if self.data_correlation is None:
            self.data_correlation = other.data_correlation
        else:
            self.data_correlation.merge(other.data_correlation)

    def _add_pairs(self, outcome: CounterfactualBatch, valid: torch.Tensor) -> None:
        """Offer each audited factor's valid counterfactuals to its gallery, scored by the factor's share."""
        result = outcome.result
        n = valid.shape[0]
        for k, component in enumerate(self.components or []):
            if component not in self.names:
                continue
            pairs = self.pairs.setdefault(component, TopK(self.gallery))
            score = torch.where(valid, outcome.shares[:, k].double(), torch.full((n,), -1.0, dtype=torch.float64))
            source = result.source
            pairs.add(score, before=result.original, after=result.counterfactual, before_class=source,
                      after_class=result.prediction,
                      before_probability=result.original_probabilities.gather(1, source[:, None]).squeeze(1),
                      after_probability=result.probabilities.gather(1, source[:, None]).squeeze(1))

    def figures(self) -> dict[str, dict[str, Estimate]]:
        """Audited factor -> its counterfactual figures (shares, then correlations), where computed."""
        correlations = self._correlations()
        out: dict[str, dict[str, Estimate]] = {}
        for name in self.names:
            figures: dict[str, Estimate] = {}
            if name in self.shares:
                figures["counterfactual_share"] = self.shares[name].estimate()
                figures["counterfactual_dominant"] = self.dominant[name].estimate()
                figures["counterfactual_sufficient"] = self.sufficient[name].estimate()
            figures.update(correlations.get(name, {}))
            out[name] = figures
        return out

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

    def share_by_part(self) -> dict[str, Estimate]:
        """Every part the edits were split into (audited or not) -> its mean share."""
        return {c: self.shares[c].estimate() for c in (self.components or [])}

    def valid_share(self) -> Estimate:
        """Share of counterfactuals that reached their target (missing when none was run)."""
        return self.validity.estimate() if self.validity.overall.count else Estimate.missing()


# --- the report -------------------------------------------------------------------------------------------------------
def _name_of(model: nn.Module) -> str:
    return str(getattr(model, "cfnb_name", None) or type(model).__name__)


def _recorded_settings(audit: _Audit, editor: nn.Module | None,
                       attribute_classifier: nn.Module | None) -> dict[str, Any]:
    """How the audit was run, JSON-ready, for ``AuditReport.settings``."""
    run = audit.settings
    return {
        "kind": audit.interventions.kind, "factors": list(audit.interventions.names), "limit": run.limit,
        "batch_size": run.batch_size, "counterfactuals": run.counterfactuals, "options": audit.options,
        "min_group": run.min_group, "threshold": run.threshold, "bootstrap": run.bootstrap, "seed": run.seed,
        "device": str(audit.device), "editor": _name_of(editor) if editor is not None else None,
        "generator": _name_of(audit.generator) if audit.generator is not None else None,
        "attribute_classifier": _name_of(attribute_classifier) if attribute_classifier is not None else None,
        "exclusive": getattr(audit.interventions, "exclusive", None),
    }


def _coverage_notes(audit: _Audit) -> list[str]:
    """What the inputs did not allow: no labels at all, or no factor values for some factors."""
    if not audit.seen_labels:
        return ["no labels: accuracy, group figures and data correlations were not computed"]
    if audit.settings.groups is not False:
        no_values = [n for n in audit.interventions.names if not audit.groups.has_groups(n)]
        if no_values:
            return [f"no factor values for {no_values}: no group figures for them (give factor_values=...)"]
    return []


def _assemble_report(audit: _Audit, expected: list[str], recorded: dict[str, Any], seconds: float) -> AuditReport:
    """Every stage's figures, the notes and the gallery as one ``AuditReport``."""
    run, names = audit.settings, audit.interventions.names
    notes = audit.notes + _coverage_notes(audit)
    scores = audit.reliance.scores()
    evidence = audit.evidence.figures()
    figures: dict[str, dict[str, Estimate]] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    worst: dict[str, dict[str, Any]] = {}
    for name in names:
        figures[name] = {**audit.reliance.figures(name), **evidence[name]}
        if not audit.groups.has_groups(name):
            continue
        groups[name] = audit.groups.rows(name)
        group = audit.groups.worst(name, run.min_group)
        if group is None:
            notes.append(f"no (label, {name}) group has {run.min_group} images: no worst-group accuracy (lower "
                         "min_group)")
        else:
            worst[name] = group
            figures[name]["worst_group_accuracy"] = group["accuracy"]
    flagged = [n for n in names if not math.isnan(scores[n].value) and scores[n].value >= run.threshold]
    class_names = audit.class_names or []
    return AuditReport(
        classifier=_name_of(audit.classifier), class_names=list(class_names), factors=list(names),
        expected=expected, n_images=audit.images_done, scores=scores, figures=figures,
        per_class={name: audit.reliance.per_class(name) for name in names}, groups=groups, worst_group=worst,
        accuracy=audit.groups.overall(), shares=audit.evidence.share_by_part(),
        counterfactual_validity=audit.evidence.valid_share(), flagged=flagged, threshold=run.threshold,
        gallery=_gallery(class_names, audit.reliance.pairs, audit.evidence.pairs), settings=recorded,
        seconds=seconds, notes=notes + audit.reliance.notes(), redraw_agreement=audit.reliance.agreement(),
        value_names=audit.interventions.value_names(),
    )


def _gallery(class_names: Sequence[str], interventions: Mapping[str, TopK],
             counterfactuals: Mapping[str, TopK]) -> list[GalleryPair]:
    """The kept pairs, intervention pairs first; counterfactuals that missed their target are left out."""
    def name(c: Any) -> str:
        c = int(c)
        return class_names[c] if 0 <= c < len(class_names) else str(c)

    pairs = []
    for kind, store in (("intervention", interventions), ("counterfactual", counterfactuals)):
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
