"""The study database: schema, migrations, notes, audit log, analysis runs, batch items, threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from radiology_app.core.errors import StoreError, StudyNotFoundError
from radiology_app.core.types import ImportIssue, Instance, Patient, Series, Study
from radiology_app.store.database import StoredInstance, StudyDatabase
from radiology_app.store.migrations import SCHEMA_VERSION


def _add_study(db: StudyDatabase, study_uid: str, source: str = "/data/a/1.dcm", n: int = 2) -> int:
    run = db.begin_import_run([source])
    insts = [
        StoredInstance(
            Instance(
                f"{study_uid}.9.{k}",
                "1.2.840.10008.5.1.4.1.1.2",
                f"{study_uid}.5",
                f"{source}.{k}",
                instance_number=k + 1,
                image_position_lps_mm=(0.0, 0.0, float(k)),
                image_orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
                pixel_spacing_mm=(0.7, 0.7),
                rows=4,
                columns=4,
                content_hash="h",
            ),
            f"{source}.{k}",
        )
        for k in range(n)
    ]
    return db.write_import_batch(
        run,
        patients=[Patient("P1", "Doe^J")],
        studies=[Study(study_uid, "P1")],
        series=[Series(f"{study_uid}.5", study_uid, "CT", series_number=2)],
        instances=insts,
        issues=[ImportIssue("/data/x", "not DICOM")],
    )


def test_schema_created_and_reopened(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = StudyDatabase(path)
    assert db.schema_version == SCHEMA_VERSION
    assert db.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    _add_study(db, "1.2.3")
    db.close()
    db2 = StudyDatabase(path)
    assert [s.study_uid for s in db2.list_studies()] == ["1.2.3"]
    db2.close()


def test_newer_schema_and_garbage_file_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        StudyDatabase(newer)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"garbage\.sqlite3"):
        StudyDatabase(garbage)


def test_batch_insert_is_idempotent_and_summarised(study_db: StudyDatabase) -> None:
    assert _add_study(study_db, "1.2.3") == 2
    assert _add_study(study_db, "1.2.3") == 0
    [summary] = study_db.list_studies()
    assert (summary.series_count, summary.instance_count, summary.modalities) == (1, 2, ("CT",))
    assert summary.patient_name == "Doe^J"
    [series] = study_db.series_for_study("1.2.3")
    assert series.instance_count == 2 and series.series_number == 2
    insts = study_db.instances_for_series(series.series_uid)
    assert [i.image_position_lps_mm for i in insts] == [(0.0, 0.0, 0.0), (0.0, 0.0, 1.0)]
    assert insts[0].image_orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert insts[0].pixel_spacing_mm == (0.7, 0.7)
    assert study_db.get_patient("P1") == Patient("P1", "Doe^J")
    assert study_db.get_patient("nobody") is None


def test_resolve_study_by_uid_prefix_and_path(study_db: StudyDatabase) -> None:
    _add_study(study_db, "1.2.3.100", source="/data/a/x")
    _add_study(study_db, "1.2.3.200", source="/data/b/y")
    assert study_db.resolve_study("1.2.3.100").study_uid == "1.2.3.100"
    assert study_db.resolve_study("1.2.3.2").study_uid == "1.2.3.200"
    assert study_db.resolve_study("/data/b").study_uid == "1.2.3.200"
    assert study_db.resolve_study("/data/a/x.0").study_uid == "1.2.3.100"
    with pytest.raises(StudyNotFoundError, match="start of 2"):
        study_db.resolve_study("1.2.3")
    with pytest.raises(StudyNotFoundError, match="2 studies"):
        study_db.resolve_study("/data")
    with pytest.raises(StudyNotFoundError):
        study_db.resolve_study("9.9")
    with pytest.raises(StudyNotFoundError):
        study_db.resolve_study("1.2.3.1%")  # LIKE wildcards are escaped


def test_notes_and_append_only_audit(study_db: StudyDatabase) -> None:
    _add_study(study_db, "1.2.3")
    note = study_db.add_note("1.2.3", "65-year-old smoker", author="Dr A", source_path="/n.txt")
    assert note.note_id > 0
    updated = study_db.update_note(note.note_id, "65-year-old former smoker")
    assert updated.text == "65-year-old former smoker" and updated.author == "Dr A"
    assert [n.text for n in study_db.notes_for_study("1.2.3")] == ["65-year-old former smoker"]
    with pytest.raises(StudyNotFoundError):
        study_db.add_note("4.5.6", "x")
    with pytest.raises(StoreError):
        study_db.update_note(999, "x")
    study_db.audit("export", {"study": "abc"})
    actions = [e.action for e in study_db.audit_log()]
    assert actions[-3:] == ["note.add", "note.update", "export"]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        study_db.connection.execute("DELETE FROM audit_log")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        study_db.connection.execute("UPDATE audit_log SET action='x'")


def test_analysis_runs(study_db: StudyDatabase) -> None:
    assert study_db.latest_analysis_run("1.2.3") is None
    a = study_db.save_analysis_run("1.2.3", '{"nodules": []}', "draft")
    b = study_db.save_analysis_run("1.2.3", '{"nodules": [1]}', "draft")
    study_db.update_analysis_run(b, status="signed")
    latest = study_db.latest_analysis_run("1.2.3")
    assert latest is not None and latest.run_id == b and latest.status == "signed"
    study_db.update_analysis_run(a, findings_json='{"nodules": [2]}')
    assert study_db.get_analysis_run(a).findings_json == '{"nodules": [2]}'
    assert [r.run_id for r in study_db.analysis_runs_for_study("1.2.3")] == [a, b]
    with pytest.raises(StoreError):
        study_db.get_analysis_run(12345)


def test_batch_items(study_db: StudyDatabase) -> None:
    study_db.upsert_batch_item("b1", "/in/s1", "pending")
    study_db.upsert_batch_item("b1", "/in/s2", "pending")
    item = study_db.upsert_batch_item("b1", "/in/s1", "imported", study_uid="1.2.3")
    assert item.status == "imported" and item.study_uid == "1.2.3"
    item = study_db.upsert_batch_item("b1", "/in/s1", "done", report_path="/r/1.pdf")
    assert item.study_uid == "1.2.3" and item.report_path == "/r/1.pdf"
    study_db.upsert_batch_item("b1", "/in/s2", "failed", reason="no CT series")
    assert [i.item_key for i in study_db.list_batch_items("b1")] == ["/in/s1", "/in/s2"]
    assert [i.reason for i in study_db.list_batch_items("b1", status="failed")] == ["no CT series"]
    assert study_db.get_batch_item("b1", "nope") is None
    assert study_db.list_batches() == ["b1"]
    with pytest.raises(StoreError, match="unknown batch status"):
        study_db.upsert_batch_item("b1", "/in/s3", "weird")


def test_one_connection_per_thread(study_db: StudyDatabase) -> None:
    _add_study(study_db, "1.2.3")
    errors: list[BaseException] = []
    conns: list[int] = []

    def work(k: int) -> None:
        try:
            conns.append(id(study_db.connection))
            for j in range(5):
                study_db.add_note("1.2.3", f"note {k}-{j}")
                assert study_db.list_studies()[0].study_uid == "1.2.3"
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(conns)) == 4
    assert len(study_db.notes_for_study("1.2.3")) == 20


def test_migrates_a_version_1_database(tmp_path: Path) -> None:
    from radiology_app.store.database import _split_sql
    from radiology_app.store.migrations import MIGRATIONS

    path = tmp_path / "v1.sqlite3"
    conn = sqlite3.connect(path)
    for statement in _split_sql(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO import_runs (started_at, status) VALUES ('2024-01-01T00:00:00+00:00', 'complete')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    db = StudyDatabase(path)
    try:
        assert db.schema_version == SCHEMA_VERSION >= 2
        columns = {r[1] for r in db.connection.execute("PRAGMA table_info(import_runs)")}
        assert {"pid", "host"} <= columns
        assert db.get_import_run(1).status == "complete"
        run = db.begin_import_run(["/x"])
        assert db.get_import_run(run).status == "running"
    finally:
        db.close()
