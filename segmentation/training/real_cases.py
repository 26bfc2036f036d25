"""Candidate-classifier cases from annotated real chest CT.

Each case is one real scan with a fresh set of synthetic nodules inserted into its lungs
(:mod:`segmentation.training.insertion`), seen through the U-Net like a phantom case
(:func:`segmentation.fp_train.generate_candidate_cases` writes the same keys). Its candidates are:

- positives: the inserted nodules, and the real nodules marked by at least
  :data:`~segmentation.evaluate_real.MIN_READERS` readers;
- negatives: every other candidate (real vessels, pleura, fissures, diaphragm, mediastinum: hard
  negatives mined from the scan);
- neither: candidates within :data:`IGNORE_MARGIN_MM` of any other reader mark (a nodule only one
  reader marked, a small-nodule or a non-nodule mark), kept out of training (the ``ignore`` mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.annotations import NODULE, SeriesAnnotations
from segmentation.dataset import to_working_grid
from segmentation.evaluate_real import MIN_READERS, ScanGeometry, group_nodules, place_marks
from segmentation.fp_train import write_case_file
from segmentation.lung import lung_mask
from segmentation.resample import grid_like, nearest_resize, resample_image
from segmentation.training.insertion import insert_nodules

#: Reader marks that are neither positives nor negatives are grown by this much (mm).
IGNORE_MARGIN_MM = 5.0
#: No nodule is inserted within this distance (mm) of a reader's mark.
INSERT_CLEARANCE_MM = 10.0
#: Grid (mm) of the lung mask computed for placing nodules.
LUNG_GRID_MM = 2.5


@dataclass(frozen=True)
class RealScan:
    """An annotated real chest CT on its own grid.

    Attributes
    ----------
    name
        Who it is (the patient ID or a short label; it goes into the model card).
    hu
        HU ``[z, y, x]``.
    spacing_zyx_mm
        Voxel spacing (mm).
    nodules
        Instance map (int16) of the reader-marked nodules used as positives.
    ignore
        Voxels (bool) near other reader marks: candidates there are not used.
    """

    name: str
    hu: NDArray[np.generic]
    spacing_zyx_mm: tuple[float, float, float]
    nodules: NDArray[np.int16]
    ignore: NDArray[np.bool_]


def _grown(mask: NDArray[np.bool_], sp: tuple[float, float, float], mm: float) -> NDArray[np.bool_]:
    if not mask.any():
        return mask
    idx = np.argwhere(mask)
    pad = [int(np.ceil(mm / s)) + 1 for s in sp]
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + np.array(pad) + 1, np.array(mask.shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    out = np.zeros(mask.shape, dtype=bool)
    out[box] = ndimage.distance_transform_edt(~mask[box], sampling=sp) <= mm
    return out


def real_scan(name: str, hu: NDArray[np.generic], geom: ScanGeometry, ann: SeriesAnnotations) -> RealScan:
    """Positives and the ignore mask of a scan from its readers' marks."""
    sp = geom.spacing_zyx_mm
    placed = place_marks(ann, geom, hu.shape)
    nodules = np.zeros(hu.shape, dtype=np.int16)
    other = np.zeros(hu.shape, dtype=bool)
    for ref in group_nodules(placed, sp):
        vox = tuple(ref.consensus.T)
        if ref.readers >= MIN_READERS:
            nodules[vox] = int(nodules.max()) + 1
        else:
            other[tuple(ref.voxels.T)] = True
    for p in placed:
        if p.kind != NODULE:
            other[tuple(p.voxels.T)] = True
    return RealScan(name, hu, sp, nodules, _grown(other, sp, IGNORE_MARGIN_MM))


def lung_on_own_grid(
    hu: NDArray[np.generic], spacing_zyx_mm: tuple[float, float, float]
) -> NDArray[np.uint8]:
    """The classical lung mask, computed on a :data:`LUNG_GRID_MM` grid and brought back to the CT's."""
    coarse, sp_c = grid_like(hu.shape, spacing_zyx_mm, LUNG_GRID_MM)
    return nearest_resize(lung_mask(resample_image(hu, spacing_zyx_mm, shape=coarse), sp_c), hu.shape)


def write_real_case(
    path: Path,
    scan: RealScan,
    segmenter: Any,
    rng: np.random.Generator,
    *,
    inserted: int = 16,
    lung: NDArray[np.uint8] | None = None,
) -> dict[str, Any]:
    """Insert ``inserted`` nodules into ``scan``, run the U-Net and write a candidate case to ``path``.

    Returns
    -------
    dict
        What was written: ``scan``, ``inserted`` (nodules that found room) and ``real`` (reader nodules).
    """
    from segmentation.inference import _sliding_window

    sp = scan.spacing_zyx_mm
    lung_o = lung if lung is not None else lung_on_own_grid(scan.hu, sp)
    marks = (scan.nodules > 0) | scan.ignore
    where = (lung_o > 0) & ~_grown(marks, sp, INSERT_CLEARANCE_MM)
    image, labels, truths = insert_nodules(scan.hu, sp, where, rng, count=inserted)
    truth: list[dict[str, Any]] = [
        {"label": t.label_id, "kind": t.kind, "d": t.mean_diameter_mm, "jp": bool(t.spec.juxtapleural)}
        for t in truths
    ]
    for k in range(1, int(scan.nodules.max()) + 1):
        vox = scan.nodules == k
        if not vox.any():
            continue
        label = len(truth) + 1
        labels[vox] = label
        d = 2.0 * (3.0 * float(vox.sum()) * float(np.prod(sp)) / (4.0 * np.pi)) ** (1.0 / 3.0)
        truth.append({"label": label, "kind": "reader", "d": round(d, 1), "jp": False})
    w = segmenter.config.working_spacing_mm
    case, (shape_w, crop) = to_working_grid(image, labels, lung_o, sp, w)
    ignore_w = nearest_resize(scan.ignore, shape_w)[crop]
    prob = _sliding_window(segmenter, case.image.astype(np.float32), None, None, 0, 1)
    write_case_file(path, case, prob, truth, ignore=ignore_w, scan=np.array(scan.name))
    return {"scan": scan.name, "inserted": len(truths), "real": len(truth) - len(truths)}
