"""The panels' layout in a real JupyterLab: no broken images and every value readable, at 1000, 1400 and 1600 px,
before and after Explain. Screenshots of each panel in each state go to ``artifacts/layout-*.png`` for a person to
look at."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

EXPLAINER_CELL = '''import cfnb
from cfnb.data import load_mnist, synth_faces
from cfnb.models import load

cfnb.setup_notebook()
digits = load_mnist("test")
explainer = cfnb.ExplainerPanel(load("mnist-classifier"), digits.images[:40], labels=digits.labels[:40],
                                class_names=digits.class_names, generator=load("mnist-vae"),
                                oracle=load("mnist-oracle"))
explainer'''

ATTRIBUTE_CELL = '''faces = synth_faces(16, seed=2024)
editor_panel = cfnb.AttributePanel(load("faces-classifier"), faces.images, editor=load("faces-editor"))
editor_panel'''

# Each panel's title, which names its output area.
PANELS = {"explainer": "cfnb counterfactual explainer", "attribute": "cfnb attribute editor"}
WIDTHS = (1000, 1400, 1600)
HEIGHT = 3000  # tall enough for a whole panel, even stacked at 1000 px, in one screenshot


def panel_output(lab, title: str):
    """The output area showing the panel titled ``title``."""
    return lab.outputs().locator(".jp-OutputArea-output").filter(has_text=title).first


# Plotly draws titles and controls in SVG, which the widget checks do not read: each figure's title must lie inside
# the figure, and the play/pause buttons must not overlap the frame slider.
FIGURE_PROBLEMS_JS = """() => {
    const problems = [];
    const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    for (const plot of document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .js-plotly-plot')) {
        const box = plot.getBoundingClientRect();
        const title = plot.querySelector('.gtitle');
        if (title) {
            const t = title.getBoundingClientRect();
            if (t.left < box.left - 1 || t.right > box.right + 1) {
                problems.push(`title "${title.textContent}" (x ${t.left.toFixed(0)}-${t.right.toFixed(0)}) is wider `
                              + `than its figure (x ${box.left.toFixed(0)}-${box.right.toFixed(0)})`);
            }
        }
        const buttons = plot.querySelector('.updatemenu-container');
        const slider = plot.querySelector('.slider-container');
        if (buttons && slider && overlap(buttons.getBoundingClientRect(), slider.getBoundingClientRect())) {
            problems.push(`the play/pause buttons overlap the frame slider in "${title ? title.textContent : ''}"`);
        }
    }
    return problems;
}"""


def check_layout(lab, state: str) -> list[str]:
    """Both layout checks and the figure check at each width, with a screenshot of each panel; returns the
    failures (all widths)."""
    failures = []
    for width in WIDTHS:
        lab.set_width(width, HEIGHT)
        for check in (lab.assert_no_broken_images, lab.assert_readouts_readable):
            try:
                check()
            except AssertionError as failure:
                failures.append(f"{state}, {width} px: {failure}")
        failures += [f"{state}, {width} px: {problem}" for problem in lab.page.evaluate(FIGURE_PROBLEMS_JS)]
        for name, title in PANELS.items():
            output = panel_output(lab, title)
            output.scroll_into_view_if_needed()
            output.screenshot(path=str(lab.screenshot_path(f"layout-{name}-{state}-{width}")))
    return failures


def test_panels_look_finished_at_every_width(lab):
    lab.write_notebook("panel_layout.ipynb", [EXPLAINER_CELL, ATTRIBUTE_CELL],
                       markdown_first="# The panels at 1000-1600 px")
    lab.open_notebook("panel_layout.ipynb")
    lab.run_all()
    for title in PANELS.values():
        lab.wait_for_text(title, timeout_s=120)
    explainer = panel_output(lab, PANELS["explainer"])
    explainer.get_by_text("more options of latent").click()  # its sliders are checked too
    explainer.locator(".widget-slider").nth(1).wait_for()
    failures = check_layout(lab, "before")

    lab.set_width(1400, HEIGHT)
    for title in PANELS.values():
        output = panel_output(lab, title)
        output.get_by_role("button", name="Explain").click()
        output.get_by_text(re.compile(r"^done in")).wait_for(timeout=120_000)
        expect(output.get_by_role("button", name="Explain")).to_be_enabled(timeout=60_000)
    explainer.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    assert re.search(r"→ \d \(\d\.\d\d\) ✓", explainer.inner_text())
    assert "in words" in panel_output(lab, PANELS["attribute"]).inner_text()
    failures += check_layout(lab, "after")

    assert not failures, "\n".join(failures)
    lab.assert_no_errors()


BROKEN_CELL = '''import ipywidgets as widgets

empty_image = widgets.Image(value=b"", format="png", width=60)
squeezed = widgets.FloatSlider(value=0.5, description="squeezed", layout=widgets.Layout(width="300px"))
narrow_column = widgets.VBox([squeezed], layout=widgets.Layout(width="150px"))
cut_label = widgets.Label("a label far too long for its box", layout=widgets.Layout(width="70px"))
covered = widgets.HBox([widgets.Label("covered value"),
                        widgets.HTML("<div style='background:#fff;width:200px'>&nbsp;</div>",
                                     layout=widgets.Layout(margin="0 0 0 -110px"))])
widgets.VBox([widgets.HTML("<b>a broken layout</b>"), empty_image, narrow_column, cut_label, covered])'''


def test_layout_checks_catch_broken_layouts(lab):
    """The two checks fail, naming each element, on an empty image, a readout outside its clipping box, a label cut
    off and a value covered by another element."""
    lab.write_notebook("broken_layout.ipynb", [BROKEN_CELL])
    lab.open_notebook("broken_layout.ipynb")
    lab.run_all()
    lab.wait_for_text("a broken layout")
    with pytest.raises(AssertionError, match=r"(?s)1 broken image.*src=\"blob:.*loaded no picture") as images:
        lab.assert_no_broken_images()
    with pytest.raises(AssertionError) as readouts:
        lab.assert_readouts_readable()
    message = str(readouts.value)
    print(images.value, message, sep="\n")
    assert re.search(r'widget-readout in .*widget-slider.* "0\.50": outside the clipping div', message), message
    assert re.search(r'"a label far too long for its box": cut off \(needs \d+ px, has 70 px\)', message), message
    assert re.search(r'"covered value": covered at .* by div', message), message
    assert "squeezed" not in message  # its description still fits in the narrow column
    assert message.startswith("3 value(s)"), message
