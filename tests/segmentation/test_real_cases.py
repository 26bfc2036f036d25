"""Training cases from real scans: lesion insertion, reader marks as positives or ignored, hard negatives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from segmentation.annotations import read_lidc_xml
from segmentation.evaluate_real import ScanGeometry
from segmentation.fp_train import case_examples
from segmentation.inference import NoduleSegmenter
from segmentation.training.insertion import INSERTED_KINDS, insert_nodules
from segmentation.training.real_cases import real_scan, write_real_case
from tests.segmentation.test_annotations import lidc_xml, non_nodule, outlined
from tests.segmentation.test_evaluate_real import ring

SP = (2.0, 1.0, 1.0)
SHAPE = (40, 96, 96)


def noisy_chest(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A soft-tissue box with one aerated, noisy 'lung' (as a real scan is noisy)."""
    rng = np.random.default_rng(seed)
    hu = np.full(SHAPE, 40.0, dtype=np.float32)
    lung = np.zeros(SHAPE, dtype=np.uint8)
    lung[4:36, 12:84, 12:84] = 1
    hu[lung > 0] = -850.0
    hu += ndimage.gaussian_filter(rng.standard_normal(SHAPE).astype(np.float32), 0.6) * 60.0
    return hu, lung


def test_inserted_nodules_lie_in_the_allowed_lung_and_carry_the_scans_noise() -> None:
    hu, lung = noisy_chest()
    where = lung > 0
    where[:, :, 48:] = False  # keep the right half free
    image, labels, truths = insert_nodules(
        hu, SP, where, np.random.default_rng(3), count=4, diameter_range_mm=(6.0, 12.0)
    )
    assert truths and all(t.kind in INSERTED_KINDS for t in truths)
    assert set(np.unique(labels).tolist()) == {0, *(t.label_id for t in truths)}
    assert not labels[:, :, 52:].any()
    untouched = ndimage.binary_dilation(labels > 0, iterations=4)
    assert np.array_equal(image[~untouched], hu[~untouched])
    solid = [t for t in truths if t.kind in ("solid", "fat")]
    if solid:
        core = ndimage.binary_erosion(labels == solid[0].label_id, iterations=1)
        resid = image - ndimage.gaussian_filter(image, 1.0)
        lung_resid = (hu - ndimage.gaussian_filter(hu, 1.0))[4:36, 12:20, 12:20]
        assert resid[core].std() > 0.5 * lung_resid.std()  # not smoother than the scan around it


def _annotated(tmp_path: Path) -> object:
    path = tmp_path / "read.xml"
    two_readers = outlined("a", [30.0, 32.0], ring(60, 60, 10))
    path.write_text(
        lidc_xml(
            [
                two_readers + outlined("b", [50.0], ring(20, 20, 8)),  # b: one reader only
                outlined("a2", [30.0, 32.0], ring(61, 61, 9)) + non_nodule(40.0, 30, 70),
            ]
        ),
        encoding="utf-8",
    )
    return read_lidc_xml(path)


def test_reader_marks_become_positives_or_are_ignored(tmp_path: Path) -> None:
    hu, _ = noisy_chest()
    geom = ScanGeometry((0.0, 0.0, 0.0), SP, ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    scan = real_scan("P1", hu, geom, _annotated(tmp_path))  # type: ignore[arg-type]
    assert int(scan.nodules.max()) == 1  # only the nodule two readers marked
    assert scan.nodules[15, 65, 65] == 1
    assert scan.ignore[25, 24, 24]  # the one-reader nodule
    assert scan.ignore[20, 70, 30] and scan.ignore[20, 70, 33]  # the non-nodule point, grown 5 mm
    assert not scan.ignore[20, 70, 40]


def test_a_real_case_labels_inserted_and_reader_nodules_and_drops_ignored_candidates(
    tmp_path: Path, tiny_segmenter: NoduleSegmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segmentation.inference as inf

    def dense_is_nodule(seg: object, img: np.ndarray, *_: object) -> np.ndarray:
        return ndimage.gaussian_filter((img > -400).astype(np.float32), 1.0)

    monkeypatch.setattr(inf, "_sliding_window", dense_is_nodule)
    hu, lung = noisy_chest()
    hu[19:22, 67:74, 27:34] = 40.0  # what the reader marked as a non-nodule: a candidate, not a negative
    geom = ScanGeometry((0.0, 0.0, 0.0), SP, ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    scan = real_scan("P1", hu, geom, _annotated(tmp_path))  # type: ignore[arg-type]
    path = tmp_path / "real_P1_00.npz"
    info = write_real_case(path, scan, tiny_segmenter, np.random.default_rng(1), inserted=3, lung=lung)
    assert info["real"] == 1 and info["inserted"] >= 1
    with np.load(path) as z:
        truth = json.loads(str(z["truth"]))
        assert {"image", "labels", "lung", "prob", "ignore"} <= set(z.files)
        arrays = {k: z[k] for k in z.files}
    assert [t["kind"] for t in truth].count("reader") == 1
    ex = case_examples(path, all_negatives=True)
    assert ex.labels.sum() >= 1
    # the same case without its ignore mask has the marked non-nodule among its negatives
    arrays.pop("ignore")
    bare = tmp_path / "real_P1_01.npz"
    np.savez(bare, **arrays)
    assert (case_examples(bare, all_negatives=True).labels == 0).sum() > (ex.labels == 0).sum()
