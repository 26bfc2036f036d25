"""The generic background worker: runs any Qt-free function that takes ``on_progress`` and ``cancel``.

The function runs on a pool thread; its progress reports, partial results, result and error reach the
GUI thread through queued signals. Model work goes to :func:`model_pool` (one thread, so models never run
concurrently and never fight over the CPU); I/O work such as imports goes to :func:`io_pool`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from radiology_app.core.errors import OperationCancelled
from radiology_app.core.guard import is_recoverable
from radiology_app.core.progress import CancelToken, Progress

log = logging.getLogger(__name__)

_MODEL_POOL: QThreadPool | None = None
_IO_POOL: QThreadPool | None = None


def model_pool() -> QThreadPool:
    """The single-thread pool that runs model inference (analysis, click-to-segment)."""
    global _MODEL_POOL
    if _MODEL_POOL is None:
        _MODEL_POOL = QThreadPool()
        _MODEL_POOL.setObjectName("modelPool")
        _MODEL_POOL.setMaxThreadCount(1)
    return _MODEL_POOL


def io_pool() -> QThreadPool:
    """The pool for file work (import, volume loading, PDF writing): two threads."""
    global _IO_POOL
    if _IO_POOL is None:
        _IO_POOL = QThreadPool()
        _IO_POOL.setObjectName("ioPool")
        _IO_POOL.setMaxThreadCount(2)
    return _IO_POOL


@dataclass(frozen=True)
class WorkerError:
    """An exception raised by a worker's function, carried to the GUI thread.

    Attributes
    ----------
    exception
        The exception object.
    details
        The formatted traceback (for the details pane of the error dialog).
    cancelled
        Whether the function stopped because it was cancelled.
    """

    exception: BaseException
    details: str
    cancelled: bool = False

    @property
    def message(self) -> str:
        """One-line text of the exception."""
        return str(self.exception) or type(self.exception).__name__


class WorkerSignals(QObject):
    """Signals of a :class:`FunctionWorker` (a QRunnable cannot carry signals itself).

    Signals
    -------
    progress(object)
        A :class:`~radiology_app.core.progress.Progress`.
    partial(object)
        A partial result handed to the ``emit_partial`` callback (e.g. one nodule as it is found).
    result(object)
        The function's return value.
    error(object)
        A :class:`WorkerError` (also for cancellation, with ``cancelled`` true).
    finished()
        Emitted last, after ``result`` or ``error``.
    """

    progress = Signal(object)
    partial = Signal(object)
    result = Signal(object)
    error = Signal(object)
    finished = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.delivered = False
        self.finished.connect(self._mark_delivered)  # first slot: runs before any other finished handler

    def _mark_delivered(self) -> None:
        self.delivered = True


class FunctionWorker(QRunnable):
    """Run ``fn(*args, on_progress=..., cancel=..., **kwargs)`` on a pool thread.

    Parameters
    ----------
    fn
        A Qt-free function. It receives ``on_progress`` and ``cancel`` keyword arguments unless
        ``pass_progress`` is false.
    *args, **kwargs
        Passed to ``fn``.
    pass_progress
        Whether ``fn`` accepts ``on_progress`` and ``cancel``.
    partial_kwarg
        When given, ``fn`` also receives a callback under this keyword (e.g. ``"on_nodule"``) whose calls
        are forwarded to the :attr:`WorkerSignals.partial` signal.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        pass_progress: bool = True,
        partial_kwarg: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.pass_progress = pass_progress
        self.partial_kwarg = partial_kwarg
        self.cancel_token = CancelToken()
        self.signals = WorkerSignals()
        self.returned = False

    def cancel(self) -> None:
        """Ask the function to stop at its next cancellation check."""
        self.cancel_token.cancel()

    def _on_progress(self, p: Progress) -> None:
        self.signals.progress.emit(p)

    def _on_partial(self, item: object) -> None:
        self.signals.partial.emit(item)

    def run(self) -> None:
        """Run the function (called by the thread pool)."""
        kwargs = dict(self.kwargs)
        if self.pass_progress:
            kwargs["on_progress"] = self._on_progress
            kwargs["cancel"] = self.cancel_token
        if self.partial_kwarg:
            kwargs[self.partial_kwarg] = self._on_partial
        try:
            value = self.fn(*self.args, **kwargs)
        except OperationCancelled as exc:
            self.signals.error.emit(WorkerError(exc, "", cancelled=True))
        except BaseException as exc:  # any failure (a native panic too) reaches the user as a dialog
            if not is_recoverable(exc):
                raise
            name = getattr(self.fn, "__name__", "?")
            log.warning("background task %s failed: %s", name, type(exc).__name__)
            self.signals.error.emit(WorkerError(exc, traceback.format_exc()))
        else:
            self.signals.result.emit(value)
        finally:
            self.returned = True
            self.signals.finished.emit()

    @property
    def done(self) -> bool:
        """Whether the GUI thread has received the outcome (``result`` or ``error``, then ``finished``).

        The function itself may have returned earlier (:attr:`returned`); ``done`` turns true only when
        the queued signals have been delivered, so a caller that sees it also sees their effects.
        """
        return self.signals.delivered


def start_worker(worker: FunctionWorker, pool: QThreadPool | None = None) -> FunctionWorker:
    """Start ``worker`` on ``pool`` (default: :func:`io_pool`) and return it."""
    (pool or io_pool()).start(worker)
    return worker
