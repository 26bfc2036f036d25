"""Radiologists' nodule annotations of real chest CT: LIDC-IDRI XML reads and LUNA16-style CSV rows.

A LIDC-IDRI XML file (``LidcReadMessage``) holds up to four readers' sessions. Each reader marks
nodules >= 3 mm with an outline per slice (``roi`` / ``edgeMap``, pixel column and row, with
``inclusion`` FALSE for holes), nodules < 3 mm with one point, and non-nodules (``nonNodule`` /
``locus``) with one point. A LUNA16-style CSV (``seriesuid,coordX,coordY,coordZ,diameter_mm``) gives
consensus nodules as world (LPS) centres with a diameter; rows with a negative diameter (LUNA16's
``annotations_excluded.csv``) are marks that are not targets.

Coordinates stay as the file gives them; :mod:`segmentation.evaluate_real` maps them onto a volume.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from segmentation.errors import SegmentationError

#: Kinds of reader marks.
NODULE = "nodule"
SMALL_NODULE = "small_nodule"
NON_NODULE = "non_nodule"
#: Columns a LUNA16-style CSV must have.
LUNA_COLUMNS = ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm")


class AnnotationError(SegmentationError):
    """An annotation file cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class OutlineSlice:
    """One slice of a reader's outline.

    Attributes
    ----------
    z_mm
        ``imageZposition`` of the slice (mm).
    sop_instance_uid
        The slice's SOPInstanceUID (``""`` when the file does not give it).
    points_col_row
        Outline (or single mark) points as pixel ``(column, row)``.
    inclusion
        ``False`` for an outline that cuts a hole out of the nodule.
    """

    z_mm: float
    sop_instance_uid: str
    points_col_row: tuple[tuple[float, float], ...]
    inclusion: bool = True


@dataclass(frozen=True)
class ReaderMark:
    """One reader's mark of one lesion.

    Attributes
    ----------
    reader
        Index of the reading session in its file (0-based), or -1 for a consensus CSV row.
    kind
        :data:`NODULE` (outlined, >= 3 mm), :data:`SMALL_NODULE` (< 3 mm) or :data:`NON_NODULE`.
    slices
        The outline slices (LIDC XML); empty for a CSV row.
    centre_lps_mm
        Centre in patient LPS (mm) when the file gives world coordinates (CSV), else ``None``.
    diameter_mm
        Diameter the file states (CSV), else ``None`` (measured from the outline instead).
    texture
        LIDC texture rating 1-5 (1 ground-glass, 3 part-solid, 5 solid), when rated.
    malignancy
        LIDC malignancy rating 1-5, when rated.
    """

    reader: int
    kind: str
    slices: tuple[OutlineSlice, ...] = ()
    centre_lps_mm: tuple[float, float, float] | None = None
    diameter_mm: float | None = None
    texture: int | None = None
    malignancy: int | None = None


