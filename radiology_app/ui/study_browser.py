"""The study browser: the database's studies in a sortable, filterable table; import by menu or drop.

Imports run in the background (:class:`~radiology_app.ui.worker.FunctionWorker` on the I/O pool) with a
progress bar and cancel; files that could not be imported are listed with their reasons afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from radiology_app.core.progress import Progress
from radiology_app.core.types import ImportResult
from radiology_app.store.database import StudyDatabase, StudySummary
from radiology_app.ui import services
from radiology_app.ui.error_dialog import show_error
from radiology_app.ui.welcome import WelcomeWidget
from radiology_app.ui.worker import FunctionWorker, WorkerError, start_worker

COLUMNS = (
    "Patient",
    "Patient ID",
    "Study date",
    "Description",
    "Modalities",
    "Series",
    "Images",
    "Study UID",
)

_Index = QModelIndex | QPersistentModelIndex


class StudyTableModel(QAbstractTableModel):
    """Table model over a list of :class:`~radiology_app.store.database.StudySummary`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.studies: list[StudySummary] = []

    def set_studies(self, studies: list[StudySummary]) -> None:
        """Replace the rows."""
        self.beginResetModel()
        self.studies = list(studies)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.studies)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        s = self.studies[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            values = (
                s.patient_name.replace("^", " ").strip(),
                s.patient_id,
                s.study_date.isoformat() if s.study_date else "",
                s.description,
                ", ".join(s.modalities),
                s.series_count,
                s.instance_count,
                s.study_uid,
            )
            return values[col]
        if role == Qt.ItemDataRole.UserRole:
            return s.study_uid
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (5, 6):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class ImportIssuesDialog(QDialog):
    """Lists the files an import skipped, with the reason for each."""

    def __init__(self, result: ImportResult, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("importIssuesDialog")
        self.setWindowTitle("Import report")
        self.resize(820, 420)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                f"{result.instances_added} images added, {result.instances_already_present} already present, "
                f"{len(result.studies)} studies touched, {len(result.issues)} files not imported."
            )
        )
        self.table = QTableWidget(len(result.issues), 2, self)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 420)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, issue in enumerate(result.issues):
            self.table.setItem(row, 0, QTableWidgetItem(issue.path))
            self.table.setItem(row, 1, QTableWidgetItem(issue.reason))
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class StudyBrowserWidget(QWidget):
    """Study list with search, import buttons, drag and drop, and a background import progress bar.

    While the database is empty a :class:`~radiology_app.ui.welcome.WelcomeWidget` takes the table's place.
    Dropped paths go to ``drop_handler`` (default :meth:`start_import`).

    Signals
    -------
    study_activated(str)
        The user double-clicked (or pressed Enter on) a study: its StudyInstanceUID.
    import_finished(object)
        An import finished: its :class:`~radiology_app.core.types.ImportResult`.
    demo_requested()
        The user asked for the demo study (on the welcome page).
    """

    study_activated = Signal(str)
    import_finished = Signal(object)
    demo_requested = Signal()

    def __init__(self, db: StudyDatabase, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.worker: FunctionWorker | None = None
        self.last_result: ImportResult | None = None
        self.drop_handler: Callable[[list[Path]], object] = self.start_import
        self.model = StudyTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.search = QLineEdit(self)
        self.search.setObjectName("studySearch")
        self.search.setPlaceholderText("Search patient, ID, date, description, UID…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.import_folder_button = QPushButton("Import folder…", self)
        self.import_file_button = QPushButton("Import ZIP / DICOMDIR…", self)
        self.import_folder_button.clicked.connect(self.choose_folder)
        self.import_file_button.clicked.connect(self.choose_file)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.import_folder_button)
        top.addWidget(self.import_file_button)
        self.table = QTableView(self)
        self.table.setObjectName("studyTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)  # newest study first
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(self._activate)
        self.table.activated.connect(self._activate)
        self.progress = QProgressBar(self)
        self.progress.hide()
        self.progress_label = QLabel(self)
        self.progress_label.hide()
        self.cancel_button = QPushButton("Cancel import", self)
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_import)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress_label)
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.cancel_button)
        self.hint = QLabel("Drop DICOM folders, ZIP files or a DICOMDIR here to import them.", self)
        self.hint.setObjectName("sectionTitle")
        self.welcome = WelcomeWidget(self)
        self.welcome.import_folder_requested.connect(self.choose_folder)
        self.welcome.import_file_requested.connect(self.choose_file)
        self.welcome.demo_requested.connect(self.demo_requested)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.welcome)
        self.pages.addWidget(self.table)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.hint)
        layout.addLayout(bottom)
        self.setAcceptDrops(True)
        self.refresh()

    # -- model -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the study list from the database."""
        try:
            self.model.set_studies(self.db.list_studies())
        except Exception as exc:
            show_error(self, "Cannot read the study database", exc)
            return
        self.pages.setCurrentWidget(self.table if self.model.studies else self.welcome)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)

    def selected_study_uid(self) -> str | None:
        """StudyInstanceUID of the selected row, or ``None``."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return str(self.proxy.data(rows[0], Qt.ItemDataRole.UserRole))

    def select_study(self, study_uid: str) -> bool:
        """Select the row of ``study_uid``; return whether it is listed."""
        for row in range(self.proxy.rowCount()):
            if self.proxy.data(self.proxy.index(row, 0), Qt.ItemDataRole.UserRole) == study_uid:
                self.table.selectRow(row)
                return True
        return False

    def _activate(self, index: QModelIndex) -> None:
        uid = self.proxy.data(index, Qt.ItemDataRole.UserRole)
        if uid:
            self.study_activated.emit(str(uid))

    # -- import ------------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        """Ask for a folder and import it."""
        folder = QFileDialog.getExistingDirectory(self, "Import DICOM folder")
        if folder:
            self.start_import([Path(folder)])

    def choose_file(self) -> None:
        """Ask for ZIP files or a DICOMDIR and import them."""
        files, _ = QFileDialog.getOpenFileNames(
            self, "Import ZIP or DICOMDIR", "", "DICOM archives (*.zip DICOMDIR);;All files (*)"
        )
        if files:
            self.start_import([Path(f) for f in files])

    def is_importing(self) -> bool:
        """Whether an import is running."""
        return self.worker is not None and not self.worker.done

    def start_import(self, paths: list[Path]) -> FunctionWorker | None:
        """Import ``paths`` in the background; returns the worker (``None`` if one is already running)."""
        if self.is_importing():
            show_error(self, "Import already running", RuntimeError("wait for the current import to finish"))
            return None
        worker = FunctionWorker(services.import_paths, list(paths), self.db)
        worker.signals.progress.connect(self._on_progress)
        worker.signals.result.connect(self._on_result)
        worker.signals.error.connect(self._on_error)
        worker.signals.finished.connect(self._on_finished)
        self.worker = worker
        self.progress.setRange(0, 0)
        self.progress_label.setText(f"Importing {len(paths)} item(s)…")
        for w in (self.progress, self.progress_label, self.cancel_button):
            w.show()
        self.import_folder_button.setEnabled(False)
        self.import_file_button.setEnabled(False)
        return start_worker(worker)

    def cancel_import(self) -> None:
        """Ask the running import to stop (what was imported so far stays)."""
        if self.worker is not None:
            self.worker.cancel()
            self.progress_label.setText("Cancelling…")

    def _on_progress(self, p: Progress) -> None:
        if p.total:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
        self.progress_label.setText(p.message or f"{p.done} {p.unit}")

    def _on_result(self, result: ImportResult) -> None:
        self.last_result = result
        self.refresh()
        if result.studies:
            self.select_study(result.studies[0])
        self.import_finished.emit(result)
        if result.issues:
            dialog = ImportIssuesDialog(result, self)
            dialog.open()

    def _on_error(self, error: WorkerError) -> None:
        self.refresh()
        if not error.cancelled:
            show_error(self, "Import failed", error)

    def _on_finished(self) -> None:
        for w in (self.progress, self.progress_label, self.cancel_button):
            w.hide()
        self.import_folder_button.setEnabled(True)
        self.import_file_button.setEnabled(True)

    # -- drag and drop -----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.drop_handler(paths)
            event.acceptProposedAction()
