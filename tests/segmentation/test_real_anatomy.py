"""Rules for real anatomy: the lungs' envelope, intravenous contrast, the lung-window outline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from segmentation.contrast import calcium_threshold_hu, measure_blood_pool
from segmentation.fp_reduction import CandidateClassifier
from segmentation.inference import NoduleSegmenter, segment_nodules, with_lung_window_rim
from segmentation.lung import lung_envelope
from tests.segmentation.test_fp_reduction import _tiny_classifier

SP = (2.5, 1.25, 1.25)
SHAPE = (40, 96, 128)
RIGHT = (slice(5, 35), slice(15, 80), slice(10, 56))  # x 10..55
LEFT = (slice(5, 35), slice(15, 80), slice(74, 120))  # mediastinum x 56..73 (22 mm)


def chest(mediastinum_hu: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """A box body (40 HU) with two box lungs (-850 HU) and the mediastinum between them."""
    hu = np.full(SHAPE, 40.0, dtype=np.float32)
    hu[:, 10:86, 56:74] = mediastinum_hu
    lung = np.zeros(SHAPE, dtype=np.uint8)
    for side, box in ((1, RIGHT), (2, LEFT)):
        hu[box] = -850.0
        lung[box] = side
    return hu, lung


def ball(centre: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    zz, yy, xx = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    d2 = ((zz - centre[0]) * SP[0]) ** 2 + ((yy - centre[1]) * SP[1]) ** 2 + ((xx - centre[2]) * SP[2]) ** 2
    result: np.ndarray = d2 <= radius_mm**2
    return result


def test_the_envelope_takes_in_pleural_bumps_but_not_the_mediastinum() -> None:
    _, lung = chest()
    bump = ball((20, 48, 11), 6.0) & (lung > 0)  # the dent a juxtapleural nodule makes in the lung
    lung_dented = np.where(bump, 0, lung).astype(np.uint8)
    env = lung_envelope(lung_dented, SP)
    assert env[bump].mean() > 0.5
    assert env[lung_dented > 0].all()
    assert not env[:, 20:70, 60:70].any()  # the mediastinum between the lungs stays out
    assert not env[:, :, :6].any()  # and the chest wall beyond the dent


def test_blood_pool_tells_enhanced_from_plain_scans() -> None:
    for blood, enhanced in ((40.0, False), (320.0, True)):
        hu, lung = chest(mediastinum_hu=blood)
        pool = measure_blood_pool(hu, lung, SP)
        assert pool.enhanced is enhanced
        assert pool.blood_hu is not None and abs(pool.blood_hu - blood) <= 10.0
    assert calcium_threshold_hu(200.0, False, 320.0) == 200.0
    assert calcium_threshold_hu(200.0, True, 320.0) == 420.0
    assert calcium_threshold_hu(200.0, True, 40.0) == 200.0


@pytest.mark.parametrize("prone", [False, True])
def test_the_spine_between_the_lungs_is_not_enhanced_blood(prone: bool) -> None:
    hu, lung = chest(mediastinum_hu=40.0)
    spine = (slice(None), slice(62, 80), slice(56, 74))  # a vertebral body at the back of the mediastinum
    hu[spine] = 700.0  # cortex
    hu[:, 63:79, 57:73] = 260.0  # marrow
    if prone:  # the spine at the other end of the rows
        hu, lung = hu[:, ::-1].copy(), lung[:, ::-1].copy()
    pool = measure_blood_pool(hu, lung, SP)
    assert not pool.enhanced
    assert pool.blood_hu is not None and abs(pool.blood_hu - 40.0) <= 10.0


def _accepting(tiny: NoduleSegmenter) -> NoduleSegmenter:
    clf: CandidateClassifier = _tiny_classifier()
    clf.threshold = 0.0  # accept every candidate: the anatomy rules alone decide
    return NoduleSegmenter(net=tiny.net, config=tiny.config, roi_size=32, classifier=clf)


def _dense_is_nodule(threshold_hu: float) -> Any:
    def prob(seg: object, img: np.ndarray, *_: object) -> np.ndarray:
        return (img > threshold_hu).astype(np.float32)

    return prob


def _found_at(res: Any, where: np.ndarray) -> list[Any]:
    ids = set(np.unique(res.labels[where]).tolist()) - {0}
    return [n for n in res.nodules if n.label_id in ids]


def test_findings_outside_the_lungs_are_dropped_and_juxtapleural_ones_kept(
    tiny_segmenter: NoduleSegmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segmentation.inference as inf

    hu, lung = chest()
    inside = ball((20, 48, 32), 5.0)
    pleural = ball((20, 40, 12), 5.0)  # centred 2.5 mm inside the lateral pleura
    mediastinal = ball((20, 56, 61), 5.0)  # in the mediastinum, 1 mm from the lung
    for b in (inside, pleural, mediastinal):
        hu[b] = 600.0
    monkeypatch.setattr(inf, "_sliding_window", _dense_is_nodule(300.0))
    res = segment_nodules(hu, SP, segmenter=_accepting(tiny_segmenter), lung=lung)
    assert _found_at(res, inside) and _found_at(res, pleural)
    assert not _found_at(res, mediastinal)
    # the juxtapleural outline does not run into the chest wall
    (jp,) = _found_at(res, pleural)
    assert (res.labels == jp.label_id)[:, :, :8].sum() == 0


def test_on_an_enhanced_scan_vessels_are_not_calcified_nodules(
    tiny_segmenter: NoduleSegmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segmentation.inference as inf

    hu, lung = chest(mediastinum_hu=320.0)
    vessel = ball((20, 48, 32), 4.0)
    granuloma = ball((20, 40, 100), 4.0)
    hu[vessel] = 250.0
    hu[granuloma] = 900.0
    monkeypatch.setattr(inf, "_sliding_window", _dense_is_nodule(200.0))
    seg = _accepting(tiny_segmenter)
    res = segment_nodules(hu, SP, segmenter=seg, lung=lung)
    assert res.contrast_enhanced and res.calcium_hu == pytest.approx(420.0, abs=10.0)
    assert not _found_at(res, vessel)
    (calcified,) = _found_at(res, granuloma)
    assert calcified.measurement.calcification
    # the same scan read without contrast would call the 250 HU ball a calcified nodule
    hu[:, 10:86, 56:74] = 40.0
    plain = segment_nodules(hu, SP, segmenter=seg, lung=lung)
    assert not plain.contrast_enhanced
    (called,) = _found_at(plain, vessel)
    assert called.measurement.calcification


def test_the_lung_window_rim_grows_the_outline_over_partial_volume_only() -> None:
    hu = np.full((3, 21, 21), -850.0, dtype=np.float32)
    hu[:, 6:15, 6:15] = 40.0
    hu[:, 5, 6:15] = -500.0  # a partial-volume row on one side
    mask = np.zeros(hu.shape, dtype=bool)
    mask[:, 6:15, 6:15] = True
    grown = with_lung_window_rim(hu, mask, (1.0, 0.7, 0.7))
    assert grown[:, 5, 7:14].all()  # the rim denser than -600 HU joins
    assert not grown[:, 16, :].any() and not grown[:, :, 16].any()  # aerated lung does not
