"""Plotly charts of an ``AuditReport``, one function per figure (plotly is imported when a chart is drawn).

- ``reliance_chart``: each factor's reliance score (flip rate) with its interval and the flagging threshold;
- ``group_accuracy_chart``: accuracy per (label, factor value) group of one factor, the worst group in red;
- ``counterfactual_share_chart``: where the counterfactual edits go.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .report import AuditReport

if TYPE_CHECKING:
    import plotly.graph_objects as go


def reliance_chart(report: AuditReport) -> go.Figure:
    """Horizontal bars: each factor's reliance score (flip rate) with its 95% interval, the flagging threshold as a
    dashed line; flagged shortcuts red, expected factors grey-blue, the rest grey.

    Returns:
        ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    order = report.ranking()[::-1]
    values = [0.0 if math.isnan(report.scores[f].value) else report.scores[f].value for f in order]
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


def group_accuracy_chart(report: AuditReport, factor: str | None = None) -> go.Figure:
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
    names = [f"{report.class_name(r['label'])} / {report.value_name(factor, r['value'])}" for r in rows]
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
                         xaxis_title=f"group (label / {factor} value)",
                         yaxis_title="accuracy (95% bootstrap interval)", yaxis_range=[0, 1.05],
                         yaxis_tickformat=".0%", height=380)
    return figure


def counterfactual_share_chart(report: AuditReport) -> go.Figure:
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
