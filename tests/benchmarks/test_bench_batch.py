"""Benchmark: the batch runner on many realistic-size synthetic studies, end to end.

``BENCH_BATCH_STUDIES`` studies (default 50) of ``BENCH_BATCH_SHAPE`` voxels (default 120,512,512 at
2.5 x 0.7 x 0.7 mm, a low-dose chest CT) are written as DICOM from ``BENCH_BATCH_PHANTOMS`` distinct
synthetic chest phantoms with nodules (default 5; each is written several times under new UIDs),
into one folder together with broken files (truncated, garbage, not DICOM) and one broken study (its
pixel data cut short). Everything runs through the real command line, in subprocesses, on a fresh data
folder each time:

1. anchor: a plain serial loop ``radiology-app analyze <study folder> --report R.pdf`` over the first
   ``BENCH_BATCH_SERIAL`` studies (default 5), one process per study, as a script would do it;
2. ``radiology-app batch ROOT --analyze --report-dir D --summary S.csv`` over everything: studies per
   minute, and the ratio to the anchor; it must exit 0 (the broken study is a result, not a command
   failure); every good study done with one completed analysis run and its PDF report, the broken
   study failed with its reason, the broken files listed as issues, the summary listing every nodule
   of the stored findings (``BENCH_BATCH_COMPARE_PREFETCH=1`` also times ``--no-prefetch``); then the
   time to read and decode one study's volume, from disk and from the page cache;
3. the same batch killed (SIGKILL) once the database shows a third of the good studies done and the
   next one mid-analysis, then run again: the same checks, the studies done before the kill skipped,
   and no analysis repeated (the only extra run is the one the kill cut short).

The cohort's files are dropped from the page cache before each timed phase; each line gives how many
cores the timed processes kept busy on average.

Without the segmentation weights (``resources/models``) the analysis cannot run: the benchmark then
measures import-only batches against a serial loop over ``radiology-app import`` and says so.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radiology_app.core.types import Patient, Study
from radiology_app.dicom.write_ct import write_ct_series
from radiology_app.store.database import StudyDatabase

N_STUDIES = int(os.environ.get("BENCH_BATCH_STUDIES", "50"))
SHAPE = tuple(int(v) for v in os.environ.get("BENCH_BATCH_SHAPE", "120,512,512").split(","))
N_PHANTOMS = int(os.environ.get("BENCH_BATCH_PHANTOMS", "5"))
N_SERIAL = int(os.environ.get("BENCH_BATCH_SERIAL", "5"))
CLI = [sys.executable, "-m", "radiology_app"]
#: Statuses of an analysis run that finished (``pipeline.latest_findings`` reads these).
COMPLETED_RUN = ("done", "reviewed", "signed")


class _Report(list[str]):
    """Result lines, also printed as soon as measured (a long run cut short keeps what it measured)."""

    def append(self, line: str) -> None:
        print(line, flush=True)
        super().append(line)


def _models_available() -> bool:
    try:
        from radiology_app.pipeline import MODELS

        MODELS.segmenter()
        return True
    except Exception:
        return False


def _write_cohort(root: Path) -> tuple[list[tuple[str, Path]], str]:
    """Write the studies, the broken files and the broken study; return ((uid, folder)...), broken uid."""
    from pydicom.uid import generate_uid

    from segmentation.phantom.chest import make_chest_phantom

    studies: list[tuple[str, Path]] = []
    per = -(-N_STUDIES // max(1, N_PHANTOMS))
    k = 0
    for p in range(max(1, N_PHANTOMS)):
        ph = make_chest_phantom(
            1000 + p,
            shape_zyx=SHAPE,
            spacing_zyx_mm=(2.5, 0.7, 0.7),
            n_nodules=(1, 4),
            nodule_diameter_range_mm=(5.0, 20.0),
        )
        for _ in range(per):
            if k >= N_STUDIES:
                break
            uid = str(generate_uid(entropy_srcs=["bench-batch", str(k)]))
            folder = root / f"patient_{k:03d}" / "ct"
            write_ct_series(
                np.asarray(ph.hu),
                ph.spacing_zyx_mm,
                folder,
                patient=Patient(f"BENCH{k:03d}", f"BENCH^{k}", sex="M" if k % 2 else "F"),
                study=Study(uid, f"BENCH{k:03d}", dt.date(2025, 1, 1 + k % 28)),
                origin_lps_mm=(-180.0, -180.0, -300.0),
                uid_seed=f"bench-batch-{k}",
                series_description="CHEST 2.5 mm",
            )
            studies.append((uid, folder))
            k += 1
    junk = root / "junk"
    junk.mkdir()
    (junk / "truncated.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI")
    (junk / "garbage.dcm").write_bytes(np.random.default_rng(0).bytes(4096))
    (junk / "readme.txt").write_text("not an image")
    (junk / "empty").write_bytes(b"")
    # Broken files of a study: headers fine, pixel data cut short.
    files = write_ct_series(
        np.full((5, 64, 64), -800, np.int16),
        (2.5, 0.7, 0.7),
        root / "truncated_study",
        patient=Patient("TRUNC", "TRUNC^STUDY"),
        study=Study(generate_uid(), "TRUNC"),
        uid_seed="bench-truncated",
    )
    for f in files:
        data = f.read_bytes()
        f.write_bytes(data[: len(data) - 4000])
    # A broken study that imports but cannot be analysed: a single axial slice (a localizer-like series).
    broken_uid = str(generate_uid(entropy_srcs=["bench-batch", "broken"]))
    write_ct_series(
        np.full((1, 64, 64), -800, np.int16),
        (2.5, 0.7, 0.7),
        root / "broken_study",
        patient=Patient("BROKEN", "BROKEN^STUDY"),
        study=Study(broken_uid, "BROKEN"),
        uid_seed="bench-broken",
    )
    return studies, broken_uid


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "RADIOLOGY_APP_HOME": str(home), "PYTHONPATH": str(Path.cwd())}


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """Run the command line; it must exit 0 (the contract: 0 on success).

    A batch that records failed studies has still succeeded (it continues past bad studies and lists
    them as ``failed`` in its JSON), so the cohort with a broken study must exit 0 as well.
    """
    proc = subprocess.run([*CLI, *args], env=_env(home), capture_output=True, text=True, timeout=7200)
    assert proc.returncode == 0, f"{args[0]} exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc


def _evict(root: Path) -> None:
    """Drop the cohort's files from the page cache (only ours), so every timed phase reads from disk."""
    for f in root.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _child_cpu_s() -> float:
    """CPU seconds (user + system) used so far by waited-for child processes."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _sql(db_path: Path, query: str) -> list[tuple[Any, ...]]:
    """A read-only query on a database another process is writing (plain sqlite3: no migrations)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10.0)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def _check_batch_outcome(
    out: dict[str, Any], home: Path, good: set[str], broken_uid: str, summary: Path, analyze: bool
) -> dict[str, list[str]]:
    """Every good study done, once, with its report; the broken one failed with its reason; the
    cohort summary lists every nodule of every study. Returns the analysis-run statuses per study."""
    from radiology_app.pipeline import latest_findings

    status = {s["study_uid"]: s for s in out["studies"]}
    assert good <= set(status), "studies lost"
    assert all(status[u]["status"] == "done" for u in good), [
        status[u] for u in good if status[u]["status"] != "done"
    ]
    junk_names = {Path(i["path"]).name for i in out["issues"]}
    assert {"truncated.dcm", "garbage.dcm", "readme.txt", "CT00001.dcm"} <= junk_names
    with StudyDatabase(home / "studies.sqlite3") as db:
        counts = {s.study_uid: s.instance_count for s in db.list_studies()}
        assert all(counts[u] == SHAPE[0] for u in good)  # every slice of every study, once
        runs = {u: [r.status for r in db.analysis_runs_for_study(u)] for u in good}
        if not analyze:
            return runs
        assert status[broken_uid]["status"] == "failed" and status[broken_uid]["reason"]
        assert out["failed"] == 1, out["failed"]
        assert all(sum(s in COMPLETED_RUN for s in r) == 1 for r in runs.values()), runs
        for u in good:
            report = status[u]["report"]
            assert report and Path(report).read_bytes()[:5] == b"%PDF-", (u, report)
        nodules: dict[str, list[str]] = {}
        for u in good:
            findings = latest_findings(db, u)
            assert findings is not None, u
            nodules[u] = sorted(n.id for n in findings.nodules)
            if not status[u]["skipped"]:
                assert status[u]["nodules"] == len(nodules[u]), (u, status[u]["nodules"], nodules[u])
    with summary.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    listed: dict[str, list[str]] = {}
    for r in rows:
        listed.setdefault(r["study_uid"], [])
        if r["nodule_id"]:
            listed[r["study_uid"]].append(r["nodule_id"])
    assert {u: sorted(listed.get(u, ["<missing>"])) for u in good} == nodules
    (broken_row,) = [r for r in rows if r["study_uid"] == broken_uid]
    assert broken_row["status"] == "failed" and broken_row["reason"] == status[broken_uid]["reason"]
    return runs


