"""``radiology-app extract-facts`` and ``evaluate-notes``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radiology_app.cli import main
from radiology_app.notes.facts import FACT_NAMES


def test_extract_facts_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    text = "67 yo M, current smoker 45 pack-years. Denies hemoptysis. COPD."
    note.write_text(text, encoding="utf-8")
    assert main(["extract-facts", str(note), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["language"] == "en"
    assert list(doc["facts"]) == list(FACT_NAMES)
    assert doc["facts"]["hemoptysis"]["value"] is False
    start, end = doc["facts"]["pack_years"]["span"]
    assert text[start:end] == doc["facts"]["pack_years"]["text"]
    assert doc["facts"]["fever"] == {
        "value": None,
        "span": None,
        "text": None,
        "experiencer": None,
        "certainty": None,
        "temporality": None,
    }


def test_extract_facts_gb18030_chinese(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "zh.txt"
    note.write_bytes("患者女，58岁。否认吸烟史。咳嗽2月，痰中带血。".encode("gb18030"))
    assert main(["extract-facts", str(note), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["language"] == "zh"
    assert doc["facts"]["smoking_status"]["value"] == "never"
    assert doc["facts"]["hemoptysis"]["value"] is True


def test_extract_facts_missing_file_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["extract-facts", str(tmp_path / "nope.txt"), "--json"]) != 0
    err = capsys.readouterr().err
    assert "nope.txt" in err


def test_evaluate_notes_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate-notes", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["facts"]) == set(FACT_NAMES)
    assert doc["min_precision"] >= 0.95 and doc["min_recall"] >= 0.95
    assert doc["notes"] == {"en": 64, "zh": 32}


def test_evaluate_notes_human(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate-notes"]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "pack_years" in out
