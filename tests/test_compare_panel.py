"""cfnb.compare_classifiers and cfnb.ComparePanel, headless: tiny seeded classifiers, the real engine."""
from __future__ import annotations

import re
import threading
import time

import ipywidgets as widgets
import pytest
import torch
from test_widgets import IPYWIDGETS_7_LAYOUT, assert_every_image_is_a_png
from tiny_models import TinyGAP, TinyGenerator, intensity_bands, trained_tiny_classifier
from torch import nn

import cfnb
from cfnb.comparison import Comparison, compare_classifiers, named_classifiers
from cfnb.forward import probabilities
from cfnb.widgets import ComparePanel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def _pair():
    return trained_tiny_classifier(seed=0), trained_tiny_classifier(seed=1)


@pytest.fixture
def pair(_pair):
    import copy

    return [copy.deepcopy(model) for model in _pair]


@pytest.fixture
def bands():
    return intensity_bands(9, seed=3)


class SlowExplain:
    """``cfnb.explain`` itself, with every step ``delay`` seconds longer (through the stop flag it polls each step);
    records each call's classifier, options and whether it was asked to stop before its first step."""

    def __init__(self, delay: float = 0.0, error: Exception | None = None):
        self.delay, self.error = delay, error
        self.calls: list[dict] = []
        self.started = threading.Event()

    def __call__(self, classifier, images, target, method="latent", *, should_stop=None, **kwargs):
        stopped_at_start = bool(should_stop is not None and should_stop())
        self.calls.append({"classifier": classifier, "method": method, "target": target,
                           "stopped_at_start": stopped_at_start, **kwargs})
        self.started.set()
        if self.error is not None:
            raise self.error

        def slow_stop() -> bool:
            time.sleep(self.delay)
            return bool(should_stop is not None and should_stop())

        return cfnb.explain(classifier, images, target, method, should_stop=slow_stop, **kwargs)


def has_picture(slot) -> bool:
    """The slot's image widget holds a picture (a PNG wider than 8 px), not nothing or a placeholder square."""
    png = bytes(slot.image.value)
    return png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") > 8


def red_line(panel) -> str:
    assert panel.errors.layout.display is None, "the error box is hidden"
    assert "#d93025" in panel.errors.value
    return panel.error


# --- compare_classifiers: the compute, without widgets -----------------------------------------------------------
def test_each_classifier_gets_the_counterfactual_explain_gives_it(pair, bands):
    images = bands[0][:4]
    comparison = compare_classifiers({"a": pair[0], "b": pair[1]}, images, 2, "pixel", steps=60)
    assert comparison.names == ("a", "b") and len(comparison) == 4 and comparison.method == "pixel"
    for model, result in zip(pair, comparison.results):
        alone = cfnb.explain(model, images, 2, "pixel", steps=60, progress=False)
        assert torch.equal(result.counterfactual, alone.counterfactual)  # same seed, same search
        assert torch.equal(result.valid, alone.valid)
    assert torch.equal(comparison.valid, torch.stack([r.valid for r in comparison.results]))
    assert comparison["b"] is comparison.results[1]
    for i, result in enumerate(comparison.results):
        assert torch.equal(comparison.cross_predictions[i, i], result.prediction)
        for j, model in enumerate(pair):
            assert torch.equal(comparison.cross_predictions[i, j],
                               probabilities(model, result.counterfactual).argmax(-1))
    assert not comparison.cancelled and comparison.steps_used.shape == (4,)
    with pytest.raises(KeyError, match="no classifier named 'c'; the comparison holds a, b"):
        comparison["c"]


def test_names_come_from_dict_keys_shipped_names_or_positions(pair):
    first, second = pair
    assert list(named_classifiers([first, second])) == ["classifier 1", "classifier 2"]
    first.cfnb_name = second.cfnb_name = "biased"
    assert list(named_classifiers([first, second])) == ["biased", "biased (2)"]
    assert list(named_classifiers({"x": first, "y": second})) == ["x", "y"]


