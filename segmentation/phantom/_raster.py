"""Low-level rasterisation helpers shared by the nodule and chest phantoms.

All coordinates are millimetres in index space (``index * spacing``), axis order z, y, x.
Shapes are drawn with a partial-volume occupancy in [0, 1] so edges look like a real scanner's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

FloatArray = NDArray[np.float32]
Spacing = tuple[float, float, float]


def box_slices(
    center_mm: Sequence[float], radius_mm: float, spacing: Spacing, shape: Sequence[int]
) -> tuple[slice, slice, slice] | None:
    """Index slices of the box of half-size ``radius_mm`` around ``center_mm`` clipped to ``shape``.

    Returns
    -------
    tuple of slice or None
        ``None`` when the box lies wholly outside the volume.
    """
    out: list[slice] = []
    for c, s, n in zip(center_mm, spacing, shape, strict=True):
        lo = int(np.floor((c - radius_mm) / s))
        hi = int(np.ceil((c + radius_mm) / s)) + 1
        lo, hi = max(lo, 0), min(hi, int(n))
        if hi <= lo:
            return None
        out.append(slice(lo, hi))
    return out[0], out[1], out[2]


def box_offsets(
    sl: tuple[slice, slice, slice], center_mm: Sequence[float], spacing: Spacing
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Broadcastable offsets (mm) from ``center_mm`` of the voxel centres inside ``sl``."""
    zz = (np.arange(sl[0].start, sl[0].stop, dtype=np.float32) * spacing[0] - center_mm[0])[:, None, None]
    yy = (np.arange(sl[1].start, sl[1].stop, dtype=np.float32) * spacing[1] - center_mm[1])[None, :, None]
    xx = (np.arange(sl[2].start, sl[2].stop, dtype=np.float32) * spacing[2] - center_mm[2])[None, None, :]
    return zz.astype(np.float32), yy.astype(np.float32), xx.astype(np.float32)


def occupancy(distance_mm: FloatArray, width_mm: float | FloatArray) -> FloatArray:
    """Partial-volume occupancy from a signed distance (negative inside) and a voxel width in mm."""
    out: FloatArray = np.clip(0.5 - distance_mm / width_mm, 0.0, 1.0).astype(np.float32)
    return out


def mean_width(spacing: Spacing) -> float:
    """A representative voxel width (mm) for partial-volume ramps of thin oblique structures."""
    return float(np.mean(spacing))


def paint_tube(
    volume: FloatArray,
    p0_mm: Sequence[float],
    p1_mm: Sequence[float],
    r0_mm: float,
    r1_mm: float,
    hu: float,
    spacing: Spacing,
    *,
    mask_out: NDArray[np.bool_] | None = None,
) -> None:
    """Blend a tapered cylinder (capsule) from ``p0`` to ``p1`` into ``volume`` in place.

    Parameters
    ----------
    volume
        HU volume, modified in place.
    p0_mm, p1_mm
        End points in mm (z, y, x).
    r0_mm, r1_mm
        Radii (mm) at the two ends.
    hu
        Attenuation of the tube (HU).
    spacing
        Voxel spacing (mm).
    mask_out
        Optional boolean volume that receives the voxels more than half covered by the tube.
    """
    a = np.asarray(p0_mm, dtype=np.float32)
    b = np.asarray(p1_mm, dtype=np.float32)
    rmax = max(r0_mm, r1_mm) + 2.0 * max(spacing)
    lo = np.minimum(a, b) - rmax
    hi = np.maximum(a, b) + rmax
    sl_list: list[slice] = []
    for k in range(3):
        i0 = max(int(np.floor(lo[k] / spacing[k])), 0)
        i1 = min(int(np.ceil(hi[k] / spacing[k])) + 1, volume.shape[k])
        if i1 <= i0:
            return
        sl_list.append(slice(i0, i1))
    sl = (sl_list[0], sl_list[1], sl_list[2])
    zz, yy, xx = box_offsets(sl, (0.0, 0.0, 0.0), spacing)
    ab = b - a
    denom = float(np.dot(ab, ab)) or 1e-6
    t = ((zz - a[0]) * ab[0] + (yy - a[1]) * ab[1] + (xx - a[2]) * ab[2]) / denom
    t = np.clip(t, 0.0, 1.0)
    dz = zz - (a[0] + t * ab[0])
    dy = yy - (a[1] + t * ab[1])
    dx = xx - (a[2] + t * ab[2])
    dist = np.sqrt(dz * dz + dy * dy + dx * dx)
    radius = r0_mm + (r1_mm - r0_mm) * t
    occ = occupancy((dist - radius).astype(np.float32), mean_width(spacing))
    sub = volume[sl]
    sub += occ * (np.float32(hu) - sub)
    if mask_out is not None:
        mask_out[sl] |= occ >= 0.5


