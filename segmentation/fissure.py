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
#: Sheet area (mm^2) needed within the shell, and how well its normals must agree (0..1).
MIN_SHEET_AREA_MM2 = 20.0
MIN_NORMAL_COHERENCE = 0.8


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


def on_fissure(
    hu: NDArray[np.generic],
    mask: NDArray[np.bool_],
    spacing_zyx_mm: Sequence[float],
    lung: NDArray[np.bool_] | None = None,
) -> bool:
    """Whether a fissure-like sheet runs into the nodule.

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

    Returns
    -------
    bool
        True when at least 20 mm^2 of sheet with one normal lies in the 1-6 mm shell, in a plane
        through the nodule.
    """
    sp = [float(s) for s in spacing_zyx_mm]
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return False
    outside = ndimage.distance_transform_edt(~m, sampling=sp)
    shell = (outside >= SHELL_MM[0]) & (outside <= SHELL_MM[1])
    img = np.clip(np.asarray(hu, dtype=np.float32), -1000.0, 100.0)
    shell &= img > -900.0
    if lung is not None:
        shell &= np.asarray(lung, dtype=bool)
    if not shell.any():
        return False
    vals, vecs = _hessian_eigen(img, sp, shell)
    across = vals[:, 0]  # most negative: curvature across a bright sheet
    sheet = (across <= -MIN_SHEET_CURVATURE) & (
        np.maximum(np.abs(vals[:, 1]), np.abs(vals[:, 2])) <= MAX_IN_SHEET_RATIO * np.abs(across)
    )
    voxel_mm3 = sp[0] * sp[1] * sp[2]
    # a sheet voxel stands for voxel_mm3 / thickness of area; the sheet response is about 2 sigma thick
    if sheet.sum() * voxel_mm3 / (2.0 * SIGMA_MM) < MIN_SHEET_AREA_MM2:
        return False
    normals = vecs[sheet][:, :, 0]
    tensor = normals.T @ normals / len(normals)
    w, v = np.linalg.eigh(tensor)
    if w[-1] < MIN_NORMAL_COHERENCE:
        return False
    normal = v[:, -1]
    pts = np.argwhere(shell)[sheet] * np.asarray(sp)
    centre = np.argwhere(m).mean(axis=0) * np.asarray(sp)
    offsets = (pts - centre) @ normal
    # the extent of the nodule along the sheet's normal
    m_pts = np.argwhere(m) * np.asarray(sp)
    half = float(np.abs((m_pts - centre) @ normal).max()) + max(sp)
    return bool(np.median(np.abs(offsets)) <= half + 1.0)
