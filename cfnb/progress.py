"""cfnb's one progress contract: ``progress=True`` (a tqdm bar), ``False`` (nothing) or a callable ``(done, total)``.

Every long-running call (``cfnb.explain``, ``cfnb.audit.spurious``, the training loops) takes it. ``True`` shows
``tqdm.auto``: a widget bar in notebooks, a text bar on stderr elsewhere; panels pass their own callable instead.
"""
from __future__ import annotations

from collections.abc import Callable

Progress = bool | None | Callable[[int, int], None]


class Reporter:
    """``update(done, total)`` and ``close()`` for one long call, whatever form ``progress`` took."""

    def __init__(self, progress: Progress, total: int | None, description: str, unit: str = "it"):
        self._callback: Callable[[int, int], None] | None = progress if callable(progress) else None
        self._bar = None
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=description, unit=unit, leave=False)

    def update(self, done: int, total: int) -> None:
        """Report ``done`` of ``total``."""
        if self._callback is not None:
            self._callback(done, total)
        elif self._bar is not None:
            if self._bar.total != total:
                self._bar.total = total
            self._bar.update(done - self._bar.n)

    def say(self, message: str, log: Callable[[str], None] | None) -> None:
        """Pass a log line to ``log`` (None: drop it); printed lines go above an active bar, not through it."""
        if log is None:
            return
        if self._bar is not None and log is print:
            self._bar.write(message)
        else:
            log(message)

    def close(self) -> None:
        """End the bar (a callable needs nothing)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_progress(progress: object) -> None:
    """Raise ``TypeError`` unless ``progress`` is True, False, None or a callable ``(done, total)``."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return
    raise TypeError(f"progress must be True (a bar), False (none) or a callable progress(done, total), got "
                    f"{type(progress).__name__}")
