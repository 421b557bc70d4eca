"""``RunControls``: the Explain / Cancel buttons, progress bar, status and error line that run a search."""
from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from ..results import Counterfactuals
from .display import ErrorBox, wrapping_row
from .tasks import CancelToken, ProgressFeed, TaskRunner, browser_friendly_threads, torch_threads

Call = Callable[[CancelToken, ProgressFeed], Counterfactuals]
Present = Callable[[Counterfactuals], None]


# After a clicked search's result is on show, wait this long before building its figure: a Plotly figure that
# arrives with the result holds the page's main thread while it renders, and the counterfactual then appears with
# it. Measured in the real-browser test (MNIST, latent): the result showed 0.45 s after the kernel had sent it
# without the pause, 0.08-0.15 s with 0.2 s (click to counterfactual 1.10-1.12 s -> 0.92-0.95 s in the machine's
# fast phase, docs/benchmarks.md); the animation itself arrives about as soon as before.
FIGURE_PAUSE_S = 0.2


class RunControls(widgets.VBox):
    """Runs one search at a time, synchronously or in a worker thread, and shows how it goes.

    While a search runs, ``disable`` (the panel's settings) and the Explain button are disabled and Cancel is
    enabled. A new run first cancels the running one and discards its result. Exceptions end as one red line.

    Args:
        disable: the panel's controls to disable while a search runs.
        on_idle: called (in the worker) when a run ends, e.g. to re-grey sliders that a method does not use.
        threads: torch threads while a search runs (default ``browser_friendly_threads()``, restored afterwards);
            pass ``torch.get_num_threads()`` to use them all.
    """

    def __init__(self, disable: Sequence[widgets.Widget] = (), on_idle: Callable[[], None] | None = None,
                 threads: int | None = None):
        self.threads = browser_friendly_threads() if threads is None else threads
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.explain_button = widgets.Button(description="Explain", button_style="primary", icon="play")
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="200px"))
        self.status = widgets.HTML(value="")
        self.errors = ErrorBox()
        self.runner = TaskRunner()
        self.disable = list(disable)
        self.on_idle = on_idle
        self.cancel_button.on_click(lambda _: self.cancel(wait=False))  # the search shows what it found
        self.progress.layout.margin = "0 8px"
        row = widgets.HBox([self.explain_button, self.cancel_button, self.progress, self.status], layout=wrapping_row())
        super().__init__([row, self.errors])

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def set_busy(self, busy: bool, message: str = "") -> None:
        """Disable the settings (or enable them again) and show ``message`` as the status."""
        for control in [*self.disable, self.explain_button]:
            control.disabled = busy
        self.cancel_button.disabled = not busy
        if busy:
            with self.progress.hold_sync():
                self.progress.value, self.progress.bar_style = 0, ""
        elif self.on_idle is not None:
            self.on_idle()
        self.status.value = html.escape(message)

    def cancel(self, wait: bool = True, supersede: bool = False) -> bool:
        """Stop the running search; unless superseded, what it found is still shown. Returns whether one ran."""
        return self.runner.cancel(wait=wait, supersede=supersede)

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until no search runs (for scripts and tests); False on timeout."""
        deadline = time.perf_counter() + timeout
        while self.runner.busy:
            if time.perf_counter() > deadline:
                return False
            time.sleep(0.005)
        return True

    def fail(self, error: BaseException) -> None:
        """Show ``error`` for a run that could not even start (bad arguments)."""
        if not self.runner.busy:
            self.set_busy(False, "failed")
        self.errors.show(error)

    def _job(self, label: str, call: Call, present: Present, box: dict[str, Any],
             then: Present | None = None, pause: float = 0.0) -> Callable[[CancelToken], None]:
        def job(token: CancelToken) -> None:
            current = lambda: self.runner.is_current(token)
            feed = ProgressFeed(self.progress, None, active=current)
            start = time.perf_counter()
            self.set_busy(True, f"running {label}…")
            self.errors.clear()
            message = ""
            try:
                with torch_threads(self.threads):
                    result = call(token, feed)
                if not current():
                    return
                present(result)
                box["result"] = result
                cancelled = bool(result.settings.get("cancelled")) or token.should_stop()
                steps = int(result.steps_used.max()) if len(result) else 0
                seconds = time.perf_counter() - start
                message = f"cancelled after {steps} step(s)" if cancelled else f"done in {seconds:.2f} s"
                with self.progress.hold_sync():
                    self.progress.value = self.progress.max
                    self.progress.bar_style = "warning" if cancelled else "success"
                if then is not None and current():  # the result is on show; its figure follows
                    self.status.value = html.escape(f"{message}; drawing the figure…")
                    time.sleep(pause)
                    then(result)
            except Exception as error:
                box["error"] = error
                if current():
                    self.errors.show(error)
                    self.progress.bar_style = "danger"
                    message = "failed"
            finally:
                if current():
                    self.set_busy(False, message)
        return job

    def run(self, label: str, call: Call, present: Present, then: Present | None = None) -> Counterfactuals | None:
        """Run ``call`` here (after cancelling a running search); ``present`` its result; return it (None on error).

        ``then`` (optional) runs after the status says the result is done, for slower parts of the view (a figure):
        the counterfactual shows first, the controls stay disabled until ``then`` returns."""
        box: dict[str, Any] = {}
        self.runner.run_here(self._job(label, call, present, box, then))
        return box.get("result")

    def start(self, label: str, call: Call, present: Present, then: Present | None = None) -> threading.Thread:
        """Run ``call`` in a worker thread (after cancelling a running search) and return the thread; ``present``
        and ``then`` as for ``run``, with ``FIGURE_PAUSE_S`` between them (this is the path of a click in a page)."""
        return self.runner.submit(self._job(label, call, present, {}, then, FIGURE_PAUSE_S), name="cfnb-explain")
