"""Must show: importing every pydicom test file, the pydicom-data files and the real CIP chest CT
finishes without a traceback, every file is imported or listed with a reason, and ``show`` on the CIP
study matches SimpleITK's reading of the series."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk  # noqa: N813

from radiology_app.core.errors import VolumeError
from radiology_app.dicom.volume import read_volume
from radiology_app.store.database import StudyDatabase

CIP = Path("/work/shared/data/cip-chest-ct64")


def _pydicom_data_folders() -> list[Path]:
    folders = [Path(pydicom.data.__file__).parent]  # pydicom's bundled test files (no download)
    spec = importlib.util.find_spec("data_store")  # the pydicom-data package
    if spec is not None and spec.origin is not None:
        folders.append(Path(spec.origin).parent / "data")
    return folders


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RADIOLOGY_APP_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "radiology_app", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.slow
def test_import_everything_then_show_cip_matches_simpleitk(tmp_path: Path) -> None:
    if not CIP.is_dir():
        pytest.skip(f"{CIP} not present")
    folders = _pydicom_data_folders()
    assert len(folders) == 2, "pydicom-data package not installed"
    root = tmp_path / "everything"
    for k, f in enumerate(folders):
        shutil.copytree(f, root / f"pydicom-{k}")
    shutil.copytree(CIP, root / "cip")
    all_files = {str(p) for p in root.rglob("*") if p.is_file()}
    assert len(all_files) > 250

    home = tmp_path / "home"
    proc = _run(["import", str(root), "--json"], home)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) >= {"run_id", "studies", "instances_added", "instances_already_present", "issues"}
    issues = {i["path"]: i["reason"] for i in result["issues"]}
    assert all(reason for reason in issues.values())
    with StudyDatabase(home / "studies.sqlite3") as db:
        imported = {r[0] for r in db.connection.execute("SELECT source_path FROM instances")}
        # every imported series either reads as a volume or fails with a VolumeError (colour images...)
        outcomes = {"read": 0, "refused": 0}
        for study in db.list_studies():
            for series in db.series_for_study(study.study_uid):
                try:
                    read_volume(db.instances_for_series(series.series_uid))
                    outcomes["read"] += 1
                except VolumeError as exc:
                    assert "\n" not in str(exc)
                    outcomes["refused"] += 1
        assert outcomes["read"] > 30
    assert imported.isdisjoint(issues)
    assert imported | set(issues) == all_files
    assert result["instances_added"] == len(imported) > 150

    proc = _run(["show", str(root / "cip" / "ct-64Dicom"), "--json"], home)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(CIP / "ct-64Dicom")))
    image = reader.Execute()
    array = sitk.GetArrayFromImage(image)
    assert shown["volume"]["shape_zyx"] == list(array.shape)
    assert shown["volume"]["spacing_zyx_mm"] == pytest.approx(list(image.GetSpacing())[::-1], abs=1e-3)
    assert (shown["volume"]["hu_min"], shown["volume"]["hu_max"]) == (float(array.min()), float(array.max()))
    assert (
        shown["chosen"]["series_uid"] == pydicom.dcmread(CIP / "ct-64Dicom" / "IMG0001.dcm").SeriesInstanceUID
    )
    assert 0 < shown["chosen"]["confidence"] <= 1
    assert shown["volume"]["origin_lps_mm"] == pytest.approx(list(image.GetOrigin()), abs=1e-3)
    np.testing.assert_allclose(
        np.array(shown["volume"]["direction"]), np.array(image.GetDirection()).reshape(3, 3), atol=1e-6
    )
