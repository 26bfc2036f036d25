"""QIDO-RS, WADO-RS and STOW-RS against Orthanc's DICOMweb plugin."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest
from conftest import ArchiveFixture
from pacs_servers import free_port, make_ct_study, make_result_objects

from radiology_app.pacs import web
from radiology_app.pacs.dimse import StudyQuery
from radiology_app.pacs.errors import PacsConfigError, PacsError
from radiology_app.pacs.nodes import PacsNode


@pytest.fixture()
def web_archive(archive: ArchiveFixture) -> ArchiveFixture:
    if not archive.server.has_dicomweb:
        pytest.skip("Orthanc DICOMweb plugin not installed (Debian package orthanc-dicomweb)")
    return archive


def test_qido_matches_c_find_keys(web_archive: ArchiveFixture) -> None:
    node = web_archive.server.node
    everything = {m.study_uid: m for m in web.qido_studies(node, StudyQuery())}
    assert set(web_archive.studies.values()) <= set(everything)
    jane = everything[web_archive.studies["jane"]]
    assert (jane.patient_id, jane.accession_number, jane.study_date) == (
        "P001",
        "ACC001",
        dt.date(2020, 3, 1),
    )
    assert jane.instance_count == 3 and jane.modalities == ("CT",)
    only_rich = web.qido_studies(
        node, StudyQuery(date_from=dt.date(2021, 1, 1), date_to=dt.date(2021, 12, 31))
    )
    assert [m.study_uid for m in only_rich] == [web_archive.studies["rich"]]
    assert [m.study_uid for m in web.qido_studies(node, StudyQuery(modality="MR"))] == [
        web_archive.studies["pat"]
    ]
    assert web.qido_studies(node, StudyQuery(patient_id="NOBODY")) == []


def test_wado_retrieves_whole_study(web_archive: ArchiveFixture, tmp_path: Path) -> None:
    result = web.wado_retrieve_study(web_archive.server.node, web_archive.studies["rich"], tmp_path)
    assert result.method == "web" and len(result.files) == 4
    want = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p in web_archive.files["rich"]}
    for f in result.files:
        got = pydicom.dcmread(f)
        assert got.pixel_array.tolist() == want[str(got.SOPInstanceUID)].pixel_array.tolist()


def test_stow_then_qido_and_wado(web_archive: ArchiveFixture, tmp_path: Path) -> None:
    uid, ct = make_ct_study(
        tmp_path / "ct",
        patient_id="P777",
        patient_name="WEB^STOW",
        study_date=dt.date(2024, 2, 2),
        accession="ACC777",
        slices=2,
        seed=7,
    )
    results = make_result_objects(ct, tmp_path / "res")
    (tmp_path / "ct" / "junk.bin").write_bytes(b"\x00" * 10)
    try:
        sent = web.stow_files(web_archive.server.node, [tmp_path / "ct", *results])
        assert sent.sent == 5 and [Path(i.path).name for i in sent.issues] == ["junk.bin"]
        found = web.qido_studies(web_archive.server.node, StudyQuery(accession_number="ACC777"))
        assert [m.study_uid for m in found] == [uid] and found[0].instance_count == 5
        back = web.wado_retrieve_study(web_archive.server.node, uid, tmp_path / "back")
        assert len(back.files) == 5
    finally:
        web_archive.server.delete_study(uid)


def test_missing_url_and_unreachable_service() -> None:
    with pytest.raises(PacsConfigError, match="DICOMweb"):
        web.qido_studies(PacsNode("n", "AET", "127.0.0.1", 104), StudyQuery())
    with pytest.raises(PacsError, match="QIDO-RS"):
        web.qido_studies(f"http://127.0.0.1:{free_port()}/dicom-web", StudyQuery(), timeout_s=3)
