"""``animate``: the path from original to counterfactual as a Plotly figure with frames, play/pause and a slider."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..results import Counterfactuals
from .images import png_data_uri
from .summaries import check_index, transition_title

SOURCE_COLOUR = "#d62728"
TARGET_COLOUR = "#2ca02c"
OTHER_COLOURS = ("#1f77b4", "#9467bd", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf")


def frame_positions(length: int, frames: int | None) -> list[int]:
    """Trajectory indices to show: all of them, or ``frames`` evenly spaced ones keeping the first and last."""
    if frames is None or length <= frames:
        return list(range(length))
    if frames < 2:
        raise ValueError(f"frames must be at least 2, got {frames}")
    return sorted(set(np.linspace(0, length - 1, frames).round().astype(int).tolist()))


def shown_classes(probabilities: np.ndarray, source: int, target: int, top_k: int) -> list[int]:
    """Source, target, then the classes reaching the highest probability along the path, ``top_k`` in all."""
    chosen = [source] + ([target] if target != source else [])
    for k in np.argsort(-probabilities.max(axis=0), kind="stable"):
        if len(chosen) >= top_k:
            break
        if int(k) not in chosen:
            chosen.append(int(k))
    return chosen

def flip_frame(probabilities: np.ndarray, target: int) -> int | None:
    """First frame whose predicted class is ``target`` (None if the path never gets there)."""
    hits = np.flatnonzero(probabilities.argmax(axis=1) == target)
    return int(hits[0]) if hits.size else None


def animate(
    result: Counterfactuals,
    index: int = 0,
    *,
    top_k: int = 4,
    frames: int | None = 64,
    duration_ms: int = 120,
    scale: int = 1,
    height: int = 420,
) -> go.Figure:
    """The transition of counterfactual ``index``: image frames beside the class probabilities along the path.

    Left, the image at the current frame (PNG data URIs drawn by ``go.Image``; grey images stay grey). Right, the
    probabilities of the source, the target and the next likeliest classes over the frames, with markers at the
    current frame and a dashed line where the prediction flips to the target. Play/pause buttons and a slider step
    through the frames. A plain ``go.Figure`` (FigureWidget refuses frames): show it, or ``write_html`` it.

    Args:
        result: the output of ``cfnb.explain``.
        index: which counterfactual of the batch.
        top_k: classes drawn on the probability plot (source and target always among them).
        frames: at most this many frames (evenly spaced, first and last kept); None shows all.
        duration_ms: time per frame when playing.
        scale: nearest-neighbour enlargement of the PNGs (1 keeps the JSON small; Plotly draws pixels sharp).
        height: figure height in pixels.

    Returns:
        A ``go.Figure`` with one Plotly frame per shown trajectory frame.

    Raises:
        TypeError / IndexError: ``result`` is not a ``Counterfactuals`` or ``index`` is out of range.
    """
    i = check_index(result, index)
    trajectory = result.trajectory[:, i]
    probabilities = result.trajectory_probabilities[:, i].float().numpy()
    length = trajectory.shape[0]
    positions = frame_positions(length, frames)
    source, target = int(result.source[i]), int(result.target[i])
    classes = shown_classes(probabilities, source, target, top_k)
    flip = flip_frame(probabilities, target)
    uris = {t: png_data_uri(trajectory[t], scale) for t in positions}
    steps = np.arange(length)

    def caption(t: int) -> str:
        k = int(probabilities[t].argmax())
        return f"frame {t}/{length - 1}: predicts {result.name_of(k)} ({probabilities[t, k]:.2f})"

    def markers(t: int) -> dict:
        return dict(type="scatter", xaxis="x2", yaxis="y2", x=[t] * len(classes),
                    y=[round(float(probabilities[t, k]), 4) for k in classes], mode="markers",
                    marker=dict(size=11, color=colours, line=dict(width=1, color="white")), showlegend=False,
                    hovertemplate="frame %{x}: p = %{y:.3f}<extra></extra>")

    def role(k: int) -> str:
        return " (source)" if k == source else " (target)" if k == target else ""

    colours = [SOURCE_COLOUR if k == source else TARGET_COLOUR if k == target else OTHER_COLOURS[n % len(OTHER_COLOURS)]
               for n, k in enumerate(classes)]
    first = positions[0]
    # One image trace per frame, stacked; a frame shows its own by opacity. Every PNG is decoded once, when the
    # figure is drawn: swapping the source of a single image trace instead blanks it for a moment on each frame
    # (plotly.js reloads a changed source asynchronously), which flickers while playing.
    data = [dict(type="image", source=uris[t], xaxis="x", yaxis="y", opacity=1.0 if t == first else 0.0,
                 hoverinfo="skip", name=f"frame {t}") for t in positions]
    for k, colour in zip(classes, colours):
        data.append(dict(type="scatter", xaxis="x2", yaxis="y2", x=steps.tolist(),
                         y=probabilities[:, k].round(4).tolist(), mode="lines", name=f"{result.name_of(k)}{role(k)}",
                         line=dict(color=colour, width=3 if k in (source, target) else 1.5),
                         hovertemplate=f"{result.name_of(k)}: " + "p = %{y:.3f} at frame %{x}<extra></extra>"))
    marker_trace = len(data)
    data.append(markers(first))
    image_traces = list(range(len(positions)))
    plotly_frames = [dict(name=str(t), data=[dict(type="image", opacity=1.0 if u == t else 0.0) for u in positions]
                          + [markers(t)], traces=image_traces + [marker_trace],
                          layout=dict(xaxis=dict(title=dict(text=caption(t))))) for t in positions]
    annotations = [
        dict(text="image along the path", xref="x domain", yref="paper", x=0.5, y=1.0, yanchor="bottom",
             showarrow=False, font=dict(size=16)),
        dict(text="class probabilities along the path", xref="x2 domain", yref="paper", x=0.5, y=1.0,
             yanchor="bottom", showarrow=False, font=dict(size=16)),
    ]
    shapes = []
    if flip is not None:
        text = ("already the target" if flip == 0 and source == target
                else f"flips to {result.name_of(target)} at frame {flip}")
        shapes.append(dict(type="line", xref="x2", yref="y2 domain", x0=flip, x1=flip, y0=0, y1=1,
                           line=dict(color=TARGET_COLOUR, dash="dash", width=1.5)))
        left = flip > (length - 1) * 0.6
        annotations.append(dict(text=text, xref="x2", yref="y2 domain", x=flip, y=1.0,
                                xanchor="right" if left else "left",
                                yanchor="top", showarrow=False, font=dict(color=TARGET_COLOUR)))
    else:
        annotations.append(dict(text=f"never predicted {result.name_of(target)}", xref="x2 domain", yref="y2 domain",
                                x=0.98, y=0.98, xanchor="right", yanchor="top", showarrow=False,
                                font=dict(color=SOURCE_COLOUR)))
    slider_steps = [dict(method="animate", label=str(t), args=[[str(t)], dict(
        mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))]) for t in positions]
    hidden = dict(showticklabels=False, showgrid=False, zeroline=False)
    layout = dict(
        title=dict(text=transition_title(result, i), x=0.5, xanchor="center"),
        height=height, margin=dict(l=30, r=20, t=80, b=120),
        xaxis=dict(domain=[0.0, 0.34], anchor="y", title=dict(text=caption(first)), **hidden),
        yaxis=dict(domain=[0.0, 1.0], anchor="x", **hidden),
        xaxis2=dict(domain=[0.44, 1.0], anchor="y2", title=dict(text="frame along the path (0 = original)"),
                    range=[-0.5, length - 0.5]),
        yaxis2=dict(domain=[0.0, 1.0], anchor="x2", title=dict(text="class probability"), range=[0, 1.05]),
        annotations=annotations, shapes=shapes,
        legend=dict(orientation="h", x=1.0, xanchor="right", y=-0.22, yanchor="top", title=dict(text="class: ")),
        # The slider starts right of the buttons (about 150 px) even in a figure 550 px wide.
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.32, xanchor="left", yanchor="top",
                          pad=dict(r=10, t=0), showactive=False, buttons=[
            dict(label="▶ play", method="animate", args=[None, dict(
                frame=dict(duration=duration_ms, redraw=True), fromcurrent=True, transition=dict(duration=0))]),
            dict(label="❚❚ pause", method="animate", args=[[None], dict(
                mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))]),
        ])],
        sliders=[dict(active=0, steps=slider_steps, x=0.32, len=0.68, y=-0.3, yanchor="top", font=dict(size=10),
                      currentvalue=dict(prefix="frame ", visible=True, xanchor="left"), pad=dict(t=0, b=0))],
    )
    return go.Figure(dict(data=data, layout=layout, frames=plotly_frames))  # validated once, as a whole
