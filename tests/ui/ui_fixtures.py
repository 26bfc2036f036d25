"""Small synthetic volumes for the UI tests (no DICOM, no torch)."""

from __future__ import annotations

import numpy as np

from radiology_app.core.types import Volume


def make_volume(shape: tuple[int, int, int] = (40, 64, 72),
                spacing: tuple[float, float, float] = (2.5, 0.7, 0.7),
                nodule_zyx: tuple[int, int, int] | None = (20, 30, 40), radius_vox: int = 4) -> Volume:
    """A small CT-like volume: air outside, a soft-tissue body, two lungs, one bright nodule."""
    z, y, x = shape
    hu = np.full(shape, -1000, dtype=np.int16)
    yy, xx = np.mgrid[0:y, 0:x]
    body = ((yy - y / 2) / (0.45 * y)) ** 2 + ((xx - x / 2) / (0.45 * x)) ** 2 <= 1
    hu[:, body] = 40
    for cx in (0.3 * x, 0.7 * x):
        lung = ((yy - y / 2) / (0.3 * y)) ** 2 + ((xx - cx) / (0.15 * x)) ** 2 <= 1
        hu[:, lung] = -850
    if nodule_zyx is not None:
        zz, yy3, xx3 = np.mgrid[0:z, 0:y, 0:x]
        cz, cy, cx3 = nodule_zyx
        ball = (((zz - cz) * spacing[0]) ** 2 + ((yy3 - cy) * spacing[1]) ** 2
                + ((xx3 - cx3) * spacing[2]) ** 2) <= (radius_vox * spacing[1]) ** 2
        hu[ball] = 30
    direction = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    return Volume(hu=hu, spacing_zyx_mm=spacing, origin_lps_mm=(-25.0, -20.0, -100.0), direction=direction,
                  series_uid="1.2.3.4")
