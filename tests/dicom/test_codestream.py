"""What real compressed frames declare about themselves (pydicom's JPEG 2000, JPEG-LS and JPEG files)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import generate_frames

from radiology_app.dicom.codestream import codestream_mismatch, read_frame_info

FILES = Path(pydicom.data.__file__).parent / "test_files"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("JPEG2000.dcm", "JPEG 2000"),
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS"),
        ("SC_rgb_jpeg_dcmtk.dcm", "JPEG (DCT)"),
    ],
)
def test_real_frames_agree_with_their_headers(name: str, family: str) -> None:
    ds = pydicom.dcmread(FILES / name)
    frame = next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1)))
    info = read_frame_info(frame)
    assert info is not None and info.family == family
    assert (info.rows, info.columns) == (ds.Rows, ds.Columns)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    assert codestream_mismatch(syntax, frame, ds.Rows, ds.Columns, ds.SamplesPerPixel) is None
    assert "but the header says" in str(codestream_mismatch(syntax, frame, ds.Rows, 2 * ds.Columns, 1))


def test_unrecognised_bytes_are_not_judged() -> None:
    assert read_frame_info(b"\x00" * 64) is None
    assert codestream_mismatch("1.2.840.10008.1.2.5", b"\xff\xd8", 1, 1, 1) is None