@pytest.mark.parametrize("count", [1, 5])
def test_two_to_four_classifiers(count, bands):
    models = [TinyGAP(seed=k) for k in range(count)]
    with pytest.raises(ValueError, match=rf"needs 2 to 4 classifiers, got {count}; ") as caught:
        compare_classifiers(models, bands[0][:1], 1, "pixel")
    assert ("ExplainerPanel for one classifier" if count == 1 else "compare at most 4") in str(caught.value)
    with pytest.raises(TypeError, match="got one TinyGAP; pass \\[classifier_a, classifier_b\\]"):
        compare_classifiers(models[0], bands[0][:1], 1, "pixel")
    with pytest.raises(TypeError, match="classifier 'classifier 2': classifier must be a torch.nn.Module"):
        compare_classifiers([models[0], "not a model"], bands[0][:1], 1, "pixel")


def test_classifiers_must_share_their_classes(pair, bands):
    images = bands[0][:2]
    with pytest.raises(ValueError, match=r"different numbers of classes \('a' 3, 'b' 4\); compare classifiers of "
                                         "one task"):
        compare_classifiers({"a": pair[0], "b": TinyGAP(num_classes=4)}, images, 1, "pixel")
    pair[0].class_names, pair[1].class_names = ["dark", "mid", "bright"], ["low", "mid", "high"]
    with pytest.raises(ValueError, match="name their classes differently .*'classifier 1': dark, mid, bright; "
                                         "'classifier 2': low, mid, high.*pass class_names="):
        compare_classifiers(pair, images, 1, "pixel")
    named = compare_classifiers(pair, images, "medium", "pixel", steps=5, class_names=["dark", "medium", "light"])
    assert named.class_names == ("dark", "medium", "light") and int(named.results[0].target[0]) == 1
    pair[1].class_names = None  # a classifier without names takes the others'
    assert compare_classifiers(pair, images, "bright", "pixel", steps=5).class_names == ("dark", "mid", "bright")


def test_images_must_have_the_channels_of_every_classifier(pair, bands):
    rgb = TinyGAP(in_channels=3)
    with pytest.raises(ValueError, match=r"classifier 'rgb' expects 3 channel\(s\), images have 1 "
                                         r"\(shape \(2, 1, 8, 8\)\); compare classifiers that read the same images"):
        compare_classifiers({"grey": pair[0], "rgb": rgb}, bands[0][:2], 1, "pixel")
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        compare_classifiers(pair, bands[0][:2] * 3, 1, "pixel")


def test_methods_must_run_on_every_classifier(pair, bands):
    images = bands[0][:1]
    flat = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))  # no GAP + linear head: no Mirror-CFE
    with pytest.raises(ValueError, match="classifier 'flat' does not support method 'mirror': .*methods every "
                                         "classifier supports: pixel, pgd"):
        compare_classifiers({"gap": pair[0], "flat": flat}, images, 1, "mirror", decoder=nn.Identity())
    with pytest.raises(ValueError, match="for classifier 'classifier 1', 'latent' needs generator=... with "
                                         r"encode\(\), decode\(\)"):
        compare_classifiers(pair, images, 1, "latent")
    with pytest.raises(ValueError, match="decoder= holds 3 models for 2 classifiers; give one per classifier"):
        compare_classifiers(pair, images, 1, "mirror", decoder=[nn.Identity()] * 3)
    with pytest.raises(TypeError, match=r"method='pixel' has no option\(s\) \['colour'\]"):
        compare_classifiers(pair, images, 1, "pixel", colour="red")


