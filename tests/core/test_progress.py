"""Progress reports and cancellation."""

from __future__ import annotations

import threading

import pytest

from radiology_app.core.errors import OperationCancelled
from radiology_app.core.progress import CancelToken, Progress, check_cancel, report, scaled


def test_fraction_handles_unknown_and_overflow() -> None:
    assert Progress(3, None).fraction is None
    assert Progress(5, 10).fraction == 0.5
    assert Progress(12, 10).fraction == 1.0


def test_cancel_token_raises_after_cancel_from_another_thread() -> None:
    token = CancelToken()
    check_cancel(token)
    worker = threading.Thread(target=token.cancel)
    worker.start()
    worker.join()
    assert token.cancelled
    with pytest.raises(OperationCancelled):
        check_cancel(token)
    check_cancel(None)


def test_scaled_maps_substep_into_share_of_overall_bar() -> None:
    seen: list[Progress] = []
    sub = scaled(seen.append, 0.5, 1.0, total=100, message="segmenting")
    assert sub is not None
    report(sub, 0, 4)
    report(sub, 2, 4)
    report(sub, 4, 4)
    assert [p.done for p in seen] == [50, 75, 100]
    assert all(p.total == 100 and p.message == "segmenting" for p in seen)
    assert scaled(None, 0.0, 1.0) is None
