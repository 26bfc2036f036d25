"""Benchmark: retrieval from a real Orthanc archive, in instances per second.

One realistic-size CT study (512 x 512, ``BENCH_PACS_SLICES`` slices, default 200) is stored in an
Orthanc on loopback (started with ``TCP_NODELAY=1``, as a tuned archive would be). Measured side by
side in this run, best of ``BENCH_PACS_REPEATS`` (default 2) each:

- anchor: DCMTK ``getscu`` (C-GET, C++), with ``TCP_NODELAY=1``;
- ours: C-GET, C-MOVE to our storage SCP, WADO-RS (when the DICOMweb plugin is there; streamed, one
  request per series, budget >= 500 instances/s);
- ours without ``TCP_NODELAY`` (the default socket settings), to show what the option buys;
- sending: our C-STORE vs DCMTK ``storescu``.

Each line prints instances/s and the ratio to the anchor.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pacs"))
from pacs_servers import ORTHANC_BIN, OrthancServer, free_port

from radiology_app.core.types import Patient, Study
from radiology_app.dicom.write_ct import write_ct_series
from radiology_app.pacs import dimse, web

SLICES = int(os.environ.get("BENCH_PACS_SLICES", "200"))
REPEATS = int(os.environ.get("BENCH_PACS_REPEATS", "2"))
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def _best(fn: Callable[[Path], int], root: Path, name: str) -> tuple[float, int]:
    """Best wall time of REPEATS runs of ``fn(folder)`` (a fresh folder each), and the files it got."""
    best, got = float("inf"), 0
    for k in range(REPEATS):
        folder = root / f"{name}{k}"
        folder.mkdir(parents=True)
        t0 = time.perf_counter()
        got = fn(folder)
        best = min(best, time.perf_counter() - t0)
        shutil.rmtree(folder)
    return best, got


@pytest.mark.skipif(not ORTHANC_BIN or shutil.which("getscu") is None, reason="needs orthanc and dcmtk")
def test_bench_pacs_retrieval(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    hu = rng.integers(-1024, 1500, size=(SLICES, 512, 512), dtype=np.int16)
    study_uid = "1.2.826.0.1.3680043.8.498.77001"
    files = write_ct_series(
        hu,
        (1.25, 0.7, 0.7),
        tmp_path / "ct",
        patient=Patient("PB", "Bench^Pacs"),
        study=Study(study_uid, "PB", dt.date(2024, 1, 1)),
        uid_seed="bench-pacs",
    )
    del hu
    scp_port = free_port()
    server = OrthancServer(
        tmp_path / "orthanc", modalities={"radapp": ("RADAPP", "127.0.0.1", scp_port)}
    ).start()
    node = server.node
    lines: list[str] = []
    try:
        # -- sending: DCMTK storescu (anchor) vs our C-STORE
        t0 = time.perf_counter()
        subprocess.run(
            [
                shutil.which("storescu") or "storescu",
                "-aec",
                server.aet,
                "127.0.0.1",
                str(server.dicom_port),
                *map(str, files),
            ],
            check=True,
            env=DCMTK_ENV,
            timeout=600,
        )
        t_storescu = time.perf_counter() - t0
        server.delete_study(study_uid)
        sent = dimse.store_files(node, files)
        assert sent.sent == len(files)
        t_store = sent.elapsed_s
        assert server.instance_count(study_uid) == len(files)

        # -- retrieval
        def getscu(folder: Path) -> int:
            subprocess.run(
                [
                    shutil.which("getscu") or "getscu",
                    "-S",
                    "-aet",
                    "RADAPP",
                    "-aec",
                    server.aet,
                    "-k",
                    "QueryRetrieveLevel=STUDY",
                    "-k",
                    f"StudyInstanceUID={study_uid}",
                    "-od",
                    str(folder),
                    "127.0.0.1",
                    str(server.dicom_port),
                ],
                check=True,
                env=DCMTK_ENV,
                timeout=600,
            )
            return len(list(folder.iterdir()))

        def cget(folder: Path) -> int:
            return len(dimse.get_study(node, study_uid, folder).files)

        def cmove(folder: Path) -> int:
            return len(
                dimse.move_study(
                    node, study_uid, folder, storage_port=scp_port, bind_address="127.0.0.1"
                ).files
            )

        def wado(folder: Path) -> int:
            return len(web.wado_retrieve_study(node, study_uid, folder).files)

        t_anchor, n_anchor = _best(getscu, tmp_path / "r", "getscu")
        assert n_anchor == len(files)
        results = {
            "C-GET": _best(cget, tmp_path / "r", "get"),
            "C-MOVE": _best(cmove, tmp_path / "r", "move"),
        }
        if server.has_dicomweb:
            results["WADO-RS"] = _best(wado, tmp_path / "r", "wado")
        saved = list(dimse.NODELAY_HANDLERS)
        dimse.NODELAY_HANDLERS.clear()
        try:
            results["C-GET, no TCP_NODELAY"] = _best(cget, tmp_path / "r", "get_nagle")
        finally:
            dimse.NODELAY_HANDLERS.extend(saved)
        n = len(files)
        mb = sum(f.stat().st_size for f in files) / 1e6
        lines.append(f"study: {n} instances, {mb:.0f} MB; Orthanc 1.10 on loopback, TCP_NODELAY=1")
        lines.append(f"anchor DCMTK getscu        : {n / t_anchor:8.1f} instances/s ({t_anchor:.2f} s)")
        for name, (t, got) in results.items():
            assert got == n, name
            lines.append(
                f"ours {name:22s}: {n / t:8.1f} instances/s ({t:.2f} s)  ratio {t_anchor / t:.2f}x anchor"
            )
        lines.append(
            f"send: DCMTK storescu {n / t_storescu:8.1f} instances/s; ours C-STORE {n / t_store:8.1f} "
            f"instances/s  ratio {t_storescu / t_store:.2f}x"
        )
    finally:
        server.stop()
    print("\n" + "\n".join(lines))
