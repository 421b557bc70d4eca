"""The built documentation site in headless Chromium, served from 127.0.0.1 only: a tutorial page's Plotly animation
plays, its saved ExplainerPanel renders from the embedded widget state, and nothing errs or leaves the machine.

Needs the site built first (``make docs``; ``make test`` builds it before the tests).
"""
from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "docs" / "_build" / "html"
ARTIFACTS = ROOT / "artifacts"
VIEWPORT = {"width": 1400, "height": 1000}
TUTORIAL = "tutorials/01_mnist_digit_flips.html"  # two animations and an ExplainerPanel


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    """The built site over HTTP on 127.0.0.1 (a free port), from a thread of this process."""
    if not (SITE / TUTORIAL).exists():
        pytest.fail(f"the docs site is not built ({SITE / TUTORIAL} is missing): run `make docs` first "
                    f"(make test builds it before the tests)", pytrace=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class SitePage:
    """One tab on the served site, collecting what goes wrong: console errors, page exceptions, failed requests,
    answers >= 400, and requests leaving the machine (blocked)."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page, self.base_url = page, base_url
        self.errors: list[str] = []
        page.set_default_timeout(60_000)
        page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"console error: {m.text} ({(m.location or {}).get('url', '')})"))
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("requestfailed", lambda r: self._is_local(r.url) and self.errors.append(
            f"request failed: {r.method} {r.url}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status}: {r.url}"))
        page.context.route(lambda url: not self._is_local(url), self._block)

    def _is_local(self, url: str) -> bool:
        return url.startswith((self.base_url + "/", "data:", "blob:", "about:"))

    def _block(self, route: Any) -> None:
        self.errors.append(f"blocked request off the machine: {route.request.method} {route.request.url}")
        route.abort("blockedbyclient")


@pytest.fixture
def site(browser: Any, site_url: str, request: pytest.FixtureRequest) -> Iterator[SitePage]:
    context = browser.new_context(viewport=VIEWPORT)
    helper = SitePage(context.new_page(), site_url)
    try:
        yield helper
    finally:
        if any(getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call")):
            ARTIFACTS.mkdir(exist_ok=True)
            helper.page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=False)
            print("browser errors:", *helper.errors, sep="\n  ")
        context.close()


def _slider_state(page: Any, plot: Any) -> dict[str, Any]:
    return plot.evaluate("gd => ({active: gd._fullLayout.sliders[0].active, "
                         "label: ([...gd.querySelectorAll('.slider-group text')]"
                         ".find(t => /^frame /.test(t.textContent)) || {}).textContent,"
                         " visible: [...gd.querySelectorAll('.layer-above image, .imagelayer image, image')]"
                         ".map(i => getComputedStyle(i).opacity).join(',')})")


def test_tutorial_animation_plays_and_saved_panel_renders(site):
    page = site.page
    page.goto(f"{site.base_url}/{TUTORIAL}")

    # -- the Plotly animation: press play, the slider's frame moves on
    plot = page.locator(".cell_output .js-plotly-plot").filter(has=page.locator(".slider-group")).first
    plot.locator(".main-svg").first.wait_for()
    plot.scroll_into_view_if_needed()
    before = _slider_state(page, plot)
    assert before["active"] == 0, before
    play = plot.locator(".updatemenu-button").filter(has_text="play")
    assert play.count() == 1, "no ▶ play button on the animation"
    play.click()
    page.wait_for_function("gd => gd._fullLayout.sliders[0].active > 1", arg=plot.element_handle(), timeout=30_000)
    after = _slider_state(page, plot)
    assert after["active"] > before["active"] and after["label"] != before["label"], (before, after)
    assert re.fullmatch(r"frame \d+", after["label"] or ""), after

    # -- the ExplainerPanel as the notebook saved it: real widgets, not the placeholder
    panel = page.locator(".cell_output .jupyter-widgets", has_text="cfnb counterfactual explainer").first
    panel.wait_for(timeout=60_000)
    panel.scroll_into_view_if_needed()
    text = panel.inner_text()
    assert "Loading widget" not in page.locator("body").inner_text()
    assert page.get_by_text("Error displaying widget").count() == 0
    assert panel.get_by_role("button", name="Explain").count() >= 1, text[:800]
    images = panel.locator("img")
    assert images.count() >= 1 and all(
        images.nth(i).evaluate("i => i.complete && i.naturalWidth > 0") for i in range(images.count())), \
        "the panel's images did not load"
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "docs-site-panel.png"))

    page.wait_for_timeout(500)  # late console errors of the animation or the widget manager
    assert not site.errors, "errors in the browser:\n  " + "\n  ".join(site.errors)
