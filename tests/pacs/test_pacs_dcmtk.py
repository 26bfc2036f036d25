"""DCMTK as a second, independent peer: storescp receives from us; echoscu/storescu/findscu talk to us."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pydicom
import pytest
from conftest import LOCAL_AE, ArchiveFixture
from pacs_servers import StoreSCPServer, dcmtk_tool, make_ct_study, make_result_objects

from radiology_app.pacs import dimse

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def _tool(name: str) -> str:
    path = dcmtk_tool(name)
    if not path:
        pytest.skip(f"{name} not installed (Debian package dcmtk)")
    return path


def test_echo_and_store_to_storescp(storescp: StoreSCPServer, tmp_path: Path) -> None:
    assert dimse.echo(storescp.node).ok
    _, ct = make_ct_study(
        tmp_path / "ct", patient_id="P1", patient_name="A^B", study_date=dt.date(2024, 1, 2), slices=3
    )
    results = make_result_objects(ct, tmp_path / "res")
    sent = dimse.store_files(storescp.node, [*ct, *results])
    assert sent.sent == 6 and not sent.issues
    received = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in storescp.out_dir.iterdir()}
    for src in [*ct, *results]:
        ds = pydicom.dcmread(src)
        got = pydicom.dcmread(received[str(ds.SOPInstanceUID)])
        assert got.SOPClassUID == ds.SOPClassUID
        if "PixelData" in ds:
            assert got.PixelData == ds.PixelData


def test_dcmtk_echoscu_and_storescu_to_our_scp(tmp_path: Path) -> None:
    echoscu, storescu = _tool("echoscu"), _tool("storescu")
    _, ct = make_ct_study(
        tmp_path / "ct", patient_id="P2", patient_name="C^D", study_date=dt.date(2024, 1, 3), slices=5
    )
    arrived: list[Path] = []
    with dimse.StorageSCP(
        tmp_path / "in", ae_title="RADAPP", port=0, bind_address="127.0.0.1", on_stored=arrived.append
    ) as scp:
        port = str(scp.port)
        subprocess.run([echoscu, "-aec", "RADAPP", "127.0.0.1", port], check=True, env=DCMTK_ENV, timeout=30)
        subprocess.run(
            [storescu, "-aec", "RADAPP", "127.0.0.1", port, *map(str, ct)],
            check=True,
            env=DCMTK_ENV,
            timeout=60,
        )
        wrong = subprocess.run(
            [echoscu, "-aec", "NOT_US", "127.0.0.1", port], env=DCMTK_ENV, timeout=30, capture_output=True
        )
        assert scp.received == 5
    assert wrong.returncode != 0
    assert sorted(arrived) == sorted(scp.files)
    want = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p in ct}
    for path in arrived:
        got = pydicom.dcmread(path)
        assert path.name == f"{got.SOPInstanceUID}.dcm"
        assert got.PixelData == want[str(got.SOPInstanceUID)].PixelData


def test_our_find_agrees_with_dcmtk_findscu(archive: ArchiveFixture, tmp_path: Path) -> None:
    findscu = _tool("findscu")
    out = subprocess.run(
        [
            findscu,
            "-S",
            "-aet",
            LOCAL_AE,
            "-aec",
            archive.server.aet,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyDate=20210101-",
            "-k",
            "StudyInstanceUID",
            "-X",
            "-od",
            str(tmp_path),
            "127.0.0.1",
            str(archive.server.dicom_port),
        ],
        check=True,
        env=DCMTK_ENV,
        timeout=60,
        capture_output=True,
    )
    assert out.returncode == 0
    theirs = {str(pydicom.dcmread(p).StudyInstanceUID) for p in tmp_path.glob("rsp*.dcm")}
    ours = {
        m.study_uid
        for m in dimse.find_studies(archive.server.node, dimse.StudyQuery(date_from=dt.date(2021, 1, 1)))
    }
    assert ours == theirs == {archive.studies["rich"], archive.studies["pat"]}
