"""The demo: the study is prepared once and deterministically; with the shipped models the whole demo
finds every phantom nodule >= 4 mm and writes a report a test can read."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pipeline_case import make_phantom

from radiology_app.core.config import RESOURCES_DIR
from radiology_app.store.database import StudyDatabase


def test_ensure_demo_study_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from radiology_app import demo

    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("segmentation.phantom.chest.demo_phantom", make_phantom)  # small, same code path
    (tmp_path / "home").mkdir()
    db = StudyDatabase(tmp_path / "home" / "studies.sqlite3")
    uid = demo.ensure_demo_study(db)
    assert uid == demo.demo_study_uid() and uid == demo.demo_study_uid()
    assert db.get_study(uid).patient_id == "DEMO-0001"
    notes = db.notes_for_study(uid)
    assert len(notes) == 1 and "40 pack-year" in notes[0].text
    truth = demo.load_truth()
    assert [t[0] for t in truth] == ["solid", "ground_glass"]
    assert demo.ensure_demo_study(db) == uid  # second call: nothing re-imported, no second note
    assert len(db.notes_for_study(uid)) == 1
    assert len(db.series_for_study(uid)) == 1
    db.close()


@pytest.mark.slow
@pytest.mark.skipif(
    not (RESOURCES_DIR / "models" / "nodule_unet.safetensors").exists(),
    reason="nodule U-Net weights not shipped yet",
)
def test_demo_finds_every_nodule_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from radiology_app.demo import match_truth, run_demo

    torch.set_num_threads(1)
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    db = StudyDatabase(tmp_path / "home" / "studies.sqlite3")
    result = run_demo(db, out_dir=tmp_path / "out")
    assert result.report_pdf.exists() and result.findings_json.exists()
    assert len(result.truth) >= 3
    hits = match_truth(result.findings, (2.5, 0.7, 0.7), result.truth)
    missed = [f"{result.truth[i][0]} {result.truth[i][1]:g} mm" for i, v in hits.items() if v is None]
    found = [f"{n.id} {n.composition} {n.mean_diameter_mm} mm" for n in result.findings.reported_nodules]
    assert hits and not missed, f"missed phantom nodules: {missed}; detections: {found}"
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(result.report_pdf), "-"], capture_output=True, text=True
        ).stdout
        assert "DEMO, Patient" in text and "DEMO-0001" in text and "PRELIMINARY" in text
        for n in result.findings.reported_nodules:
            assert f"Nodule {n.id}" in text
    db.close()
