"""Lesion insertion: synthetic nodules painted into the lungs of a real chest CT.

The phantom's nodule painter (:func:`segmentation.phantom.nodules.paint_nodule`) rasterises each nodule
on the scan's own grid, so thick slices blur it as they blur a real nodule (partial volume); noise
measured in the scan's lung is added where the painting changed the image, so the nodule is as noisy
as its surroundings. Around it stay the real vessels, fissures, pleura and mediastinum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from segmentation.fp_train import matched_noise
from segmentation.phantom.chest import place_nodules
from segmentation.phantom.nodules import NODULE_KINDS, NoduleTruth, random_spec

#: Kinds inserted into real lungs (perifissural nodules need the fissures' geometry, which a real scan
#: does not come with).
INSERTED_KINDS = tuple(k for k in NODULE_KINDS if k != "perifissural")


def insert_nodules(
    hu: NDArray[np.generic],
    spacing_zyx_mm: Sequence[float],
    where: NDArray[np.bool_],
    rng: np.random.Generator,
    *,
    count: int,
    diameter_range_mm: tuple[float, float] = (3.5, 30.0),
) -> tuple[NDArray[np.float32], NDArray[np.int16], list[NoduleTruth]]:
    """Paint ``count`` random nodules into a copy of a real CT.

    Parameters
    ----------
    hu
        The real CT in HU, axes z, y, x.
    spacing_zyx_mm
        Its voxel spacing (mm).
    where
        Lung voxels the nodules may occupy (the lung mask without the readers' marks and a margin).
        Juxtapleural nodules are placed against its edge away from the midline.
    rng
        Random generator.
    count
        Nodules to draw; those that find no room are left out.
    diameter_range_mm
        Range of mean diameters (mm), drawn log-uniformly.

    Returns
    -------
    image, labels, truths
        The CT with the nodules (float32 HU), their instance map (1..n) and their truth.
    """
    sp = (float(spacing_zyx_mm[0]), float(spacing_zyx_mm[1]), float(spacing_zyx_mm[2]))
    before = np.asarray(hu, dtype=np.float32)
    image = before.copy()
    labels = np.zeros(before.shape, dtype=np.int16)
    specs = [
        random_spec(rng, diameter_range_mm=diameter_range_mm, kinds=INSERTED_KINDS) for _ in range(count)
    ]
    truths = place_nodules(
        image, labels, where.astype(np.uint8), sp, rng, specs, (count, count), diameter_range_mm, []
    )
    changed = np.abs(image - before) > 1.0
    if changed.any():
        idx = np.argwhere(changed)
        box = tuple(slice(int(a), int(b) + 1) for a, b in zip(idx.min(axis=0), idx.max(axis=0), strict=True))
        noise = matched_noise(before[box], rng)
        image[box][changed[box]] += noise[changed[box]]
    return image, labels, truths
