"""The batch dialog: per-study status, overall progress, cancel, resume (import-only batches; the
analysing batch is exercised by the batch runner's own tests and the end-to-end test's models)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot
from ui_fixtures import write_study

from radiology_app.core.config import app_paths
from radiology_app.store.database import StudyDatabase
from radiology_app.ui.batch_dialog import BatchDialog, item_fields

UIDS = ("1.2.826.0.1.3680043.8.498.777.1", "1.2.826.0.1.3680043.8.498.777.2")


def _dialog(qtbot: QtBot, tmp_path: Path) -> BatchDialog:
    root = tmp_path / "many"
    write_study(root / "a", study_uid=UIDS[0])
    write_study(root / "b", study_uid=UIDS[1], patient_id="P002", patient_name="Other^Bob")
    (root / "broken.dcm").write_bytes(b"\x00" * 10)
    d = BatchDialog(StudyDatabase(app_paths().database))
    qtbot.addWidget(d)
    d.folder.setText(str(root))
    d.analyze.setChecked(False)
    d.write_reports.setChecked(False)
    return d


def _statuses(d: BatchDialog) -> dict[str, str]:
    return {d.table.item(r, 0).text(): d.table.item(r, 1).text() for r in range(d.table.rowCount())}


def test_batch_imports_each_study_and_resumes(qtbot: QtBot, tmp_path: Path) -> None:
    d = _dialog(qtbot, tmp_path)
    with qtbot.waitSignal(d.finished_batch, timeout=120_000) as done:
        assert d.start() is not None
        assert not d.start_button.isEnabled() and d.cancel_button.isEnabled()
    assert done.args[0] is not None
    assert _statuses(d) == {UIDS[0]: "done", UIDS[1]: "done"}  # import-only batch: done once imported
    assert d.progress.value() == d.progress.maximum() and "2 stud(ies), 0 failed" in d.status.text()
    qtbot.waitUntil(lambda: d.start_button.isEnabled())
    assert {s.study_uid for s in d.db.list_studies()} == set(UIDS)
    # A second run of the same batch repeats nothing.
    with qtbot.waitSignal(d.finished_batch, timeout=120_000):
        d.start()
    assert all(s.endswith("(earlier run)") for s in _statuses(d).values())


def test_batch_cancel_and_missing_folder(qtbot: QtBot, tmp_path: Path) -> None:
    d = _dialog(qtbot, tmp_path)
    with qtbot.waitSignal(d.finished_batch, timeout=120_000) as done:
        d.start()
        d.cancel()
    assert done.args[0] is None  # cancelled at once: the runner stops at its first check
    assert "cancelled" in d.status.text().lower()
    assert d.findChild(QMessageBox, "errorDialog") is None
    qtbot.waitUntil(lambda: d.start_button.isEnabled())
    d.folder.setText(str(tmp_path / "nowhere"))
    assert d.start() is None
    qtbot.waitUntil(lambda: d.findChild(QMessageBox, "errorDialog") is not None)


def test_item_fields_reads_objects_and_mappings() -> None:
    assert item_fields(
        {"study_uid": "1.2", "status": "failed", "reason": "no CT series", "report": None}
    ) == (
        "1.2",
        "failed",
        "no CT series",
        "",
    )
    assert item_fields({"study_uid": "1.3", "status": "done", "nodules": 2, "report": "/r.pdf"})[1:] == (
        "done, 2 nodule(s)",
        "",
        "/r.pdf",
    )


def test_batch_with_analysis_and_reports(qtbot: QtBot, tmp_path: Path) -> None:
    import pytest

    from radiology_app import pipeline
    from radiology_app.core.errors import RadiologyAppError

    try:
        pipeline.MODELS.segmenter()
    except RadiologyAppError as exc:
        pytest.skip(f"model weights not available: {exc}")
    write_study(tmp_path / "many" / "a")
    d = BatchDialog(StudyDatabase(app_paths().database))
    qtbot.addWidget(d)
    d.folder.setText(str(tmp_path / "many"))
    d.report_dir.setText(str(tmp_path / "reports"))
    assert d.analyze.isChecked() and d.write_reports.isChecked()
    with qtbot.waitSignal(d.finished_batch, timeout=600_000) as done:
        d.start()
    assert done.args[0] is not None
    key, status, reason, report = (d.table.item(0, c).text() for c in range(4))
    assert key == UIDS[0] and status.startswith("done") and "nodule(s)" in status and reason == ""
    assert Path(report).exists() and Path(report).parent == tmp_path / "reports"
