"""Panels display into their own widgets, never into the cell that calls them.

A kernel's ``display()`` calls go to the running cell. These tests run the panels under an IPython shell whose
display publisher records every call (``IPython.utils.capture.capture_output``, as a kernel's cell would receive them)
with each of Plotly's in-kernel default renderers: ``"plotly_mimetype+notebook"`` (Plotly 5, Colab's stack),
``"plotly_mimetype"`` (Plotly 6 and later), ``"notebook"`` and ``"colab"``.
"""
from __future__ import annotations

import builtins
import sys

import pytest
import torch
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from tiny_models import TinyGAP, TinyGenerator, intensity_bands
from traitlets.config import Config

from cfnb.models import AttributeEditor, GAPClassifier
from cfnb.results import Counterfactuals
from cfnb.viz.probabilities import probability_bars
from cfnb.widgets import AttributePanel, ExplainerPanel
from cfnb.widgets.display import bundle_renderers, figure_bundle

PLOTLY_JSON = "application/vnd.plotly.v1+json"
# renderer default -> the MIME types of the figure the panel shows
RENDERERS = {
    "plotly_mimetype+notebook": {PLOTLY_JSON, "text/plain"},
    "plotly_mimetype": {PLOTLY_JSON, "text/plain"},
    "notebook": {PLOTLY_JSON, "text/plain"},  # its HTML needs a script displayed into the page: plotly_mimetype
    "colab": {"text/html", "text/plain"},
}
ATTRIBUTES = ["Smiling", "Eyeglasses", "Male"]


@pytest.fixture
def shell(monkeypatch):
    """An IPython shell for the test (as a kernel has), removed afterwards with what it put in builtins and
    ``sys.modules['__main__']``."""
    if InteractiveShell.initialized():
        pytest.fail("an IPython shell is already running in this process; these tests need their own")
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    for name in ("__IPYTHON__", "display", "get_ipython"):
        monkeypatch.setattr(builtins, name, getattr(builtins, name, None), raising=False)
    config = Config()
    config.HistoryManager.enabled = False
    yield InteractiveShell.instance(config=config)
    InteractiveShell.clear_instance()


@pytest.fixture(params=list(RENDERERS))
def renderer(request, monkeypatch) -> str:
    import plotly.io as pio

    monkeypatch.setattr(pio.renderers, "default", request.param)
    return request.param


def displayed(cell: capture_output) -> list[list[str]]:
    """The MIME types of each thing displayed into the captured cell (empty when nothing leaked)."""
    return [sorted(output.data) for output in cell.outputs]


def figure_types(output) -> set[str]:
    (item,) = output.outputs
    assert item["output_type"] == "display_data"
    return set(item["data"])


def test_explainer_panel_displays_nothing_into_the_calling_cell(shell, renderer):
    images, labels = intensity_bands(6, seed=3)
    with capture_output() as cell:
        panel = ExplainerPanel(TinyGAP().eval(), images, labels=labels, generator=TinyGenerator(),
                               frames=4)  # warm_up builds a figure bundle too
    assert displayed(cell) == [] and cell.stdout == "", "building the panel displayed into the cell"
    try:
        with capture_output() as cell:
            result = panel.explain(index=1, target=2, method="latent", steps=3)
        assert displayed(cell) == [], f"panel.explain displayed {displayed(cell)} into the calling cell"
        assert cell.stdout == "", cell.stdout
        assert isinstance(result, Counterfactuals) and panel.error is None, panel.error
        assert figure_types(panel.view.figure_output) == RENDERERS[renderer]

        with capture_output() as cell:  # the Explain button's path: a worker thread
            thread = panel.explain_async(index=2, target=0)
            assert thread is not None and panel.wait(30)
        assert displayed(cell) == [] and cell.stdout == "", displayed(cell)
        assert panel.error is None and figure_types(panel.view.figure_output) == RENDERERS[renderer]
    finally:
        panel.close()


def test_attribute_panel_displays_nothing_into_the_calling_cell(shell, renderer):
    torch.manual_seed(0)
    editor = AttributeEditor(len(ATTRIBUTES), ATTRIBUTES, width=8).eval()
    classifier = GAPClassifier(3, len(ATTRIBUTES), widths=(8, 16)).eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with capture_output() as cell:
        panel = AttributePanel(classifier, images, editor=editor, options={"steps": 2})
    assert displayed(cell) == [] and cell.stdout == "", "building the panel displayed into the cell"
    try:
        with capture_output() as cell:
            result = panel.explain(index=1, target="Eyeglasses")
        assert displayed(cell) == [], f"panel.explain displayed {displayed(cell)} into the calling cell"
        assert cell.stdout == "", cell.stdout
        assert isinstance(result, Counterfactuals) and panel.error is None, panel.error
        assert figure_types(panel.view.figure_output) == RENDERERS[renderer]
    finally:
        panel.close()


def test_plotly_5_and_later_kernel_defaults_give_the_same_bundle(monkeypatch):
    """Plotly 5 names "plotly_mimetype+notebook" in a kernel, later versions "plotly_mimetype": same figure data."""
    import plotly.io as pio

    figure = probability_bars(torch.tensor([0.2, 0.7, 0.1]), ["a", "b", "c"], title="p")
    bundles = {}
    for default in ("plotly_mimetype+notebook", "plotly_mimetype"):
        monkeypatch.setattr(pio.renderers, "default", default)
        bundles[default] = figure_bundle(figure)
    assert bundles["plotly_mimetype+notebook"] == bundles["plotly_mimetype"]
    assert bundles["plotly_mimetype"][PLOTLY_JSON]["data"][0]["type"] == "bar"
    assert bundles["plotly_mimetype"]["text/plain"] == "<Plotly figure: p>"


@pytest.mark.parametrize("default, expected", [
    ("plotly_mimetype+notebook", ["plotly_mimetype"]),
    ("notebook_connected+plotly_mimetype", ["plotly_mimetype"]),
    ("kaggle", []),
    ("browser", []),  # not a MIME-type renderer
    ("json+plotly_mimetype", ["json", "plotly_mimetype"]),
    ("colab", ["colab"]),
])
def test_bundle_renderers_leave_out_those_that_display_a_page_script(monkeypatch, default, expected):
    import plotly.io as pio

    monkeypatch.setattr(pio.renderers, "default", default)
    assert bundle_renderers() == [pio.renderers[name] for name in expected]
