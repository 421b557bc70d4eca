"""cfnb.widgets and cfnb.notebook, headless: panels driven through their widgets' state (no browser, no kernel)."""
from __future__ import annotations

import gc
import re
import sys
import threading
import time
import types
from dataclasses import replace

import ipywidgets as widgets
import pytest
import torch
from fake_results import make_result
from tiny_models import TinyGenerator, intensity_bands

from cfnb.methods.base import interpolate
from cfnb.models import AttributeEditor, GAPClassifier
from cfnb.notebook import setup_notebook
from cfnb.widgets import AttributePanel, ExplainerPanel

torch.set_num_threads(1)
FACE_ATTRIBUTES = ["Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Blond_Hair", "Black_Hair", "Bangs", "Male",
                   "Mustache", "Wearing_Hat", "Pale_Skin", "Rosy_Cheeks"]  # the shipped faces models' attributes


class FakeExplain:
    """Stands in for ``cfnb.explain``: ``steps`` steps of ``delay`` seconds, polling ``should_stop`` like the engine."""

    def __init__(self, steps: int = 5, delay: float = 0.0, error: Exception | None = None, attributes=None):
        self.steps, self.delay, self.error, self.attributes = steps, delay, error, attributes
        self.calls: list[dict] = []
        self.stopped: list[bool] = []
        self.started = threading.Event()

    def __call__(self, classifier, images, target, method="latent", *, progress=None, should_stop=None,
                 class_names=None, frames=24, **options):
        self.calls.append({"target": target, "method": method, "options": options, "images": images})
        self.started.set()
        if self.error is not None:
            raise self.error
        total, done, stopped = options.get("steps", self.steps), 0, False
        for done in range(1, total + 1):
            if should_stop is not None and should_stop():
                stopped, done = True, done - 1
                break
            time.sleep(self.delay)
            if progress is not None:
                progress(done, total)
        self.stopped.append(stopped)
        counterfactual = 1 - images
        result = make_result(n=1, channels=images.shape[1], side=images.shape[-1], frames=5, classes=3, method=method,
                             attributes=self.attributes)
        return replace(result, original=images.clone(), counterfactual=counterfactual,
                       trajectory=interpolate(images, counterfactual, 5), steps_used=torch.tensor([done]),
                       settings={"cancelled": stopped, **{k: v for k, v in options.items() if k != "editor"}},
                       class_names=list(class_names or result.class_names))


@pytest.fixture
def bands():
    return intensity_bands(12, seed=3)


@pytest.fixture
def panel_factory(tiny_classifier, bands):
    made = []

    def make(**kwargs):
        images, labels = bands
        kwargs.setdefault("warm_up", False)  # the fakes below count calls; test_warm_up covers it
        panel = ExplainerPanel(tiny_classifier, images, labels=labels, frames=6, **kwargs)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()


def red_line(panel) -> str:
    assert panel.errors.layout.display is None, "the error box is hidden"
    assert "#d93025" in panel.errors.value
    return panel.error


# --- ExplainerPanel: controls --------------------------------------------------------------------------------------
def test_methods_offered_follow_the_models_given(panel_factory):
    assert panel_factory().method.options == ("pixel", "pgd")
    assert panel_factory(generator=TinyGenerator()).method.options == ("latent", "causal", "pixel", "pgd")
    with_decoder = panel_factory(decoder=torch.nn.Identity())
    assert "mirror" in with_decoder.method.options
    with pytest.raises(ValueError, match="'latent' needs generator"):
        panel_factory(methods=["latent"])


def test_settings_follow_the_method_schema(panel_factory):
    """The controls are the method's option schema: one control per number, flag or choice, at its default."""
    import cfnb

    panel = panel_factory(generator=TinyGenerator())
    panel.method.value = "pixel"
    controls = panel.option_controls.controls
    assert list(controls) == cfnb.methods.get("pixel").option_names
    assert (controls["lam"].value, controls["steps"].value) == pytest.approx((0.1, 300))
    panel.method.value = "pgd"
    assert "lam" not in panel.option_controls.controls and panel.option_controls.controls["steps"].value == 100
    panel.method.value = "causal"
    controls = panel.option_controls.controls
    assert controls["move"].options == ("causal", "spurious") and "spurious" not in controls  # a list: no control
    assert isinstance(controls["grow"], widgets.IntSlider)
    panel.method.value = "latent"
    assert isinstance(panel.option_controls.controls["residual"], widgets.Checkbox)


