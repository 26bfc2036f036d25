"""``radiology-app pacs echo|find|get|move|send|nodes`` against the Orthanc fixture."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ArchiveFixture
from pacs_servers import make_ct_study

from radiology_app.cli import main
from radiology_app.store.database import StudyDatabase


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(h))
    return h


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main([*argv, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_nodes_echo_find_by_configured_name(
    archive: ArchiveFixture, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = f"ORTHANC@127.0.0.1:{archive.server.dicom_port}"
    listed = _run(
        capsys, "pacs", "nodes", "--add", "hospital", spec, "--web-url", archive.server.dicomweb_url
    )
    assert listed["nodes"] == [
        {
            "name": "hospital",
            "ae_title": "ORTHANC",
            "host": "127.0.0.1",
            "port": archive.server.dicom_port,
            "dicomweb_url": archive.server.dicomweb_url or None,
            "dicomweb_credentials": None,
        }
    ]
    assert _run(capsys, "pacs", "echo", "hospital")["ok"] is True
    found = _run(capsys, "pacs", "find", "hospital", "--patient-id", "P00*", "--date-from", "2021-01-01")
    studies = found["studies"]
    assert {s["study_uid"] for s in studies} == {archive.studies["rich"], archive.studies["pat"]}
    if archive.server.has_dicomweb:
        web = _run(capsys, "pacs", "find", "hospital", "--web", "--modality", "MR")
        assert [s["study_uid"] for s in web["studies"]] == [archive.studies["pat"]]
    assert _run(capsys, "pacs", "nodes", "--remove", "hospital")["nodes"] == []


def test_get_and_move_import_into_the_database(
    archive: ArchiveFixture, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = f"ORTHANC@127.0.0.1:{archive.server.dicom_port}"
    got = _run(capsys, "pacs", "get", spec, archive.studies["jane"])
    assert got["instances_received"] == 3 and got["method"] == "get"
    assert got["import"]["studies"] == [archive.studies["jane"]]
    moved = _run(
        capsys,
        "pacs",
        "move",
        spec,
        archive.studies["rich"],
        "--port",
        str(archive.scp_port),
        "--bind",
        "127.0.0.1",
    )
    assert moved["instances_received"] == 4 and moved["import"]["instances_added"] == 4
    with StudyDatabase(home / "studies.sqlite3") as db:
        have = {s.study_uid: s.instance_count for s in db.list_studies()}
    assert have == {archive.studies["jane"]: 3, archive.studies["rich"]: 4}


def test_send_files_and_a_stored_study(
    archive: ArchiveFixture, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = f"ORTHANC@127.0.0.1:{archive.server.dicom_port}"
    uid, _ct = make_ct_study(
        tmp_path / "ct", patient_id="P555", patient_name="SEND^CLI", study_date=dt.date(2023, 3, 3), slices=2
    )
    try:
        sent = _run(capsys, "pacs", "send", spec, str(tmp_path / "ct"))
        assert sent["sent"] == 2 and sent["failed"] == 0
        assert archive.server.instance_count(uid) == 2
    finally:
        archive.server.delete_study(uid)
    _run(capsys, "import", str(tmp_path / "ct"))
    try:
        again = _run(capsys, "pacs", "send", spec, "--study", uid)
        assert again["sent"] == 2
        assert archive.server.instance_count(uid) == 2
    finally:
        archive.server.delete_study(uid)


def test_unknown_node_is_a_one_line_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pacs", "echo", "nowhere"]) == 1
    err = capsys.readouterr().err.strip()
    assert "unknown PACS node 'nowhere'" in err and len(err.splitlines()) == 1
