"""Per-nodule measurements by the conventions of the clinical reference.

Long axis and the perpendicular short axis are taken on the axial slice where the nodule's area is
largest; the mean diameter is their average rounded to one decimal, half up. Volume comes from the
voxel count. Composition, solid component, calcification and fat come from the HU inside the mask.

Conventions: arrays ``[z, y, x]``; ``x`` increases towards the patient's left and ``z`` towards
superior (as in :mod:`segmentation.phantom.chest`). A lung mask labels the right lung 1, the left 2.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.errors import InvalidVolumeError
from segmentation.fissure import fissure_plane, plane_slab

#: HU above which a voxel counts as solid (between the -160 and -400 HU thresholds of §6.1).
SOLID_HU = -300.0
#: HU at or above which a voxel counts as calcified (Siegelman's 164 HU rounded up; configurable).
CALCIUM_HU = 200.0
#: A calcification proves benignity only when it covers more than this share of the nodule's cross-section
#: (clinical reference 6.1); a smaller one reads "punctate", wherever it lies.
BENIGN_CALCIFICATION_MIN_COVER = 0.10
#: Margin score from which a nodule is spiculated (two or more radial strands, see :func:`_spiculation`).
SPICULATED_FROM = 0.5
#: Macroscopic fat range (HU).
FAT_HU = (-120.0, -40.0)
#: A fat cluster must hold at least this share of the nodule's volume (and 8 mm3): a hamartoma's fat can
#: be a few small foci, while the partial-volume clusters at a cavity's or a vessel's edge stay tiny.
FAT_MIN_FRACTION = 0.015
#: Widening (HU) of the fat range for candidate voxels (the cluster's mean must still be fat).
FAT_NOISE_MARGIN_HU = 30.0
#: In a nodule read as spiculated, fat needs a cluster this many times the minimum size: a small
#: low-density focus there is more likely noise or necrosis, while a large one is fat whatever the margin
#: (in the coherence chests of seeds 0-12 the largest fat-range cluster of a nodule without fat was 1.4
#: times the minimum, in 570 nodules; see resources/models/fused_dx.md).
FAT_IN_SPICULATED_FACTOR = 3.0
#: A nodule whose smallest principal extent (SD, mm) is at most this is a thin disc (a uniform disc
#: under about 3.5 mm thick); its composition is judged by the densest tenth of its voxels, which must
#: reach :data:`SOLID_HU` for it to be solid.
THIN_DISC_SD_MM = 1.0
#: Tissue outside the lung that a nodule touches is the pleura (chest wall, mediastinum, diaphragm) when
#: it reaches this far (mm) from the lung within 10 mm of the nodule; a vessel up to 10 mm across that
#: the lung mask leaves out does not.
PLEURA_MIN_DEPTH_MM = 5.0
#: Air inside a nodule (cavity) is below this (HU).
AIR_HU = -850.0
#: Spicules are looked for within this distance (mm) of the outline; a strand that reaches its edge
#: runs on (a vessel).
_STRAND_SHELL_MM = 9.0
#: A spicule reaches at least this far beyond the outline (mm; the partial-volume rim stays within
#: about 1 mm) and ends by the second distance (mm).
_STRAND_REACH_MM = 2.0
_STRAND_END_MM = 6.0
#: Smallest spicule (mm3) beyond the first millimetre.
_STRAND_MIN_MM3 = 2.0
#: A spicule's long axis is within arccos(0.8), about 37 degrees, of the direction from the nodule's centre.
_STRAND_RADIAL_COS = 0.8
#: Solid nodules up to this mean diameter (mm; intrapulmonary lymph nodes are "usually <= 10-12 mm")
#: are looked at for a fissure running into them.
NODE_PLACE_MAX_MM = 12.0
#: Perifissural pattern (Lung-RADS v2022): mean diameter below this (mm), margin score below
#: :data:`SMOOTH_MARGIN_BELOW`, and lentiform: thickness (smallest / middle principal extent) at most
#: :data:`FLAT_RATIO_MAX`, with the middle extent at least :data:`DISC_RATIO_MIN` of the largest (a
#: disc or a wedge, not a tube such as a vessel).
PERIFISSURAL_BELOW_MM = 10.0
SMOOTH_MARGIN_BELOW = 0.3
FLAT_RATIO_MAX = 0.72
DISC_RATIO_MIN = 0.4


@dataclass(frozen=True)
class NoduleMeasurement:
    """Measurements of one nodule.

    Attributes
    ----------
    long_axis_mm, short_axis_mm
        Longest diameter on the axial slice of largest area and the longest diameter perpendicular
        to it on that slice (mm).
    mean_diameter_mm
        ``(long + short) / 2`` rounded to one decimal, half up (mm).
    volume_mm3
        Voxel count times voxel volume (mm3).
    mean_hu, min_hu, max_hu
        Attenuation statistics inside the mask (HU).
    core_median_hu
        Median HU of the mask without its partial-volume rim.
    perifissural
        The perifissural pattern (:func:`perifissural_shape`, Lung-RADS v2022): under
        :data:`PERIFISSURAL_BELOW_MM`, solid, smooth, flat, on a fissure or the pleura; typical of an
        intrapulmonary lymph node.
    lymph_node_morphology
        The same shape and place up to :data:`NODE_PLACE_MAX_MM` (intrapulmonary lymph nodes are
        "usually <= 10-12 mm", clinical reference 7): the differential's lymph-node sign, while Lung-RADS
        keeps its size category from 10 mm.
    on_fissure_or_pleura
        Touches the pleura, or (a solid nodule up to :data:`NODE_PLACE_MAX_MM` without calcium or fat) a
        fissure runs into it: where an intrapulmonary lymph node lies, whatever its shape.
    composition
        ``"solid"``, ``"part_solid"`` or ``"ground_glass"``.
    solid_component_mm
        Mean axial diameter of the largest solid part (mm); equals the mean diameter for a solid
        nodule and is ``0.0`` for a pure ground-glass one.
    calcification
        Whether calcium (>= :data:`CALCIUM_HU`) is present.
    calcification_pattern
        ``"central"``, ``"laminated"``, ``"popcorn"``, ``"diffuse"``, ``"punctate"``, ``"eccentric"``
        or ``None``.
    fat
        Whether macroscopic fat is present.
    side
        ``"right"`` or ``"left"``.
    zone
        ``"upper"``, ``"middle"`` or ``"lower"`` third of the lung's height.
    lobe
        Approximate lobe (``"RUL"``, ``"RML"``, ``"RLL"``, ``"LUL"``, ``"LLL"``) from the height and
        depth within the lung (:func:`_lobe`): an estimate, not a fissure-based segmentation.
    juxtapleural
        Whether the nodule abuts the pleura (chest wall, mediastinum or diaphragm, not a vessel the lung
        mask leaves out) within 1.5 mm.
    spiculation_score
        Margin irregularity in [0, 1]: 0 smooth, 1 strongly spiculated.
    centroid_zyx
        Centroid (voxel index, float).
    bbox_zyx
        ``((zmin, ymin, xmin), (zmax, ymax, xmax))`` inclusive voxel indices.
    """

    long_axis_mm: float
    short_axis_mm: float
    mean_diameter_mm: float
    volume_mm3: float
    mean_hu: float
    min_hu: float
    max_hu: float
    composition: str
    solid_component_mm: float
    calcification: bool
    calcification_pattern: str | None
    fat: bool
    side: str
    zone: str
    lobe: str
    juxtapleural: bool
    spiculation_score: float
    centroid_zyx: tuple[float, float, float]
    bbox_zyx: tuple[tuple[int, int, int], tuple[int, int, int]]
    core_median_hu: float = 0.0
    perifissural: bool = False
    on_fissure_or_pleura: bool = False
    lymph_node_morphology: bool = False


def round_half_up(value: float, places: int = 1) -> float:
    """Round ``value`` to ``places`` decimals, halves away from zero (5.45 -> 5.5), via decimal."""
    q = Decimal(1).scaleb(-places)
    return float(Decimal(repr(float(value))).quantize(q, rounding=ROUND_HALF_UP))


def axial_axes_mm(mask2d: NDArray[np.bool_], spacing_yx: Sequence[float]) -> tuple[float, float]:
    """Long axis and perpendicular short axis (mm) of a 2-D region.

    The outline is traced at sub-pixel precision (the 0.5 iso-line between inside and outside pixel
    centres); the long axis is the largest distance between outline points (of the nearly-longest
    ones, the one with the narrowest perpendicular extent), the short axis the region's extent
    perpendicular to it.
    """
    from skimage import measure as skm

    if not mask2d.any():
        return 0.0, 0.0
    padded = np.pad(mask2d.astype(np.float32), 1)
    contours = skm.find_contours(padded, 0.5)  # type: ignore[no-untyped-call]
    pts = np.concatenate(contours, axis=0) - 1.0
    pts = pts * np.asarray(spacing_yx, dtype=np.float64)
    if len(pts) < 2:
        return float(min(spacing_yx)), float(min(spacing_yx))
    try:
        from scipy.spatial import ConvexHull

        hull = pts[ConvexHull(pts).vertices] if len(pts) >= 3 else pts
    except Exception:  # degenerate (collinear) outline
        hull = pts
    d = hull[:, None, :] - hull[None, :, :]
    dist2 = (d**2).sum(-1)
    dist = np.sqrt(dist2)
    dmax = float(dist.max())
    if dmax == 0.0:
        return float(min(spacing_yx)), float(min(spacing_yx))
    # pixelated outlines have flat runs at their ends, so several nearly-longest diameters exist;
    # of those, take the one whose perpendicular extent is smallest (exact for ellipses)
    px = float(np.mean(spacing_yx))
    cand = np.argwhere(np.triu(dist >= dmax - 0.5 * px, 1))[:300]
    best: tuple[float, float] | None = None
    for a, b in cand:
        length = float(dist[a, b])
        u = (hull[b] - hull[a]) / length
        proj = pts @ np.array([-u[1], u[0]])
        width = float(proj.max() - proj.min())
        if best is None or width < best[1]:
            best = (length, width)
    assert best is not None
    long_mm, short_mm = best
    # the extreme outline points overshoot the true edge by about 0.4 pixel on average
    bias = 0.4 * float(np.mean(spacing_yx))
    # (the short axis, chosen as the smallest of several widths, carries no such overshoot)
    long_mm = max(long_mm - bias, float(min(spacing_yx)))
    short_mm = max(short_mm, float(min(spacing_yx)))
    # an (almost) elliptical outline is measured more precisely by its second moments than by
    # pixel-stepped calipers; use them when they agree with the calipers to within a pixel
    yx = np.argwhere(mask2d) * np.asarray(spacing_yx, dtype=np.float64)
    if len(yx) >= 6:
        lam = np.linalg.eigvalsh(np.cov((yx - yx.mean(axis=0)).T))
        pix_var = (spacing_yx[0] ** 2 + spacing_yx[1] ** 2) / 24.0
        a = 4.0 * math.sqrt(max(float(lam[1]) + pix_var, 0.0))
        b = 4.0 * math.sqrt(max(float(lam[0]) + pix_var, 0.0))
        area = len(yx) * float(spacing_yx[0] * spacing_yx[1])
        fill = area / max(math.pi * a * b / 4.0, 1e-9)
        if abs(a - long_mm) <= px and abs(b - short_mm) <= px and 0.93 <= fill <= 1.07:
            return a, b
    return long_mm, min(short_mm, long_mm)


def _largest_slice_axes(mask: NDArray[np.bool_], sp: Sequence[float]) -> tuple[float, float]:
    areas = mask.sum(axis=(1, 2))
    k = int(np.argmax(areas))
    return axial_axes_mm(mask[k], (sp[1], sp[2]))


def _calcification_pattern(
    calc: NDArray[np.bool_],
    mask: NDArray[np.bool_],
    sp: Sequence[float],
    cover: float,
    body: NDArray[np.bool_] | None = None,
) -> str | None:
    """The pattern of ``calc`` in the nodule ``mask``; a benign one needs a ``cover`` (share of the
    nodule's cross-section, see :func:`_calcified_cover`) over :data:`BENIGN_CALCIFICATION_MIN_COVER`.

    Complete ("diffuse") calcification is calcium over half the nodule, or over half its ``body`` (the
    solid nodule's part denser than :data:`SOLID_HU`, when given): an outline drawn to the lung-window
    edge, as LIDC readers and the detector draw it, wraps a small calcified granuloma in a rim of partial
    volume that can outnumber its calcium, and put its centre off the calcium's."""
    n_calc = int(calc.sum())
    n = int(mask.sum())
    if n_calc == 0:
        return None
    frac = n_calc / max(n, 1)
    n_body = int((mask & body).sum()) if body is not None else 0
    if frac >= 0.5 or (n_body and n_calc / n_body >= 0.5):
        return "diffuse"
    spa = np.asarray(sp)
    coords = np.argwhere(mask) * spa
    centre = coords.mean(axis=0)
    radius = max((3.0 * n * float(np.prod(spa)) / (4.0 * math.pi)) ** (1.0 / 3.0), 1e-3)
    _, k = ndimage.label(calc, structure=np.ones((3, 3, 3)))
    ccoords = np.argwhere(calc) * spa
    r = np.linalg.norm(ccoords - centre, axis=1) / radius
    ccentre = np.linalg.norm(ccoords.mean(axis=0) - centre) / radius
    if frac < 0.04 and k >= 1 and n_calc * float(np.prod(spa)) < 8.0 * k:
        return "punctate"
    if k >= 3:
        # several separate foci: concentric shells (laminated) or clusters (popcorn)
        concentric = r.min() < 0.45 and r.max() > 0.55 and np.std(r) > 0.2 and ccentre < 0.25
        pattern = "laminated" if concentric else "popcorn"
    elif ccentre < 0.3:
        pattern = "laminated" if r.max() > 0.7 and np.std(r) > 0.22 else "central"
    else:
        return "eccentric"
    return pattern if cover > BENIGN_CALCIFICATION_MIN_COVER else "punctate"


def _calcified_cover(calc: NDArray[np.bool_], nodule: NDArray[np.bool_]) -> float:
    """Largest share of the nodule's axial cross-section that calcium covers, over the slices that hold at
    least half the nodule's largest cross-section (a radiologist judges it on the nodule's main slices)."""
    area = nodule.sum(axis=(1, 2))
    if not area.any():
        return 0.0
    covered = (calc & nodule).sum(axis=(1, 2))
    main = area >= 0.5 * area.max()
    return float((covered[main] / area[main]).max())


def _thin_solid(smooth: NDArray[np.float32], mask: NDArray[np.bool_], sp: Sequence[float]) -> bool:
    """A disc too thin for its interior to keep its density (partial volume with the lung on both faces,
    as in a flat perifissural nodule) whose densest tenth still reaches :data:`SOLID_HU`: solid
    tissue thinned by the slice, not ground glass around a solid core."""
    thickness_sd = principal_extents(mask, sp)[0]
    return 0.0 < thickness_sd <= THIN_DISC_SD_MM and float(np.percentile(smooth[mask], 90)) >= SOLID_HU


def _interior(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The mask without its partial-volume rim (3-D erosion, or in-plane only for thin nodules)."""
    inner: NDArray[np.bool_] = ndimage.binary_erosion(
        mask, structure=np.array(ndimage.generate_binary_structure(3, 1))
    )
    if inner.sum() >= max(4, 0.15 * mask.sum()):
        return inner
    st2 = np.zeros((3, 3, 3), dtype=bool)
    st2[1] = ndimage.generate_binary_structure(2, 1)
    inner = ndimage.binary_erosion(mask, structure=st2)
    return inner if inner.sum() >= max(2, 0.1 * mask.sum()) else mask


def _spiculation(
    hu: NDArray[np.float32],
    mask: NDArray[np.bool_],
    sp: Sequence[float],
    lung: NDArray[np.bool_] | None,
    exclude: NDArray[np.bool_] | None = None,
) -> float:
    """Margin irregularity in [0, 1] from the short strands that leave the nodule and end in the lung.

    A strand is tissue denser than the surrounding parenchyma (a quarter of the way from the lung's
    HU to the nodule's, and 3.5 robust SDs above the lung's texture and noise), inside the lung and
    attached to the nodule. Within :data:`_STRAND_SHELL_MM` of the outline, a piece of such tissue that
    reaches :data:`_STRAND_REACH_MM` beyond it, ends by :data:`_STRAND_END_MM` and holds
    :data:`_STRAND_MIN_MM3` is counted: spicules taper out, while vessels run on to the shell's edge and
    the partial-volume rim stays within a millimetre of the outline. A piece cut off by the lung's edge,
    the crop or ``exclude`` (a fissure the nodule lies on) has not been seen to end. The halo that thick
    slices leave above and below a nodule is ignored. One such strand gives an "irregular" score (0.27);
    a "spiculated" one (>= 0.5) needs two or more that run away from the centre (:func:`_radial`, 0.27
    each), since the end of a small vessel passing the nodule can look like one strand.
    """
    spa = np.asarray(sp, dtype=np.float64)
    smooth = ndimage.gaussian_filter(hu, [0.35 / s for s in sp])
    dist_out = ndimage.distance_transform_edt(~mask, sampling=spa)
    shell = (dist_out >= 6.0) & (dist_out <= 10.0) & (smooth < -500.0)
    lung_vals = smooth[shell] if shell.sum() > 20 else np.array([-850.0], dtype=np.float32)
    bg = float(np.median(lung_vals))
    bg_sd = 1.4826 * float(np.median(np.abs(lung_vals - bg)))
    inner = ndimage.binary_erosion(mask)
    ref = min(float(np.median(smooth[inner if inner.sum() > 4 else mask])), 0.0)
    threshold = min(max(bg + 0.25 * (ref - bg), bg + 3.5 * bg_sd), -600.0)
    z_only = np.zeros((3, 1, 1), dtype=bool)
    z_only[:, 0, 0] = True
    dense = (smooth > threshold) & ~ndimage.binary_dilation(mask, structure=z_only)
    cube = np.ones((3, 3, 3), dtype=bool)
    # a strand cut off by the lung's edge (a vessel leaving for the hilum), by the crop or by the excluded
    # fissure has not ended
    outside = np.ones_like(mask)
    outside[1:-1, 1:-1, 1:-1] = False
    if lung is not None:
        dense &= lung
        outside |= ~lung
    if exclude is not None:
        dense &= ~exclude
        outside |= exclude & ~mask
    outside = ndimage.binary_dilation(outside, structure=cube)
    lab, _ = ndimage.label((dense & (dist_out < _STRAND_SHELL_MM + 5.0)) | mask, structure=cube)
    ids = np.unique(lab[mask])
    attached = np.isin(lab, ids[ids > 0]) & ~mask
    pieces, _ = ndimage.label(attached & (dist_out >= 1.0) & (dist_out <= _STRAND_SHELL_MM), structure=cube)
    voxel_mm3 = float(np.prod(spa))
    centre = np.argwhere(mask).mean(axis=0) * spa
    strands = radial = 0
    for k, box in enumerate(ndimage.find_objects(pieces), start=1):
        if box is None:
            continue
        piece = pieces[box] == k
        reach = float(dist_out[box][piece].max())
        ends = _STRAND_REACH_MM <= reach <= _STRAND_END_MM and not (piece & outside[box]).any()
        if ends and float(piece.sum()) * voxel_mm3 >= _STRAND_MIN_MM3:
            strands += 1
            radial += _radial(piece, box, centre, spa)
    if radial >= 2:
        return float(min(0.27 * radial, 1.0))
    return 0.27 if strands else 0.0


def _radial(
    piece: NDArray[np.bool_], box: tuple[slice, ...], centre: NDArray[np.float64], spa: NDArray[np.float64]
) -> bool:
    """Whether a strand runs away from the nodule's centre (its long axis within about 37 degrees of the
    radial direction), as a spicule does, rather than past it, as a vessel does."""
    pts = (np.argwhere(piece) + np.array([b.start for b in box])) * spa
    if len(pts) < 3:
        return False  # no direction to speak of
    _, vecs = np.linalg.eigh(np.cov((pts - pts.mean(axis=0)).T) + np.eye(3) * 0.01)
    radial = pts.mean(axis=0) - centre
    radial /= float(np.linalg.norm(radial)) or 1.0
    return abs(float(vecs[:, -1] @ radial)) >= _STRAND_RADIAL_COS


def _is_pleura(
    contact: NDArray[np.bool_], outside_lung: NDArray[np.bool_], mask: NDArray[np.bool_], sp: Sequence[float]
) -> bool:
    """Whether the tissue outside the lung that a nodule touches (``contact``) is the pleura: the chest
    wall, mediastinum or diaphragm reach :data:`PLEURA_MIN_DEPTH_MM` from the lung within 10 mm of the
    nodule, while a vessel the lung mask leaves out is a thinner tube."""
    tissue = outside_lung & ~mask
    lab, _ = ndimage.label(tissue, structure=np.ones((3, 3, 3), dtype=bool))
    ids = np.unique(lab[contact])
    near = np.isin(lab, ids[ids > 0]) & (ndimage.distance_transform_edt(~mask, sampling=sp) <= 10.0)
    if not near.any():
        return False
    depth = ndimage.distance_transform_edt(tissue, sampling=sp)
    return float(depth[near].max()) >= PLEURA_MIN_DEPTH_MM


#: Per lung label (1 right, 2 left): ``((z min, z max), (y min, y max))`` voxel indices.
LungExtents = dict[int, tuple[tuple[int, int], tuple[int, int]]]


def lung_extents(lung_mask: NDArray[np.generic]) -> LungExtents:
    """Each lung's extent along z (foot to head) and y (front to back), voxel indices."""
    lab = np.asarray(lung_mask)
    out: LungExtents = {}
    for side in (1, 2):
        m = lab == side
        if m.any():
            zs = np.flatnonzero(m.any(axis=(1, 2)))
            ys = np.flatnonzero(m.any(axis=(0, 2)))
            out[side] = ((int(zs[0]), int(zs[-1])), (int(ys[0]), int(ys[-1])))
    return out


def _local_extents(lung_mask: NDArray[np.generic], offset_zyx: Sequence[int]) -> LungExtents:
    off = [int(v) for v in offset_zyx]
    return {
        side: ((z0 + off[0], z1 + off[0]), (y0 + off[1], y1 + off[1]))
        for side, ((z0, z1), (y0, y1)) in lung_extents(lung_mask).items()
    }


def _lobe(side: str, rel_z: float, rel_y: float) -> str:
    """Approximate lobe from the height (0 base, 1 apex) and depth (0 front, 1 back) within the lung.

    The oblique fissure is modelled as a plane that runs from about four fifths of the lung's height at
    the back down to the base at the front (the lower lobes are posterior and inferior); the right
    horizontal fissure as the lung's mid-height. An estimate, not a fissure segmentation.
    """
    lower = rel_z < 0.85 * rel_y - 0.05
    if side == "left":
        return "LLL" if lower else "LUL"
    if lower:
        return "RLL"
    return "RUL" if rel_z >= 0.55 else "RML"


def measure_nodule(
    hu: NDArray[np.generic],
    mask: NDArray[np.generic],
    spacing_zyx_mm: Sequence[float],
    *,
    lung_mask: NDArray[np.generic] | None = None,
    offset_zyx: Sequence[int] = (0, 0, 0),
    full_shape_zyx: Sequence[int] | None = None,
    calcium_hu: float = CALCIUM_HU,
    lung_extents: LungExtents | None = None,
) -> NoduleMeasurement:
    """Measure one nodule.

    Parameters
    ----------
    hu
        CT in HU ``[z, y, x]`` (the whole volume, or a crop of it).
    mask
        The nodule's mask (non-zero inside), same shape as ``hu``.
    spacing_zyx_mm
        Voxel spacing (mm).
    lung_mask
        Optional lung mask of the same shape (1 right, 2 left); used for side, zone, lobe and
        juxtapleural. Without it the side comes from the x position and juxtapleural is false.
    offset_zyx
        Index of ``hu[0, 0, 0]`` in the full volume when a crop is passed (centroid and bbox are
        reported in full-volume indices).
    full_shape_zyx
        Shape of the full volume when a crop is passed (for the left/right fallback).
    calcium_hu
        HU from which a voxel counts as calcium (raised above the blood on a contrast-enhanced scan,
        see :func:`segmentation.contrast.calcium_threshold_hu`).
    lung_extents
        Each whole lung's extent (:func:`lung_extents`) when a crop is passed: zone and lobe are
        placed within the whole lung, not within the crop.

    Returns
    -------
    NoduleMeasurement
        The measurements.

    Raises
    ------
    InvalidVolumeError
        When shapes differ, the spacing is invalid or the mask is empty.
    """
    if hu.shape != mask.shape or hu.ndim != 3:
        raise InvalidVolumeError(f"hu {hu.shape} and mask {mask.shape} must be 3-D arrays of one shape")
    if lung_mask is not None and lung_mask.shape != hu.shape:
        raise InvalidVolumeError(f"lung mask shape {lung_mask.shape} differs from the volume's {hu.shape}")
    sp = tuple(float(s) for s in spacing_zyx_mm)
    if len(sp) != 3 or min(sp) <= 0:
        raise InvalidVolumeError(f"spacing must be three positive numbers (mm), got {spacing_zyx_mm}")
    m_full = np.asarray(mask) != 0
    idx = np.argwhere(m_full)
    if len(idx) == 0:
        raise InvalidVolumeError("the nodule mask is empty")
    lo_m, hi_m = idx.min(axis=0), idx.max(axis=0)
    pad = np.ceil((_STRAND_SHELL_MM + 6.0) / np.asarray(sp)).astype(int)
    lo = np.maximum(lo_m - pad, 0)
    hi = np.minimum(hi_m + pad + 1, np.array(hu.shape))
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    m = m_full[sl]
    img = np.asarray(hu, dtype=np.float32)[sl]
    lung = np.asarray(lung_mask)[sl] if lung_mask is not None else None
    vox = sp[0] * sp[1] * sp[2]

    long_mm, short_mm = _largest_slice_axes(m, sp)
    mean_d = round_half_up((long_mm + short_mm) / 2.0, 1)
    vals = img[m]
    smooth = ndimage.gaussian_filter(img, [0.35 / s for s in sp])
    inner = _interior(m)
    s_in = smooth[inner]
    tissue = s_in > AIR_HU
    solid_vox = inner & (smooth > SOLID_HU)
    solid_frac = float(solid_vox.sum()) / max(int(tissue.sum()), 1)
    # the solid component: the thickest connected solid part of the mask (a vessel caught in the outline
    # can hold more solid voxels than a small core, but it is thinner)
    solid_all = m & (smooth > SOLID_HU)
    lab, n_lab = ndimage.label(solid_all)
    if n_lab:
        depth = ndimage.distance_transform_edt(solid_all, sampling=sp)
        core = lab == lab.ravel()[int(np.argmax(depth))]
        cl, cs = _largest_slice_axes(core, sp)
        solid_mm = round_half_up((cl + cs) / 2.0, 1)
    else:
        solid_mm = 0.0
    if solid_frac >= 0.7 or (solid_frac > 0.05 and solid_mm >= 1.5 and _thin_solid(smooth, m, sp)):
        composition = "solid"
        solid_mm = mean_d
    elif solid_frac <= 0.05 or solid_mm < 1.5:
        composition = "ground_glass"
        solid_mm = 0.0
    else:
        composition = "part_solid"
    calc = m & (smooth >= calcium_hu)
    calcified = int(calc.sum()) >= 2 and float(img[calc].max(initial=-1e9)) >= calcium_hu
    pattern = None
    if calcified:
        # the calcification's extent at the plain-CT threshold (a contrast-raised threshold, above the
        # blood, confirms calcium but shrinks it), over the nodule as a soft-tissue window shows it
        extent = m & (smooth >= min(calcium_hu, CALCIUM_HU))
        body = solid_all if composition == "solid" else None
        pattern = _calcification_pattern(calc, m, sp, _calcified_cover(extent, solid_all), body)
    # Macroscopic fat must lie away from the outline: partial volume between soft tissue and lung at the
    # rim (worst on thick slices and along vessels) also averages to -120..-40 HU. So look one erosion
    # deeper than ``inner`` and require a cluster of at least 8 mm3 and 1.5 % of the nodule's volume.
    # A rim shell is thin, real fat is a blob: keep only what survives an in-plane opening.
    # With 20-30 HU of noise many fat voxels fall outside the 80 HU fat range, and the cluster breaks up:
    # so gather candidates in a range widened by the noise, and ask the cluster's mean (a radiologist's
    # ROI) to be fat.
    deep = ndimage.binary_erosion(inner)
    lo_hu, hi_hu = FAT_HU[0] - FAT_NOISE_MARGIN_HU, FAT_HU[1] + FAT_NOISE_MARGIN_HU
    # (no deep interior, as in a small nodule on thick slices, is all partial volume: no fat is called)
    fat_vox = deep & (smooth >= lo_hu) & (smooth <= hi_hu)
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = True
    fat_vox = ndimage.binary_opening(fat_vox, structure=in_plane)
    fat_lab, n_fat = ndimage.label(fat_vox)
    fat_size = 0.0  # the largest cluster whose mean is fat, in multiples of the minimum size
    if n_fat and composition == "solid":
        sizes = np.bincount(fat_lab.ravel())[1:]
        means = ndimage.mean(smooth, fat_lab, index=np.arange(1, n_fat + 1))
        need = max(8.0, FAT_MIN_FRACTION * float(m.sum()) * vox)
        in_range = (means >= FAT_HU[0]) & (means <= FAT_HU[1])
        fat_size = float(sizes[in_range].max(initial=0)) * vox / need
    fat = fat_size >= 1.0

    cz, cy, cx = (np.argwhere(m).mean(axis=0) + lo).tolist()
    off = np.asarray(offset_zyx, dtype=int)
    centroid = (cz + float(off[0]), cy + float(off[1]), cx + float(off[2]))
    shape_full = tuple(int(v) for v in (full_shape_zyx if full_shape_zyx is not None else hu.shape))
    side = "left" if centroid[2] >= shape_full[2] / 2.0 else "right"
    zone = "middle"
    lobe: str | None = None
    juxta = False
    rel_y = 0.5 if cy < hu.shape[1] / 2.0 else 1.0  # without a lung mask: anterior or posterior half
    if lung is not None and lung_mask is not None:
        labs = lung[m]
        labs = labs[labs > 0]
        if labs.size:
            side = "right" if int(np.bincount(labs).argmax()) == 1 else "left"
        extents = (
            lung_extents if lung_extents is not None else _local_extents(np.asarray(lung_mask), offset_zyx)
        )
        ext = extents.get(1 if side == "right" else 2) or next(iter(extents.values()), None)
        if ext is not None:
            (z0, z1), (y0, y1) = ext
            rel = (centroid[0] - z0) / max(z1 - z0, 1)
            rel_y = (centroid[1] - y0) / max(y1 - y0, 1)
            zone = "lower" if rel < 1 / 3 else ("middle" if rel < 2 / 3 else "upper")
            lobe = _lobe(side, rel, rel_y)
        n_it = max(1, round(1.5 / min(sp)))
        rim = ndimage.binary_dilation(m, structure=np.ones((3, 3, 3)), iterations=n_it)
        shell = rim & ~m
        wall = shell & (lung == 0) & (img > -500.0)
        juxta = float(wall.sum()) >= max(3.0, 0.04 * float(shell.sum())) and _is_pleura(
            wall, lung == 0, m, sp
        )
    else:
        rel = centroid[0] / max(shape_full[0] - 1, 1)
        zone = "lower" if rel < 1 / 3 else ("middle" if rel < 2 / 3 else "upper")
    if lobe is None:
        lobe = _lobe(side, {"lower": 1 / 6, "middle": 0.5, "upper": 5 / 6}[zone], rel_y)
    lung_b = (lung > 0) if lung is not None else None
    plane = None
    if composition == "solid" and not calcified and not fat and mean_d <= NODE_PLACE_MAX_MM:
        plane = fissure_plane(img, m, sp, lung_b)
    # strands that are the fissure itself are not spicules
    fissure = plane_slab(img.shape, sp, plane) if plane is not None else None
    spic = _spiculation(img, m, sp, lung_b | m if lung_b is not None else None, exclude=fissure)
    # A hamartoma is rarely spiculated (clinical reference 7); in a spiculated nodule a small low-density
    # focus is more likely noise or necrosis, and calling it fat would make a spiculated nodule Lung-RADS
    # 1. Only a cluster well beyond what noise makes is fat there (a spiculation reading can also come
    # from vessels that touch a smooth hamartoma).
    if spic >= SPICULATED_FROM:
        fat = fat_size >= FAT_IN_SPICULATED_FACTOR
    bb_lo = tuple(int(v) for v in (lo_m + off))
    bb_hi = tuple(int(v) for v in (hi_m + off))
    meas = NoduleMeasurement(
        long_axis_mm=round(long_mm, 2),
        short_axis_mm=round(short_mm, 2),
        mean_diameter_mm=mean_d,
        volume_mm3=round(float(m.sum()) * vox, 2),
        mean_hu=round(float(vals.mean()), 1),
        min_hu=float(vals.min()),
        max_hu=float(vals.max()),
        composition=composition,
        solid_component_mm=float(solid_mm),
        calcification=bool(calcified),
        calcification_pattern=pattern,
        fat=bool(fat),
        side=side,
        zone=zone,
        lobe=lobe,
        juxtapleural=bool(juxta),
        spiculation_score=round(spic, 3),
        centroid_zyx=centroid,
        bbox_zyx=((bb_lo[0], bb_lo[1], bb_lo[2]), (bb_hi[0], bb_hi[1], bb_hi[2])),
        core_median_hu=round(float(np.median(img[inner])), 1),
        on_fissure_or_pleura=bool(juxta or plane is not None),
    )
    if (
        meas.on_fissure_or_pleura
        and meas.spiculation_score < SMOOTH_MARGIN_BELOW
        and meas.mean_diameter_mm <= NODE_PLACE_MAX_MM
        and perifissural_shape(meas, m, sp, margin=False, solid_part=solid_all, below_mm=math.inf)
    ):
        meas = dataclasses.replace(
            meas, lymph_node_morphology=True, perifissural=meas.mean_diameter_mm < PERIFISSURAL_BELOW_MM
        )
    return meas


def perifissural_shape(
    meas: NoduleMeasurement,
    mask: NDArray[np.bool_],
    spacing_zyx_mm: Sequence[float],
    *,
    margin: bool = True,
    solid_part: NDArray[np.bool_] | None = None,
    below_mm: float = PERIFISSURAL_BELOW_MM,
) -> bool:
    """The perifissural pattern but for its place: under ``below_mm`` (mean diameter), solid,
    lentiform, no calcium or fat, and (with ``margin``) smooth. Lentiform by the outline or by its
    ``solid_part``: the partial-volume rim of an outline rounds a thin disc, the solid voxels less so."""
    views = [np.asarray(mask, dtype=bool)]
    if solid_part is not None and int(solid_part.sum()) >= 4:
        views.append(np.asarray(solid_part, dtype=bool))
    return (
        meas.composition == "solid"
        and not meas.calcification
        and not meas.fat
        and meas.mean_diameter_mm < below_mm
        and (not margin or meas.spiculation_score < SMOOTH_MARGIN_BELOW)
        and any(_lentiform(view, spacing_zyx_mm) for view in views)
    )


def principal_extents(mask: NDArray[np.bool_], spacing_zyx_mm: Sequence[float]) -> tuple[float, float, float]:
    """Standard deviations (mm) of a mask's voxels along its principal axes, smallest first."""
    pts = np.argwhere(mask) * np.asarray(spacing_zyx_mm, dtype=float)
    if len(pts) < 4:
        return (0.0, 0.0, 0.0)
    ev = np.sqrt(np.clip(np.linalg.eigvalsh(np.cov(pts.T)), 0.0, None))
    return (float(ev[0]), float(ev[1]), float(ev[2]))


def _lentiform(mask: NDArray[np.bool_], sp: Sequence[float]) -> bool:
    """Flat (a disc or a wedge) rather than round or tubular."""
    small, middle, large = principal_extents(mask, sp)
    return large > 0 and small <= FLAT_RATIO_MAX * middle and middle >= DISC_RATIO_MIN * large
