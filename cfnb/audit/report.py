"""``AuditReport``: the result of an audit (figures with intervals, groups, gallery) and how it is shown.

The numbers come from ``cfnb.audit.spurious``; this module only presents them: a table, a plain-language summary,
Plotly charts (one function per figure: ``reliance_chart``, ``group_accuracy_chart``, ``counterfactual_share_chart``),
a gallery, a stand-alone HTML page and JSON.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .statistics import Estimate

FIGURES: dict[str, str] = {
    "flip_rate": "decisions flipped when only this factor changes (reliance score)",
    "probability_drop": "mean drop of the predicted class's probability under the intervention",
    "counterfactual_share": "share of the counterfactual edit that goes into this factor",
    "counterfactual_dominant": "share of counterfactuals in which this factor takes the largest part of the edit",
    "counterfactual_sufficient": "share of counterfactuals whose change in this factor alone reaches the other class",
    "counterfactual_correlation": "correlation over counterfactual pairs between this factor's change and the decision's",
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
        return sorted(self.factors, key=lambda f: -_value(self.scores[f]))

    @property
    def images_per_second(self) -> float:
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

    def to_dataframe(self):
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
                doubt = "" if score.low >= self.threshold else "; the interval reaches below the threshold: audit more images to be sure"
                lines.append(f"- flips {span} of decisions when only {factor} changes: {verdict}{doubt}.")
            else:
                doubt = "" if score.high < self.threshold else " (but the interval reaches the threshold: audit more images)"
                lines.append(f"- {factor}: flips {span} of decisions when it alone changes: no sign of reliance{doubt}.")
            extra = self._share_sentence(factor)
            if extra:
                lines.append("  " + extra)
            group = self.worst_group.get(factor)
            if group is not None and not math.isnan(group["accuracy"].value):
                overall = f" (overall {self.accuracy.value:.0%})" if self.accuracy is not None else ""
                lines.append(f"  Worst group by {factor}: label {self._class(group['label'])}, "
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

    def _class(self, label: Any) -> str:
        if isinstance(label, int) and 0 <= label < len(self.class_names):
            return self.class_names[label]
        return str(label)

    def __repr__(self) -> str:
        scores = ", ".join(f"{f}={self.scores[f].value:.2f}" for f in self.factors)
        return (f"AuditReport(classifier={self.classifier!r}, n_images={self.n_images}, scores=[{scores}], "
                f"flagged={self.flagged}, seconds={self.seconds:.1f})")

    def _repr_html_(self) -> str:
        return table_html(self) + "<pre>" + html.escape(self.summary()) + "</pre>"

    # --- figures and pages -----------------------------------------------------------------------------------------
    def chart(self):
        """Plotly figure of the reliance scores with their intervals and the threshold (see ``reliance_chart``)."""
        return reliance_chart(self)

    def to_html(self, path: str | Path, include_plotlyjs: bool | str = True) -> Path:
        """Write a stand-alone HTML report: summary, table, charts, gallery (see ``report_html``)."""
        path = Path(path)
        path.write_text(report_html(self, include_plotlyjs=include_plotlyjs), encoding="utf-8")
        return path

    # --- JSON -----------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (gallery images as PNG data URIs)."""
        def est(e: Estimate | None) -> Any:
            return None if e is None else e.to_dict()

        return {
            "classifier": self.classifier, "class_names": self.class_names, "factors": self.factors,
            "expected": self.expected, "n_images": self.n_images,
            "scores": {f: est(e) for f, e in self.scores.items()},
            "figures": {f: {k: est(e) for k, e in figs.items()} for f, figs in self.figures.items()},
            "per_class": {f: {c: est(e) for c, e in rows.items()} for f, rows in self.per_class.items()},
            "groups": {f: [{**row, "accuracy": est(row["accuracy"]), "flip_rate": est(row["flip_rate"])}
                           for row in rows] for f, rows in self.groups.items()},
            "worst_group": {f: {**g, "accuracy": est(g["accuracy"])} for f, g in self.worst_group.items()},
            "accuracy": est(self.accuracy), "shares": {k: est(e) for k, e in self.shares.items()},
            "counterfactual_validity": est(self.counterfactual_validity), "flagged": self.flagged,
            "threshold": self.threshold, "settings": self.settings, "seconds": self.seconds, "notes": self.notes,
            "value_names": self.value_names, "redraw_agreement": est(self.redraw_agreement),
            "gallery": [{"factor": p.factor, "kind": p.kind, "before": png_data_uri(p.before),
                         "after": png_data_uri(p.after), "before_class": p.before_class, "after_class": p.after_class,
                         "before_probability": p.before_probability, "after_probability": p.after_probability,
                         "score": p.score} for p in self.gallery],
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> "AuditReport":
        """Read a report written by ``to_json`` (a path or the JSON text)."""
        text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) or (
            isinstance(source, str) and not source.lstrip().startswith("{")) else source
        raw = json.loads(text)

        def est(value: Any) -> Estimate | None:
            return None if value is None else Estimate.from_dict(value)

        return cls(
            classifier=raw["classifier"], class_names=raw["class_names"], factors=raw["factors"],
            expected=raw["expected"], n_images=raw["n_images"],
            scores={f: est(e) for f, e in raw["scores"].items()},
            figures={f: {k: est(e) for k, e in figs.items()} for f, figs in raw["figures"].items()},
            per_class={f: {c: est(e) for c, e in rows.items()} for f, rows in raw["per_class"].items()},
            groups={f: [{**row, "accuracy": est(row["accuracy"]), "flip_rate": est(row["flip_rate"])} for row in rows]
                    for f, rows in raw["groups"].items()},
            worst_group={f: {**g, "accuracy": est(g["accuracy"])} for f, g in raw["worst_group"].items()},
            accuracy=est(raw["accuracy"]), shares={k: est(e) for k, e in raw["shares"].items()},
            counterfactual_validity=est(raw["counterfactual_validity"]), flagged=raw["flagged"],
            threshold=raw["threshold"], settings=raw["settings"], seconds=raw["seconds"], notes=raw["notes"],
            value_names=raw.get("value_names", {}), redraw_agreement=est(raw.get("redraw_agreement")),
            gallery=[GalleryPair(g["factor"], g["kind"], image_from_data_uri(g["before"]),
                                 image_from_data_uri(g["after"]), g["before_class"], g["after_class"],
                                 g["before_probability"], g["after_probability"], g["score"]) for g in raw["gallery"]],
        )