def test_panel_options_start_the_controls_and_code_never_clips(panel_factory):
    fake = FakeExplain(steps=2)
    panel = panel_factory(explain_fn=fake, options={"steps": 7})
    panel.method.value = "pixel"
    assert panel.option_controls.controls["steps"].value == 7
    panel.explain(steps=5000, lam=2500.0)  # beyond the sliders' spans: widened, passed as given
    assert fake.calls[-1]["options"]["steps"] == 5000 and fake.calls[-1]["options"]["lam"] == 2500.0
    assert panel.option_controls.controls["steps"].value == 5000


def test_index_slider_and_thumbnails_select_the_image(panel_factory, bands):
    panel = panel_factory(thumbnails=4)
    first = panel.view.original.image.value
    assert first and panel.selection.value.startswith("image #0 · label 0 · predicted 0")
    panel.index.value = 1
    assert panel.view.original.image.value != first
    assert "image #1 · label 1" in panel.selection.value
    assert [b.description for b in panel._thumb_buttons] == ["#0", "#1", "#2", "#3"]
    assert panel._thumb_buttons[1].button_style == "info"
    panel._thumb_buttons[3].click()
    assert panel.index.value == 3
    panel.index.value = 9  # next page of thumbnails
    assert [b.description for b in panel._thumb_buttons] == ["#8", "#9", "#10", "#11"]
    assert panel.target.value != int(panel._probabilities_of(9).argmax())  # never the current prediction


# --- ExplainerPanel: explaining ------------------------------------------------------------------------------------
def test_explain_button_runs_in_a_thread_and_shows_the_result(panel_factory, bands):
    fake = FakeExplain(steps=20)
    panel = panel_factory(explain_fn=fake)
    before = panel.view.figure_output.outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"][0]
    assert before["type"] == "bar" and len(before["y"]) == 3  # the selected image's class probabilities
    panel.index.value = 2
    panel.target.value = 0
    panel.method.value = "pixel"
    panel.option_controls.controls["steps"].value = 20
    panel.explain_button.click()
    assert panel.wait(10)
    call = fake.calls[-1]
    assert call["target"] == 0 and call["method"] == "pixel"
    assert {k: call["options"][k] for k in ("lam", "steps", "kappa")} == {"lam": pytest.approx(0.1), "steps": 20,
                                                                         "kappa": 0.0}
    assert torch.equal(call["images"], bands[0][2:3])
    drawn = panel.view.counterfactual.image.value
    assert drawn and drawn != panel.view.original.image.value
    assert panel.view.prediction.value.count("prediction:") == 1
    assert "mean L1 per pixel" in panel.view.metrics.value
    assert "application/vnd.plotly.v1+json" in panel.view.figure_output.outputs[0]["data"]
    assert len(panel.figure.frames) == 5
    assert panel.progress.value == panel.progress.max == 20 and panel.progress.bar_style == "success"
    assert re.fullmatch(r"done in \d+\.\d\d s", panel.status.value)  # not "...; drawing the figure…" any more
    assert not panel.explain_button.disabled and panel.cancel_button.disabled and not panel.index.disabled


def test_real_pixel_explain_through_the_widgets(panel_factory):
    panel = panel_factory()
    panel.index.value = 0
    panel.method.value = "pixel"
    panel.target.value = 2
    panel.explain_button.click()
    assert panel.wait(30)
    assert panel.error is None
    result = panel.result
    assert result.method == "pixel" and int(result.target[0]) == 2 and bool(result.valid[0])
    assert panel.view.prediction.value.endswith("✓</span>")
    assert "prediction: 0 (" in panel.view.prediction.value and "→ 2 (" in panel.view.prediction.value
    assert panel.view.counterfactual.image.value != panel.view.original.image.value


