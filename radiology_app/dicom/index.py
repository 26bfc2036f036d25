"""Find DICOM files (folders, ZIP files, DICOMDIR) and read their headers.

Only headers are read (``stop_before_pixels``); the pixel data element is checked for presence and
truncation from its length alone. Every file that cannot be imported becomes an
:class:`~radiology_app.core.types.ImportIssue` with its path and a reason; nothing here raises on bad data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _read_file_meta_info, data_element_generator, read_preamble
from pydicom.uid import UID

from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.core.types import ImportIssue, Instance, Patient, Series, Study
from radiology_app.dicom.zipsafe import ZipLimits, extract_zip, is_zip_file

log = logging.getLogger(__name__)

_PIXEL_TAGS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UC", b"UR", b"UT", b"SV", b"UV"}
_MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: SOP classes that carry pixel data but are not images this app can show or analyse.
UNSUPPORTED_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose Storage",
    "1.2.840.10008.5.1.4.1.1.30": "Parametric Map Storage",
    "1.2.840.10008.5.1.4.1.1.66": "Raw Data Storage",
}
_BINARY_VRS = {
    "US", "UL", "SS", "SL", "FL", "FD", "AT", "OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ", "SV", "UV",
}  # fmt: skip
_SHARED_FG = 0x52009229
_PER_FRAME_FG = 0x52009230
_DIRECTORY_RECORDS = 0x00041220
#: Bytes of pixel data sampled into the content hash: at the start, the middle and the end.
_SAMPLE_BYTES = 1024
_DEFLATED = "1.2.840.10008.1.2.1.99"
#: The most a deflated data set may inflate to, bytes.
MAX_INFLATED_BYTES = 1 << 30


@dataclass(frozen=True)
class CandidateFile:
    """A file to index: where to read it and what the user imported (file path, or ZIP path + member)."""

    path: str
    source_path: str


@dataclass(frozen=True)
class HeaderRecord:
    """The header of one importable DICOM file, split into the domain types."""

    patient: Patient
    study: Study
    series: Series
    instance: Instance
    source_path: str


# -- finding files ---------------------------------------------------------------------------------


def find_files(
    paths: Sequence[Path],
    *,
    managed_dir: Path,
    zip_limits: ZipLimits | None = None,
    cancel: CancelToken | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[list[CandidateFile], list[ImportIssue]]:
    """List the files to index under ``paths``.

    Folders are walked without following symbolic links out of the folder; ZIP files are extracted
    safely into ``managed_dir``; a DICOMDIR given directly contributes the files it references.

    Parameters
    ----------
    paths
        Files, folders, ZIP files or DICOMDIR files.
    managed_dir
        Where ZIP members are extracted.
    zip_limits
        Bounds for ZIP extraction.
    cancel, on_progress
        Cancellation token and progress callback (unit: files found).

    Returns
    -------
    files, issues
        Candidate files (each once) and the paths refused before reading (missing, links out of the
        tree, unsafe ZIP members...).
    """
    files: list[CandidateFile] = []
    issues: list[ImportIssue] = []
    seen: set[str] = set()

    def add(path: str, source: str) -> None:
        if path in seen:
            return
        seen.add(path)
        files.append(CandidateFile(path, source))
        if on_progress is not None and len(files) % 500 == 0:
            report(on_progress, len(files), None, "files", "finding files")

    def add_file(p: str, source: str | None = None, *, sniff_zip: bool = False) -> None:
        # Walked files are opened as ZIP only when named *.zip (sniffing every file costs an open);
        # a path given directly is always sniffed.
        if (sniff_zip or p.lower().endswith(".zip")) and is_zip_file(Path(p)):
            members, zip_issues = extract_zip(Path(p), managed_dir, limits=zip_limits, cancel=cancel)
            issues.extend(zip_issues)
            for m in members:
                add(str(m.path), m.source_path)
            return
        add(p, source or p)

    for raw in paths:
        check_cancel(cancel)
        root = os.path.abspath(os.path.expanduser(str(raw)))
        if not os.path.lexists(root):
            issues.append(ImportIssue(root, "path does not exist"))
        elif os.path.isdir(root):
            for p in _walk(root, issues, cancel):
                add_file(p)
        elif os.path.basename(root).upper() == "DICOMDIR":
            add_file(root)
            for p in _dicomdir_files(root, issues):
                add_file(p)
        else:
            add_file(os.path.realpath(root), root, sniff_zip=True)
    return files, issues


def _walk(root: str, issues: list[ImportIssue], cancel: CancelToken | None) -> Iterator[str]:
    """Yield the regular files under ``root``; links are followed only when they stay inside it."""
    real_root = os.path.realpath(root)
    stack = [root]
    n = 0
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            issues.append(ImportIssue(folder, f"cannot list folder ({exc.strerror or exc})"))
            continue
        subdirs: list[str] = []
        for entry in entries:
            n += 1
            if n % 1000 == 0:
                check_cancel(cancel)
            try:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not (target == real_root or target.startswith(real_root + os.sep)):
                        issues.append(
                            ImportIssue(
                                entry.path, "symbolic link points outside the imported folder; not followed"
                            )
                        )
                    elif os.path.isfile(target):
                        yield target
                    # a link to a folder inside the tree: that folder is walked anyway
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield entry.path
                else:
                    issues.append(ImportIssue(entry.path, "not a regular file"))
            except OSError as exc:
                issues.append(ImportIssue(entry.path, f"cannot read ({exc.strerror or exc})"))
        stack.extend(reversed(subdirs))


def _dicomdir_files(dicomdir: str, issues: list[ImportIssue]) -> list[str]:
    """The files a DICOMDIR references that exist inside its folder."""
    base = os.path.dirname(dicomdir)
    real_base = os.path.realpath(base)
    out: list[str] = []
    try:
        ds = pydicom.dcmread(dicomdir, force=True)
        records = list(ds.get("DirectoryRecordSequence", []))
    except Exception as exc:
        issues.append(ImportIssue(dicomdir, f"unreadable DICOMDIR ({type(exc).__name__}: {exc})"))
        return out
    for rec in records:
        ref = rec.get("ReferencedFileID")
        if not ref:
            continue
        parts = (
            [str(p) for p in ref]
            if isinstance(ref, list | tuple | pydicom.multival.MultiValue)
            else [str(ref)]
        )
        path = os.path.join(base, *parts)
        real = os.path.realpath(path)
        if not real.startswith(real_base + os.sep):
            issues.append(ImportIssue(path, "DICOMDIR reference points outside its folder; refused"))
        elif not os.path.isfile(real):
            issues.append(ImportIssue(path, "referenced by DICOMDIR but missing"))
        else:
            out.append(real)
    return out


# -- reading headers -------------------------------------------------------------------------------


def index_files(
    files: Sequence[CandidateFile],
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[HeaderRecord | ImportIssue]:
    """Read the header of each file, yielding a record or an issue per file.

    Parameters
    ----------
    files
        Candidates from :func:`find_files`.
    on_progress
        Called every 64 files (unit: files).
    cancel
        Polled every 64 files.
    """
    total = len(files)
    for k, f in enumerate(files):
        if k % 64 == 0:
            check_cancel(cancel)
            report(on_progress, k, total, "files", "reading headers")
        yield read_header(f.path, f.source_path)
    report(on_progress, total, total, "files", "reading headers")


def read_header(path: str, source_path: str | None = None) -> HeaderRecord | ImportIssue:
    """Read one file's header.

    Parameters
    ----------
    path
        The file on disk.
    source_path
        What to call it in issues and the database (defaults to ``path``).

    Returns
    -------
    HeaderRecord or ImportIssue
        The record when the file is an importable image, otherwise the reason it is not.
    """
    src = source_path or path
    try:
        return _read_header(path, src)
    except Exception as exc:
        log.debug("header read failed", exc_info=True)
        return ImportIssue(src, f"unreadable DICOM ({type(exc).__name__}: {exc})"[:500])


def _read_header(path: str, src: str) -> HeaderRecord | ImportIssue:
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        return ImportIssue(src, f"cannot open file ({exc.strerror or exc})")
    with fp:
        size = os.fstat(fp.fileno()).st_size
        if size == 0:
            return ImportIssue(src, "empty file (0 bytes)")
        head = fp.read(132)
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            return ImportIssue(
                src, "a ZIP archive not named *.zip, or inside another ZIP: not opened (import it directly)"
            )
        has_preamble = len(head) == 132 and head[128:132] == b"DICM"
        if not has_preamble and not _looks_like_raw_dataset(head):
            return ImportIssue(src, "not a DICOM file (no DICM marker and no DICOM data set at the start)")
        fast = fast_read_dataset(fp) if has_preamble else None
        if fast is not None:
            ds, implicit = fast
            pixel = _pixel_element(fp, ds, size, implicit=implicit, little=True)
        else:
            fp.seek(0)
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=not has_preamble)
            except InvalidDicomError as exc:
                return ImportIssue(src, f"not a DICOM file ({exc})")
            except (EOFError, struct.error) as exc:
                return ImportIssue(src, f"truncated (the file ends inside the header: {type(exc).__name__})")
            if str(getattr(ds.file_meta, "TransferSyntaxUID", "")) == _DEFLATED:
                inflated = _inflated_data_set(fp)
                if isinstance(inflated, str):
                    return ImportIssue(src, inflated)
                inner = io.BytesIO(inflated)
                for _ in data_element_generator(inner, False, True, stop_when=_at_pixel_data):
                    pass
                pixel = _pixel_element(inner, ds, len(inflated), implicit=False, little=True)
                sample = _pixel_sample(lambda n, at: inflated[at : at + n], pixel, len(inflated))
                return _to_record(ds, path, src, size, pixel, sample)
            pixel = _pixel_element(fp, ds, size)
        fd = fp.fileno()
        sample = _pixel_sample(lambda n, at: os.pread(fd, n, at), pixel, size)
    return _to_record(ds, path, src, size, pixel, sample)


def _pixel_sample(read: Callable[[int, int], bytes], pixel: _Pixel | None, size: int) -> bytes:
    """A cheap fingerprint of the pixels: three small reads (``read(n, offset)``), not the whole file."""
    if pixel is None or pixel.truncated is not None:
        return b""
    end = size if pixel.length < 0 else pixel.value_start + pixel.length
    offsets = (pixel.value_start, (pixel.value_start + end) // 2, end - _SAMPLE_BYTES)
    return b"".join(read(_SAMPLE_BYTES, max(pixel.value_start, o)) for o in offsets)


def _inflated_data_set(fp: Any) -> bytes | str:
    """The inflated data set of a Deflated Explicit VR Little Endian file, or why it cannot be had.

    At most :data:`MAX_INFLATED_BYTES` are inflated: a small file that would inflate to gigabytes (a
    "deflate bomb") is refused instead of filling the memory.
    """
    fp.seek(0)
    read_preamble(fp, False)
    _read_file_meta_info(fp)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(fp.read(), MAX_INFLATED_BYTES)
    except zlib.error as exc:
        return f"corrupt deflated data set ({exc})"
    if inflater.unconsumed_tail:
        return f"deflated data set inflates to more than {MAX_INFLATED_BYTES >> 20} MiB; refused"
    return inflated


def _not_group_2(tag: int, vr: str | None, length: int) -> bool:
    return tag >> 16 != 2


def _at_pixel_data(tag: int, vr: str | None, length: int) -> bool:
    return tag in _PIXEL_TAGS


def fast_read_dataset(fp: Any) -> tuple[Dataset, bool] | None:
    """Read meta and header of a well-formed little-endian Part 10 file (``fp`` just after ``DICM``).

    The same element parser as :func:`pydicom.dcmread` (``data_element_generator``), without the
    wrapper work a header-only read does not need; about a third faster. Returns the data set
    (elements still raw) and whether it is implicit VR, or ``None`` for anything unusual (big endian,
    deflate, meta without a transfer syntax, encoding that disagrees with it, parse errors), which the
    caller then reads with :func:`pydicom.dcmread`. The file is left at the pixel data element.
    """
    try:
        meta = {e.tag: e for e in data_element_generator(fp, False, True, stop_when=_not_group_2)}
        raw_ts = meta.get(0x00020010)  # type: ignore[call-overload]
        value = getattr(raw_ts, "value", None)
        if not isinstance(value, bytes):
            return None
        ts = value.decode("ascii", "replace").strip(" \x00")
        if ts == "1.2.840.10008.1.2":
            implicit = True
        elif (
            ts == "1.2.840.10008.1.2.1"
            or ts.startswith("1.2.840.10008.1.2.4.")
            or ts == "1.2.840.10008.1.2.5"
        ):
            implicit = False
        else:
            return None
        start = fp.tell()
        peek = fp.read(6)
        fp.seek(start)
        if len(peek) == 6 and (65 <= peek[4] <= 90 and 65 <= peek[5] <= 90) == implicit:
            return None  # the data set is not encoded as its transfer syntax says
        elems = {e.tag: e for e in data_element_generator(fp, implicit, True, stop_when=_at_pixel_data)}
        ds = Dataset(elems)
        ds.file_meta = FileMetaDataset(meta)
        ds.set_original_encoding(implicit, True, None)
        return ds, implicit
    except Exception:
        return None


def _looks_like_raw_dataset(head: bytes) -> bool:
    """Whether a file without preamble starts like a DICOM data set (group 0000, 0002, 0004 or 0008)."""
    if len(head) < 8:
        return False
    groups = (int.from_bytes(head[0:2], "little"), int.from_bytes(head[0:2], "big"))
    return any(g in (0x0000, 0x0002, 0x0004, 0x0008) for g in groups)


@dataclass(frozen=True)
class _Pixel:
    tag: int
    length: int  # -1 for encapsulated (undefined length)
    truncated: str | None
    value_start: int = 0


def _pixel_element(
    fp: Any, ds: Dataset, size: int, *, implicit: bool | None = None, little: bool | None = None
) -> _Pixel | None:
    """Inspect the element at the file position (where ``stop_before_pixels`` left it)."""
    pos = fp.tell()
    head = fp.read(12)
    if 0 < len(head) < 8:
        return _Pixel(0, 0, "truncated (the file ends inside a data element header)")
    if len(head) < 8:
        return None
    if little is None:
        little = ds.is_little_endian if ds.is_little_endian is not None else True
    if implicit is None:
        implicit = ds.is_implicit_VR if ds.is_implicit_VR is not None else False
    endian = "<" if little else ">"
    group, elem = struct.unpack(endian + "HH", head[:4])
    tag = group << 16 | elem
    if tag not in _PIXEL_TAGS:
        return None
    vr = head[4:6]
    if not implicit and not (len(vr) == 2 and 65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        implicit = True  # transfer syntax says explicit VR, the data set is implicit (seen in the wild)
    if implicit:
        (length,) = struct.unpack(endian + "L", head[4:8])
        value_start = pos + 8
    elif head[4:6] in _LONG_VRS:
        if len(head) < 12:
            return _Pixel(tag, 0, "truncated inside the pixel data element header")
        (length,) = struct.unpack(endian + "L", head[8:12])
        value_start = pos + 12
    else:
        (length,) = struct.unpack(endian + "H", head[6:8])
        value_start = pos + 8
    if length == 0xFFFFFFFF:
        return _Pixel(tag, -1, _check_encapsulated(fp, value_start, size, endian), value_start)
    if value_start + length > size:
        return _Pixel(
            tag, length, f"truncated (pixel data needs {length} bytes, file has {max(0, size - value_start)})"
        )
    if length == 0:
        return _Pixel(tag, 0, "empty pixel data")
    return _Pixel(tag, length, None, value_start)


def _check_encapsulated(fp: Any, pos: int, size: int, endian: str) -> str | None:
    """Walk the items of encapsulated pixel data (by their lengths only); return a reason if broken."""
    items = 0
    while True:
        if pos + 8 > size:
            return f"truncated (compressed pixel data ends after {items} fragment(s) without its end marker)"
        fp.seek(pos)
        group, elem, length = struct.unpack(endian + "HHL", fp.read(8))
        if (group, elem) == (0xFFFE, 0xE0DD):
            return None
        if (group, elem) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
            return "corrupt compressed pixel data (unexpected element inside the fragments)"
        pos += 8 + length
        items += 1
        if pos > size:
            return f"truncated (compressed pixel data fragment {items} runs past the end of the file)"


def _last_value_short(ds: Dataset) -> bool:
    """Whether the last element read has fewer value bytes than its header announced (file cut short)."""
    if not ds._dict:
        return False
    last: Any = ds._dict[max(ds._dict)]  # elements are read in ascending tag order
    length = getattr(last, "length", None)
    value = getattr(last, "value", None)
    if not isinstance(length, int) or length == 0xFFFFFFFF or not isinstance(value, bytes):
        return False
    return len(value) < length


_TAG_VR: dict[str, tuple[int, str]] = {}


def _tag_vr(name: str) -> tuple[int, str]:
    spec = _TAG_VR.get(name)
    if spec is None:
        tag = tag_for_keyword(name)
        if tag is None:
            raise KeyError(name)
        spec = _TAG_VR[name] = (int(tag), dictionary_VR(tag))
    return spec


def _raw_ascii(ds: Dataset | None, name: str) -> str | None:
    """The value of a not-yet-converted text element when it is plain ASCII (fast path), else ``None``.

    Converting every element through pydicom costs more than reading the header; plain ASCII text
    needs no character-set handling, so it is decoded here directly. Text with an ESC byte is ISO 2022
    (7-bit, but with escape sequences that switch character sets) and goes through pydicom.
    """
    if ds is None:
        return None
    tag, vr = _TAG_VR.get(name) or _tag_vr(name)
    elem = ds._dict.get(tag)  # type: ignore[call-overload]
    if elem is None:
        return ""
    value = elem.value
    # ISO 2022 text (e.g. ISO 2022 IR 87, Japanese) is 7-bit too: its escape sequences need decoding
    if type(value) is bytes and value.isascii() and b"\x1b" not in value and vr not in _BINARY_VRS:
        return value.decode("ascii").strip(" \x00")
    return None


def _str(ds: Dataset | None, name: str) -> str:
    fast = _raw_ascii(ds, name)
    if fast is not None:
        return fast
    if ds is None:
        return ""
    try:
        v = ds.get(name)
    except Exception:
        return ""
    if v is None:
        return ""
    if isinstance(v, list | tuple | pydicom.multival.MultiValue):
        return "\\".join(str(x) for x in v)
    return str(v).strip().replace("\x00", "")


#: Values that scanners and converters write into a descriptive text attribute meaning "not recorded".
_PLACEHOLDER_TEXT = frozenset({"none", "null", "n/a", "unknown"})
#: Values of ContrastBolusAgent that mean no contrast was given or recorded.
_NO_CONTRAST_TEXT = _PLACEHOLDER_TEXT | {"no", "no contrast", "non contrast", "non-contrast", "noncontrast"}


def _text(ds: Dataset, name: str, absent: frozenset[str] = _PLACEHOLDER_TEXT) -> str:
    """A descriptive text attribute, ``""`` when missing or a placeholder such as ``None``."""
    value = _str(ds, name)
    return "" if value.strip().lower() in absent else value


def _int(ds: Dataset, name: str) -> int | None:
    tag, vr = _tag_vr(name)
    elem = ds._dict.get(tag)  # type: ignore[call-overload]
    if elem is None:
        return None
    value = getattr(elem, "value", None)
    if isinstance(value, bytes):
        try:
            if vr == "US" and len(value) >= 2:
                return int(struct.unpack("<H" if elem.is_little_endian else ">H", value[:2])[0])
            if vr == "IS" and value.isascii():
                text = value.split(b"\\", 1)[0].strip(b" \x00")
                return int(float(text)) if text else None
        except (ValueError, struct.error):
            return None
    try:
        v = ds.get(name)
        if v is None or v == "":
            return None
        if isinstance(v, list | tuple | pydicom.multival.MultiValue):
            v = v[0]
        return int(float(v))
    except Exception:
        return None


def _ds_floats(ds: Dataset, name: str, n: int) -> tuple[float, ...] | None:
    """A decimal-string element as ``n`` floats (fast path on raw bytes), or ``None``."""
    text = _raw_ascii(ds, name)
    if text is None:
        try:
            return _floats(ds.get(name), n)
        except Exception:
            return None
    if not text:
        return None
    try:
        vals = tuple(float(v) for v in text.split("\\"))
    except ValueError:
        return None
    if len(vals) != n or any(v != v for v in vals):
        return None
    return vals


def _floats(seq: Any, n: int) -> tuple[float, ...] | None:
    try:
        if seq is None:
            return None
        vals = tuple(float(v) for v in seq)
    except Exception:
        return None
    if len(vals) != n or any(v != v for v in vals):
        return None
    return vals


def _date(text: str) -> dt.date | None:
    text = text.strip()
    if len(text) >= 8 and text[:8].isdigit():
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            return None
    return None


def _age_years(text: str) -> int | None:
    text = text.strip().upper()
    if len(text) == 4 and text[:3].isdigit():
        n = int(text[:3])
        return {"Y": n, "M": n // 12, "W": n // 52, "D": n // 365}.get(text[3])
    return None


def _first(ds: Dataset, *path: str) -> Any:
    """Follow nested sequence names (first item of each) and return the last attribute, or ``None``."""
    cur: Any = ds
    for name in path:
        try:
            cur = cur.get(name)
        except Exception:
            return None
        if cur is None:
            return None
        if isinstance(cur, pydicom.sequence.Sequence):
            if len(cur) == 0:
                return None
            cur = cur[0]
    return cur


def _to_record(
    ds: Dataset, path: str, src: str, size: int, pixel: _Pixel | None, tail: bytes
) -> HeaderRecord | ImportIssue:
    meta = getattr(ds, "file_meta", None)
    sop_class = _str(ds, "SOPClassUID") or (_str(meta, "MediaStorageSOPClassUID") if meta is not None else "")
    if sop_class == _MEDIA_STORAGE_DIRECTORY or _DIRECTORY_RECORDS in ds._dict:
        return ImportIssue(src, "DICOMDIR (a media directory; the files it references are indexed instead)")
    sop_uid = _str(ds, "SOPInstanceUID") or (
        _str(meta, "MediaStorageSOPInstanceUID") if meta is not None else ""
    )
    study_uid = _str(ds, "StudyInstanceUID")
    series_uid = _str(ds, "SeriesInstanceUID")
    if not sop_uid and not study_uid and not series_uid and len(ds) == 0:
        return ImportIssue(src, "not a DICOM file (no readable data elements)")
    if pixel is None:
        if _last_value_short(ds):
            return ImportIssue(src, "truncated (the file ends inside the header)")
        name = UID(sop_class).name if sop_class else "unknown SOP class"
        hint = "; the file may be truncated" if name.endswith("Image Storage") else ""
        return ImportIssue(src, f"no pixel data ({name}{hint})")
    if pixel.truncated:
        return ImportIssue(src, pixel.truncated)
    if sop_class in UNSUPPORTED_SOP_CLASSES:
        return ImportIssue(src, f"unsupported SOP class ({UNSUPPORTED_SOP_CLASSES[sop_class]})")
    missing = [
        n
        for n, v in (
            ("SOPInstanceUID", sop_uid),
            ("StudyInstanceUID", study_uid),
            ("SeriesInstanceUID", series_uid),
        )
        if not v
    ]
    if missing:
        return ImportIssue(src, f"missing {', '.join(missing)}")
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    if not rows or not cols:
        return ImportIssue(src, "image without Rows/Columns")
    frames = _int(ds, "NumberOfFrames") or 1

    ipp = _ds_floats(ds, "ImagePositionPatient", 3)
    iop = _ds_floats(ds, "ImageOrientationPatient", 6)
    spacing = _ds_floats(ds, "PixelSpacing", 2)
    thickness_raw: Any = _str(ds, "SliceThickness") or None
    kernel = _text(ds, "ConvolutionKernel")
    if _SHARED_FG in ds._dict or _PER_FRAME_FG in ds._dict:
        ipp = ipp or _floats(
            _first(ds, "PerFrameFunctionalGroupsSequence", "PlanePositionSequence", "ImagePositionPatient"), 3
        )
        iop = (
            iop
            or _floats(
                _first(
                    ds,
                    "SharedFunctionalGroupsSequence",
                    "PlaneOrientationSequence",
                    "ImageOrientationPatient",
                ),
                6,
            )
            or _floats(
                _first(
                    ds,
                    "PerFrameFunctionalGroupsSequence",
                    "PlaneOrientationSequence",
                    "ImageOrientationPatient",
                ),
                6,
            )
        )
        spacing = spacing or _floats(
            _first(ds, "SharedFunctionalGroupsSequence", "PixelMeasuresSequence", "PixelSpacing"), 2
        )
        if thickness_raw is None:
            thickness_raw = _first(
                ds, "SharedFunctionalGroupsSequence", "PixelMeasuresSequence", "SliceThickness"
            )
        if not kernel:
            k = _first(ds, "SharedFunctionalGroupsSequence", "CTReconstructionSequence", "ConvolutionKernel")
            kernel = (
                "\\".join(str(x) for x in k) if isinstance(k, pydicom.multival.MultiValue) else str(k or "")
            )
    try:
        thickness = float(thickness_raw) if thickness_raw not in (None, "") else None
    except (TypeError, ValueError):
        thickness = None

    ts = _str(meta, "TransferSyntaxUID")
    image_type = tuple(v.strip().upper() for v in _str(ds, "ImageType").split("\\") if v.strip())
    key = "|".join(
        map(
            str,
            (sop_class, sop_uid, study_uid, series_uid, ipp, iop, rows, cols, frames, ts, pixel.length, size),
        )
    )
    h = hashlib.sha1(key.encode("utf-8", "replace"))
    h.update(tail)

    patient_id = _str(ds, "PatientID")
    patient = Patient(
        patient_id=patient_id,
        name=_str(ds, "PatientName"),
        sex=(_str(ds, "PatientSex").upper()[:1] or None),
        birth_date=_date(_str(ds, "PatientBirthDate")),
    )
    if patient.sex not in (None, "F", "M", "O"):
        patient = Patient(patient.patient_id, patient.name, None, patient.birth_date)
    study = Study(
        study_uid=study_uid,
        patient_id=patient_id,
        study_date=_date(_str(ds, "StudyDate")),
        study_time=_str(ds, "StudyTime"),
        accession_number=_str(ds, "AccessionNumber"),
        description=_text(ds, "StudyDescription"),
        referring_physician=_text(ds, "ReferringPhysicianName"),
        institution=_text(ds, "InstitutionName"),
        patient_age_years=_age_years(_str(ds, "PatientAge")),
    )
    series = Series(
        series_uid=series_uid,
        study_uid=study_uid,
        modality=_str(ds, "Modality").upper(),
        description=_text(ds, "SeriesDescription"),
        series_number=_int(ds, "SeriesNumber"),
        image_type=image_type,
        convolution_kernel=kernel,
        slice_thickness_mm=thickness,
        manufacturer=_text(ds, "Manufacturer"),
        model_name=_text(ds, "ManufacturerModelName"),
        body_part=_text(ds, "BodyPartExamined"),
        contrast_agent=_text(ds, "ContrastBolusAgent", _NO_CONTRAST_TEXT),
    )
    instance = Instance(
        sop_instance_uid=sop_uid,
        sop_class_uid=sop_class,
        series_uid=series_uid,
        path=path,
        instance_number=_int(ds, "InstanceNumber"),
        image_position_lps_mm=ipp,  # type: ignore[arg-type]
        image_orientation=iop,  # type: ignore[arg-type]
        pixel_spacing_mm=spacing,  # type: ignore[arg-type]
        rows=rows,
        columns=cols,
        number_of_frames=frames,
        transfer_syntax_uid=ts,
        content_hash=h.hexdigest(),
    )
    return HeaderRecord(patient, study, series, instance, src)
