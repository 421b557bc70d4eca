"""Real-browser harness: JupyterLab in a subprocess, driven by Playwright through Debian's headless Chromium.

Fixtures:
    lab_server (session): a JupyterLab server on 127.0.0.1, a free port and a random token, serving a temporary
        folder, with its own settings, workspaces, config, data and runtime folders (nothing of the user's leaks in).
    browser (session): Chromium at /usr/bin/chromium (CFNB_CHROMIUM overrides), never a Playwright download.
    lab (function): a :class:`Lab` in a fresh browser context: ``open_notebook``, ``run_all``, ``wait_for_text``,
        ``screenshot``, ``console_errors``; at teardown it fails the test on console errors, failed requests and
        "Error displaying widget", and saves ``artifacts/FAILED-<test>.png`` when the test failed.

Layout checks on what the notebook's outputs show (call them in any state of a panel, at any viewport width;
``Lab.set_width`` changes the width):
    ``Lab.assert_no_broken_images()``: every shown ``<img>`` in the output areas has loaded a picture
        (``complete`` and ``naturalWidth > 0``): an image widget with empty or invalid bytes fails it.
    ``Lab.assert_readouts_readable()``: every shown slider readout, label or description, text or number box,
        dropdown value, button caption and HTML line in the output areas can be read: its text is not cut off
        (``scrollWidth <= clientWidth``; a dropdown's chosen option fits its box), no other element covers it
        (``document.elementFromPoint`` at its centre and near both ends is the element or inside it), and it lies
        inside the window and inside every ancestor that clips (a panel wider than its cell fails here).
    Both fail with one line per element, naming it (its widget class) and its text.

Without Chromium the tests skip, unless CFNB_REQUIRE_BROWSER=1 or CI=true (then they fail): `.ci/run` installs it.

What counts as an error (``Lab.console_errors``), and the filters:
    - every console message of type "error" and every uncaught page exception;
    - every request that failed or answered >= 400, from our server or not;
    - every request leaving the machine: those are blocked (aborted) and reported, so a test never waits on the
      network. The only addresses allowed are the server's own, ``data:``, ``blob:`` (Plotly makes blob: URLs)
      and ``about:``. Add to ``Lab.ignored_errors`` (regexes) in a test only for an error you have understood.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path(os.environ.get("CFNB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in CI; the sandbox needs user namespaces we may not have
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # small /dev/shm in containers crashes tabs
]
SERVER_START_TIMEOUT_S = 120
VIEWPORT = {"width": 1400, "height": 1000}

# JupyterLab user settings written for the test server: no news or update checks (no network, no prompt), and every
# cell kept in the DOM (windowing off), so that selectors and text searches see the whole notebook.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

collect_ignore_glob = ["*.ipynb"]  # notebooks kept here are test data, never nbval tests


def _require_browser() -> bool:
    return os.environ.get("CFNB_REQUIRE_BROWSER") == "1" or os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# --------------------------------------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _jupyter() -> list[str]:
    """The venv's `jupyter` (the one beside the running Python), else `python -m jupyterlab`."""
    script = Path(sys.executable).with_name("jupyter")
    return [str(script), "lab"] if script.exists() else [sys.executable, "-m", "jupyterlab"]


@dataclass
class LabServer:
    """A running JupyterLab: base URL, token, and the folder it serves."""

    url: str
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def shutdown_kernels(self) -> None:
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")


def _start_server(base: Path) -> LabServer:
    root_dir, home = base / "root", base / "home"
    root_dir.mkdir()
    for name, settings in LAB_SETTINGS.items():
        path = home / "lab-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),  # so only the venv's python3 kernel spec is found
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    token = secrets.token_hex(16)
    port = _free_port()
    log_path = base / "jupyterlab.log"
    command = _jupyter() + [
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--LabApp.news_url=None",  # no announcements feed (network) and no "fetch news?" prompt
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.collaborative=False",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: read the notebook model (errors, outputs)
        "--ServerApp.open_browser=False",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses root otherwise; CI runs as root
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root_dir, log_path, process)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/status?token={token}", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            _stop_server(server)
            raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_TIMEOUT_S} s:\n{server.log_tail()}")
        time.sleep(0.25)


