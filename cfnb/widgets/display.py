"""Small pieces every panel shares: captioned PNG images, a red error line, guarded callbacks, figures in Outputs.

Stock ipywidgets only (works with ipywidgets 7.7 and 8), no custom JavaScript.
"""
from __future__ import annotations

import functools
import html
import io
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import ipywidgets as widgets

logger = logging.getLogger("cfnb.widgets")

_Callback = TypeVar("_Callback", bound=Callable[..., Any])

ERROR_STYLE = ("color:#a40000;background:#fdecea;border:1px solid #d93025;border-radius:4px;padding:4px 8px;"
               "font-family:monospace;white-space:pre-wrap")


def one_line(error: BaseException) -> str:
    """``TypeName: first line of the message`` (a readable line, not a traceback)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else '(no message)'}"


class ErrorBox(widgets.HTML):
    """A red one-line message box, empty (and hidden) when there is no error."""

    def __init__(self, **kwargs: Any):
        super().__init__(value="", **kwargs)
        self.layout.display = "none"
        self.message: str | None = None
        self.error: BaseException | None = None

    def show(self, error: BaseException | str) -> None:
        """Show ``error`` (an exception or text) as one readable line."""
        self.error = error if isinstance(error, BaseException) else None
        self.message = error if isinstance(error, str) else one_line(error)
        if self.error is not None and not isinstance(self.error, (ValueError, TypeError, KeyError)):
            logger.error("cfnb panel: %s", self.message, exc_info=self.error)
        with self.hold_sync():
            self.value = f'<div style="{ERROR_STYLE}">{html.escape(self.message)}</div>'
            self.layout.display = None

    def clear(self) -> None:
        """Remove the message."""
        self.message, self.error = None, None
        with self.hold_sync():
            self.value = ""
            self.layout.display = "none"


def guarded(callback: _Callback, errors: ErrorBox) -> _Callback:
    """Wrap a widget callback so any exception it raises shows in ``errors`` instead of vanishing into the log."""

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except Exception as error:
            errors.show(error)
            return None

    return cast(_Callback, wrapper)


# Width of a slider beside its description: the track (about 160 px) and the readout with its margins.
SLIDER_TRACK_PX = 250


def name_width_px(names: Sequence[str]) -> int:
    """Room for the longest of ``names`` as a description (about 8 px per character of JupyterLab's 13 px font),
    so that controls described by them line up and none is cut off."""
    return max(80, 8 * max((len(n) for n in names), default=0) + 8)


def wrapping_row(align: str = "center", **layout: Any) -> widgets.Layout:
    """The layout of a row whose items wrap onto the next line when the cell is too narrow (``align``: their
    vertical alignment, a CSS ``align-items`` value; ``layout``: more ``Layout`` properties)."""
    return widgets.Layout(flex_flow="row wrap", align_items=align, **layout)


@functools.lru_cache(maxsize=1)
def placeholder_png() -> bytes:
    """A light-grey square PNG for an image widget with no picture yet (empty bytes show a broken-image icon)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (238, 238, 238)).save(buffer, format="PNG")
    return buffer.getvalue()


class ImageSlot(widgets.VBox):
    """A caption above an ``ipywidgets.Image`` holding PNG bytes (a grey square until it has a picture)."""

    def __init__(self, caption: str, width_px: int = 140):
        self.caption = widgets.HTML(value=f"<b>{html.escape(caption)}</b>")
        self.image = widgets.Image(value=placeholder_png(), format="png", width=width_px)
        self.note = widgets.HTML(value="")
        super().__init__([self.caption, self.image, self.note],
                         layout=widgets.Layout(align_items="center", margin="0 12px 0 0", flex="0 0 auto"))

    def set(self, png: bytes, note: str = "") -> None:
        """Show ``png`` (the grey square when empty) with an optional small note under it."""
        with self.image.hold_sync():
            self.image.value = png or placeholder_png()
        self.note.value = f'<span style="font-size:smaller;color:#555">{html.escape(note)}</span>' if note else ""

    def clear(self, note: str = "") -> None:
        """Show the grey square (and ``note`` under it) instead of a picture."""
        self.set(placeholder_png(), note)


def bundle_renderers() -> list[Any]:
    """The renderers of ``plotly.io.renderers.default`` that ``figure_bundle`` asks for MIME data.

    Only MIME-type renderers count, and of those not the ones that need a page-wide script (``global_init``, as
    ``"notebook"``, ``"kaggle"`` and ``"azure"`` have): Plotly displays that script into the running cell each time
    such a renderer is activated, and their HTML does not draw without it. Plotly 5 (Colab's) names
    ``"plotly_mimetype+notebook"`` as the default in a Jupyter kernel, where Plotly 6 and later name
    ``"plotly_mimetype"``; both leave ``plotly_mimetype`` here. Empty when nothing usable is named (a plain Python
    session's ``"browser"``).
    """
    import plotly.io as pio
    from plotly.io.base_renderers import MimetypeRenderer

    names = [name for name in (pio.renderers.default or "").split("+") if name]
    chosen = [pio.renderers[name] for name in names]
    return [r for r in chosen if isinstance(r, MimetypeRenderer) and not getattr(r, "global_init", False)]


def figure_bundle(figure: Any) -> dict[str, Any]:
    """The MIME bundle of a Plotly figure for the current renderer (``plotly.io.renderers.default``), displaying
    nothing.

    Asks each of ``bundle_renderers()`` for its MIME data without activating it: IPython's formatter would call the
    figure's ``_ipython_display_``, which displays into the running cell, and the figure's ``_repr_mimebundle_``
    activates every default renderer on each call, which for ``"notebook"`` displays Plotly's loader script into the
    running cell. When no usable renderer is named, falls back to Plotly's ``plotly_mimetype`` renderer.
    """
    import plotly.io as pio

    renderers = bundle_renderers() or [pio.renderers["plotly_mimetype"]]
    data = figure.to_dict()
    bundle: dict[str, Any] = {}
    for renderer in renderers:
        bundle.update(renderer.to_mimebundle(data))
    title = getattr(getattr(figure.layout, "title", None), "text", None) or "figure"
    bundle.setdefault("text/plain", f"<Plotly figure: {title}>")
    return bundle


def show_figure(output: widgets.Output, figure: Any) -> None:
    """Replace what ``output`` shows with ``figure`` in one message (``clear_output(wait=True)`` without flicker).

    Safe from a worker thread: it sets the ``Output``'s ``outputs`` instead of capturing ``display`` calls (capture
    relies on the message being processed, which a thread does not have).
    """
    output.outputs = ({"output_type": "display_data", "data": figure_bundle(figure), "metadata": {}},)


def clear(output: widgets.Output) -> None:
    """Remove everything ``output`` shows."""
    output.outputs = ()
