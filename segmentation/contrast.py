"""Intravenous contrast: is the blood enhanced, and how dense is it?

With IV contrast the blood in the heart and great vessels measures 150-400 HU instead of 30-60 HU. The
soft tissue between the lungs (heart, aorta, pulmonary arteries, with muscle, bone and fat around them)
tells which: on an enhanced scan a large share of it lies at or above :data:`ENHANCED_HU`, and its
histogram peaks there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

#: HU from which blood counts as contrast-enhanced.
ENHANCED_HU = 150.0
#: Share of the mediastinal soft tissue (0-700 HU) at or above :data:`ENHANCED_HU` that means contrast.
ENHANCED_SHARE = 0.25
#: How much denser than the enhanced blood (HU) a voxel must be to count as calcium on such a scan.
CALCIUM_MARGIN_HU = 100.0
#: Calcium threshold (HU) on an enhanced scan whose blood pool could not be measured.
CALCIUM_HU_ENHANCED_UNMEASURED = 400.0
#: Share of the lungs' front-to-back extent, at the spine's end, left out of the blood pool's reading.
SPINE_END_SHARE = 0.3
_SOFT_TISSUE_HU = (0.0, 700.0)


@dataclass(frozen=True)
class BloodPool:
    """What the mediastinum says about contrast.

    Attributes
    ----------
    blood_hu
        The blood pool's HU: the histogram peak of the mediastinal soft tissue at or above
        :data:`ENHANCED_HU` on an enhanced scan, else the overall peak; ``None`` when there was too
        little mediastinum to measure.
    enhanced_share
        Share of the mediastinal soft tissue at or above :data:`ENHANCED_HU`.
    enhanced
        Whether the image shows enhanced blood.
    """

    blood_hu: float | None
    enhanced_share: float
    enhanced: bool


def _mediastinum_2d(lung: NDArray[np.bool_], margin_px: int) -> NDArray[np.bool_]:
    from skimage.morphology import convex_hull_image

    hull: NDArray[np.bool_] = convex_hull_image(lung)  # type: ignore[no-untyped-call]
    inner: NDArray[np.bool_] = hull & ~ndimage.binary_dilation(lung, iterations=margin_px)
    return inner


def measure_blood_pool(
    hu: NDArray[np.generic], lung: NDArray[np.generic], spacing_zyx_mm: Sequence[float]
) -> BloodPool:
    """Measure the blood pool between the lungs on the middle half of the lungs' height.

    The vertebral body also lies between the lungs, and its marrow (150-300 HU) reads like enhanced
    blood: on plain scans it was up to a third of that tissue. It lies at one end of the lungs'
    front-to-back extent (which end depends on how the patient lay), so the tissue is read twice, each
    time without one end's :data:`SPINE_END_SHARE` of that extent, and the reading with the smaller
    enhanced share (the one without the spine) is kept. The heart lies in both.

    Parameters
    ----------
    hu
        CT in HU, axes z, y, x (a coarse grid is enough).
    lung
        Lung mask of the same shape (non-zero inside).
    spacing_zyx_mm
        Voxel spacing (mm).
    """
    lung_b = np.asarray(lung) > 0
    zs = np.flatnonzero(lung_b.any(axis=(1, 2)))
    margin = max(1, round(5.0 / float(spacing_zyx_mm[2])))
    front: list[NDArray[np.float32]] = []
    back: list[NDArray[np.float32]] = []
    for z in zs[len(zs) // 4 : max(len(zs) * 3 // 4, len(zs) // 4 + 1)]:
        if lung_b[z].sum() < 20:
            continue
        region = _mediastinum_2d(lung_b[z], margin)
        rows = np.flatnonzero(lung_b[z].any(axis=1))
        cut = round(SPINE_END_SHARE * float(rows[-1] - rows[0]))
        img = np.asarray(hu[z], dtype=np.float32)
        for values, kept in ((front, slice(0, rows[-1] - cut + 1)), (back, slice(rows[0] + cut, None))):
            v = img[kept][region[kept]]
            values.append(v[(v >= _SOFT_TISSUE_HU[0]) & (v <= _SOFT_TISSUE_HU[1])])
    readings = [np.concatenate(v) if v else np.zeros(0, dtype=np.float32) for v in (front, back)]
    readings = [t for t in readings if t.size >= 50]
    if not readings:
        return BloodPool(None, 0.0, False)
    tissue = min(readings, key=lambda t: float(np.mean(t >= ENHANCED_HU)))
    share = float(np.mean(tissue >= ENHANCED_HU))
    enhanced = share >= ENHANCED_SHARE
    pool = tissue[tissue >= ENHANCED_HU] if enhanced else tissue
    hist, edges = np.histogram(pool, bins=np.arange(float(pool.min()), float(pool.max()) + 20.0, 10.0))
    peak = int(np.argmax(ndimage.gaussian_filter1d(hist.astype(np.float64), 1.5)))
    return BloodPool(round(float(edges[peak]) + 5.0, 0), round(share, 3), enhanced)


def calcium_threshold_hu(default_hu: float, enhanced: bool, blood_hu: float | None) -> float:
    """The HU from which a voxel counts as calcium: ``default_hu``, or above the enhanced blood."""
    if not enhanced:
        return default_hu
    if blood_hu is None:
        return max(default_hu, CALCIUM_HU_ENHANCED_UNMEASURED)
    return max(default_hu, blood_hu + CALCIUM_MARGIN_HU)