def test_helpers_one_for_all_or_one_per_classifier(pair, bands):
    recorder = SlowExplain()
    decoders = [nn.Sequential(nn.Conv2d(8, 1, 1), nn.Sigmoid()) for _ in pair]  # TinyGAP's 8 feature maps -> image
    compare_classifiers(pair, bands[0][:1], 1, "mirror", decoder=decoders, explain_fn=recorder)
    assert [call["decoder"] for call in recorder.calls] == decoders
    assert [call["classifier"] for call in recorder.calls] == pair
    shared = TinyGenerator()
    seen = []
    comparison = compare_classifiers(pair, bands[0][:1], 1, "latent", generator=shared, steps=3, explain_fn=recorder,
                                     on_result=lambda k, result: seen.append((k, result)))
    assert [call["generator"] for call in recorder.calls[2:]] == [shared, shared]
    assert [k for k, _ in seen] == [0, 1] and all(r is comparison.results[k] for k, r in seen)


def test_progress_covers_every_search_and_stop_ends_them_all(pair, bands):
    reports: list[tuple[int, int]] = []
    compare_classifiers(pair, bands[0][:2], 2, "pgd", steps=40, kappa=1e9,
                        progress=lambda done, total: reports.append((done, total)))
    assert reports[-1] == (80, 80) and reports[0][1] == 80  # two 40-step searches seen as one of 80
    assert [d for d, _ in reports] == sorted(d for d, _ in reports)

    stop = threading.Event()
    recorder = SlowExplain(delay=0.002)

    def stop_soon() -> None:
        recorder.started.wait(5)
        time.sleep(0.2)
        stop.set()

    worker = threading.Thread(target=stop_soon)
    worker.start()
    comparison = compare_classifiers(pair, bands[0][:1], 2, "pgd", steps=100_000, kappa=1e9, explain_fn=recorder,
                                     should_stop=stop.is_set)
    worker.join()
    assert comparison.cancelled and all(r.settings["cancelled"] for r in comparison.results)
    assert 0 < int(comparison.results[0].steps_used[0]) < 100_000
    assert [c["stopped_at_start"] for c in recorder.calls] == [False, True]
    assert int(comparison.results[1].steps_used[0]) == 0  # the second search ended before its first step


# --- ComparePanel --------------------------------------------------------------------------------------------------
@pytest.fixture
def panel_factory(pair, bands):
    made = []

    def make(classifiers=None, **kwargs):
        images, labels = bands
        kwargs.setdefault("warm_up", False)
        panel = ComparePanel(classifiers if classifiers is not None else {"first": pair[0], "second": pair[1]},
                             images, labels=labels, frames=6, **kwargs)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()


def test_controls_and_one_column_per_classifier(panel_factory, pair):
    panel = panel_factory()
    assert [column.name for column in panel.columns] == ["first", "second"] == panel.names
    assert panel.method.options == ("pixel", "pgd")  # the methods both can run without helper models
    assert panel_factory(generator=TinyGenerator()).method.options == ("latent", "causal", "pixel", "pgd")
    assert list(panel.option_controls.controls) == cfnb.methods.get("pixel").option_names
    assert panel.explain_button.description == "Explain" and panel.cancel_button.disabled
    assert has_picture(panel.original) and not any(has_picture(c.counterfactual) for c in panel.columns)
    for column, model in zip(panel.columns, pair):
        predicted = int(model(panel.images[:1]).argmax())
        assert f"reads the original as {predicted} (" in column.header.value
    panel.index.value = 4
    assert "image #4 · label 1" in panel.selection.value
    assert panel.target.value != int(pair[0](panel.images[4:5]).argmax())  # never the first one's prediction
    four = panel_factory([pair[0], pair[1], TinyGAP(seed=5), TinyGAP(seed=6)])
    assert len(four.columns) == 4 and len(four.board.children) == 5  # the original, then the four columns


