"""Nodule candidates on the working grid, and the crops the false-positive classifier reads.

A candidate is a local maximum of the U-Net's nodule probability inside (a dilated) lung, down to a
low probability, so that faint and small nodules the network is unsure of are still looked at; the
classifier in :mod:`segmentation.fp_reduction` then decides which candidates are nodules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.model import normalize_hu

#: Edge of a classifier crop (working-grid voxels; 40 mm at 1.25 mm).
CROP_SIZE = 32
#: Lowest U-Net peak probability that makes a candidate.
MIN_CANDIDATE_PROBABILITY = 0.05
#: At most this many network candidates and this many extra blob candidates per study.
MAX_NETWORK_CANDIDATES = 400
MAX_BLOB_CANDIDATES = 150
#: Local maxima closer than this many working voxels (edge of the max filter) are merged.
PEAK_WINDOW = 7


@dataclass(frozen=True)
class Candidate:
    """A place that might hold a nodule.

    Attributes
    ----------
    centre
        Working-grid voxel index (z, y, x) of the probability peak.
    probability
        The network's nodule probability there.
    """

    centre: tuple[int, int, int]
    probability: float


def find_candidates(
    prob: NDArray[np.floating],
    region: NDArray[np.bool_],
    *,
    min_probability: float = 0.05,
    max_candidates: int = 600,
) -> list[Candidate]:
    """Local maxima of the nodule probability inside ``region``, most probable first.

    Parameters
    ----------
    prob
        Nodule probability on the working grid.
    region
        Where candidates may lie (the dilated lung), same shape.
    min_probability
        Lowest peak probability kept.
    max_candidates
        At most this many (the most probable) are returned.
    """
    p = np.asarray(prob, dtype=np.float32)
    smooth = ndimage.gaussian_filter(p, 1.0)
    peaks = (smooth >= ndimage.maximum_filter(smooth, size=PEAK_WINDOW)) & region & (p >= min_probability)
    # a plateau (probability saturated at 1) is one candidate: the most probable voxel of each
    comp, n = ndimage.label(peaks, structure=np.ones((3, 3, 3)))
    if n == 0:
        return []
    # the most probable voxel of each plateau, from the (few) peak voxels rather than the whole volume
    where = np.argwhere(peaks)
    labs = comp[tuple(where.T)]
    vals = p[tuple(where.T)]
    by_plateau = np.lexsort((-vals, labs))
    first = by_plateau[np.r_[True, labs[by_plateau][1:] != labs[by_plateau][:-1]]]
    order = first[np.argsort(-vals[first], kind="stable")][:max_candidates]
    return [Candidate((int(where[i][0]), int(where[i][1]), int(where[i][2])), float(vals[i])) for i in order]


def candidate_crops(
    image_hu: NDArray[np.generic],
    prob: NDArray[np.floating],
    centres: list[tuple[int, int, int]],
    size: int = CROP_SIZE,
) -> NDArray[np.float32]:
    """Crops ``[N, 2, size, size, size]`` around each centre: normalised HU and network probability.

    Voxels outside the volume read as air (HU) and zero (probability).
    """
    out = np.empty((len(centres), 2, size, size, size), dtype=np.float32)
    out[:, 0] = normalize_hu(np.array([-1000.0]))[0]
    out[:, 1] = 0.0
    half = size // 2
    for n, c in enumerate(centres):
        src: list[slice] = []
        dst: list[slice] = []
        for ax in range(3):
            lo = int(c[ax]) - half
            a0, a1 = max(lo, 0), min(lo + size, image_hu.shape[ax])
            src.append(slice(a0, a1))
            dst.append(slice(a0 - lo, a1 - lo))
        s, d = tuple(src), tuple(dst)
        out[n, 0][d] = normalize_hu(image_hu[s])
        out[n, 1][d] = prob[s]
    return out


def blob_candidates(
    image_hu: NDArray[np.generic],
    region: NDArray[np.bool_],
    spacing_mm: float,
    *,
    sigma_mm: float = 1.5,
    min_contrast_hu: float = 40.0,
    max_candidates: int = 150,
    exclude: list[tuple[int, int, int]] | None = None,
    exclude_radius: float = 3.0,
) -> list[Candidate]:
    """Small bright blobs the network may have missed, most blob-like first.

    A centre-surround (difference of Gaussians, ``sigma_mm`` and twice that) finds bright spots;
    each is ranked by a Hessian dot measure (``lambda_min^2 / |lambda_max|`` over three negative
    eigenvalues, HU per voxel^2), high for a ball and near zero for a vessel. Spots within
    ``exclude_radius`` voxels of ``exclude`` are skipped. ``probability`` of the result is 0.
    """
    img = np.clip(np.asarray(image_hu, dtype=np.float32), -1000.0, 100.0)
    s = sigma_mm / spacing_mm
    fine = ndimage.gaussian_filter(img, s)
    dog = fine - ndimage.gaussian_filter(img, 2.0 * s)
    peaks = (dog >= ndimage.maximum_filter(dog, size=5)) & region & (dog >= min_contrast_hu)
    idx = np.argwhere(peaks)
    inner = np.all((idx >= 1) & (idx < np.array(img.shape) - 1), axis=1)
    idx = idx[inner]
    if exclude:
        ex = np.asarray(exclude, dtype=np.float32)
        keep = np.ones(len(idx), dtype=bool)
        for a in range(0, len(idx), 4096):
            dist2 = ((idx[a : a + 4096, None, :].astype(np.float32) - ex[None]) ** 2).sum(-1)
            keep[a : a + 4096] = dist2.min(axis=1) > exclude_radius**2
        idx = idx[keep]
    if len(idx) == 0:
        return []
    z, y, x = idx.T
    f = fine

    def d2(a: int, b: int) -> NDArray[np.float32]:
        o = [np.zeros(len(idx), dtype=int) for _ in range(3)]
        if a == b:
            o[a] += 1
            plus = f[z + o[0], y + o[1], x + o[2]]
            minus = f[z - o[0], y - o[1], x - o[2]]
            return np.asarray(plus + minus - 2.0 * f[z, y, x], dtype=np.float32)
        oa = [np.zeros(len(idx), dtype=int) for _ in range(3)]
        ob = [np.zeros(len(idx), dtype=int) for _ in range(3)]
        oa[a] += 1
        ob[b] += 1
        pp = f[z + oa[0] + ob[0], y + oa[1] + ob[1], x + oa[2] + ob[2]]
        pm = f[z + oa[0] - ob[0], y + oa[1] - ob[1], x + oa[2] - ob[2]]
        mp = f[z - oa[0] + ob[0], y - oa[1] + ob[1], x - oa[2] + ob[2]]
        mm = f[z - oa[0] - ob[0], y - oa[1] - ob[1], x - oa[2] - ob[2]]
        return np.asarray((pp - pm - mp + mm) / 4.0, dtype=np.float32)

    hess = np.empty((len(idx), 3, 3), dtype=np.float32)
    for a in range(3):
        for b in range(a, 3):
            hess[:, a, b] = hess[:, b, a] = d2(a, b)
    lam = np.linalg.eigvalsh(hess)  # ascending: lam[:, 0] most negative
    dot = np.where(lam[:, 2] < 0, lam[:, 2] ** 2 / np.maximum(np.abs(lam[:, 0]), 1e-6), 0.0)
    order = np.argsort(-dot, kind="stable")[:max_candidates]
    order = order[dot[order] > 0]
    return [Candidate((int(z[i]), int(y[i]), int(x[i])), 0.0) for i in order]


def all_candidates(
    image_hu: NDArray[np.generic],
    prob: NDArray[np.floating],
    region: NDArray[np.bool_],
    spacing_mm: float,
    *,
    network_region: NDArray[np.bool_] | None = None,
) -> list[Candidate]:
    """Network candidates, then blob candidates away from them (the set the classifier scores).

    Blobs are looked for in ``region``; network peaks in ``network_region`` (wider, so that a
    juxtapleural nodule the classical lung mask leaves out still counts) or ``region``.
    """
    net = find_candidates(
        prob,
        region if network_region is None else network_region,
        min_probability=MIN_CANDIDATE_PROBABILITY,
        max_candidates=MAX_NETWORK_CANDIDATES,
    )
    blobs = blob_candidates(
        image_hu, region, spacing_mm, max_candidates=MAX_BLOB_CANDIDATES, exclude=[c.centre for c in net]
    )
    return net + blobs
