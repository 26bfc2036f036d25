"""Evaluate the nodule detector on real chest CT annotated by radiologists (LIDC XML or LUNA16 CSV).

Reference nodules are the readers' nodule marks (>= 3 mm, outlined) grouped across readers: marks of
different readers that overlap, or whose centres lie within the larger one's radius, are one nodule.
A target is a reference nodule marked by at least :data:`MIN_READERS` readers whose reference mean
diameter (the readers' mean of long and short axis on each one's largest outline slice, averaged over
readers) is at least 4 mm; LUNA16 rows (consensus of 3-4 readers) are targets from 4 mm.

A finding detects a reference nodule when its outline overlaps a reader's outline or its centroid lies
within the nodule's radius. A finding is a false positive when it lies within no reader's mark of any
kind: no nodule outline, and no small-nodule or non-nodule point within :data:`POINT_TOLERANCE_MM`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segmentation.annotations import NODULE, SeriesAnnotations
from segmentation.inference import (
    LUNG_GRID_MM,
    MeasuredNodule,
    NoduleSegmenter,
    SegmentationResult,
    segment_nodules,
)
from segmentation.lung import lung_envelope
from segmentation.measure import axial_axes_mm, round_half_up
from segmentation.resample import grid_like, nearest_resize

log = logging.getLogger(__name__)

#: Readers who must have marked a nodule for it to be a target.
MIN_READERS = 2
#: Smallest target (reference mean diameter, mm).
MIN_TARGET_MM = 4.0
#: A point mark (small nodule, non-nodule) within this distance (mm) of a finding's outline explains it.
POINT_TOLERANCE_MM = 3.0
#: Detection scores at which the operating-point table is computed.
OPERATING_SCORES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
#: Findings down to this detection score are collected for the operating-point table.
COLLECT_SCORE = 0.3


@dataclass(frozen=True)
class ScanGeometry:
    """Where a volume's voxels lie in the patient.

    Attributes
    ----------
    origin_lps_mm
        LPS position of voxel ``[0, 0, 0]``.
    spacing_zyx_mm
        Voxel spacing (mm).
    direction
        3x3 matrix whose columns are the LPS directions of the x (column), y (row) and z (slice) axes.
    slice_of_sop
        Slice index of each SOPInstanceUID (preferred over ``imageZposition`` when present).
    """

    origin_lps_mm: tuple[float, float, float]
    spacing_zyx_mm: tuple[float, float, float]
    direction: tuple[tuple[float, float, float], ...]
    slice_of_sop: Mapping[str, int] = field(default_factory=dict)

    def index_of_lps(self, p: Sequence[float]) -> tuple[float, float, float]:
        """Fractional voxel index ``(z, y, x)`` of an LPS point (mm)."""
        d = np.asarray(self.direction, dtype=np.float64)
        sz, sy, sx = self.spacing_zyx_mm
        ijk = np.linalg.solve(d, np.asarray(p, dtype=np.float64) - np.asarray(self.origin_lps_mm))
        return float(ijk[2] / sz), float(ijk[1] / sy), float(ijk[0] / sx)

    def lps_of_index(self, zyx: Sequence[float]) -> tuple[float, float, float]:
        """LPS position (mm) of a fractional voxel index ``(z, y, x)``."""
        d = np.asarray(self.direction, dtype=np.float64)
        sz, sy, sx = self.spacing_zyx_mm
        p = np.asarray(self.origin_lps_mm) + d @ np.array([zyx[2] * sx, zyx[1] * sy, zyx[0] * sz])
        return float(p[0]), float(p[1]), float(p[2])

    def slice_of(self, sop_instance_uid: str, z_mm: float) -> int:
        """Slice index of a mark: by its SOPInstanceUID, else by its z position (mm)."""
        if sop_instance_uid in self.slice_of_sop:
            return int(self.slice_of_sop[sop_instance_uid])
        d = np.asarray(self.direction, dtype=np.float64)
        step = self.spacing_zyx_mm[0] * float(d[2, 2])
        if abs(step) < 1e-6:
            raise ValueError("a non-axial series: marks cannot be placed by their z position")
        return round((z_mm - self.origin_lps_mm[2]) / step)


@dataclass
class _Placed:
    """One mark placed on the volume (voxel indices)."""

    reader: int
    kind: str
    voxels: NDArray[np.intp]  # (N, 3) z, y, x
    diameter_mm: float | None
    texture: int | None


@dataclass
class ReferenceNodule:
    """A nodule as the readers marked it (one or more readers' marks grouped)."""

    readers: int
    diameter_mm: float
    centre_zyx: tuple[float, float, float]
    voxels: NDArray[np.intp]
    consensus: NDArray[np.intp]
    texture: float | None
    is_target: bool
    from_csv: bool = False


def _fill_outline(sl_points: Sequence[tuple[float, float]], shape_yx: tuple[int, int]) -> NDArray[np.intp]:
    """Pixels ``(row, col)`` enclosed by an outline.

    LIDC outlines are an "outer border": the outline's own pixels lie just outside the nodule and are
    not part of it (Armato et al. 2011, confirmed for pylidc); a single point is a one-pixel mark.
    """
    from skimage.draw import polygon

    pts = np.asarray(sl_points, dtype=np.float64)
    cols, rows = pts[:, 0], pts[:, 1]
    border = np.stack([np.round(rows), np.round(cols)], axis=1).astype(np.intp)
    if len(pts) < 3:
        inside = border
    else:
        rr, cc = polygon(rows, cols, shape=shape_yx)  # type: ignore[no-untyped-call]
        inside = np.stack([rr, cc], axis=1).astype(np.intp)
        on_border = {tuple(b) for b in border.tolist()}
        inside = np.asarray([p for p in inside.tolist() if tuple(p) not in on_border], dtype=np.intp)
        inside = inside.reshape(-1, 2) if len(inside) else border
    ok = (
        (inside[:, 0] >= 0)
        & (inside[:, 0] < shape_yx[0])
        & (inside[:, 1] >= 0)
        & (inside[:, 1] < shape_yx[1])
    )
    return np.unique(inside[ok], axis=0)


def _sphere(
    centre: Sequence[float], radius_mm: float, sp: Sequence[float], shape: Sequence[int]
) -> NDArray[np.intp]:
    r = [max(int(np.ceil(radius_mm / s)), 0) for s in sp]
    c = [round(v) for v in centre]
    grids = np.meshgrid(
        *[np.arange(ci - ri, ci + ri + 1) for ci, ri in zip(c, r, strict=True)], indexing="ij"
    )
    pts = np.stack([g.ravel() for g in grids], axis=1)
    d2 = sum(((pts[:, a] - centre[a]) * sp[a]) ** 2 for a in range(3))
    keep = (d2 <= max(radius_mm, 0.5 * min(sp)) ** 2) & np.all((pts >= 0) & (pts < np.asarray(shape)), axis=1)
    inside: NDArray[np.intp] = pts[keep]
    return inside


def place_marks(ann: SeriesAnnotations, geom: ScanGeometry, shape: Sequence[int]) -> list[_Placed]:
    """Every mark of ``ann`` as voxel indices of a volume of ``shape``; marks off the volume are skipped."""
    placed: list[_Placed] = []
    sp = geom.spacing_zyx_mm
    for m in ann.marks:
        if m.centre_lps_mm is not None:
            c = geom.index_of_lps(m.centre_lps_mm)
            radius = (m.diameter_mm or 0.0) / 2.0
            vox = _sphere(c, radius, sp, shape)
            if len(vox):
                placed.append(
                    _Placed(m.reader, m.kind, vox, m.diameter_mm if m.kind == NODULE else None, None)
                )
            continue
        inside: list[NDArray[np.intp]] = []
        holes: list[NDArray[np.intp]] = []
        for s in m.slices:
            try:
                k = geom.slice_of(s.sop_instance_uid, s.z_mm)
            except ValueError:
                continue
            if not 0 <= k < shape[0]:
                continue
            px = _fill_outline(s.points_col_row, (int(shape[1]), int(shape[2])))
            (inside if s.inclusion else holes).append(np.column_stack([np.full(len(px), k), px]))
        if not inside:
            continue
        vox = np.unique(np.concatenate(inside), axis=0)
        if holes:
            hole = {tuple(v) for v in np.concatenate(holes).tolist()}
            vox = np.asarray([v for v in vox.tolist() if tuple(v) not in hole], dtype=np.intp).reshape(-1, 3)
        diameter = _outline_diameter(vox, sp) if m.kind == NODULE else None
        placed.append(_Placed(m.reader, m.kind, vox, diameter, m.texture))
    return placed


def _outline_diameter(vox: NDArray[np.intp], sp: Sequence[float]) -> float:
    """Mean of long and short axis (mm) on the slice where the outline is largest."""
    zs, counts = np.unique(vox[:, 0], return_counts=True)
    k = zs[int(np.argmax(counts))]
    yx = vox[vox[:, 0] == k][:, 1:]
    lo = yx.min(axis=0)
    mask = np.zeros(tuple(yx.max(axis=0) - lo + 1), dtype=bool)
    mask[tuple((yx - lo).T)] = True
    long_mm, short_mm = axial_axes_mm(mask, (sp[1], sp[2]))
    return (long_mm + short_mm) / 2.0


def _centre_mm(vox: NDArray[np.intp], sp: Sequence[float]) -> NDArray[np.float64]:
    centre: NDArray[np.float64] = vox.mean(axis=0) * np.asarray(sp, dtype=np.float64)
    return centre


def group_nodules(placed: Sequence[_Placed], sp: Sequence[float]) -> list[ReferenceNodule]:
    """Group the readers' nodule marks into reference nodules (overlap, or centres within a radius)."""
    marks = [p for p in placed if p.kind == NODULE]
    parent = list(range(len(marks)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keys = [{tuple(v) for v in m.voxels.tolist()} for m in marks]
    centres = [_centre_mm(m.voxels, sp) for m in marks]
    for i in range(len(marks)):
        for j in range(i + 1, len(marks)):
            close = float(np.linalg.norm(centres[i] - centres[j])) <= max(
                (marks[i].diameter_mm or 0.0) / 2.0, (marks[j].diameter_mm or 0.0) / 2.0
            )
            if close or not keys[i].isdisjoint(keys[j]):
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(marks)):
        groups.setdefault(root(i), []).append(i)
    out: list[ReferenceNodule] = []
    for members in groups.values():
        ms = [marks[i] for i in members]
        consensus_reader = all(m.reader < 0 for m in ms)
        readers = 3 if consensus_reader else len({m.reader for m in ms})
        diameters = [m.diameter_mm for m in ms if m.diameter_mm is not None]
        diameter = float(np.mean(diameters)) if diameters else 0.0
        allvox, counts = np.unique(np.concatenate([m.voxels for m in ms]), axis=0, return_counts=True)
        consensus = allvox[counts * 2 >= len(ms)]
        textures = [m.texture for m in ms if m.texture is not None]
        out.append(
            ReferenceNodule(
                readers=readers,
                diameter_mm=diameter,
                centre_zyx=tuple(float(v) for v in allvox.mean(axis=0)),  # type: ignore[arg-type]
                voxels=allvox,
                consensus=consensus if len(consensus) else allvox,
                texture=float(np.median(textures)) if textures else None,
                is_target=readers >= MIN_READERS and round_half_up(diameter, 1) >= MIN_TARGET_MM,
                from_csv=consensus_reader,
            )
        )
    return out


def envelope_on_own_grid(lung: NDArray[np.generic], sp: Sequence[float]) -> NDArray[np.bool_]:
    """The lungs' envelope (:func:`segmentation.lung.lung_envelope`) of a mask, on a coarse grid."""
    coarse, sp_c = grid_like(lung.shape, sp, LUNG_GRID_MM)
    return nearest_resize(lung_envelope(nearest_resize(np.asarray(lung), coarse), sp_c), lung.shape)


def _flat(vox: NDArray[np.intp], shape: Sequence[int]) -> NDArray[np.intp]:
    flat: NDArray[np.intp] = np.ravel_multi_index(tuple(vox.T), tuple(int(s) for s in shape))
    return flat


def _finding_voxels(labels: NDArray[np.int16], n: MeasuredNodule) -> NDArray[np.intp]:
    (z0, y0, x0), (z1, y1, x1) = n.measurement.bbox_zyx
    sub = labels[z0 : z1 + 1, y0 : y1 + 1, x0 : x1 + 1] == n.label_id
    vox: NDArray[np.intp] = np.argwhere(sub) + np.array([z0, y0, x0])
    return vox


def _expected_composition(texture: float | None) -> str | None:
    """LIDC texture rating -> composition (5-4 solid, 3-2 part-solid, 1 ground-glass)."""
    if texture is None:
        return None
    return "solid" if texture >= 3.5 else ("part_solid" if texture >= 1.5 else "ground_glass")


def where_in_chest(
    n: MeasuredNodule,
    labels: NDArray[np.integer],
    hu: NDArray[np.generic],
    lung: NDArray[np.generic],
    envelope: NDArray[np.bool_],
    sp: Sequence[float],
) -> str:
    """Where a finding lies, for sorting false positives by cause (an automatic label, not a reading).

    Outside the lungs' envelope: ``"diaphragm or below"`` (soft tissue right below it),
    ``"mediastinum, heart or great vessels"`` (between the lungs) or ``"chest wall"``. Inside:
    ``"diaphragm"``, ``"hilum or mediastinal border"`` (within 15 mm medial of a lung),
    ``"chest wall or pleura"`` (the measurement calls it juxtapleural), ``"vessel"`` (an elongated
    outline) or ``"lung parenchyma"``.
    """
    m = n.measurement
    (z0, y0, x0), (z1, y1, x1) = m.bbox_zyx
    box = (slice(z0, z1 + 1), slice(y0, y1 + 1), slice(x0, x1 + 1))
    outside = float(envelope[box][labels[box] == n.label_id].mean()) < 0.5
    # between the lungs: on the rows through the finding, right of the left lung and left of the right
    k, cy, cx = (round(v) for v in m.centroid_zyx)
    rows = np.asarray(lung[k, max(cy - round(10.0 / sp[1]), 0) : cy + round(10.0 / sp[1]) + 1])
    between, medial_mm = False, None
    for row in rows:
        right, left = np.flatnonzero(row == 1), np.flatnonzero(row == 2)
        if right.size and left.size and right.max() < left.min():
            gap = 0.0 if right.max() <= cx <= left.min() else min(abs(cx - right.max()), abs(cx - left.min()))
            between = between or gap == 0.0
            medial_mm = gap * sp[2] if medial_mm is None else min(medial_mm, gap * sp[2])
    if outside and between:
        return "mediastinum, heart or great vessels"
    # on the diaphragm: soft tissue right below it, aerated lung above it
    footprint = box[1:]
    below = slice(max(z0 - max(1, round(4.0 / sp[0])), 0), z0)
    above = slice(z1 + 1, min(z1 + 1 + max(1, round(10.0 / sp[0])), hu.shape[0]))
    if below.stop > below.start and above.stop > above.start:
        under = np.asarray(hu[(below, *footprint)], dtype=np.float32)
        soft_below = float(((under > -500) & (np.asarray(lung[(below, *footprint)]) == 0)).mean()) >= 0.5
        if soft_below and (np.asarray(lung[(above, *footprint)]) > 0).any():
            return "diaphragm or below" if outside else "diaphragm"
    if outside:
        return "chest wall"
    if medial_mm is not None and medial_mm <= 15.0:
        return "hilum or mediastinal border"
    if m.juxtapleural:
        return "chest wall or pleura"
    long_mm, short_mm = m.long_axis_mm, max(m.short_axis_mm, 1e-3)
    return "vessel" if long_mm / short_mm >= 2.0 else "lung parenchyma"


@dataclass
class ScanEvaluation:
    """One annotated scan's outcome."""

    series_uid: str
    source: str
    format: str
    shape_zyx: list[int]
    spacing_zyx_mm: list[float]
    targets: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    seconds: float = 0.0


@contextlib.contextmanager
def collecting_low_scores(seg: NoduleSegmenter, score: float, probability: float) -> Iterator[None]:
    """Lower the segmenter's thresholds for the duration (to tabulate operating points afterwards)."""
    clf = seg.classifier
    old_p, old_c = seg.min_max_probability, (clf.threshold if clf is not None else None)
    seg.min_max_probability = min(probability, old_p)
    if clf is not None and old_c is not None:
        clf.threshold = min(score, old_c)
    try:
        yield
    finally:
        seg.min_max_probability = old_p
        if clf is not None and old_c is not None:
            clf.threshold = old_c


def evaluate_scan(
    hu: NDArray[np.generic],
    geom: ScanGeometry,
    ann: SeriesAnnotations,
    segmenter: NoduleSegmenter,
    *,
    contrast: bool | None = None,
    result: SegmentationResult | None = None,
) -> ScanEvaluation:
    """Segment one annotated scan (unless ``result`` is given) and match findings with the readers' marks.

    ``contrast`` is passed to :func:`~segmentation.inference.segment_nodules` (``True`` when the header
    records a contrast agent). Findings are collected down to :data:`COLLECT_SCORE` so that
    :func:`summarize_real` can tabulate operating points.
    """
    import time

    sp = geom.spacing_zyx_mm
    t0 = time.monotonic()
    if result is None:
        with collecting_low_scores(segmenter, COLLECT_SCORE, COLLECT_SCORE):
            result = segment_nodules(hu, sp, segmenter=segmenter, contrast=contrast)
    seconds = time.monotonic() - t0
    placed = place_marks(ann, geom, hu.shape)
    refs = group_nodules(placed, sp)
    envelope = envelope_on_own_grid(result.lung_mask, sp)
    points = [p for p in placed if p.kind != NODULE]
    ref_flat = [set(_flat(r.voxels, hu.shape).tolist()) for r in refs]
    findings: list[dict[str, Any]] = []
    hits: dict[int, list[tuple[int, float, float]]] = {}  # ref -> (finding, score, diameter)
    for n in result.nodules:
        vox = _finding_voxels(result.labels, n)
        fflat = set(_flat(vox, hu.shape).tolist())
        c_mm = np.asarray(n.measurement.centroid_zyx) * np.asarray(sp)
        matched: list[str] = []
        for i, r in enumerate(refs):
            near = float(np.linalg.norm(c_mm - np.asarray(r.centre_zyx) * np.asarray(sp))) <= max(
                r.diameter_mm / 2.0, 1.0
            )
            if near or not fflat.isdisjoint(ref_flat[i]):
                hits.setdefault(i, []).append((len(findings), n.score, n.measurement.mean_diameter_mm))
                matched.append(
                    "nodule (consensus row)"
                    if r.from_csv
                    else f"nodule ({r.readers} reader{'s' if r.readers != 1 else ''})"
                )
        if not matched:
            pts_mm = vox * np.asarray(sp)
            for p in points:
                d = np.sqrt(((pts_mm[:, None, :] - p.voxels[None, :, :] * np.asarray(sp)) ** 2).sum(-1)).min()
                if float(d) <= POINT_TOLERANCE_MM:
                    matched.append(p.kind.replace("_", "-") + " mark")
                    break
        m = n.measurement
        findings.append(
            {
                "label_id": n.label_id,
                "centroid_lps_mm": [round(v, 1) for v in geom.lps_of_index(m.centroid_zyx)],
                "mean_diameter_mm": m.mean_diameter_mm,
                "composition": m.composition,
                "mean_hu": m.mean_hu,
                "score": n.score,
                "matches": sorted(set(matched)),
                "false_positive": not matched,
                "where": where_in_chest(n, result.labels, hu, result.lung_mask, envelope, sp)
                if not matched
                else None,
            }
        )
    targets: list[dict[str, Any]] = []
    for i, r in enumerate(refs):
        best = max(hits.get(i, []), key=lambda h: h[1], default=None)
        dice = volume_error = None
        if best is not None:
            fvox = _finding_voxels(result.labels, result.nodules[best[0]])
            a = set(_flat(fvox, hu.shape).tolist())
            b = set(_flat(r.consensus, hu.shape).tolist())
            dice = round(2.0 * len(a & b) / max(len(a) + len(b), 1), 4)
            volume_error = round(100.0 * (len(a) - len(b)) / max(len(b), 1), 1)
        targets.append(
            {
                "centre_lps_mm": [round(v, 1) for v in geom.lps_of_index(r.centre_zyx)],
                "readers": r.readers,
                "reference_mean_diameter_mm": round(r.diameter_mm, 2),
                "target": r.is_target,
                "expected_composition": _expected_composition(r.texture),
                "found_score": best[1] if best is not None else None,
                "measured_mean_diameter_mm": best[2] if best is not None else None,
                "composition": findings[best[0]]["composition"] if best is not None else None,
                "dice_vs_reader_consensus": dice,
                "volume_error_pct_vs_reader_consensus": volume_error,
            }
        )
    return ScanEvaluation(
        series_uid=ann.series_uid,
        source=ann.source,
        format=ann.format,
        shape_zyx=[int(s) for s in hu.shape],
        spacing_zyx_mm=[round(float(s), 4) for s in sp],
        targets=targets,
        findings=findings,
        seconds=round(seconds, 1),
    )


def _median(values: Sequence[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


@dataclass
class RealEvaluationReport:
    """Metrics over annotated real scans (the ``evaluate-seg --real`` JSON).

    Sizes are the readers' reference mean diameters; types are the readers' median texture rating read
    as a composition (5-4 solid, 3-2 part-solid, 1 ground-glass).
    """

    scans: int
    threshold: float
    nodules_ge_4mm: int
    sensitivity_ge_4mm: float | None
    sensitivity_by_size: dict[str, float | None]
    sensitivity_by_type: dict[str, float | None]
    false_positives_per_scan: float
    median_abs_mean_diameter_error_mm: float | None
    dice_median: float | None
    median_volume_error_pct: float | None
    solid_called_solid: float | None
    false_positives_by_where: dict[str, int]
    operating_points: list[dict[str, float | None]]
    per_scan: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


def _rate(hits: Sequence[bool]) -> float | None:
    return round(sum(hits) / len(hits), 4) if hits else None


def summarize_real(
    scans: Sequence[ScanEvaluation],
    threshold: float,
    size_bands: Mapping[str, tuple[float, float]] | None = None,
) -> RealEvaluationReport:
    """Metrics at detection score ``threshold`` (and an operating-point table) over ``scans``."""
    targets = [t for s in scans for t in s.targets if t["target"]]

    def found_at(t: dict[str, Any], thr: float) -> bool:
        return t["found_score"] is not None and t["found_score"] >= thr

    def fps_at(thr: float) -> int:
        return sum(1 for s in scans for f in s.findings if f["false_positive"] and f["score"] >= thr)

    n = max(len(scans), 1)
    found = [t for t in targets if found_at(t, threshold)]
    errors = [abs(t["measured_mean_diameter_mm"] - t["reference_mean_diameter_mm"]) for t in found]
    volume_errors = [abs(t["volume_error_pct_vs_reader_consensus"]) for t in found]
    dices = [t["dice_vs_reader_consensus"] for t in found]
    solid = [t["composition"] == "solid" for t in found if t["expected_composition"] == "solid"]
    bands = size_bands or {"4-6": (4.0, 6.0), "6-8": (6.0, 8.0), "8-15": (8.0, 15.0), ">=15": (15.0, 1e9)}
    by_size = {
        band: _rate([found_at(t, threshold) for t in targets if lo <= t["reference_mean_diameter_mm"] < hi])
        for band, (lo, hi) in bands.items()
    }
    by_type = {
        kind: _rate([found_at(t, threshold) for t in targets if t["expected_composition"] == kind])
        for kind in ("solid", "part_solid", "ground_glass")
    }
    where: dict[str, int] = {}
    for s in scans:
        for f in s.findings:
            if f["false_positive"] and f["score"] >= threshold:
                where[f["where"]] = where.get(f["where"], 0) + 1
    ops: list[dict[str, float | None]] = [
        {
            "min_score": thr,
            "sensitivity_ge_4mm": _rate([found_at(t, thr) for t in targets]),
            "false_positives_per_scan": round(fps_at(thr) / n, 3),
        }
        for thr in OPERATING_SCORES
    ]
    per_scan = []
    for s in scans:
        row = asdict(s)
        row["findings"] = [f for f in s.findings if f["score"] >= threshold]
        row["false_positives"] = sum(1 for f in row["findings"] if f["false_positive"])
        per_scan.append(row)
    return RealEvaluationReport(
        scans=len(scans),
        threshold=threshold,
        nodules_ge_4mm=len(targets),
        sensitivity_ge_4mm=_rate([found_at(t, threshold) for t in targets]),
        sensitivity_by_size=by_size,
        sensitivity_by_type=by_type,
        false_positives_per_scan=round(fps_at(threshold) / n, 3),
        median_abs_mean_diameter_error_mm=_median(errors),
        dice_median=_median(dices),
        median_volume_error_pct=_median(volume_errors),
        solid_called_solid=_rate(solid),
        false_positives_by_where=dict(sorted(where.items(), key=lambda kv: -kv[1])),
        operating_points=ops,
        per_scan=per_scan,
    )
