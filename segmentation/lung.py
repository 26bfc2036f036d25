"""Classical lung segmentation: HU threshold, outside-air removal, hole filling, left/right split.

Conventions: arrays ``[z, y, x]``, ``x`` increasing towards the patient's left. The mask labels the
right lung 1 and the left lung 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.errors import InvalidVolumeError

#: Upper HU bound of aerated lung used by the threshold.
LUNG_THRESHOLD_HU = -400.0
#: Radius (mm) of the ball that closes each lung into its envelope (see :func:`lung_envelope`).
ENVELOPE_RADIUS_MM = 15.0


def _validate(hu: NDArray[np.generic], spacing_zyx_mm: Sequence[float]) -> tuple[float, float, float]:
    if hu.ndim != 3:
        raise InvalidVolumeError(f"lung_mask needs a 3-D volume, got shape {hu.shape}")
    if len(spacing_zyx_mm) != 3 or min(float(s) for s in spacing_zyx_mm) <= 0:
        raise InvalidVolumeError(f"spacing must be three positive numbers (mm), got {spacing_zyx_mm}")
    return float(spacing_zyx_mm[0]), float(spacing_zyx_mm[1]), float(spacing_zyx_mm[2])


def lung_mask(
    hu: NDArray[np.generic],
    spacing_zyx_mm: Sequence[float],
    *,
    threshold_hu: float = LUNG_THRESHOLD_HU,
    min_lung_ml: float = 20.0,
) -> NDArray[np.uint8]:
    """Segment the lungs of a chest CT.

    Parameters
    ----------
    hu
        CT volume in HU, axes z, y, x.
    spacing_zyx_mm
        Voxel spacing (mm).
    threshold_hu
        Voxels below this are air-like candidates (HU).
    min_lung_ml
        Components smaller than this (ml) are not lungs.

    Returns
    -------
    numpy.ndarray
        uint8 mask of the input's shape: 1 right lung (low x), 2 left lung (high x), 0 elsewhere.
        Vessels and nodules enclosed by lung are included; the trachea and main bronchi are not.

    Raises
    ------
    InvalidVolumeError
        When the volume is not 3-D or the spacing is invalid.
    """
    sp = _validate(hu, spacing_zyx_mm)
    air = np.asarray(hu) < threshold_hu
    # outside air: air components touching the in-plane border of any slice
    lab, n = ndimage.label(air)
    if n == 0:
        return np.zeros(hu.shape, dtype=np.uint8)
    border = np.unique(
        np.concatenate(
            [lab[:, 0, :].ravel(), lab[:, -1, :].ravel(), lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]
        )
    )
    sizes = np.bincount(lab.ravel(), minlength=n + 1).astype(np.float64)
    sizes[border] = 0
    sizes[0] = 0
    vox_ml = sp[0] * sp[1] * sp[2] / 1000.0
    keep = np.flatnonzero(sizes * vox_ml >= min_lung_ml)
    if keep.size == 0:
        return np.zeros(hu.shape, dtype=np.uint8)
    keep = keep[np.argsort(sizes[keep])[::-1][:2]]
    lut = np.zeros(n + 1, dtype=bool)
    lut[keep] = True
    cand = lut[lab]
    del lab
    cand = _remove_airways(cand, np.asarray(hu), sp)
    # fill vessels and nodules enclosed by lung, slice by slice (holes: background components that
    # do not reach the slice border)
    for k in range(cand.shape[0]):
        if cand[k].any():
            cand[k] |= _holes_2d(cand[k])
    return _split_left_right(cand, sp)


def _holes_2d(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    lab, n = ndimage.label(~mask)
    if n == 0:
        return np.zeros(mask.shape, dtype=bool)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    lut = np.ones(n + 1, dtype=bool)
    lut[border] = False
    lut[0] = False
    holes: NDArray[np.bool_] = lut[lab]
    return holes


def _remove_airways(
    cand: NDArray[np.bool_], hu: NDArray[np.generic], sp: Sequence[float]
) -> NDArray[np.bool_]:
    """Remove the trachea and main bronchi: very dark voxels connected to the trachea at the top."""
    dark = cand & (np.asarray(hu, dtype=np.float32) < -950)
    lab, n = ndimage.label(dark)
    if n == 0:
        return cand
    zs = np.flatnonzero(cand.any(axis=(1, 2)))
    top = zs[-max(1, round(15.0 / sp[0])) :]
    cx = cand.shape[2] / 2.0
    airway_ids: set[int] = set()
    for k in top:
        ids = np.unique(lab[k][lab[k] > 0])
        for i in ids:
            xs = np.nonzero(lab[k] == i)[1]
            # a trachea-sized component near the midline
            if abs(float(xs.mean()) - cx) * sp[2] < 40.0 and xs.size * sp[1] * sp[2] < 800.0:
                airway_ids.add(int(i))
    if not airway_ids:
        return cand
    lut = np.zeros(n + 1, dtype=bool)
    lut[list(airway_ids)] = True
    airway = lut[lab]
    # only keep the airway part that is tube-like: dilate slightly so walls go too
    airway = ndimage.binary_dilation(airway, iterations=1)
    out: NDArray[np.bool_] = cand & ~airway
    return out


def _split_left_right(cand: NDArray[np.bool_], sp: Sequence[float]) -> NDArray[np.uint8]:
    """Label the right lung 1 and the left lung 2, separating lungs joined at the front or back."""
    lab, n = ndimage.label(cand)
    out = np.zeros(cand.shape, dtype=np.uint8)
    if n == 0:
        return out
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    if n >= 2 and sizes[order[1]] > 0.15 * sizes[order[0]]:
        ids = [int(order[0]) + 1, int(order[1]) + 1]
        xgrid = np.broadcast_to(np.arange(cand.shape[2], dtype=np.float64), cand.shape)
        xsum = np.bincount(lab.ravel(), weights=xgrid.ravel(), minlength=n + 1)
        xs = [float(xsum[i]) / float(sizes[i - 1]) for i in ids]
        right, left = (ids[0], ids[1]) if xs[0] < xs[1] else (ids[1], ids[0])
        lut = np.zeros(n + 1, dtype=np.uint8)
        lut[right] = 1
        lut[left] = 2
        result: NDArray[np.uint8] = lut[lab]
        return result
    parts = _split_joined(lab == order[0] + 1)
    if len(parts) == 1:
        xs0 = np.nonzero(parts[0])[2]
        out[parts[0]] = 1 if xs0.mean() < cand.shape[2] / 2.0 else 2
        return out
    xm = [float(np.nonzero(p)[2].mean()) for p in parts]
    right_m, left_m = (parts[0], parts[1]) if xm[0] < xm[1] else (parts[1], parts[0])
    out[right_m] = 1
    out[left_m] = 2
    return out


def _split_joined(mask: NDArray[np.bool_]) -> list[NDArray[np.bool_]]:
    """Split one component into two lungs by eroding until it falls apart, then growing back."""
    eroded = mask
    for _ in range(8):
        eroded = ndimage.binary_erosion(eroded)
        lab, n = ndimage.label(eroded)
        if n >= 2:
            sizes = np.bincount(lab.ravel())[1:]
            order = np.argsort(sizes)[::-1]
            if sizes[order[1]] > 0.15 * sizes[order[0]]:
                seeds = np.zeros(mask.shape, dtype=np.int32)
                seeds[lab == order[0] + 1] = 1
                seeds[lab == order[1] + 1] = 2
                _, idx = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
                nearest = seeds[tuple(idx)]
                return [mask & (nearest == 1), mask & (nearest == 2)]
    return [mask]


def lung_envelope(
    lung: NDArray[np.generic], spacing_zyx_mm: Sequence[float], *, radius_mm: float = ENVELOPE_RADIUS_MM
) -> NDArray[np.bool_]:
    """Each lung closed with a ball of ``radius_mm``: the lung plus what it wraps closely.

    The closing fills the lung's concavities narrower than the ball: nodules on the pleura (the
    threshold mask leaves them out, they touch the chest wall), vessels at the hilum and fissure
    clefts. The mediastinum, the heart, the great vessels, the chest wall and the diaphragm are wider
    than the ball and stay outside. The two lungs are closed separately, so the narrow mediastinum
    between them is never bridged.

    Parameters
    ----------
    lung
        Lung mask (1 right, 2 left; any other non-zero value counts as one lung), axes z, y, x.
    spacing_zyx_mm
        Voxel spacing (mm).
    radius_mm
        Radius of the closing ball (mm).

    Returns
    -------
    numpy.ndarray
        Boolean mask of the input's shape.

    Raises
    ------
    InvalidVolumeError
        When the mask is not 3-D or the spacing is invalid.
    """
    sp = _validate(lung, spacing_zyx_mm)
    labels = np.asarray(lung)
    out = np.zeros(labels.shape, dtype=bool)
    pad = [int(np.ceil(radius_mm / s)) + 2 for s in sp]
    for side in np.unique(labels[labels > 0]).tolist():
        side_mask = labels == side
        idx = np.argwhere(side_mask)
        lo = idx.min(axis=0)
        hi = idx.max(axis=0) + 1
        # a box with room for the dilation on every side (padded beyond the volume where needed)
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        sub = np.pad(side_mask[box], [(p, p) for p in pad])
        grown = ndimage.distance_transform_edt(~sub, sampling=sp) <= radius_mm
        closed = ndimage.distance_transform_edt(grown, sampling=sp) > radius_mm
        inner = closed[tuple(slice(p, p + (b - a)) for p, a, b in zip(pad, lo, hi, strict=True))]
        out[box] |= inner | side_mask[box]
    return out
