"""Is a nodule attached to a fissure? A Hessian sheet detector around the nodule.

A fissure is a sheet of pleura about 1 mm thick that shows as a thin bright line (-700..-100 HU) in the
lung window. Around a nodule, the Hessian of the smoothed image has, on such a sheet, one large negative
eigenvalue (across the sheet) and two small ones; a vessel (a tube) has two large negative ones. A nodule
is *on a fissure* when sheet voxels in a shell just outside it are numerous, share one normal, and lie in
a plane that runs through the nodule. Used for the perifissural (intrapulmonary lymph node) pattern.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

#: Gaussian scale of the Hessian, mm (about a fissure's thickness).
SIGMA_MM = 1.0
#: Smallest curvature across a sheet, HU/mm^2 (a 1 mm sheet 300 HU above the lung gives about 100).
MIN_SHEET_CURVATURE = 25.0
#: The two in-sheet eigenvalues must stay below this fraction of the across-sheet one.
MAX_IN_SHEET_RATIO = 0.4
#: Shell around the nodule searched for the sheet, mm from its outline.
SHELL_MM = (1.0, 6.0)
#: A sheet voxel is brighter by at least this (HU) than the lung this far (mm) away on both sides; an
#: edge of a larger bright structure (a vessel, another nodule, the chest wall) is not.
SIDE_CONTRAST_HU = 60.0
SIDE_OFFSET_MM = 2.0
#: Sheet area (mm^2) of one plane needed within the shell: voxels whose normal is within about 25
#: degrees of the dominant one (|cos| >= NORMAL_AGREEMENT) and that lie within PLANE_TOLERANCE_MM of
#: one plane.
MIN_SHEET_AREA_MM2 = 20.0
NORMAL_AGREEMENT = 0.9
PLANE_TOLERANCE_MM = 1.5


def _hessian_eigen(
    img: NDArray[np.float32], sp: Sequence[float], where: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Eigenvalues (ascending) and eigenvectors of the physical-unit Hessian at the voxels ``where``."""
    sigma = [SIGMA_MM / s for s in sp]
    h = np.empty((int(where.sum()), 3, 3), dtype=np.float64)
    for i in range(3):
        for j in range(i, 3):
            order = [0, 0, 0]
            order[i] += 1
            order[j] += 1
            d = ndimage.gaussian_filter(img, sigma, order=order)[where] / (sp[i] * sp[j])
            h[:, i, j] = d
            h[:, j, i] = d
    vals, vecs = np.linalg.eigh(h)
    return vals, vecs


def _darker_on_both_sides(
    img: NDArray[np.float32], pos: NDArray[np.intp], normals: NDArray[np.float64], sp: Sequence[float]
) -> NDArray[np.bool_]:
    """Whether each voxel ``pos`` is brighter than the image ``SIDE_OFFSET_MM`` away along ± its normal."""
    step = SIDE_OFFSET_MM * normals / np.asarray(sp)
    here = img[tuple(pos.T)]
    ok = np.ones(len(pos), dtype=bool)
    hi = np.asarray(img.shape) - 1
    for sign in (1.0, -1.0):
        q = np.clip(np.rint(pos + sign * step).astype(np.intp), 0, hi)
        ok &= img[tuple(q.T)] <= here - SIDE_CONTRAST_HU
    return ok


def on_fissure(
    hu: NDArray[np.generic],
    mask: NDArray[np.bool_],
    spacing_zyx_mm: Sequence[float],
    lung: NDArray[np.bool_] | None = None,
) -> bool:
    """Whether a fissure-like sheet runs into the nodule (:func:`fissure_plane` finds one)."""
    return fissure_plane(hu, mask, spacing_zyx_mm, lung) is not None


