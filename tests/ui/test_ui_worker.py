"""The generic worker: progress, partial results, result, error, cancel, and a live event loop meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from radiology_app.core.errors import StudyNotFoundError
from radiology_app.core.progress import CancelToken, Progress, ProgressCallback, check_cancel, report
from radiology_app.ui.error_dialog import error_text, make_error_dialog
from radiology_app.ui.worker import FunctionWorker, WorkerError, model_pool, start_worker


def _count(
    n: int,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_item: object = None,
    delay_s: float = 0.0,
) -> int:
    total = 0
    for i in range(n):
        check_cancel(cancel)
        time.sleep(delay_s)
        total += i
        report(on_progress, i + 1, n, "items", f"item {i}")
        if callable(on_item):
            on_item(i)
    return total


def test_result_progress_and_partials_arrive_on_gui_thread(qtbot: QtBot) -> None:
    seen: list[Progress] = []
    partials: list[object] = []
    w = FunctionWorker(_count, 5, partial_kwarg="on_item")
    w.signals.progress.connect(seen.append)
    w.signals.partial.connect(partials.append)
    with qtbot.waitSignal(w.signals.result, timeout=5000) as res:
        start_worker(w)
    qtbot.waitUntil(lambda: w.done)
    assert res.args == [10]
    qtbot.waitUntil(lambda: len(seen) == 5)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5] and seen[-1].unit == "items"
    assert partials == [0, 1, 2, 3, 4]


def test_error_is_carried_with_traceback(qtbot: QtBot) -> None:
    def boom(*, on_progress: object = None, cancel: object = None) -> None:
        raise StudyNotFoundError("no study matches '1.2.9'")

    w = FunctionWorker(boom)
    with qtbot.waitSignal(w.signals.error, timeout=5000) as err:
        start_worker(w)
    e = err.args[0]
    assert isinstance(e, WorkerError) and not e.cancelled
    assert "no study matches" in e.message and "StudyNotFoundError" in e.details
    box = make_error_dialog(None, "Open failed", e)
    qtbot.addWidget(box)
    assert box.icon() == QMessageBox.Icon.Critical
    assert "no study matches" in box.informativeText()
    assert "Traceback" in box.detailedText()


def test_cancel_stops_the_function_and_timer_keeps_firing(qtbot: QtBot) -> None:
    ticks = [0]
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    timer.start()
    w = FunctionWorker(_count, 10_000, delay_s=0.002)
    start_worker(w, model_pool())
    qtbot.wait(300)
    assert ticks[0] >= 10  # the event loop ran while the worker was busy
    with qtbot.waitSignal(w.signals.error, timeout=5000) as err:
        w.cancel()
    assert err.args[0].cancelled
    timer.stop()


def test_model_pool_is_single_threaded() -> None:
    assert model_pool().maxThreadCount() == 1


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (FileNotFoundError(2, "No such file or directory", "/x/y.dcm"), "/x/y.dcm"),
        (ValueError("bad"), "ValueError"),
        (MemoryError(), "memory"),
    ],
)
def test_error_text_names_the_problem(exc: BaseException, needle: str) -> None:
    assert needle in error_text(exc)


def test_a_native_panic_reaches_the_gui_as_an_error(
    qtbot: QtBot, write_series: Callable[..., list[Path]]
) -> None:
    """The Rust RLE decoder's real ``PanicException`` derives from BaseException, not Exception: the
    worker must still report it (it escaped, and the GUI never heard that the task ended)."""
    import pydicom
    from hostile_dicom import make_corrupt_rle

    bad = make_corrupt_rle(write_series()[0])

    def decode(*, on_progress: object = None, cancel: object = None) -> object:
        return pydicom.dcmread(bad).pixel_array  # straight to the decoder, no guard of ours

    w = FunctionWorker(decode)
    with qtbot.waitSignal(w.signals.error, timeout=5000) as err:
        start_worker(w)
    qtbot.waitUntil(lambda: w.done)
    error = err.args[0]
    assert isinstance(error, WorkerError) and type(error.exception).__name__ == "PanicException"