def _stop_server(server: LabServer) -> None:
    """SIGTERM the server's process group (the server and its kernels), SIGKILL what is left after 15 s."""
    if server.process.poll() is not None:
        return
    pgid = os.getpgid(server.process.pid)
    os.killpg(pgid, signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        server.process.wait(timeout=5)
    try:
        os.killpg(pgid, signal.SIGKILL)  # kernels that outlived the server
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    server = _start_server(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        _stop_server(server)


# -------------------------------------------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: `apt-get install chromium` (as .ci/run does)"
        if _require_browser():
            pytest.fail(message + "; CI needs the browser tests to run", pytrace=False)
        pytest.skip(message)
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


# Shown <img> elements of the current notebook's outputs (not display:none, not visibility:hidden, with a box).
_SHOWN_IMAGES_JS = """() => [...document.querySelectorAll(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea img')].filter(img => {
    const style = getComputedStyle(img);
    const box = img.getBoundingClientRect();
    return style.visibility !== 'hidden' && style.display !== 'none' && box.width > 0 && box.height > 0;
})"""

_BROKEN_IMAGES_JS = """() => {
    const shown = (""" + _SHOWN_IMAGES_JS + """)();
    const describe = img => {
        const box = img.closest('.widget-box, .jp-OutputArea-output');
        const around = box ? box.innerText.replace(/\\s+/g, ' ').trim().slice(0, 80) : '';
        const src = img.getAttribute('src');
        return `<img class="${img.className}" src=${src === null ? '(none)' : JSON.stringify(src.slice(0, 60))}> `
            + `${img.complete ? 'loaded no picture' : 'never finished loading'} (in a box showing "${around}")`;
    };
    return shown.filter(img => !img.complete || img.naturalWidth === 0).map(describe);
}"""

# Widget text a person reads: slider readouts, labels and descriptions, text and number boxes, dropdowns, button
# captions, HTML lines. For each shown one: not cut off, not covered, inside the window and every clipping ancestor.
_UNREADABLE_JS = """() => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    if (!panel) return ['no notebook is open'];
    const selector = ['.widget-readout', '.widget-label', '.widget-text input', '.widget-dropdown select',
                      'button.jupyter-button', '.widget-html-content'].map(s => '.jp-OutputArea ' + s).join(', ');
    const canvas = document.createElement('canvas').getContext('2d');
    const problems = [];
    const textOf = el => {
        if (el.tagName === 'SELECT') return el.selectedOptions.length ? el.selectedOptions[0].text : '';
        if (el.tagName === 'INPUT') return el.value;
        return el.innerText;
    };
    const classes = el => [...el.classList].filter(c => !['lm-Widget', 'jupyter-widgets'].includes(c));
    const name = el => {  // e.g. "div.widget-readout in widget-slider.widget-hslider"
        const own = [el.tagName.toLowerCase(), ...classes(el)].join('.');
        const widget = el.closest('.jupyter-widgets');
        const kind = widget && widget !== el ? classes(widget).filter(c => c.startsWith('widget-')) : [];
        return own + (kind.length ? ' in ' + kind.filter(c => c !== 'widget-inline-hbox').join('.') : '');
    };
    for (const el of panel.querySelectorAll(selector)) {
        const style = getComputedStyle(el);
        let box = el.getBoundingClientRect();
        if (style.display === 'none' || style.visibility === 'hidden' || box.width === 0 || box.height === 0) continue;
        const text = textOf(el).replace(/\\s+/g, ' ').trim();
        if (!text) continue;
        const what = `${name(el)} "${text.slice(0, 60)}"`;
        if (el.tagName === 'SELECT') {
            canvas.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
            const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            const needed = canvas.measureText(text).width;
            if (needed > room + 1) problems.push(`${what}: cut off (needs ${needed.toFixed(0)} px, has ${room} px)`);
        } else if (el.scrollWidth > el.clientWidth + 1) {
            problems.push(`${what}: cut off (needs ${el.scrollWidth} px, has ${el.clientWidth} px)`);
        }
        el.scrollIntoView({block: 'center', inline: 'nearest'});
        for (let a = el.parentElement; a; a = a.parentElement) a.scrollLeft = 0;  // only vertical scrolling helps
        box = el.getBoundingClientRect();
        const outside = [];
        if (box.left < -1 || box.right > window.innerWidth + 1 || box.top < -1 || box.bottom > window.innerHeight + 1) {
            outside.push('the window');
        }
        for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
            const clip = getComputedStyle(a);
            if (clip.overflowX === 'visible' && clip.overflowY === 'visible') continue;
            const r = a.getBoundingClientRect();
            if (box.left < r.left - 1 || box.right > r.right + 1 || box.top < r.top - 1 || box.bottom > r.bottom + 1) {
                outside.push(`the clipping ${[a.tagName.toLowerCase(), ...classes(a)].join('.')}`);
                break;
            }
        }
        if (outside.length) {
            problems.push(`${what}: outside ${outside.join(' and ')} (x ${box.left.toFixed(0)}-${box.right.toFixed(0)}`
                          + ` of ${window.innerWidth} px)`);
            continue;
        }
        const y = box.top + box.height / 2;
        const points = [[box.left + box.width / 2, y], [box.left + 2, y], [box.right - 2, y]];
        for (const [x, yy] of points) {
            const hit = document.elementFromPoint(x, yy);
            if (hit && hit !== el && !el.contains(hit)) {
                const cover = hit.closest('.jupyter-widgets') || hit;
                const coverText = (cover.innerText || '').replace(/\\s+/g, ' ').trim().slice(0, 40);
                problems.push(`${what}: covered at (${x.toFixed(0)}, ${yy.toFixed(0)}) by ${name(hit)}`
                              + (coverText ? ` showing "${coverText}"` : ''));
                break;
            }
        }
    }
    return problems;
}"""


@dataclass
class Lab:
    """One browser tab on the test JupyterLab, with the steps a person takes.

    Attributes:
        server: the running JupyterLab.
        page: the Playwright page, for anything the helpers do not cover.
        console_errors: what went wrong in the page so far (see the module docstring for what counts).
        ignored_errors: regexes of errors a test has understood and accepts.
        answered_dialogs: the text of each kernel-selection dialog the helpers accepted.
    """

    server: LabServer
    page: Any
    console_errors: list[str] = field(default_factory=list)
    ignored_errors: list[str] = field(default_factory=list)
    answered_dialogs: list[str] = field(default_factory=list)
    timeout_ms: int = 60_000

    def __post_init__(self) -> None:
        self.page.set_default_timeout(self.timeout_ms)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))
        self.page.on("requestfailed", self._on_request_failed)
        self.page.on("response", self._on_response)
        self.page.context.route(lambda url: not self._is_local(url), self._block_external)

    # -- error collection
    def _is_local(self, url: str) -> bool:
        return url.startswith((self.server.url + "/", "data:", "blob:", "about:")) or url == self.server.url

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            location = message.location or {}
            self.console_errors.append(f"console error: {message.text} ({location.get('url', '')})")

    def _on_request_failed(self, request: Any) -> None:
        if self._is_local(request.url):
            self.console_errors.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _on_response(self, response: Any) -> None:
        if response.status >= 400:
            self.console_errors.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def _block_external(self, route: Any) -> None:
        self.console_errors.append(f"blocked request off the machine: {route.request.method} {route.request.url}")
        route.abort("blockedbyclient")

    def errors(self) -> list[str]:
        """Console errors not ignored, plus each "Error displaying widget" shown in the notebook."""
        found = [e for e in self.console_errors if not any(re.search(p, e) for p in self.ignored_errors)]
        widget_errors = self.page.get_by_text("Error displaying widget").count() if not self.page.is_closed() else 0
        if widget_errors:
            found.append(f"'Error displaying widget' shown {widget_errors} time(s)")
        return found

    def assert_no_errors(self) -> None:
        errors = self.errors()
        assert not errors, "errors in the browser:\n  " + "\n  ".join(errors)

    # -- layout checks (see the module docstring)
    def set_width(self, width: int, height: int | None = None) -> None:
        """Resize the viewport to ``width`` px (and ``height``, default unchanged) and let JupyterLab and the widgets
        lay out again."""
        height = height or (self.page.viewport_size or VIEWPORT)["height"]
        self.page.set_viewport_size({"width": width, "height": height})
        self.page.wait_for_timeout(600)  # Lumino relays out on a throttled resize event

    def assert_no_broken_images(self, timeout_s: float = 10) -> None:
        """Fail unless every shown ``<img>`` in the notebook's outputs holds a loaded picture.

        Waits up to ``timeout_s`` for images still loading, then names each broken one (its widget classes, its
        ``src`` and the text of the widget box around it).
        """
        try:
            self.page.wait_for_function(f"() => ({_SHOWN_IMAGES_JS})().every(img => img.complete)",
                                        timeout=timeout_s * 1000)
        except Exception:  # reported below with the images that never finished
            pass
        broken = self.page.evaluate(_BROKEN_IMAGES_JS)
        assert not broken, f"{len(broken)} broken image(s) in the notebook's outputs:\n  " + "\n  ".join(broken)

    def assert_readouts_readable(self) -> None:
        """Fail unless every shown value, label and readout in the notebook's outputs can be read in full.

        Scrolls each element into view (vertically) first; see the module docstring for the three conditions.
        """
        problems = self.page.evaluate(_UNREADABLE_JS)
        assert not problems, (f"{len(problems)} value(s) or label(s) not readable in the notebook's outputs:\n  "
                              + "\n  ".join(problems))

    # -- notebooks
    def write_notebook(self, name: str, cells: list[str], markdown_first: str | None = None,
                       kernelspec: bool = True) -> Path:
        """Write a notebook of code cells into the served folder; return its path.

        Args:
            kernelspec: name the python3 kernel in the metadata (as saved notebooks do); False leaves it out,
                which makes JupyterLab ask "Select Kernel".
        """
        import nbformat

        nb = nbformat.v4.new_notebook()
        if kernelspec:
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                         "language": "python"}
        nb.cells = ([nbformat.v4.new_markdown_cell(markdown_first)] if markdown_first else []) + [
            nbformat.v4.new_code_cell(source) for source in cells]
        path = self.server.root_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return path

    def open_notebook(self, path: str | Path) -> None:
        """Open a notebook and wait until its kernel is idle.

        Args:
            path: relative to the served folder, or any path: a notebook outside the folder is copied in first
                (with its siblings' folder layout lost: copy what it reads beside it yourself).
        """
        path = Path(path)
        if path.is_absolute():
            try:
                relative = path.relative_to(self.server.root_dir)
            except ValueError:
                shutil.copy2(path, self.server.root_dir / path.name)
                relative = Path(path.name)
        else:
            relative = path
        # A fresh workspace per tab: nothing is restored from an earlier test (tabs, kernels).
        workspace = f"t{secrets.token_hex(6)}"
        self.page.goto(f"{self.server.url}/lab/workspaces/{workspace}/tree/{relative.as_posix()}"
                       f"?token={self.server.token}")
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.wait_for()
        self.wait_for_kernel_idle()

    def _accept_kernel_dialog(self) -> bool:
        """Accept a "Select Kernel" dialog (the notebook's default kernel); True when one was shown."""
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count() == 0 or not dialog.first.is_visible():
            return False
        text = dialog.first.inner_text()
        if "Select Kernel" not in text and "kernel" not in text.lower():
            raise AssertionError(f"unexpected dialog in JupyterLab: {text!r}")
        dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click()
        self.answered_dialogs.append(text)
        return True

    def kernel_state(self) -> dict[str, Any] | None:
        """The current notebook's kernel: status ('idle', 'busy', ...) and connection; None without a kernel."""
        return self.page.evaluate(
            """() => {
                const panel = window.jupyterapp.shell.currentWidget;
                const session = panel && panel.sessionContext;
                const kernel = session && session.session && session.session.kernel;
                if (!kernel) return null;
                return {status: kernel.status, connection: kernel.connectionStatus, ready: session.isReady,
                        name: kernel.name};
            }"""
        )

    def wait_for_kernel_idle(self, timeout_s: float = 90) -> None:
        """Wait until the notebook's kernel is connected and idle, answering a kernel-selection dialog on the way.

        The toolbar's status circle says "idle" before any kernel is connected, and Run All then silently runs
        nothing; so this asks the session itself, through ``window.jupyterapp``.
        """
        deadline = time.monotonic() + timeout_s
        state = None
        while time.monotonic() < deadline:
            self._accept_kernel_dialog()
            state = self.kernel_state()
            if state and state["ready"] and state["status"] == "idle" and state["connection"] == "connected":
                return
            self.page.wait_for_timeout(200)
        self.screenshot("kernel-not-idle")
        raise AssertionError(f"kernel not connected and idle after {timeout_s} s: {state}")

    def menu(self, top: str, command: str) -> None:
        """Click a main-menu entry by its JupyterLab command id, e.g. ``menu("Run", "runmenu:run-all")``."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{re.escape(top)}$")).first.click()
        self.page.locator(f'.lm-Menu-item[data-command="{command}"]').first.click()

    def run_all(self, timeout_s: float = 300, clear_first: bool = True, raise_on_error: bool = True) -> None:
        """Run > Run All Cells, then wait until every code cell has run and the kernel is idle.

        Args:
            timeout_s: for the whole run.
            clear_first: clear stored outputs first (Edit > Clear Outputs of All Cells), so that stored
                execution counts cannot pass for new ones.
            raise_on_error: fail with the traceback when a cell raised.
        """
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.click(
            position={"x": 5, "y": 5})  # focus the notebook, so the Run menu acts on it
        if clear_first:
            self.menu("Edit", "editmenu:clear-all")
        self.menu("Run", "runmenu:run-all")
        self.page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')];
                return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
            }""",
            timeout=timeout_s * 1000,
        )
        self.wait_for_kernel_idle(timeout_s)
        if raise_on_error:
            errors = self.cell_errors()
            if errors:
                self.screenshot("run-all-error")
                raise AssertionError("cells raised:\n" + "\n---\n".join(errors))

    def cell_errors(self) -> list[str]:
        """The error outputs of the current notebook ("cell N: Name: message" and the traceback), from its model."""
        return self.page.evaluate(
            """() => {
                const panel = window.jupyterapp.shell.currentWidget;
                const cells = panel.content.model.cells;
                const errors = [];
                for (let i = 0; i < cells.length; i++) {
                    const cell = cells.get(i);
                    if (cell.type !== 'code') continue;
                    for (let j = 0; j < cell.outputs.length; j++) {
                        const out = cell.outputs.get(j).toJSON();
                        if (out.output_type === 'error') {
                            const tb = (out.traceback || []).join('\\n').replace(/\\u001b\\[[0-9;]*m/g, '');
                            errors.push(`cell ${i}: ${out.ename}: ${out.evalue}\\n${tb}`);
                        }
                    }
                }
                return errors;
            }"""
        )

    def outputs(self) -> Any:
        """Locator of the current notebook's output areas (where widgets, figures and prints appear)."""
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea")

    def wait_for_text(self, text: str | re.Pattern, timeout_s: float = 60, in_outputs: bool = True) -> Any:
        """Wait until a visible element shows ``text`` (a substring, or a regex); return its locator.

        Args:
            in_outputs: look only in cell outputs (default), so that the same words in a cell's source do not
                count; False searches the whole page.
        """
        scope = self.outputs() if in_outputs else self.page
        locator = scope.get_by_text(text).first
        locator.wait_for(state="visible", timeout=timeout_s * 1000)
        return locator

    def wait_for(self, selector: str, timeout_s: float = 60) -> Any:
        """Wait until ``selector`` is visible; return its locator."""
        locator = self.page.locator(selector).first
        locator.wait_for(state="visible", timeout=timeout_s * 1000)
        return locator

    def screenshot_path(self, name: str) -> Path:
        """``artifacts/<name>.png`` (the folder made if needed), for screenshots of a locator."""
        ARTIFACTS.mkdir(exist_ok=True)
        return ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"

    def screenshot(self, name: str, selector: str | None = None) -> Path:
        """Save a PNG as ``artifacts/<name>.png``: the page, or only the first element matching ``selector``."""
        path = self.screenshot_path(name)
        if selector is None:
            self.page.screenshot(path=str(path))
        else:
            self.page.locator(selector).first.screenshot(path=str(path))
        return path


@pytest.fixture
def lab(browser: Any, lab_server: LabServer, request: pytest.FixtureRequest) -> Iterator[Lab]:
    context = browser.new_context(viewport=VIEWPORT)
    helper = Lab(lab_server, context.new_page())
    try:
        yield helper
        failed = any(getattr(getattr(request.node, f"report_{when}", None), "failed", False)
                     for when in ("setup", "call"))
        if failed:
            path = helper.screenshot(f"FAILED-{request.node.name}")
            print(f"screenshot of the failure: {path}")
            print("browser errors:", *helper.errors(), sep="\n  ")
            print("JupyterLab log (end):", lab_server.log_tail(2000), sep="\n")
        else:
            helper.assert_no_errors()
    finally:
        context.close()
        try:
            lab_server.shutdown_kernels()
        except OSError:
            pass
