"""Import DICOM into the study database, and load a study's chosen series back as a volume.

This module joins :mod:`radiology_app.dicom` and :mod:`radiology_app.store` (which never import each
other). An import is recorded as an import run; headers are written in batches, each batch in one
transaction, so a process killed part-way leaves a consistent database and running the same import
again adds exactly what is missing. Importing the same files twice adds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from radiology_app.core.config import app_paths
from radiology_app.core.errors import ImportFailedError, OperationCancelled, StoreError
from radiology_app.core.logs import hash_uid
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.core.types import ImportIssue, ImportResult, Patient, Series, Study, Volume
from radiology_app.dicom.index import HeaderRecord, find_files, index_files
from radiology_app.dicom.quiet import quiet_pydicom
from radiology_app.dicom.select import SeriesChoice, select_series
from radiology_app.dicom.volume import read_volume
from radiology_app.dicom.zipsafe import ZipLimits
from radiology_app.store.database import StoredInstance, StudyDatabase

log = logging.getLogger(__name__)

#: Headers written per transaction.
DEFAULT_BATCH_SIZE = 500


def import_paths(
    paths: Sequence[Path],
    db: StudyDatabase,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    managed_dir: Path | None = None,
    zip_limits: ZipLimits | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportResult:
    """Import files, folders, ZIP files and DICOMDIRs into ``db``.

    Parameters
    ----------
    paths
        What to import.
    db
        The study database.
    on_progress
        Progress in files (headers read).
    cancel
        Polled between files; on cancel the batches already written stay, the run is marked cancelled
        and :class:`OperationCancelled` is raised.
    managed_dir
        Where ZIP members are extracted (default ``app_paths().managed``).
    zip_limits
        Bounds on ZIP extraction.
    batch_size
        Headers per transaction.

    Returns
    -------
    ImportResult
        The run id, the studies touched, counts, and every file not imported with its reason.

    Raises
    ------
    ImportFailedError
        If ``paths`` is empty or the database cannot be written.
    OperationCancelled
        If cancelled.
    """
    if not paths:
        raise ImportFailedError("nothing to import: no paths given")
    roots = tuple(Path(p).expanduser().absolute() for p in paths)
    managed = managed_dir if managed_dir is not None else app_paths().managed
    try:
        run_id = db.begin_import_run([str(r) for r in roots])
    except StoreError as exc:
        raise ImportFailedError(f"cannot record the import run: {exc}") from exc
    state = _RunState(db, run_id)
    status = "failed"
    try:
        files, find_issues = find_files(
            roots, managed_dir=managed, zip_limits=zip_limits, cancel=cancel, on_progress=on_progress
        )
        state.issues.extend(find_issues)
        report(on_progress, 0, len(files), "files", "reading headers")
        with quiet_pydicom():
            for item in index_files(files, on_progress=on_progress, cancel=cancel):
                if isinstance(item, ImportIssue):
                    state.issues.append(item)
                else:
                    state.records.append(item)
                if len(state.records) + len(state.issues) >= batch_size:
                    state.flush()
        state.flush()
        status = "complete"
    except OperationCancelled:
        status = "cancelled"
        raise
    except StoreError as exc:
        raise ImportFailedError(f"import stopped: {exc}") from exc
    finally:
        try:
            db.finish_import_run(run_id, status, state.added, state.present)
            db.audit(
                "import",
                {
                    "run_id": run_id,
                    "status": status,
                    "added": state.added,
                    "already_present": state.present,
                    "issues": state.issue_count,
                    "studies": [hash_uid(u) for u in sorted(state.studies)],
                },
            )
        except StoreError:
            log.exception("could not record the end of import run %d", run_id)
    log.info(
        "import run %d: %d added, %d already present, %d issues",
        run_id,
        state.added,
        state.present,
        state.issue_count,
    )
    return ImportResult(
        run_id=run_id,
        studies=tuple(sorted(state.studies)),
        instances_added=state.added,
        instances_already_present=state.present,
        issues=tuple(state.all_issues),
        root_paths=roots,
    )


class _RunState:
    """Accumulates one run's records and writes them batch by batch."""

    def __init__(self, db: StudyDatabase, run_id: int) -> None:
        self.db = db
        self.run_id = run_id
        self.records: list[HeaderRecord] = []
        self.issues: list[ImportIssue] = []
        self.all_issues: list[ImportIssue] = []
        self.seen: dict[str, tuple[str, str]] = {}  # uid -> (content hash, source) within this run
        self.studies: set[str] = set()
        self.added = 0
        self.present = 0
        self.issue_count = 0

    def flush(self) -> None:
        if not self.records and not self.issues:
            return
        existing = self.db.existing_instances([r.instance.sop_instance_uid for r in self.records])
        patients: dict[str, Patient] = {}
        studies: dict[str, Study] = {}
        series: dict[str, Series] = {}
        new: list[StoredInstance] = []
        issues = list(self.issues)
        for rec in self.records:
            uid = rec.instance.sop_instance_uid
            digest = rec.instance.content_hash
            in_run = self.seen.get(uid)
            prior = in_run or existing.get(uid)
            if prior is not None:
                if prior[0] == digest and in_run is not None:
                    reason = f"identical copy of {prior[1]} (imported once)"
                    issues.append(ImportIssue(rec.source_path, reason))
                    self.studies.add(rec.study.study_uid)
                elif prior[0] == digest:
                    self.present += 1
                    self.studies.add(rec.study.study_uid)
                else:
                    issues.append(
                        ImportIssue(
                            rec.source_path,
                            "duplicate SOP Instance UID with different content "
                            f"(already imported from {prior[1]})",
                        )
                    )
                continue
            self.seen[uid] = (digest, rec.source_path)
            patients.setdefault(rec.patient.patient_id, rec.patient)
            studies.setdefault(rec.study.study_uid, rec.study)
            series.setdefault(rec.series.series_uid, rec.series)
            new.append(StoredInstance(rec.instance, rec.source_path))
            self.studies.add(rec.study.study_uid)
        added = self.db.write_import_batch(
            self.run_id,
            patients=patients.values(),
            studies=studies.values(),
            series=series.values(),
            instances=new,
            issues=issues,
        )
        self.added += added
        self.present += len(new) - added  # raced in by a concurrent import
        self.issue_count += len(issues)
        self.all_issues.extend(issues)
        self.records.clear()
        self.issues.clear()


