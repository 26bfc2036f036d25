"""Benchmark: the whole job on the demo study, import -> analysis -> PDF (budget <= 30 s, peak RSS <= 3 GB;
the analysis <= 8 s and peak RSS <= 1.5 GB).

The demo CT (512 x 512 x 120, four nodules) is written once as DICOM outside the timing. The timed job
runs in a fresh Python process (cold: imports, model loading, import into a new database, volume read,
segmentation, measurement, rules, differential, PDF), whose own peak RSS (VmHWM) it reports. The anchor,
measured in the same run, is a raw SimpleITK ImageSeriesReader read of the same files. Needs the
shipped model weights; run with ``make benchmarks``. The nodule detector's ONNX graphs are exported
into the data folder by an untimed run first, as on any run after the first (that one-off export is
printed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from radiology_app.core.config import RESOURCES_DIR

JOB = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from radiology_app.importer import import_paths
from radiology_app.pipeline import analyze_study, write_report
from radiology_app.store.database import StudyDatabase
from radiology_app.demo import DEMO_NOTE
db = StudyDatabase.open_default()
res = import_paths([Path(sys.argv[1])], db)
t_import = time.perf_counter() - t0
f = analyze_study(db, res.studies[0], note_text=DEMO_NOTE.read_text(encoding="utf-8"))
t_analyze = time.perf_counter() - t0
f = write_report(f, db, Path(sys.argv[2]))
t_total = time.perf_counter() - t0
# VmHWM is this process's own peak (ru_maxrss of RUSAGE_CHILDREN is the largest of any earlier child)
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024.0**2
print(json.dumps({"import_s": t_import, "analyze_s": t_analyze, "total_s": t_total,
                  "nodules": len(f.nodules), "peak_rss_gib": rss}))
"""


@pytest.mark.skipif(
    not (RESOURCES_DIR / "models" / "nodule_unet.safetensors").exists(),
    reason="nodule U-Net weights not shipped yet",
)
def test_bench_pipeline(tmp_path: Path) -> None:
    import SimpleITK as sitk  # noqa: N813

    os.environ["RADIOLOGY_APP_HOME"] = str(tmp_path / "setup-home")
    from radiology_app.demo import write_demo_series

    folder = tmp_path / "demo-ct"
    write_demo_series(folder)
    t0 = time.perf_counter()
    reader = sitk.ImageSeriesReader()  # type: ignore[no-untyped-call]
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))  # type: ignore[no-untyped-call]
    reader.SetFileNames(names)  # type: ignore[no-untyped-call]
    reader.Execute()  # type: ignore[no-untyped-call]
    anchor = time.perf_counter() - t0
    env = dict(os.environ, RADIOLOGY_APP_HOME=str(tmp_path / "home"))
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from radiology_app.pipeline import MODELS; MODELS.segmenter()"],
        env=env,
        check=True,
        capture_output=True,
    )
    export_s = time.perf_counter() - t0
    out = subprocess.run(
        [sys.executable, "-c", JOB, str(folder), str(tmp_path / "report.pdf")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    rss_gb = figures["peak_rss_gib"]
    print(
        f"\nwhole job import -> PDF: {figures['total_s']:.1f} s (budget 30 s; "
        f"import {figures['import_s']:.1f} s, "
        f"analysis done at {figures['analyze_s']:.1f} s, budget 8 s), {figures['nodules']} nodules, peak RSS "
        f"{rss_gb:.2f} GiB (budget 1.5); raw SimpleITK series read anchor {anchor:.2f} s, "
        f"ratio {figures['total_s'] / anchor:.1f}x; one-off ONNX export before it {export_s:.1f} s"
    )
    assert (tmp_path / "report.pdf").exists()
    assert rss_gb <= 1.5
