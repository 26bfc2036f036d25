"""The whole-chest phantom: anatomy in the right places, nodules inside the lungs, deterministic."""

from __future__ import annotations

import numpy as np

from segmentation.phantom.chest import make_chest_phantom
from segmentation.phantom.nodules import NoduleSpec

SMALL = {"shape_zyx": (40, 128, 128), "spacing_zyx_mm": (7.0, 2.8, 2.8)}


def test_small_phantom_anatomy_and_truth() -> None:
    specs = [NoduleSpec("solid", 12.0), NoduleSpec("ground_glass", 14.0), NoduleSpec("calcified", 10.0)]
    ph = make_chest_phantom(5, nodules=specs, noise_hu=10.0, kernel="soft", **SMALL)  # type: ignore[arg-type]
    assert ph.hu.dtype == np.int16 and ph.labels.dtype == np.int16 and ph.lung_mask.dtype == np.uint8
    assert ph.hu.shape == ph.labels.shape == ph.lung_mask.shape == (40, 128, 128)
    lung = ph.lung_mask > 0
    assert -920 < float(np.median(ph.hu[lung & (ph.labels == 0)])) < -760
    assert float(np.median(ph.hu[0:2, 0:5, 0:5])) < -900  # air outside the body
    assert (ph.hu > 300).sum() > 100  # bone
    # right lung (1) on the low-x side, left lung (2) on the high-x side
    xr = np.nonzero(ph.lung_mask == 1)[2].mean()
    xl = np.nonzero(ph.lung_mask == 2)[2].mean()
    assert xr < 64 < xl
    assert len(ph.nodules) == 3
    for t in ph.nodules:
        m = ph.labels == t.label_id
        assert m.sum() == t.voxel_count > 0
        assert lung[m].mean() > 0.9  # inside the lungs
        c = np.argwhere(m).mean(axis=0) * np.array(ph.spacing_zyx_mm)
        assert np.linalg.norm(c - np.array(t.center_zyx_mm)) < 6.0


def test_same_seed_same_phantom() -> None:
    a = make_chest_phantom(11, with_vessels=False, **SMALL)  # type: ignore[arg-type]
    b = make_chest_phantom(11, with_vessels=False, **SMALL)  # type: ignore[arg-type]
    assert np.array_equal(a.hu, b.hu) and np.array_equal(a.labels, b.labels)
    c = make_chest_phantom(12, with_vessels=False, **SMALL)  # type: ignore[arg-type]
    assert not np.array_equal(a.hu, c.hu)


def test_vessels_make_dense_branches_in_the_lungs() -> None:
    ph = make_chest_phantom(3, nodules=[], **SMALL)  # type: ignore[arg-type]
    lung = ph.lung_mask > 0
    assert (ph.hu[lung] > -500).mean() > 0.005
