"""The main window: composes the study browser, viewer, findings, differential, notes and report panels.

It owns no business logic: every action calls a Qt-free function through a background worker, and the
panels talk through signals. Window geometry, dock layout and the last study persist in QSettings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QByteArray, QSettings, Qt, QThreadPool
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QWidget,
)

from radiology_app.core.findings import Findings, NoduleFinding
from radiology_app.core.logs import hash_uid
from radiology_app.core.progress import CancelToken, Progress, ProgressCallback
from radiology_app.core.types import Volume
from radiology_app.store.database import StudyDatabase
from radiology_app.ui import services
from radiology_app.ui.about_dialog import AboutDialog
from radiology_app.ui.analysis import AnalysisController
from radiology_app.ui.differential_panel import DifferentialPanelWidget
from radiology_app.ui.error_dialog import show_error
from radiology_app.ui.findings_panel import FindingsPanelWidget
from radiology_app.ui.notes_panel import NotesPanelWidget
from radiology_app.ui.report_panel import ReportPanelWidget
from radiology_app.ui.settings_dialog import SettingsDialog
from radiology_app.ui.study_browser import StudyBrowserWidget
from radiology_app.ui.viewer import OrthoViewerWidget
from radiology_app.ui.viewer.model import Marker
from radiology_app.ui.viewer.slice_view import InteractionMode
from radiology_app.ui.worker import FunctionWorker, WorkerError, io_pool, model_pool, start_worker

log = logging.getLogger(__name__)
#: Tabs of the central widget.
TAB_STUDIES, TAB_REVIEW, TAB_REPORT = 0, 1, 2


@dataclass(frozen=True)
class OpenedStudy:
    """What opening a study loads in the background."""

    study_uid: str
    volume: Volume
    findings: Findings | None
    labels: npt.NDArray[np.int16] | None


def open_study(
    db: StudyDatabase,
    study_uid: str,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> OpenedStudy:
    """Load a study's volume, its latest findings and their label map (Qt-free; runs in a worker)."""
    findings = services.latest_findings(db, study_uid)
    volume = services.load_volume(
        db,
        study_uid,
        series_uid=findings.series_uid if findings else None,
        on_progress=on_progress,
        cancel=cancel,
    )
    labels = services.load_labels(findings) if findings is not None else None
    if labels is not None and labels.shape != volume.shape_zyx:
        labels = None
    return OpenedStudy(study_uid, volume, findings, labels)