def fissure_plane(
    hu: NDArray[np.generic],
    mask: NDArray[np.bool_],
    spacing_zyx_mm: Sequence[float],
    lung: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.float64], float] | None:
    """The fissure-like sheet that runs into the nodule, as ``(unit normal, offset)``: the plane
    ``x . normal = offset`` with ``x`` in mm of index space (``index * spacing``); ``None`` without one.

    Parameters
    ----------
    hu
        CT in HU around the nodule (a crop reaching at least 6 mm beyond the outline).
    mask
        The nodule's mask, same shape.
    spacing_zyx_mm
        Voxel spacing, mm.
    lung
        Lung mask of the crop; sheet voxels outside the lung (the chest wall) are ignored.

    A plane is returned when at least 20 mm^2 of sheet with one normal lies in the 1-6 mm shell, in
    one plane that touches the nodule.
    """
    sp = [float(s) for s in spacing_zyx_mm]
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return None
    outside = ndimage.distance_transform_edt(~m, sampling=sp)
    shell = (outside >= SHELL_MM[0]) & (outside <= SHELL_MM[1])
    img = np.clip(np.asarray(hu, dtype=np.float32), -1000.0, 100.0)
    shell &= img > -900.0
    if lung is not None:
        shell &= np.asarray(lung, dtype=bool)
    if not shell.any():
        return None
    vals, vecs = _hessian_eigen(img, sp, shell)
    across = vals[:, 0]  # most negative: curvature across a bright sheet
    sheet = (across <= -MIN_SHEET_CURVATURE) & (
        np.maximum(np.abs(vals[:, 1]), np.abs(vals[:, 2])) <= MAX_IN_SHEET_RATIO * np.abs(across)
    )
    pos = np.argwhere(shell)
    sheet &= _darker_on_both_sides(img, pos, vecs[:, :, 0], sp)
    voxel_mm3 = sp[0] * sp[1] * sp[2]
    # a sheet voxel stands for voxel_mm3 / thickness of area; the sheet response is about 2 sigma thick
    area_per_voxel = voxel_mm3 / (2.0 * SIGMA_MM)
    normals = vecs[sheet][:, :, 0]
    pts = pos[sheet] * np.asarray(sp)
    if len(normals) * area_per_voxel < MIN_SHEET_AREA_MM2:
        return None
    # the dominant normal, refined on the voxels that share it (vessels crossing the shell add others)
    inliers = np.ones(len(normals), dtype=bool)
    normal = np.zeros(3)
    for _ in range(3):
        sel = normals[inliers]
        _, v = np.linalg.eigh(sel.T @ sel / len(sel))
        normal = v[:, -1]
        inliers = np.abs(normals @ normal) >= NORMAL_AGREEMENT
        if inliers.sum() * area_per_voxel < MIN_SHEET_AREA_MM2:
            return None
    centre = np.argwhere(m).mean(axis=0) * np.asarray(sp)
    offsets = (pts[inliers] - centre) @ normal
    # one plane (the offsets cluster), touching the nodule (within its half-thickness along the normal)
    m_pts = np.argwhere(m) * np.asarray(sp)
    half = float(np.abs((m_pts - centre) @ normal).max()) + max(sp)
    level = float(np.median(offsets))
    on_plane = np.abs(offsets - level) <= PLANE_TOLERANCE_MM
    if on_plane.sum() * area_per_voxel < MIN_SHEET_AREA_MM2 or abs(level) > half + 1.0:
        return None
    return normal, float(level + centre @ normal)


def plane_slab(
    shape: Sequence[int], spacing_zyx_mm: Sequence[float], plane: tuple[NDArray[np.float64], float]
) -> NDArray[np.bool_]:
    """Voxels within :data:`PLANE_TOLERANCE_MM` of a plane ``(normal, offset)`` (:func:`fissure_plane`)."""
    normal, offset = plane
    grids = np.meshgrid(
        *(np.arange(n) * s for n, s in zip(shape, spacing_zyx_mm, strict=True)), indexing="ij"
    )
    dist = grids[0] * normal[0] + grids[1] * normal[1] + grids[2] * normal[2] - offset
    return np.asarray(np.abs(dist) <= PLANE_TOLERANCE_MM)
