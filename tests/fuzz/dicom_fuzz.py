"""A DICOM fuzz harness: mutate real files, run import, show and volume reading on each, count outcomes.

Seeds are real files: the CIP chest CT (../shared/data, implicit VR), one slice of it re-encoded as
explicit VR little endian, big endian, deflated and RLE (pydicom's encoder), a real LIDC slice, a CT
slice from the test fixtures' writer, and pydicom's bundled test files (JPEG 2000, JPEG-LS, RLE, big
endian, deflate, RGB). Each mutation is seeded (``seed`` and the file's index give the same bytes on
every run): header fields, lengths, VRs, truncations, pixel data, transfer syntaxes, bit flips,
splices, and the corrupt-RLE and absurd-size files of the reliability tests.

Every mutated file goes through what ``radiology-app import`` and ``show`` do (``import_paths`` into a
fresh database, ``choose_series`` + ``read_volume``), and ``read_volume`` on every imported series,
in a worker process with a per-file time limit. Outcomes:

- ``imported`` (with or without a volume; a volume refused with a reason counts under ``refused``);
- ``refused``: not imported, or imported but no volume, with the reason (numbers and paths removed);
- ``traceback``: anything but the application's own error escaped (must be 0);
- ``hang``: the file took longer than the limit (must be 0).

The worker caps one volume at 1 GiB (the application's budget is half the physical memory), so a
header that asks for a huge image is refused quickly instead of filling a shared test machine.

Run it: ``python tests/fuzz/dicom_fuzz.py --count 10000 --seed 1`` (``make fuzz``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import multiprocessing as mp
import re
import shutil
import struct
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
_PYDICOM_SEEDS = (
    "CT_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "JPEG2000.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "image_dfl.dcm",
    "SC_rgb_rle.dcm",
)
_TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.201",
    "1.2.3.4",
)
_VRS = (
    b"OB",
    b"OW",
    b"UN",
    b"SQ",
    b"US",
    b"SS",
    b"UL",
    b"FD",
    b"DS",
    b"IS",
    b"CS",
    b"UI",
    b"PN",
    b"UT",
    b"ZZ",
)
#: Header elements whose values the image path depends on (tag, VR).
_KEY_TAGS = {
    0x00280010: "US",  # Rows
    0x00280011: "US",  # Columns
    0x00280100: "US",  # BitsAllocated
    0x00280101: "US",  # BitsStored
    0x00280102: "US",  # HighBit
    0x00280103: "US",  # PixelRepresentation
    0x00280002: "US",  # SamplesPerPixel
    0x00280008: "IS",  # NumberOfFrames
    0x00280004: "CS",  # PhotometricInterpretation
    0x00200032: "DS",  # ImagePositionPatient
    0x00200037: "DS",  # ImageOrientationPatient
    0x00280030: "DS",  # PixelSpacing
    0x00281052: "DS",  # RescaleIntercept
    0x00281053: "DS",  # RescaleSlope
    0x00180050: "DS",  # SliceThickness
    0x00080005: "CS",  # SpecificCharacterSet
    0x00100010: "PN",  # PatientName
    0x0020000D: "UI",  # StudyInstanceUID
    0x0020000E: "UI",  # SeriesInstanceUID
    0x00080060: "CS",  # Modality
}
_US_VALUES = (0, 1, 2, 3, 7, 8, 12, 15, 16, 17, 24, 32, 64, 255, 4096, 32767, 32768, 65535)
_TEXT_VALUES = (
    b"",
    b"NaN\\NaN\\NaN",
    b"inf",
    b"-1",
    b"1e308",
    b"abc",
    b"0\\0\\0\\0\\0\\0",
    b"1\\0\\0\\0\\1",
    b"999999999999",
    b"\x1b$B;3ED\x1b(B",
    b"ISO 2022 IR 87",
    b"ISO_IR 192",
    b"\xff\xfe\x00",
    b"MONOCHROME1",
    b"RGB",
    b"PALETTE COLOR",
    b"YBR_FULL_422",
    b"A" * 300,
)


# -- seeds ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """One real DICOM file to mutate."""

    name: str
    data: bytes


def _encoded(ds: pydicom.Dataset, syntax: str) -> bytes:
    out = io.BytesIO()
    ds = ds.copy()
    ds.file_meta.TransferSyntaxUID = syntax
    pydicom.dcmwrite(
        out,
        ds,
        implicit_vr=syntax == ImplicitVRLittleEndian,
        little_endian=syntax != ExplicitVRBigEndian,
        force_encoding=True,  # big endian: the header is re-encoded, the pixel bytes are not swapped
    )
    return out.getvalue()


def _writer_slice() -> bytes:
    """A CT slice from the test fixtures' writer (``write_ct_series``)."""
    from radiology_app.core.types import Patient, Study
    from radiology_app.dicom.write_ct import write_ct_series

    hu = np.linspace(-1000, 400, 32 * 32).reshape(1, 32, 32).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        (path,) = write_ct_series(
            hu,
            (1.0, 0.7, 0.7),
            Path(tmp),
            patient=Patient("FUZZ", "Fuzz^Seed", "F", dt.date(1960, 1, 1)),
            study=Study("1.2.826.0.1.3680043.8.498.9001", "FUZZ", dt.date(2024, 1, 1)),
            uid_seed="fuzz",
        )
        return path.read_bytes()


