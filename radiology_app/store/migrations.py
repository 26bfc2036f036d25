"""Schema migrations of the study database.

``MIGRATIONS[k]`` takes a database from schema version ``k`` to ``k + 1`` (``PRAGMA user_version``). Add
new steps at the end; never edit a step that has shipped.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the initial schema.
    """
    CREATE TABLE patients (
        patient_id  TEXT PRIMARY KEY,
        name        TEXT NOT NULL DEFAULT '',
        sex         TEXT,
        birth_date  TEXT
    );
    CREATE TABLE studies (
        study_uid           TEXT PRIMARY KEY,
        patient_id          TEXT NOT NULL REFERENCES patients(patient_id),
        study_date          TEXT,
        study_time          TEXT NOT NULL DEFAULT '',
        accession_number    TEXT NOT NULL DEFAULT '',
        description         TEXT NOT NULL DEFAULT '',
        referring_physician TEXT NOT NULL DEFAULT '',
        institution         TEXT NOT NULL DEFAULT '',
        patient_age_years   INTEGER,
        created_at          TEXT NOT NULL
    );
    CREATE INDEX studies_patient ON studies(patient_id);
    CREATE TABLE series (
        series_uid          TEXT PRIMARY KEY,
        study_uid           TEXT NOT NULL REFERENCES studies(study_uid),
        modality            TEXT NOT NULL DEFAULT '',
        description         TEXT NOT NULL DEFAULT '',
        series_number       INTEGER,
        image_type          TEXT NOT NULL DEFAULT '',
        convolution_kernel  TEXT NOT NULL DEFAULT '',
        slice_thickness_mm  REAL,
        manufacturer        TEXT NOT NULL DEFAULT '',
        model_name          TEXT NOT NULL DEFAULT '',
        body_part           TEXT NOT NULL DEFAULT '',
        contrast_agent      TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX series_study ON series(study_uid);
    CREATE TABLE import_runs (
        run_id                    INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at                TEXT NOT NULL,
        finished_at               TEXT,
        status                    TEXT NOT NULL,
        root_paths                TEXT NOT NULL DEFAULT '[]',
        instances_added           INTEGER NOT NULL DEFAULT 0,
        instances_already_present INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE instances (
        sop_instance_uid    TEXT PRIMARY KEY,
        sop_class_uid       TEXT NOT NULL,
        series_uid          TEXT NOT NULL REFERENCES series(series_uid),
        path                TEXT NOT NULL,
        source_path         TEXT NOT NULL,
        instance_number     INTEGER,
        ipp_x REAL, ipp_y REAL, ipp_z REAL,
        image_orientation   TEXT,
        pixel_spacing       TEXT,
        rows                INTEGER,
        columns             INTEGER,
        number_of_frames    INTEGER NOT NULL DEFAULT 1,
        transfer_syntax_uid TEXT NOT NULL DEFAULT '',
        content_hash        TEXT NOT NULL DEFAULT '',
        import_run_id       INTEGER REFERENCES import_runs(run_id)
    );
    CREATE INDEX instances_series ON instances(series_uid);
    CREATE INDEX instances_source ON instances(source_path);
    CREATE TABLE import_issues (
        issue_id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id   INTEGER NOT NULL REFERENCES import_runs(run_id),
        path     TEXT NOT NULL,
        reason   TEXT NOT NULL
    );
    CREATE INDEX import_issues_run ON import_issues(run_id);
    CREATE TABLE notes (
        note_id     INTEGER PRIMARY KEY AUTOINCREMENT,
        study_uid   TEXT NOT NULL REFERENCES studies(study_uid),
        text        TEXT NOT NULL,
        author      TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL,
        updated_at  TEXT,
        source_path TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX notes_study ON notes(study_uid);
    CREATE TABLE audit_log (
        audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
        at       TEXT NOT NULL,
        action   TEXT NOT NULL,
        details  TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE analysis_runs (
        run_id        INTEGER PRIMARY KEY AUTOINCREMENT,
        study_uid     TEXT NOT NULL,
        status        TEXT NOT NULL,
        findings_json TEXT NOT NULL DEFAULT '{}',
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE INDEX analysis_runs_study ON analysis_runs(study_uid);
    CREATE TABLE batch_items (
        batch_id    TEXT NOT NULL,
        item_key    TEXT NOT NULL,
        status      TEXT NOT NULL,
        reason      TEXT NOT NULL DEFAULT '',
        report_path TEXT NOT NULL DEFAULT '',
        study_uid   TEXT,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (batch_id, item_key)
    );
    """,
    # 1 -> 2: remember which process runs an import, so that a run whose process died (killed, power
    # loss) can be marked "interrupted" by the next import instead of staying "running" forever.
    """
    ALTER TABLE import_runs ADD COLUMN pid INTEGER;
    ALTER TABLE import_runs ADD COLUMN host TEXT NOT NULL DEFAULT '';
    """,
    # 2 -> 3: the same for analysis runs, and why a run failed (a crash of a native decoder included).
    """
    ALTER TABLE analysis_runs ADD COLUMN pid INTEGER;
    ALTER TABLE analysis_runs ADD COLUMN host TEXT NOT NULL DEFAULT '';
    ALTER TABLE analysis_runs ADD COLUMN reason TEXT NOT NULL DEFAULT '';
    """,
)

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)
