"""``ComparePanel``: one image, one target, one method, two to four classifiers side by side."""
from __future__ import annotations

import html
import threading
from collections.abc import Sequence
from typing import Any, cast

import ipywidgets as widgets
import torch

from ..checks import class_index
from ..comparison import (
    Classifiers,
    Comparison,
    ExplainFn,
    check_channels,
    check_method,
    comparable_methods,
    compare_classifiers,
    helpers_for,
    named_classifiers,
    shared_class_names,
)
from ..forward import probabilities
from ..methods import registry as method_registry
from ..results import Counterfactuals
from ..viz.images import difference_rgb, display_scale, png_bytes, signed_difference
from ..viz.summaries import summarize
from .display import ImageSlot, guarded, wrapping_row
from .explainer_panel import descendants, panel_images
from .option_controls import OptionControls
from .result_view import WAITING_NOTE
from .run_controls import Call, Present, RunControls
from .tasks import CancelToken, ProgressFeed, torch_threads

VALID_COLOUR, INVALID_COLOUR = "#2ca02c", "#d62728"


def probability_table(before: torch.Tensor, after: torch.Tensor, class_names: Sequence[str], target: int,
                      top: int = 10) -> str:
    """HTML bars of the class probabilities on the original (grey) and on the counterfactual (blue), with figures.

    Shows every class when there are at most ``top``, else the ``top`` most probable after the edit (the target
    always among them); the target's row is in bold.
    """
    order = after.argsort(descending=True).tolist()
    shown = order if len(order) <= top else order[:top]
    if target not in shown:
        shown = [*shown[:-1], target]
    rows = []
    for k in sorted(shown):
        p0, p1 = float(before[k]), float(after[k])
        weight = "font-weight:bold;" if k == target else ""
        rows.append(
            f"<tr style='{weight}line-height:13px'><td style='padding:0 6px 0 0'>{html.escape(class_names[k])}</td>"
            "<td style='padding:0;width:90px'>"
            f"<div style='background:#bbb;height:4px;width:{90 * p0:.0f}px'></div>"
            f"<div style='background:#1f77b4;height:6px;width:{90 * p1:.0f}px'></div></td>"
            f"<td style='padding:0 0 0 6px;white-space:nowrap'>{p0:.2f} → {p1:.2f}</td></tr>")
    return ("<table style='border-collapse:collapse;font-size:11px'>"
            "<tr style='color:#555'><td>class</td><td>p before / after</td><td></td></tr>" + "".join(rows)
            + "</table>")


class ClassifierColumn(widgets.VBox):
    """One classifier's column: its name and reading of the original, the counterfactual, the difference image,
    whether the counterfactual reached the target for it, and the class probabilities before and after."""

    def __init__(self, name: str, image_px: int = 112):
        self.name, self.image_px = name, image_px
        self.header = widgets.HTML(value=f"<b>{html.escape(name)}</b>")
        self.counterfactual = ImageSlot("counterfactual", image_px)
        self.difference = ImageSlot("difference", image_px)
        self.verdict = widgets.HTML(value="")
        self.probabilities = widgets.HTML(value="")
        self.others = widgets.HTML(value="")
        self.counterfactual.clear(WAITING_NOTE)
        self.difference.clear(WAITING_NOTE)
        super().__init__([self.header, widgets.HBox([self.counterfactual, self.difference],
                                                   layout=wrapping_row("flex-start")), self.verdict,
                          self.probabilities, self.others],
                         layout=widgets.Layout(padding="0 4px", margin="0 16px 8px 0", flex="0 0 auto"))

    def show_reading(self, probs: torch.Tensor, class_names: Sequence[str]) -> None:
        """Show the classifier's prediction on the original; clears the previous counterfactual."""
        predicted = int(probs.argmax())
        self.header.value = (f"<b>{html.escape(self.name)}</b><br><span style='color:#555'>reads the original as "
                             f"{html.escape(class_names[predicted])} ({float(probs[predicted]):.2f})</span>")
        self.counterfactual.clear(WAITING_NOTE)
        self.difference.clear(WAITING_NOTE)
        self.verdict.value = self.probabilities.value = self.others.value = ""

    def show(self, result: Counterfactuals, index: int = 0, others: dict[str, str] | None = None) -> None:
        """Show counterfactual ``index`` of ``result``; ``others`` maps each other classifier to its reading of it."""
        s = summarize(result, index)
        original, counterfactual = result.original[index], result.counterfactual[index]
        scale = display_scale(original.shape[-2], original.shape[-1], self.image_px)
        limit = float(signed_difference(original, counterfactual).abs().max())
        self.counterfactual.set(png_bytes(counterfactual, scale), f"{s.prediction_name} ({s.p_prediction_after:.2f})")
        self.difference.set(png_bytes(difference_rgb(original, counterfactual), scale), f"max |Δ| {limit:.2f}")
        colour = VALID_COLOUR if s.valid else INVALID_COLOUR
        reached = "reached" if s.valid else "did not reach"
        notes = []
        if bool(result.extras.get("already_target", torch.zeros(len(result), dtype=torch.bool))[index]):
            notes.append("already the target: nothing to change")
        if result.settings.get("cancelled"):
            notes.append("cancelled: best found so far")
        note = f"<br><span style='color:#555'>{html.escape('; '.join(notes))}</span>" if notes else ""
        self.verdict.value = (f"<span style='color:{colour}'>{s.mark} {reached} the target "
                              f"{html.escape(s.target_name)}</span><br>{html.escape(s.prediction_line)}<br>"
                              f"<span style='color:#555'>L1 {s.l1:.3f} · {100 * s.changed:.0f}% pixels changed · "
                              f"{s.steps} steps</span>{note}")
        self.probabilities.value = probability_table(result.original_probabilities[index],
                                                     result.probabilities[index], result.class_names,
                                                     int(result.target[index]))
        self.others.value = "" if not others else (
            "<span style='color:#555'>read by the others as: </span>"
            + ", ".join(f"{html.escape(name)} → {html.escape(reading)}" for name, reading in others.items()))


