"""``attribute_deltas``: which attributes an attribute-method counterfactual changed, and by how much."""
from __future__ import annotations

import plotly.graph_objects as go

from ..results import Counterfactuals
from .summaries import check_index, summarize

RAISED_COLOUR = "#d6604d"
LOWERED_COLOUR = "#4393c3"


def attribute_deltas(result: Counterfactuals, index: int = 0, *, top: int | None = None) -> go.Figure:
    """Horizontal bars of the attribute changes of counterfactual ``index``, largest ``|change|`` at the top.

    Args:
        result: a result of the ``"attribute"`` method (it stores ``extras["attribute_delta"]`` (N, A) and
            ``extras["attribute_names"]``).
        index: which counterfactual.
        top: show only the ``top`` largest changes (default: all).

    Raises:
        ValueError: the result has no attribute deltas (another method made it).
        IndexError: ``index`` out of range.
    """
    i = check_index(result, index)
    deltas, names = result.extras.get("attribute_delta"), result.extras.get("attribute_names")
    if deltas is None or names is None:
        raise ValueError(
            f"this result (method={result.method!r}) has no attribute deltas: only method='attribute' records "
            "extras['attribute_delta'] and extras['attribute_names']; use compare() or animate() for other methods"
        )
    delta = [float(v) for v in deltas[i]]
    if len(delta) != len(names):
        raise ValueError(f"attribute_delta has {len(delta)} values but attribute_names has {len(names)} names")
    order = sorted(range(len(delta)), key=lambda k: abs(delta[k]), reverse=True)[:top]
    order.reverse()  # Plotly draws the first bar at the bottom
    start, end = result.extras.get("attribute_start"), result.extras.get("attribute_end")
    ends = start is not None and end is not None
    hover = "%{y}: %{x:+.3f}" + ("<br>%{customdata[0]:.2f} → %{customdata[1]:.2f}" if ends else "") + "<extra></extra>"
    custom = [[float(start[i, k]), float(end[i, k])] for k in order] if start is not None and end is not None else None
    summary = summarize(result, i)
    figure = go.Figure(go.Bar(
        x=[round(delta[k], 4) for k in order], y=[str(names[k]) for k in order], orientation="h",
        marker_color=[RAISED_COLOUR if delta[k] > 0 else LOWERED_COLOUR for k in order],
        customdata=custom, hovertemplate=hover, text=[f"{delta[k]:+.2f}" for k in order], textposition="outside",
    ))
    limit = max([abs(v) for v in delta] + [0.05]) * 1.25
    figure.update_layout(
        # Two short lines: Plotly never wraps a title, and one line overflows a figure 550 px wide.
        title=dict(text=f"Attribute changes: {summary.source_name} → {summary.target_name} {summary.mark}<br>"
                        f"<sup>p({summary.target_name}) {summary.p_target_before:.2f} → "
                        f"{summary.p_target_after:.2f}</sup>",
                   x=0.5, xanchor="center"),
        height=max(220, 28 * len(order) + 130), margin=dict(l=20, r=20, t=70, b=50), showlegend=False,
        xaxis=dict(title="change in attribute value (counterfactual − original)", range=[-limit, limit],
                   zeroline=True, zerolinewidth=2, zerolinecolor="#444"),
        yaxis=dict(title="attribute", automargin=True),
    )
    return figure
