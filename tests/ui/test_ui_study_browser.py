"""The study browser: listing, search, background import with progress, the issues list, drag and drop."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from pytestqt.qtbot import QtBot
from ui_fixtures import write_study

from radiology_app.core.config import app_paths
from radiology_app.store.database import StudyDatabase
from radiology_app.ui.study_browser import ImportIssuesDialog, StudyBrowserWidget


def _browser(qtbot: QtBot) -> StudyBrowserWidget:
    db = StudyDatabase(app_paths().database)
    w = StudyBrowserWidget(db)
    qtbot.addWidget(w)
    w.resize(900, 500)
    return w


def test_import_folder_lists_study_and_reports_bad_files(qtbot: QtBot, tmp_path: Path) -> None:
    src = tmp_path / "incoming"
    write_study(src / "a")
    (src / "junk.dcm").write_bytes(b"not a dicom file at all")
    w = _browser(qtbot)
    assert w.model.rowCount() == 0
    progress: list[object] = []
    with qtbot.waitSignal(w.import_finished, timeout=60_000) as done:
        worker = w.start_import([src])
        assert worker is not None
        worker.signals.progress.connect(progress.append)
        assert w.is_importing() and not w.import_folder_button.isEnabled()
    result = done.args[0]
    assert result.instances_added == 40
    assert any("junk.dcm" in i.path for i in result.issues)
    assert w.model.rowCount() == 1
    assert w.selected_study_uid() == "1.2.826.0.1.3680043.8.498.777.1"
    row = [w.proxy.index(0, c).data() for c in range(w.proxy.columnCount())]
    assert row[0] == "Test Alice" and row[1] == "P001" and row[2] == "2024-05-17" and row[6] == 40
    dialog = w.findChild(ImportIssuesDialog)
    assert dialog is not None and dialog.table.rowCount() == len(result.issues)
    qtbot.waitUntil(lambda: not w.progress.isVisible() and w.import_folder_button.isEnabled())


def test_search_filters_rows(qtbot: QtBot, tmp_path: Path) -> None:
    write_study(tmp_path / "a")
    write_study(
        tmp_path / "b",
        patient_name="Other^Bob",
        patient_id="P002",
        study_uid="1.2.826.0.1.3680043.8.498.777.2",
        description="CT low dose",
    )
    w = _browser(qtbot)
    with qtbot.waitSignal(w.import_finished, timeout=60_000):
        w.start_import([tmp_path / "a", tmp_path / "b"])
    assert w.proxy.rowCount() == 2
    qtbot.keyClicks(w.search, "bob")
    assert w.proxy.rowCount() == 1 and w.proxy.index(0, 1).data() == "P002"
    w.search.clear()
    qtbot.keyClicks(w.search, "low dose")
    assert w.proxy.rowCount() == 1
    w.search.clear()
    assert w.proxy.rowCount() == 2
    with qtbot.waitSignal(w.study_activated) as sig:
        w.table.doubleClicked.emit(w.proxy.index(1, 0))
    assert sig.args[0] in {"1.2.826.0.1.3680043.8.498.777.1", "1.2.826.0.1.3680043.8.498.777.2"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PySide6: drag-event constructor deprecated
def test_drop_of_a_folder_starts_an_import(qtbot: QtBot, tmp_path: Path) -> None:
    write_study(tmp_path / "dropped")
    w = _browser(qtbot)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped"))])
    ev = QDropEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    enter = QDragEnterEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    w.dragEnterEvent(enter)  # Qt delivers synthetic drag events only during a real drag; call the handlers
    assert enter.isAccepted()
    with qtbot.waitSignal(w.import_finished, timeout=60_000) as done:
        w.dropEvent(ev)
    assert done.args[0].instances_added == 40 and w.model.rowCount() == 1


def test_cancelled_import_keeps_the_browser_usable(qtbot: QtBot, tmp_path: Path) -> None:
    write_study(tmp_path / "a")
    w = _browser(qtbot)
    worker = w.start_import([tmp_path / "a"])
    assert worker is not None
    w.cancel_import()
    qtbot.waitUntil(lambda: worker.done, timeout=60_000)
    qtbot.waitUntil(lambda: w.import_folder_button.isEnabled())
    assert not w.is_importing()


def test_issues_dialog_lists_reasons(qtbot: QtBot) -> None:
    from radiology_app.core.types import ImportIssue, ImportResult

    result = ImportResult(
        run_id=1,
        studies=(),
        instances_added=0,
        instances_already_present=0,
        issues=(ImportIssue("/x/a.dcm", "truncated file"), ImportIssue("/x/b", "not DICOM")),
    )
    d = ImportIssuesDialog(result)
    qtbot.addWidget(d)
    assert d.table.rowCount() == 2 and d.table.item(0, 1).text() == "truncated file"
