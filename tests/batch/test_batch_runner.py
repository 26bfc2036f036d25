"""The batch runner: import-only and analysis batches, failures, resume after a kill, cancel, summary."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from batch_helpers import FakeAnalyzer, FakeReporter, add_broken_files, make_study, statuses

from radiology_app import batch
from radiology_app.core.errors import OperationCancelled
from radiology_app.core.progress import CancelToken, Progress
from radiology_app.store.database import StudyDatabase


def test_import_only_batch_then_rerun_skips_everything(tmp_path: Path, db: StudyDatabase) -> None:
    src = tmp_path / "in"
    uids = [make_study(src, i) for i in range(3)]
    broken = add_broken_files(src / "junk")
    seen: list[batch.BatchStudy] = []
    progress: list[Progress] = []
    result = batch.run_batch([src], db, on_study=seen.append, on_progress=progress.append)
    assert statuses(result.studies) == dict.fromkeys(uids, "done")
    assert result.processed == 3 and not result.failed
    assert {Path(i.path).name for i in result.import_issues} >= {p.name for p in broken[:2]}
    assert {s.study_uid for s in seen} == set(uids)
    assert progress[-1].done == progress[-1].total == batch.PROGRESS_UNITS
    items = db.list_batch_items(result.batch_id)
    assert {(i.item_key, i.status) for i in items} == {(u, "done") for u in uids}
    again = batch.run_batch([src], db)
    assert again.batch_id == result.batch_id
    assert again.processed == 0 and all(s.skipped for s in again.studies)


def test_analysis_batch_records_failures_and_writes_reports_and_summary(
    tmp_path: Path, db: StudyDatabase
) -> None:
    src = tmp_path / "in"
    uids = [make_study(src, i) for i in range(4)]
    add_broken_files(src)
    analyzer, reporter = FakeAnalyzer(fail={uids[2]}), FakeReporter()
    summary = tmp_path / "out" / "cohort.csv"
    result = batch.run_batch(
        [src],
        db,
        analyze=True,
        report_dir=tmp_path / "reports",
        summary_path=summary,
        analyzer=analyzer,
        reporter=reporter,
    )
    st = statuses(result.studies)
    assert st == {uids[0]: "done", uids[1]: "done", uids[2]: "failed", uids[3]: "done"}
    bad = next(s for s in result.studies if s.status == "failed")
    assert "no CT series" in bad.reason
    assert db.get_batch_item(result.batch_id, uids[2]).reason == bad.reason  # type: ignore[union-attr]
    for s in result.studies:
        if s.status == "done":
            assert s.report is not None and Path(s.report).read_bytes().startswith(b"%PDF")
            assert Path(s.report).name == batch.report_file_name(s.study_uid)
    assert sorted(analyzer.calls) == sorted(uids) and sorted(reporter.calls) == sorted(set(uids) - {uids[2]})
    rows = list(csv.DictReader(summary.open(encoding="utf-8")))
    assert tuple(rows[0]) == batch.SUMMARY_COLUMNS
    # every nodule of every study: study k has 1 + k % 3 nodules; the failed study has one empty row
    per_study = {u: [r for r in rows if r["study_uid"] == u] for u in uids}
    assert [len(per_study[u]) for u in uids] == [1, 2, 1, 1]
    assert per_study[uids[2]][0]["status"] == "failed" and per_study[uids[2]][0]["nodule_id"] == ""
    row = per_study[uids[1]][1]
    assert (row["nodule_id"], row["lung_rads_category"], row["top_diagnosis"]) == ("N2", "3", "granuloma")
    assert float(row["mean_diameter_mm"]) == pytest.approx(5.5)
    assert row["patient_id"] == "PT001" and row["report"].endswith(".pdf")


def test_json_summary_and_retry_of_failed_study(tmp_path: Path, db: StudyDatabase) -> None:
    src = tmp_path / "in"
    uids = [make_study(src, i) for i in range(2)]
    first = FakeAnalyzer(fail={uids[1]})
    batch.run_batch([src], db, analyze=True, analyzer=first, reporter=FakeReporter())
    second = FakeAnalyzer()
    out = tmp_path / "cohort.json"
    result = batch.run_batch(
        [src], db, analyze=True, summary_path=out, analyzer=second, reporter=FakeReporter()
    )
    assert second.calls == [uids[1]]  # only the failed study is retried
    assert statuses(result.studies) == dict.fromkeys(uids, "done")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["batch_id"] == result.batch_id
    assert [len(s["nodules"]) for s in doc["studies"]] == [1, 2]
    assert doc["studies"][1]["nodules"][1]["lung_rads"]["category"] == "3"
    no_retry = FakeAnalyzer()
    batch.run_batch([src], db, analyze=True, analyzer=no_retry, reporter=FakeReporter(), retry_failed=False)
    assert no_retry.calls == []


def test_analysed_study_only_gets_its_report_on_resume(tmp_path: Path, db: StudyDatabase) -> None:
    src = tmp_path / "in"
    uid = make_study(src, 0)
    reports = tmp_path / "reports"
    analyzer = FakeAnalyzer()
    bid = batch.batch_id_for([src], analyze=True, report_dir=reports)
    batch.run_batch(
        [src],
        db,
        analyze=True,
        report_dir=reports,
        analyzer=analyzer,
        reporter=FakeReporter(),
        summary_path=None,
    )
    # Pretend the process died after the analysis was stored but before the report was written.
    db.upsert_batch_item(bid, uid, "analysed", study_uid=uid)
    (reports / batch.report_file_name(uid)).unlink()
    again, reporter = FakeAnalyzer(), FakeReporter()
    result = batch.run_batch([src], db, analyze=True, report_dir=reports, analyzer=again, reporter=reporter)
    assert again.calls == [] and reporter.calls == [uid]
    assert result.studies[0].status == "done" and (reports / batch.report_file_name(uid)).exists()


def test_cancel_stops_between_studies_and_rerun_resumes(tmp_path: Path, db: StudyDatabase) -> None:
    src = tmp_path / "in"
    uids = [make_study(src, i) for i in range(3)]
    token = CancelToken()
    analyzer = FakeAnalyzer()

    def on_study(s: batch.BatchStudy) -> None:
        if s.status == "done":
            token.cancel()

    summary = tmp_path / "partial.csv"
    with pytest.raises(OperationCancelled):
        batch.run_batch(
            [src],
            db,
            analyze=True,
            analyzer=analyzer,
            reporter=FakeReporter(),
            cancel=token,
            on_study=on_study,
            summary_path=summary,
        )
    assert len(analyzer.calls) == 1
    rows = list(csv.DictReader(summary.open(encoding="utf-8")))
    assert {r["status"] for r in rows} == {"done", "imported"}
    rest = FakeAnalyzer()
    result = batch.run_batch([src], db, analyze=True, analyzer=rest, reporter=FakeReporter())
    assert sorted(rest.calls + analyzer.calls) == sorted(uids)
    assert statuses(result.studies) == dict.fromkeys(uids, "done")


def test_kill_in_the_middle_then_rerun_loses_and_repeats_nothing(tmp_path: Path, home: Path) -> None:
    """A real SIGKILL of a process running a batch; the re-run analyses exactly the unfinished studies."""
    src = tmp_path / "in"
    uids = [make_study(src, i) for i in range(6)]
    log = tmp_path / "calls.log"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from batch_helpers import FakeAnalyzer, FakeReporter
        from radiology_app import batch
        from radiology_app.store.database import StudyDatabase

        class Slow(FakeAnalyzer):
            def __call__(self, db, ref, **kw):
                with open({str(log)!r}, "a") as fh:
                    fh.write(ref + "\\n")
                time.sleep(0.4)
                return super().__call__(db, ref, **kw)

        db = StudyDatabase(Path({str(home)!r}) / "studies.sqlite3")
        batch.run_batch([Path({str(src)!r})], db, analyze=True, analyzer=Slow(), reporter=FakeReporter())
    """)
    env = {**os.environ, "RADIOLOGY_APP_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    bid = batch.batch_id_for([src], analyze=True, report_dir=None)
    db = StudyDatabase(home / "studies.sqlite3")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(db.list_batch_items(bid, "done")) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the batch finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        done_before = {i.item_key for i in db.list_batch_items(bid, "done")}
        started_before = log.read_text().split()
        assert 2 <= len(done_before) < len(uids)
        rerun = FakeAnalyzer()
        result = batch.run_batch([src], db, analyze=True, analyzer=rerun)
        assert statuses(result.studies) == dict.fromkeys(uids, "done")
        assert not set(rerun.calls) & done_before  # nothing finished is repeated
        assert set(rerun.calls) | done_before == set(uids)  # nothing is lost
        # at most the study in progress at the kill is analysed again
        assert len(set(rerun.calls) & set(started_before)) <= 1
        assert sum(s.skipped for s in result.studies) == len(done_before)
    finally:
        if proc.poll() is None:
            proc.kill()
        db.close()


def test_report_dir_without_analysis_is_refused(tmp_path: Path, db: StudyDatabase) -> None:
    with pytest.raises(batch.BatchError, match="--analyze"):
        batch.run_batch([tmp_path], db, report_dir=tmp_path / "r")
    with pytest.raises(batch.BatchError, match="no input"):
        batch.run_batch([], db)


def test_real_pipeline_records_why_a_study_cannot_be_analysed(tmp_path: Path, db: StudyDatabase) -> None:
    """With the real pipeline: a study whose only series is MR fails with the pipeline's reason."""
    from pydicom import dcmread
    from pydicom.uid import UID

    src = tmp_path / "in"
    uid = make_study(src, 0)
    for f in (src / "study_000").iterdir():
        ds = dcmread(f)
        ds.Modality = "MR"
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.4")
        ds.save_as(f)
    result = batch.run_batch([src], db, analyze=True, prefetch=False)
    (study,) = result.studies
    assert study.study_uid == uid and study.status == "failed"
    assert study.reason and "series" in study.reason.lower()
