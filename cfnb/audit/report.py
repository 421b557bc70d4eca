"""``AuditReport``: the result of an audit (figures with intervals, groups, gallery) and how to read it.

The numbers come from ``cfnb.audit.spurious``; this module holds them and reads them (a table, a ranking, a
plain-language summary). Showing them lives beside it, one module per form: ``report_charts`` (Plotly figures),
``report_html`` (tables, the gallery, a stand-alone page) and ``report_json`` (JSON, with the gallery's images as
PNG data URIs). The methods ``chart``, ``to_html``, ``_repr_html_``, ``to_dict``, ``to_json`` and ``from_json``
reach them.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .statistics import Estimate

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

FIGURES: dict[str, str] = {
    "flip_rate": "decisions flipped when only this factor changes (reliance score)",
    "probability_drop": "mean drop of the predicted class's probability under the intervention",
    "counterfactual_share": "share of the counterfactual edit that goes into this factor",
    "counterfactual_dominant": "share of counterfactuals in which this factor takes the largest part of the edit",
    "counterfactual_sufficient": "share of counterfactuals whose change in this factor alone reaches the other class",
    "counterfactual_correlation": "correlation over counterfactual pairs between this factor's change and the "
                                  "decision's",
    "data_correlation": "correlation in the audited data between this factor and the label",
    "correlation_difference": "|counterfactual correlation - data correlation| (CD)",
    "worst_group_accuracy": "lowest accuracy over the (label, factor value) groups",
}


@dataclass(frozen=True)
class GalleryPair:
    """One telling pair: an image before and after an intervention on a factor, or a counterfactual.

    Attributes:
        factor: the factor the pair shows.
        kind: ``"intervention"`` (only the factor changed) or ``"counterfactual"`` (the search's free edit).
        before / after: (C, H, W) images in [0, 1].
        before_class / after_class: the classifier's decisions (class names).
        before_probability / after_probability: probability of ``before_class`` on each image.
        score: how telling the pair is (the gallery keeps the highest).
    """

    factor: str
    kind: str
    before: torch.Tensor
    after: torch.Tensor
    before_class: str
    after_class: str
    before_probability: float
    after_probability: float
    score: float

    def caption(self) -> str:
        """One line: what changed, and the decision with its probability before and after."""
        change = "only " + self.factor + " changed" if self.kind == "intervention" else "counterfactual"
        return (f"{change}: {self.before_class} ({self.before_probability:.0%}) -> {self.after_class} "
                f"(p({self.before_class}) = {self.after_probability:.0%})")


@dataclass(frozen=True, eq=False)
class AuditReport:
    """What ``cfnb.audit.spurious`` found.

    Attributes:
        classifier: the audited classifier's name.
        class_names: its classes.
        factors: the audited factors, in the order given.
        expected: factors the classifier is meant to rely on (its flags are not shortcuts).
        n_images: images audited.
        scores: factor -> reliance score, the flip rate under the intervention, with its bootstrap 95% interval.
        figures: factor -> figure name (see ``FIGURES``) -> ``Estimate``.
        per_class: factor -> class name -> flip rate among images the classifier puts in that class.
        groups: factor -> rows ``{"label", "value", "n", "accuracy", "flip_rate"}`` per (label, factor value) group.
        worst_group: factor -> ``{"label", "value", "accuracy"}`` of the worst group with enough images.
        accuracy: accuracy on the audited images (None without labels).
        shares: part -> mean share of the counterfactual edits (all parts the edits were split into).
        counterfactual_validity: share of counterfactuals that reached the other class.
        flagged: factors whose reliance score reaches ``threshold``.
        threshold: the flagging threshold.
        gallery: the most telling pairs.
        settings: how the audit was run (JSON-ready).
        seconds: wall-clock time.
        notes: what could not be computed, and why.
        value_names: factor -> names of its values (0, 1, ...) in the group figures, where known.
        redraw_agreement: share of images whose decision survives the editor's or generator's unchanged redraw
            (the reference that interventions through it are compared with); None when every reference is the
            image itself. Low agreement means the flips are partly redraw artefacts (the summary says so).
    """

    classifier: str
    class_names: list[str]
    factors: list[str]
    expected: list[str]
    n_images: int
    scores: dict[str, Estimate]
    figures: dict[str, dict[str, Estimate]]
    per_class: dict[str, dict[str, Estimate]]
    groups: dict[str, list[dict[str, Any]]]
    worst_group: dict[str, dict[str, Any]]
    accuracy: Estimate | None
    shares: dict[str, Estimate]
    counterfactual_validity: Estimate
    flagged: list[str]
    threshold: float
    gallery: list[GalleryPair] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    value_names: dict[str, list[str]] = field(default_factory=dict)
    redraw_agreement: Estimate | None = None

    # --- reading -------------------------------------------------------------------------------------------------
    @property
    def shortcuts(self) -> list[str]:
        """Flagged factors that are not expected: the classifier relies on them, and should not."""
        return [f for f in self.flagged if f not in self.expected]

    def ranking(self) -> list[str]:
        """Factors from the most relied on (highest flip rate) to the least."""
        return sorted(self.factors, key=lambda f: -_sortable(self.scores[f]))

    @property
    def images_per_second(self) -> float:
        """Audited images per second of wall-clock time (NaN when no time was recorded)."""
        return self.n_images / self.seconds if self.seconds > 0 else float("nan")

    def table(self) -> list[dict[str, Any]]:
        """One row per factor: each figure's value, low and high (None where not computed), and the flag."""
        rows = []
        for factor in self.factors:
            row: dict[str, Any] = {"factor": factor}
            for name in FIGURES:
                estimate = self.figures.get(factor, {}).get(name, Estimate.missing())
                raw = estimate.to_dict()
                row[name], row[name + "_low"], row[name + "_high"] = raw["value"], raw["low"], raw["high"]
            row["flagged"] = factor in self.flagged
            row["expected"] = factor in self.expected
            rows.append(row)
        return rows

    def to_dataframe(self) -> pd.DataFrame:
        """The ``table()`` as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.table()).set_index("factor")

    def summary(self) -> str:
        """Plain-language findings, one sentence per factor, most relied-on first."""
        lines = [f"Audit of {self.classifier} on {self.n_images:,} images "
                 f"(a factor is flagged when changing it alone flips at least {self.threshold:.0%} of decisions)."]
        for factor in self.ranking():
            score = self.scores[factor]
            if math.isnan(score.value):
                lines.append(f"- {factor}: no figure (no image audited).")
                continue
            span = f"{score.value:.0%} (95% interval {score.low:.0%}-{score.high:.0%})"
            if factor in self.flagged:
                verdict = ("the classifier relies on it, as it should" if factor in self.expected
                           else "the classifier relies on it: a shortcut")
                doubt = ("" if score.low >= self.threshold
                         else "; the interval reaches below the threshold: audit more images to be sure")
                lines.append(f"- flips {span} of decisions when only {factor} changes: {verdict}{doubt}.")
            else:
                doubt = ("" if score.high < self.threshold
                         else " (but the interval reaches the threshold: audit more images)")
                lines.append(f"- {factor}: flips {span} of decisions when it alone changes: no sign of "
                             f"reliance{doubt}.")
            extra = self._share_sentence(factor)
            if extra:
                lines.append("  " + extra)
            group = self.worst_group.get(factor)
            if group is not None and not math.isnan(group["accuracy"].value):
                overall = f" (overall {self.accuracy.value:.0%})" if self.accuracy is not None else ""
                lines.append(f"  Worst group by {factor}: label {self.class_name(group['label'])}, "
                             f"{self.value_name(factor, group['value'])}: accuracy {group['accuracy'].value:.0%}"
                             f"{overall}.")
        if self.shortcuts:
            lines.append("Shortcuts found: " + ", ".join(self.shortcuts) + ".")
        elif self.flagged:
            lines.append("No shortcut found: the only factors relied on are the expected ones.")
        else:
            lines.append("No factor is relied on enough to be flagged.")
        for note in self.notes:
            lines.append(f"Note: {note}")
        return "\n".join(line for line in lines if line.strip())

    def _share_sentence(self, factor: str) -> str:
        share = self.figures.get(factor, {}).get("counterfactual_share")
        dominant = self.figures.get(factor, {}).get("counterfactual_dominant")
        sufficient = self.figures.get(factor, {}).get("counterfactual_sufficient")
        if share is None or math.isnan(share.value):
            return ""
        text = f"Counterfactuals towards the other class put {share.value:.0%} of their change into {factor}"
        if dominant is not None and not math.isnan(dominant.value):
            text += f", and change it more than anything else in {dominant.value:.0%} of them"
        if sufficient is not None and not math.isnan(sufficient.value):
            text += f"; that change alone reaches the other class in {sufficient.value:.0%} of them"
        return text + "."

    def value_name(self, factor: str, value: Any) -> str:
        """Readable name of a factor's value in the group figures (e.g. ``not Blond_Hair``, ``colour agrees...``)."""
        names = self.value_names.get(factor)
        if names and isinstance(value, int) and 0 <= value < len(names):
            return names[value]
        return f"{factor} = {value}"

    def class_name(self, label: Any) -> str:
        """Name of a class index (a label of the group figures); other values as text."""
        if isinstance(label, int) and 0 <= label < len(self.class_names):
            return self.class_names[label]
        return str(label)

    def __repr__(self) -> str:
        scores = ", ".join(f"{f}={self.scores[f].value:.2f}" for f in self.factors)
        return (f"AuditReport(classifier={self.classifier!r}, n_images={self.n_images}, scores=[{scores}], "
                f"flagged={self.flagged}, seconds={self.seconds:.1f})")

    # --- figures, pages and JSON (rendered by the report_* modules) --------------------------------------------------
    def chart(self) -> go.Figure:
        """Plotly figure of the reliance scores with their intervals and the threshold (see ``reliance_chart``)."""
        from .report_charts import reliance_chart

        return reliance_chart(self)

    def to_html(self, path: str | Path, include_plotlyjs: bool | str = True) -> Path:
        """Write a stand-alone HTML report: summary, table, charts, gallery (see ``report_html``)."""
        from .report_html import report_html

        path = Path(path)
        path.write_text(report_html(self, include_plotlyjs=include_plotlyjs), encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        from .report_html import summary_html

        return summary_html(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (gallery images as PNG data URIs)."""
        from .report_json import report_to_dict

        return report_to_dict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> AuditReport:
        """Read a report written by ``to_json`` (a path or the JSON text)."""
        from .report_json import report_from_dict

        is_path = isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{"))
        text = Path(source).read_text(encoding="utf-8") if is_path else str(source)
        return report_from_dict(json.loads(text))


def _sortable(estimate: Estimate | None) -> float:
    """An estimate's value for sorting: missing and NaN values sort last."""
    return -math.inf if estimate is None or math.isnan(estimate.value) else estimate.value


def drawable(image: torch.Tensor) -> torch.Tensor:
    """A (C, H, W) image as ``cfnb.viz.images`` can draw it: grey (C = 1) and RGB (C = 3) as they are, other channel
    counts as RGB from their first three channels (zeros where there are fewer)."""
    channels = image.shape[0]
    if channels in (1, 3):
        return image
    return torch.cat([image[:3], image.new_zeros(max(0, 3 - channels), *image.shape[1:])])