def _value(estimate: Estimate | None) -> float:
    return -math.inf if estimate is None or math.isnan(estimate.value) else estimate.value


# --- images --------------------------------------------------------------------------------------------------------
def png_data_uri(image: torch.Tensor) -> str:
    """A (C, H, W) image in [0, 1] as a ``data:image/png;base64,...`` URI (``cfnb.viz.images.png_data_uri``).

    Grey (C = 1) and RGB (C = 3) images are drawn as they are; other channel counts are drawn as RGB from their first
    three channels (zeros where there are fewer).
    """
    from ..viz.images import png_data_uri as encode

    channels = image.shape[0]
    if channels not in (1, 3):
        image = torch.cat([image[:3], image.new_zeros(max(0, 3 - channels), *image.shape[1:])])
    return encode(image)


def image_from_data_uri(uri: str) -> torch.Tensor:
    """The (C, H, W) float image in [0, 1] of a PNG data URI written by ``png_data_uri``."""
    import numpy as np
    from PIL import Image

    picture = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    array = torch.from_numpy(np.asarray(picture).copy()).float() / 255
    return array[None] if array.ndim == 2 else array.permute(2, 0, 1)


# --- figures -------------------------------------------------------------------------------------------------------
def reliance_chart(report: AuditReport):
    """Horizontal bars: each factor's reliance score (flip rate) with its 95% interval, the flagging threshold as a
    dashed line; flagged shortcuts red, expected factors grey-blue, the rest grey.

    Returns:
        ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    order = report.ranking()[::-1]
    values = [_value(report.scores[f]) if not math.isinf(_value(report.scores[f])) else 0.0 for f in order]
    low = [v - (report.scores[f].low if not math.isnan(report.scores[f].low) else v) for f, v in zip(order, values)]
    high = [(report.scores[f].high if not math.isnan(report.scores[f].high) else v) - v for f, v in zip(order, values)]
    colours = ["#d62728" if f in report.shortcuts else "#4c78a8" if f in report.flagged else "#9e9e9e" for f in order]
    figure = go.Figure(go.Bar(
        x=values, y=order, orientation="h", marker_color=colours,
        error_x={"type": "data", "symmetric": False, "array": high, "arrayminus": low},
        hovertemplate="%{y}: %{x:.1%} of decisions flipped<extra></extra>",
    ))
    figure.add_vline(x=report.threshold, line_dash="dash", line_color="black",
                     annotation_text=f"flag at {report.threshold:.0%}", annotation_position="top")
    figure.update_layout(
        title=f"Reliance of {report.classifier} on each factor ({report.n_images:,} images)",
        xaxis_title="decisions flipped when only the factor changes (95% bootstrap interval)",
        yaxis_title="factor", xaxis_range=[0, 1.05], xaxis_tickformat=".0%",
        height=max(260, 60 + 40 * len(order)), margin={"l": 120, "r": 30, "t": 60, "b": 60},
    )
    return figure


def group_accuracy_chart(report: AuditReport, factor: str | None = None):
    """Bars of accuracy per (label, factor value) group for one factor (default: the most relied on that has
    groups), with 95% intervals; the worst group is red.

    Returns:
        ``plotly.graph_objects.Figure`` (empty with a title saying why when no group figure exists).
    """
    import plotly.graph_objects as go

    candidates = [f for f in report.ranking() if report.groups.get(f)]
    factor = factor or (candidates[0] if candidates else None)
    if factor is None or not report.groups.get(factor):
        return go.Figure().update_layout(title="No group figures (they need labels and factor values)")
    rows = [r for r in report.groups[factor] if r["accuracy"] is not None and not math.isnan(r["accuracy"].value)]
    names = [f"{report._class(r['label'])} / {report.value_name(factor, r['value'])}" for r in rows]
    worst = report.worst_group.get(factor, {})
    colours = ["#d62728" if (r["label"], r["value"]) == (worst.get("label"), worst.get("value")) else "#4c78a8"
               for r in rows]
    values = [r["accuracy"].value for r in rows]
    figure = go.Figure(go.Bar(
        x=names, y=values, marker_color=colours, customdata=[r["n"] for r in rows],
        error_y={"type": "data", "symmetric": False,
                 "array": [r["accuracy"].high - r["accuracy"].value for r in rows],
                 "arrayminus": [r["accuracy"].value - r["accuracy"].low for r in rows]},
        hovertemplate="%{x}: accuracy %{y:.1%} (%{customdata} images)<extra></extra>",
    ))
    figure.update_layout(title=f"Accuracy per (label, {factor}) group; worst group in red",
                         xaxis_title=f"group (label / {factor} value)", yaxis_title="accuracy (95% bootstrap interval)",
                         yaxis_range=[0, 1.05], yaxis_tickformat=".0%", height=380)
    return figure


def counterfactual_share_chart(report: AuditReport):
    """Bars: the mean share of the counterfactual edits that goes into each part (factor or attribute).

    Returns:
        ``plotly.graph_objects.Figure`` (empty with a title saying why when no counterfactuals were run).
    """
    import plotly.graph_objects as go

    parts = [k for k, e in report.shares.items() if e is not None and not math.isnan(e.value)]
    if not parts:
        return go.Figure().update_layout(title="No counterfactual shares (no counterfactuals were run)")
    parts.sort(key=lambda k: report.shares[k].value)
    estimates = [report.shares[k] for k in parts]
    figure = go.Figure(go.Bar(
        x=[e.value for e in estimates], y=parts, orientation="h",
        marker_color=["#d62728" if k in report.shortcuts else "#4c78a8" for k in parts],
        error_x={"type": "data", "symmetric": False, "array": [e.high - e.value for e in estimates],
                 "arrayminus": [e.value - e.low for e in estimates]},
        hovertemplate="%{y}: %{x:.1%} of the edit<extra></extra>",
    ))
    validity = report.counterfactual_validity
    figure.update_layout(
        title=f"Where the counterfactual edits go ({validity.n} counterfactuals, {validity.value:.0%} valid)",
        xaxis_title="mean share of the edit (valid counterfactuals, 95% bootstrap interval)", yaxis_title="part",
        xaxis_range=[0, 1.05], xaxis_tickformat=".0%", height=max(260, 60 + 35 * len(parts)),
        margin={"l": 140, "r": 30, "t": 60, "b": 60},
    )
    return figure


# --- HTML ----------------------------------------------------------------------------------------------------------
def _cell(estimate: Estimate | None, percent: bool) -> str:
    if estimate is None or math.isnan(estimate.value):
        return "<td>n/a</td>"
    if percent:
        text = f"{estimate.value:.1%}"
        span = "" if math.isnan(estimate.low) else f"<br><small>[{estimate.low:.1%}, {estimate.high:.1%}]</small>"
    else:
        text = f"{estimate.value:.3f}"
        span = "" if math.isnan(estimate.low) else f"<br><small>[{estimate.low:.3f}, {estimate.high:.3f}]</small>"
    return f"<td>{text}{span}</td>"


def table_html(report: AuditReport) -> str:
    """The factor table as an HTML ``<table>`` (rows: factors; columns: figures with 95% intervals)."""
    percent = {"flip_rate", "counterfactual_share", "counterfactual_dominant", "counterfactual_sufficient",
               "worst_group_accuracy"}
    shown = [name for name in FIGURES if any(
        not math.isnan(report.figures.get(f, {}).get(name, Estimate.missing()).value) for f in report.factors)]
    head = "".join(f"<th title='{html.escape(FIGURES[n])}'>{html.escape(n.replace('_', ' '))}</th>" for n in shown)
    body = []
    for factor in report.ranking():
        flag = ("shortcut" if factor in report.shortcuts else "relied on (expected)" if factor in report.flagged
                else "")
        cells = "".join(_cell(report.figures.get(factor, {}).get(n), n in percent) for n in shown)
        style = " style='background:#fde0dc'" if factor in report.shortcuts else ""
        body.append(f"<tr{style}><th>{html.escape(factor)}</th>{cells}<td>{flag}</td></tr>")
    return ("<table class='cfnb-audit'><thead><tr><th>factor</th>" + head + "<th>flag</th></tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def gallery_html(report: AuditReport) -> str:
    """The gallery's pairs as HTML figures (before, after, caption)."""
    if not report.gallery:
        return "<p>No pairs to show.</p>"
    items = []
    for pair in report.gallery:
        items.append(
            "<figure class='pair'>"
            f"<img src='{png_data_uri(pair.before)}' alt='before'><img src='{png_data_uri(pair.after)}' alt='after'>"
            f"<figcaption><b>{html.escape(pair.factor)}</b>: {html.escape(pair.caption())}</figcaption></figure>"
        )
    return "<div class='gallery'>" + "".join(items) + "</div>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table.cfnb-audit { border-collapse: collapse; font-size: 0.9em; }
