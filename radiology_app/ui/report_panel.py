"""The report panel: preview the PDF inside the app, enter the reviewer's name, sign, export PDF and DICOM.

Writing the PDF and the DICOM objects runs in background workers; the preview is Qt's own PDF viewer
(QtPdf ``QPdfView``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtPdf import QPdfDocument
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from radiology_app.core.config import app_paths
from radiology_app.core.findings import Findings, FindingsError, sign_findings
from radiology_app.core.types import Volume
from radiology_app.store.database import StudyDatabase
from radiology_app.ui import services
from radiology_app.ui.error_dialog import show_error
from radiology_app.ui.worker import FunctionWorker, WorkerError, start_worker


class ReportPanelWidget(QWidget):
    """PDF preview plus the sign-off controls.

    Signals
    -------
    findings_signed(object)
        The findings were signed: the new :class:`~radiology_app.core.findings.Findings`.
    report_written(object)
        A PDF was written (preview or after signing): the findings with ``report`` set (already stored).
    exported(object)
        An export finished: the list of written paths.
    """

    findings_signed = Signal(object)
    report_written = Signal(object)
    exported = Signal(object)

    def __init__(self, db: StudyDatabase, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.findings: Findings | None = None
        self.pdf_path: Path | None = None
        self.volume: Volume | None = None
        self.worker: FunctionWorker | None = None
        self.document = QPdfDocument(self)
        self.view = QPdfView(self)
        self.view.setObjectName("reportPreview")
        self.view.setDocument(self.document)
        self.view.setPageMode(QPdfView.PageMode.MultiPage)
        self.view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        self.reviewer = QLineEdit(self)
        self.reviewer.setObjectName("reviewerName")
        self.reviewer.setPlaceholderText("Reviewer name (e.g. Dr A. Example)")
        self.preview_button = QPushButton("Preview", self)
        self.sign_button = QPushButton("Sign", self)
        self.sign_button.setObjectName("primaryButton")
        self.export_pdf_button = QPushButton("Export PDF…", self)
        self.export_dicom_button = QPushButton("Export DICOM…", self)
        self.preview_button.clicked.connect(self.preview)
        self.sign_button.clicked.connect(self.sign)
        self.export_pdf_button.clicked.connect(self.choose_pdf_target)
        self.export_dicom_button.clicked.connect(self.choose_dicom_target)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("Reviewer:"))
        row.addWidget(self.reviewer, 1)
        for b in (self.preview_button, self.sign_button, self.export_pdf_button, self.export_dicom_button):
            row.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.view, 1)
        self._update_buttons()

    # -- state -------------------------------------------------------------------------------------
    def set_findings(self, findings: Findings | None) -> None:
        """Follow the current findings (the preview is regenerated on demand)."""
        changed = self.findings is None or findings is None or findings.to_json() != self.findings.to_json()
        self.findings = findings
        if changed and self.pdf_path is not None:
            self.status.setText("The findings changed since this preview; press Preview to update it.")
        if findings is None:
            self.document.close()
            self.pdf_path = None
            self.status.setText("")
        elif findings.is_signed:
            self.reviewer.setText(findings.reviewer or "")
        self._update_buttons()

    def _busy(self) -> bool:
        return self.worker is not None and not self.worker.done

    def _update_buttons(self) -> None:
        have = self.findings is not None and not self._busy()
        for b in (self.preview_button, self.sign_button):
            b.setEnabled(have)
        self.export_pdf_button.setEnabled(have and self.pdf_path is not None)
        self.export_dicom_button.setEnabled(have and self.findings is not None and self.findings.is_signed)

    def default_pdf_path(self) -> Path:
        """Where the working copy of the report goes: the data folder's reports, one file per run."""
        assert self.findings is not None
        folder = app_paths().reports
        folder.mkdir(parents=True, exist_ok=True)
        run = self.findings.run_id if self.findings.run_id is not None else "draft"
        return folder / f"report-{self.findings.study_uid[-12:]}-run{run}.pdf"

    # -- actions -----------------------------------------------------------------------------------
    def preview(self) -> FunctionWorker | None:
        """Write the PDF of the current findings in the background and show it."""
        if self.findings is None or self._busy():
            return None
        target = self.default_pdf_path()
        worker = FunctionWorker(services.write_report, self.db, self.findings, target, volume=self.volume)
        worker.signals.result.connect(self._on_pdf)
        return self._start(worker, "Writing the report…")

    def sign(self) -> FunctionWorker | None:
        """Sign the findings with the reviewer's name, store them and regenerate the PDF."""
        if self.findings is None:
            return None
        try:
            signed = sign_findings(self.findings, self.reviewer.text())
        except FindingsError as exc:
            show_error(self, "Cannot sign", exc)
            return None
        self.findings = signed
        self.findings_signed.emit(signed)
        return self.preview()

    def choose_pdf_target(self) -> None:
        """Ask where to save the PDF, then copy it there."""
        if self.pdf_path is None:
            return
        suggested = str(Path.home() / self.pdf_path.name)
        target, _ = QFileDialog.getSaveFileName(self, "Export PDF report", suggested, "PDF (*.pdf)")
        if target:
            self.export_pdf(Path(target))

    def export_pdf(self, target: Path) -> Path | None:
        """Copy the current PDF to ``target`` and return it."""
        if self.pdf_path is None:
            return None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.pdf_path, target)
        except OSError as exc:
            show_error(self, "Cannot export the PDF", exc)
            return None
        self.status.setText(f"PDF exported to {target}")
        self.exported.emit([target])
        return target

    def choose_dicom_target(self) -> None:
        """Ask for a folder and write the DICOM objects there."""
        folder = QFileDialog.getExistingDirectory(self, "Export DICOM SEG, SR and PDF")
        if folder:
            self.export_dicom(Path(folder))

    def export_dicom(self, folder: Path) -> FunctionWorker | None:
        """Write DICOM SEG, SR and encapsulated PDF of the signed findings into ``folder``."""
        if self.findings is None or self._busy():
            return None
        worker = FunctionWorker(services.export_dicom, self.db, self.findings, folder, volume=self.volume)
        worker.signals.result.connect(self._on_dicom)
        return self._start(worker, "Writing DICOM objects…")

    def _start(self, worker: FunctionWorker, text: str) -> FunctionWorker:
        worker.signals.error.connect(self._on_error)
        worker.signals.finished.connect(self._update_buttons)
        self.worker = worker
        self.status.setText(text)
        start_worker(worker)
        self._update_buttons()
        return worker

    def _on_pdf(self, findings: Findings) -> None:
        path = Path(findings.report or self.default_pdf_path())
        self.pdf_path = path
        self.findings = findings
        self.document.close()
        self.document.load(str(path))
        signed = (
            f"Signed by {self.findings.reviewer} at {self.findings.signed_at}."
            if self.findings and self.findings.is_signed
            else "Draft: not signed yet."
        )
        self.status.setText(f"{signed} {self.document.pageCount()} page(s): {path}")
        self.report_written.emit(findings)

    def _on_dicom(self, paths: list[Path]) -> None:
        where = paths[0].parent if paths else "?"
        self.status.setText(f"DICOM export: {len(paths)} file(s) written to {where}")
        self.exported.emit(paths)

    def _on_error(self, error: WorkerError) -> None:
        self.status.setText("")
        if not error.cancelled:
            show_error(self, "Report failed", error)
