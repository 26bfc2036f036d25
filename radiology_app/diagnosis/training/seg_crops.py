"""Training crops from the *other* renderer, through the pipeline's crop path.

A case of the segmentation renderer is drawn by the segmentation package's phantom
(:func:`segmentation.phantom.nodules.render_nodule_crop`) from a spec consistent with its class (section 7
of the clinical reference: a benign calcification pattern for granulomas, fat and/or popcorn calcification
for hamartomas, a perifissural nodule for intrapulmonary lymph nodes, ...), at a scan-like voxel size (the
case's slice thickness, 0.6-0.85 mm pixels), the case's noise and a soft or sharp kernel. The shipped
U-Net outlines it the way whole-study segmentation does (network probability on its working grid,
mapped back, the component at the nodule, the classical refinement, the lung-window rim), and the crop is
cut exactly as ``pipeline._diagnose`` cuts it (:func:`radiology_app.diagnosis.crops.extract_crop` around
the outline's centroid). When the U-Net misses the nodule the phantom's true mask stands in (counted).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from radiology_app.diagnosis.crops import extract_crop

if TYPE_CHECKING:
    from radiology_app.diagnosis.synthetic import SyntheticCase
    from segmentation.phantom.nodules import NoduleSpec

#: Edge of the rendered cube (mm): the 40 mm crop plus room for the U-Net's context.
RENDER_SIZE_MM = 56.0
#: How far (mm) from the nodule's centre a U-Net component may lie and still count as finding it.
FOUND_WITHIN_MM = 3.0

_lock = threading.Lock()
_segmenter: list[Any] = []


@dataclass(frozen=True)
class SegmentationCrop:
    """A crop on the diagnosis grid from the segmentation renderer.

    Attributes
    ----------
    hu, mask
        Crop (float32 HU) and outline (uint8) on the diagnosis crop grid.
    unet_found
        Whether the U-Net's outline was used (``False``: it missed, the phantom's true mask was used).
    dice
        Overlap of the outline used with the phantom's true mask (1.0 for the fallback).
    """

    hu: npt.NDArray[np.float32]
    mask: npt.NDArray[np.uint8]
    unet_found: bool
    dice: float


def segmenter() -> Any:
    """The shipped nodule U-Net (loaded once per process)."""
    with _lock:
        if not _segmenter:
            from segmentation import inference

            _segmenter.append(inference.load_model())
        return _segmenter[0]


def segmentation_spec(case: SyntheticCase) -> NoduleSpec:
    """A segmentation-phantom spec for a case, consistent with its class and phenotype."""
    from segmentation.phantom.nodules import NoduleSpec

    ph = case.phenotype
    d = float(np.clip(ph.diameter_mm, 3.0, 30.0))
    margin = ph.margin
    if case.diagnosis == "intrapulmonary_lymph_node":
        return NoduleSpec(
            "perifissural", min(d, 10.0), "smooth", elongation=float(np.clip(ph.elongation, 1.3, 2.0))
        )
    common: dict[str, Any] = {"elongation": max(1.0, ph.elongation), "juxtapleural": ph.juxtapleural}
    if ph.fat:
        return NoduleSpec(
            "fat",
            d,
            "smooth" if margin == "spiculated" else margin,
            calcification="popcorn" if ph.calcification == "popcorn" else None,
            fat=True,
            **common,
        )
    if ph.calcification != "none":
        return NoduleSpec("calcified", d, margin, calcification=ph.calcification, **common)
    if ph.cavity_wall_mm > 0:
        wall = float(np.clip(ph.cavity_wall_mm, 1.0, 0.4 * d))
        return NoduleSpec("cavitary", max(d, 8.0), margin, cavity_wall_mm=wall, **common)
    if ph.kind == "part_solid":
        solid = float(np.clip(ph.solid_diameter_mm or d / 2.0, 1.0, d))
        return NoduleSpec("part_solid", max(d, 5.0), margin, solid_diameter_mm=solid, **common)
    if ph.kind == "ground_glass":
        return NoduleSpec("ground_glass", max(d, 4.0), margin, **common)
    return NoduleSpec("solid", d, margin, **common)


def unet_outline(
    seg: Any, hu: npt.NDArray[np.float32], spacing: tuple[float, float, float], centre: tuple[int, int, int]
) -> npt.NDArray[np.bool_] | None:
    """The U-Net's outline of the nodule at ``centre`` as whole-study segmentation makes it, or ``None``
    when no network component lies within :data:`FOUND_WITHIN_MM` of it."""
    from segmentation import inference
    from segmentation.resample import resample_image, target_shape

    w = seg.config.working_spacing_mm
    shape_w = target_shape(hu.shape, spacing, (w, w, w))
    img_w = resample_image(hu, spacing, shape=shape_w)
    old = seg.roi_size
    seg.roi_size = max(32, int(np.ceil(max(shape_w) / 16.0)) * 16)
    try:
        prob = inference._sliding_window(seg, img_w, None, None, 0, 1)
    finally:
        seg.roi_size = old
    scale = [shape_w[k] / hu.shape[k] for k in range(3)]
    po = inference._to_original(prob, (0, 0, 0), hu.shape, scale, (0, 0, 0))
    comp, n = ndimage.label(po >= seg.threshold, structure=np.ones((3, 3, 3)))
    if n == 0:
        return None
    k = int(comp[centre])
    if k == 0:
        d, idx = ndimage.distance_transform_edt(comp == 0, sampling=spacing, return_indices=True)
        if float(d[centre]) > FOUND_WITHIN_MM:
            return None
        k = int(comp[tuple(int(i[centre]) for i in idx)])
    mask: npt.NDArray[np.bool_] = comp == k
    full = tuple(slice(0, s) for s in hu.shape)
    if seg.refine:
        mask = inference._refine(hu, spacing, full, po, mask)
    out: npt.NDArray[np.bool_] = inference.with_lung_window_rim(hu, mask, spacing)
    return out


def render_segmentation_case(case: SyntheticCase) -> SegmentationCrop:
    """Render a case with the segmentation phantom, outline it with the U-Net and crop it like the
    pipeline (deterministic in the case's seed)."""
    from segmentation.phantom.nodules import render_nodule_crop

    rng = np.random.default_rng([case.seed, 5])
    pixel = float(rng.uniform(0.6, 0.85))
    spacing = (float(case.slice_thickness_mm), pixel, pixel)
    kernel = "sharp" if rng.random() < 0.3 else "soft"
    rendered = render_nodule_crop(
        segmentation_spec(case),
        spacing_zyx_mm=spacing,
        size_mm=RENDER_SIZE_MM,
        rng=rng,
        noise_hu=float(case.noise_hu),
        kernel=kernel,
    )
    hu = rendered.hu
    sp = rendered.spacing_zyx_mm
    truth = rendered.mask > 0
    centre_f = rendered.truth.center_index(sp)
    centre = tuple(int(np.clip(round(c), 0, s - 1)) for c, s in zip(centre_f, hu.shape, strict=True))
    outline = unet_outline(segmenter(), hu, sp, (centre[0], centre[1], centre[2]))
    found = outline is not None and bool((outline & truth).any())
    mask = outline if found and outline is not None else truth
    dice = 2.0 * float((mask & truth).sum()) / max(1.0, float(mask.sum() + truth.sum()))
    com = ndimage.center_of_mass(mask)
    crop_hu, crop_mask, _ = extract_crop(hu, sp, mask.astype(np.uint8), (com[0], com[1], com[2]))
    return SegmentationCrop(crop_hu, crop_mask, found, dice)