def test_cancel_stops_a_slow_search_within_a_few_steps(panel_factory):
    fake = FakeExplain(steps=2000, delay=0.005)  # 10 s if never cancelled
    panel = panel_factory(explain_fn=fake)
    start = time.perf_counter()
    thread = panel.explain_async(method="pixel", steps=2000)
    assert fake.started.wait(5)
    assert panel.index.disabled and panel.explain_button.disabled and not panel.cancel_button.disabled
    time.sleep(0.1)
    panel.cancel_button.click()
    thread.join(5)
    assert not thread.is_alive() and time.perf_counter() - start < 3
    assert fake.stopped == [True]
    assert panel.result is not None and int(panel.result.steps_used[0]) < 2000
    assert panel.status.value.startswith("cancelled after") and panel.progress.bar_style == "warning"
    assert "cancelled" in panel.view.prediction.value
    assert not panel.explain_button.disabled


def test_cancel_stops_the_real_engine_early(panel_factory):
    panel = panel_factory()
    thread = panel.explain_async(index=0, target=2, method="pixel", steps=100_000, kappa=1e9, lr=1e-4)
    time.sleep(0.3)
    start = time.perf_counter()
    assert panel.cancel()
    thread.join(5)
    assert time.perf_counter() - start < 1.0
    assert panel.result.settings["cancelled"] is True
    assert 0 < int(panel.result.steps_used[0]) < 100_000


def test_a_second_explain_cancels_the_first(panel_factory, bands):
    fake = FakeExplain(steps=2000, delay=0.005)
    panel = panel_factory(explain_fn=fake)
    first = panel.explain_async(index=0, method="pixel", steps=2000)
    assert fake.started.wait(5)
    time.sleep(0.05)
    start = time.perf_counter()
    second = panel.explain_async(index=1, steps=5)
    assert not first.is_alive() and time.perf_counter() - start < 2
    second.join(5)
    assert fake.stopped == [True, False]
    assert torch.equal(panel.result.original, bands[0][1:2])  # the first run's result was discarded
    assert panel.status.value.startswith("done")


def test_clicking_explain_while_running_restarts(panel_factory):
    fake = FakeExplain(steps=2000, delay=0.005)
    panel = panel_factory(explain_fn=fake)
    panel.explain_async(method="pixel", steps=2000)
    assert fake.started.wait(5)
    panel.option_controls.controls["steps"].value = 3
    panel.explain_button.click()  # from code a disabled button still fires: it cancels and restarts
    assert panel.wait(5)
    assert fake.stopped == [True, False] and int(panel.result.steps_used[0]) == 3


def test_bad_settings_show_one_red_line(panel_factory):
    panel = panel_factory()
    assert panel.explain(method="pixel", lam=-1.0, steps=5) is None
    assert red_line(panel) == "ValueError: lam must be a number > 0, got -1.0"
    assert panel.status.value == "failed" and not panel.explain_button.disabled
    assert not panel.option_controls.controls["lam"].disabled
    assert panel.explain(method="pgd", steps=5) is not None
    assert panel.error is None and panel.errors.layout.display == "none"


def test_unknown_options_and_methods_are_reported(panel_factory):
    panel = panel_factory(options={"colour": "red"})
    panel.explain_button.click()
    assert panel.wait(10)
    assert red_line(panel).startswith("TypeError: method='pixel' has no option(s) ['colour']")
    assert panel.explain(method="latent") is None
    assert red_line(panel).startswith("ValueError: method 'latent' is not offered here")


def test_unexpected_errors_are_one_readable_line(panel_factory):
    panel = panel_factory(explain_fn=FakeExplain(error=RuntimeError("out of memory\n  at some deep frame")))
    assert panel.explain() is None
    assert red_line(panel) == "RuntimeError: out of memory"
    assert panel.errors.error is not None  # the exception itself, traceback included, is kept


