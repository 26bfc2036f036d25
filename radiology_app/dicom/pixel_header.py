"""Header sanity before any pixel buffer is allocated or decoder runs.

The image size a header claims is checked against the memory budget, against the length of native
pixel data, and against what a compressed first frame declares (:mod:`radiology_app.dicom.codestream`).
A header that claims 65535 x 65535 pixels with 8 KB of pixel data is refused here with its reason,
instead of becoming a 632 GiB allocation or a decoder crash.
"""

from __future__ import annotations

import os

import pydicom
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from radiology_app.core.errors import VolumeError
from radiology_app.core.guard import one_line
from radiology_app.dicom.codestream import codestream_mismatch

#: Uncompressed little-endian transfer syntaxes (the fast path reads them without a decoder).
NATIVE_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
#: Every transfer syntax whose pixel data is not encapsulated.
_NATIVE_TS = NATIVE_LE | {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}

#: Bytes per voxel a volume may need at its peak (int16 promoted to float32 when the rescale is odd).
_PEAK_BYTES_PER_VOXEL = 4
#: Share of the machine's physical memory one volume may take.
_MEMORY_SHARE = 0.5
_FALLBACK_BUDGET_BYTES = 4 << 30
_GIB = float(1 << 30)


def volume_memory_budget_bytes() -> int:
    """The most memory one volume may take: half the physical memory (4 GiB where it is unknown)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_BUDGET_BYTES
    return int(total * _MEMORY_SHARE) if total > 0 else _FALLBACK_BUDGET_BYTES


def check_memory_budget(voxels: int, what: str, budget_bytes: int, path: str | None = None) -> None:
    """Refuse (``VolumeError``) an image of ``voxels`` voxels that would not fit ``budget_bytes``."""
    need = voxels * _PEAK_BYTES_PER_VOXEL
    if need > budget_bytes:
        raise VolumeError(
            f"{what} needs {need / _GIB:.1f} GiB, more than the {budget_bytes / _GIB:.1f} GiB "
            "memory budget for one volume; refused",
            path,
        )


def _header_int(ds: Dataset, keyword: str, default: int) -> int:
    """An integer header value, ``default`` when absent or empty (pydicom's errors pass through)."""
    value = ds.get(keyword)
    if value in (None, ""):
        return default
    return int(value)


def _first_frame(ds: Dataset, frames: int) -> bytes:
    """The first compressed frame of encapsulated pixel data (``b""`` when it cannot be had)."""
    try:
        return next(generate_frames(ds.PixelData, number_of_frames=frames), b"")
    except Exception:  # broken encapsulation: the decoder reports it
        return b""


def check_pixel_header(
    ds: Dataset, path: str, budget_bytes: int | None = None, pixel_length: int | None = None
) -> None:
    """Check the image header against the pixel data before anything is decoded or allocated.

    Rows x Columns x frames x samples x bytes per sample must fit the memory budget; native
    (uncompressed) pixel data must hold at least that many bytes (``pixel_length`` bytes when given,
    else the length of ``ds.PixelData``); a compressed first frame must be of the family its transfer
    syntax names and of the header's size (:func:`~radiology_app.dicom.codestream.codestream_mismatch`:
    some decoders hang or abort on such disagreements).

    Raises
    ------
    VolumeError
        If a value is missing or absurd, the pixel data is too short, or the image is over budget.
    """
    try:
        rows, cols = _header_int(ds, "Rows", 0), _header_int(ds, "Columns", 0)
        frames = _header_int(ds, "NumberOfFrames", 1)
        samples = _header_int(ds, "SamplesPerPixel", 1)
        bits = _header_int(ds, "BitsAllocated", 16)
    except Exception as exc:  # pydicom raises many types for a malformed element (bad VR, bad text)
        raise VolumeError(f"unreadable image size in the header ({one_line(exc)})", path) from exc
    if min(rows, cols, frames, samples) < 1 or bits < 1:
        raise VolumeError(
            f"impossible image size in the header: {rows} x {cols}, {frames} frame(s), "
            f"{samples} sample(s), {bits} bits",
            path,
        )
    voxels = rows * cols * frames * samples
    budget = budget_bytes or volume_memory_budget_bytes()
    check_memory_budget(voxels, f"an image of {rows} x {cols} x {frames} frame(s)", budget, path)
    syntax = ensure_transfer_syntax(ds)
    if pixel_length is None and syntax in _NATIVE_TS:
        pixel_length = len(ds.get("PixelData") or b"")
    elif pixel_length is None:
        mismatch = codestream_mismatch(syntax, _first_frame(ds, frames), rows, cols, samples)
        if mismatch:
            raise VolumeError(f"{mismatch}; not decoded", path)
    if pixel_length is not None:
        expected = (voxels * bits + 7) // 8
        if pixel_length < expected:
            raise VolumeError(
                f"pixel data is {pixel_length} bytes but Rows x Columns x frames x bytes "
                f"({rows} x {cols} x {frames} x {bits / 8:g}) needs {expected}",
                path,
            )


def ensure_transfer_syntax(ds: Dataset) -> str:
    """The transfer syntax; for a raw data set without file meta, the encoding it was read with."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = pydicom.dataset.FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        if implicit is not None:
            ts = (
                "1.2.840.10008.1.2"
                if implicit
                else "1.2.840.10008.1.2.1"
                if little
                else "1.2.840.10008.1.2.2"
            )
            meta.TransferSyntaxUID = pydicom.uid.UID(ts)
    return str(meta.get("TransferSyntaxUID", ""))
