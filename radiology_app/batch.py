"""The many-study runner: import everything under some paths, optionally analyse and report each study.

:func:`run_batch` is Qt-free; the command line (``radiology-app batch``) and the GUI's batch dialog both
call it. How it works:

1. **Import.** Every file under the paths goes through :func:`radiology_app.importer.import_paths`
   (headers only; bad files become issues, never fatal). The studies it touched are the batch.
2. **Per-study status in the database.** Each study is a batch item (``StudyDatabase.upsert_batch_item``)
   keyed by a batch id derived from the inputs and options, so running the same command again is the
   same batch. Statuses: ``imported`` -> ``analysed`` (findings stored) -> ``done`` (report written), or
   ``failed`` with the reason. Import-only batches go straight to ``done``.
3. **Resumable.** Every status change is committed before the next step starts. A re-run skips ``done``
   studies, writes only the report of ``analysed`` ones (reusing their stored findings), and analyses
   the rest; failed studies are retried (``retry_failed``). A kill loses at most the study in progress.
4. **Continues past bad studies.** Any error of one study (no CT series, broken volume, model error,
   a native decoder's crash such as a Rust ``PanicException``) is recorded on its item with a one-line
   reason and the batch goes on. Runs that a killed earlier batch left ``running`` are marked
   ``interrupted`` when it resumes.
5. **Overlap.** While study *k* is analysed (CPU-bound inference), a reader thread reads the files of
   study *k+1*'s chosen series from disk, so its volume load finds them in the page cache. It costs
   almost no CPU (the decoding stays in the pipeline), which matters on 2 cores.
6. **Cohort summary.** Every nodule of every study of the batch, as CSV or JSON
   (:func:`write_cohort_summary`), including studies finished by earlier runs.

Nothing here logs PHI: studies are named by hashed UIDs.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from radiology_app.core.config import Settings
from radiology_app.core.errors import OperationCancelled, RadiologyAppError
from radiology_app.core.findings import Findings
from radiology_app.core.guard import is_recoverable, one_line
from radiology_app.core.logs import hash_uid
from radiology_app.core.progress import CancelToken, Progress, ProgressCallback, check_cancel, report
from radiology_app.core.types import ImportIssue
from radiology_app.store.database import BatchItem, StudyDatabase

log = logging.getLogger(__name__)

#: Share of the overall progress bar given to the import when studies are analysed too.
IMPORT_SHARE = 0.05
#: Overall progress bar resolution (units).
PROGRESS_UNITS = 1000
_READ_CHUNK = 1 << 20


class BatchError(RadiologyAppError):
    """A batch cannot run at all (no input, or a summary file that cannot be written)."""


class Analyzer(Protocol):
    """The analysis step: ``radiology_app.pipeline.analyze_study`` or a compatible callable."""

    def __call__(
        self,
        db: StudyDatabase,
        study_ref: str,
        *,
        settings: Settings | None = ...,
        on_progress: ProgressCallback | None = ...,
        cancel: CancelToken | None = ...,
    ) -> Findings: ...


class Reporter(Protocol):
    """The report step: ``radiology_app.pipeline.write_report`` or a compatible callable."""

    def __call__(
        self, findings: Findings, db: StudyDatabase, out_pdf: Path, *, settings: Settings | None = ...
    ) -> Findings: ...


@dataclass(frozen=True)
class BatchStudy:
    """One study of a batch and where it stands (also what ``on_study`` receives).

    Attributes
    ----------
    study_uid
        StudyInstanceUID.
    status
        ``"imported"``, ``"analysed"``, ``"done"`` or ``"failed"``.
    reason
        Why it failed (empty otherwise).
    report
        Path of the PDF report, or ``None``.
    nodules
        Number of nodules found, or ``None`` when not analysed.
    skipped
        Finished by an earlier run of the same batch, so nothing was repeated.
    elapsed_s
        Seconds this run spent on the study.
    """

    study_uid: str
    status: str
    reason: str = ""
    report: str | None = None
    nodules: int | None = None
    skipped: bool = False
    elapsed_s: float = 0.0

    @property
    def item_key(self) -> str:
        """The batch item key in the database (the StudyInstanceUID)."""
        return self.study_uid

    def to_json(self) -> dict[str, Any]:
        """The contract's ``{study_uid, status, reason, report}`` plus ``nodules`` and ``skipped``."""
        return {
            "study_uid": self.study_uid,
            "status": self.status,
            "reason": self.reason or None,
            "report": self.report,
            "nodules": self.nodules,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class BatchResult:
    """What :func:`run_batch` did.

    Attributes
    ----------
    batch_id
        The batch's id in the database (same inputs and options give the same id).
    studies
        Every study of the batch, in import order.
    summary
        The cohort summary file, when one was asked for.
    import_issues
        Files that were not imported, with the reason.
    elapsed_s
        Wall time of this run, seconds.
    """

    batch_id: str
    studies: tuple[BatchStudy, ...]
    summary: Path | None
    import_issues: tuple[ImportIssue, ...]
    elapsed_s: float

    @property
    def failed(self) -> tuple[BatchStudy, ...]:
        """The studies that failed."""
        return tuple(s for s in self.studies if s.status == "failed")

    @property
    def processed(self) -> int:
        """Studies worked on by this run (not skipped)."""
        return sum(1 for s in self.studies if not s.skipped)

    @property
    def studies_per_minute(self) -> float:
        """Studies worked on by this run per minute of wall time."""
        return 60.0 * self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The contract's ``{studies, summary}`` plus ``batch_id``, ``issues`` and timing."""
        return {
            "batch_id": self.batch_id,
            "studies": [s.to_json() for s in self.studies],
            "summary": str(self.summary) if self.summary is not None else None,
            "issues": [{"path": i.path, "reason": i.reason} for i in self.import_issues],
            "failed": len(self.failed),
            "processed": self.processed,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def batch_id_for(paths: Sequence[Path], *, analyze: bool, report_dir: Path | None) -> str:
    """The batch id of these inputs and options: a re-run of the same command resumes the same batch."""
    key = json.dumps(
        {
            "paths": sorted(str(Path(p).expanduser().absolute()) for p in paths),
            "analyze": bool(analyze),
            "report_dir": str(Path(report_dir).expanduser().absolute()) if report_dir else None,
        },
        sort_keys=True,
    )
    return "batch-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def report_file_name(study_uid: str) -> str:
    """File name of a study's PDF report (the UID, which is not PHI; anything odd is replaced)."""
    return re.sub(r"[^0-9A-Za-z._-]", "_", study_uid)[:120] + ".pdf"


class _Prefetcher:
    """Reads the files of a study's chosen series in a background thread (page-cache warm-up)."""

    def __init__(self, db: StudyDatabase, enabled: bool) -> None:
        self.db = db
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-prefetch") if enabled else None
        )
        self._stop = threading.Event()
        self.bytes_read = 0

    def submit(self, study_uid: str) -> Future[int] | None:
        if self._pool is None:
            return None
        return self._pool.submit(self._read, study_uid)

    def _read(self, study_uid: str) -> int:
        try:
            from radiology_app.importer import choose_series

            choice = choose_series(self.db, study_uid)
            total = 0
            for inst in self.db.instances_for_series(choice.series_uid):
                if self._stop.is_set():
                    break
                try:
                    with open(inst.path, "rb", buffering=0) as fh:
                        while chunk := fh.read(_READ_CHUNK):
                            total += len(chunk)
                except OSError:
                    continue  # the analysis will report the file
            self.bytes_read += total
            return total
        except RadiologyAppError:
            return 0  # no suitable series: the analysis records why
        except Exception:  # a warm-up must never break the batch
            log.debug("prefetch of study %s failed", hash_uid(study_uid), exc_info=True)
            return 0

    def close(self) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _default_analyzer() -> Analyzer:
    from radiology_app import pipeline

    fn: Analyzer = pipeline.analyze_study
    return fn


def _default_reporter() -> Reporter:
    from radiology_app import pipeline

    fn: Reporter = pipeline.write_report
    return fn


def _latest_findings(db: StudyDatabase, study_uid: str) -> Findings | None:
    from radiology_app.pipeline import latest_findings

    return latest_findings(db, study_uid)


def run_batch(
    paths: Sequence[Path],
    db: StudyDatabase,
    *,
    analyze: bool = False,
    report_dir: Path | None = None,
    summary_path: Path | None = None,
    on_progress: ProgressCallback | None = None,
    on_study: Callable[[BatchStudy], None] | None = None,
    cancel: CancelToken | None = None,
    on_item: Callable[[BatchStudy], None] | None = None,
    settings: Settings | None = None,
    retry_failed: bool = True,
    prefetch: bool = True,
    analyzer: Analyzer | None = None,
    reporter: Reporter | None = None,
) -> BatchResult:
    """Import every study under ``paths``; with ``analyze``, analyse each and write its report.

    Parameters
    ----------
    paths
        Files, folders, ZIP files or DICOMDIRs.
    db
        The study database (batch items and analysis runs are stored there).
    analyze
        Run the analysis pipeline on each study.
    report_dir
        With ``analyze``: write each study's PDF report here (``<StudyInstanceUID>.pdf``).
    summary_path
        Write the cohort summary (every nodule of every study) here; ``.json`` gives JSON, anything
        else CSV. Written also when the batch is cancelled (with what is finished).
    on_progress
        Overall progress, 0..1000 units, with the current study and stage as message.
    on_study
        Called with each study's :class:`BatchStudy` whenever its status changes (and once for studies
        skipped as already done).
    cancel
        Polled between files, between studies and inside each analysis.
    on_item
        Alias of ``on_study`` (the GUI's name); both are called when both are given.
    settings
        Model settings for the analysis (the saved settings when ``None``).
    retry_failed
        Re-try studies that failed in an earlier run of this batch (otherwise they stay failed).
    prefetch
        Read the next study's files in a background thread while the current one is analysed.
    analyzer, reporter
        The analysis and report steps (``pipeline.analyze_study`` / ``pipeline.write_report`` by
        default).

    Returns
    -------
    BatchResult

    Raises
    ------
    BatchError
        If no paths are given, or the summary cannot be written.
    ImportFailedError
        If the import cannot run at all (e.g. the database cannot be written).
    OperationCancelled
        If cancelled; everything finished so far stays recorded, and a re-run resumes.
    """
    from radiology_app.importer import import_paths

    t0 = time.perf_counter()
    if not paths:
        raise BatchError("nothing to do: no input paths given")
    paths = [Path(p) for p in paths]
    if report_dir is not None and not analyze:
        raise BatchError("a report folder needs --analyze (reports are written from the analysis)")
    batch_id = batch_id_for(paths, analyze=analyze, report_dir=report_dir)
    callbacks = [cb for cb in (on_study, on_item) if cb is not None]

    def emit(study: BatchStudy) -> None:
        for cb in callbacks:
            cb(study)

    import_share = IMPORT_SHARE if analyze else 1.0

    def import_progress(p: Progress) -> None:
        frac = p.fraction if p.fraction is not None else 0.0
        report(
            on_progress,
            round(PROGRESS_UNITS * import_share * frac),
            PROGRESS_UNITS,
            "",
            f"importing: {p.done}/{p.total or '?'} {p.unit}",
        )

    db.mark_interrupted_runs()  # a batch that resumes after a kill: its dead runs are not "running"
    report(on_progress, 0, PROGRESS_UNITS, "", "finding studies")
    imported = import_paths(paths, db, on_progress=import_progress if on_progress else None, cancel=cancel)
    log.info("batch %s: %d studies, %d import issues", batch_id, len(imported.studies), len(imported.issues))

    order = _in_path_order(db, imported.studies)
    studies: dict[str, BatchStudy] = {}
    todo: list[str] = []
    for uid in order:
        item = db.get_batch_item(batch_id, uid)
        state = _from_item(item) if item is not None else None
        finished = state is not None and (
            state.status == "done" or (state.status == "failed" and not retry_failed)
        )
        if state is not None and finished:
            studies[uid] = dataclasses.replace(state, skipped=True)
            emit(studies[uid])
            continue
        if not analyze:
            db.upsert_batch_item(batch_id, uid, "done", study_uid=uid)
            studies[uid] = BatchStudy(uid, "done")
            emit(studies[uid])
            continue
        if state is None or state.status == "failed":
            db.upsert_batch_item(batch_id, uid, "imported", study_uid=uid)
            state = BatchStudy(uid, "imported")
        studies[uid] = state
        emit(state)
        todo.append(uid)

    result_summary: Path | None = None
    try:
        if analyze and todo:
            _analyse_all(
                db,
                batch_id,
                todo,
                studies,
                emit=emit,
                report_dir=report_dir,
                settings=settings,
                on_progress=on_progress,
                cancel=cancel,
                prefetch=prefetch,
                analyzer=analyzer or _default_analyzer(),
                reporter=reporter or _default_reporter(),
                import_share=import_share,
            )
        report(on_progress, PROGRESS_UNITS, PROGRESS_UNITS, "", "batch finished")
    finally:
        if summary_path is not None:
            ordered = [studies[u] for u in order]
            result_summary = write_cohort_summary(db, ordered, Path(summary_path), batch_id=batch_id)
    elapsed = time.perf_counter() - t0
    result = BatchResult(
        batch_id=batch_id,
        studies=tuple(studies[u] for u in order),
        summary=result_summary,
        import_issues=imported.issues,
        elapsed_s=elapsed,
    )
    db.audit(
        "batch.run",
        {
            "batch_id": batch_id,
            "studies": len(result.studies),
            "processed": result.processed,
            "failed": len(result.failed),
            "analyze": analyze,
        },
    )
    log.info(
        "batch %s finished: %d studies (%d this run, %d failed) in %.1f s",
        batch_id,
        len(result.studies),
        result.processed,
        len(result.failed),
        elapsed,
    )
    return result


def _in_path_order(db: StudyDatabase, study_uids: Sequence[str]) -> list[str]:
    """The studies sorted by their first file's path, so a batch proceeds in folder order."""

    def first_path(uid: str) -> str:
        paths = [i.path for s in db.series_for_study(uid) for i in db.instances_for_series(s.series_uid)]
        return min(paths) if paths else "\uffff" + uid

    return sorted(study_uids, key=first_path)


def _from_item(item: BatchItem) -> BatchStudy:
    uid = item.study_uid or item.item_key
    return BatchStudy(uid, item.status, reason=item.reason, report=item.report_path or None)


def _analyse_all(
    db: StudyDatabase,
    batch_id: str,
    todo: list[str],
    studies: dict[str, BatchStudy],
    *,
    emit: Callable[[BatchStudy], None],
    report_dir: Path | None,
    settings: Settings | None,
    on_progress: ProgressCallback | None,
    cancel: CancelToken | None,
    prefetch: bool,
    analyzer: Analyzer,
    reporter: Reporter,
    import_share: float,
) -> None:
    """Analyse (and report) each study of ``todo`` in turn, recording every status change."""
    if report_dir is not None:
        try:
            Path(report_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BatchError(f"{report_dir}: cannot create the report folder ({exc})") from exc
    prefetcher = _Prefetcher(db, prefetch)
    n = len(todo)
    try:
        next_read: Future[int] | None = prefetcher.submit(todo[0])
        for k, uid in enumerate(todo):
            check_cancel(cancel)
            if next_read is not None:
                next_read.result()  # this study's files are read; start on the next one's
            next_read = prefetcher.submit(todo[k + 1]) if k + 1 < n else None
            start = time.perf_counter()
            base = import_share + (1.0 - import_share) * k / n
            width = (1.0 - import_share) / n

            def study_progress(p: Progress, k: int = k, base: float = base, width: float = width) -> None:
                frac = p.fraction if p.fraction is not None else 0.0
                report(
                    on_progress,
                    round(PROGRESS_UNITS * (base + width * frac)),
                    PROGRESS_UNITS,
                    "",
                    f"study {k + 1}/{n}: {p.message}",
                )

            studies[uid] = _analyse_one(
                db,
                batch_id,
                studies[uid],
                report_dir=report_dir,
                settings=settings,
                on_progress=study_progress if on_progress else None,
                cancel=cancel,
                analyzer=analyzer,
                reporter=reporter,
                started=start,
            )
            emit(studies[uid])
    finally:
        prefetcher.close()


def _analyse_one(
    db: StudyDatabase,
    batch_id: str,
    state: BatchStudy,
    *,
    report_dir: Path | None,
    settings: Settings | None,
    on_progress: ProgressCallback | None,
    cancel: CancelToken | None,
    analyzer: Analyzer,
    reporter: Reporter,
    started: float,
) -> BatchStudy:
    """Bring one study from ``imported``/``analysed`` to ``done`` (or ``failed``); cancel propagates."""
    uid = state.study_uid
    try:
        findings = _latest_findings(db, uid) if state.status == "analysed" else None
        if findings is None:
            findings = analyzer(db, uid, settings=settings, on_progress=on_progress, cancel=cancel)
            db.upsert_batch_item(batch_id, uid, "analysed", study_uid=uid)
        check_cancel(cancel)
        report_path = ""
        if report_dir is not None:
            out = Path(report_dir) / report_file_name(uid)
            findings = reporter(findings, db, out, settings=settings)
            report_path = str(findings.report or out)
        db.upsert_batch_item(batch_id, uid, "done", report_path=report_path, study_uid=uid)
        return BatchStudy(
            uid,
            "done",
            report=report_path or None,
            nodules=len(findings.nodules),
            elapsed_s=time.perf_counter() - started,
        )
    except OperationCancelled:
        raise
    except BaseException as exc:  # one bad study must not stop the batch: record why and go on
        if not is_recoverable(exc):
            raise
        log.warning("batch %s: study %s failed: %s", batch_id, hash_uid(uid), type(exc).__name__)
        if not isinstance(exc, RadiologyAppError):  # a crash: the traceback goes to the log file only
            log.info("batch %s: traceback of study %s", batch_id, hash_uid(uid), exc_info=exc)
        reason = one_line(exc)
        db.upsert_batch_item(batch_id, uid, "failed", reason=reason, study_uid=uid)
        return BatchStudy(uid, "failed", reason=reason, elapsed_s=time.perf_counter() - started)


# -- cohort summary ------------------------------------------------------------------------------------

#: Columns of the CSV cohort summary, one row per nodule (one row with an empty nodule for a study
#: without nodules or without findings).
SUMMARY_COLUMNS = (
    "batch_id",
    "study_uid",
    "patient_id",
    "study_date",
    "status",
    "reason",
    "report",
    "series_uid",
    "nodule_id",
    "centroid_lps_mm",
    "long_axis_mm",
    "short_axis_mm",
    "mean_diameter_mm",
    "volume_mm3",
    "mean_hu",
    "composition",
    "solid_component_mm",
    "calcification",
    "fat",
    "lobe",
    "juxtapleural",
    "spiculation_score",
    "lung_rads_category",
    "fleischner_recommendation",
    "brock_probability",
    "malignancy_probability",
    "top_diagnosis",
    "top_probability",
    "image_weight",
    "text_weight",
    "review",
)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return " ".join(_csv_value(v) for v in value)
    return str(value)


#: Summary columns computed from nested findings; every other nodule column is copied by name.
_DERIVED_NODULE_COLUMNS = frozenset(
    {
        "lung_rads_category",
        "fleischner_recommendation",
        "top_diagnosis",
        "top_probability",
        "image_weight",
        "text_weight",
    }
)
_COPIED_NODULE_COLUMNS = tuple(
    c for c in SUMMARY_COLUMNS[SUMMARY_COLUMNS.index("long_axis_mm") :] if c not in _DERIVED_NODULE_COLUMNS
)


def _nodule_row(n: Mapping[str, Any]) -> dict[str, Any]:
    diff = n.get("differential") or []
    weights = n.get("modality_weights") or {}
    return {
        "nodule_id": n.get("id"),
        "centroid_lps_mm": n.get("centroid_lps_mm"),
        **{k: n.get(k) for k in _COPIED_NODULE_COLUMNS},
        "lung_rads_category": (n.get("lung_rads") or {}).get("category"),
        "fleischner_recommendation": (n.get("fleischner") or {}).get("recommendation"),
        "top_diagnosis": diff[0]["diagnosis"] if diff else None,
        "top_probability": diff[0]["probability"] if diff else None,
        "image_weight": weights.get("image"),
        "text_weight": weights.get("text"),
    }


def write_cohort_summary(
    db: StudyDatabase, studies: Sequence[BatchStudy], path: Path, *, batch_id: str = ""
) -> Path:
    """Write every nodule of every study (their latest stored findings) as CSV, or JSON for ``*.json``.

    Studies without findings (failed, not analysed) appear with their status and reason and no nodule.
    The file is written atomically.

    Raises
    ------
    BatchError
        If the file cannot be written.
    """
    records: list[dict[str, Any]] = []
    for s in studies:
        try:
            study = db.get_study(s.study_uid)
            patient_id, study_date = (
                study.patient_id,
                study.study_date.isoformat() if study.study_date else None,
            )
        except RadiologyAppError:
            patient_id, study_date = None, None
        findings = _latest_findings(db, s.study_uid) if s.status in ("analysed", "done") else None
        nodules = [n.to_json() for n in findings.nodules] if findings is not None else []
        records.append(
            {
                "study_uid": s.study_uid,
                "patient_id": patient_id,
                "study_date": study_date,
                "status": s.status,
                "reason": s.reason or None,
                "report": s.report,
                "series_uid": findings.series_uid if findings else None,
                "lung_rads": dataclasses.asdict(findings.lung_rads) if findings else None,
                "nodules": nodules,
            }
        )
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            tmp.write_text(
                json.dumps({"batch_id": batch_id, "studies": records}, indent=2, ensure_ascii=False),
                encoding="utf-8",
            )
        else:
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
                writer.writeheader()
                for rec in records:
                    base = {
                        k: rec[k]
                        for k in (
                            "study_uid",
                            "patient_id",
                            "study_date",
                            "status",
                            "reason",
                            "report",
                            "series_uid",
                        )
                    }
                    rows = [_nodule_row(n) for n in rec["nodules"]] or [{}]
                    for row in rows:
                        writer.writerow(
                            {k: _csv_value(v) for k, v in {"batch_id": batch_id, **base, **row}.items()}
                        )
        tmp.replace(path)
    except OSError as exc:
        raise BatchError(f"{path}: cannot write the cohort summary ({exc})") from exc
    return path
