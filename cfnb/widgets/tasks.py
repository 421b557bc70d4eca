"""One cancellable job at a time, off the kernel's message loop; progress bars fed at a bounded rate."""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import ipywidgets as widgets
import torch


class CancelToken:
    """Handed to a job: ``should_stop()`` turns True once the job is cancelled or replaced."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def should_stop(self) -> bool:
        return self._event.is_set()


class TaskRunner:
    """Runs jobs ``job(token)`` one at a time, in a worker thread (``submit``) or the caller's (``run_here``).

    Starting a job first cancels the running one and waits (up to ``join_timeout`` seconds) for it to stop; a job
    that outlives the wait keeps running, but ``is_current`` tells it its results are no longer wanted.
    """

    def __init__(self, join_timeout: float = 10.0):
        self.join_timeout = join_timeout
        self._lock = threading.Lock()
        self._token: CancelToken | None = None
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        """A job is running (in a thread or in a caller)."""
        with self._lock:
            return self._token is not None

    def is_current(self, token: CancelToken) -> bool:
        """``token``'s job is the latest one started (a job cancelled by ``cancel`` stays current, so it can still
        show what it found; a job replaced by a newer one does not)."""
        with self._lock:
            return token is self._token

    def cancel(self, wait: bool = True, supersede: bool = False) -> bool:
        """Ask the running job to stop; with ``wait``, join its thread. Returns whether a job was running.

        With ``supersede`` the job also stops being current at once, so whatever it finishes is discarded.
        """
        with self._lock:
            token, thread = self._token, self._thread
            if supersede:
                self._token, self._thread = None, None
        if token is None:
            return False
        token.cancel()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(self.join_timeout)
        return True

    def _begin(self) -> CancelToken:
        self.cancel(wait=True, supersede=True)
        token = CancelToken()
        with self._lock:
            self._token, self._thread = token, None
        return token

    def _end(self, token: CancelToken) -> None:
        with self._lock:
            if self._token is token:
                self._token, self._thread = None, None

    def submit(self, job: Callable[[CancelToken], None], name: str = "cfnb-task") -> threading.Thread:
        """Start ``job(token)`` in a daemon thread (after cancelling the running job) and return the thread."""
        token = self._begin()

        def target() -> None:
            try:
                job(token)
            finally:
                self._end(token)

        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()
        return thread

    def run_here(self, job: Callable[[CancelToken], None]) -> None:
        """Run ``job(token)`` in the calling thread (after cancelling the running job)."""
        token = self._begin()
        try:
            job(token)
        finally:
            self._end(token)


def browser_friendly_threads() -> int:
    """Torch threads for a panel's search: one fewer than torch's current setting, at least one.

    Where the browser showing the notebook runs on the same CPU (a laptop, this project's 2-core test machine), a
    search on every core starves the page and Jupyter's server, and torch's threads then wait on each other: in
    the real-browser test a 100-step MNIST search took 0.93-1.41 s on 2 threads and 0.65-0.75 s on 1."""
    return max(1, torch.get_num_threads() - 1)


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Limit torch's intra-op threads to ``count`` for the block (None: leave them alone).

    The setting is process-wide: overlapping blocks (two panels searching at once) share it, and the value from
    before the first block is restored when the last one ends."""
    global _threads_users, _threads_saved
    if count is None:
        yield
        return
    if count < 1:
        raise ValueError(f"threads must be >= 1 (or None to leave torch's setting alone), got {count}")
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
        _threads_users += 1
        torch.set_num_threads(count)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


class ProgressFeed:
    """``progress(done, total)`` callback that moves an ``IntProgress`` at most every ``interval`` seconds.

    Every call is cheap; widget messages go out only when ``interval`` has passed or the work is done, so a fast
    optimisation does not flood the front end. ``active()`` returning False silences a replaced job's feed.
    """

    def __init__(self, bar: widgets.IntProgress, label: widgets.HTML | None = None, interval: float = 0.05,
                 active: Callable[[], bool] = lambda: True):
        self.bar, self.label, self.interval, self.active = bar, label, interval, active
        self._last = 0.0
        self.calls = 0

    def __call__(self, done: int, total: int) -> None:
        self.calls += 1
        now = time.perf_counter()
        if not self.active() or (now - self._last < self.interval and done < total):
            return
        self._last = now
        with self.bar.hold_sync():
            self.bar.max = max(int(total), 1)
            self.bar.value = min(int(done), self.bar.max)
        if self.label is not None:
            self.label.value = f"{done}/{total}"
