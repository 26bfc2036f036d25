"""``radiology-app batch`` on the command line (import-only: no model weights needed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from batch_helpers import add_broken_files, make_study

from radiology_app.cli import main


def test_batch_command_json_and_summary(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    uids = [make_study(src, i) for i in range(2)]
    add_broken_files(src / "bad")
    summary = tmp_path / "summary.csv"
    assert main(["batch", str(src), "--summary", str(summary), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["study_uid"] for s in doc["studies"]] == uids
    assert {s["status"] for s in doc["studies"]} == {"done"}
    assert all(set(s) >= {"study_uid", "status", "reason", "report"} for s in doc["studies"])
    assert doc["summary"] == str(summary) and doc["issues"]
    rows = list(csv.DictReader(summary.open(encoding="utf-8")))
    assert [r["study_uid"] for r in rows] == uids
    assert main(["batch", str(src), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["processed"] == 0 and all(s["skipped"] for s in again["studies"])


def test_batch_command_refuses_report_dir_without_analyze(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["batch", str(tmp_path), "--report-dir", str(tmp_path / "r")]) == 1
    assert "--analyze" in capsys.readouterr().err


def test_batch_with_a_study_that_cannot_be_analysed_exits_0_and_lists_it_failed(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed study is a result of the batch, not a failure of the command (exit 0, per the CLI
    contract: non-zero only when the command itself fails); scripts read ``failed`` and each status."""
    src = tmp_path / "in"
    uid = make_study(src, 0, slices=1)  # a single slice: no series the pipeline can analyse
    add_broken_files(src / "bad")
    summary = tmp_path / "summary.csv"
    args = ["batch", str(src), "--analyze", "--report-dir", str(tmp_path / "r"), "--summary", str(summary)]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (study,) = doc["studies"]
    assert study["study_uid"] == uid and study["status"] == "failed" and study["reason"]
    assert study["report"] is None and doc["failed"] == 1 and len(doc["issues"]) == 3
    (row,) = csv.DictReader(summary.open(encoding="utf-8"))
    assert row["status"] == "failed" and row["reason"] == study["reason"] and not row["nodule_id"]