table.cfnb-audit th, table.cfnb-audit td { border: 1px solid #ccc; padding: 4px 8px; text-align: center; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
figure.pair { margin: 0; width: 220px; } figure.pair img { width: 100px; image-rendering: pixelated; margin: 2px; }
figure.pair figcaption { font-size: 0.8em; } pre { white-space: pre-wrap; background: #f6f6f6; padding: 1em; }
"""


def report_html(report: AuditReport, include_plotlyjs: bool | str = True) -> str:
    """A complete HTML page for ``report``; with ``include_plotlyjs=True`` it works offline (plotly.js inlined)."""
    charts = [reliance_chart(report), group_accuracy_chart(report), counterfactual_share_chart(report)]
    parts = [chart.to_html(full_html=False, include_plotlyjs=include_plotlyjs if i == 0 else False)
             for i, chart in enumerate(charts)]
    settings = html.escape(json.dumps(report.settings, indent=1, default=str))
    title = f"cfnb audit: {html.escape(report.classifier)}"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1><h2>Findings</h2><pre>{html.escape(report.summary())}</pre>"
        f"<h2>Figures per factor</h2>{table_html(report)}"
        f"<p><small>{'; '.join(html.escape(k.replace('_', ' ') + ': ' + v) for k, v in FIGURES.items())}.</small></p>"
        f"<h2>Reliance</h2>{parts[0]}<h2>Groups</h2>{parts[1]}<h2>Counterfactual edits</h2>{parts[2]}"
        f"<h2>Most telling pairs</h2>{gallery_html(report)}"
        f"<h2>Settings</h2><pre>{settings}</pre><p><small>{report.n_images:,} images in {report.seconds:.1f} s "
        f"({report.images_per_second:.0f} images/s).</small></p></body></html>"
    )
