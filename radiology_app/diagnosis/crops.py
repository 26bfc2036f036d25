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


#: Names of the hand-crafted shape/attenuation descriptors that accompany the CNN's image tokens.
RADIOMICS_NAMES: tuple[str, ...] = (
    "log_volume_cm3",
    "diameter_30mm",
    "fat_fraction",
    "calcified_fraction",
    "ground_glass_fraction",
    "solid_fraction",
    "air_fraction",
    "mean_hu_500",
    "std_hu_300",
    "elongation",
    "surface_ratio",
    "pleural_contact",
    "central_calcium",
)
N_RADIOMICS = len(RADIOMICS_NAMES)


def radiomics(
    crop_hu: npt.NDArray[np.floating], crop_mask: npt.NDArray[np.generic]
) -> npt.NDArray[np.float32]:
    """Shape and attenuation descriptors of the masked nodule (see :data:`RADIOMICS_NAMES`).

    HU bands (inside the mask eroded by one voxel): fat -130 to -30, calcified > 200, ground glass
    -850 to -300, solid -300 to 200, air < -850.
    Volume in cm3 (log1p), diameter of the equal-volume sphere / 30 mm, elongation = sqrt of the largest over
    the smallest principal variance (/ 4), surface voxels over volume^(2/3) (/ 10), pleural contact = share of
    a 2-voxel shell around the nodule above -300 HU, central calcium = calcified share of the eroded core.
    All zeros for an empty mask.
    """
    m = np.asarray(crop_mask) > 0
    out = np.zeros(N_RADIOMICS, dtype=np.float32)
    n = int(m.sum())
    if n == 0:
        return out
    hu = np.asarray(crop_hu, dtype=np.float32)
    inner = ndimage.binary_erosion(m)
    v = hu[inner] if inner.sum() >= 8 else hu[m]  # attenuation bands away from the partial-volume rim
    vol_mm3 = n * CROP_SPACING_MM**3
    out[0] = np.log1p(vol_mm3 / 1000.0)
    out[1] = (6.0 * vol_mm3 / np.pi) ** (1 / 3) / 30.0
    out[2] = ((v > -130) & (v < -30)).mean()
    out[3] = (v > 200).mean()
    out[4] = ((v > -850) & (v < -300)).mean()
    out[5] = ((v >= -300) & (v <= 200)).mean()
    out[6] = (v < -850).mean()
    out[7] = float(np.clip(v.mean(), -1000, 1000)) / 500.0
    out[8] = float(min(v.std(), 600.0)) / 300.0
    if n >= 4:
        coords = np.argwhere(m).astype(np.float64)
        ev = np.sort(np.linalg.eigvalsh(np.cov(coords.T) + 1e-6 * np.eye(3)))
        out[9] = float(np.sqrt(ev[-1] / max(ev[0], 1e-3))) / 4.0
    eroded = ndimage.binary_erosion(m)
    out[10] = float((m & ~eroded).sum()) / (n ** (2 / 3)) / 10.0
    shell = ndimage.binary_dilation(m, iterations=2) & ~m
    if shell.any():
        out[11] = float((hu[shell] > -300).mean())
    core = ndimage.binary_erosion(m, iterations=2)
    if core.any():
        out[12] = float((hu[core] > 200).mean())
    return out
