"""Progress reporting and cooperative cancellation for slow, Qt-free operations.

Every slow step takes ``on_progress: ProgressCallback | None`` and ``cancel: CancelToken | None``; it
reports in natural units (files, slices, windows, nodules) and raises
:class:`~radiology_app.core.errors.OperationCancelled` when cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from radiology_app.core.errors import OperationCancelled


@dataclass(frozen=True)
class Progress:
    """One progress report.

    Attributes
    ----------
    done
        Units finished so far.
    total
        Units in all, or ``None`` when unknown.
    unit
        What is counted (``"files"``, ``"slices"``, ``"windows"``...).
    message
        Short human text for the current stage.
    """

    done: int
    total: int | None
    unit: str = ""
    message: str = ""

    @property
    def fraction(self) -> float | None:
        """Fraction done in [0, 1], or ``None`` when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """A thread-safe flag that a long operation polls to stop early."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the operation to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`OperationCancelled` if cancellation was requested."""
        if self._event.is_set():
            raise OperationCancelled("operation cancelled")


def check_cancel(cancel: CancelToken | None) -> None:
    """Raise :class:`OperationCancelled` when ``cancel`` is set (``None`` never cancels)."""
    if cancel is not None:
        cancel.raise_if_cancelled()


def report(
    on_progress: ProgressCallback | None, done: int, total: int | None, unit: str = "", message: str = ""
) -> None:
    """Call ``on_progress`` with a :class:`Progress` when a callback was given."""
    if on_progress is not None:
        on_progress(Progress(done=done, total=total, unit=unit, message=message))


def scaled(
    on_progress: ProgressCallback | None,
    start: float,
    stop: float,
    total: int = 1000,
    message: str | None = None,
) -> ProgressCallback | None:
    """Map a sub-step's progress onto the ``[start, stop]`` share of an overall bar of ``total`` units."""
    if on_progress is None:
        return None

    def _forward(p: Progress) -> None:
        frac = p.fraction if p.fraction is not None else 0.0
        done = round(total * (start + (stop - start) * frac))
        on_progress(Progress(done=done, total=total, unit="", message=message or p.message))

    return _forward
