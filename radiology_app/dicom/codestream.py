"""What a compressed frame says about itself: its coding family and image size, read from its markers.

Decoders trust the data set's header; when it disagrees with the frame (a JPEG-LS stream under a JPEG
Lossless transfer syntax, a header with more columns than the stream), some of them hang or abort the
process instead of raising. :func:`codestream_mismatch` finds such disagreements from the first few
bytes of the frame, before any decoder runs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: Start-of-frame markers of ITU T.81 (JPEG) and T.87 (JPEG-LS, SOF55 = 0xF7), by family.
_SOF_FAMILY = {
    **{m: "JPEG (DCT)" for m in (0xC0, 0xC1, 0xC2, 0xC5, 0xC6, 0xC9, 0xCA, 0xCD, 0xCE)},
    **{m: "JPEG Lossless" for m in (0xC3, 0xC7, 0xCB, 0xCF)},
    0xF7: "JPEG-LS",
}
#: The family each JPEG-based transfer syntax announces.
_SYNTAX_FAMILY = {
    "1.2.840.10008.1.2.4.50": "JPEG (DCT)",
    "1.2.840.10008.1.2.4.51": "JPEG (DCT)",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless",
    "1.2.840.10008.1.2.4.80": "JPEG-LS",
    "1.2.840.10008.1.2.4.81": "JPEG-LS",
    **{f"1.2.840.10008.1.2.4.{n}": "JPEG 2000" for n in (90, 91, 201, 202, 203)},
}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length


@dataclass(frozen=True)
class FrameInfo:
    """What a compressed frame declares: coding family, rows, columns and components (0 = not given)."""

    family: str
    rows: int
    columns: int
    components: int


def read_frame_info(frame: bytes) -> FrameInfo | None:
    """The family and size a JPEG, JPEG-LS or JPEG 2000 frame declares; ``None`` when not recognised."""
    if frame[:2] == b"\xff\x4f" and frame[2:4] == b"\xff\x51" and len(frame) >= 42:
        x, y, x0, y0 = struct.unpack(">LLLL", frame[8:24])
        (components,) = struct.unpack(">H", frame[40:42])
        return FrameInfo("JPEG 2000", max(0, y - y0), max(0, x - x0), components)
    if frame[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(frame):
        if frame[pos] != 0xFF:
            return None
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", frame[pos + 2 : pos + 4])
        if marker in _SOF_FAMILY:
            if pos + 10 > len(frame):
                return None
            rows, columns = struct.unpack(">HH", frame[pos + 5 : pos + 9])
            return FrameInfo(_SOF_FAMILY[marker], rows, columns, frame[pos + 9])
        if marker == 0xDA or length < 2:  # scan data before any frame header: nothing to learn
            return None
        pos += 2 + length
    return None


def codestream_mismatch(syntax: str, frame: bytes, rows: int, columns: int, samples: int) -> str | None:
    """Why the first frame disagrees with the transfer syntax or the header's size, or ``None``.

    Frames that are not recognised (other syntaxes, unusual wrappers) are not judged.
    """
    expected = _SYNTAX_FAMILY.get(syntax)
    if expected is None:
        return None
    info = read_frame_info(frame)
    if info is None:
        return None
    if info.family != expected:
        return f"the compressed frame is {info.family} but the transfer syntax says {expected}"
    if (info.rows and info.rows != rows) or info.columns != columns:
        return f"the compressed frame is {info.rows} x {info.columns} but the header says {rows} x {columns}"
    if info.components and info.components != samples:
        return f"the compressed frame has {info.components} component(s) but the header says {samples}"
    return None
