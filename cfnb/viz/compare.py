"""``compare``: original | counterfactual | signed difference for many counterfactuals, one row each."""
from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..results import Counterfactuals
from .images import DIFFERENCE_COLORSCALE, png_data_uri, signed_difference
from .summaries import check_index, summarize


def choose_indices(result: Counterfactuals, indices: Sequence[int] | None, max_images: int) -> list[int]:
    """The samples to show: ``indices`` (checked) or the first ones, at most ``max_images``."""
    if not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"max_images must be a positive int, got {max_images!r}")
    if len(result) == 0:
        raise ValueError("the result holds no counterfactuals to show")
    chosen = list(range(len(result))) if indices is None else [check_index(result, int(i)) for i in indices]
    if not chosen:
        raise ValueError("indices is empty; give at least one sample index")
    return chosen[:max_images]


def compare(
    result: Counterfactuals,
    indices: Sequence[int] | None = None,
    max_images: int = 8,
    *,
    row_height: int = 170,
) -> go.Figure:
    """A grid with one row per counterfactual: original, counterfactual and their signed difference.

    The difference is ``counterfactual − original`` averaged over channels, drawn as a heat map on one diverging
    colour scale shared by all rows (centred at 0: red brighter, blue darker), with a colour bar. Rows are labelled
    ``source→target ✓`` (✓ valid, ✗ not).

    Args:
        result: the output of ``cfnb.explain``.
        indices: samples to show (default: the first ones).
        max_images: at most this many rows.
        row_height: pixels per row.

    Raises:
        ValueError / IndexError: no samples, or an index out of range.
    """
    chosen = choose_indices(result, indices, max_images)
    rows = len(chosen)
    differences = [signed_difference(result.original[i], result.counterfactual[i]) for i in chosen]
    limit = max(max(float(d.abs().max()) for d in differences), 1e-6)
    figure = make_subplots(
        rows=rows, cols=3, horizontal_spacing=0.03, vertical_spacing=min(0.04, 0.3 / rows),
        subplot_titles=["original", "counterfactual", "difference"] + [""] * (3 * rows - 3),
    )
    for row, (i, difference) in enumerate(zip(chosen, differences), start=1):
        summary = summarize(result, i)
        figure.add_trace(go.Image(source=png_data_uri(result.original[i]), name=f"#{i} original",
                                  hovertemplate=f"#{i} original" + " x %{x}, y %{y}<extra></extra>"), row=row, col=1)
        figure.add_trace(go.Image(source=png_data_uri(result.counterfactual[i]), name=f"#{i} counterfactual",
                                  hovertemplate=f"#{i} counterfactual" + " x %{x}, y %{y}<extra></extra>"),
                         row=row, col=2)
        figure.add_trace(go.Heatmap(z=difference.numpy().round(3), coloraxis="coloraxis", name=f"#{i} difference",
                                    hovertemplate="x %{x}, y %{y}: Δ %{z:.3f}<extra></extra>"), row=row, col=3)
        figure.update_yaxes(title_text=f"#{i}  {summary.pair}", title_font=dict(
            color="#2ca02c" if summary.valid else "#d62728"), row=row, col=1)
        figure.update_yaxes(autorange="reversed", scaleanchor=f"x{3 * (row - 1) + 3}", row=row, col=3)
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    valid = sum(bool(result.valid[i]) for i in chosen)
    figure.update_layout(
        title=dict(text=f"{result.method}: {rows} counterfactual(s), {valid}/{rows} valid", x=0.5, xanchor="center"),
        height=row_height * rows + 90, margin=dict(l=90, r=20, t=80, b=20), plot_bgcolor="white",
        coloraxis=dict(colorscale=DIFFERENCE_COLORSCALE, cmid=0.0, cmin=-limit, cmax=limit,
                       colorbar=dict(title=dict(text="Δ intensity<br>(cf − original)"), y=1.0, yanchor="top",
                                     len=min(1.0, 300 / (row_height * rows)))),
    )
    return figure