@dataclass(frozen=True)
class SeriesAnnotations:
    """All marks of one series and where they came from."""

    series_uid: str
    marks: tuple[ReaderMark, ...]
    source: str
    format: str  # "lidc-xml" or "luna16-csv"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: ET.Element, name: str) -> Iterator[ET.Element]:
    return (c for c in el if _local(c.tag) == name)


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _int_or_none(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def _points(el: ET.Element, name: str, path: Path) -> tuple[tuple[float, float], ...]:
    pts = []
    for p in _children(el, name):
        try:
            pts.append((float(_text(_child(p, "xCoord"))), float(_text(_child(p, "yCoord")))))
        except ValueError as exc:
            raise AnnotationError(f"{path}: a point without numeric xCoord/yCoord ({exc})") from exc
    return tuple(pts)


def _slice_of(el: ET.Element, points: tuple[tuple[float, float], ...], path: Path) -> OutlineSlice:
    try:
        z = float(_text(_child(el, "imageZposition")))
    except ValueError as exc:
        raise AnnotationError(f"{path}: a mark without a numeric imageZposition") from exc
    inclusion = _text(_child(el, "inclusion")).upper() != "FALSE"
    return OutlineSlice(z, _text(_child(el, "imageSOP_UID")), points, inclusion)


def read_lidc_xml(path: Path) -> SeriesAnnotations:
    """Read a LIDC-IDRI XML read message.

    Raises
    ------
    AnnotationError
        When the file is not well-formed XML, not a ``LidcReadMessage``, or a mark lacks coordinates.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise AnnotationError(f"{path}: not readable as XML ({exc})") from exc
    if _local(root.tag) != "LidcReadMessage":
        raise AnnotationError(f"{path}: not a LIDC read message (root element {_local(root.tag)})")
    header = _child(root, "ResponseHeader")
    series_uid = _text(_child(header, "SeriesInstanceUid")) if header is not None else ""
    marks: list[ReaderMark] = []
    for reader, session in enumerate(_children(root, "readingSession")):
        for nod in _children(session, "unblindedReadNodule"):
            rois = [_slice_of(roi, _points(roi, "edgeMap", path), path) for roi in _children(nod, "roi")]
            rois = [r for r in rois if r.points_col_row]
            if not rois:
                continue
            ch = _child(nod, "characteristics")
            rated = ch is not None and _child(ch, "malignancy") is not None
            # LIDC: a nodule >= 3 mm is outlined and rated; a nodule < 3 mm is one point, unrated
            small = not rated and len(rois) == 1 and len(rois[0].points_col_row) == 1
            marks.append(
                ReaderMark(
                    reader,
                    SMALL_NODULE if small else NODULE,
                    tuple(rois),
                    texture=_int_or_none(_text(_child(ch, "texture"))) if ch is not None else None,
                    malignancy=_int_or_none(_text(_child(ch, "malignancy"))) if ch is not None else None,
                )
            )
        for non in _children(session, "nonNodule"):
            pts = _points(non, "locus", path)
            if pts:
                marks.append(ReaderMark(reader, NON_NODULE, (_slice_of(non, pts, path),)))
    return SeriesAnnotations(series_uid, tuple(marks), str(path), "lidc-xml")


def read_luna_csv(path: Path) -> dict[str, SeriesAnnotations]:
    """Read a LUNA16-style CSV: series UID -> its rows as consensus marks.

    Rows with ``diameter_mm`` >= 0 are nodules; negative ones (LUNA16's excluded marks) non-nodules.

    Raises
    ------
    AnnotationError
        When a required column is missing or a value is not a number.
    """
    out: dict[str, list[ReaderMark]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in LUNA_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise AnnotationError(f"{path}: not a LUNA16-style CSV (missing {', '.join(missing)})")
            for line, row in enumerate(reader, start=2):
                try:
                    centre = (float(row["coordX"]), float(row["coordY"]), float(row["coordZ"]))
                    diameter = float(row["diameter_mm"])
                except (TypeError, ValueError) as exc:
                    raise AnnotationError(f"{path}, line {line}: a value is not a number ({exc})") from exc
                kind = NODULE if diameter >= 0 else NON_NODULE
                mark = ReaderMark(-1, kind, centre_lps_mm=centre, diameter_mm=max(diameter, 0.0))
                out.setdefault(row["seriesuid"].strip(), []).append(mark)
    except OSError as exc:
        raise AnnotationError(f"{path}: cannot be read ({exc})") from exc
    return {uid: SeriesAnnotations(uid, tuple(m), str(path), "luna16-csv") for uid, m in out.items()}


def _is_lidc_xml(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return b"LidcReadMessage" in fh.read(4096)
    except OSError:
        return False


def _is_luna_csv(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            head = fh.readline()
    except OSError:
        return False
    return all(c in head for c in LUNA_COLUMNS)


def find_annotations(root: Path) -> dict[str, SeriesAnnotations]:
    """Every annotated series under ``root``: series UID -> its annotations.

    LIDC XML files are preferred over CSV rows for the same series (they also hold the small-nodule and
    non-nodule marks and each reader's outline). Several XML files of one series are merged.

    Raises
    ------
    AnnotationError
        When an annotation file is malformed.
    """
    found: dict[str, SeriesAnnotations] = {}
    csv_rows: dict[str, SeriesAnnotations] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix == ".xml" and _is_lidc_xml(path):
            ann = read_lidc_xml(path)
            if ann.series_uid in found:
                prev = found[ann.series_uid]
                shift = 1 + max((m.reader for m in prev.marks), default=-1)
                merged = prev.marks + tuple(replace(m, reader=m.reader + shift) for m in ann.marks)
                ann = SeriesAnnotations(ann.series_uid, merged, f"{prev.source}; {ann.source}", "lidc-xml")
            found[ann.series_uid] = ann
        elif suffix == ".csv" and _is_luna_csv(path):
            for uid, ann in read_luna_csv(path).items():
                if uid in csv_rows:
                    prev = csv_rows[uid]
                    ann = SeriesAnnotations(
                        uid, prev.marks + ann.marks, f"{prev.source}; {ann.source}", ann.format
                    )
                csv_rows[uid] = ann
    for uid, ann in csv_rows.items():
        found.setdefault(uid, ann)
    return found
