"""``image_grid``: a few images side by side with captions (a data set's samples, originals above their edits)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..checks import check_images
from .images import png_data_uri


def image_grid(images: torch.Tensor, captions: Sequence[str] | None = None, *, columns: int | None = None,
               title: str = "", scale: int = 1, cell_px: int = 110) -> go.Figure:
    """A grid of images in [0, 1] (grey or RGB), filled row by row, each with its caption above it.

    Args:
        images: (N, C, H, W), C = 1 or 3.
        captions: N captions (default: the indices).
        columns: images per row (default: all in one row, at most 8).
        title: the figure's title.
        scale: nearest-neighbour enlargement of the PNGs.
        cell_px: pixels per grid cell.

    Raises:
        TypeError / ValueError: not an image batch in [0, 1], or a caption count that differs from N.
    """
    check_images(images, channels=(1, 3))
    n = len(images)
    captions = [str(i) for i in range(n)] if captions is None else [str(c) for c in captions]
    if len(captions) != n:
        raise ValueError(f"{len(captions)} captions for {n} images")
    columns = columns or min(n, 8)
    rows = math.ceil(n / columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=captions, horizontal_spacing=0.01,
                           vertical_spacing=min(0.08, 0.3 / rows))
    for k in range(n):
        figure.add_trace(go.Image(source=png_data_uri(images[k], scale), hoverinfo="skip"),
                         row=k // columns + 1, col=k % columns + 1)
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_annotations(font_size=11)
    figure.update_layout(title=dict(text=title, x=0.5, xanchor="center"), height=cell_px * rows + (70 if title else 30),
                         width=max(cell_px * columns, 320), margin=dict(l=10, r=10, t=60 if title else 30, b=10))
    return figure
