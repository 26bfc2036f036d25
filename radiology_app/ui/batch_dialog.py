"""The batch dialog: choose a folder of many studies, optionally analyse each and write its report;
per-study status, overall progress, cancel, and resume (a re-run skips the studies already done)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from radiology_app.core.config import app_paths
from radiology_app.core.progress import Progress
from radiology_app.store.database import StudyDatabase
from radiology_app.ui import services
from radiology_app.ui.error_dialog import show_error
from radiology_app.ui.worker import FunctionWorker, WorkerError, model_pool, start_worker

STATUS_COLUMNS = ("Study / input", "Status", "Reason", "Report")


def item_fields(item: Any) -> tuple[str, str, str, str]:
    """``(key, status, reason, report)`` of one batch item (a mapping or an object with those attributes)."""

    def get(name: str) -> Any:
        return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)

    key = get("study_uid") or get("item_key") or get("path") or "?"
    status = str(get("status") or "")
    if get("skipped"):
        status += " (earlier run)"
    nodules = get("nodules")
    if nodules is not None:
        status += f", {nodules} nodule(s)"
    report = get("report") or get("report_path") or ""
    return str(key), status, str(get("reason") or ""), str(report)


class BatchDialog(QDialog):
    """Runs :func:`radiology_app.ui.services.run_batch` in the model pool and shows each study's status.

    Signals
    -------
    finished_batch(object)
        The batch ended (finished or cancelled): the runner's result (``None`` after a cancel or error).
    """

    finished_batch = Signal(object)

    def __init__(self, db: StudyDatabase, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.worker: FunctionWorker | None = None
        self.rows: dict[str, int] = {}
        self.setObjectName("batchDialog")
        self.setWindowTitle("Batch import and analysis")
        self.resize(860, 520)
        self.folder = QLineEdit(self)
        self.folder.setPlaceholderText("Folder holding many studies (folders, ZIP files, DICOMDIR)")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        self.analyze = QCheckBox("Analyse each study", self)
        self.analyze.setChecked(True)
        self.write_reports = QCheckBox("Write a PDF report per study", self)
        self.write_reports.setChecked(True)
        self.report_dir = QLineEdit(str(app_paths().reports / "batch"), self)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Input", row)
        form.addRow("", self.analyze)
        form.addRow("", self.write_reports)
        form.addRow("Report folder", self.report_dir)
        self.table = QTableWidget(0, len(STATUS_COLUMNS), self)
        self.table.setObjectName("batchTable")
        self.table.setHorizontalHeaderLabels(list(STATUS_COLUMNS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 300)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.progress = QProgressBar(self)
        self.progress.setValue(0)
        self.status = QLabel("Choose a folder, then Start. A re-run resumes: finished studies are skipped.")
        self.status.setWordWrap(True)
        self.start_button = QPushButton("Start", self)
        self.start_button.setObjectName("primaryButton")
        self.cancel_button = QPushButton("Cancel batch", self)
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close", self)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addLayout(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of studies", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def is_running(self) -> bool:
        """Whether a batch is running."""
        return self.worker is not None and not self.worker.done

    def start(self) -> FunctionWorker | None:
        """Start (or resume) the batch on the chosen folder."""
        if self.is_running():
            return None
        folder = Path(self.folder.text().strip())
        if not self.folder.text().strip() or not folder.exists():
            missing = FileNotFoundError(2, "input folder not found", str(folder))
            show_error(self, "Cannot start the batch", missing)
            return None
        report_dir = Path(self.report_dir.text()) if self.write_reports.isChecked() else None
        worker = FunctionWorker(
            services.run_batch,
            [folder],
            self.db,
            analyze=self.analyze.isChecked(),
            report_dir=report_dir,
            partial_kwarg="on_item",
        )
        worker.signals.progress.connect(self._on_progress)
        worker.signals.partial.connect(self.update_item)
        worker.signals.result.connect(self._on_result)
        worker.signals.error.connect(self._on_error)
        worker.signals.finished.connect(self._on_finished)
        self.worker = worker
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Running…")
        return start_worker(worker, model_pool())

    def cancel(self) -> None:
        """Stop after the current study; a later Start resumes."""
        if self.worker is not None:
            self.worker.cancel()
            self.status.setText("Cancelling after the current study…")

    def update_item(self, item: Any) -> None:
        """Show or update one study's row."""
        key, status, reason, report = item_fields(item)
        row = self.rows.get(key)
        if row is None:
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.rows[key] = row
        for col, text in enumerate((key, status, reason, report)):
            self.table.setItem(row, col, QTableWidgetItem(text))

    def _on_progress(self, p: Progress) -> None:
        if p.total:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
        if p.message:
            self.status.setText(p.message)

    def _on_result(self, result: Any) -> None:
        items = result.get("studies") if isinstance(result, Mapping) else getattr(result, "studies", None)
        for item in items or ():
            if not isinstance(item, str):
                self.update_item(item)
        failed = sum(
            1
            for r in range(self.table.rowCount())
            if (self.table.item(r, 1) or QTableWidgetItem()).text().startswith("failed")
        )
        self.status.setText(f"Batch finished: {self.table.rowCount()} stud(ies), {failed} failed.")
        self.progress.setValue(self.progress.maximum())
        self.finished_batch.emit(result)

    def _on_error(self, error: WorkerError) -> None:
        if error.cancelled:
            self.status.setText("Batch cancelled. Start again to resume where it stopped.")
        else:
            show_error(self, "Batch failed", error)
        self.finished_batch.emit(None)

    def _on_finished(self) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
