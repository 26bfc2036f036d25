"""The local SQLite study database.

Holds patients, studies, series, instances (file path, SOP UIDs, geometry), clinical notes, import runs
with their issues, analysis runs, batch items and an append-only audit log. The schema is versioned
(``PRAGMA user_version``) and upgraded by :mod:`radiology_app.store.migrations`.

The database runs in WAL mode. Each thread gets its own connection (the GUI reads from worker
threads), so one :class:`StudyDatabase` object may be shared between threads. Every write runs in a
transaction: a process killed in the middle leaves the database as it was at the last commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radiology_app.core.config import app_paths
from radiology_app.core.errors import StoreError, StudyNotFoundError
from radiology_app.core.logs import hash_uid
from radiology_app.core.types import ClinicalNote, ImportIssue, Instance, Patient, Series, Study
from radiology_app.store.migrations import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

#: Allowed statuses of a batch item.
BATCH_STATUSES = ("pending", "imported", "analysed", "failed", "done")
#: Statuses of an import run.
IMPORT_STATUSES = ("running", "complete", "cancelled", "failed", "interrupted")
#: Tables whose ``running`` rows record the process (``pid``, ``host``) that runs them.
_RUN_TABLES = ("import_runs", "analysis_runs")


@dataclass(frozen=True)
class StudySummary:
    """One row of the study list."""

    study_uid: str
    patient_id: str
    patient_name: str
    study_date: dt.date | None
    modalities: tuple[str, ...]
    series_count: int
    instance_count: int
    description: str = ""


@dataclass(frozen=True)
class ImportRun:
    """One import run and its outcome."""

    run_id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    root_paths: tuple[str, ...]
    instances_added: int
    instances_already_present: int


@dataclass(frozen=True)
class AnalysisRun:
    """One analysis of a study; ``findings_json`` is the pipeline's findings document."""

    run_id: int
    study_uid: str
    status: str
    findings_json: str
    created_at: dt.datetime
    updated_at: dt.datetime
    reason: str = ""


@dataclass(frozen=True)
class BatchItem:
    """One study (or input path) of a batch run."""

    batch_id: str
    item_key: str
    status: str
    reason: str
    report_path: str
    study_uid: str | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class AuditEntry:
    """One line of the append-only audit log."""

    audit_id: int
    at: dt.datetime
    action: str
    details: dict[str, Any]


