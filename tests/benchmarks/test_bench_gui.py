"""GUI benchmark: open a 512x512x300 study -> first image (budget 2 s); slice change (budget 20 ms).

Anchors measured in the same run: a raw SimpleITK ImageSeriesReader read of the same files (the floor for
loading the volume), and a bare numpy slice copy. Run with ``make benchmarks`` (prints the figures).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _write_big_study(folder: Path) -> str:
    import datetime as dt

    from radiology_app.core.types import Patient, Study
    from radiology_app.dicom.write_ct import write_ct_series

    rng = np.random.default_rng(0)
    z, y, x = 300, 512, 512
    hu = np.full((z, y, x), -1000, dtype=np.int16)
    yy, xx = np.mgrid[0:y, 0:x]
    body = ((yy - 256) / 200.0) ** 2 + ((xx - 256) / 230.0) ** 2 <= 1
    lungs = (((yy - 250) / 140.0) ** 2 + ((xx - 170) / 70.0) ** 2 <= 1) | (
        ((yy - 250) / 140.0) ** 2 + ((xx - 342) / 70.0) ** 2 <= 1
    )
    base = np.where(body, 40, -1000).astype(np.int16)
    base[lungs] = -860
    for k in range(z):
        hu[k] = base + rng.integers(-20, 20, size=(y, x), dtype=np.int16)
    uid = "1.2.826.0.1.3680043.8.498.999.300"
    write_ct_series(
        hu,
        (1.0, 0.7, 0.7),
        folder,
        origin_lps_mm=(-180.0, -180.0, -300.0),
        patient=Patient(patient_id="BENCH", name="Bench^Mark"),
        study=Study(study_uid=uid, patient_id="BENCH", study_date=dt.date(2024, 1, 1)),
        uid_seed=uid,
    )
    return uid


@pytest.mark.timeout(1800)
def test_bench_gui_open_and_slice_change(
    qtbot: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import SimpleITK as sitk  # noqa: N813
    from PySide6.QtWidgets import QApplication

    from radiology_app.core.config import app_paths
    from radiology_app.importer import import_paths
    from radiology_app.store.database import StudyDatabase
    from radiology_app.ui.imaging import Plane
    from radiology_app.ui.main_window import MainWindow

    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(tmp_path / "home"))
    src = tmp_path / "study"
    uid = _write_big_study(src)
    db = StudyDatabase(app_paths().database)
    import_paths([src], db)

    # Anchor 1: raw SimpleITK series read of the same files.
    files = sorted(str(p) for p in src.glob("*.dcm"))
    t0 = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(src)) or files)
    sitk.GetArrayFromImage(reader.Execute())
    sitk_s = time.perf_counter() - t0

    window = MainWindow(db)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)  # type: ignore[attr-defined]
    axial = window.viewer.views[Plane.AXIAL]
    t0 = time.perf_counter()
    window.open_study(uid)
    qtbot.waitUntil(lambda: axial.render_slice() is not None, timeout=60_000)  # type: ignore[attr-defined]
    axial.repaint()
    first_image_s = time.perf_counter() - t0

    # Slice change: step the slice and repaint synchronously (render + paint + flush to the window), and
    # separately the render alone (paint into an image, no platform flush).
    from PySide6.QtGui import QImage

    times: dict[str, tuple[list[float], list[float]]] = {}
    for plane in Plane:
        view = window.viewer.views[plane]
        geom = view.geometry_info
        assert geom is not None
        canvas = QImage(view.size(), QImage.Format.Format_RGB32)
        shown, rendered = [], []
        for i in range(60):
            step = 1 if i % 40 < 20 else -1
            t = time.perf_counter()
            window.viewer.model.step(geom.slice_axis, step)
            view.repaint()
            shown.append(time.perf_counter() - t)
            t = time.perf_counter()
            window.viewer.model.step(geom.slice_axis, step)
            view.render(canvas)
            rendered.append(time.perf_counter() - t)
        times[plane.value] = (shown, rendered)
    vol = window.volume
    assert vol is not None
    t = time.perf_counter()
    for k in range(60):
        vol.hu[k].copy()
    copy_ms = (time.perf_counter() - t) / 60 * 1000
    print(
        f"\n[bench-gui] volume {vol.shape_zyx}: first image {first_image_s:.2f} s (budget 2 s); "
        f"SimpleITK raw series read {sitk_s:.2f} s; ratio first-image/SimpleITK {first_image_s / sitk_s:.2f}"
    )
    platform = QApplication.platformName()
    for plane, (shown, rendered) in times.items():
        med = statistics.median(shown) * 1000
        p95 = sorted(shown)[int(0.95 * len(shown))] * 1000
        ren = statistics.median(rendered) * 1000
        print(
            f"[bench-gui] slice change {plane} ({platform}): median {med:.1f} ms, "
            f"p95 {p95:.1f} ms incl. flush; "
            f"render only {ren:.1f} ms (budget 20 ms); ratio to numpy slice copy ({copy_ms:.2f} ms) "
            f"{med / copy_ms:.1f}"
        )
    window.close()
    db.close()
