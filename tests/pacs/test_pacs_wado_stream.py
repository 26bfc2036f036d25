"""WADO-RS retrieval as a stream: the multipart reader, progress, cancel, and what is not DICOM."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ArchiveFixture

from radiology_app.core.errors import OperationCancelled
from radiology_app.core.progress import CancelToken, Progress
from radiology_app.pacs import web

BOUNDARY = b"b0und"


def _multipart(bodies: list[bytes]) -> bytes:
    out = b""
    for body in bodies:
        out += b"--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n" + body + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n"


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 10_000])
def test_multipart_parts_come_out_whole_however_the_stream_is_cut(chunk: int) -> None:
    bodies = [b"first\r\n--b0un", b"", b"x" * 300 + b"\r\n\r\n"]  # near-delimiters and line breaks inside
    stream = _multipart(bodies)
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    assert list(web.iter_multipart(chunks, BOUNDARY)) == bodies


def test_a_cut_off_multipart_stream_is_an_error() -> None:
    stream = _multipart([b"whole", b"cut off"])
    with pytest.raises(ValueError, match="ended inside a part"):
        list(web.iter_multipart([stream[:-40]], BOUNDARY))


def test_a_part_that_is_not_dicom_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a DICOM file"):
        web._write_instance(b"<html>busy</html>", tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def web_archive(archive: ArchiveFixture) -> ArchiveFixture:
    if not archive.server.has_dicomweb:
        pytest.skip("Orthanc DICOMweb plugin not installed (Debian package orthanc-dicomweb)")
    return archive


def test_wado_reports_each_instance_against_the_series_counts(
    web_archive: ArchiveFixture, tmp_path: Path
) -> None:
    seen: list[Progress] = []
    result = web.wado_retrieve_study(
        web_archive.server.node, web_archive.studies["pat"], tmp_path, on_progress=seen.append
    )
    n = len(web_archive.files["pat"])
    assert len(result.files) == n and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in result.files
    )
    assert [(p.done, p.total) for p in seen] == [(k, n) for k in range(1, n + 1)]


def test_wado_cancel_stops_and_keeps_what_arrived(web_archive: ArchiveFixture, tmp_path: Path) -> None:
    token = CancelToken()
    with pytest.raises(OperationCancelled):
        web.wado_retrieve_study(
            web_archive.server.node,
            web_archive.studies["pat"],
            tmp_path,
            on_progress=lambda p: token.cancel(),
            cancel=token,
        )
    kept = list(tmp_path.iterdir())
    assert kept and all(p.suffix == ".dcm" and not p.name.startswith(".") for p in kept)  # whole files only
