"""``AttributePanel``: edit a face attribute by attribute, watch the classifier respond live, explain with GCI."""
from __future__ import annotations

import collections
import html
import threading
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import torch
from torch import nn

from ..checks import check_classifier, class_index, class_names_of
from ..forward import forward_in_batches
from ..modes import eval_mode
from ..results import Counterfactuals
from ..viz.attributes import attribute_deltas
from ..viz.images import difference_rgb, display_scale, png_bytes
from .display import SLIDER_TRACK_PX, ImageSlot, guarded, name_width_px, wrapping_row
from .explainer_panel import ExplainFn, default_explain, descendants, panel_images
from .result_view import ResultView
from .run_controls import Call, RunControls
from .tasks import CancelToken, ProgressFeed


class AttributePanel(widgets.VBox):
    """Attribute sliders that redraw a face with an attribute editor, and the classifier's outputs moving live.

    Each attribute has a slider (0..1); moving one redraws the face with ``editor`` and runs ``classifier`` on it.
    Updates run in a worker thread, at most one every ``throttle_s`` seconds, and skip the values passed over while
    one computes (the last value always gets drawn), so dragging never queues work. ``latencies`` keeps the time
    of each update (edit + classify + PNG + widget messages).

    **Explain** runs the attribute method (GCI over the editor's attributes) for the chosen target and shows the
    counterfactual with a bar chart of the attribute changes. For a multi-label classifier the target is an
    attribute to flip (the panel explains the 2-class view ``cfnb.models.AttributeClassifier``); for a multi-class
    classifier it is a class.

    Args:
        classifier: a multi-label classifier (one logit per attribute, read with a sigmoid) or a multi-class one.
        images: (N, 3, H, W) in [0, 1], or a dataset with ``.images``.
        editor: an attribute editor with ``edit(images, attributes)`` (and ideally ``encode``/``decode``, so a
            face is encoded once and only decoded per slider move) and ``attribute_names``; keyword-only.
        attribute_names: the editor's attributes (default ``editor.attribute_names``).
        class_names: names of the classifier's outputs (default: ``classifier.class_names``; or, when the
            classifier has one output per editor attribute, the attribute names).
        explain_fn: the explaining function (default ``cfnb.explain``, looked up at call time).
        multilabel: whether outputs are independent sigmoids (default: guessed as above).
        attribute_classifier: reads the images' current attributes for the sliders' start (default: the
            classifier when multi-label).
        device / frames / seed: passed to ``explain`` (device: default the classifier's).
        options: method options for ``explain`` (e.g. ``{"steps": 50}``).
        threads: torch threads while a search runs (default: one fewer than torch's setting, at least one, so
            a browser on the same CPU stays responsive; see ``cfnb.widgets.tasks.browser_friendly_threads``).
        throttle_s: minimum time between two live updates.
        image_px: displayed image width.
    """

    def __init__(
        self,
        classifier: nn.Module,
        images: Any,
        *,
        editor: nn.Module,
        attribute_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        explain_fn: ExplainFn | None = None,
        multilabel: bool | None = None,
        attribute_classifier: nn.Module | None = None,
        device: str | torch.device | None = None,
        frames: int = 24,
        seed: int = 0,
        throttle_s: float = 0.1,
        image_px: int = 128,
        options: dict[str, Any] | None = None,
        threads: int | None = None,
    ):
        check_classifier(classifier)
        images = panel_images(images)[0]
        if not callable(getattr(editor, "edit", None)) and not (callable(getattr(editor, "encode", None))
                                                                 and callable(getattr(editor, "decode", None))):
            raise TypeError(f"editor must have edit(images, attributes) or encode/decode; "
                            f"{type(editor).__name__} has neither")
        names = list(attribute_names if attribute_names is not None else getattr(editor, "attribute_names", []) or [])
        if not names:
            raise ValueError("attribute_names are needed (the editor has no `attribute_names`)")
        self.classifier, self.images = classifier, images
        self.editor: Any = editor  # any editor with edit(), or encode()/decode()
        self.attribute_names = names
        self._explain_fn = explain_fn
        self.device, self.frames, self.seed = device, frames, seed
        self.options = dict(options or {})
        self.throttle_s = throttle_s
        self.image_px = image_px
        self.result: Counterfactuals | None = None
        self.figure: Any = None
        self.latencies: collections.deque[float] = collections.deque(maxlen=200)
        self._content: Any = None
        self._live_lock = threading.Lock()
        self._live_pending = False
        self._live_thread: threading.Thread | None = None
        self._last_update = 0.0
        self._quiet = False

        outputs = forward_in_batches(classifier, images[:1]).shape[1]
        declared = class_names is not None or bool(getattr(classifier, "class_names", None))
        if multilabel is None:
            multilabel = not declared and outputs == len(names)
        self.multilabel = multilabel
        if multilabel:
            self.output_names = list(getattr(classifier, "attribute_names", None) or names)
            if len(self.output_names) != outputs:
                raise ValueError(f"the multi-label classifier has {outputs} outputs but {len(self.output_names)} "
                                 "attribute names; give attribute_names=... with one name per output")
        else:
            self.output_names = class_names_of(classifier, outputs, class_names)
        self.attribute_classifier = attribute_classifier if attribute_classifier is not None else (
            classifier if multilabel else None)

        style = {"description_width": "initial"}
        self.index = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image #",
                                       continuous_update=False, style=style, layout=widgets.Layout(width="340px"))
        # Fixed widths, from the longest name, keep every slider's readout and every output's value in view.
        label_px = name_width_px(names)
        self.sliders = [widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description=n,
                                            continuous_update=True, readout_format=".2f",
                                            style={"description_width": f"{label_px}px"},
                                            layout=widgets.Layout(width=f"{label_px + SLIDER_TRACK_PX}px"))
                        for n in names]
        self.reset_button = widgets.Button(description="Reset to the image's attributes", icon="undo",
                                           layout=widgets.Layout(width="260px", flex="0 0 auto"))
        self.original = ImageSlot("original", image_px)
        self.edited = ImageSlot("edited", image_px)
        self.change = ImageSlot("change", image_px)
        self.output_bars = [widgets.FloatProgress(value=0.0, min=0.0, max=1.0,
                                                  layout=widgets.Layout(width="160px", flex="0 0 auto"))
                            for _ in self.output_names]
        self.output_values = [widgets.HTML(value="", layout=widgets.Layout(width="48px", flex="0 0 auto"))
                              for _ in self.output_names]
        kind = "sigmoid per attribute" if multilabel else "class probabilities"
        output_px = name_width_px(self.output_names)
        self.outputs_box = widgets.VBox(
            [widgets.HTML(f"<b>classifier outputs</b><br>{kind}, on the edited image")] +
            [widgets.HBox([widgets.HTML(html.escape(n), layout=widgets.Layout(width=f"{output_px}px", flex="0 0 auto")),
                           bar, value])
             for n, bar, value in zip(self.output_names, self.output_bars, self.output_values)],
            layout=widgets.Layout(flex="0 0 auto", margin="8px 0"))
        self.latency = widgets.HTML(value="", layout=widgets.Layout(margin="0 0 0 12px"))
        if multilabel:
            self.target = widgets.Dropdown(options=list(self.output_names), description="attribute to flip",
                                           style=style)
        else:
            self.target = widgets.Dropdown(options=[(n, k) for k, n in enumerate(self.output_names)],
                                           description="target class", style=style)
        self.controls = RunControls([self.index, self.target, self.reset_button, *self.sliders], threads=threads)
        self.explain_button, self.cancel_button = self.controls.explain_button, self.controls.cancel_button
        self.progress, self.status, self.errors = self.controls.progress, self.controls.status, self.controls.errors
        self.view = ResultView(image_px)

        self.index.observe(guarded(self._on_index, self.errors), names=["value"])
        for slider in self.sliders:
            slider.observe(guarded(self._on_slider, self.errors), names=["value"])
        self.reset_button.on_click(guarded(lambda _: self.reset_sliders(), self.errors))
        self.explain_button.on_click(guarded(lambda _: self.explain_async(), self.errors))

        # The sliders beside the faces and the outputs they move (one above the other), so that both stay in view
        # while a slider is dragged; below one another when the cell is too narrow. The live-update line has a row
        # of its own, beside the reset button.
        sliders_column = widgets.VBox(self.sliders, layout=widgets.Layout(flex="0 0 auto", margin="0 24px 8px 0"))
        faces = widgets.HBox([self.original, self.edited, self.change], layout=wrapping_row("flex-start"))
        response_column = widgets.VBox([faces, self.outputs_box], layout=widgets.Layout(flex="0 1 auto"))
        super().__init__([
            widgets.HTML("<b>cfnb attribute editor</b>"), self.index,
            widgets.HBox([sliders_column, response_column], layout=wrapping_row("flex-start")),
            widgets.HBox([self.reset_button, self.latency], layout=wrapping_row()),
            widgets.HBox([self.target], layout=wrapping_row()), self.controls, self.view,
        ])
        self._on_index({"new": 0})

    # --- live editing ------------------------------------------------------------------------------------------
    @property
    def error(self) -> str | None:
        return self.errors.message

    @property
    def attributes(self) -> torch.Tensor:
        """The sliders' values, (1, A)."""
        return torch.tensor([[s.value for s in self.sliders]], dtype=self.images.dtype)

    def image_attributes(self, index: int) -> torch.Tensor | None:
        """The attributes of image ``index`` read by the attribute classifier (rounded, as the attribute method
        starts from them), or None without one that covers the editor's attributes."""
        reader = self.attribute_classifier
        reader_names = list(getattr(reader, "attribute_names", self.output_names)) if reader is not None else []
        if reader is None or not all(n in reader_names for n in self.attribute_names):
            return None
        with torch.no_grad(), eval_mode([reader]):
            probs = torch.sigmoid(reader(self.images[index:index + 1]))
        return probs[:, [reader_names.index(n) for n in self.attribute_names]].round()

    def _on_index(self, change: dict[str, Any]) -> None:
        index = int(change["new"])
        image = self.images[index]
        with torch.no_grad(), eval_mode([self.editor]):
            self._content = self.editor.encode(image[None]) if callable(getattr(self.editor, "encode", None)) and \
                callable(getattr(self.editor, "decode", None)) else None
        self.original.set(png_bytes(image, display_scale(image.shape[-2], image.shape[-1], self.image_px)))
        self.view.show_original(image)
        self.reset_sliders()

    def reset_sliders(self) -> None:
        """Move the sliders to the current image's attributes (0.5 each when they cannot be read) and redraw."""
        start = self.image_attributes(int(self.index.value))
        self._quiet = True
        try:
            for k, slider in enumerate(self.sliders):
                slider.value = float(start[0, k]) if start is not None else 0.5
        finally:
            self._quiet = False
        self.refresh()

    def _on_slider(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        with self._live_lock:
            self._live_pending = True
            if self._live_thread is not None:
                return  # the running loop will pick the latest values up
            self._live_thread = threading.Thread(target=self._live_loop, name="cfnb-live", daemon=True)
            thread = self._live_thread
        thread.start()

    def _live_loop(self) -> None:
        while True:
            with self._live_lock:
                if not self._live_pending:
                    self._live_thread = None
                    return
                self._live_pending = False
            wait = self._last_update + self.throttle_s - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                self.refresh()
            except Exception as error:
                self.errors.show(error)

    def wait_for_updates(self, timeout: float = 5.0) -> bool:
        """Block until pending live updates are drawn (for scripts and tests); False on timeout."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self._live_lock:
                if self._live_thread is None and not self._live_pending:
                    return True
            time.sleep(0.005)
        return False

    def refresh(self) -> float:
        """Redraw the edited face and the classifier's outputs for the sliders' values; returns the seconds taken."""
        start = time.perf_counter()
        self._last_update = start
        attributes = self.attributes
        image = self.images[int(self.index.value)]
        with torch.no_grad(), eval_mode([self.editor, self.classifier]):
            if self._content is not None:
                edited = self.editor.decode(self._content, attributes)
            else:
                edited = self.editor.edit(image[None], attributes)
            logits = self.classifier(edited)
        values = torch.sigmoid(logits[0]) if self.multilabel else torch.softmax(logits[0], 0)
        scale = display_scale(image.shape[-2], image.shape[-1], self.image_px)
        self.edited.set(png_bytes(edited[0], scale))
        self.change.set(png_bytes(difference_rgb(image, edited[0]), scale), "red brighter, blue darker")
        for bar, text, value in zip(self.output_bars, self.output_values, values.tolist()):
            with bar.hold_sync():
                bar.value = value
                bar.bar_style = "success" if value >= 0.5 else "info"
            text.value = f"{value:.2f}"
        seconds = time.perf_counter() - start
        self.latencies.append(seconds)
        self.latency.value = (f'<span style="color:#555">live update: {1000 * seconds:.0f} ms</span> '
                              '<span style="color:#555;font-size:smaller">(edit, classify, draw)</span>')
        return seconds

    # --- explaining --------------------------------------------------------------------------------------------
    def _explained_model(self, index: int) -> tuple[nn.Module, int, list[str]]:
        """(classifier to explain, target, its class names) for the target chosen in the dropdown."""
        if not self.multilabel:
            return self.classifier, int(self.target.value), list(self.output_names)
        from ..models import AttributeClassifier

        view = AttributeClassifier(self.classifier, list(self.output_names), self.target.value)
        with torch.no_grad(), eval_mode([self.classifier]):
            present = bool(view(self.images[index:index + 1])[0].argmax() == 1)
        return view, 0 if present else 1, view.class_names

    def _caller(self, index: int) -> tuple[Call, str]:
        model, target, names = self._explained_model(index)
        helpers = {"attribute_classifier": self.attribute_classifier} if (
            not self.multilabel and self.attribute_classifier is not None) else {}

        def call(token: CancelToken, feed: ProgressFeed) -> Counterfactuals:
            explain_fn = self._explain_fn or default_explain()
            return explain_fn(model, self.images[index:index + 1], target, method="attribute", editor=self.editor,
                              **helpers, device=self.device, seed=self.seed, frames=self.frames, progress=feed,
                              should_stop=token.should_stop, class_names=names, **self.options)

        return call, names[target]

    def _present(self, result: Counterfactuals) -> None:
        figure = attribute_deltas(result, 0)
        rows = {}
        deltas, names = result.extras.get("attribute_delta"), result.extras.get("attribute_names")
        if deltas is not None and names is not None:
            from ..viz.summaries import describe_attribute_change

            rows["in words"] = describe_attribute_change(list(names), deltas[0], result.name_of(int(result.target[0])))
        self.result, self.figure = result, figure
        self.view.show(result, 0, figure=figure, extra_rows=rows)

    def explain(self, index: int | None = None, target: int | str | None = None) -> Counterfactuals | None:
        """Explain image ``index`` with the attribute method, synchronously; returns the result (None on error).

        Args:
            index: the image (default: the current one).
            target: an attribute name to flip (multi-label) or a class (multi-class); default: the dropdown's.
        """
        try:
            call, label = self._request(index, target)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            self.controls.fail(error)
            return None
        return self.controls.run(f"attribute → {label}", call, self._present)

    def explain_async(self, index: int | None = None, target: int | str | None = None) -> threading.Thread | None:
        """Like ``explain``, in a worker thread (cancelling a running search first); returns the thread."""
        try:
            call, label = self._request(index, target)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            self.controls.fail(error)
            return None
        return self.controls.start(f"attribute → {label}", call, self._present)

    def _request(self, index: int | None, target: int | str | None) -> tuple[Call, str]:
        self.controls.cancel(wait=True, supersede=True)
        self.wait_for_updates()
        if index is not None:
            if not 0 <= int(index) < len(self.images):
                raise IndexError(f"index {index} out of range for {len(self.images)} images")
            self.index.value = int(index)
        if target is not None:
            if self.multilabel:
                if target not in self.output_names:
                    raise ValueError(f"unknown attribute {target!r}; known: {', '.join(self.output_names)}")
                self.target.value = target
            else:
                self.target.value = class_index(target, self.output_names)
        return self._caller(int(self.index.value))

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until no search runs (after ``explain_async`` or a click on Explain); False on timeout."""
        return self.controls.wait(timeout)

    def cancel(self, wait: bool = True) -> bool:
        """Stop the running search (what it found is shown). Returns whether one was running."""
        return self.controls.cancel(wait=wait)

    def close(self) -> None:
        """Cancel any search, stop live updates and close every widget of the panel."""
        if getattr(self, "controls", None) is not None:  # also called by __del__ of a half-built panel
            self.controls.cancel(wait=True, supersede=True)
            self.wait_for_updates()
        for child in descendants(self):
            child.close()
        super().close()
