"""The report panel: PDF preview in QPdfView, sign with the reviewer's name, export PDF and DICOM."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot
from ui_fixtures import make_findings, write_study

from radiology_app.core.config import app_paths
from radiology_app.importer import import_paths
from radiology_app.store.database import StudyDatabase
from radiology_app.ui import services
from radiology_app.ui.report_panel import ReportPanelWidget

UID = "1.2.826.0.1.3680043.8.498.777.1"


@pytest.fixture
def panel(qtbot: QtBot, tmp_path: Path) -> ReportPanelWidget:
    write_study(tmp_path / "s")
    db = StudyDatabase(app_paths().database)
    import_paths([tmp_path / "s"], db)
    series_uid = db.series_for_study(UID)[0].series_uid
    findings = dataclasses.replace(make_findings(UID, series_uid), note_text="70-year-old woman, smoker.")
    findings = services.store_findings(db, findings)
    w = ReportPanelWidget(db)
    qtbot.addWidget(w)
    w.resize(900, 700)
    w.show()
    w.set_findings(findings)
    return w


def _wait(qtbot: QtBot, w: ReportPanelWidget) -> None:
    qtbot.waitUntil(lambda: w.worker is not None and w.worker.done, timeout=120_000)
    assert w.findChild(QMessageBox, "errorDialog") is None


def test_preview_sign_and_export(panel: ReportPanelWidget, qtbot: QtBot, tmp_path: Path) -> None:
    w = panel
    assert w.preview_button.isEnabled() and not w.export_pdf_button.isEnabled()
    assert not w.export_dicom_button.isEnabled()  # DICOM export only after sign-off
    w.preview()
    _wait(qtbot, w)
    assert w.pdf_path is not None and w.pdf_path.exists()
    assert w.document.pageCount() >= 1 and "Draft" in w.status.text()
    # Signing needs a name.
    w.reviewer.setText("  ")
    assert w.sign() is None
    qtbot.waitUntil(lambda: w.findChild(QMessageBox, "errorDialog") is not None)
    w.findChild(QMessageBox, "errorDialog").deleteLater()
    qtbot.waitUntil(lambda: w.findChild(QMessageBox, "errorDialog") is None)
    w.reviewer.setText("Dr R. Panel")
    with qtbot.waitSignal(w.findings_signed) as signed:
        w.sign()
    assert signed.args[0].reviewer == "Dr R. Panel" and signed.args[0].is_signed
    _wait(qtbot, w)
    assert "Signed by Dr R. Panel" in w.status.text()
    stored = services.latest_findings(w.db, UID)
    assert stored is not None and stored.is_signed and stored.report == str(w.pdf_path)
    text = " ".join(w.document.getAllText(p).text() for p in range(w.document.pageCount()))
    assert "Dr R. Panel" in " ".join(text.split())
    out = w.export_pdf(tmp_path / "out" / "r.pdf")
    assert out is not None and out.read_bytes() == w.pdf_path.read_bytes()
    assert w.export_dicom_button.isEnabled()
    with qtbot.waitSignal(w.exported, timeout=120_000) as exported:
        w.export_dicom(tmp_path / "dicom")
    _wait(qtbot, w)
    files = exported.args[0]
    assert files and all(Path(f).exists() for f in files)  # no label map here, so no SEG: the PDF at least
