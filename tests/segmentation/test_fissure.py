"""Perifissural pattern: a Hessian sheet detector for fissures and the lentiform small solid shape."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.fissure import on_fissure
from segmentation.measure import measure_nodule
from segmentation.phantom.chest import make_chest_phantom
from segmentation.phantom.nodules import NoduleSpec, random_spec, render_nodule_crop

SPACING = (1.0, 0.7, 0.7)


@pytest.mark.parametrize("seed", range(4))
def test_a_nodule_on_a_fissure_reads_perifissural(seed: int) -> None:
    rng = np.random.default_rng(seed)
    spec = random_spec(rng, diameter_range_mm=(4.0, 9.0), kinds=["perifissural"])
    crop = render_nodule_crop(spec, rng=rng, spacing_zyx_mm=SPACING)
    assert on_fissure(crop.hu, crop.mask > 0, SPACING)
    m = measure_nodule(crop.hu, crop.mask, SPACING)
    assert m.perifissural and m.on_fissure_or_pleura


def test_a_lymph_node_shape_over_10_mm_is_recorded_but_not_the_lung_rads_pattern() -> None:
    # a lentiform nodule on a fissure: the perifissural pattern under 10 mm (mean axial diameter); a lymph
    # node's shape and place up to 12 mm (usually <= 10-12 mm); neither over 12 mm
    for spec_mm, measured_mm, node in ((7.0, 5.5, True), (13.0, 10.7, True), (17.0, 14.0, False)):
        spec = NoduleSpec("perifissural", spec_mm, elongation=1.3)
        crop = render_nodule_crop(spec, rng=np.random.default_rng(3), spacing_zyx_mm=SPACING)
        m = measure_nodule(crop.hu, crop.mask, SPACING)
        assert m.mean_diameter_mm == pytest.approx(measured_mm, abs=0.3)
        assert m.lymph_node_morphology is node
        assert m.perifissural is (measured_mm < 10.0)


def test_a_round_nodule_on_a_fissure_is_where_a_lymph_node_lies() -> None:
    # not lentiform, so not the perifissural pattern, but its place is recorded for the differential
    z, y, x = np.mgrid[:40, :40, :40].astype(np.float32)
    hu = np.full((40, 40, 40), -850.0, dtype=np.float32)
    hu[:, :, 22] = -300.0
    ball = (z - 20) ** 2 + (y - 20) ** 2 + (x - 22) ** 2 <= 16
    hu[ball] = 30.0
    m = measure_nodule(hu, ball, (1.0, 1.0, 1.0))
    assert m.on_fissure_or_pleura and not m.perifissural
    hu[:, :, 22] = -850.0
    hu[ball] = 30.0
    assert not measure_nodule(hu, ball, (1.0, 1.0, 1.0)).on_fissure_or_pleura


@pytest.mark.parametrize("kind", ["solid", "calcified", "ground_glass", "fat"])
def test_other_nodules_in_the_lung_do_not(kind: str) -> None:
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        spec = random_spec(rng, diameter_range_mm=(4.0, 9.0), kinds=[kind])
        spec = NoduleSpec(**{**spec.__dict__, "juxtapleural": False})
        crop = render_nodule_crop(spec, rng=rng, spacing_zyx_mm=SPACING)
        m = measure_nodule(crop.hu, crop.mask, SPACING)
        assert not m.perifissural and not m.on_fissure_or_pleura


def test_the_edge_of_a_large_bright_structure_is_not_a_sheet() -> None:
    z, y, x = np.mgrid[:40, :40, :40].astype(np.float32)
    hu = np.full((40, 40, 40), -850.0, dtype=np.float32)
    hu[:, :, 26:] = 40.0  # a wall (a step edge, bright on one side only)
    nodule = (z - 20) ** 2 + (y - 20) ** 2 + (x - 18) ** 2 <= 9
    hu[nodule] = 20.0
    assert not on_fissure(hu, nodule, (1.0, 1.0, 1.0))
    # a thin bright sheet through the same place is one
    hu[:, :, 26:] = -850.0
    hu[:, :, 22] = -300.0
    assert on_fissure(hu, nodule, (1.0, 1.0, 1.0))


def test_chest_phantom_lays_perifissural_nodules_on_a_painted_fissure() -> None:
    spec = NoduleSpec("perifissural", 7.0, elongation=1.5)
    for seed in range(3):
        ph = make_chest_phantom(
            seed, shape_zyx=(64, 192, 192), spacing_zyx_mm=(1.5, 1.2, 1.2), nodules=[spec], with_vessels=False
        )
        (truth,) = ph.nodules
        mask = ph.labels == truth.label_id
        idx = np.argwhere(mask)
        lo, hi = np.maximum(idx.min(0) - 8, 0), idx.max(0) + 9
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        assert on_fissure(ph.hu[box], mask[box], ph.spacing_zyx_mm, ph.lung_mask[box] > 0)