@pytest.mark.timeout(0)
def test_bench_batch(tmp_path: Path) -> None:
    analyze = _models_available()
    root = tmp_path / "cohort"
    t0 = time.perf_counter()
    studies, broken_uid = _write_cohort(root)
    good = {uid for uid, _ in studies}
    lines = _Report()
    lines.append(
        f"cohort: {len(studies)} studies {SHAPE} from {N_PHANTOMS} phantoms + junk files + 1 broken study, "
        f"written in {time.perf_counter() - t0:.0f} s; "
        f"analysis {'ON' if analyze else 'OFF (no model weights)'}; "
        f"page cache of the cohort dropped before each timed phase"
    )

    # 1. anchor: plain serial loop over analyze (or import), one process per study
    n_serial = min(N_SERIAL, len(studies))
    home = tmp_path / "serial"
    _evict(root)
    cpu0, t0 = _child_cpu_s(), time.perf_counter()
    for k, (_uid, folder) in enumerate(studies[:n_serial]):
        if analyze:
            _run(
                [
                    "analyze",
                    str(folder),
                    "--report",
                    str(tmp_path / "serial_reports" / f"{k}.pdf"),
                    "--json",
                    str(tmp_path / "serial_reports" / f"{k}.json"),
                ],
                home,
            )
        else:
            _run(["import", str(folder)], home)
    t_serial = time.perf_counter() - t0
    serial_cpu = (_child_cpu_s() - cpu0) / t_serial
    serial_rate = 60.0 * n_serial / t_serial
    lines.append(
        f"anchor serial loop over {'analyze' if analyze else 'import'} ({n_serial} studies): "
        f"{serial_rate:.2f} studies/min ({t_serial / n_serial:.1f} s/study, {serial_cpu:.2f} cores busy)"
    )

    # 2. the batch over everything (a cohort with a broken study and broken files: it must exit 0)
    summary = tmp_path / "summary.csv"
    args = ["batch", str(root), "--summary", str(summary), "--json"]
    if analyze:
        args += ["--analyze", "--report-dir", str(tmp_path / "reports")]
    variants: list[tuple[str, list[str]]] = [("batch", [])]
    if analyze and os.environ.get("BENCH_BATCH_COMPARE_PREFETCH") == "1":
        variants.append(("batch --no-prefetch", ["--no-prefetch"]))
    batch_rate = 0.0
    for name, extra in variants:
        home = tmp_path / name.replace(" ", "")
        _evict(root)
        cpu0, t0 = _child_cpu_s(), time.perf_counter()
        out = json.loads(_run([*args, *extra], home).stdout)
        t_batch = time.perf_counter() - t0
        cpu = (_child_cpu_s() - cpu0) / t_batch
        _check_batch_outcome(out, home, good, broken_uid, summary, analyze)
        rate = 60.0 * len(good) / t_batch
        batch_rate = batch_rate or rate
        lines.append(
            f"{name}: {len(good)} good studies (+1 broken) in {t_batch:.0f} s: {rate:.2f} good studies/min "
            f"({t_batch / len(good):.1f} s/study, {cpu:.2f} cores busy)  ratio {rate / serial_rate:.2f}x "
            f"anchor; exit 0, every good study done with its report and its nodules in the summary"
        )
    lines.append(
        "broken study: "
        + next(f"{s['status']} ({s['reason']})" for s in out["studies"] if s["study_uid"] == broken_uid)
        + f"; {len(out['issues'])} files not imported"
    )
    if analyze:
        # how long reading + decoding one study's volume takes, from disk and from the page cache
        from radiology_app.importer import load_study_volume

        with StudyDatabase(tmp_path / "batch" / "studies.sqlite3") as db:
            uid, folder = studies[-1]
            _evict(folder)
            t0 = time.perf_counter()
            load_study_volume(db, uid)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            load_study_volume(db, uid)
            warm = time.perf_counter() - t0
        lines.append(
            f"read + decode of one study's volume in this process: {cold:.2f} s from disk, "
            f"{warm:.2f} s from the page cache (the batch spent {60.0 / batch_rate:.1f} s per study)"
        )

    # 3. kill in the middle of a study's analysis, then run the same command again
    home = tmp_path / "killed"
    db_path = home / "studies.sqlite3"
    kill_at = max(1, len(good) // 3)
    assert kill_at <= len(good) - 2, "the cohort is too small to kill a batch in its middle"
    stderr_log = tmp_path / "killed.stderr"
    _evict(root)
    with stderr_log.open("w") as err:
        proc = subprocess.Popen([*CLI, *args], env=_env(home), stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 7200
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                done = _sql(db_path, "SELECT count(*) FROM batch_items WHERE status='done'")[0][0]
                imported = _sql(db_path, "SELECT count(*) FROM studies")[0][0]
                running = _sql(db_path, "SELECT count(*) FROM analysis_runs WHERE status='running'")[0][0]
            except sqlite3.Error:  # not created yet, or the schema is being written
                continue
            # with analysis: once `kill_at` studies are done and the next one is being analysed;
            # import-only: once a third of the studies have arrived
            if (done >= kill_at and running > 0) if analyze else imported >= kill_at:
                break
        assert proc.poll() is None, (
            f"the batch ended (exit {proc.returncode}) before it could be killed: "
            f"{stderr_log.read_text()[-2000:]}"
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_before = {r[0] for r in _sql(db_path, "SELECT item_key FROM batch_items WHERE status='done'")}
        in_flight = {
            r[0] for r in _sql(db_path, "SELECT study_uid FROM analysis_runs WHERE status='running'")
        }
        if analyze:
            assert len(done_before & good) >= kill_at and len(in_flight) <= 1, (done_before, in_flight)
        t0 = time.perf_counter()
        again = json.loads(_run(args, home).stdout)
        t_rerun = time.perf_counter() - t0
        runs = _check_batch_outcome(again, home, good, broken_uid, summary, analyze)
        status = {s["study_uid"]: s for s in again["studies"]}
        assert {u for u in good if status[u]["skipped"]} == done_before & good  # nothing repeated
        if analyze:
            # exactly one completed analysis per study (write_report stores the reported findings back
            # into the run, as "reviewed"); the only other run is the one the kill cut short
            completed = {u: [s for s in r if s in COMPLETED_RUN] for u, r in runs.items()}
            assert all(len(c) == 1 for c in completed.values()), runs
            assert all(len(runs[u]) == 1 for u in done_before & good), runs
            redone = {u: r for u, r in runs.items() if len(r) > 1}
            assert set(redone) <= in_flight, redone
            assert all(len(r) == 2 and r[0] == "running" for r in redone.values()), redone
        lines.append(
            f"killed (SIGKILL) with {len(done_before & good)} of {len(good)} good studies done"
            + (" and one mid-analysis" if analyze else "")
            + f"; re-run (exit 0) finished the other {len(good) - len(done_before & good)} in "
            f"{t_rerun:.0f} s and skipped {len(done_before & good)}: every good study done, with exactly "
            f"one completed analysis run ({sum(len(r) - 1 for r in runs.values())} interrupted run left "
            f"by the kill), its report and every nodule in the summary; the broken study failed"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
    shutil.rmtree(root, ignore_errors=True)
    print("\n" + "\n".join(lines))


class _UntrainedRegistry:
    """The shipped U-Net architecture with seeded random weights: same compute as the real model."""

    def __init__(self) -> None:
        import torch

        from radiology_app.pipeline import ModelRegistry
        from segmentation.inference import NoduleSegmenter
        from segmentation.model import ModelConfig, build_unet

        torch.manual_seed(0)
        config = ModelConfig()
        self._inner = ModelRegistry()
        self._seg = NoduleSegmenter(net=build_unet(config).eval(), config=config, name="untrained-bench")

    def segmenter(self, settings: object = None) -> object:
        return self._seg

    def diagnosis(self, settings: object, *, saliency: bool = True) -> object:
        return self._inner.diagnosis(settings, saliency=saliency)  # type: ignore[arg-type]


@pytest.mark.timeout(0)
def test_bench_batch_in_process(tmp_path: Path) -> None:
    """Same cohort, in one process: a serial loop (import, analyze_study, write_report per study) against
    run_batch, with the real models, or with ``BENCH_BATCH_UNTRAINED=1`` an untrained network of the
    shipped architecture when no weights are shipped (same inference cost; findings meaningless).
    ``BENCH_BATCH_COMPARE_PREFETCH=1`` also runs the batch without the reader thread."""
    import functools

    from radiology_app import batch, pipeline
    from radiology_app.importer import import_paths

    if _models_available():
        registry: object = pipeline.MODELS
        label = "shipped models"
    elif os.environ.get("BENCH_BATCH_UNTRAINED") == "1":
        registry, label = _UntrainedRegistry(), "UNTRAINED network of the shipped architecture"
    else:
        pytest.skip(
            "no shipped segmentation weights (set BENCH_BATCH_UNTRAINED=1 to time an untrained network)"
        )
    root = tmp_path / "cohort"
    studies, broken_uid = _write_cohort(root)
    good = {u for u, _ in studies}
    analyzer = functools.partial(pipeline.analyze_study, registry=registry)  # type: ignore[arg-type]
    lines = _Report()
    lines.append(f"in-process, {label}: {len(studies)} studies {SHAPE}")
    # warm-up (model load, torch init) outside both timings
    with StudyDatabase(tmp_path / "warm.sqlite3") as db:
        import_paths([studies[0][1]], db)
        analyzer(db, studies[0][0])
    n_serial = min(N_SERIAL, len(studies))
    with StudyDatabase(tmp_path / "serial.sqlite3") as db:
        t0 = time.perf_counter()
        for k, (uid, folder) in enumerate(studies[:n_serial]):
            import_paths([folder], db)
            findings = analyzer(db, uid)
            pipeline.write_report(findings, db, tmp_path / "serial_reports" / f"{k}.pdf")
        t_serial = time.perf_counter() - t0
    serial_rate = 60.0 * n_serial / t_serial
    lines.append(
        f"anchor serial loop (import + analyze_study + write_report), {n_serial} studies: "
        f"{serial_rate:.2f} studies/min"
    )
    variants = [True, False] if os.environ.get("BENCH_BATCH_COMPARE_PREFETCH") == "1" else [True]
    for prefetch in variants:
        with StudyDatabase(tmp_path / f"batch{prefetch}.sqlite3") as db:
            res = batch.run_batch(
                [root],
                db,
                analyze=True,
                report_dir=tmp_path / f"reports{prefetch}",
                summary_path=tmp_path / f"summary{prefetch}.csv",
                analyzer=analyzer,
                prefetch=prefetch,
            )
        st = {s.study_uid: s for s in res.studies}
        assert all(st[u].status == "done" for u in good), [st[u] for u in good if st[u].status != "done"]
        assert st[broken_uid].status == "failed"
        rate = 60.0 * len(good) / res.elapsed_s
        lines.append(
            f"run_batch (prefetch={'on' if prefetch else 'off'}), {len(res.studies)} studies: {rate:.2f} "
            f"good studies/min ({res.elapsed_s:.0f} s)  ratio {rate / serial_rate:.2f}x anchor; "
            f"broken study failed: {st[broken_uid].reason}"
        )
    shutil.rmtree(root, ignore_errors=True)
    print("\n" + "\n".join(lines))
