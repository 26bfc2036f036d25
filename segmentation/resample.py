"""Fast resampling between a scan's grid and the network's working grid (torch on CPU).

Downsampled axes are box-averaged (anti-aliased), upsampled axes are linearly interpolated. The mapping
preserves the volume's extent: original index ``i`` sits at new coordinate ``(i + 0.5) * m / n - 0.5``
for ``n`` original and ``m`` new voxels along an axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def target_shape(
    shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]
) -> tuple[int, int, int]:
    """Shape of the volume after resampling from ``spacing`` to ``target`` (mm), keeping its extent."""
    out = [max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, target, strict=True)]
    return out[0], out[1], out[2]


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
        ``"linear"`` (box-average where shrinking, trilinear where growing) or ``"nearest"``.

    Returns
    -------
    numpy.ndarray
        float32 array of the new shape.
    """
    import torch
    from torch.nn import functional as tnf

    if shape is None:
        if target is None:
            raise ValueError("resample_image needs a target spacing or a shape")
        shape = target_shape(volume.shape, spacing, target)
    out_shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    t = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    if mode == "nearest":
        r = tnf.interpolate(t, size=out_shape, mode="nearest")
        return np.ascontiguousarray(r[0, 0].numpy())
    if mode != "linear":
        raise ValueError(f"mode must be 'linear' or 'nearest', not {mode!r}")
    # shrink the axes that get smaller by box averaging first
    mid = (min(out_shape[0], t.shape[2]), min(out_shape[1], t.shape[3]), min(out_shape[2], t.shape[4]))
    if mid != tuple(t.shape[2:]):
        t = tnf.adaptive_avg_pool3d(t, mid)
    if tuple(t.shape[2:]) != out_shape:
        t = tnf.interpolate(t, size=out_shape, mode="trilinear", align_corners=False)
    return np.ascontiguousarray(t[0, 0].numpy())
