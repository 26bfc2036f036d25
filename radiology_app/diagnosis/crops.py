"""The fixed physical-size crop the diagnosis model sees, and its input channels.

A crop is a cube of ``CROP_SIZE_MM`` (40 mm) sampled at ``CROP_SPACING_MM`` (1.25 mm) isotropic, i.e.
``CROP_SHAPE`` = 32 x 32 x 32 voxels ``[z, y, x]``, centred on the nodule. The network gets three HU windows
(lung, mediastinum, calcification/fat) scaled to [0, 1] plus the nodule mask.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from radiology_app.core.errors import ModelError

CROP_SIZE_MM = 40.0
CROP_SPACING_MM = 1.25
CROP_SHAPE: tuple[int, int, int] = (32, 32, 32)

#: HU windows ``(low, high)`` mapped to [0, 1]: lung, mediastinum, high-attenuation/fat detail.
HU_WINDOWS: tuple[tuple[float, float], ...] = ((-1350.0, 150.0), (-125.0, 225.0), (-200.0, 1000.0))
N_IMAGE_CHANNELS = len(HU_WINDOWS) + 1


def extract_crop(
    volume_hu: npt.NDArray[np.generic],
    spacing_zyx_mm: tuple[float, float, float],
    mask: npt.NDArray[np.generic] | None,
    centroid_zyx: tuple[float, float, float],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], tuple[float, float, float]]:
    """Resample the fixed-size crop around a nodule.

    Parameters
    ----------
    volume_hu
        CT volume ``[z, y, x]`` in HU.
    spacing_zyx_mm
        Voxel spacing of ``volume_hu`` in mm.
    mask
        Nodule mask of the same shape (non-zero inside), or ``None``.
    centroid_zyx
        Nodule centre as a (fractional) voxel index ``(z, y, x)``.

    Returns
    -------
    tuple
        ``(crop_hu, crop_mask, crop_spacing_zyx_mm)``: float32 HU and uint8 mask of shape
        :data:`CROP_SHAPE`, and the crop spacing (``CROP_SPACING_MM`` on every axis). Outside the volume
        the crop is filled with -1000 HU.

    Raises
    ------
    ModelError
        If the volume is not 3-D or the mask shape differs.
    """
    vol = np.asarray(volume_hu)
    if vol.ndim != 3:
        raise ModelError(f"extract_crop: volume must be 3-D, got shape {vol.shape}")
    if mask is not None and np.asarray(mask).shape != vol.shape:
        raise ModelError(f"extract_crop: mask shape {np.asarray(mask).shape} differs from volume {vol.shape}")
    offsets = (np.arange(CROP_SHAPE[0]) - (CROP_SHAPE[0] - 1) / 2.0) * CROP_SPACING_MM
    coords = []
    for axis in range(3):
        coords.append(centroid_zyx[axis] + offsets / float(spacing_zyx_mm[axis]))
    grid = np.meshgrid(*coords, indexing="ij")
    hu = ndimage.map_coordinates(vol.astype(np.float32), grid, order=1, mode="constant", cval=-1000.0)
    if mask is not None:
        m = (
            ndimage.map_coordinates(
                (np.asarray(mask) > 0).astype(np.float32), grid, order=1, mode="constant", cval=0.0
            )
            >= 0.5
        )
    else:
        m = np.zeros(CROP_SHAPE, dtype=bool)
    return hu.astype(np.float32), m.astype(np.uint8), (CROP_SPACING_MM,) * 3


def image_channels(
    crop_hu: npt.NDArray[np.floating], crop_mask: npt.NDArray[np.generic]
) -> npt.NDArray[np.float32]:
    """Stack the HU windows (scaled to [0, 1]) and the mask: shape ``(N_IMAGE_CHANNELS, *CROP_SHAPE)``."""
    hu = np.asarray(crop_hu, dtype=np.float32)
    chans = [np.clip((hu - lo) / (hi - lo), 0.0, 1.0) for lo, hi in HU_WINDOWS]
    chans.append((np.asarray(crop_mask) > 0).astype(np.float32))
    return np.stack(chans).astype(np.float32)


def estimate_noise_hu(crop_hu: npt.NDArray[np.floating]) -> float:
    """Estimate the image noise (HU standard deviation) from high-pass residuals of lung-density voxels."""
    hu = np.asarray(crop_hu, dtype=np.float32)
    resid = hu - ndimage.uniform_filter(hu, 3)
    lung = (hu > -1000) & (hu < -500)
    vals = resid[lung] if lung.sum() > 200 else resid.ravel()
    mad = float(np.median(np.abs(vals - np.median(vals))))
    # For white noise slightly correlated (sigma 0.5 vox), residual of a 3-box keeps ~0.75 of the std.
    return 1.4826 * mad / 0.75
