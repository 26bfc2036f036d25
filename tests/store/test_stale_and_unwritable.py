"""Runs left ``running`` by a dead process become ``interrupted`` (#19 item 3); a read-only or locked
database is a one-line error, not a ``sqlite3.OperationalError`` traceback (#19 item 8)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from radiology_app.cli import main
from radiology_app.core.errors import StoreError
from radiology_app.store.database import StudyDatabase

STUDY = "1.2.826.0.1.3680043.8.498.55"


@pytest.fixture(autouse=True)
def _logging(fresh_logging: None) -> None:
    """Each test's ``main`` logs to its own stderr."""


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _runs_of_dead_and_live_processes(db: StudyDatabase) -> tuple[int, int, int]:
    """An analysis run and an import run of a dead process, and an analysis run of this one."""
    dead = db.save_analysis_run(STUDY, "{}", "running")
    live = db.save_analysis_run(STUDY, "{}", "running")
    imp = db.begin_import_run(["/nowhere"])
    pid = _dead_pid()
    with db.transaction() as conn:
        conn.execute("UPDATE analysis_runs SET pid=? WHERE run_id=?", (pid, dead))
        conn.execute("UPDATE import_runs SET pid=? WHERE run_id=?", (pid, imp))
    return dead, live, imp


def test_open_default_marks_runs_of_dead_processes_interrupted(app_home: Path) -> None:
    with StudyDatabase(app_home / "studies.sqlite3") as db:
        dead, live, imp = _runs_of_dead_and_live_processes(db)
    with StudyDatabase.open_default() as db:  # a program's start
        assert db.get_analysis_run(dead).status == "interrupted"
        assert db.get_analysis_run(live).status == "running"  # this process is alive
        assert db.get_import_run(imp).status == "interrupted"
        assert db.mark_interrupted_runs() == 0


def test_a_resumed_batch_marks_them_too(tmp_path: Path, study_db: StudyDatabase) -> None:
    from radiology_app.batch import run_batch

    dead, live, _ = _runs_of_dead_and_live_processes(study_db)
    (tmp_path / "empty").mkdir()
    run_batch([tmp_path / "empty"], study_db)
    assert study_db.get_analysis_run(dead).status == "interrupted"
    assert study_db.get_analysis_run(live).status == "running"


def test_read_only_database_is_a_one_line_store_error(study_db: StudyDatabase) -> None:
    study_db.connection.execute("PRAGMA query_only=ON")  # SQLite's own read-only refusal, even as root
    with pytest.raises(StoreError, match="the study database is read-only") as caught:
        study_db.save_analysis_run(STUDY, "{}", "running")
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError) and "\n" not in str(caught.value)


def test_locked_database_is_a_one_line_cli_error(
    app_home: Path,
    write_series: Callable[..., list[Path]],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = app_home / "studies.sqlite3"
    assert main(["import", str(write_series(study_uid=STUDY)[0].parent)]) == 0
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    monkeypatch.setattr(StudyDatabase, "busy_timeout_s", 0.1)
    try:
        rc = main(["note", STUDY, "--text", "a note"])
    finally:
        other.execute("ROLLBACK")
        other.close()
    err = capfd.readouterr().err
    assert rc == 1 and "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("radiology-app: error:")]
    assert "locked by another program" in line and str(path) in line


def test_kill_9_mid_analysis_then_next_start_marks_it_interrupted(app_home: Path) -> None:
    """A real process that records a running analysis run and is killed with SIGKILL."""
    code = (
        "import os, signal\n"
        "from radiology_app.store.database import StudyDatabase\n"
        f"db = StudyDatabase.open_default(); db.save_analysis_run({STUDY!r}, '{{}}', 'running')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ}, capture_output=True)
    assert proc.returncode == -9
    with StudyDatabase.open_default() as db:
        (run,) = db.analysis_runs_for_study(STUDY)
        assert run.status == "interrupted"