def seed_files() -> list[Seed]:
    """The real files the mutations start from (those of ../shared/data when it is present)."""
    seeds = [Seed("writer-ct", _writer_slice())]
    cip = SHARED / "cip-chest-ct64" / "ct-64Dicom" / "IMG0032.dcm"
    if cip.is_file():
        raw = cip.read_bytes()
        seeds.append(Seed("cip-implicit", raw))
        ds = pydicom.dcmread(io.BytesIO(raw))
        seeds.append(Seed("cip-explicit", _encoded(ds, ExplicitVRLittleEndian)))
        seeds.append(Seed("cip-bigendian", _encoded(ds, ExplicitVRBigEndian)))
        seeds.append(Seed("cip-deflated", _encoded(ds, DeflatedExplicitVRLittleEndian)))
        rle = ds.copy()
        rle.compress(RLELossless, encoding_plugin="pydicom")
        out = io.BytesIO()
        rle.save_as(out)
        seeds.append(Seed("cip-rle", out.getvalue()))
    lidc = sorted((SHARED / "real-chest-ct" / "lidc-idri").glob("LIDC-IDRI-0001/*/*/000001.dcm"))
    if lidc:
        seeds.append(Seed("lidc-explicit", lidc[0].read_bytes()))
    folder = Path(pydicom.data.__file__).parent / "test_files"
    seeds += [
        Seed(f"pydicom-{n}", (folder / n).read_bytes()) for n in _PYDICOM_SEEDS if (folder / n).is_file()
    ]
    return seeds


# -- the raw element walker ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RawElement:
    """Where one top-level data element lies in the file's bytes."""

    tag: int
    vr: bytes | None
    length_offset: int
    length_size: int
    value_offset: int
    length: int
    little: bool


def walk_elements(data: bytes) -> list[RawElement]:
    """The file meta and top-level data elements of an uncompressed-header DICOM file, in order.

    Stops at the first element it cannot follow (undefined length, deflated data set, garbage).
    """
    out: list[RawElement] = []
    if len(data) < 132 or data[128:132] != b"DICM":
        return out
    pos, n = 132, len(data)
    main_explicit, main_little, in_meta = True, True, True
    while pos + 8 <= n:
        little = True if in_meta else main_little
        fmt = "<" if little else ">"
        group, elem = struct.unpack(fmt + "HH", data[pos : pos + 4])
        if in_meta and group != 2:
            in_meta = False
            syntax = next((e for e in out if e.tag == 0x00020010), None)
            uid = data[syntax.value_offset : syntax.value_offset + syntax.length] if syntax else b""
            uid_text = uid.rstrip(b"\x00 ").decode("ascii", "replace")
            if uid_text == DeflatedExplicitVRLittleEndian:
                break
            main_explicit = uid_text != ImplicitVRLittleEndian
            main_little = uid_text != ExplicitVRBigEndian
            continue
        explicit = True if in_meta else main_explicit
        tag = (group << 16) | elem
        vr = data[pos + 4 : pos + 6] if explicit else None
        if explicit and vr in (
            b"OB",
            b"OW",
            b"OF",
            b"OD",
            b"OL",
            b"OV",
            b"SQ",
            b"UC",
            b"UR",
            b"UT",
            b"UN",
            b"SV",
            b"UV",
        ):
            if pos + 12 > n:
                break
            (length,) = struct.unpack(fmt + "L", data[pos + 8 : pos + 12])
            rec = RawElement(tag, vr, pos + 8, 4, pos + 12, length, little)
        elif explicit:
            (length,) = struct.unpack(fmt + "H", data[pos + 6 : pos + 8])
            rec = RawElement(tag, vr, pos + 6, 2, pos + 8, length, little)
        else:
            (length,) = struct.unpack(fmt + "L", data[pos + 4 : pos + 8])
            rec = RawElement(tag, None, pos + 4, 4, pos + 8, length, little)
        out.append(rec)
        if length == 0xFFFFFFFF:
            break
        pos = rec.value_offset + length
    return out


