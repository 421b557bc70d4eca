"""``ResultView``: original, counterfactual and difference images with the prediction line and the numbers."""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import torch

from ..results import Counterfactuals
from ..viz.images import difference_rgb, display_scale, png_bytes, signed_difference
from ..viz.summaries import CHANGE_THRESHOLD, SampleSummary, summarize
from .display import ImageSlot, clear, show_figure, wrapping_row

LABEL_CELL = "padding:1px 12px 1px 0;color:#555;white-space:nowrap"  # a number's name never breaks over lines
WAITING_NOTE = "after Explain"  # under the grey squares that hold the places of the counterfactual and difference


class ResultView(widgets.VBox):
    """Shows one counterfactual of a ``Counterfactuals``: three images, the prediction line, a table of numbers and
    (optionally) a figure in an ``Output``.

    Args:
        image_px: displayed width of the images (PNGs are enlarged with nearest neighbours to about this size).
    """

    def __init__(self, image_px: int = 140):
        self.image_px = image_px
        self.original = ImageSlot("original", image_px)
        self.counterfactual = ImageSlot("counterfactual", image_px)
        self.difference = ImageSlot("difference", image_px)
        self.prediction = widgets.HTML(value="")
        self.metrics = widgets.HTML(value="")
        self.figure_output = widgets.Output(layout=widgets.Layout(width="100%"))
        self.summary: SampleSummary | None = None
        for slot in (self.counterfactual, self.difference):
            slot.clear(WAITING_NOTE)
        images = widgets.HBox([self.original, self.counterfactual, self.difference], layout=wrapping_row("flex-start"))
        super().__init__([images, self.prediction, self.metrics, self.figure_output])

    def _png(self, image: torch.Tensor) -> bytes:
        return png_bytes(image, display_scale(image.shape[-2], image.shape[-1], self.image_px))

    def show_original(self, image: torch.Tensor, note: str = "") -> None:
        """Show an image about to be explained; clears the previous counterfactual."""
        self.original.set(self._png(image), note)
        self.counterfactual.clear(WAITING_NOTE)
        self.difference.clear(WAITING_NOTE)
        self.prediction.value = ""
        self.metrics.value = ""
        self.summary = None
        clear(self.figure_output)

    def show(self, result: Counterfactuals, index: int = 0, *, figure: Any = None,
             extra_rows: dict[str, str] | None = None, figure_note: str = "") -> SampleSummary:
        """Show counterfactual ``index`` of ``result`` (and ``figure`` under it, if given, else ``figure_note``, a
        line saying a figure is on its way); returns its summary."""
        s = summarize(result, index)
        original, counterfactual = result.original[index], result.counterfactual[index]
        limit = float(signed_difference(original, counterfactual).abs().max())
        self.original.set(self._png(original), f"{s.source_name} ({s.p_source_before:.2f})")
        self.counterfactual.set(self._png(counterfactual), f"{s.prediction_name} ({s.p_prediction_after:.2f})")
        scale = display_scale(original.shape[-2], original.shape[-1], self.image_px)
        self.difference.set(png_bytes(difference_rgb(original, counterfactual), scale),
                            f"red brighter, blue darker (max |Δ| {limit:.2f})")
        colour = "#2ca02c" if s.valid else "#d62728"
        cancelled = " (cancelled: best found so far)" if result.settings.get("cancelled") else ""
        self.prediction.value = (f'<span style="font-size:larger;color:{colour}">{html.escape(s.prediction_line)}'
                                 f"</span>{html.escape(cancelled)}")
        rows = {
            "valid (prediction = target)": f"{s.mark} {s.target_name} asked, {s.prediction_name} predicted",
            "mean L1 per pixel": f"{s.l1:.4f}",
            f"changed pixels (a channel |Δ| > {CHANGE_THRESHOLD})": f"{100 * s.changed:.1f}%",
            "steps used": str(s.steps),
            "seconds": f"{result.seconds:.2f}",
            **(extra_rows or {}),
        }
        self.metrics.value = ("<table style='border-collapse:collapse'>" + "".join(
            f"<tr><td style='{LABEL_CELL}'>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
            for k, v in rows.items()) + f"</table><span style='color:#555'>method <code>{html.escape(result.method)}"
            "</code></span>")
        if figure is not None:
            show_figure(self.figure_output, figure)
        elif figure_note:
            self.figure_output.outputs = ({"output_type": "display_data", "metadata": {}, "data": {
                "text/plain": figure_note,
                "text/html": f'<span style="color:#555">{html.escape(figure_note)}</span>'}},)
        else:
            clear(self.figure_output)
        self.summary = s
        return s

    def show_figure(self, figure: Any) -> None:
        """Show ``figure`` under the result (replacing what was there)."""
        show_figure(self.figure_output, figure)