def test_oracle_verdict_is_shown(panel_factory, tiny_classifier):
    panel = panel_factory(oracle=tiny_classifier)
    panel.explain(index=0, target=1, method="pixel")
    assert "oracle agrees" in panel.view.metrics.value
    assert ("✓ oracle predicts 1" in panel.view.metrics.value) == bool(panel.result.valid[0])


def test_repeated_explains_do_not_grow_memory(panel_factory):
    """100 runs on a tiny model (engine, animation, PNGs, the Output's figure replaced each time) keep memory flat.

    Three checks: (1) every earlier result and figure is garbage-collected (weak references die), (2) no widget
    is created per run (ipywidgets keeps every open widget alive: a FigureWidget per run would pile up), (3) the
    process's peak RSS grows by less than 5 MB. On Linux with ipywidgets 8: +0.8 MB over the first 50 runs after
    warm-up (allocator arenas filling), then about 0.5 kB per run; one leaked figure with its display bundle is
    about 130 kB, so a per-run leak of it would add 13 MB and fail.
    """
    import resource
    import weakref

    from ipywidgets.widgets import widget as widget_module

    _instances = getattr(widget_module, "_instances", None)  # ipywidgets 8
    if _instances is None:
        _instances = widget_module.Widget.widgets  # ipywidgets 7

    panel = panel_factory()
    for k in range(20):
        panel.explain(index=k % 12, target=(k + 1) % 3, method="pixel", steps=3)
    gc.collect()
    unit = 1024 if sys.platform != "darwin" else 1  # ru_maxrss is in kB on Linux, bytes on macOS
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    widget_count = len(_instances)
    refs = []
    for k in range(100):
        assert panel.explain(index=k % 12, target=(k + 1) % 3, method="pixel", steps=3) is not None
        refs.append((weakref.ref(panel.result), weakref.ref(panel.figure)))
    gc.collect()
    assert sum(r() is not None for r, _ in refs) == 1 and sum(f() is not None for _, f in refs) == 1
    assert len(_instances) == widget_count
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit - peak_before
    assert growth < 5_000_000, growth
    assert len(panel.view.figure_output.outputs) == 1


def test_close_closes_every_widget(panel_factory):
    panel = panel_factory()
    inner = [panel.index, panel.view.original.image, panel._thumb_buttons[0], panel.explain_button]
    panel.close()
    assert all(w.comm is None for w in inner) and panel.comm is None


# --- AttributePanel ----------------------------------------------------------------------------------------------
@pytest.fixture
def faces():
    """Untrained models with the shipped faces architectures and sizes: latency is about size, not weights."""
    torch.manual_seed(0)
    editor = AttributeEditor(len(FACE_ATTRIBUTES), FACE_ATTRIBUTES, width=32).eval()
    classifier = GAPClassifier(3, len(FACE_ATTRIBUTES), widths=(32, 64, 128, 128)).eval()
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    return classifier, editor, images


@pytest.fixture
def attribute_panel(faces):
    classifier, editor, images = faces
    panel = AttributePanel(classifier, images, editor=editor)
    yield panel
    panel.close()


def test_attribute_panel_starts_from_the_images_attributes(attribute_panel, faces):
    classifier, _, images = faces
    panel = attribute_panel
    assert panel.multilabel and panel.output_names == FACE_ATTRIBUTES
    expected = torch.sigmoid(classifier(images[:1]))[0].round().tolist()
    assert [s.value for s in panel.sliders] == expected
    assert panel.edited.image.value and panel.original.image.value
    assert len(panel.output_bars) == len(FACE_ATTRIBUTES) and all(0 <= b.value <= 1 for b in panel.output_bars)


def test_moving_a_slider_redraws_the_face_and_the_outputs(attribute_panel):
    panel = attribute_panel
    before_image, before_values = panel.edited.image.value, [b.value for b in panel.output_bars]
    panel.sliders[0].value = 1.0 - panel.sliders[0].value
    assert panel.wait_for_updates(5)
    assert panel.edited.image.value != before_image
    assert [b.value for b in panel.output_bars] != before_values
    assert panel.error is None


