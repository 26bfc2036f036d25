"""MONAI's Gaussian-blended sliding-window inference in plain numpy, for networks run outside torch.

It reproduces ``monai.inferers.sliding_window_inference`` with ``mode="gaussian"`` (sigma 0.125 of
the window), constant padding of axes shorter than the window, and the same window positions, so an
ONNX Runtime network gives what the PyTorch one gives through MONAI without importing torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

#: A network on a batch ``[b, 1, z, y, x]`` of windows, returning one channel of the same shape.
BatchFn = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def gaussian_importance(roi: Sequence[int], sigma_scale: float = 0.125) -> NDArray[np.float32]:
    """MONAI's Gaussian importance map of a window (``compute_importance_map``), floored at its minimum."""
    axes = []
    for n in roi:
        x = np.arange(-(n - 1) / 2.0, (n - 1) / 2.0 + 1, dtype=np.float32)[:n]
        axes.append(np.exp(x**2 / np.float32(-2.0 * (n * sigma_scale) ** 2)).astype(np.float32))
    imp = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    floor = max(float(imp.min()), 1e-3)
    out: NDArray[np.float32] = np.maximum(imp, np.float32(floor)).astype(np.float32)
    return out


def window_starts(size: int, roi: int, overlap: float) -> list[int]:
    """Start indices of the windows along one axis (``size >= roi``), as MONAI places them."""
    interval = roi if roi == size else max(int(roi * (1.0 - overlap)), 1)
    num = math.ceil(size / interval)
    count = next((d + 1 for d in range(num) if d * interval + roi >= size), 1)
    return [i * interval - max(i * interval + roi - size, 0) for i in range(count)]


def window_count(shape: Sequence[int], roi: int, overlap: float) -> int:
    """Number of windows over a volume of ``shape``."""
    return math.prod(len(window_starts(max(int(s), roi), roi, overlap)) for s in shape)


def sliding_window(
    image: NDArray[np.float32],
    run: BatchFn,
    roi: int,
    overlap: float,
    batch_size: int,
    cval: float,
    on_batch: Callable[[int, int], None] | None = None,
) -> NDArray[np.float32]:
    """Blend ``run`` over windows of edge ``roi`` of ``image`` ``[z, y, x]`` (network input units).

    Parameters
    ----------
    run
        The network on a batch of windows.
    overlap
        Fraction of a window shared with the next.
    batch_size
        Windows per call of ``run``.
    cval
        Value padding axes shorter than ``roi``.
    on_batch
        Called as ``on_batch(done, total)`` after each batch (it may raise to cancel).

    Returns
    -------
    numpy.ndarray
        The blended output, float32, ``image``'s shape.
    """
    pads = [(max(roi - s, 0) // 2, max(roi - s, 0) - max(roi - s, 0) // 2) for s in image.shape]
    padded = np.pad(image, pads, constant_values=cval) if any(a or b for a, b in pads) else image
    starts = list(itertools.product(*(window_starts(s, roi, overlap) for s in padded.shape)))
    imp = gaussian_importance((roi, roi, roi))
    out = np.zeros(padded.shape, dtype=np.float32)
    weight = np.zeros(padded.shape, dtype=np.float32)
    n_batches = math.ceil(len(starts) / batch_size)
    for b in range(n_batches):
        group = starts[b * batch_size : (b + 1) * batch_size]
        boxes = [tuple(slice(s, s + roi) for s in st) for st in group]
        batch = np.stack([padded[box] for box in boxes])[:, None]
        pred = run(np.ascontiguousarray(batch, dtype=np.float32))
        for box, p in zip(boxes, pred[:, 0], strict=True):
            out[box] += imp * p
            weight[box] += imp
        if on_batch is not None:
            on_batch(b + 1, n_batches)
    out /= weight
    crop = tuple(slice(a, a + s) for (a, _), s in zip(pads, image.shape, strict=True))
    return np.ascontiguousarray(out[crop])