def test_one_explain_click_fills_every_column(panel_factory, pair):
    panel = panel_factory()
    panel.index.value = 0
    panel.target.value = 2
    panel.method.value = "pixel"
    panel.option_controls.controls["steps"].value = 200
    panel.explain_button.click()
    assert panel.wait(30)
    assert panel.error is None, panel.error
    comparison = panel.comparison
    assert isinstance(comparison, Comparison) and comparison.method == "pixel"
    assert [int(r.target[0]) for r in comparison.results] == [2, 2]
    for i, column in enumerate(panel.columns):
        result = comparison.results[i]
        assert has_picture(column.counterfactual) and has_picture(column.difference)
        assert column.counterfactual.image.value != panel.original.image.value
        mark = "✓ reached the target 2" if bool(result.valid[0]) else "✗ did not reach the target 2"
        assert mark in column.verdict.value and "prediction: " in column.verdict.value
        assert column.probabilities.value.count("<tr") == 1 + 3  # header + one row per class
        other = panel.names[1 - i]
        reading = int(comparison.cross_predictions[i, 1 - i, 0])
        assert f"{other} → {reading}" in column.others.value
    assert bool(comparison.valid.all())  # pixel reaches class 2 on both tiny classifiers
    assert re.fullmatch(r"done in \d+\.\d\d s", panel.status.value)
    assert panel.progress.bar_style == "success" and panel.progress.value == panel.progress.max
    assert not panel.explain_button.disabled and panel.cancel_button.disabled and not panel.index.disabled
    panel.index.value = 1  # a new image clears the columns
    assert not any(has_picture(column.counterfactual) for column in panel.columns)


def test_cancel_stops_a_run(panel_factory):
    slow = SlowExplain(delay=0.005)  # 100,000 steps: minutes if never cancelled
    panel = panel_factory(explain_fn=slow)
    start = time.perf_counter()
    thread = panel.explain_async(index=0, target=2, method="pgd", steps=100_000, kappa=1e9)
    assert slow.started.wait(5)
    assert panel.running and panel.index.disabled and panel.explain_button.disabled
    assert not panel.cancel_button.disabled
    time.sleep(0.2)
    panel.cancel_button.click()
    thread.join(5)
    assert not thread.is_alive() and time.perf_counter() - start < 4
    assert [call["stopped_at_start"] for call in slow.calls] == [False, True]
    comparison = panel.comparison
    assert comparison is not None and comparison.cancelled
    assert 0 < int(comparison.results[0].steps_used[0]) < 100_000
    assert panel.status.value.startswith("cancelled after") and panel.progress.bar_style == "warning"
    assert all("cancelled: best found so far" in column.verdict.value for column in panel.columns)
    assert all(has_picture(column.counterfactual) for column in panel.columns)
    assert not panel.explain_button.disabled and not panel.running


def test_each_column_shows_as_soon_as_its_search_ends(panel_factory):
    slow = SlowExplain(delay=0.002)
    panel = panel_factory(explain_fn=slow)
    thread = panel.explain_async(index=0, target=2, method="pgd", steps=30, kappa=1e9)  # 30 steps, then 30 more
    deadline = time.perf_counter() + 10
    while len(slow.calls) < 2 and time.perf_counter() < deadline:
        time.sleep(0.001)
    assert len(slow.calls) == 2 and panel.running  # the second search has started, the run is not over
    first, second = panel.columns
    assert has_picture(first.counterfactual) and "the target 2</span>" in first.verdict.value
    assert first.others.value == ""  # what the other reads on it comes with the whole comparison
    thread.join(10)
    assert has_picture(second.counterfactual) and "read by the others as" in first.others.value


def test_a_second_explain_replaces_the_first(panel_factory, bands):
    slow = SlowExplain(delay=0.005)
    panel = panel_factory(explain_fn=slow)
    first = panel.explain_async(index=0, target=2, method="pgd", steps=100_000, kappa=1e9)
    assert slow.started.wait(5)
    second = panel.explain_async(index=1, target=0, method="pixel", steps=20)
    assert not first.is_alive()
    second.join(10)
    assert panel.comparison.method == "pixel" and not panel.comparison.cancelled
    assert torch.equal(panel.comparison.results[0].original, bands[0][1:2])