class ComparePanel(widgets.VBox):
    """The same image, target and method on two to four classifiers, side by side.

    Pick an image, a target class and a method (only those every classifier supports with the helper models given)
    and its settings, then press **Explain**: each classifier gets its own counterfactual, shown in its column with
    the difference image, whether it reached the target *for that classifier*, its class probabilities before and
    after, and what the other classifiers read on it. A classifier relying on a shortcut (``colored-mnist-biased``)
    and one that does not (``colored-mnist-unbiased``) then differ in plain sight. The searches run one after the
    other in a worker thread, and each column shows its counterfactual as soon as its search ends; **Cancel** stops
    the running one within a step (the later ones keep their starting point); a second explain cancels the first.
    Errors show as one red line in the panel.

    Args:
        classifiers: 2 to 4 classifiers of the same classes, as a list or a name -> model dict (names default to
            the shipped models' names).
        images: (N, C, H, W) in [0, 1] with the channels every classifier reads, or a data set with ``.images``
            (and ``.labels``, ``.class_names``).
        labels: (N,) true labels, shown beside the image number.
        class_names: K names for all classifiers (default: the data set's, else the classifiers', which must agree).
        generator / decoder / editor / attribute_classifier: helper models, keyword-only: one for all classifiers,
            or a list with one per classifier (``cfnb.compare_classifiers``).
        methods: the methods to offer (default: every registered method all classifiers support).
        options: method options; those with a control start it at that value, the others pass through.
        explain_fn: explains one classifier (default ``cfnb.explain``).
        device / frames / seed: as for ``cfnb.explain``.
        image_px: displayed image width.
        warm_up: run a one-step search per classifier while the panel is built, so the first click does not pay
            for the models' first passes.
        threads: torch threads while searching (default: one fewer than torch's setting, at least one).

    Attributes:
        comparison: the last ``Comparison`` (None before the first run).
        columns: one ``ClassifierColumn`` per classifier, in order.
        names: the classifiers' names.
        error: the message on show (None when none).
    """

    def __init__(
        self,
        classifiers: Classifiers,
        images: Any,
        *,
        labels: Sequence[int] | torch.Tensor | None = None,
        class_names: Sequence[str] | None = None,
        generator: Any = None,
        decoder: Any = None,
        editor: Any = None,
        attribute_classifier: Any = None,
        methods: Sequence[str] | None = None,
        options: dict[str, Any] | None = None,
        explain_fn: ExplainFn | None = None,
        device: str | torch.device | None = None,
        frames: int = 24,
        seed: int = 0,
        image_px: int = 112,
        warm_up: bool = True,
        threads: int | None = None,
    ):
        self.classifiers = named_classifiers(classifiers)
        images, data_labels, data_names = panel_images(images)
        check_channels(self.classifiers, images)
        labels = data_labels if labels is None else labels
        class_names = data_names if class_names is None else class_names
        self.images, self.names = images, list(self.classifiers)
        self.labels = None if labels is None else torch.as_tensor(labels).long()
        self.helpers = {role: model for role, model in {"generator": generator, "decoder": decoder, "editor": editor,
                                                         "attribute_classifier": attribute_classifier}.items()
                        if model is not None}
        self._per_classifier = helpers_for(self.classifiers, self.helpers)
        self.class_names = shared_class_names(self.classifiers, images, class_names)
        self.device, self.frames, self.seed, self.image_px = device, frames, seed, image_px
        self.options = dict(options or {})
        self._explain_fn = explain_fn
        self.comparison: Comparison | None = None
        if methods is None:
            offered = comparable_methods(self.classifiers, self._per_classifier)
        else:
            for method in methods:
                check_method(method, self.classifiers, self._per_classifier)
            offered = list(methods)
        if not offered:
            raise ValueError("no counterfactual method runs on every classifier with the models given; pass the "
                             "helper models a method needs (e.g. generator=... for 'latent')")

        style = {"description_width": "initial"}
        self.index = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image #",
                                       continuous_update=False, style=style, layout=widgets.Layout(width="340px"))
        self.target = widgets.Dropdown(options=[(f"{k}: {n}" if n != str(k) else n, k) for k, n in
                                                enumerate(self.class_names)], description="target class",
                                       style=style, layout=widgets.Layout(width="240px"))
        self.method = widgets.Dropdown(options=offered, value=offered[0], description="method", style=style,
                                       layout=widgets.Layout(width="200px"))
        self.option_controls = OptionControls()
        self._fixed = [self.index, self.target, self.method]
        self.controls = RunControls(self._fixed, threads=threads)
        self.explain_button, self.cancel_button = self.controls.explain_button, self.controls.cancel_button
        self.progress, self.status, self.errors = self.controls.progress, self.controls.status, self.controls.errors
        self.selection = widgets.HTML(value="")
        self.original = ImageSlot("original", image_px)
        self.columns = [ClassifierColumn(name, image_px) for name in self.names]
        self.board = widgets.HBox(
            [widgets.VBox([self.original], layout=widgets.Layout(margin="0 8px 8px 0", flex="0 0 auto")),
             *self.columns],
            layout=wrapping_row("flex-start"))

        self.index.observe(guarded(self._on_index, self.errors), names=["value"])
        self.method.observe(guarded(lambda _: self._show_options(), self.errors), names=["value"])
        self.explain_button.on_click(guarded(lambda _: self.explain_async(), self.errors))

        super().__init__([
            widgets.HTML(f"<b>cfnb classifier comparison</b> · {len(self.names)} classifiers"),
            self.index, widgets.HBox([self.target, self.method], layout=wrapping_row()),
            self.option_controls,
            self.controls, self.selection, self.board,
        ])
        self._show_options()
        self._on_index({"new": 0})
        if warm_up:
            self._warm_up()

    def _warm_up(self) -> None:
        """One one-step search per classifier, thrown away; best effort (a real problem shows on Explain)."""
        try:
            quick = {"steps": 1} if "steps" in method_registry.get(self.method.value).option_names else {}
            with torch_threads(self.controls.threads):
                compare_classifiers(self.classifiers, self.images[0:1], int(self.target.value), self.method.value,
                                    **self.helpers, class_names=self.class_names, device=self.device,
                                    seed=self.seed, frames=self.frames, explain_fn=self._explain_fn,
                                    **{**self.options, **quick})
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

    # --- callbacks ---------------------------------------------------------------------------------------------
    def _on_index(self, change: dict[str, Any]) -> None:
        index = int(change["new"])
        image = self.images[index:index + 1]
        readings = [probabilities(model, image)[0].cpu() for model in self.classifiers.values()]
        first = readings[0]
        if self.target.value == int(first.argmax()) and len(first) > 1:  # never start at the current prediction
            self.target.value = int(first.argsort(descending=True)[1])
        label = "" if self.labels is None else f" · label {self.class_names[int(self.labels[index])]}"
        self.selection.value = html.escape(f"image #{index}{label}")
        scale = display_scale(image.shape[-2], image.shape[-1], self.image_px)
        self.original.set(png_bytes(image[0], scale), f"image #{index}")
        for column, probs in zip(self.columns, readings):
            column.show_reading(probs, self.class_names)

    def _show_options(self) -> None:
        self.option_controls.show(method_registry.get(self.method.value), self.options)
        self.controls.disable = [*self._fixed, *self.option_controls.widgets()]

    # --- explaining --------------------------------------------------------------------------------------------
    def _request(self, index: int | None, target: int | str | None, method: str | None,
                 settings: dict[str, Any]) -> dict[str, Any]:
        self.controls.cancel(wait=True, supersede=True)  # the running comparison's result is discarded
        if index is not None:
            if not 0 <= int(index) < len(self.images):
                raise IndexError(f"index {index} out of range for {len(self.images)} images")
            self.index.value = int(index)
        if method is not None:
            if method not in self.method.options:
                check_method(method, self.classifiers, self._per_classifier)  # names the classifier that cannot
                raise ValueError(f"method {method!r} is not offered here; choose one of "
                                 f"{', '.join(self.method.options)}")
            self.method.value = method
        if target is not None:
            self.target.value = class_index(target, self.class_names)
        spec = method_registry.get(self.method.value)
        for name, value in settings.items():
            if name in self.option_controls.controls:
                self.option_controls.set(name, spec.option(name).check(value))
        options = {**self.options, **self.option_controls.values(), **settings}
        spec.resolve(options)
        return {"index": int(self.index.value), "target": int(self.target.value), "method": self.method.value,
                "options": options}

    def _caller(self, request: dict[str, Any]) -> Call:
        def call(token: CancelToken, feed: ProgressFeed) -> Comparison:
            index = request["index"]

            def show_column(k: int, result: Counterfactuals) -> None:  # each column as soon as its search ends
                if self.controls.runner.is_current(token):
                    self.columns[k].show(result, 0)

            return compare_classifiers(self.classifiers, self.images[index:index + 1], request["target"],
                                       request["method"], **self.helpers, class_names=self.class_names,
                                       device=self.device, seed=self.seed, frames=self.frames, progress=feed,
                                       should_stop=token.should_stop, explain_fn=self._explain_fn,
                                       on_result=show_column, **request["options"])
        # RunControls reads only what a Comparison shares with Counterfactuals (settings, steps_used, len).
        return cast(Call, call)

    def _present(self, comparison: Comparison) -> None:
        """Fill every column with its classifier's counterfactual and what the others read on it."""
        self.comparison = comparison
        for i, (column, result) in enumerate(zip(self.columns, comparison.results)):
            others = {name: self.class_names[int(comparison.cross_predictions[i, j, 0])]
                      for j, name in enumerate(comparison.names) if j != i}
            column.show(result, 0, others)

    def explain(self, index: int | None = None, target: int | str | None = None, method: str | None = None,
                **settings: Any) -> Comparison | None:
        """Explain synchronously on every classifier (cancelling a running search first), fill the columns, and
        return the ``Comparison`` (also in ``panel.comparison``); None when it failed (the message then shows in
        the panel and in ``panel.error``).

        Args:
            index / target / method: set the controls first (None keeps the current value; target may be a name).
            **settings: options of the method (those with a control are moved on it first).
        """
        try:
            request = self._request(index, target, method, settings)
        except (ValueError, TypeError, IndexError) as error:
            self.controls.fail(error)
            return None
        result = self.controls.run(request["method"], self._caller(request), cast(Present, self._present))
        return cast(Comparison | None, result)

    def explain_async(self, index: int | None = None, target: int | str | None = None, method: str | None = None,
                      **settings: Any) -> threading.Thread | None:
        """Start explaining in a worker thread (cancelling a running search first) and return the thread; None (and
        the message shown) when the arguments are invalid. Same arguments as ``explain``."""
        try:
            request = self._request(index, target, method, settings)
        except (ValueError, TypeError, IndexError) as error:
            self.controls.fail(error)
            return None
        return self.controls.start(request["method"], self._caller(request), cast(Present, self._present))

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until no search runs; False on timeout."""
        return self.controls.wait(timeout)

    def cancel(self, wait: bool = True) -> bool:
        """Stop the running comparison (what it found is shown). Returns whether one was running."""
        return self.controls.cancel(wait=wait)

    def close(self) -> None:
        """Cancel any search and close every widget of the panel."""
        if getattr(self, "controls", None) is not None:
            self.controls.cancel(wait=True, supersede=True)
        for child in descendants(self):
            child.close()
        super().close()


__all__ = ["ComparePanel", "ClassifierColumn", "probability_table"]
