"""Evaluation against radiologists' marks: grouping readers, targets, false positives, diameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segmentation.annotations import read_lidc_xml, read_luna_csv
from segmentation.evaluate_real import (
    ScanGeometry,
    evaluate_scan,
    group_nodules,
    place_marks,
    summarize_real,
)
from segmentation.inference import MeasuredNodule, SegmentationResult
from segmentation.measure import measure_nodule
from tests.segmentation.test_annotations import SERIES, lidc_xml, non_nodule, outlined, small

SP = (2.0, 1.0, 1.0)
SHAPE = (20, 64, 64)
GEOM = ScanGeometry((0.0, 0.0, 0.0), SP, ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))


def ring(x0: int, y0: int, size: int) -> list[tuple[int, int]]:
    """The border pixels of a ``size`` x ``size`` square, as an LIDC outline (column, row)."""
    x1, y1 = x0 + size - 1, y0 + size - 1
    top = [(x, y0) for x in range(x0, x1 + 1)]
    right = [(x1, y) for y in range(y0 + 1, y1 + 1)]
    bottom = [(x, y1) for x in range(x1 - 1, x0 - 1, -1)]
    left = [(x0, y) for y in range(y1 - 1, y0, -1)]
    return top + right + bottom + left


def annotations(tmp_path: Path) -> object:
    nodule = outlined("1", [20.0, 22.0], ring(20, 20, 10))
    path = tmp_path / "read.xml"
    path.write_text(
        lidc_xml(
            [
                nodule + small("s", 20.0, 50, 50),
                outlined("2", [20.0, 22.0], ring(21, 21, 9)),
                non_nodule(10.0, 40, 10),
            ]
        ),
        encoding="utf-8",
    )
    return read_lidc_xml(path)


def test_outlines_exclude_their_own_pixels_and_readers_group_into_one_nodule(tmp_path: Path) -> None:
    placed = place_marks(annotations(tmp_path), GEOM, SHAPE)  # type: ignore[arg-type]
    first = placed[0]
    # a 10 x 10 ring encloses 8 x 8 pixels on each of its two slices (the outline is the outer border)
    assert len(first.voxels) == 2 * 64
    assert set(first.voxels[:, 0].tolist()) == {10, 11}
    refs = group_nodules(placed, SP)
    assert len(refs) == 1
    ref = refs[0]
    assert ref.readers == 2 and ref.is_target
    # mean of long (diagonal) and short axis of 8 px and 7 px squares, averaged over the two readers
    assert 7.0 < ref.diameter_mm < 10.5


def _result(hu: np.ndarray, masks: list[np.ndarray], scores: list[float]) -> SegmentationResult:
    labels = np.zeros(SHAPE, dtype=np.int16)
    nodules = []
    for i, (m, sc) in enumerate(zip(masks, scores, strict=True), start=1):
        labels[m] = i
        nodules.append(MeasuredNodule(i, measure_nodule(hu, m, SP), 1.0, 1.0, int(m.sum()), sc))
    return SegmentationResult(labels, None, np.ones(SHAPE, dtype=np.uint8), nodules, "")


def test_findings_are_matched_to_marks_of_every_kind(tmp_path: Path) -> None:
    hu = np.full(SHAPE, -850.0, dtype=np.float32)
    found = np.zeros(SHAPE, dtype=bool)
    found[10:12, 21:29, 21:29] = True
    near_point = np.zeros(SHAPE, dtype=bool)
    near_point[5, 9:13, 39:43] = True  # 2 mm from the non-nodule mark at (z 10 mm, col 40, row 10)
    stray = np.zeros(SHAPE, dtype=bool)
    stray[15, 40:45, 10:15] = True
    for m in (found, near_point, stray):
        hu[m] = 30.0
    res = _result(hu, [found, near_point, stray], [0.9, 0.8, 0.75])
    ev = evaluate_scan(hu, GEOM, annotations(tmp_path), object(), result=res)  # type: ignore[arg-type]
    fp = [f["false_positive"] for f in ev.findings]
    assert fp == [False, False, True]
    assert ev.findings[0]["matches"] == ["nodule (2 readers)"]
    assert ev.findings[1]["matches"] == ["non-nodule mark"]
    (target,) = ev.targets
    assert target["found_score"] == 0.9 and target["dice_vs_reader_consensus"] > 0.8
    report = summarize_real([ev], threshold=0.7)
    assert report.sensitivity_ge_4mm == 1.0 and report.false_positives_per_scan == 1.0
    assert report.median_abs_mean_diameter_error_mm is not None
    assert report.median_abs_mean_diameter_error_mm < 1.0
    # at a higher operating point the stray finding and the nodule both drop out
    strict = summarize_real([ev], threshold=0.95)
    assert strict.sensitivity_ge_4mm == 0.0 and strict.false_positives_per_scan == 0.0


def test_luna16_rows_are_targets_by_their_diameter(tmp_path: Path) -> None:
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text(
        f"seriesuid,coordX,coordY,coordZ,diameter_mm\n{SERIES},24.5,24.5,21.0,8.0\n{SERIES},50,50,10,3.0\n",
        encoding="utf-8",
    )
    ann = read_luna_csv(csv_path)[SERIES]
    refs = group_nodules(place_marks(ann, GEOM, SHAPE), SP)
    assert sorted((r.diameter_mm, r.is_target) for r in refs) == [(3.0, False), (8.0, True)]
