"""``radiology-app gui PATH...`` and drops on the window: import, then open; the first-run welcome."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent
from pytestqt.qtbot import QtBot
from ui_fixtures import write_study

from radiology_app.ui.app import create_main_window
from radiology_app.ui.main_window import TAB_REVIEW, TAB_STUDIES, MainWindow

UID = "1.2.826.0.1.3680043.8.498.777.1"


def _shown(qtbot: QtBot, window: MainWindow) -> MainWindow:
    qtbot.addWidget(window)
    window.show()
    return window


def test_gui_folder_opens_that_study(qtbot: QtBot, tmp_path: Path) -> None:
    write_study(tmp_path / "study")
    w = _shown(qtbot, create_main_window(paths=[tmp_path / "study"]))
    qtbot.waitUntil(lambda: w.study_uid == UID, timeout=60_000)
    assert w.tabs.currentIndex() == TAB_REVIEW
    assert w.volume is not None and w.volume.shape_zyx == (40, 64, 72)
    assert w.browser.model.rowCount() == 1


def test_gui_zip_and_single_file_open_the_study(qtbot: QtBot, tmp_path: Path) -> None:
    files = write_study(tmp_path / "study")
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in files:
            zf.write(f, f.name)
    w = _shown(qtbot, create_main_window(paths=[archive]))
    qtbot.waitUntil(lambda: w.study_uid == UID, timeout=60_000)
    w2 = _shown(qtbot, create_main_window(paths=[files[0]]))  # one file of the same, already imported study
    qtbot.waitUntil(lambda: w2.study_uid == UID, timeout=60_000)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PySide6: drag-event constructor deprecated
def test_drop_on_the_window_imports_and_opens(qtbot: QtBot, tmp_path: Path) -> None:
    write_study(tmp_path / "dropped")
    w = _shown(qtbot, create_main_window())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped"))])
    drop = QDropEvent(
        QPoint(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    w.dropEvent(drop)
    qtbot.waitUntil(lambda: w.study_uid == UID, timeout=60_000)


def test_an_import_from_the_menu_does_not_switch_to_the_study(qtbot: QtBot, tmp_path: Path) -> None:
    write_study(tmp_path / "study")
    w = _shown(qtbot, create_main_window())
    with qtbot.waitSignal(w.browser.import_finished, timeout=60_000):
        w.browser.start_import([tmp_path / "study"])
    assert w.study_uid is None and w.tabs.currentIndex() == TAB_STUDIES


def test_welcome_on_an_empty_database_then_the_table(qtbot: QtBot, tmp_path: Path) -> None:
    w = _shown(qtbot, create_main_window())
    assert w.browser.pages.currentWidget() is w.browser.welcome
    text = w.browser.welcome.text
    qtbot.waitUntil(text.isVisible)
    assert text.height() >= text.heightForWidth(text.width())  # the wrapped text is not clipped
    write_study(tmp_path / "study")
    with qtbot.waitSignal(w.browser.import_finished, timeout=60_000):
        w.browser.start_import([tmp_path / "study"])
    assert w.browser.pages.currentWidget() is w.browser.table


@pytest.mark.slow  # writes and imports the 512 x 512 x 120 demo series
def test_welcome_demo_button_opens_the_demo_study(qtbot: QtBot) -> None:
    from radiology_app.demo import demo_study_uid

    w = _shown(qtbot, create_main_window())
    qtbot.mouseClick(w.browser.welcome.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.study_uid == demo_study_uid(), timeout=180_000)
    assert w.browser.pages.currentWidget() is w.browser.table
    assert w.notes is not None and w.db.notes_for_study(demo_study_uid())


def test_gui_with_a_missing_path_fails_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "RADIOLOGY_APP_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-m", "radiology_app", "gui", str(tmp_path / "nope.zip")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == f"radiology-app: error: no such file or folder: {tmp_path / 'nope.zip'}"