@dataclass(frozen=True)
class StoredInstance:
    """An instance to insert, with the path the user imported it from (file, or ZIP path + member)."""

    instance: Instance
    source_path: str


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else, or cannot tell: assume alive
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _dt(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _floats(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    return tuple(float(v) for v in text.split("\\"))


def _join(values: Iterable[float] | None) -> str | None:
    return None if values is None else "\\".join(map(repr, map(float, values)))


class StudyDatabase:
    """The study database at ``path`` (created and migrated on first use).

    Parameters
    ----------
    path
        SQLite file. Its folder is created if missing.

    Raises
    ------
    StoreError
        If the file cannot be opened, is not a database, or has a newer schema than this program.
        Every later failure of SQLite is a one-line ``StoreError`` too (read-only or locked in words).
    """

    #: How long a write waits for another program's lock before giving up, seconds.
    busy_timeout_s = 30.0

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the database folder ({exc})") from exc
        self._migrate()

    @classmethod
    def open_default(cls) -> StudyDatabase:
        """Open the database in the data folder (``app_paths().database``) at a program's start.

        Runs that a dead process left ``running`` are marked ``interrupted`` (where the database can be
        written; a read-only one is opened as it is).
        """
        db = cls(app_paths().database)
        try:
            db.mark_interrupted_runs()
        except StoreError as exc:
            log.warning("stale runs not marked: %s", exc)
        return db

    # -- connections -------------------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise self._error("cannot open the study database", exc) from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this object opened (in any thread)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            # a connection opened in another thread refuses; sqlite closes it when that thread ends
            with contextlib.suppress(sqlite3.ProgrammingError):
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> StudyDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction (``BEGIN IMMEDIATE``); roll back on any error."""
        conn = self.connection
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error("cannot start a transaction", exc) from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            _rollback(conn)
            raise self._error("cannot write", exc) from exc
        except BaseException:
            _rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise self._error("cannot commit", exc) from exc

    def _error(self, what: str, exc: sqlite3.Error) -> StoreError:
        """A one-line :class:`StoreError` for a failed SQLite call; a read-only or locked file in words."""
        text = str(exc).lower()
        if "readonly" in text or "read-only" in text:
            return StoreError(
                f"{self.path}: the study database is read-only ({what}); check the permissions of the "
                "file and of its folder"
            )
        if "locked" in text or "busy" in text:
            return StoreError(
                f"{self.path}: the study database is locked by another program ({what}); close the "
                "other radiology-app or wait, then try again"
            )
        return StoreError(f"{self.path}: {what} ({exc})")

    def _query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        try:
            return self.connection.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error("query failed", exc) from exc

    def _migrate(self) -> None:
        try:
            conn = self.connection
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a study database ({exc})") from exc
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this program "
                f"understands ({SCHEMA_VERSION}); update radiology-app"
            )
        for step in range(version, SCHEMA_VERSION):
            try:
                conn.execute("BEGIN IMMEDIATE")
                # executescript would commit; run the statements one by one inside our transaction.
                for statement in _split_sql(MIGRATIONS[step]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {step + 1}")
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._error(f"migration to schema {step + 1} failed", exc) from exc
            log.info("study database migrated to schema %d", step + 1)

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        return int(self._query("PRAGMA user_version")[0][0])

    # -- import runs -------------------------------------------------------------------------------

    def begin_import_run(self, root_paths: Sequence[str]) -> int:
        """Record the start of an import run and return its id.

        Runs left "running" by a process of this machine that no longer exists (killed part-way) are
        marked "interrupted" first (:meth:`mark_interrupted_runs`); what they committed stays, and this
        run completes it.
        """
        host = socket.gethostname()
        with self.transaction() as conn:
            _mark_interrupted(conn, host)
            cur = conn.execute(
                "INSERT INTO import_runs (started_at, status, root_paths, pid, host) VALUES (?, ?, ?, ?, ?)",
                (_now(), "running", json.dumps(list(root_paths)), os.getpid(), host),
            )
            return int(cur.lastrowid or 0)

    def mark_interrupted_runs(self) -> int:
        """Mark ``interrupted`` every import or analysis run left ``running`` by a dead process.

        Only runs of this machine whose process no longer exists are touched (a run of a live process,
        or of another host sharing the folder, is left alone). Returns how many runs were marked; 0
        without writing when there are none (so a read-only database can still be read).
        """
        host = socket.gethostname()
        try:
            stale = _stale_runs(self.connection, host)
        except sqlite3.Error as exc:
            raise self._error("cannot look for stale runs", exc) from exc
        if not stale:
            return 0
        with self.transaction() as conn:
            return _mark_interrupted(conn, host)

    def finish_import_run(
        self, run_id: int, status: str, instances_added: int, instances_already_present: int
    ) -> None:
        """Record the end of an import run."""
        if status not in IMPORT_STATUSES:
            raise StoreError(f"unknown import status {status!r}")
        with self.transaction() as conn:
            conn.execute(
                "UPDATE import_runs SET finished_at=?, status=?, instances_added=?, "
                "instances_already_present=? WHERE run_id=?",
                (_now(), status, instances_added, instances_already_present, run_id),
            )

    def get_import_run(self, run_id: int) -> ImportRun:
        """Return one import run.

        Raises
        ------
        StoreError
            If there is no run with this id.
        """
        rows = self._query("SELECT * FROM import_runs WHERE run_id=?", (run_id,))
        if not rows:
            raise StoreError(f"{self.path}: no import run {run_id}")
        r = rows[0]
        return ImportRun(
            run_id=r["run_id"],
            started_at=_dt(r["started_at"]) or dt.datetime.now(dt.UTC),
            finished_at=_dt(r["finished_at"]),
            status=r["status"],
            root_paths=tuple(json.loads(r["root_paths"])),
            instances_added=r["instances_added"],
            instances_already_present=r["instances_already_present"],
        )

    def import_issues(self, run_id: int) -> list[ImportIssue]:
        """The files an import run did not import, with reasons."""
        return [
            ImportIssue(r["path"], r["reason"])
            for r in self._query(
                "SELECT path, reason FROM import_issues WHERE run_id=? ORDER BY issue_id", (run_id,)
            )
        ]

    def existing_instances(self, sop_instance_uids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Map each already stored UID of ``sop_instance_uids`` to ``(content_hash, path)``."""
        found: dict[str, tuple[str, str]] = {}
        uids = list(sop_instance_uids)
        for start in range(0, len(uids), 500):
            chunk = uids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self._query(
                f"SELECT sop_instance_uid, content_hash, path FROM instances "
                f"WHERE sop_instance_uid IN ({marks})",
                chunk,
            ):
                found[r[0]] = (r[1], r[2])
        return found

    def write_import_batch(
        self,
        run_id: int,
        *,
        patients: Iterable[Patient],
        studies: Iterable[Study],
        series: Iterable[Series],
        instances: Iterable[StoredInstance],
        issues: Iterable[ImportIssue],
    ) -> int:
        """Insert one batch of indexed headers in a single transaction.

        Patients, studies and series already present are kept as they are; instances whose
        SOPInstanceUID is already stored are skipped.

        Returns
        -------
        int
            The number of instances actually added.
        """
        now = _now()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO patients (patient_id, name, sex, birth_date) VALUES (?, ?, ?, ?)",
                [
                    (p.patient_id, p.name, p.sex, p.birth_date.isoformat() if p.birth_date else None)
                    for p in patients
                ],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO studies (study_uid, patient_id, study_date, study_time,"
                " accession_number, description, referring_physician, institution, patient_age_years,"
                " created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        s.study_uid,
                        s.patient_id,
                        s.study_date.isoformat() if s.study_date else None,
                        s.study_time,
                        s.accession_number,
                        s.description,
                        s.referring_physician,
                        s.institution,
                        s.patient_age_years,
                        now,
                    )
                    for s in studies
                ],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO series (series_uid, study_uid, modality, description, series_number,"
                " image_type, convolution_kernel, slice_thickness_mm, manufacturer, model_name, body_part,"
                " contrast_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        s.series_uid,
                        s.study_uid,
                        s.modality,
                        s.description,
                        s.series_number,
                        "\\".join(s.image_type),
                        s.convolution_kernel,
                        s.slice_thickness_mm,
                        s.manufacturer,
                        s.model_name,
                        s.body_part,
                        s.contrast_agent,
                    )
                    for s in series
                ],
            )
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO instances (sop_instance_uid, sop_class_uid, series_uid, path,"
                " source_path, instance_number, ipp_x, ipp_y, ipp_z, image_orientation, pixel_spacing,"
                " rows, columns,"
                " number_of_frames, transfer_syntax_uid, content_hash, import_run_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_instance_row(si, run_id) for si in instances],
            )
            added = conn.total_changes - before
            conn.executemany(
                "INSERT INTO import_issues (run_id, path, reason) VALUES (?, ?, ?)",
                [(run_id, i.path, i.reason) for i in issues],
            )
        return added

    # -- studies, series, instances ----------------------------------------------------------------

    def list_studies(self) -> list[StudySummary]:
        """Every study, newest study date first."""
        rows = self._query(
            "SELECT s.study_uid, s.patient_id, COALESCE(p.name, '') AS patient_name, s.study_date,"
            " s.description,"
            " (SELECT group_concat(DISTINCT se.modality) FROM series se WHERE se.study_uid = s.study_uid)"
            "   AS modalities,"
            " (SELECT count(*) FROM series se WHERE se.study_uid = s.study_uid) AS series_count,"
            " (SELECT count(*) FROM instances i JOIN series se ON i.series_uid = se.series_uid"
            "   WHERE se.study_uid = s.study_uid) AS instance_count"
            " FROM studies s LEFT JOIN patients p ON p.patient_id = s.patient_id"
            " ORDER BY s.study_date IS NULL, s.study_date DESC, s.created_at DESC, s.study_uid"
        )
        return [
            StudySummary(
                study_uid=r["study_uid"],
                patient_id=r["patient_id"],
                patient_name=r["patient_name"],
                study_date=_date(r["study_date"]),
                modalities=tuple(sorted(m for m in (r["modalities"] or "").split(",") if m)),
                series_count=r["series_count"],
                instance_count=r["instance_count"],
                description=r["description"],
            )
            for r in rows
        ]

    def get_study(self, study_uid: str) -> Study:
        """Return the study with this exact StudyInstanceUID.

        Raises
        ------
        StudyNotFoundError
            If it is not in the database.
        """
        rows = self._query("SELECT * FROM studies WHERE study_uid=?", (study_uid,))
        if not rows:
            raise StudyNotFoundError(f"no study {study_uid} in {self.path}")
        return _study(rows[0])

    def resolve_study(self, ref: str) -> Study:
        """Find a study by StudyInstanceUID, a unique prefix of one, or a path that was imported.

        Parameters
        ----------
        ref
            A full UID, the start of one, or a file/folder/ZIP path given to an earlier import.

        Raises
        ------
        StudyNotFoundError
            If nothing matches, or the prefix or path matches more than one study.
        """
        ref = ref.strip()
        if not ref:
            raise StudyNotFoundError("empty study reference")
        rows = self._query("SELECT * FROM studies WHERE study_uid=?", (ref,))
        if rows:
            return _study(rows[0])
        escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._query(
            "SELECT * FROM studies WHERE study_uid LIKE ? ESCAPE '\\' LIMIT 11", (escaped + "%",)
        )
        if len(rows) == 1:
            return _study(rows[0])
        if len(rows) > 1:
            raise StudyNotFoundError(
                f"{ref!r} is the start of {len(rows) if len(rows) <= 10 else 'over 10'} "
                "study UIDs; give more of the UID"
            )
        path_uids = self._studies_under_path(ref)
        if len(path_uids) == 1:
            return self.get_study(path_uids[0])
        if len(path_uids) > 1:
            raise StudyNotFoundError(f"{ref}: this path holds {len(path_uids)} studies; give a study UID")
        raise StudyNotFoundError(f"{ref!r} is neither a study UID, a UID prefix nor an imported path")

    def _studies_under_path(self, ref: str) -> list[str]:
        try:
            p = os.path.abspath(os.path.expanduser(ref))
            candidates = {p, os.path.realpath(p)}
        except (OSError, ValueError):
            return []
        uids: set[str] = set()
        for c in candidates:
            prefix = c.rstrip(os.sep) + os.sep
            # a range on the indexed column instead of LIKE (which cannot use the index)
            for r in self._query(
                "SELECT DISTINCT se.study_uid FROM instances i JOIN series se ON se.series_uid = i.series_uid"
                " WHERE i.source_path = ? OR (i.source_path >= ? AND i.source_path < ?) OR i.path = ?",
                (c, prefix, prefix + "\U0010ffff", c),
            ):
                uids.add(r[0])
        return sorted(uids)

    def get_patient(self, patient_id: str) -> Patient | None:
        """Return the patient with this PatientID, or ``None``."""
        rows = self._query("SELECT * FROM patients WHERE patient_id=?", (patient_id,))
        if not rows:
            return None
        r = rows[0]
        return Patient(
            patient_id=r["patient_id"], name=r["name"], sex=r["sex"], birth_date=_date(r["birth_date"])
        )

    def series_for_study(self, study_uid: str) -> list[Series]:
        """The series of a study, by series number, with their instance counts."""
        rows = self._query(
            "SELECT se.*, (SELECT count(*) FROM instances i WHERE i.series_uid = se.series_uid) AS n"
            " FROM series se WHERE se.study_uid=? ORDER BY se.series_number IS NULL, se.series_number,"
            " se.series_uid",
            (study_uid,),
        )
        return [_series(r) for r in rows]

    def get_series(self, series_uid: str) -> Series:
        """Return one series.

        Raises
        ------
        StoreError
            If it is not in the database.
        """
        rows = self._query(
            "SELECT se.*, (SELECT count(*) FROM instances i WHERE i.series_uid = se.series_uid) AS n"
            " FROM series se WHERE se.series_uid=?",
            (series_uid,),
        )
        if not rows:
            raise StoreError(f"no series {series_uid} in {self.path}")
        return _series(rows[0])

    def instances_for_series(self, series_uid: str) -> list[Instance]:
        """The instances of a series, by instance number then path."""
        rows = self._query(
            "SELECT * FROM instances WHERE series_uid=? ORDER BY instance_number IS NULL,"
            " instance_number, path",
            (series_uid,),
        )
        return [_instance(r) for r in rows]

    def source_paths_for_series(self, series_uid: str) -> list[str]:
        """Where the user imported each instance of a series from (file or ZIP path + member)."""
        return [
            r[0]
            for r in self._query(
                "SELECT source_path FROM instances WHERE series_uid=? ORDER BY instance_number, path",
                (series_uid,),
            )
        ]

    # -- notes -------------------------------------------------------------------------------------

    def add_note(self, study_uid: str, text: str, author: str = "", source_path: str = "") -> ClinicalNote:
        """Attach a clinical note to a study.

        Raises
        ------
        StudyNotFoundError
            If the study is not in the database.
        """
        self.get_study(study_uid)
        created = dt.datetime.now(dt.UTC)
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO notes (study_uid, text, author, created_at, source_path) VALUES (?, ?, ?, ?, ?)",
                (study_uid, text, author, created.isoformat(), source_path),
            )
            note_id = int(cur.lastrowid or 0)
            _audit(conn, "note.add", {"note_id": note_id, "study": hash_uid(study_uid), "chars": len(text)})
        return ClinicalNote(
            note_id=note_id,
            study_uid=study_uid,
            text=text,
            author=author,
            created_at=created,
            source_path=source_path,
        )

    def notes_for_study(self, study_uid: str) -> list[ClinicalNote]:
        """The notes of a study, oldest first."""
        return [
            _note(r)
            for r in self._query("SELECT * FROM notes WHERE study_uid=? ORDER BY note_id", (study_uid,))
        ]

    def get_note(self, note_id: int) -> ClinicalNote:
        """Return one note.

        Raises
        ------
        StoreError
            If there is no such note.
        """
        rows = self._query("SELECT * FROM notes WHERE note_id=?", (note_id,))
        if not rows:
            raise StoreError(f"no note {note_id} in {self.path}")
        return _note(rows[0])

    def update_note(self, note_id: int, text: str) -> ClinicalNote:
        """Replace a note's text (the change is recorded in the audit log).

        Raises
        ------
        StoreError
            If there is no such note.
        """
        self.get_note(note_id)
        with self.transaction() as conn:
            conn.execute("UPDATE notes SET text=?, updated_at=? WHERE note_id=?", (text, _now(), note_id))
            _audit(conn, "note.update", {"note_id": note_id, "chars": len(text)})
        return self.get_note(note_id)

    # -- audit -------------------------------------------------------------------------------------

    def audit(self, action: str, details: Mapping[str, Any]) -> None:
        """Append a line to the audit log. ``details`` must hold no PHI (hash UIDs with ``hash_uid``)."""
        with self.transaction() as conn:
            _audit(conn, action, details)

    def audit_log(self, limit: int = 1000) -> list[AuditEntry]:
        """The latest ``limit`` audit entries, oldest first."""
        rows = self._query(
            "SELECT * FROM (SELECT * FROM audit_log ORDER BY audit_id DESC LIMIT ?) ORDER BY audit_id",
            (limit,),
        )
        return [
            AuditEntry(
                audit_id=r["audit_id"],
                at=_dt(r["at"]) or dt.datetime.now(dt.UTC),
                action=r["action"],
                details=json.loads(r["details"]),
            )
            for r in rows
        ]

    # -- analysis runs -----------------------------------------------------------------------------

    def save_analysis_run(self, study_uid: str, findings_json: str, status: str) -> int:
        """Store a new analysis run of a study (with this process's id and host) and return its id."""
        now = _now()
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO analysis_runs (study_uid, status, findings_json, created_at,"
                " updated_at, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (study_uid, status, findings_json, now, now, os.getpid(), socket.gethostname()),
            )
            run_id = int(cur.lastrowid or 0)
            _audit(conn, "analysis.save", {"run_id": run_id, "study": hash_uid(study_uid), "status": status})
        return run_id

    def update_analysis_run(
        self,
        run_id: int,
        findings_json: str | None = None,
        status: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Change an analysis run's findings, status and/or failure reason (one line).

        Raises
        ------
        StoreError
            If there is no such run.
        """
        self.get_analysis_run(run_id)
        with self.transaction() as conn:
            if findings_json is not None:
                conn.execute(
                    "UPDATE analysis_runs SET findings_json=?, updated_at=? WHERE run_id=?",
                    (findings_json, _now(), run_id),
                )
            if status is not None:
                conn.execute(
                    "UPDATE analysis_runs SET status=?, updated_at=? WHERE run_id=?", (status, _now(), run_id)
                )
            if reason is not None:
                conn.execute("UPDATE analysis_runs SET reason=? WHERE run_id=?", (reason, run_id))
            _audit(
                conn,
                "analysis.update",
                {"run_id": run_id, "status": status, "findings_changed": findings_json is not None},
            )

    def get_analysis_run(self, run_id: int) -> AnalysisRun:
        """Return one analysis run.

        Raises
        ------
        StoreError
            If there is no such run.
        """
        rows = self._query("SELECT * FROM analysis_runs WHERE run_id=?", (run_id,))
        if not rows:
            raise StoreError(f"no analysis run {run_id} in {self.path}")
        return _analysis(rows[0])

    def latest_analysis_run(self, study_uid: str) -> AnalysisRun | None:
        """The most recent analysis run of a study, or ``None``."""
        rows = self._query(
            "SELECT * FROM analysis_runs WHERE study_uid=? ORDER BY run_id DESC LIMIT 1", (study_uid,)
        )
        return _analysis(rows[0]) if rows else None

    def analysis_runs_for_study(self, study_uid: str) -> list[AnalysisRun]:
        """Every analysis run of a study, oldest first."""
        return [
            _analysis(r)
            for r in self._query(
                "SELECT * FROM analysis_runs WHERE study_uid=? ORDER BY run_id", (study_uid,)
            )
        ]

    # -- batch items -------------------------------------------------------------------------------

    def upsert_batch_item(
        self,
        batch_id: str,
        item_key: str,
        status: str,
        reason: str = "",
        report_path: str = "",
        study_uid: str | None = None,
    ) -> BatchItem:
        """Create or update one batch item (keyed by ``batch_id`` and ``item_key``).

        ``study_uid`` ``None`` keeps a previously stored UID.

        Raises
        ------
        StoreError
            If ``status`` is not one of :data:`BATCH_STATUSES`.
        """
        if status not in BATCH_STATUSES:
            raise StoreError(f"unknown batch status {status!r} (allowed: {', '.join(BATCH_STATUSES)})")
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO batch_items (batch_id, item_key, status, reason, report_path, study_uid,"
                " updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(batch_id, item_key) DO UPDATE SET"
                " status=excluded.status, reason=excluded.reason, report_path=excluded.report_path,"
                " study_uid=COALESCE(excluded.study_uid, batch_items.study_uid),"
                " updated_at=excluded.updated_at",
                (batch_id, item_key, status, reason, report_path, study_uid, _now()),
            )
        item = self.get_batch_item(batch_id, item_key)
        assert item is not None
        return item

    def get_batch_item(self, batch_id: str, item_key: str) -> BatchItem | None:
        """Return one batch item, or ``None``."""
        rows = self._query("SELECT * FROM batch_items WHERE batch_id=? AND item_key=?", (batch_id, item_key))
        return _batch(rows[0]) if rows else None

    def list_batch_items(self, batch_id: str, status: str | None = None) -> list[BatchItem]:
        """The items of a batch (optionally only those with ``status``), in insertion order."""
        if status is None:
            rows = self._query("SELECT * FROM batch_items WHERE batch_id=? ORDER BY rowid", (batch_id,))
        else:
            rows = self._query(
                "SELECT * FROM batch_items WHERE batch_id=? AND status=? ORDER BY rowid", (batch_id, status)
            )
        return [_batch(r) for r in rows]

    def list_batches(self) -> list[str]:
        """Every batch id, most recently updated first."""
        return [
            r[0]
            for r in self._query(
                "SELECT batch_id FROM batch_items GROUP BY batch_id ORDER BY max(updated_at) DESC"
            )
        ]


# -- row conversion ------------------------------------------------------------------------------------


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their ``BEGIN ... END;`` bodies)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _stale_runs(conn: sqlite3.Connection, host: str) -> list[tuple[str, int]]:
    """``(table, run_id)`` of this host's ``running`` runs whose process no longer exists."""
    return [
        (table, int(run_id))
        for table in _RUN_TABLES
        for run_id, pid in conn.execute(
            f"SELECT run_id, pid FROM {table} WHERE status='running' AND host=?", (host,)
        ).fetchall()
        if pid is not None and not _process_alive(int(pid))
    ]


def _mark_interrupted(conn: sqlite3.Connection, host: str) -> int:
    """Inside a transaction: mark this host's ``running`` runs of dead processes ``interrupted``."""
    stale = _stale_runs(conn, host)
    for table, run_id in stale:
        column = "finished_at" if table == "import_runs" else "updated_at"
        conn.execute(f"UPDATE {table} SET status='interrupted', {column}=? WHERE run_id=?", (_now(), run_id))
    return len(stale)


def _audit(conn: sqlite3.Connection, action: str, details: Mapping[str, Any]) -> None:
    conn.execute(
        "INSERT INTO audit_log (at, action, details) VALUES (?, ?, ?)",
        (_now(), action, json.dumps(dict(details), ensure_ascii=False, default=str)),
    )


def _instance_row(si: StoredInstance, run_id: int) -> tuple[Any, ...]:
    i = si.instance
    ipp = i.image_position_lps_mm
    return (
        i.sop_instance_uid,
        i.sop_class_uid,
        i.series_uid,
        i.path,
        si.source_path,
        i.instance_number,
        ipp[0] if ipp else None,
        ipp[1] if ipp else None,
        ipp[2] if ipp else None,
        _join(i.image_orientation),
        _join(i.pixel_spacing_mm),
        i.rows,
        i.columns,
        i.number_of_frames,
        i.transfer_syntax_uid,
        i.content_hash,
        run_id,
    )


def _study(r: sqlite3.Row) -> Study:
    return Study(
        study_uid=r["study_uid"],
        patient_id=r["patient_id"],
        study_date=_date(r["study_date"]),
        study_time=r["study_time"],
        accession_number=r["accession_number"],
        description=r["description"],
        referring_physician=r["referring_physician"],
        institution=r["institution"],
        patient_age_years=r["patient_age_years"],
    )


def _series(r: sqlite3.Row) -> Series:
    return Series(
        series_uid=r["series_uid"],
        study_uid=r["study_uid"],
        modality=r["modality"],
        description=r["description"],
        series_number=r["series_number"],
        image_type=tuple(v for v in r["image_type"].split("\\") if v),
        convolution_kernel=r["convolution_kernel"],
        slice_thickness_mm=r["slice_thickness_mm"],
        manufacturer=r["manufacturer"],
        model_name=r["model_name"],
        body_part=r["body_part"],
        instance_count=r["n"],
        contrast_agent=r["contrast_agent"],
    )


def _instance(r: sqlite3.Row) -> Instance:
    ipp = None if r["ipp_x"] is None else (r["ipp_x"], r["ipp_y"], r["ipp_z"])
    iop = _floats(r["image_orientation"])
    ps = _floats(r["pixel_spacing"])
    return Instance(
        sop_instance_uid=r["sop_instance_uid"],
        sop_class_uid=r["sop_class_uid"],
        series_uid=r["series_uid"],
        path=r["path"],
        instance_number=r["instance_number"],
        image_position_lps_mm=ipp,
        image_orientation=iop if iop is not None and len(iop) == 6 else None,  # type: ignore[arg-type]
        pixel_spacing_mm=ps if ps is not None and len(ps) == 2 else None,  # type: ignore[arg-type]
        rows=r["rows"],
        columns=r["columns"],
        number_of_frames=r["number_of_frames"],
        transfer_syntax_uid=r["transfer_syntax_uid"],
        content_hash=r["content_hash"],
    )


def _note(r: sqlite3.Row) -> ClinicalNote:
    return ClinicalNote(
        note_id=r["note_id"],
        study_uid=r["study_uid"],
        text=r["text"],
        author=r["author"],
        created_at=_dt(r["created_at"]) or dt.datetime.now(dt.UTC),
        source_path=r["source_path"],
    )


def _analysis(r: sqlite3.Row) -> AnalysisRun:
    return AnalysisRun(
        run_id=r["run_id"],
        study_uid=r["study_uid"],
        status=r["status"],
        findings_json=r["findings_json"],
        created_at=_dt(r["created_at"]) or dt.datetime.now(dt.UTC),
        updated_at=_dt(r["updated_at"]) or dt.datetime.now(dt.UTC),
        reason=r["reason"],
    )


def _batch(r: sqlite3.Row) -> BatchItem:
    return BatchItem(
        batch_id=r["batch_id"],
        item_key=r["item_key"],
        status=r["status"],
        reason=r["reason"],
        report_path=r["report_path"],
        study_uid=r["study_uid"],
        updated_at=_dt(r["updated_at"]) or dt.datetime.now(dt.UTC),
    )
