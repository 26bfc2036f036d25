"""Hostile DICOM inputs made from real files: a corrupt RLE slice, an absurd image size.

Shared by the reliability tests and the fuzz harness (``tests/fuzz``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pydicom
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import RLELossless


def make_corrupt_rle(path: Path) -> Path:
    """Re-encode the slice at ``path`` with pydicom's RLE encoder, then damage its segments in place.

    The segment offsets stay valid but every byte after the header becomes a "repeat the next byte
    128 times" run, so the decoded rows overflow the frame: pylibjpeg-rle's Rust decoder panics
    (``pyo3_runtime.PanicException``, a ``BaseException``).
    """
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    first_segment = struct.unpack("<L", frame[4:8])[0]
    frame[first_segment:] = b"\x81" * (len(frame) - first_segment)
    ds.PixelData = encapsulate([bytes(frame)])
    ds.save_as(path)
    return path


def make_absurd_size(path: Path, rows: int = 65535, columns: int = 65535, pixel_bytes: int = 8192) -> Path:
    """Claim ``rows`` x ``columns`` in the header of the slice at ``path``; keep ``pixel_bytes`` of pixels."""
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = rows, columns
    ds.PixelData = bytes(ds.PixelData[:pixel_bytes]).ljust(pixel_bytes, b"\x00")
    ds.save_as(path)
    return path
