"""``ExplainerPanel``: pick an image, a target class and a method, press Explain, watch the counterfactual appear."""
from __future__ import annotations

import html
import threading
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import torch
from torch import nn

from ..checks import check_classifier, check_images, class_index, class_names_of
from ..forward import probabilities
from ..methods import registry as method_registry
from ..results import Counterfactuals
from ..viz.animation import animate
from ..viz.images import display_scale, png_bytes
from ..viz.probabilities import probability_bars
from .display import figure_bundle, guarded, placeholder_png, wrapping_row
from .option_controls import OptionControls
from .result_view import ResultView
from .run_controls import Call, RunControls
from .tasks import CancelToken, ProgressFeed, torch_threads

ExplainFn = Callable[..., Counterfactuals]


def default_explain() -> ExplainFn:
    """``cfnb.explain``, imported when first needed."""
    from ..engine import explain

    return explain


def possible_methods(classifier: nn.Module, helpers: dict[str, Any]) -> list[str]:
    """The registered methods that can run with ``classifier`` and the helper models given, in registry order."""
    return [m.name for m in method_registry.available() if m.missing(classifier, helpers) is None]


def panel_images(images: Any) -> tuple[torch.Tensor, Any, Any]:
    """``(images, labels, class_names)`` from a tensor or a data set with ``.images`` (labels and names may be None).

    Raises:
        TypeError / ValueError: not a non-empty floating (N, C, H, W) tensor in [0, 1].
    """
    labels = class_names = None
    if hasattr(images, "images"):
        labels, class_names = getattr(images, "labels", None), getattr(images, "class_names", None)
        images = images.images
    return check_images(images), labels, class_names