class MainWindow(QMainWindow):
    """The workstation window."""

    def __init__(self, db: StudyDatabase, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.study_uid: str | None = None
        self._requested_uid: str | None = None
        self.volume: Volume | None = None
        self.findings: Findings | None = None
        self.open_worker: FunctionWorker | None = None
        self.edit_worker: FunctionWorker | None = None
        self.demo_worker: FunctionWorker | None = None
        self._open_after_import: FunctionWorker | None = None
        self.setObjectName("mainWindow")
        self.setWindowTitle("Radiology App — chest CT nodule workstation")
        self.browser = StudyBrowserWidget(db, self)
        self.viewer = OrthoViewerWidget(self)
        self.findings_panel = FindingsPanelWidget(self)
        self.differential = DifferentialPanelWidget(self)
        self.notes = NotesPanelWidget(db, self)
        self.report = ReportPanelWidget(db, self)
        self.analysis = AnalysisController(db, self)
        self._build_layout()
        self._build_actions()
        self._build_status_bar()
        self._connect()
        self._restore_state()
        self._update_actions()
        self.setAcceptDrops(True)
        self.browser.drop_handler = self.import_and_open

    # -- construction ------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.viewer)
        left.addWidget(self.findings_panel)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 1)
        left.setSizes([680, 250])
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.differential, "Differential")
        self.side_tabs.addTab(self.notes, "Clinical note")
        self.review_split = QSplitter(Qt.Orientation.Horizontal)
        self.review_split.addWidget(left)
        self.review_split.addWidget(self.side_tabs)
        self.review_split.setStretchFactor(0, 3)
        self.review_split.setStretchFactor(1, 1)
        self.review_split.setSizes([1000, 380])
        self.tabs = QTabWidget()
        self.tabs.setObjectName("mainTabs")
        self.tabs.addTab(self.browser, "Studies")
        self.tabs.addTab(self.review_split, "Review")
        self.tabs.addTab(self.report, "Report")
        self.setCentralWidget(self.tabs)

    def _action(
        self, text: str, slot: object, shortcut: str | None = None, checkable: bool = False
    ) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.act_import_folder = self._action("Import folder…", self.browser.choose_folder, "Ctrl+I")
        self.act_import_file = self._action(
            "Import ZIP / DICOMDIR…", self.browser.choose_file, "Ctrl+Shift+I"
        )
        self.act_open = self._action("Open selected study", self._open_selected, "Ctrl+O")
        self.act_batch = self._action("Batch import…", self.show_batch_dialog, "Ctrl+B")
        self.act_quit = self._action("Quit", self.close, "Ctrl+Q")
        self.act_analyze = self._action("Analyse", self.start_analysis, "Ctrl+R")
        self.act_cancel = self._action("Cancel", self.cancel_analysis, "Ctrl+.")
        self.act_add = self._action("Add nodule by click", self._toggle_add_mode, "Ctrl+N", checkable=True)
        self.act_ruler = self._action("Ruler", self._toggle_ruler, None, checkable=True)
        self.act_overlay = self._action(
            "Contours", self.viewer.model.set_overlay_visible, None, checkable=True
        )
        self.act_overlay.setChecked(True)
        self.act_settings = self._action("Settings…", self.show_settings, "Ctrl+,")
        self.act_about = self._action("About…", self.show_about)
        self.act_preset = {
            name: self._action(name.capitalize(), self._preset_slot(name))
            for name in ("lung", "mediastinum", "soft tissue", "bone")
        }
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        for a in (self.act_import_folder, self.act_import_file, self.act_open, self.act_batch):
            file_menu.addAction(a)
        file_menu.addSeparator()
        file_menu.addAction(self.act_settings)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        analysis_menu = menu.addMenu("&Analysis")
        for a in (self.act_analyze, self.act_cancel, self.act_add):
            analysis_menu.addAction(a)
        view_menu = menu.addMenu("&View")
        for a in (*self.act_preset.values(), self.act_overlay, self.act_ruler):
            view_menu.addAction(a)
        menu.addMenu("&Help").addAction(self.act_about)
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        for a in (self.act_import_folder, self.act_open, self.act_analyze, self.act_cancel, self.act_add):
            toolbar.addAction(a)
        toolbar.addSeparator()
        for a in (*self.act_preset.values(), self.act_overlay, self.act_ruler):
            toolbar.addAction(a)
        toolbar.addSeparator()
        toolbar.addAction(self.act_batch)

    def _preset_slot(self, name: str) -> Callable[[], None]:
        return lambda: self.viewer.model.apply_preset(name)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_text = QLabel("Ready")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(280)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.cancel_button.hide()
        disclaimer = QLabel("AI suggestions for clinician review")
        disclaimer.setObjectName("disclaimer")
        bar.addWidget(self.status_text, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(disclaimer)

    def _connect(self) -> None:
        self.browser.study_activated.connect(self.open_study)
        self.browser.import_finished.connect(self._on_import_finished)
        self.browser.demo_requested.connect(self.open_demo_study)
        self.viewer.voxel_clicked.connect(self._on_voxel_clicked)
        self.findings_panel.nodule_selected.connect(self._on_nodule_selected)
        self.findings_panel.findings_edited.connect(self._on_findings_edited)
        self.findings_panel.add_mode_toggled.connect(self.act_add.setChecked)
        self.findings_panel.add_mode_toggled.connect(self._set_add_mode)
        self.differential.saliency_toggled.connect(self._on_saliency_toggled)
        self.report.findings_signed.connect(self._on_findings_edited)
        self.report.report_written.connect(self._on_report_written)
        self.analysis.started.connect(self._on_analysis_started)
        self.analysis.progress.connect(self._on_progress)
        self.analysis.nodule_found.connect(self._on_nodule_found)
        self.analysis.succeeded.connect(self._on_analysis_done)
        self.analysis.failed.connect(self._on_analysis_failed)
        self.analysis.finished.connect(self._on_analysis_finished)

    # -- state persistence -------------------------------------------------------------------------
    def _restore_state(self) -> None:
        s = QSettings()
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1480, 920)
        state = s.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        split = s.value("window/review_split")
        if isinstance(split, QByteArray):
            self.review_split.restoreState(split)
        self.report.reviewer.setText(str(s.value("review/reviewer", "") or ""))

    def save_state(self) -> None:
        """Write window geometry, layout and the reviewer's name to QSettings."""
        s = QSettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/review_split", self.review_split.saveState())
        s.setValue("review/reviewer", self.report.reviewer.text())
        if self.study_uid:
            s.setValue("study/last", self.study_uid)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        self.analysis.cancel()
        for w in (self.open_worker, self.edit_worker, self.demo_worker, self.browser.worker):
            if w is not None:
                w.cancel()
        model_pool().waitForDone(5000)
        io_pool().waitForDone(5000)
        super().closeEvent(event)

    # -- studies -----------------------------------------------------------------------------------
    def _open_selected(self) -> None:
        uid = self.browser.selected_study_uid()
        if uid:
            self.open_study(uid)

    def _on_import_finished(self, result: object) -> None:
        studies = getattr(result, "studies", ())
        self.status_text.setText(f"Import finished: {len(studies)} study(ies).")
        if self._open_after_import is not None and self._open_after_import is self.browser.worker:
            self._open_after_import = None
            if studies:
                self.open_study(studies[0])

    def import_and_open(self, paths: Sequence[Path]) -> FunctionWorker | None:
        """Import folders, DICOM files, ZIPs or DICOMDIRs in the background, then open the first study.

        This is what ``radiology-app gui PATH...`` and a drop on the window do.
        """
        self.tabs.setCurrentIndex(TAB_STUDIES)
        worker = self.browser.start_import([Path(p) for p in paths])
        self._open_after_import = worker
        return worker

    def open_demo_study(self) -> FunctionWorker:
        """Write and import the demo study in the background (once), then open it."""
        self.demo_worker = FunctionWorker(services.prepare_demo_study, self.db)
        return self._start(
            self.demo_worker,
            self._on_demo_ready,
            "Cannot prepare the demo study",
            "Preparing the demo study…",
        )

    def _on_demo_ready(self, study_uid: str) -> None:
        self.browser.refresh()
        self.browser.select_study(study_uid)
        self.open_study(study_uid)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        self.browser.dragEnterEvent(event)  # the same test for local files anywhere on the window

    def dropEvent(self, event: QDropEvent) -> None:
        self.browser.dropEvent(event)  # goes to import_and_open, the browser's drop handler

    def open_study(self, study_uid: str) -> FunctionWorker | None:
        """Load ``study_uid`` in the background and show it in the Review tab."""
        if self.open_worker is not None and not self.open_worker.done:
            self.open_worker.cancel()
        log.info("opening study %s", hash_uid(study_uid))
        self._requested_uid = study_uid
        self.open_worker = FunctionWorker(open_study, self.db, study_uid)
        self.tabs.setCurrentIndex(TAB_REVIEW)
        return self._start(self.open_worker, self._on_study_opened, "Cannot open the study", "Loading study…")

    def _on_study_opened(self, opened: OpenedStudy) -> None:
        if opened.study_uid != self._requested_uid:  # a later open superseded this one
            return
        self.study_uid = opened.study_uid
        self.volume = opened.volume
        self.report.volume = opened.volume
        self.viewer.set_volume(opened.volume)
        self.notes.set_study(opened.study_uid)
        self._set_findings(opened.findings, labels=opened.labels)
        self.browser.select_study(opened.study_uid)
        warnings = "; ".join(opened.volume.warnings)
        z, y, x = opened.volume.shape_zyx
        self.status_text.setText(f"Study open: {x}×{y}×{z} voxels" + (f" — {warnings}" if warnings else ""))
        self._update_actions()

    # -- findings ----------------------------------------------------------------------------------
    def _set_findings(
        self,
        findings: Findings | None,
        labels: npt.NDArray[np.int16] | None = None,
        reload_labels: bool = False,
    ) -> None:
        self.findings = findings
        self.findings_panel.set_findings(findings)
        self.report.set_findings(findings)
        self._update_markers()
        if labels is not None:
            self._show_labels(labels)
        elif reload_labels and findings is not None:
            worker = FunctionWorker(services.load_labels, findings, pass_progress=False)
            worker.signals.result.connect(self._show_labels)
            start_worker(worker, io_pool())
        elif findings is None:
            self.viewer.model.set_labels(None)
        nid = self.findings_panel.selected_id()
        self.differential.set_nodule(
            findings.nodule(nid) if findings and nid and any(n.id == nid for n in findings.nodules) else None
        )
        self._update_actions()

    def _show_labels(self, labels: object) -> None:
        if not isinstance(labels, np.ndarray) or self.volume is None or labels.shape != self.volume.shape_zyx:
            return
        colors: dict[int, tuple[int, int, int]] = {}
        for n in self.findings.nodules if self.findings else ():
            if n.label_id:
                colors[n.label_id] = (
                    (230, 80, 80)
                    if n.review == "rejected"
                    else (200, 160, 240)
                    if n.source == "clinician"
                    else (80, 230, 120)
                )
        for n in self.findings.nodules if self.findings else ():
            if n.review == "rejected" and n.label_id:
                colors[n.label_id] = (110, 110, 110)
        self.viewer.model.set_labels(labels, colors)

    def _update_markers(self) -> None:
        selected = self.findings_panel.selected_id()
        nodules = self.findings.nodules if self.findings else ()
        markers = tuple(
            Marker(n.id, n.centroid_zyx, selected=n.id == selected)
            for n in nodules
            if n.centroid_zyx is not None
        )
        self.viewer.model.set_markers(markers)

    def _on_nodule_selected(self, nodule_id: str) -> None:
        nodule = next((n for n in self.findings_panel.model.nodules if n.id == nodule_id), None)
        if nodule is None:
            return
        self.differential.set_nodule(nodule)
        if nodule.centroid_zyx is not None:
            self.viewer.model.set_position(nodule.centroid_zyx)
        self._update_markers()
        if self.differential.saliency.isChecked():
            self._on_saliency_toggled(True)

    def _on_findings_edited(self, findings: Findings) -> None:
        try:
            stored = services.store_findings(self.db, findings)
        except Exception as exc:
            show_error(self, "Cannot store the review", exc)
            return
        reload = self.findings is None or stored.labels_path != self.findings.labels_path
        self._set_findings(stored, reload_labels=reload)
        if not reload and self.viewer.model.labels is not None:
            self._show_labels(self.viewer.model.labels)
        self.status_text.setText("Review saved." if not stored.is_signed else f"Signed by {stored.reviewer}.")

    def _on_report_written(self, findings: Findings) -> None:
        self.findings = findings
        self.findings_panel.findings = findings
        self.status_text.setText(f"Report written: {findings.report}")

    # -- analysis ----------------------------------------------------------------------------------
    def start_analysis(self) -> None:
        """Analyse the open study with the note in the notes panel."""
        if self.study_uid is None:
            show_error(self, "No study open", RuntimeError("open a study first (double-click it in Studies)"))
            return
        if self.notes.current_note() is None and self.notes.text().strip():
            self.notes.save()
        self.analysis.start(self.study_uid, self.notes.text())

    def cancel_analysis(self) -> None:
        """Cancel the running analysis (or study load)."""
        self.analysis.cancel()
        if self.open_worker is not None and not self.open_worker.done:
            self.open_worker.cancel()

    def _on_analysis_started(self, _uid: str) -> None:
        self.findings_panel.clear_partials()
        self.differential.set_nodule(None)
        self._show_progress("Analysing…")
        self._update_actions()

    def _on_nodule_found(self, nodule: NoduleFinding) -> None:
        self.findings_panel.add_partial(nodule)
        if nodule.centroid_zyx is not None:
            markers = (*self.viewer.model.markers, Marker(nodule.id, nodule.centroid_zyx))
            self.viewer.model.set_markers(markers)

    def _on_analysis_done(self, findings: Findings) -> None:
        self._set_findings(findings, reload_labels=True)
        n = len(findings.nodules)
        self.status_text.setText(f"Analysis finished: {n} nodule(s). Review, then sign in the Report tab.")
        if findings.nodules:
            self.findings_panel.select(findings.nodules[0].id)

    def _on_analysis_failed(self, error: WorkerError) -> None:
        if error.cancelled:
            self.status_text.setText("Analysis cancelled.")
            self._set_findings(self.findings)
        else:
            show_error(self, "Analysis failed", error)

    def _on_analysis_finished(self) -> None:
        self._hide_progress()
        self._update_actions()

    # -- click to add ------------------------------------------------------------------------------
    def _toggle_add_mode(self, on: bool) -> None:
        self.findings_panel.add_button.setChecked(on)
        self._set_add_mode(on)

    def _set_add_mode(self, on: bool) -> None:
        self.act_ruler.setChecked(False)
        self.viewer.set_mode(InteractionMode.ADD_NODULE if on else InteractionMode.NAVIGATE)

    def _toggle_ruler(self, on: bool) -> None:
        self.act_add.setChecked(False)
        self.findings_panel.add_button.setChecked(False)
        self.viewer.set_mode(InteractionMode.MEASURE if on else InteractionMode.NAVIGATE)

    def _on_voxel_clicked(self, zyx: tuple[int, int, int]) -> None:
        if self.findings is None or self.volume is None:
            return
        if self.edit_worker is not None and not self.edit_worker.done:
            return
        self.edit_worker = FunctionWorker(services.add_nodule_at, self.db, self.findings, self.volume, zyx)
        self._start(
            self.edit_worker,
            self._on_nodule_added,
            "Cannot add a nodule here",
            "Segmenting the clicked nodule…",
            model_pool(),
            progress=False,
        )

    def _on_nodule_added(self, findings: Findings) -> None:
        self._toggle_add_mode(False)
        self.act_add.setChecked(False)
        self._on_findings_edited(findings)
        added = findings.nodules[-1].id if findings.nodules else None
        if added:
            self.findings_panel.select(added)

    # -- saliency ----------------------------------------------------------------------------------
    def _on_saliency_toggled(self, on: bool) -> None:
        nodule = self.differential.nodule
        if not on or nodule is None or self.findings is None or self.volume is None:
            self.viewer.model.set_saliency(None)
            return
        worker = FunctionWorker(services.nodule_saliency, self.findings, self.volume, nodule.id)
        worker.signals.result.connect(self._show_saliency)
        worker.signals.error.connect(lambda e: self._on_worker_error("Saliency not available", e))
        start_worker(worker, model_pool())

    def _show_saliency(self, result: tuple[npt.NDArray[np.floating], tuple[int, int, int]] | None) -> None:
        if result is None:
            return
        saliency, origin = result
        self.viewer.model.set_saliency(saliency, origin)

    # -- dialogs -----------------------------------------------------------------------------------
    def show_settings(self) -> SettingsDialog:
        """Open the settings dialog (non-blocking)."""
        dialog = SettingsDialog(self)
        dialog.open()
        return dialog

    def show_about(self) -> AboutDialog:
        """Open the About box (non-blocking)."""
        dialog = AboutDialog(self)
        dialog.open()
        return dialog

    def show_batch_dialog(self) -> QDialog:
        """Open the batch import dialog (non-blocking)."""
        from radiology_app.ui.batch_dialog import BatchDialog

        dialog = BatchDialog(self.db, self)
        dialog.finished_batch.connect(lambda _r: self.browser.refresh())
        dialog.open()
        return dialog

    # -- progress ----------------------------------------------------------------------------------
    def _start(
        self,
        worker: FunctionWorker,
        on_result: Callable[[Any], None],
        failure: str,
        busy: str,
        pool: QThreadPool | None = None,
        *,
        progress: bool = True,
    ) -> FunctionWorker:
        """Run ``worker`` in ``pool`` (the I/O pool by default) with the busy indicator showing ``busy``;
        its result goes to ``on_result``, its error to a dialog titled ``failure``."""
        if progress:
            worker.signals.progress.connect(self._on_progress)
        worker.signals.result.connect(on_result)
        worker.signals.error.connect(lambda e: self._on_worker_error(failure, e))
        worker.signals.finished.connect(self._hide_progress)
        self._show_progress(busy)
        return start_worker(worker, pool if pool is not None else io_pool())

    def _show_progress(self, text: str) -> None:
        self.status_text.setText(text)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()

    def _on_progress(self, p: Progress) -> None:
        if p.total:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
        if p.message:
            self.status_text.setText(p.message)

    def _hide_progress(self) -> None:
        busy = (
            self.analysis.is_running()
            or (self.open_worker is not None and not self.open_worker.done)
            or (self.edit_worker is not None and not self.edit_worker.done)
        )
        if not busy:
            self.progress.hide()
            self.cancel_button.hide()

    def _on_worker_error(self, title: str, error: WorkerError) -> None:
        if error.cancelled:
            self.status_text.setText("Cancelled.")
            return
        show_error(self, title, error)

    def _update_actions(self) -> None:
        running = self.analysis.is_running()
        self.act_analyze.setEnabled(self.study_uid is not None and not running)
        self.act_cancel.setEnabled(running)
        self.act_add.setEnabled(self.findings is not None and not running)
