"""Files from results: an animated GIF (Pillow, no ffmpeg), the animation as stand-alone HTML, and an HTML gallery."""
from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..results import Counterfactuals
from .animation import animate
from .compare import choose_indices
from .images import difference_rgb, png_data_uri, signed_difference, to_pil
from .summaries import CHANGE_THRESHOLD, check_index, summarize, transition_title

_BAR_DONE = (44, 160, 44)
_BAR_TODO = (220, 220, 220)


def gif_frames(result: Counterfactuals, index: int = 0, scale: int = 4, progress_bar: bool = True) -> list[Image.Image]:
    """The trajectory of sample ``index`` as RGB PIL frames, enlarged ``scale`` times (nearest neighbours).

    With ``progress_bar``, a strip under the image fills as the path advances: it shows where a frame lies on the
    path and keeps consecutive frames distinct (GIF writers merge identical frames) as long as the image is at least
    as wide, in pixels, as the trajectory is long.
    """
    i = check_index(result, index)
    trajectory = result.trajectory[:, i]
    length = trajectory.shape[0]
    frames = []
    for t in range(length):
        picture = to_pil(trajectory[t], scale).convert("RGB")
        if progress_bar:
            bar = max(2, scale)
            canvas = Image.new("RGB", (picture.width, picture.height + bar), _BAR_TODO)
            canvas.paste(picture, (0, 0))
            done = round(picture.width * (t + 1) / length)
            canvas.paste(_BAR_DONE, (0, picture.height, done, picture.height + bar))
            picture = canvas
        frames.append(picture)
    return frames


def to_gif(result: Counterfactuals, path: str | Path, index: int = 0, duration_ms: int = 80, scale: int = 4, *,
           hold_ms: int = 800, loop: int = 0, progress_bar: bool = True) -> Path:
    """Write the transition of sample ``index`` as an animated GIF, one GIF frame per trajectory frame.

    All frames share one 256-colour palette made from the whole path (no flicker between frames).

    Args:
        result: the output of ``cfnb.explain``.
        path: the ``.gif`` file to write.
        index: which counterfactual.
        duration_ms: time per frame.
        scale: nearest-neighbour enlargement (4 turns 28x28 digits into 112x112).
        hold_ms: extra time on the last frame before the loop restarts.
        loop: 0 loops forever, n plays n + 1 times.
        progress_bar: draw a strip under the image that fills along the path.

    Returns:
        ``path`` as a ``Path``.
    """
    if not isinstance(duration_ms, int) or duration_ms < 10:
        raise ValueError(f"duration_ms must be an int >= 10 (GIF timing is in 10 ms units), got {duration_ms!r}")
    frames = gif_frames(result, index, scale, progress_bar)
    width, height = frames[0].size
    sheet = Image.new("RGB", (width, height * len(frames)))
    for n, frame in enumerate(frames):
        sheet.paste(frame, (0, n * height))
    palette = sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    paletted = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    durations = [duration_ms] * len(paletted)
    durations[-1] += max(0, hold_ms)
    path = Path(path)
    paletted[0].save(path, format="GIF", save_all=True, append_images=paletted[1:], duration=durations, loop=loop,
                     disposal=1)
    return path


def to_html(result: Counterfactuals, path: str | Path, index: int = 0, *, include_plotlyjs: bool | str = True,
            **options: Any) -> Path:
    """Write ``animate(result, index, **options)`` as a stand-alone HTML page.

    Args:
        include_plotlyjs: True embeds plotly.js (about 4.6 MB, works offline); ``"cdn"`` links it instead.
        **options: passed to ``animate`` (``top_k``, ``frames``, ``duration_ms``...).
    """
    path = Path(path)
    animate(result, index, **options).write_html(path, include_plotlyjs=include_plotlyjs, full_html=True,
                                                 auto_play=False)
    return path


_GALLERY_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: 6px 10px; text-align: center; vertical-align: middle; }
th { background: #f4f4f4; position: sticky; top: 0; }
img { image-rendering: pixelated; image-rendering: crisp-edges; display: block; margin: auto; }
.valid { color: #2ca02c; font-weight: bold; } .invalid { color: #d62728; font-weight: bold; }
.summary { margin-bottom: 1em; } .note { color: #666; font-size: 0.9em; }
code { background: #f4f4f4; padding: 1px 4px; }
"""


def gallery_html(result: Counterfactuals, path: str | Path, title: str = "cfnb counterfactuals", *,
                 indices: Sequence[int] | None = None, max_images: int = 64, image_px: int = 112) -> Path:
    """Write a self-contained HTML page: one table row per counterfactual with inline PNGs and its numbers.

    Columns: original, counterfactual, signed difference (blue darker, red brighter, one scale for the page),
    source → target, prediction and its probability, valid, mean L1, share of changed pixels, steps.

    Args:
        result: the output of ``cfnb.explain``.
        path: the ``.html`` file to write.
        title: the page's heading.
        indices: samples to show (default: the first ``max_images``).
        max_images: at most this many rows.
        image_px: displayed image width in CSS pixels (PNGs stay at their own size, drawn pixelated).
    """
    chosen = choose_indices(result, indices, max_images)
    limit = max(max(float(signed_difference(result.original[i], result.counterfactual[i]).abs().max()) for i in chosen),
                1e-6)
    rows = []
    for i in chosen:
        s = summarize(result, i)
        difference = difference_rgb(result.original[i], result.counterfactual[i], limit)

        def img(uri: str, alt: str) -> str:
            return f'<img src="{uri}" width="{image_px}" alt="{html.escape(alt)}">'

        rows.append(
            "<tr>"
            f"<td>{i}</td>"
            f"<td>{img(png_data_uri(result.original[i]), f'original {i}')}</td>"
            f"<td>{img(png_data_uri(result.counterfactual[i]), f'counterfactual {i}')}</td>"
            f"<td>{img(png_data_uri(difference), f'difference {i}')}</td>"
            f"<td>{html.escape(s.source_name)} → {html.escape(s.target_name)}</td>"
            f"<td>{html.escape(s.prediction_change)}</td>"
            f"<td class=\"{'valid' if s.valid else 'invalid'}\">{s.mark}</td>"
            f"<td>{s.l1:.4f}</td><td>{100 * s.changed:.1f}%</td><td>{s.steps}</td>"
            "</tr>"
        )
    valid = sum(bool(result.valid[i]) for i in chosen)
    settings = html.escape(json.dumps(result.settings, sort_keys=True, default=str))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_GALLERY_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="summary">method <code>{html.escape(result.method)}</code> · {len(chosen)} of {len(result)} counterfactual(s)
shown · valid {valid}/{len(chosen)} · {result.seconds:.2f} s for the batch<br>
<span class="note">settings: <code>{settings}</code></span></p>
<table>
<thead><tr><th>#</th><th>original</th><th>counterfactual</th><th>difference</th><th>source → target</th>
<th>prediction: before → after</th><th>valid</th><th>mean L1</th><th>changed pixels</th><th>steps</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p class="note">Difference: counterfactual − original, averaged over channels; red brighter, blue darker, full colour
at |Δ| ≥ {limit:.3f}. Changed pixels: some channel changed by more than {CHANGE_THRESHOLD}. First row's transition:
{html.escape(transition_title(result, chosen[0]))}.</p>
</body></html>
"""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path