class ExplainerPanel(widgets.VBox):
    """An interactive counterfactual explainer: controls, a progress bar, the result and its animation.

    Pick an image (slider or thumbnails), a target class, a method (only those possible with the models given) and
    its settings, then press **Explain**. The settings are built from the method's option schema
    (``cfnb.methods.get(name).options``): its main options in one row, the rest under "more options"; a newly
    registered method or option appears here without any change to the panel. The search runs in a worker thread,
    so the notebook stays responsive; **Cancel** stops it within a step and shows the best counterfactual found so
    far. While a search runs the settings and the Explain button are disabled; a second explain started anyway
    (``explain``/``explain_async``, or ``explain_button.click()`` from code) cancels the running one first and waits
    for it to stop (its result is then discarded). Errors, such as bad settings, show as one red line in the panel.

    Args:
        classifier: a PyTorch classifier returning logits.
        images: (N, C, H, W) in [0, 1], or a dataset with ``.images`` (and ``.labels``, ``.class_names``).
        labels: (N,) true labels, shown beside the prediction.
        class_names: K class names (default: the dataset's, ``classifier.class_names``, or the indices).
        generator / decoder / editor / attribute_classifier: helper models, keyword-only, that make the methods
            needing them possible ("latent"/"causal", "mirror", "attribute").
        oracle: an independent classifier; its verdict on the counterfactual is shown ("oracle agrees").
        methods: the methods to offer (default: every registered method possible with the models given).
        explain_fn: the function that explains (default: ``cfnb.explain``, looked up at call time).
        device: where ``explain`` computes (default: the classifier's device).
        frames: trajectory frames for the animation.
        seed: passed to ``explain``.
        options: method options for ``explain``; those with a control start it at that value (e.g.
            ``{"steps": 50}``), the others are passed as they are (e.g. ``{"spurious": ["colour"]}`` for "causal").
        thumbnails: thumbnails per page of the strip.
        image_px: displayed image width.
        animation: show the ``animate`` figure under the result (and, before a search, the class probabilities of
            the selected image, which also has the page load Plotly before the first transition).
        threads: torch threads while a search runs (default: one fewer than torch's setting, at least one, so
            a browser on the same CPU stays responsive; see ``cfnb.widgets.tasks.browser_friendly_threads``).
        warm_up: run a one-step search and build one animation (and its display bundle) while the panel is built,
            so the first click on Explain does not pay for Plotly's first figure and renderer imports and the
            models' first passes (about 4 s of a 4.7 s first click, measured).

    Attributes:
        result: the last ``Counterfactuals`` (None before the first run). figure: its animation figure.
        error: the message on show (None when none). option_controls: the current method's settings.
    """

    def __init__(
        self,
        classifier: nn.Module,
        images: Any,
        *,
        labels: Sequence[int] | torch.Tensor | None = None,
        class_names: Sequence[str] | None = None,
        generator: nn.Module | None = None,
        decoder: nn.Module | None = None,
        editor: nn.Module | None = None,
        attribute_classifier: nn.Module | None = None,
        oracle: nn.Module | None = None,
        methods: Sequence[str] | None = None,
        explain_fn: ExplainFn | None = None,
        device: str | torch.device | None = None,
        frames: int = 24,
        seed: int = 0,
        options: dict[str, Any] | None = None,
        thumbnails: int = 8,
        image_px: int = 140,
        animation: bool = True,
        warm_up: bool = True,
        threads: int | None = None,
    ):
        check_classifier(classifier)
        images, data_labels, data_names = panel_images(images)
        labels = data_labels if labels is None else labels
        class_names = data_names if class_names is None else class_names
        self.classifier, self.images, self.oracle = classifier, images, oracle
        self.labels = None if labels is None else torch.as_tensor(labels).long()
        self.helpers = {k: v for k, v in {"generator": generator, "decoder": decoder, "editor": editor,
                                          "attribute_classifier": attribute_classifier}.items() if v is not None}
        self.device, self.frames, self.seed, self.animation = device, frames, seed, animation
        self.options = dict(options or {})
        self._explain_fn = explain_fn
        self.result: Counterfactuals | None = None
        self.figure: Any = None
        self._probabilities: dict[int, torch.Tensor] = {}

        num_classes = self._probabilities_of(0).shape[0]
        self.class_names = class_names_of(classifier, num_classes, class_names)
        if methods is None:
            offered = possible_methods(classifier, self.helpers)
        else:
            problems = [why for m in methods if (why := method_registry.get(m).missing(classifier, self.helpers))]
            if problems:
                raise ValueError("cannot offer these methods: " + "; ".join(problems))
            offered = list(methods)
        if not offered:
            raise ValueError("no counterfactual method is possible with the models given")

        style = {"description_width": "initial"}
        self.index = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image #",
                                       continuous_update=False, style=style, layout=widgets.Layout(width="340px"))
        self.thumbnail_count = max(1, min(thumbnails, len(images)))
        self._thumb_images = [widgets.Image(value=placeholder_png(), format="png", width=48)
                              for _ in range(self.thumbnail_count)]
        self._thumb_buttons = [widgets.Button(description="", layout=widgets.Layout(width="52px", padding="0"))
                               for _ in range(self.thumbnail_count)]
        self._thumb_page = -1
        self.thumbnail_strip = widgets.HBox([widgets.VBox([im, bt], layout=widgets.Layout(align_items="center",
                                                                                          flex="0 0 auto"))
                                             for im, bt in zip(self._thumb_images, self._thumb_buttons)],
                                            layout=wrapping_row("flex-start"))
        self.target = widgets.Dropdown(options=[(f"{k}: {n}" if n != str(k) else n, k) for k, n in
                                                enumerate(self.class_names)], description="target class",
                                       style=style, layout=widgets.Layout(width="240px"))
        self.method = widgets.Dropdown(options=offered, value=offered[0], description="method", style=style,
                                       layout=widgets.Layout(width="200px"))
        self.option_controls = OptionControls()
        self._fixed = [self.index, self.target, self.method, *self._thumb_buttons]
        self.controls = RunControls(self._fixed, threads=threads)
        self.explain_button, self.cancel_button = self.controls.explain_button, self.controls.cancel_button
        self.progress, self.status, self.errors = self.controls.progress, self.controls.status, self.controls.errors
        self.selection = widgets.HTML(value="")
        self.view = ResultView(image_px)

        self.index.observe(guarded(self._on_index, self.errors), names=["value"])
        self.method.observe(guarded(self._on_method, self.errors), names=["value"])
        self.explain_button.on_click(guarded(lambda _: self.explain_async(), self.errors))
        for position, button in enumerate(self._thumb_buttons):
            button.on_click(guarded(self._thumbnail_clicked(position), self.errors))

        super().__init__([
            widgets.HTML("<b>cfnb counterfactual explainer</b>"),
            self.index, self.thumbnail_strip,
            widgets.HBox([self.target, self.method], layout=wrapping_row()),
            self.option_controls,
            self.controls, self.selection, self.view,
        ])
        self._show_options()
        self._on_index({"new": 0})
        if warm_up:
            self._warm_up()

    def _warm_up(self) -> None:
        """One cheap search and figure, thrown away; best effort (a real problem shows on the first Explain)."""
        try:
            target = (int(self._probabilities_of(0).argmax()) + 1) % len(self.class_names)
            quick = {"steps": 1} if "steps" in method_registry.get(self.method.value).option_names else {}
            explain_fn = self._explain_fn or default_explain()
            with torch_threads(self.controls.threads):  # the CPU kernels are prepared per thread count too
                result = explain_fn(self.classifier, self.images[0:1], target, method=self.method.value,
                                    **self.helpers, device=self.device, seed=self.seed, frames=self.frames,
                                    progress=False, class_names=self.class_names, **{**self.options, **quick})
            self._oracle_row(result)
            if self.animation:
                figure_bundle(animate(result, 0))  # the first bundle imports Plotly's renderers (seconds)
        except Exception:
            pass

    # --- state -------------------------------------------------------------------------------------------------
    @property
    def error(self) -> str | None:
        """The error message on show, or None."""
        return self.errors.message

    @property
    def running(self) -> bool:
        """A search is running."""
        return self.controls.busy

    def _probabilities_of(self, index: int) -> torch.Tensor:
        if index not in self._probabilities:
            if len(self._probabilities) > 256:
                self._probabilities.clear()
            self._probabilities[index] = probabilities(self.classifier, self.images[index:index + 1])[0].cpu()
        return self._probabilities[index]

    # --- callbacks ---------------------------------------------------------------------------------------------
    def _thumbnail_clicked(self, position: int) -> Callable[[Any], None]:
        def select(_: Any) -> None:
            self.index.value = self._thumb_page * self.thumbnail_count + position
        return select

    def _draw_thumbnails(self, index: int) -> None:
        page = index // self.thumbnail_count
        if page != self._thumb_page:
            self._thumb_page = page
            for position, (image, button) in enumerate(zip(self._thumb_images, self._thumb_buttons)):
                k = page * self.thumbnail_count + position
                visible = k < len(self.images)
                if visible:
                    picture = self.images[k]
                    image.value = png_bytes(picture, display_scale(picture.shape[-2], picture.shape[-1], 48))
                    button.description = f"#{k}"
                image.layout.visibility = button.layout.visibility = None if visible else "hidden"
        for position, button in enumerate(self._thumb_buttons):
            button.button_style = "info" if page * self.thumbnail_count + position == index else ""

    def _on_index(self, change: dict[str, Any]) -> None:
        index = int(change["new"])
        self._draw_thumbnails(index)
        probs = self._probabilities_of(index)
        predicted = int(probs.argmax())
        if self.target.value == predicted:
            self.target.value = int(probs.argsort(descending=True)[1]) if len(probs) > 1 else predicted
        label = "" if self.labels is None else f" · label {self.class_names[int(self.labels[index])]}"
        self.selection.value = (f"image #{index}{html.escape(label)} · predicted "
                                f"{html.escape(self.class_names[predicted])} ({float(probs[predicted]):.2f})")
        self.view.show_original(self.images[index], f"{self.class_names[predicted]} ({float(probs[predicted]):.2f})")
        if self.animation:  # also makes the page load Plotly before the first transition arrives
            self.view.show_figure(probability_bars(
                probs, self.class_names, title=f"the classifier on image #{index} (the transition comes here)"))

    def _on_method(self, change: dict[str, Any]) -> None:
        self._show_options()

    def _show_options(self) -> None:
        """Build the settings of the method chosen (each at the panel's ``options`` value, else its default)."""
        self.option_controls.show(method_registry.get(self.method.value), self.options)
        self.controls.disable = [*self._fixed, *self.option_controls.widgets()]

    # --- explaining --------------------------------------------------------------------------------------------
    def _configure(self, index: int | None, target: int | str | None, method: str | None,
                   settings: dict[str, Any]) -> dict[str, Any]:
        """Move the controls to the values asked for; return the call's options (the panel's ``options``, the
        controls' values, then ``settings``)."""
        if index is not None:
            if not 0 <= int(index) < len(self.images):
                raise IndexError(f"index {index} out of range for {len(self.images)} images")
            self.index.value = int(index)
        if method is not None:
            if method not in self.method.options:
                offered = ", ".join(self.method.options)
                raise ValueError(f"method {method!r} is not offered here; choose one of {offered}")
            self.method.value = method
        if target is not None:
            self.target.value = class_index(target, self.class_names)
        spec = method_registry.get(self.method.value)
        for name, value in settings.items():
            if name in self.option_controls.controls:
                self.option_controls.set(name, spec.option(name).check(value))
        return {**self.options, **self.option_controls.values(), **settings}

    def _caller(self, request: dict[str, Any]) -> Call:
        def call(token: CancelToken, feed: ProgressFeed) -> Counterfactuals:
            explain_fn = self._explain_fn or default_explain()
            index = request["index"]
            return explain_fn(self.classifier, self.images[index:index + 1], request["target"],
                              method=request["method"], **self.helpers, device=self.device, seed=self.seed,
                              frames=self.frames, progress=feed, should_stop=token.should_stop,
                              class_names=self.class_names, **request["options"])
        return call

    def _present(self, result: Counterfactuals) -> None:
        """Show the counterfactual and its numbers (fast); ``_present_animation`` follows."""
        self.result, self.figure = result, None
        self.view.show(result, 0, extra_rows=self._oracle_row(result),
                       figure_note="drawing the transition…" if self.animation else "")

    def _present_animation(self, result: Counterfactuals) -> None:
        """Build and show the transition animation of the result on show (a few hundred ms with the browser)."""
        if self.animation:
            self.figure = animate(result, 0)
            self.view.show_figure(self.figure)

    def _oracle_row(self, result: Counterfactuals) -> dict[str, str]:
        if self.oracle is None:
            return {}
        verdict = int(probabilities(self.oracle, result.counterfactual[:1])[0].argmax())
        target = int(result.target[0])
        mark = "✓" if verdict == target else "✗"
        name = self.class_names[verdict] if verdict < len(self.class_names) else str(verdict)
        return {"oracle agrees": f"{mark} oracle predicts {name}"}

    def _request(self, index: int | None, target: int | str | None, method: str | None,
                 settings: dict[str, Any]) -> dict[str, Any]:
        self.controls.cancel(wait=True, supersede=True)  # the running search's result is discarded
        options = self._configure(index, target, method, dict(settings))
        return {"index": int(self.index.value), "target": int(self.target.value), "method": self.method.value,
                "options": options}

    def explain(self, index: int | None = None, target: int | str | None = None, method: str | None = None,
                **settings: Any) -> Counterfactuals | None:
        """Explain synchronously (cancelling a running search first), update the view, return the result.

        Args:
            index / target / method: set the controls first (None keeps the current value; target may be a name).
            **settings: options of the method (those with a control are moved on it first).

        Returns:
            The ``Counterfactuals`` (also in ``panel.result``), or None if the call failed: the message then shows in
            the panel and in ``panel.error``.
        """
        try:
            request = self._request(index, target, method, settings)
        except (ValueError, TypeError, IndexError) as error:
            self.controls.fail(error)
            return None
        return self.controls.run(request["method"], self._caller(request), self._present,
                                 self._present_animation)

    def explain_async(self, index: int | None = None, target: int | str | None = None, method: str | None = None,
                      **settings: Any) -> threading.Thread | None:
        """Start explaining in a worker thread (cancelling a running search first) and return the thread.

        Same arguments as ``explain``. Returns None (and shows the message) when the arguments are invalid.
        """
        try:
            request = self._request(index, target, method, settings)
        except (ValueError, TypeError, IndexError) as error:
            self.controls.fail(error)
            return None
        return self.controls.start(request["method"], self._caller(request), self._present,
                                   self._present_animation)

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until no search runs (after ``explain_async`` or a click on Explain); False on timeout."""
        return self.controls.wait(timeout)

    def cancel(self, wait: bool = True) -> bool:
        """Stop the running search (it returns what it has, which is shown). Returns whether one was running."""
        return self.controls.cancel(wait=wait)

    def close(self) -> None:
        """Cancel any search and close every widget of the panel."""
        if getattr(self, "controls", None) is not None:  # also called by __del__ of a half-built panel
            self.controls.cancel(wait=True, supersede=True)
        for child in descendants(self):
            child.close()
        super().close()


def descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    """Every widget inside ``widget`` (children first), for closing a panel completely."""
    found: list[widgets.Widget] = []
    for child in getattr(widget, "children", ()):
        found.extend(descendants(child))
        found.append(child)
    return found