def test_errors_from_the_ui_show_in_the_error_box(panel_factory, pair):
    flat = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    panel = panel_factory({"gap": pair[0], "flat": flat}, decoder=nn.Identity())
    assert "mirror" not in panel.method.options
    assert panel.explain(method="mirror") is None
    assert red_line(panel).startswith("ValueError: classifier 'flat' does not support method 'mirror'")
    assert panel.status.value == "failed" and not panel.explain_button.disabled
    assert panel.explain(method="pixel", lam=-1.0) is None
    assert red_line(panel) == "ValueError: lam must be a number > 0, got -1.0"
    assert panel.explain(target=7) is None
    assert red_line(panel).startswith("ValueError: target class 7 is out of range")
    assert panel.explain(method="pixel", steps=5) is not None
    assert panel.error is None and panel.errors.layout.display == "none"
    broken = panel_factory(explain_fn=SlowExplain(error=RuntimeError("out of memory\n  deep frame")))
    broken.explain_button.click()
    assert broken.wait(10)
    assert red_line(broken) == "RuntimeError: out of memory" and broken.progress.bar_style == "danger"


def test_bad_classifiers_are_refused_with_the_fix(panel_factory, pair):
    with pytest.raises(ValueError, match="needs 2 to 4 classifiers, got 1; .*ExplainerPanel for one classifier"):
        panel_factory([pair[0]])
    with pytest.raises(ValueError, match="needs 2 to 4 classifiers, got 5; compare at most 4"):
        panel_factory([TinyGAP(seed=k) for k in range(5)])
    with pytest.raises(ValueError, match=r"different numbers of classes \('a' 3, 'b' 10\)"):
        panel_factory({"a": pair[0], "b": TinyGAP(num_classes=10)})
    with pytest.raises(ValueError, match=r"classifier 'rgb' expects 3 channel\(s\), images have 1"):
        panel_factory({"grey": pair[0], "rgb": TinyGAP(in_channels=3)})
    with pytest.raises(ValueError, match="for classifier 'first', 'latent' needs generator=..."):
        panel_factory(methods=["latent"])


def test_warm_up_runs_one_step_per_classifier(pair, bands):
    recorder = SlowExplain()
    panel = ComparePanel(pair, bands[0], methods=["pixel"], explain_fn=recorder)
    assert [call["steps"] for call in recorder.calls] == [1, 1]
    assert [call["classifier"] for call in recorder.calls] == pair
    assert panel.comparison is None and panel.error is None
    panel.close()


def test_close_closes_every_widget(panel_factory):
    panel = panel_factory()
    inner = [panel.index, panel.explain_button, panel.original.image, *[c.counterfactual.image for c in panel.columns]]
    panel.close()
    assert all(widget.comm is None for widget in inner) and panel.comm is None


def test_layout_pngs_wrapping_rows_and_ipywidgets_7_properties(panel_factory):
    from cfnb.widgets.explainer_panel import descendants

    panel = panel_factory()
    assert_every_image_is_a_png(panel, "before the first Explain")
    assert all("after Explain" in column.counterfactual.note.value for column in panel.columns)
    assert panel.explain(index=2, target=0, method="pixel", steps=20) is not None
    assert_every_image_is_a_png(panel, "after Explain")
    panel.index.value = 5
    assert_every_image_is_a_png(panel, "after choosing another image")
    rows = [panel.board, panel.children[2], panel.controls.children[0], *[c.children[1] for c in panel.columns]]
    for row in rows:  # a narrow cell wraps them; the columns keep their width
        assert isinstance(row, widgets.HBox) and row.layout.flex_flow == "row wrap", row
    assert all(column.layout.flex == "0 0 auto" for column in panel.columns)
    used = set()
    for widget in [panel, *descendants(panel)]:
        layout = getattr(widget, "layout", None)
        if isinstance(layout, widgets.Layout):
            used |= {name for name in layout.keys if not name.startswith("_") and getattr(layout, name, None)}
    assert used <= IPYWIDGETS_7_LAYOUT, f"not in ipywidgets 7.7: {sorted(used - IPYWIDGETS_7_LAYOUT)}"


def test_exported_lazily():
    assert cfnb.ComparePanel is ComparePanel and cfnb.compare_classifiers is compare_classifiers