def smooth_noise(
    shape: Sequence[int], sigma_mm: float, spacing: Spacing, rng: np.random.Generator, std: float
) -> FloatArray:
    """Gaussian-correlated noise of standard deviation ``std`` and correlation length ``sigma_mm``."""
    white = rng.standard_normal(tuple(int(n) for n in shape), dtype=np.float32)
    sig = [max(sigma_mm / s, 0.01) for s in spacing]
    field = ndimage.gaussian_filter(white, sig, mode="wrap")
    sd = float(field.std()) or 1.0
    out: FloatArray = (field * (std / sd)).astype(np.float32)
    return out


def apply_scanner(
    hu: FloatArray,
    spacing: Spacing,
    rng: np.random.Generator,
    *,
    noise_hu: float,
    kernel: str,
) -> FloatArray:
    """Simulate the scanner: point-spread blur (slice profile), reconstruction kernel and noise.

    Parameters
    ----------
    hu
        Noise-free HU volume (not modified).
    spacing
        Voxel spacing (mm); the slice thickness is taken as the z spacing.
    rng
        Random generator for the noise.
    noise_hu
        Standard deviation of the added image noise (HU).
    kernel
        ``"soft"`` (smooth, low noise texture) or ``"sharp"`` (edge-enhanced, fine-grained noise).

    Returns
    -------
    numpy.ndarray
        The simulated image (float32, HU).
    """
    if kernel not in ("soft", "sharp"):
        raise ValueError(f"kernel must be 'soft' or 'sharp', not {kernel!r}")
    psf_mm = 0.45 if kernel == "soft" else 0.3
    sig = [max(0.35 * spacing[0], 0.3) / spacing[0], psf_mm / spacing[1], psf_mm / spacing[2]]
    out = ndimage.gaussian_filter(hu, sig, mode="nearest").astype(np.float32)
    if kernel == "sharp":
        low = ndimage.gaussian_filter(out, [0.0, 0.9 / spacing[1], 0.9 / spacing[2]], mode="nearest")
        out = out + 0.6 * (out - low)
    if noise_hu > 0:
        corr_mm = 0.7 if kernel == "soft" else 0.35
        white = rng.standard_normal(hu.shape, dtype=np.float32)
        nsig = [0.0, corr_mm / spacing[1], corr_mm / spacing[2]]
        noise = ndimage.gaussian_filter(white, nsig, mode="wrap")
        sd = float(noise.std()) or 1.0
        out += noise * np.float32(noise_hu / sd)
    result: FloatArray = out.astype(np.float32)
    return result


def random_rotation(rng: np.random.Generator, max_tilt_deg: float = 15.0) -> NDArray[np.float64]:
    """A rotation (3x3, z-y-x frame) mostly about the z axis with a small random tilt.

    The columns are the nodule's own axes (z', y', x') expressed in the image frame.
    """
    yaw = rng.uniform(0.0, 2.0 * np.pi)
    tilt = np.deg2rad(rng.uniform(-max_tilt_deg, max_tilt_deg))
    cz, sz = np.cos(yaw), np.sin(yaw)
    # rotation about z (acts on y, x)
    rz = np.array([[1.0, 0.0, 0.0], [0.0, cz, -sz], [0.0, sz, cz]])
    ct, st = np.cos(tilt), np.sin(tilt)
    # tilt about y (mixes z and x)
    ry = np.array([[ct, 0.0, -st], [0.0, 1.0, 0.0], [st, 0.0, ct]])
    return np.asarray(rz @ ry, dtype=np.float64)


def frame_with_normal(normal_zyx: Sequence[float], rng: np.random.Generator) -> NDArray[np.float64]:
    """A rotation whose first column (the nodule's z' axis) is ``normal_zyx``."""
    n = np.asarray(normal_zyx, dtype=np.float64)
    n = n / (np.linalg.norm(n) or 1.0)
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(n, helper)
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    ang = rng.uniform(0.0, 2.0 * np.pi)
    u2 = np.cos(ang) * u + np.sin(ang) * v
    v2 = np.cross(n, u2)
    return np.stack([n, v2, u2], axis=1)