def test_slider_updates_are_fast_and_coalesced(attribute_panel):
    panel = attribute_panel
    latencies = sorted(panel.refresh() for _ in range(7))
    assert latencies[3] < 0.2, latencies  # median of a full update for 64x64 faces
    count = len(panel.latencies)
    for value in torch.linspace(0, 1, 30).tolist():
        panel.sliders[1].value = value
    assert panel.wait_for_updates(5)
    assert 1 <= len(panel.latencies) - count < 30  # skipped while computing, at most one per 100 ms
    drawn = panel.edited.image.value
    panel.refresh()
    assert panel.edited.image.value == drawn  # the last value was drawn


def test_attribute_explain_with_the_real_engine(attribute_panel):
    panel = attribute_panel
    panel.options = {"steps": 5}
    result = panel.explain(target="Smiling")
    assert panel.error is None, panel.error
    assert result.method == "attribute" and result.class_names == ["not Smiling", "Smiling"]
    assert panel.figure.data[0].type == "bar" and len(panel.figure.data[0].y) == len(FACE_ATTRIBUTES)
    assert "in words" in panel.view.metrics.value
    assert "application/vnd.plotly.v1+json" in panel.view.figure_output.outputs[0]["data"]


def test_attribute_panel_cancel_and_errors(faces):
    classifier, editor, images = faces
    slow = FakeExplain(steps=2000, delay=0.005, attributes=FACE_ATTRIBUTES)
    panel = AttributePanel(classifier, images, editor=editor, explain_fn=slow)
    thread = panel.explain_async(index=1, target="Male")
    assert slow.started.wait(5)
    assert all(s.disabled for s in panel.sliders)
    panel.cancel_button.click()
    thread.join(5)
    assert slow.stopped == [True] and not any(s.disabled for s in panel.sliders)
    assert slow.calls[0]["method"] == "attribute" and slow.calls[0]["options"]["editor"] is editor
    panel.close()
    bare = AttributePanel(classifier, images, editor=editor, explain_fn=FakeExplain(steps=1))
    assert bare.explain() is None
    assert red_line(bare).startswith("ValueError: this result (method='attribute') has no attribute deltas")
    assert bare.explain(target="Bald") is None
    assert red_line(bare).startswith("ValueError: unknown attribute 'Bald'")
    bare.close()


def test_attribute_panel_with_a_multiclass_classifier(faces):
    _, editor, images = faces
    classifier = GAPClassifier(3, 3).eval()
    fake = FakeExplain(steps=1, attributes=FACE_ATTRIBUTES)
    panel = AttributePanel(classifier, images, editor=editor, class_names=["cat", "dog", "fox"], explain_fn=fake)
    assert not panel.multilabel and panel.target.options == (("cat", 0), ("dog", 1), ("fox", 2))
    assert [s.value for s in panel.sliders] == [0.5] * len(FACE_ATTRIBUTES)  # nothing reads these images' attributes
    assert sum(b.value for b in panel.output_bars) == pytest.approx(1.0, abs=1e-5)
    assert panel.explain(target="fox") is not None and fake.calls[0]["target"] == 2
    panel.close()


# --- setup_notebook ------------------------------------------------------------------------------------------------
def test_setup_notebook_outside_colab_does_nothing(monkeypatch):
    import plotly.io as pio

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    before = pio.renderers.default
    assert "nothing to set up" in setup_notebook()
    assert pio.renderers.default == before


