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
   minute, and the ratio to the anchor; every good study must be done, the broken study failed with
   its reason, the broken files listed as issues;
3. a batch killed (SIGKILL) once a third of the studies are done, then run again: every good study
   ends ``done`` with exactly one completed analysis run (nothing lost, nothing repeated).

Without the segmentation weights (``resources/models``) the analysis cannot run: the benchmark then
measures import-only batches against a serial loop over ``radiology-app import`` and says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from radiology_app.core.errors import StoreError
from radiology_app.core.types import Patient, Study
from radiology_app.dicom.write_ct import write_ct_series
from radiology_app.store.database import StudyDatabase

N_STUDIES = int(os.environ.get("BENCH_BATCH_STUDIES", "50"))
SHAPE = tuple(int(v) for v in os.environ.get("BENCH_BATCH_SHAPE", "120,512,512").split(","))
N_PHANTOMS = int(os.environ.get("BENCH_BATCH_PHANTOMS", "5"))
N_SERIAL = int(os.environ.get("BENCH_BATCH_SERIAL", "5"))
CLI = [sys.executable, "-m", "radiology_app"]


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
    return subprocess.run(
        [*CLI, *args], env=_env(home), capture_output=True, text=True, check=True, timeout=7200
    )


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
        f"analysis {'ON' if analyze else 'OFF (no model weights)'}"
    )

    # 1. anchor: plain serial loop over analyze (or import), one process per study
    n_serial = min(N_SERIAL, len(studies))
    home = tmp_path / "serial"
    t0 = time.perf_counter()
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
    serial_rate = 60.0 * n_serial / t_serial

    # 2. the batch over everything
    home = tmp_path / "batch"
    summary = tmp_path / "summary.csv"
    args = ["batch", str(root), "--summary", str(summary), "--json"]
    if analyze:
        args += ["--analyze", "--report-dir", str(tmp_path / "reports")]
    t0 = time.perf_counter()
    out = json.loads(_run(args, home).stdout)
    t_batch = time.perf_counter() - t0
    status = {s["study_uid"]: s for s in out["studies"]}
    assert good <= set(status)
    assert all(status[u]["status"] == "done" for u in good), [
        status[u] for u in good if status[u]["status"] != "done"
    ]
    if analyze:
        assert status[broken_uid]["status"] == "failed" and status[broken_uid]["reason"]
        assert all(status[u]["report"] and Path(status[u]["report"]).exists() for u in good)
    junk_names = {Path(i["path"]).name for i in out["issues"]}
    assert {"truncated.dcm", "garbage.dcm", "readme.txt", "CT00001.dcm"} <= junk_names
    batch_rate = 60.0 * len(status) / t_batch
    lines.append(
        f"anchor serial loop over {'analyze' if analyze else 'import'} ({n_serial} studies): "
        f"{serial_rate:.2f} studies/min"
    )
    lines.append(
        f"batch ({len(status)} studies incl. the broken one): {batch_rate:.2f} studies/min "
        f"({t_batch:.0f} s)  ratio {batch_rate / serial_rate:.2f}x anchor"
    )
    lines.append(
        f"broken study: {status[broken_uid]['status']} ({status[broken_uid]['reason']}); "
        f"{len(out['issues'])} files not imported"
    )

    # 3. kill in the middle, then run again
    home = tmp_path / "killed"
    proc = subprocess.Popen(
        [*CLI, *args[:-1]], env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 7200
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            db_path = home / "studies.sqlite3"
            if not db_path.exists():
                continue
            try:
                with StudyDatabase(db_path) as db:
                    batches = db.list_batches()
                    done = len(db.list_batch_items(batches[0], "done")) if batches else 0
                    imported = len(db.list_studies())
            except StoreError:  # the batch process is still creating the schema
                continue
            # with analysis: kill once a third is done; import-only: once a third of the studies arrived
            if (done if analyze else imported) >= max(1, len(good) // 3):
                break
        assert proc.poll() is None, "the batch finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with StudyDatabase(home / "studies.sqlite3") as db:
            batches = db.list_batches()
            done_before = {i.item_key for i in db.list_batch_items(batches[0], "done")} if batches else set()
        t0 = time.perf_counter()
        again = json.loads(_run(args, home).stdout)
        t_rerun = time.perf_counter() - t0
        status = {s["study_uid"]: s for s in again["studies"]}
        assert all(status[u]["status"] == "done" for u in good)
        assert {u for u in good if status[u]["skipped"]} == done_before & good
        with StudyDatabase(home / "studies.sqlite3") as db:
            runs = {u: [r.status for r in db.analysis_runs_for_study(u)] for u in good}
            counts = {s.study_uid: s.instance_count for s in db.list_studies()}
        assert all(counts[u] == SHAPE[0] for u in good)  # every slice of every study, once
        if analyze:
            assert all(r.count("done") == 1 for r in runs.values()), runs
        lines.append(
            f"killed after {len(done_before)} studies done; re-run finished the other "
            f"{len(good) - len(done_before & good)} in {t_rerun:.0f} s, skipped {len(done_before & good)}; "
            f"every good study done once (analysis runs completed per study: "
            f"{sorted({r.count('done') for r in runs.values()})})"
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

    def segmenter(self) -> object:
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
