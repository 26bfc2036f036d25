"""CLI ``import``, ``studies``, ``show``, ``note``: JSON keys per the contract, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radiology_app.cli import main

WriteSeries = Callable[..., list[Path]]


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_import_studies_show_note(
    app_home: Path, write_series: WriteSeries, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hu = np.full((40, 16, 16), -800, np.int16)
    hu[:, 4:8, 4:8] = 60
    files = write_series("ct", hu=hu, spacing_zyx_mm=(1.0, 0.7, 0.7), convolution_kernel="LUNG")
    (files[0].parent / "junk.txt").write_text("x", encoding="utf-8")

    out = _json(capsys, ["import", str(files[0].parent), "--json"])
    assert set(out) == {"run_id", "studies", "instances_added", "instances_already_present", "issues"}
    assert out["instances_added"] == 40 and out["instances_already_present"] == 0
    assert out["issues"] == [
        {"path": str(files[0].parent / "junk.txt"), "reason": out["issues"][0]["reason"]}
    ]
    [study_uid] = out["studies"]

    again = _json(capsys, ["import", str(files[0].parent), "--json"])
    assert again["instances_added"] == 0 and again["instances_already_present"] == 40

    studies = _json(capsys, ["studies", "--json"])
    assert studies == [
        {
            "study_uid": study_uid,
            "patient_id": "PAT-1",
            "patient_name": "Test^Patient",
            "study_date": "2024-01-02",
            "modalities": ["CT"],
            "series_count": 1,
            "instance_count": 40,
            "description": "CT CHEST",
        }
    ]

    shown = _json(capsys, ["show", study_uid[:-3], "--json"])
    assert shown["study_uid"] == study_uid
    assert len(shown["series"]) == 1
    assert set(shown["chosen"]) >= {"series_uid", "confidence", "warnings"}
    assert shown["chosen"]["series_uid"] == shown["series"][0]["series_uid"]
    assert shown["volume"]["shape_zyx"] == [40, 16, 16]
    assert shown["volume"]["spacing_zyx_mm"] == pytest.approx([1.0, 0.7, 0.7])
    assert (shown["volume"]["hu_min"], shown["volume"]["hu_max"]) == (-800.0, 60.0)

    note_file = tmp_path / "note.txt"
    note_file.write_bytes("男，65岁，吸烟30包年。".encode("gb18030"))
    note = _json(capsys, ["note", str(files[0].parent), "--file", str(note_file), "--json"])
    assert set(note) == {"note_id", "study_uid"} and note["study_uid"] == study_uid
    note2 = _json(capsys, ["note", study_uid, "--text", "former smoker", "--json"])
    assert note2["note_id"] == note["note_id"] + 1

    assert main(["show", study_uid]) == 0  # human output
    text = capsys.readouterr().out
    assert "volume: shape (40, 16, 16)" in text and "notes: 2" in text


def test_errors_are_one_line_and_nonzero(
    app_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", "1.2.3.4", "--json"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("radiology-app: error:") and "\n" not in err
    assert main(["import", str(tmp_path / "missing"), "--json"]) == 1
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01")
    assert main(["note", "1.2.3", "--file", str(bad)]) == 1
    assert "bad.txt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["note", "1.2.3"])  # --file or --text is required
