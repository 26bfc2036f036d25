"""The ``analyze`` and ``export`` commands: contract JSON on stdout or in a file, report written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_case import NOTE, STUDY_UID, FakeRegistry

from radiology_app.cli import main
from radiology_app.store.database import StudyDatabase

CONTRACT_KEYS = {"study_uid", "series_uid", "warnings", "facts", "models", "nodules", "report"}


@pytest.fixture()
def fakes(db: StudyDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("radiology_app.pipeline.MODELS", FakeRegistry())


def test_analyze_json_stdout_and_report(
    fakes: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.txt"
    note.write_text(NOTE, encoding="utf-8")
    pdf = tmp_path / "out" / "report.pdf"
    assert main(["analyze", STUDY_UID, "--note", str(note), "--report", str(pdf), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= CONTRACT_KEYS
    assert doc["report"] == str(pdf.resolve()) and pdf.exists()
    assert doc["facts"]["age"]["value"] == 68 and doc["facts"]["age"]["span"] is not None
    assert len(doc["nodules"]) == 2
    for n in doc["nodules"]:
        assert n["lung_rads"]["category"] and n["differential"][0]["probability"] > 0
        assert set(n["modality_weights"]) >= {"image", "text"}


def test_analyze_json_file_then_export(
    fakes: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "findings.json"
    assert main(["analyze", STUDY_UID, "--json", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["study_uid"] == STUDY_UID and doc["report"] is None
    capsys.readouterr()
    assert main(["export", STUDY_UID, "--dicom", str(tmp_path / "dcm"), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert Path(exported["seg"]).exists() and Path(exported["sr"]).exists() and Path(exported["pdf"]).exists()
    assert exported["deidentified"] is False


def test_export_without_analysis_fails(
    db: StudyDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", STUDY_UID, "--dicom", str(tmp_path / "d")]) == 1
    assert "no analysis to export" in capsys.readouterr().err