def test_setup_notebook_on_colab(monkeypatch):
    import plotly.io as pio

    calls = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("enabled"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(pio.renderers, "default", pio.renderers.default)
    message = setup_notebook()
    assert calls == ["enabled"] and pio.renderers.default == "colab"
    assert "custom widget manager" in message and "colab" in message


def test_panels_are_stock_widget_compositions(panel_factory):
    panel = panel_factory()
    assert isinstance(panel, widgets.VBox)
    assert type(panel).__module__.startswith("cfnb.") and not hasattr(panel, "_esm")  # no custom front end


def test_warm_up_runs_one_cheap_search_and_never_breaks_the_panel(tiny_classifier, bands):
    import cfnb

    images, labels = bands
    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return cfnb.explain(*args, **kwargs)

    panel = ExplainerPanel(tiny_classifier, images, labels=labels, frames=6, methods=["pixel"], explain_fn=recording)
    assert len(calls) == 1 and calls[0]["steps"] == 1 and calls[0]["method"] == "pixel"
    assert panel.result is None and panel.error is None
    assert not tiny_classifier.training

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    quiet = ExplainerPanel(tiny_classifier, images, labels=labels, frames=6, methods=["pixel"], explain_fn=broken)
    assert quiet.error is None  # the warm-up's failure is not shown; a real Explain shows it
    assert quiet.explain(index=0, target=1) is None and "boom" in quiet.error
    for made in (panel, quiet):
        made.close()


def test_searches_run_on_fewer_torch_threads_and_restore_them(panel_factory):
    seen = []

    def counting_explain(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return FakeExplain(steps=2)(*args, **kwargs)

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so that a search on 1 thread is a visible change on any machine
    try:
        panel = panel_factory(explain_fn=counting_explain, threads=1)
        panel.explain(index=1, target=0, method="pixel")
        assert seen[-1] == 1 and torch.get_num_threads() == 2  # limited during the search, restored after
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        panel_factory(threads=0)


def test_overlapping_thread_limits_restore_the_first_setting():
    from cfnb.widgets.tasks import torch_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch_threads(1):
            with torch_threads(1):
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1  # the outer block still runs
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# --- layout: what a browser shows ---------------------------------------------------------------------------------
# The properties of ipywidgets 7.7's Layout (ipywidgets/widgets/widget_layout.py of 7.7.5): the panels must set no
# other, or 7.7 rejects the widget.
IPYWIDGETS_7_LAYOUT = {
    "align_content", "align_items", "align_self", "bottom", "border", "display", "flex", "flex_flow", "height",
    "justify_content", "justify_items", "left", "margin", "max_height", "max_width", "min_height", "min_width",
    "overflow", "overflow_x", "overflow_y", "order", "padding", "right", "top", "visibility", "width", "object_fit",
    "object_position", "grid_auto_columns", "grid_auto_flow", "grid_auto_rows", "grid_gap", "grid_template_rows",
    "grid_template_columns", "grid_template_areas", "grid_row", "grid_column", "grid_area",
}


def image_widgets(panel) -> list[widgets.Image]:
    from cfnb.widgets.explainer_panel import descendants

    return [w for w in descendants(panel) if isinstance(w, widgets.Image)]


def assert_every_image_is_a_png(panel, state: str) -> None:
    """Each image widget holds bytes a browser draws: a PNG that decodes to a picture (empty bytes show a broken
    image icon)."""
    import io

    from PIL import Image

    images = image_widgets(panel)
    assert images, "the panel has no image widgets"
    for k, image in enumerate(images):
        value = bytes(image.value)
        assert value.startswith(b"\x89PNG\r\n\x1a\n"), f"{state}: image widget {k} holds {value[:12]!r}, not a PNG"
        with Image.open(io.BytesIO(value)) as picture:
            picture.load()
            assert picture.width > 0 and picture.height > 0, f"{state}: image widget {k} is empty"


def test_explainer_panel_images_are_pngs_in_every_state(panel_factory):
    panel = panel_factory(explain_fn=FakeExplain(steps=2), thumbnails=5)  # 12 images: the 3rd page shows 2 of 5
    assert_every_image_is_a_png(panel, "before the first Explain")
    placeholder = panel.view.counterfactual.image.value
    assert placeholder == panel.view.difference.image.value != panel.view.original.image.value
    assert "after Explain" in panel.view.counterfactual.note.value
    panel.explain(index=1, method="pixel")
    assert panel.view.counterfactual.image.value != placeholder
    assert_every_image_is_a_png(panel, "after Explain")
    panel.index.value = 11  # a new image clears the counterfactual; the last page has hidden thumbnails
    assert panel.view.counterfactual.image.value == placeholder
    assert [t.layout.visibility for t in panel._thumb_images] == [None, None, "hidden", "hidden", "hidden"]
    assert_every_image_is_a_png(panel, "after choosing another image")


def test_attribute_panel_images_are_pngs_in_every_state(attribute_panel):
    panel = attribute_panel
    assert_every_image_is_a_png(panel, "before the first Explain")
    panel.options = {"steps": 2}
    assert panel.explain(target="Smiling") is not None, panel.error
    assert_every_image_is_a_png(panel, "after Explain")
    panel.index.value = 2
    assert_every_image_is_a_png(panel, "after choosing another image")
    panel.view.counterfactual.set(b"", "nothing")  # an empty picture becomes the grey square, never empty bytes
    assert_every_image_is_a_png(panel, "after an empty picture")


def test_panels_set_only_layout_properties_ipywidgets_7_has(panel_factory, attribute_panel):
    from cfnb.widgets.explainer_panel import descendants

    panel = panel_factory(generator=TinyGenerator())
    used = set()
    for method in panel.method.options:  # every method's option controls
        panel.method.value = method
        for widget in [panel, *descendants(panel), attribute_panel, *descendants(attribute_panel)]:
            layout = getattr(widget, "layout", None)
            if isinstance(layout, widgets.Layout):
                used |= {name for name in layout.keys if not name.startswith("_") and getattr(layout, name, None)}
    assert {"flex_flow", "flex", "width"} <= used  # the wrapping rows and fixed widths are there
    assert used <= IPYWIDGETS_7_LAYOUT, f"not in ipywidgets 7.7: {sorted(used - IPYWIDGETS_7_LAYOUT)}"


def test_sliders_line_up_and_leave_room_for_names_and_readouts(panel_factory, attribute_panel):
    """Each panel's sliders have fixed description widths that hold their longest name (about 8 px a character at
    JupyterLab's 13 px font), and a width that leaves the track and the readout their room; the sliders of one
    group share one description width, so their tracks line up."""
    from cfnb.widgets.display import SLIDER_TRACK_PX

    def check(sliders, group):
        widths = {s.style.description_width for s in sliders}
        assert len(widths) == 1, f"{group}: description widths differ: {widths}"
        label_px = int(widths.pop().removesuffix("px"))
        assert label_px >= 7 * max(len(s.description) for s in sliders), group
        assert all(s.layout.width == f"{label_px + SLIDER_TRACK_PX}px" for s in sliders), group

    check(attribute_panel.sliders, "AttributePanel")
    panel = panel_factory(generator=TinyGenerator())
    for method in panel.method.options:
        panel.method.value = method
        sliders = [c for c in panel.option_controls.controls.values() if isinstance(c, widgets.widget_int._Int)
                   or isinstance(c, widgets.widget_float._Float)]
        check(sliders, f"options of {method}")


def test_rows_wrap_instead_of_squeezing(panel_factory, attribute_panel):
    """Rows of several controls or pictures wrap onto the next line in a narrow cell, and the columns they hold
    keep their width (squeezed columns are what cut the sliders' readouts off)."""
    panel = panel_factory()
    rows = [panel.thumbnail_strip, panel.controls.children[0], panel.view.children[0],
            attribute_panel.children[2], attribute_panel.controls.children[0]]
    for row in rows:
        assert isinstance(row, widgets.HBox) and row.layout.flex_flow == "row wrap", row
    sliders_column = attribute_panel.children[2].children[0]
    assert list(sliders_column.children) == attribute_panel.sliders and sliders_column.layout.flex == "0 0 auto"
    live_row = attribute_panel.children[3]
    assert attribute_panel.latency in live_row.children and attribute_panel.reset_button in live_row.children
    assert re.search(r"live update: \d+ ms", attribute_panel.latency.value)
