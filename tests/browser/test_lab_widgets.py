"""The browser harness end to end: ipywidgets and an animated Plotly figure, run and clicked in JupyterLab.

This is the check that the stack cfnb's panels stand on (widget manager, Plotly renderer, kernel round trips)
works in a real browser before any cfnb panel is tested on it.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

WIDGETS_CELL = '''import ipywidgets as widgets

status = widgets.Label("not pressed yet")
level = widgets.IntSlider(value=3, min=0, max=10, description="Level")
button = widgets.Button(description="Press me")

def on_press(_):
    status.value = f"pressed at level {level.value}"

button.on_click(on_press)
widgets.VBox([button, level, status])'''

PLOTLY_CELL = '''import plotly.graph_objects as go

frames = [go.Frame(data=[go.Scatter(x=[0, 1, 2], y=[0, k, 0])], name=str(k)) for k in range(1, 6)]
figure = go.Figure(
    data=[go.Scatter(x=[0, 1, 2], y=[0, 1, 0], mode="lines+markers")],
    frames=frames,
    layout=go.Layout(
        title="Animated peak",
        xaxis=dict(title="position", range=[-0.2, 2.2]),
        yaxis=dict(title="height", range=[0, 6]),
        updatemenus=[dict(type="buttons", showactive=False, buttons=[dict(
            label="Play", method="animate",
            args=[None, dict(frame=dict(duration=100, redraw=False), transition=dict(duration=0))])])],
    ),
)
figure'''

LINE_PATH = "() => document.querySelector('.js-plotly-plot .scatterlayer .trace path.js-line').getAttribute('d')"


def test_widgets_and_plotly_animation(lab):
    lab.write_notebook("widgets_and_plotly.ipynb", [WIDGETS_CELL, PLOTLY_CELL],
                       markdown_first="# Harness check: ipywidgets and Plotly")
    lab.open_notebook("widgets_and_plotly.ipynb")
    lab.run_all()

    # ipywidgets: the front end's click reaches the kernel's callback, whose change comes back to the page.
    lab.wait_for_text("not pressed yet")
    handle = lab.wait_for(".widget-slider .noUi-handle")
    handle.focus()
    lab.page.keyboard.press("ArrowRight")  # slider 3 -> 4, synced to the kernel
    lab.page.get_by_role("button", name="Press me").click()
    lab.wait_for_text("pressed at level 4", timeout_s=30)
    assert lab.outputs().get_by_text("not pressed yet").count() == 0

    # Plotly: the figure rendered, and Play animates the line through its frames.
    lab.wait_for(".js-plotly-plot .main-svg")
    assert lab.page.locator(".js-plotly-plot").count() == 1
    before = lab.page.evaluate(LINE_PATH)
    lab.page.locator(".js-plotly-plot .updatemenu-button").first.click()
    lab.page.wait_for_function(f"(before) => ({LINE_PATH})() !== before", arg=before, timeout=10_000)
    lab.page.wait_for_timeout(800)  # let the last frame land for the screenshot
    assert lab.page.evaluate(LINE_PATH) != before

    lab.wait_for(".js-plotly-plot").scroll_into_view_if_needed()
    lab.screenshot("harness-widgets-plotly")
    lab.screenshot("harness-plotly-figure", selector=".js-plotly-plot")
    lab.assert_no_errors()


def test_kernel_dialog_is_answered(lab):
    """A notebook naming no kernel makes JupyterLab ask which one; the harness picks the default (Python 3)."""
    lab.write_notebook("no_kernelspec.ipynb", ["import sys\nprint('kernel', sys.version_info[0])"], kernelspec=False)
    lab.open_notebook("no_kernelspec.ipynb")
    assert any("Select Kernel" in text for text in lab.answered_dialogs), lab.answered_dialogs
    lab.run_all()
    lab.wait_for_text("kernel 3")


def test_run_all_reports_cell_errors(lab):
    lab.write_notebook("raises.ipynb", ["x = 1", "raise ValueError('broken on purpose')"])
    lab.open_notebook("raises.ipynb")
    with pytest.raises(AssertionError, match="cell 1: ValueError: broken on purpose"):
        lab.run_all()
