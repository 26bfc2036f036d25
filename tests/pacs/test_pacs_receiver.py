"""The temporary storage SCP of `pacs move` admits no one else: loopback by default, configured calling AE
titles only, only the study asked for, a size quota, every refusal logged. Peers are real pynetdicom AEs."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import pydicom
import pytest
from conftest import LOCAL_AE, ArchiveFixture
from pacs_servers import make_ct_study
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from radiology_app.core.config import Settings
from radiology_app.pacs import dimse
from radiology_app.pacs.admission import (
    STATUS_NOT_AUTHORIZED,
    STATUS_OUT_OF_RESOURCES,
    ReceiverPolicy,
    move_policy,
)
from radiology_app.pacs.nodes import PacsNode
from radiology_app.pacs.retrieve import retrieve_study

PACS_AE = "PACS"


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, list[Path]]]:
    """The study asked for, and another patient's."""
    root = tmp_path_factory.mktemp("studies")
    wanted = make_ct_study(
        root / "wanted", patient_id="W1", patient_name="WANTED^ONE", study_date=dt.date(2024, 1, 2), slices=3
    )
    other = make_ct_study(
        root / "other", patient_id="X9", patient_name="OTHER^PATIENT", study_date=dt.date(2024, 1, 3), seed=5
    )
    return {"wanted": wanted, "other": other}


def _push(port: int, calling_ae: str, paths: list[Path]) -> list[int] | None:
    """C-STORE ``paths`` to our SCP as ``calling_ae``; the statuses, or ``None`` if the association fails."""
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title=LOCAL_AE)
    if not assoc.is_established:
        return None
    try:
        return [int(assoc.send_c_store(pydicom.dcmread(p)).Status) for p in paths]
    finally:
        assoc.release()


def _scp(tmp_path: Path, policy: ReceiverPolicy | None) -> dimse.StorageSCP:
    return dimse.StorageSCP(tmp_path / "in", ae_title=LOCAL_AE, port=0, policy=policy)


def test_listens_on_loopback_unless_an_address_is_configured(tmp_path: Path) -> None:
    with _scp(tmp_path, None) as scp:
        assert scp._server.server_address[0] == "127.0.0.1"
    assert Settings().storage_bind_address == "127.0.0.1"


def test_rogue_calling_ae_is_refused_and_logged(
    tmp_path: Path, two_studies: dict[str, tuple[str, list[Path]]], caplog: pytest.LogCaptureFixture
) -> None:
    study, files = two_studies["wanted"]
    policy = ReceiverPolicy(calling_aets=frozenset({PACS_AE}), study_uid=study)
    with caplog.at_level(logging.WARNING, logger="radiology_app.pacs"), _scp(tmp_path, policy) as scp:
        assert _push(scp.port, "ROGUE", files) is None
        assert _push(scp.port, PACS_AE, files[:1]) == [0]
        assert scp.received == 1
    assert policy.refused["calling AE title"] == 1
    assert any("'ROGUE'" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


def test_instances_of_another_study_are_refused(
    tmp_path: Path, two_studies: dict[str, tuple[str, list[Path]]], caplog: pytest.LogCaptureFixture
) -> None:
    study, files = two_studies["wanted"]
    other_uid, other_files = two_studies["other"]
    policy = ReceiverPolicy(calling_aets=frozenset({PACS_AE}), study_uid=study)
    with caplog.at_level(logging.WARNING, logger="radiology_app.pacs"), _scp(tmp_path, policy) as scp:
        statuses = _push(scp.port, PACS_AE, [*other_files, *files])
        got = scp.files
    assert statuses == [STATUS_NOT_AUTHORIZED] * len(other_files) + [0] * len(files)
    assert {str(pydicom.dcmread(p).StudyInstanceUID) for p in got} == {study}
    assert len(list((tmp_path / "in").iterdir())) == len(files)
    assert policy.refused["other study"] == len(other_files)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "was not asked for" in messages and other_uid not in messages  # UIDs hashed in the log


def test_only_the_series_asked_for(tmp_path: Path, two_studies: dict[str, tuple[str, list[Path]]]) -> None:
    study, files = two_studies["wanted"]
    policy = ReceiverPolicy(study_uid=study, series_uids=frozenset({"1.2.3.4"}))
    with _scp(tmp_path, policy) as scp:
        assert _push(scp.port, PACS_AE, files[:1]) == [STATUS_NOT_AUTHORIZED]
    assert policy.refused["other series"] == 1


def test_size_quota(tmp_path: Path, two_studies: dict[str, tuple[str, list[Path]]]) -> None:
    study, files = two_studies["wanted"]
    probe = ReceiverPolicy()
    with _scp(tmp_path / "probe", probe) as scp:
        _push(scp.port, PACS_AE, files[:1])
    one = probe.bytes_admitted  # encoded size of one instance as it arrives
    policy = ReceiverPolicy(study_uid=study, quota_bytes=int(2.5 * one))
    with _scp(tmp_path, policy) as scp:
        statuses = _push(scp.port, PACS_AE, files)
        assert scp.received == 2
    assert statuses == [0, 0, STATUS_OUT_OF_RESOURCES]
    assert policy.refused["quota"] == 1 and policy.bytes_admitted <= int(2.5 * one)


def test_move_policy_admits_the_configured_nodes_and_the_source() -> None:
    settings = Settings().replace(
        pacs_nodes={"main": {"ae_title": "MAINPACS", "host": "pacs", "port": 104}}, storage_quota_mb=1
    )
    policy = move_policy(settings, PacsNode("adhoc", "ADHOC", "h", 104), "1.2.3")
    assert policy.calling_aets == {"MAINPACS", "ADHOC"}
    assert policy.study_uid == "1.2.3" and policy.quota_bytes == 1024 * 1024
    assert (
        move_policy(settings.replace(storage_quota_mb=0), PacsNode("a", "A", "h", 1), "1").quota_bytes is None
    )


def test_move_retrieves_the_study_and_refuses_a_rogue_push_meanwhile(
    archive: ArchiveFixture, tmp_path: Path, two_studies: dict[str, tuple[str, list[Path]]]
) -> None:
    """A real C-MOVE from Orthanc through `retrieve_study`; a rogue peer pushes another study meanwhile."""
    settings = Settings().replace(local_ae_title=LOCAL_AE, local_storage_port=archive.scp_port)
    pushed: list[list[int] | None] = []
    real_follow = dimse._follow_retrieve

    def follow_with_intruders(*args: object, **kwargs: object) -> object:
        other = two_studies["other"][1]
        intruders = [
            threading.Thread(target=lambda aet=aet: pushed.append(_push(archive.scp_port, aet, other)))
            for aet in ("ROGUE", "ORTHANC")
        ]
        for t in intruders:
            t.start()
        for t in intruders:
            t.join()
        return real_follow(*args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dimse, "_follow_retrieve", follow_with_intruders)
        out = retrieve_study(
            archive.server.node,
            archive.studies["jane"],
            None,
            method="move",
            dest_dir=tmp_path,
            settings=settings,
        )
    assert sorted(map(str, pushed)) == sorted(
        [str(None), str([STATUS_NOT_AUTHORIZED] * len(two_studies["other"][1]))]
    )
    assert len(out.retrieval.files) == len(archive.files["jane"])
    assert {str(pydicom.dcmread(p).StudyInstanceUID) for p in tmp_path.glob("*.dcm")} == {
        archive.studies["jane"]
    }
