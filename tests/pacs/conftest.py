"""Fixtures: a real Orthanc archive (with DICOMweb when the plugin is installed) and DCMTK's storescp."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pacs_servers import ORTHANC_BIN, STORESCP_BIN, OrthancServer, StoreSCPServer, free_port, make_ct_study

CIP_SERIES = Path("/work/shared/data/cip-chest-ct64/ct-64Dicom")
LOCAL_AE = "RADAPP"


@dataclass
class ArchiveFixture:
    """The running archive and what was put in it."""

    server: OrthancServer
    scp_port: int
    studies: dict[str, str] = field(default_factory=dict)  # label -> StudyInstanceUID
    files: dict[str, list[Path]] = field(default_factory=dict)  # label -> source files


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArchiveFixture]:
    """Orthanc on loopback holding three tiny synthetic studies and (when present) the real CIP chest CT."""
    if not ORTHANC_BIN:
        pytest.skip("Orthanc not installed (make system-deps installs it)")
    work = tmp_path_factory.mktemp("orthanc")
    scp_port = free_port()
    server = OrthancServer(work / "server", modalities={"radapp": (LOCAL_AE, "127.0.0.1", scp_port)}).start()
    fx = ArchiveFixture(server=server, scp_port=scp_port)
    specs = [
        ("jane", "P001", "DOE^JANE", dt.date(2020, 3, 1), "ACC001", "CT"),
        ("rich", "P002", "ROE^RICH", dt.date(2021, 6, 15), "ACC002", "CT"),
        ("pat", "P003", "POE^PAT", dt.date(2022, 1, 10), "ACC003", "MR"),
    ]
    for i, (label, pid, name, date, acc, modality) in enumerate(specs):
        uid, paths = make_ct_study(
            work / "src" / label,
            patient_id=pid,
            patient_name=name,
            study_date=date,
            accession=acc,
            modality=modality,
            slices=3 + i,
            seed=i,
        )
        assert server.upload(paths) == len(paths)
        fx.studies[label], fx.files[label] = uid, paths
    if CIP_SERIES.is_dir():
        cip = sorted(CIP_SERIES.glob("*.dcm"))
        assert server.upload(cip) == len(cip)
        import pydicom

        fx.studies["cip"] = str(pydicom.dcmread(cip[0], stop_before_pixels=True).StudyInstanceUID)
        fx.files["cip"] = cip
    try:
        yield fx
    finally:
        server.stop()


@pytest.fixture()
def storescp(tmp_path: Path) -> Iterator[StoreSCPServer]:
    """DCMTK storescp on loopback, as a second, independent peer."""
    if not STORESCP_BIN:
        pytest.skip("dcmtk not installed (make system-deps installs it)")
    server = StoreSCPServer(tmp_path / "storescp").start()
    try:
        yield server
    finally:
        server.stop()