# -- mutations -----------------------------------------------------------------------------------------

Mutation = Callable[[np.random.Generator, bytes, list[RawElement]], bytes]


def _pick(rng: np.random.Generator, elements: list[RawElement], *, key: bool) -> RawElement | None:
    pool = [e for e in elements if e.tag in _KEY_TAGS] if key else elements
    pool = pool or elements
    return pool[int(rng.integers(len(pool)))] if pool else None


def _splice(data: bytes, start: int, end: int, new: bytes) -> bytes:
    return data[:start] + new + data[end:]


def mutate_header_field(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """Give an image-relevant header element a hostile value (same length where the VR is binary)."""
    e = _pick(rng, elements, key=True)
    if e is None:
        return mutate_flip(rng, data, elements)
    vr = e.vr.decode("latin-1") if e.vr else _KEY_TAGS.get(e.tag, "UN")
    if vr == "US" and e.length >= 2:
        value = struct.pack("<H" if e.little else ">H", int(rng.choice(_US_VALUES)))
        return _splice(data, e.value_offset, e.value_offset + 2, value)
    text = _TEXT_VALUES[int(rng.integers(len(_TEXT_VALUES)))]
    if len(text) % 2:
        text += b" "
    fmt = ("<" if e.little else ">") + ("H" if e.length_size == 2 else "L")
    if e.length_size == 2 and len(text) > 0xFFFF:
        text = text[:0xFFFE]
    head = _splice(data, e.length_offset, e.length_offset + e.length_size, struct.pack(fmt, len(text)))
    return _splice(head, e.value_offset, e.value_offset + e.length, text)


def mutate_length(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """Make an element's length field lie."""
    e = _pick(rng, elements, key=bool(rng.integers(2)))
    if e is None:
        return mutate_flip(rng, data, elements)
    limit = 0xFFFF if e.length_size == 2 else 0xFFFFFFFF
    choices = [0, 1, e.length + 1, max(0, e.length - 1), e.length * 2, len(data), limit, limit - 1]
    value = min(int(choices[int(rng.integers(len(choices)))]), limit)
    fmt = ("<" if e.little else ">") + ("H" if e.length_size == 2 else "L")
    return _splice(data, e.length_offset, e.length_offset + e.length_size, struct.pack(fmt, value))


def mutate_vr(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """Change an explicit VR to another (or to nonsense)."""
    explicit = [e for e in elements if e.vr is not None and e.tag >> 16 != 2] or [e for e in elements if e.vr]
    if not explicit:
        return mutate_flip(rng, data, elements)
    e = explicit[int(rng.integers(len(explicit)))]
    vr_at = e.length_offset - (2 if e.length_size == 2 else 4)
    return _splice(data, vr_at, vr_at + 2, _VRS[int(rng.integers(len(_VRS)))])


def mutate_truncate(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """Cut the file: anywhere, inside the header, or inside the pixel data."""
    pixel = next((e for e in elements if e.tag == 0x7FE00010), None)
    where = int(rng.integers(3))
    if where == 0 or pixel is None:
        return data[: int(rng.integers(len(data)))]
    if where == 1:
        return data[: int(rng.integers(132, max(133, pixel.value_offset)))]
    return data[: int(rng.integers(pixel.value_offset, len(data)))]


def mutate_pixels(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """Overwrite bytes of the pixel data (for encapsulated data: item headers, offsets, segments)."""
    pixel = next((e for e in elements if e.tag == 0x7FE00010), None)
    start = pixel.value_offset if pixel is not None else 132
    if start >= len(data):
        return mutate_flip(rng, data, elements)
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 32))):
        k = int(rng.integers(start, min(len(buf), start + 512) if rng.integers(2) else len(buf)))
        buf[k] = int(rng.choice([0x00, 0x80, 0x81, 0xFF, int(rng.integers(256))]))
    return bytes(buf)


def mutate_transfer_syntax(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """Claim another transfer syntax without re-encoding (the data no longer matches it)."""
    e = next((x for x in elements if x.tag == 0x00020010), None)
    if e is None:
        return mutate_flip(rng, data, elements)
    uid = _TRANSFER_SYNTAXES[int(rng.integers(len(_TRANSFER_SYNTAXES)))].encode()
    if len(uid) % 2:
        uid += b"\x00"
    fmt = "<H" if e.length_size == 2 else "<L"
    data = _splice(data, e.length_offset, e.length_offset + e.length_size, struct.pack(fmt, len(uid)))
    data = _splice(data, e.value_offset, e.value_offset + e.length, uid)
    group_length = next((x for x in elements if x.tag == 0x00020000), None)
    if group_length is not None and group_length.length == 4:  # keep the meta group length true
        (old,) = struct.unpack("<L", data[group_length.value_offset : group_length.value_offset + 4])
        new = struct.pack("<L", max(0, old + len(uid) - e.length))
        data = _splice(data, group_length.value_offset, group_length.value_offset + 4, new)
    return data


def mutate_flip(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """Flip a few random bits anywhere."""
    if not data:
        return data
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 17))):
        k = int(rng.integers(len(buf)))
        buf[k] ^= 1 << int(rng.integers(8))
    return bytes(buf)


def mutate_splice(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """Insert or delete a run of bytes (everything after it shifts)."""
    k = int(rng.integers(len(data) + 1))
    if rng.integers(2):
        return data[:k] + rng.bytes(int(rng.integers(1, 64)))
    return data[:k] + data[k + int(rng.integers(1, 64)) :]


def mutate_reencoded(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """Re-encode as RLE, deflate or big endian with pydicom, then damage the result."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        if "PixelData" not in ds or ds.file_meta.TransferSyntaxUID.is_compressed:
            return mutate_pixels(rng, data, elements)
        kind = int(rng.integers(3))
        if kind == 0:
            ds.compress(RLELossless, encoding_plugin="pydicom")
            out = io.BytesIO()
            ds.save_as(out)
            encoded = out.getvalue()
        else:
            encoded = _encoded(ds, ExplicitVRBigEndian if kind == 1 else DeflatedExplicitVRLittleEndian)
    except Exception:
        return mutate_flip(rng, data, elements)
    damage = (mutate_pixels, mutate_truncate, mutate_flip)[int(rng.integers(3))]
    return damage(rng, encoded, walk_elements(encoded))


def mutate_known_crashers(rng: np.random.Generator, data: bytes, elements: list[RawElement]) -> bytes:
    """The reliability tests' inputs: a corrupt RLE slice, an absurd image size."""
    from hostile_dicom import make_absurd_size, make_corrupt_rle

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.dcm"
        path.write_bytes(data)
        try:
            ds = pydicom.dcmread(path)
            if "PixelData" not in ds or ds.file_meta.TransferSyntaxUID.is_compressed:
                return mutate_header_field(rng, data, elements)
            if rng.integers(2):
                make_corrupt_rle(path)
            else:
                make_absurd_size(path, rows=int(rng.choice([1024, 65535])), columns=65535)
        except Exception:
            return mutate_flip(rng, data, elements)
        return path.read_bytes()


MUTATIONS: dict[str, Mutation] = {
    "header-field": mutate_header_field,
    "length": mutate_length,
    "vr": mutate_vr,
    "truncate": mutate_truncate,
    "pixels": mutate_pixels,
    "transfer-syntax": mutate_transfer_syntax,
    "flip": mutate_flip,
    "splice": mutate_splice,
    "re-encoded": mutate_reencoded,
    "known-crashers": mutate_known_crashers,
}


def mutated_files(seeds: list[Seed], count: int, seed: int) -> Iterator[tuple[str, str, bytes]]:
    """``count`` mutated files: ``(label, mutation, bytes)``, the same for the same ``seed``."""
    names = list(MUTATIONS)
    walked = [walk_elements(s.data) for s in seeds]
    for k in range(count):
        rng = np.random.default_rng([seed, k])
        i = int(rng.integers(len(seeds)))
        name = names[k % len(names)]  # every kind equally often
        data = MUTATIONS[name](rng, seeds[i].data, walked[i])
        if rng.integers(4) == 0:  # now and then a second, random one on top
            data = MUTATIONS[names[int(rng.integers(len(names)))]](rng, data, walk_elements(data))
        yield f"{k:05d}-{seeds[i].name}-{name}", name, data


# -- running one file ----------------------------------------------------------------------------------


def reason_kind(reason: str, path: str) -> str:
    """A reason without the file name and numbers, short: the category it is counted under."""
    text = reason.replace(path, "").lstrip(": ")
    text = re.sub(r"(?<![\w/])/[^\s:]+", "PATH", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    text = text.split(" (")[0]
    return text[:80]


def exercise(path: Path, workdir: Path, template_db: Path) -> tuple[str, str, str]:
    """Import ``path`` into a fresh database, show its studies, read every series as a volume.

    Returns ``(outcome, detail, show)``: outcome ``"imported"`` (every series read as a volume),
    ``"refused"`` (not imported, or a series refused, ``detail`` the reason) or ``"traceback"``
    (``detail`` is ``Type: message``); ``show`` is ``"ok"`` or why ``show`` had no volume.
    """
    from radiology_app.core.errors import RadiologyAppError
    from radiology_app.core.guard import is_recoverable, one_line
    from radiology_app.dicom.volume import read_volume
    from radiology_app.importer import choose_series, import_paths
    from radiology_app.store.database import StudyDatabase

    db_path = workdir / "fuzz.sqlite3"
    for extra in ("-wal", "-shm"):
        Path(str(db_path) + extra).unlink(missing_ok=True)
    shutil.copyfile(template_db, db_path)
    db = StudyDatabase(db_path)
    where = "import"
    try:
        result = import_paths([path], db, managed_dir=workdir / "managed")
        if not result.instances_added:
            reason = result.issues[0].reason if result.issues else "nothing imported"
            return "refused", "import: " + reason_kind(reason, str(path)), "-"
        show = "ok"
        refusal = ""
        for study in result.studies:
            where = "show"
            try:  # what `show` does
                choice = choose_series(db, study)
                read_volume(db.instances_for_series(choice.series_uid))
            except RadiologyAppError as exc:
                show = reason_kind(str(exc), str(path))
            where = "volume"
            for series in db.series_for_study(study):
                try:
                    read_volume(db.instances_for_series(series.series_uid))
                except RadiologyAppError as exc:
                    refusal = refusal or "volume: " + reason_kind(str(exc), str(path))
        return ("refused", refusal, show) if refusal else ("imported", "volume", show)
    except RadiologyAppError as exc:
        return "refused", f"{where}: " + reason_kind(str(exc), str(path)), "-"
    except BaseException as exc:
        if not is_recoverable(exc):
            raise
        return "traceback", f"{where}: {one_line(exc)}", "-"
    finally:
        db.close()


def _worker(conn: Connection, workdir: str) -> None:
    """Worker process: receive file paths, answer ``(outcome, detail)`` for each."""
    import os

    from radiology_app.dicom import volume
    from radiology_app.store.database import StudyDatabase

    devnull = os.open(os.devnull, os.O_WRONLY)  # decoder chatter (GDCM, openjpeg) off the console
    os.dup2(devnull, 2)
    volume.volume_memory_budget_bytes = lambda: 1 << 30  # see the module docstring
    work = Path(workdir)
    template = work / "template.sqlite3"
    StudyDatabase(template).close()
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        conn.send(exercise(Path(item), work, template))


# -- the run -------------------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    """What a fuzz run found."""

    tried: int = 0
    imported: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    show_refused: Counter[str] = field(default_factory=Counter)
    tracebacks: list[tuple[str, str]] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")
    by_mutation: Counter[str] = field(default_factory=Counter)
    seeds: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def text(self) -> str:
        """The figures, one per line."""
        lines = [
            f"files tried: {self.tried}",
            f"imported (volume read): {self.imported}",
            f"refused with a reason: {sum(self.refused.values())}",
        ]
        lines += [f"  {n:6d}  {reason}" for reason, n in self.refused.most_common()]
        lines.append(f"show without a volume, of the imported files: {sum(self.show_refused.values())}")
        lines += [f"  {n:6d}  {reason}" for reason, n in self.show_refused.most_common(12)]
        lines += [
            f"tracebacks: {len(self.tracebacks)}",
            *[f"  {label}: {detail}" for label, detail in self.tracebacks[:20]],
            f"hangs: {len(self.hangs)}",
            *[f"  {label}" for label in self.hangs[:20]],
            f"slowest file: {self.slowest[1]} ({self.slowest[0]:.2f} s)",
            f"mutations: {dict(sorted(self.by_mutation.items()))}",
            f"seeds (unmutated): {self.seeds}",
            f"elapsed: {self.elapsed_s:.0f} s ({self.tried / max(self.elapsed_s, 1e-9):.1f} files/s)",
        ]
        return "\n".join(lines)


def run_fuzz(
    count: int, seed: int = 1, time_limit_s: float = 20.0, keep: Path | None = None, progress: bool = False
) -> FuzzReport:
    """Mutate ``count`` files and exercise each in a worker process with a ``time_limit_s`` limit.

    Files that end in a traceback or a hang are copied to ``keep`` (when given) to be reproduced.
    """
    seeds = seed_files()
    report = FuzzReport()
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="dicom-fuzz-") as tmp:
        work = Path(tmp)

        def start() -> tuple[mp.process.BaseProcess, Connection]:
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(there, str(work / "worker")), daemon=True)
            (work / "worker").mkdir(exist_ok=True)
            proc.start()
            return proc, here

        proc, conn = start()
        try:
            for s in seeds:  # warm-up, not counted: the worker's imports, and every seed is readable
                path = work / "in" / f"seed-{s.name}.dcm"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(s.data)
                conn.send(str(path))
                report.seeds[s.name] = conn.recv()[0]
            mutations = mutated_files(seeds, count, seed)
            while True:
                with warnings.catch_warnings():  # pydicom's complaints while mutating are expected
                    warnings.simplefilter("ignore")
                    item = next(mutations, None)
                if item is None:
                    break
                label, mutation, data = item
                path = work / "in" / f"{label}.dcm"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(data)
                report.tried += 1
                report.by_mutation[mutation] += 1
                started = time.perf_counter()
                conn.send(str(path))
                alive = conn.poll(time_limit_s)
                took = time.perf_counter() - started
                if not alive:
                    report.hangs.append(label)
                    proc.kill()
                    proc.join()
                    proc, conn = start()
                    outcome, detail, show = "hang", "", "-"
                else:
                    try:
                        outcome, detail, show = conn.recv()
                    except EOFError:  # the worker died (a crash that killed the process)
                        proc.join()
                        outcome, detail, show = "traceback", f"worker died ({proc.exitcode})", "-"
                        proc, conn = start()
                if took > report.slowest[0]:
                    report.slowest = (took, label)
                if show not in ("ok", "-"):
                    report.show_refused[show] += 1
                if outcome == "imported":
                    report.imported += 1
                elif outcome == "refused":
                    report.refused[detail] += 1
                elif outcome == "traceback":
                    report.tracebacks.append((label, detail))
                if keep is not None and outcome in ("traceback", "hang"):
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, keep / path.name)
                path.unlink()
                if progress and report.tried % 500 == 0:
                    print(f"{report.tried}/{count} ...", file=sys.stderr, flush=True)
        finally:
            if proc.is_alive():
                conn.send(None)
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
    report.elapsed_s = time.perf_counter() - t0
    return report


def main(argv: list[str] | None = None) -> int:
    """``python tests/fuzz/dicom_fuzz.py --count N --seed S``: print the figures.

    Exits 1 when a file ended in a traceback or a hang.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=20.0, help="seconds per file")
    parser.add_argument("--keep", type=Path, default=None, help="copy failing files here")
    args = parser.parse_args(argv)
    report = run_fuzz(args.count, args.seed, args.time_limit, args.keep, progress=True)
    print(report.text())
    return 1 if report.tracebacks or report.hangs else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (hostile_dicom)
    raise SystemExit(main())