def choose_series(db: StudyDatabase, study_uid: str) -> SeriesChoice:
    """Choose the series of a stored study to analyse (see :func:`radiology_app.dicom.select.select_series`).

    Raises
    ------
    StudyNotFoundError
        If the study is not in the database.
    SeriesSelectionError
        If it has no suitable CT series.
    """
    db.get_study(study_uid)
    series = db.series_for_study(study_uid)
    return select_series(series, {s.series_uid: db.instances_for_series(s.series_uid) for s in series})


def load_study_volume(
    db: StudyDatabase,
    study_uid: str,
    *,
    series_uid: str | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[SeriesChoice, Volume]:
    """Choose a stored study's series (or take ``series_uid``) and read it as a HU volume.

    The choice's warnings are about the selection; the volume's own warnings (missing slices, tilt...)
    are on ``volume.warnings``.

    Raises
    ------
    StudyNotFoundError, SeriesSelectionError, VolumeError, OperationCancelled
    """
    if series_uid is None:
        choice = choose_series(db, study_uid)
    else:
        s = db.get_series(series_uid)
        choice = SeriesChoice(
            series_uid=s.series_uid,
            confidence=1.0,
            warnings=("series chosen by the user",),
            slice_count=s.instance_count,
            slice_thickness_mm=s.slice_thickness_mm,
        )
    check_cancel(cancel)
    volume = read_volume(db.instances_for_series(choice.series_uid), on_progress=on_progress, cancel=cancel)
    return choice, volume
