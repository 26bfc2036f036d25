"""The main window: opening a study, persistence of window state, analysis progress/partials/cancel/errors."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot
from ui_fixtures import make_findings, make_volume, write_study

from radiology_app.core.config import app_paths
from radiology_app.core.errors import ModelError
from radiology_app.core.progress import check_cancel, report
from radiology_app.importer import import_paths
from radiology_app.store.database import StudyDatabase
from radiology_app.ui import services
from radiology_app.ui.imaging import Plane
from radiology_app.ui.main_window import TAB_REVIEW, MainWindow

UID = "1.2.826.0.1.3680043.8.498.777.1"


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path) -> MainWindow:
    return _window_with_study(qtbot, tmp_path)


def _window_with_study(qtbot: QtBot, tmp_path: Path, **volume: Any) -> MainWindow:
    """A shown main window over a database holding the test study (``make_volume(**volume)``)."""
    write_study(tmp_path / "s", make_volume(**volume))
    db = StudyDatabase(app_paths().database)
    import_paths([tmp_path / "s"], db)
    db.add_note(UID, "70-year-old woman, former smoker, 20 pack-years.")
    w = MainWindow(db)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def _open(qtbot: QtBot, w: MainWindow) -> None:
    worker = w.open_study(UID)
    assert worker is not None
    qtbot.waitUntil(lambda: worker.done and w.volume is not None, timeout=30_000)


def test_open_study_shows_volume_and_note(window: MainWindow, qtbot: QtBot) -> None:
    assert window.browser.model.rowCount() == 1
    _open(qtbot, window)
    assert window.tabs.currentIndex() == TAB_REVIEW
    assert window.volume is not None and window.volume.shape_zyx == (40, 64, 72)
    assert window.viewer.views[Plane.AXIAL].render_slice() is not None
    assert window.notes.text().startswith("70-year-old woman")
    assert window.notes.facts["age"]["value"] == 70
    assert window.act_analyze.isEnabled() and not window.act_cancel.isEnabled()
    assert "72×64×40" in window.status_text.text()


def test_window_state_persists(window: MainWindow, qtbot: QtBot, tmp_path: Path) -> None:
    window.resize(760, 560)  # inside the offscreen screen (restoreGeometry clamps to it)
    window.report.reviewer.setText("Dr Q. Persist")
    window.save_state()
    assert QSettings().value("review/reviewer") == "Dr Q. Persist"
    again = MainWindow(window.db)
    qtbot.addWidget(again)
    # The offscreen screen is 800 px wide, below the window's minimum width, so only the height is exact.
    assert again.height() == window.height() == 560
    assert QSettings().value("window/geometry") is not None
    assert again.report.reviewer.text() == "Dr Q. Persist"


def _slow_analysis(
    db: StudyDatabase,
    study_uid: str,
    note_text: str | None,
    *,
    on_progress: Any = None,
    cancel: Any = None,
    on_nodule: Any = None,
) -> Any:
    findings = make_findings(study_uid=study_uid)
    for i, nodule in enumerate(findings.nodules):
        for k in range(20):
            check_cancel(cancel)
            time.sleep(0.01)
            report(on_progress, i * 20 + k + 1, 40, "steps", f"nodule {nodule.id}")
        if on_nodule is not None:
            on_nodule(nodule)
    return services.store_findings(db, findings)


def test_analysis_shows_progress_and_nodules_as_they_come(
    window: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "analyze", _slow_analysis)
    _open(qtbot, window)
    seen_rows: list[int] = []
    window.analysis.nodule_found.connect(lambda _n: seen_rows.append(window.findings_panel.model.rowCount()))
    with qtbot.waitSignal(window.analysis.succeeded, timeout=30_000):
        window.start_analysis()
        assert window.progress.isVisible() and window.act_cancel.isEnabled()
    assert seen_rows == [1, 2]  # the table grew as each nodule arrived
    assert window.findings is not None and window.findings.run_id is not None
    assert window.findings_panel.model.rowCount() == 2
    qtbot.waitUntil(lambda: not window.progress.isVisible())
    assert window.findings_panel.selected_id() == "N1"
    assert window.viewer.model.position == (20, 30, 40)  # jumped to the nodule
    assert window.differential.bars.items[0][0] == "adenocarcinoma"


def test_cancel_analysis(window: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "analyze", _slow_analysis)
    _open(qtbot, window)
    with qtbot.waitSignal(window.analysis.failed, timeout=30_000) as failed:
        window.start_analysis()
        qtbot.wait(50)
        window.cancel_analysis()
    assert failed.args[0].cancelled
    assert "cancelled" in window.status_text.text().lower()
    assert window.findChild(QMessageBox, "errorDialog") is None


def test_analysis_error_reaches_the_user(
    window: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: Any, **_k: Any) -> Any:
        raise ModelError("/models/nodule_unet.safetensors: SHA-256 does not match the model card")

    monkeypatch.setattr(services, "analyze", broken)
    _open(qtbot, window)
    window.start_analysis()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None, timeout=10_000)
    box = window.findChild(QMessageBox, "errorDialog")
    assert box is not None
    assert "SHA-256 does not match" in box.informativeText()
    assert "Traceback" in box.detailedText()
    qtbot.waitUntil(lambda: window.act_analyze.isEnabled())


def test_review_edits_are_stored(window: MainWindow, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "analyze", _slow_analysis)
    _open(qtbot, window)
    with qtbot.waitSignal(window.analysis.succeeded, timeout=30_000):
        window.start_analysis()
    window.findings_panel.select("N2")
    window.findings_panel.reject_selected()
    stored = services.latest_findings(window.db, UID)
    assert stored is not None and stored.nodule("N2").review == "rejected"


def test_dialogs_open_without_blocking(window: MainWindow, qtbot: QtBot) -> None:
    about = window.show_about()
    settings = window.show_settings()
    batch = window.show_batch_dialog()
    for d in (about, settings, batch):
        qtbot.addWidget(d)
        assert d.isVisible()
        d.close()


def test_create_main_window_opens_a_study_by_prefix(qtbot: QtBot, tmp_path: Path) -> None:
    from radiology_app.core.errors import StudyNotFoundError
    from radiology_app.ui.app import create_main_window

    write_study(tmp_path / "s")
    import_paths([tmp_path / "s"], StudyDatabase(app_paths().database))
    w = create_main_window(UID[:-3])
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.volume is not None, timeout=30_000)
    assert w.study_uid == UID
    with pytest.raises(StudyNotFoundError):
        create_main_window("9.9.9.9")


def test_saliency_overlay_from_the_fused_model(qtbot: QtBot, tmp_path: Path) -> None:
    from radiology_app import pipeline
    from radiology_app.core.config import load_settings
    from radiology_app.core.errors import RadiologyAppError

    try:
        pipeline.MODELS.segmenter()
        pipeline.MODELS.diagnosis(load_settings())
    except RadiologyAppError as exc:
        pytest.skip(f"model weights not available: {exc}")
    # a 7 mm nodule well inside the right lung, which the shipped detector finds
    window = _window_with_study(qtbot, tmp_path, nodule_zyx=(20, 32, 50), radius_vox=5)
    _open(qtbot, window)
    with qtbot.waitSignal(window.analysis.succeeded, timeout=600_000) as done:
        window.start_analysis()
    findings = done.args[0]
    assert findings.nodules, "the detector found no nodule in the test study"
    qtbot.waitUntil(lambda: window.differential.nodule is not None, timeout=10_000)
    window.differential.saliency.setChecked(True)
    qtbot.waitUntil(lambda: window.viewer.model.saliency is not None, timeout=120_000)
    sal = window.viewer.model.saliency
    origin = window.viewer.model.saliency_origin_zyx
    assert sal is not None and sal.ndim == 3 and float(sal.min()) >= 0.0 and float(sal.max()) == 1.0
    nodule = window.differential.nodule
    assert nodule is not None
    centroid = nodule.centroid_zyx
    assert centroid is not None
    for axis in range(3):  # the map surrounds the nodule
        assert origin[axis] <= centroid[axis] <= origin[axis] + sal.shape[axis]
    window.differential.saliency.setChecked(False)
    assert window.viewer.model.saliency is None
