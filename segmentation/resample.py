"""Fast separable resampling between a scan's grid and the network's working grid.

Each axis is resampled by a small weight matrix: linear interpolation where the grid gets finer, a
stretched triangle (anti-aliasing) where it gets coarser, or nearest neighbour for label maps. The
volume is produced one output slice at a time (a few weighted input slices, then sparse in-plane
products), so no full-size float copy or transpose is made. The mapping preserves the volume's
extent: original index ``i`` sits at new coordinate ``(i + 0.5) * m / n - 0.5`` for ``n`` original
and ``m`` new voxels along an axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

GenericT = TypeVar("GenericT", bound=np.generic)


def target_shape(
    shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]
) -> tuple[int, int, int]:
    """Shape of the volume after resampling from ``spacing`` to ``target`` (mm), keeping its extent."""
    out = [max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, target, strict=True)]
    return out[0], out[1], out[2]


def grid_like(
    shape: Sequence[int], spacing: Sequence[float], target_mm: float
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """The isotropic grid of about ``target_mm`` covering a volume: its shape and exact spacing (mm)."""
    new = target_shape(shape, spacing, (target_mm,) * 3)
    sp = tuple(float(shape[k]) * float(spacing[k]) / new[k] for k in range(3))
    return new, (sp[0], sp[1], sp[2])


def resample_matrix(n: int, m: int) -> NDArray[np.float32]:
    """Weights (m x n) taking ``n`` samples to ``m`` along one axis (extent-preserving).

    Upsampling interpolates linearly; downsampling averages with a triangle ``n / m`` samples wide
    on each side, so no aliasing. Rows sum to one.
    """
    u = (np.arange(m, dtype=np.float64) + 0.5) * n / m - 0.5
    r = max(1.0, n / m)
    i = np.arange(n, dtype=np.float64)
    w = np.clip(1.0 - np.abs(i[None, :] - u[:, None]) / r, 0.0, None)
    s = w.sum(axis=1, keepdims=True)
    s[s == 0] = 1.0
    out: NDArray[np.float32] = (w / s).astype(np.float32)
    return out


def nearest_index(n: int, m: int) -> NDArray[np.intp]:
    """Source index (length m) of each of ``m`` new samples for nearest-neighbour resampling."""
    u = (np.arange(m, dtype=np.float64) + 0.5) * n / m - 0.5
    out: NDArray[np.intp] = np.clip(np.rint(u), 0, n - 1).astype(np.intp)
    return out


def nearest_resize(volume: NDArray[GenericT], shape: Sequence[int]) -> NDArray[GenericT]:
    """Nearest-neighbour resampling of a label or mask volume to ``shape``, keeping its dtype."""
    src = np.asarray(volume)
    iz, iy, ix = (nearest_index(src.shape[a], int(shape[a])) for a in range(3))
    picked: NDArray[GenericT] = np.empty_like(src, shape=(len(iz), len(iy), len(ix)))
    for k, z in enumerate(iz.tolist()):  # slice by slice: a cache-friendly gather
        picked[k] = src[z][iy][:, ix]
    return picked


def resample_image(
    volume: NDArray[np.generic],
    spacing: Sequence[float],
    target: Sequence[float] | None = None,
    *,
    shape: Sequence[int] | None = None,
    mode: str = "linear",
) -> NDArray[np.float32]:
    """Resample a 3-D image to a new spacing or shape.

    Parameters
    ----------
    volume
        Array ``[z, y, x]`` (any numeric dtype).
    spacing
        Its voxel spacing (mm).
    target
        Wanted spacing (mm); ignored when ``shape`` is given.
    shape
        Wanted shape (overrides ``target``).
    mode
        ``"linear"`` (anti-aliased where shrinking) or ``"nearest"``.

    Returns
    -------
    numpy.ndarray
        float32 array of the new shape.
    """
    if shape is None:
        if target is None:
            raise ValueError("resample_image needs a target spacing or a shape")
        shape = target_shape(volume.shape, spacing, target)
    out_shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    if mode == "nearest":
        return nearest_resize(np.asarray(volume), out_shape).astype(np.float32, copy=False)
    if mode != "linear":
        raise ValueError(f"mode must be 'linear' or 'nearest', not {mode!r}")
    from scipy import sparse

    src = np.asarray(volume)
    (nz, ny, nx), (mz, my, mx) = src.shape, out_shape
    wz = resample_matrix(nz, mz)
    wy = sparse.csr_matrix(resample_matrix(ny, my)) if ny != my else None
    wx_t = sparse.csc_matrix(resample_matrix(nx, mx).T) if nx != mx else None
    out = np.empty(out_shape, dtype=np.float32)
    for j in range(mz):
        plane = np.zeros((ny, nx), dtype=np.float32)
        for i in np.flatnonzero(wz[j]).tolist():
            plane += wz[j, i] * src[i]
        if wy is not None:
            plane = wy @ plane
        if wx_t is not None:
            plane = plane @ wx_t
        out[j] = plane
    return out
