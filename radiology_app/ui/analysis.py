"""Runs the analysis pipeline of one study in the model pool, reporting progress and nodules as they come."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from radiology_app.core.findings import Findings
from radiology_app.core.progress import Progress
from radiology_app.store.database import StudyDatabase
from radiology_app.ui import services
from radiology_app.ui.worker import FunctionWorker, WorkerError, model_pool, start_worker


class AnalysisController(QObject):
    """Starts and cancels the analysis; the GUI thread only receives signals.

    Signals
    -------
    started(str)
        Analysis of the study (its UID) began.
    progress(object)
        A :class:`~radiology_app.core.progress.Progress`.
    nodule_found(object)
        A :class:`~radiology_app.core.findings.NoduleFinding`, as soon as the pipeline has it.
    succeeded(object)
        The final :class:`~radiology_app.core.findings.Findings`.
    failed(object)
        A :class:`~radiology_app.ui.worker.WorkerError` (``cancelled`` true after a cancel).
    finished()
        Emitted last in every case.
    """

    started = Signal(str)
    progress = Signal(object)
    nodule_found = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, db: StudyDatabase, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.worker: FunctionWorker | None = None
        self.study_uid: str | None = None

    def is_running(self) -> bool:
        """Whether an analysis is running."""
        return self.worker is not None and not self.worker.done

    def start(self, study_uid: str, note_text: str | None) -> FunctionWorker | None:
        """Analyse ``study_uid`` with ``note_text``; returns the worker, or ``None`` if one is running."""
        if self.is_running():
            return None
        self.study_uid = study_uid
        worker = FunctionWorker(
            services.analyze, self.db, study_uid, note_text or None, partial_kwarg="on_nodule"
        )
        worker.signals.progress.connect(self._on_progress)
        worker.signals.partial.connect(self.nodule_found)
        worker.signals.result.connect(self._on_result)
        worker.signals.error.connect(self.failed)
        worker.signals.finished.connect(self.finished)
        self.worker = worker
        self.started.emit(study_uid)
        return start_worker(worker, model_pool())

    def cancel(self) -> None:
        """Ask the running analysis to stop."""
        if self.worker is not None:
            self.worker.cancel()

    def _on_progress(self, p: Progress) -> None:
        self.progress.emit(p)

    def _on_result(self, findings: Findings) -> None:
        self.succeeded.emit(findings)


__all__ = ["AnalysisController", "WorkerError"]
