"""``probability_bars``: a classifier's belief about one image, as bars (what the explainer panel shows before a
search, so the student sees what is to be changed)."""
from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import torch

PREDICTED_COLOUR = "#1f77b4"
TARGET_COLOUR = "#ff7f0e"
OTHER_COLOUR = "#c7c7c7"


def probability_bars(probabilities: torch.Tensor | Sequence[float], class_names: Sequence[str], *,
                        target: int | None = None, title: str = "") -> go.Figure:
    """Vertical bars of K class probabilities; the predicted class in blue, ``target`` (if given) in orange.

    Raises:
        ValueError: probabilities and names differ in length, or ``target`` is out of range.
    """
    values = [float(p) for p in (probabilities.flatten() if torch.is_tensor(probabilities) else probabilities)]
    if len(values) != len(class_names):
        raise ValueError(f"{len(values)} probabilities but {len(class_names)} class names")
    if target is not None and not 0 <= target < len(values):
        raise ValueError(f"target {target} out of range for {len(values)} classes")
    predicted = max(range(len(values)), key=values.__getitem__)
    colours = [PREDICTED_COLOUR if k == predicted else TARGET_COLOUR if k == target else OTHER_COLOUR
               for k in range(len(values))]
    figure = go.Figure(go.Bar(x=[str(n) for n in class_names], y=values, marker_color=colours,
                              hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    figure.update_layout(title=dict(text=title, x=0.5, xanchor="center"), height=260,
                         margin=dict(l=40, r=20, t=50 if title else 20, b=40), showlegend=False,
                         yaxis=dict(title="probability", range=[0, 1]), xaxis=dict(type="category"))
    return figure
