"""C-ECHO, C-FIND, C-MOVE, C-GET and C-STORE against a real Orthanc archive."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pydicom
import pytest
from conftest import LOCAL_AE, ArchiveFixture
from pacs_servers import free_port, make_ct_study, make_result_objects

from radiology_app.core.errors import OperationCancelled
from radiology_app.core.progress import CancelToken, Progress
from radiology_app.pacs import dimse
from radiology_app.pacs.errors import PacsError
from radiology_app.pacs.nodes import PacsNode


def _by_sop_uid(paths: list[Path] | tuple[Path, ...]) -> dict[str, pydicom.Dataset]:
    out: dict[str, pydicom.Dataset] = {}
    for p in paths:
        ds = pydicom.dcmread(p)
        out[str(ds.SOPInstanceUID)] = ds
    return out


def _assert_same_instances(received: tuple[Path, ...], sources: list[Path]) -> None:
    got, want = _by_sop_uid(received), _by_sop_uid(sources)
    assert set(got) == set(want)
    for uid, ds in want.items():
        assert got[uid].SOPClassUID == ds.SOPClassUID
        assert got[uid].StudyInstanceUID == ds.StudyInstanceUID
        if "PixelData" in ds:
            assert got[uid].pixel_array.tolist() == ds.pixel_array.tolist()


def test_echo(archive: ArchiveFixture) -> None:
    result = dimse.echo(archive.server.node, local_ae=LOCAL_AE)
    assert result.ok and result.status == 0
    assert result.node == f"ORTHANC@127.0.0.1:{archive.server.dicom_port}"
    assert result.round_trip_ms > 0


def test_echo_nobody_listening_names_the_node() -> None:
    node = PacsNode("down", "NOPE", "127.0.0.1", free_port())
    with pytest.raises(PacsError, match=r"NOPE@127\.0\.0\.1:\d+: cannot connect"):
        dimse.echo(node, timeout_s=3)


def test_associations_disable_nagle(archive: ArchiveFixture) -> None:
    ae = dimse._new_ae(LOCAL_AE, 10)
    ae.add_requested_context("1.2.840.10008.1.1")  # Verification
    assoc = dimse._associate(ae, archive.server.node)
    try:
        assert assoc.dul.socket is not None and assoc.dul.socket.socket is not None
        sock = assoc.dul.socket.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        assoc.release()


def test_find_all_studies(archive: ArchiveFixture) -> None:
    matches = dimse.find_studies(archive.server.node, dimse.StudyQuery(), local_ae=LOCAL_AE)
    by_uid = {m.study_uid: m for m in matches}
    assert set(archive.studies.values()) <= set(by_uid)
    jane = by_uid[archive.studies["jane"]]
    assert (jane.patient_id, jane.patient_name, jane.accession_number) == ("P001", "DOE^JANE", "ACC001")
    assert jane.study_date == dt.date(2020, 3, 1)
    assert jane.modalities == ("CT",)
    assert (jane.series_count, jane.instance_count) == (1, 3)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (dimse.StudyQuery(patient_id="P001"), {"jane"}),
        (dimse.StudyQuery(patient_name="ROE*"), {"rich"}),
        (dimse.StudyQuery(accession_number="ACC003"), {"pat"}),
        (dimse.StudyQuery(modality="MR"), {"pat"}),
        (dimse.StudyQuery(date_from=dt.date(2021, 1, 1), date_to=dt.date(2021, 12, 31)), {"rich"}),
        (dimse.StudyQuery(date_from=dt.date(2021, 1, 1)), {"rich", "pat"}),
        (dimse.StudyQuery(date_to=dt.date(2020, 12, 31), modality="CT", patient_id="P*"), {"jane"}),
        (dimse.StudyQuery(date_from=dt.date(2020, 3, 1), date_to=dt.date(2020, 3, 1)), {"jane"}),
        (dimse.StudyQuery(patient_id="NOBODY"), set()),
    ],
)
def test_find_filters(archive: ArchiveFixture, query: dimse.StudyQuery, expected: set[str]) -> None:
    matches = dimse.find_studies(archive.server.node, query, local_ae=LOCAL_AE)
    synthetic = {label: uid for label, uid in archive.studies.items() if label != "cip"}
    found = {label for label, uid in synthetic.items() if uid in {m.study_uid for m in matches}}
    assert found == expected
    assert all(
        m.study_uid in synthetic.values() or m.study_uid == archive.studies.get("cip") for m in matches
    )


def test_find_limit_cancels_after_enough(archive: ArchiveFixture) -> None:
    matches = dimse.find_studies(archive.server.node, dimse.StudyQuery(), local_ae=LOCAL_AE, limit=1)
    assert len(matches) == 1
    # The association was cancelled and aborted cleanly: the node still answers.
    assert dimse.echo(archive.server.node).ok


def test_get_study(archive: ArchiveFixture, tmp_path: Path) -> None:
    seen: list[Progress] = []
    result = dimse.get_study(
        archive.server.node,
        archive.studies["jane"],
        tmp_path / "got",
        local_ae=LOCAL_AE,
        on_progress=seen.append,
    )
    assert result.method == "get" and result.completed == 3 and result.failed == 0
    assert len(result.files) == 3 and all(f.parent == tmp_path / "got" for f in result.files)
    _assert_same_instances(result.files, archive.files["jane"])
    assert seen and seen[-1].done == 3 and seen[-1].unit == "instances"


def test_move_study_to_our_storage_scp(archive: ArchiveFixture, tmp_path: Path) -> None:
    result = dimse.move_study(
        archive.server.node,
        archive.studies["rich"],
        tmp_path / "moved",
        local_ae=LOCAL_AE,
        storage_port=archive.scp_port,
        bind_address="127.0.0.1",
    )
    assert result.method == "move" and result.completed == 4 and result.failed == 0
    _assert_same_instances(result.files, archive.files["rich"])


def test_move_with_running_scp_counts_only_this_study(archive: ArchiveFixture, tmp_path: Path) -> None:
    with dimse.StorageSCP(
        tmp_path / "in", ae_title=LOCAL_AE, port=archive.scp_port, bind_address="127.0.0.1"
    ) as scp:
        first = dimse.move_study(archive.server.node, archive.studies["jane"], tmp_path / "in", scp=scp)
        second = dimse.move_study(archive.server.node, archive.studies["pat"], tmp_path / "in", scp=scp)
        assert scp.received == 3 + 5
    _assert_same_instances(first.files, archive.files["jane"])
    _assert_same_instances(second.files, archive.files["pat"])


def test_move_to_unknown_destination_fails(archive: ArchiveFixture, tmp_path: Path) -> None:
    with pytest.raises(PacsError, match="C-MOVE"):
        dimse.move_study(
            archive.server.node,
            archive.studies["jane"],
            tmp_path / "x",
            local_ae=LOCAL_AE,
            storage_port=free_port(),
            bind_address="127.0.0.1",
            move_destination="NOT_KNOWN",
        )


def test_get_real_ct_series(archive: ArchiveFixture, tmp_path: Path) -> None:
    if "cip" not in archive.studies:
        pytest.skip("real CIP series not present")
    result = dimse.get_study(archive.server.node, archive.studies["cip"], tmp_path, local_ae=LOCAL_AE)
    assert len(result.files) == len(archive.files["cip"]) == 79
    _assert_same_instances(result.files, archive.files["cip"])


def test_get_cancelled(archive: ArchiveFixture, tmp_path: Path) -> None:
    if "cip" not in archive.studies:
        pytest.skip("real CIP series not present")
    token = CancelToken()

    def on_progress(p: Progress) -> None:
        if p.done >= 5:
            token.cancel()

    with pytest.raises(OperationCancelled):
        dimse.get_study(
            archive.server.node,
            archive.studies["cip"],
            tmp_path,
            local_ae=LOCAL_AE,
            on_progress=on_progress,
            cancel=token,
        )
    assert len(list(tmp_path.glob("*.dcm"))) < 79
    assert dimse.echo(archive.server.node).ok


def test_store_round_trip_of_ct_seg_sr_pdf(archive: ArchiveFixture, tmp_path: Path) -> None:
    uid, ct = make_ct_study(
        tmp_path / "ct",
        patient_id="P900",
        patient_name="STORE^TEST",
        study_date=dt.date(2023, 5, 5),
        accession="ACC900",
        slices=3,
        seed=9,
    )
    results = make_result_objects(ct, tmp_path / "results")
    junk = tmp_path / "ct" / "notes.txt"
    junk.write_text("not dicom")
    seen: list[Progress] = []
    try:
        sent = dimse.store_files(
            archive.server.node, [tmp_path / "ct", *results], local_ae=LOCAL_AE, on_progress=seen.append
        )
        assert sent.sent == 6 and sent.warnings == 0
        assert [Path(i.path).name for i in sent.issues] == ["notes.txt"]
        assert seen[-1].done == seen[-1].total == 7
        assert archive.server.instance_count(uid) == 6
        back = dimse.get_study(archive.server.node, uid, tmp_path / "back", local_ae=LOCAL_AE)
        _assert_same_instances(back.files, [*ct, *results])
        classes = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPClassUID) for f in back.files}
        assert {
            "1.2.840.10008.5.1.4.1.1.66.4",
            "1.2.840.10008.5.1.4.1.1.88.34",
            "1.2.840.10008.5.1.4.1.1.104.1",
        } <= classes
        pdf = next(pydicom.dcmread(f) for f in back.files if pydicom.dcmread(f).Modality == "DOC")
        assert pdf.EncapsulatedDocument.startswith(b"%PDF-1.4")
    finally:
        archive.server.delete_study(uid)


def test_store_compressed_file_is_sent(archive: ArchiveFixture, tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    src = Path(str(get_testdata_file("JPEG2000.dcm")))
    ds = pydicom.dcmread(src)
    try:
        sent = dimse.store_files(archive.server.node, [src], local_ae=LOCAL_AE)
        assert sent.sent == 1 and not sent.issues
        back = dimse.get_study(archive.server.node, str(ds.StudyInstanceUID), tmp_path, local_ae=LOCAL_AE)
        got = pydicom.dcmread(back.files[0])
        assert got.SOPInstanceUID == ds.SOPInstanceUID
        assert got.pixel_array.shape == ds.pixel_array.shape
    finally:
        archive.server.delete_study(str(ds.StudyInstanceUID))


def test_store_scp_rejects_wrong_called_ae(tmp_path: Path) -> None:
    with dimse.StorageSCP(tmp_path, ae_title="RADAPP", port=0, bind_address="127.0.0.1") as scp:
        assert dimse.echo(PacsNode("me", "RADAPP", "127.0.0.1", scp.port)).ok
        with pytest.raises(PacsError, match="rejected"):
            dimse.echo(PacsNode("me", "SOMEONE_ELSE", "127.0.0.1", scp.port))


def test_store_scp_port_in_use_is_a_pacs_error(tmp_path: Path) -> None:
    with (
        dimse.StorageSCP(tmp_path, port=0, bind_address="127.0.0.1") as scp,
        pytest.raises(PacsError, match="listen"),
    ):
        dimse.StorageSCP(tmp_path, port=scp.port, bind_address="127.0.0.1").start()
