"""Synthetic pulmonary nodules of every kind, painted into a CT volume or rendered as a crop.

Coordinates are millimetres in index space (``index * spacing``), axis order z, y, x. Attenuation
follows the clinical reference (section 6.1): lung parenchyma about -850 HU with texture, solid
nodules 0..60 HU, ground glass -750..-350 HU, calcium >= 200 HU, fat -120..-40 HU.

The nodule's nominal size is its mean axial diameter ``(long + short) / 2``; an ``elongation`` ``e``
gives a long axis ``2 e d / (1 + e)`` and short axes ``2 d / (1 + e)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from segmentation.phantom._raster import (
    FloatArray,
    Spacing,
    apply_scanner,
    box_offsets,
    box_slices,
    frame_with_normal,
    occupancy,
    paint_tube,
    random_rotation,
    smooth_noise,
)

#: Nodule kinds the phantom can draw.
NODULE_KINDS: tuple[str, ...] = (
    "solid",
    "part_solid",
    "ground_glass",
    "calcified",
    "fat",
    "cavitary",
    "perifissural",
)
#: Margin types.
MARGINS: tuple[str, ...] = ("smooth", "lobulated", "spiculated")
#: Calcification patterns (the first four are the benign ones).
CALCIFICATION_PATTERNS: tuple[str, ...] = (
    "central",
    "laminated",
    "popcorn",
    "diffuse",
    "punctate",
    "eccentric",
)
#: Patterns that prove benignity when they cover > 10 % of the cross-section.
BENIGN_CALCIFICATION_PATTERNS: tuple[str, ...] = ("central", "laminated", "popcorn", "diffuse")


@dataclass(frozen=True)
class NoduleSpec:
    """What nodule to draw.

    Attributes
    ----------
    kind
        One of :data:`NODULE_KINDS`.
    diameter_mm
        Mean axial diameter (mm): the average of the long and short axes.
    margin
        ``"smooth"``, ``"lobulated"`` or ``"spiculated"``.
    calcification
        Calcification pattern (one of :data:`CALCIFICATION_PATTERNS`) or ``None``. A ``"calcified"``
        nodule without a pattern gets ``"central"``.
    solid_diameter_mm
        Diameter (mm) of the solid core of a part-solid nodule; ``None`` picks half the diameter.
    fat
        Whether the nodule contains macroscopic fat (always true for kind ``"fat"``).
    cavity_wall_mm
        Wall thickness (mm) of a cavitary nodule; ``None`` picks ``max(1.5, 0.2 * diameter)``.
    elongation
        Ratio of long to short axis (>= 1).
    juxtapleural
        Whether the nodule abuts the costal pleura.
    """

    kind: str
    diameter_mm: float
    margin: str = "smooth"
    calcification: str | None = None
    solid_diameter_mm: float | None = None
    fat: bool = False
    cavity_wall_mm: float | None = None
    elongation: float = 1.0
    juxtapleural: bool = False

    def __post_init__(self) -> None:
        if self.kind not in NODULE_KINDS:
            raise ValueError(f"NoduleSpec.kind must be one of {NODULE_KINDS}, not {self.kind!r}")
        if not (0.5 <= self.diameter_mm <= 60.0):
            raise ValueError(f"NoduleSpec.diameter_mm must be in 0.5..60 mm, not {self.diameter_mm}")
        if self.margin not in MARGINS:
            raise ValueError(f"NoduleSpec.margin must be one of {MARGINS}, not {self.margin!r}")
        if self.calcification is not None and self.calcification not in CALCIFICATION_PATTERNS:
            raise ValueError(
                f"NoduleSpec.calcification must be one of {CALCIFICATION_PATTERNS} or None, "
                f"not {self.calcification!r}"
            )
        if self.elongation < 1.0:
            raise ValueError(f"NoduleSpec.elongation must be >= 1, not {self.elongation}")
        if self.solid_diameter_mm is not None and not (0 < self.solid_diameter_mm <= self.diameter_mm):
            raise ValueError("NoduleSpec.solid_diameter_mm must be in (0, diameter_mm]")
        if self.cavity_wall_mm is not None and self.cavity_wall_mm <= 0:
            raise ValueError("NoduleSpec.cavity_wall_mm must be positive")

    @property
    def composition(self) -> str:
        """``"solid"``, ``"part_solid"`` or ``"ground_glass"``."""
        if self.kind in ("part_solid", "ground_glass"):
            return self.kind
        return "solid"

    @property
    def calcification_pattern(self) -> str | None:
        """The effective calcification pattern (``"central"`` for a calcified nodule without one)."""
        if self.calcification is not None:
            return self.calcification
        return "central" if self.kind == "calcified" else None

    @property
    def has_fat(self) -> bool:
        """Whether the nodule contains macroscopic fat."""
        return self.fat or self.kind == "fat"

    @property
    def long_axis_mm(self) -> float:
        """Nominal long axis (mm)."""
        e = self.elongation
        return 2.0 * e * self.diameter_mm / (1.0 + e)

    @property
    def short_axis_mm(self) -> float:
        """Nominal short axis (mm)."""
        return 2.0 * self.diameter_mm / (1.0 + self.elongation)

    @property
    def solid_core_mm(self) -> float | None:
        """Diameter of the solid component (mm): the core of a part-solid nodule, all of a solid one."""
        if self.kind == "ground_glass":
            return None
        if self.kind == "part_solid":
            return self.solid_diameter_mm if self.solid_diameter_mm is not None else 0.5 * self.diameter_mm
        return self.diameter_mm


@dataclass(frozen=True)
class NoduleTruth:
    """Ground truth of one painted nodule.

    Attributes
    ----------
    label_id
        Its value in the instance label map.
    kind
        The spec's kind.
    spec
        The full spec it was drawn from.
    center_zyx_mm
        Centre in mm of index space (``index * spacing``), z, y, x.
    long_axis_mm, short_axis_mm
        Nominal axes (mm).
    mean_diameter_mm
        Nominal mean diameter (mm), equal to ``spec.diameter_mm``.
    solid_diameter_mm
        Diameter of the solid component (mm), ``None`` for pure ground glass.
    volume_mm3
        Volume of its voxels in the label map (mm3).
    analytic_volume_mm3
        Volume of the ideal (smooth ellipsoid) shape (mm3).
    voxel_count
        Number of voxels labelled with ``label_id``.
    """

    label_id: int
    kind: str
    spec: NoduleSpec
    center_zyx_mm: tuple[float, float, float]
    long_axis_mm: float
    short_axis_mm: float
    mean_diameter_mm: float
    solid_diameter_mm: float | None
    volume_mm3: float
    analytic_volume_mm3: float
    voxel_count: int

    @property
    def diameter_mm(self) -> float:
        """Alias of :attr:`mean_diameter_mm`."""
        return self.mean_diameter_mm

    @property
    def composition(self) -> str:
        """``"solid"``, ``"part_solid"`` or ``"ground_glass"``."""
        return self.spec.composition

    def center_index(self, spacing_zyx_mm: Sequence[float]) -> tuple[float, float, float]:
        """Centre as (fractional) voxel indices z, y, x."""
        c = self.center_zyx_mm
        return (c[0] / spacing_zyx_mm[0], c[1] / spacing_zyx_mm[1], c[2] / spacing_zyx_mm[2])


@dataclass(frozen=True)
class NoduleCrop:
    """A rendered crop of lung with one nodule at its centre.

    Attributes
    ----------
    hu
        Image (float32, HU), axes z, y, x.
    mask
        Nodule mask (uint8, 1 inside).
    truth
        The nodule's truth (label id 1, centre in crop mm).
    spacing_zyx_mm
        Voxel spacing (mm).
    """

    hu: NDArray[np.float32]
    mask: NDArray[np.uint8]
    truth: NoduleTruth
    spacing_zyx_mm: tuple[float, float, float]


def _unit_vectors(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    v = rng.standard_normal((n, 3))
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float64)


def _lobulation(u: Sequence[FloatArray], rng: np.random.Generator, amp: float) -> FloatArray:
    """A radius modulation ``1 + amp * f(direction)`` with a few smooth bumps (f roughly -0.5..1)."""
    dirs = _unit_vectors(rng, int(rng.integers(4, 8)))
    f = np.zeros(np.broadcast_shapes(u[0].shape, u[1].shape, u[2].shape), dtype=np.float32)
    for d in dirs:
        dot = u[0] * np.float32(d[0]) + u[1] * np.float32(d[1]) + u[2] * np.float32(d[2])
        f += np.clip(dot, 0.0, None) ** 4
    f -= np.float32(0.25 * len(dirs) / 5.0)
    return (1.0 + np.float32(amp) * f).astype(np.float32)


def paint_nodule(
    volume_hu: FloatArray,
    labels: NDArray[np.integer] | None,
    label_id: int,
    spec: NoduleSpec,
    center_zyx_mm: Sequence[float],
    spacing_zyx_mm: Sequence[float],
    rng: np.random.Generator,
    *,
    orientation: NDArray[np.float64] | None = None,
    inside: NDArray[np.bool_] | None = None,
) -> NoduleTruth:
    """Rasterise a nodule into ``volume_hu`` (and ``labels``) in place, with partial-volume edges.

    Parameters
    ----------
    volume_hu
        Float32 HU volume (z, y, x), modified in place. It should be noise-free: add scanner noise
        afterwards.
    labels
        Integer instance map of the same shape that receives ``label_id`` where the nodule covers more
        than half a voxel, or ``None``.
    label_id
        Label value for this nodule (> 0).
    spec
        What to draw.
    center_zyx_mm
        Centre (mm, index space).
    spacing_zyx_mm
        Voxel spacing (mm).
    rng
        Random generator (shape details, texture).
    orientation
        3x3 rotation whose columns are the nodule's z', y', x' axes (x' is the long axis); random
        mostly-axial when ``None``.
    inside
        Optional boolean volume; voxels outside it are never labelled (e.g. the chest wall under a
        juxtapleural nodule).

    Returns
    -------
    NoduleTruth
        The nodule's truth.

    Raises
    ------
    ValueError
        When the arrays' shapes differ or ``label_id`` is not positive.
    """
    if label_id <= 0:
        raise ValueError(f"label_id must be positive, not {label_id}")
    if labels is not None and labels.shape != volume_hu.shape:
        raise ValueError(f"labels shape {labels.shape} differs from volume shape {volume_hu.shape}")
    sp: Spacing = (float(spacing_zyx_mm[0]), float(spacing_zyx_mm[1]), float(spacing_zyx_mm[2]))
    center = tuple(float(c) for c in center_zyx_mm)
    rot = orientation if orientation is not None else random_rotation(rng)
    a = spec.long_axis_mm / 2.0  # x'
    b = spec.short_axis_mm / 2.0  # y'
    c = spec.short_axis_mm / 2.0  # z'
    if spec.kind == "perifissural":
        c = max(0.6 * c, 0.75)  # lentiform: flattened against the fissure
    lob_amp = {"smooth": 0.0, "lobulated": 0.22, "spiculated": 0.12}[spec.margin]
    spike_len = 0.9 * a + 3.0 if spec.margin == "spiculated" else 0.0
    reach = a * (1.0 + 1.5 * lob_amp) + spike_len + 2.0 * max(sp)
    sl = box_slices(center, reach, sp, volume_hu.shape)
    if sl is None:
        raise ValueError(f"nodule centre {center} lies outside the volume")
    zz, yy, xx = box_offsets(sl, center, sp)
    r = rot.astype(np.float32)
    pz = zz * r[0, 0] + yy * r[1, 0] + xx * r[2, 0]
    py = zz * r[0, 1] + yy * r[1, 1] + xx * r[2, 1]
    px = zz * r[0, 2] + yy * r[1, 2] + xx * r[2, 2]
    dist = np.sqrt(zz * zz + yy * yy + xx * xx) + np.float32(1e-6)
    rho = np.sqrt((pz / c) ** 2 + (py / b) ** 2 + (px / a) ** 2).astype(np.float32) + np.float32(1e-6)
    if lob_amp > 0:
        rho = rho / _lobulation((pz / dist, py / dist, px / dist), rng, lob_amp)
    # approximate signed distance (mm) and the voxel width along the radial direction
    sdist = ((rho - 1.0) * dist / rho).astype(np.float32)
    width = np.abs(zz / dist) * np.float32(sp[0]) + np.abs(yy / dist) * np.float32(sp[1])
    width = np.maximum(width + np.abs(xx / dist) * np.float32(sp[2]), np.float32(0.3 * min(sp)))
    occ = occupancy(sdist, width)

    shape = occ.shape
    tex_sigma = 1.2
    if spec.kind == "ground_glass":
        inner = np.float32(rng.uniform(-720.0, -420.0)) + smooth_noise(shape, tex_sigma, sp, rng, 45.0)
    elif spec.kind == "part_solid":
        inner = np.float32(rng.uniform(-650.0, -430.0)) + smooth_noise(shape, tex_sigma, sp, rng, 40.0)
        core_d = spec.solid_core_mm or 0.5 * spec.diameter_mm
        off = rng.uniform(-0.25, 0.25, size=3) * (spec.diameter_mm - core_d) / 2.0
        cd = np.sqrt((zz - off[0]) ** 2 + (yy - off[1]) ** 2 + (xx - off[2]) ** 2)
        core_rho = cd / np.float32(core_d / 2.0)
        if lob_amp > 0 or spec.margin == "spiculated":
            core_rho = core_rho / _lobulation((pz / dist, py / dist, px / dist), rng, 0.2)
        core_occ = occupancy(((core_rho - 1.0) * core_d / 2.0).astype(np.float32), width)
        solid_hu = np.float32(rng.uniform(0.0, 45.0))
        inner = inner + core_occ * (solid_hu - inner)
    else:
        inner = np.float32(rng.uniform(5.0, 50.0)) + smooth_noise(shape, tex_sigma, sp, rng, 10.0)

    # internal structures, as occupancies blended into ``inner``
    def blob(cz: float, cy: float, cx: float, radius: float) -> FloatArray:
        d = np.sqrt((zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2)
        return occupancy((d - np.float32(radius)).astype(np.float32), width)

    rad = spec.diameter_mm / 2.0
    pattern = spec.calcification_pattern
    if pattern is not None:
        ca_hu = np.float32(rng.uniform(350.0, 900.0))
        ca = np.zeros(shape, dtype=np.float32)
        if pattern == "central":
            ca = blob(0.0, 0.0, 0.0, max(0.38 * rad, 0.8))
        elif pattern == "diffuse":
            ca = np.ones(shape, dtype=np.float32)
            ca_hu = np.float32(rng.uniform(250.0, 700.0))
        elif pattern == "laminated":
            for fr in (0.3, 0.62, 0.9):
                thick = max(0.12 * rad, 0.45)
                shell = np.abs(rho * np.float32(rad) - np.float32(fr * rad)) - np.float32(thick / 2.0)
                ca = np.maximum(ca, occupancy(shell.astype(np.float32), width))
        elif pattern == "popcorn":
            # coarse foci: a benign pattern covers > 10 % of the cross-section (clinical reference 6.1)
            for _ in range(int(rng.integers(4, 8))):
                v = _unit_vectors(rng, 1)[0] * rng.uniform(0.1, 0.6) * rad
                ca = np.maximum(ca, blob(v[0], v[1], v[2], max(rng.uniform(0.2, 0.28) * rad, 0.7)))
        elif pattern == "punctate":
            for _ in range(int(rng.integers(2, 5))):
                v = _unit_vectors(rng, 1)[0] * rng.uniform(0.0, 0.6) * rad
                ca = np.maximum(ca, blob(v[0], v[1], v[2], 0.6))
        elif pattern == "eccentric":
            v = _unit_vectors(rng, 1)[0] * 0.55 * rad
            ca = blob(v[0], v[1], v[2], max(0.3 * rad, 0.8))
        inner = inner + ca * (ca_hu - inner)
    if spec.has_fat:
        fat_hu = np.float32(rng.uniform(-110.0, -60.0))
        fat = np.zeros(shape, dtype=np.float32)
        for _ in range(int(rng.integers(2, 5))):
            v = _unit_vectors(rng, 1)[0] * rng.uniform(0.0, 0.45) * rad
            fat = np.maximum(fat, blob(v[0], v[1], v[2], max(rng.uniform(0.25, 0.4) * rad, 1.0)))
        inner = inner + fat * (fat_hu - inner)
    if spec.kind == "cavitary":
        wall = spec.cavity_wall_mm if spec.cavity_wall_mm is not None else max(1.5, 0.2 * spec.diameter_mm)
        wall = min(wall, 0.8 * rad)
        inner_r = max(rad - wall, 0.3)
        wobble = _lobulation((pz / dist, py / dist, px / dist), rng, 0.3)
        cav_sd = (rho * np.float32(rad) - np.float32(inner_r) * wobble).astype(np.float32)
        cav = occupancy(cav_sd, width)
        inner = inner + cav * (np.float32(rng.uniform(-980.0, -900.0)) - inner)

    sub = volume_hu[sl]
    spikes = np.zeros(shape, dtype=np.float32)
    if spec.margin == "spiculated":
        tmp = np.zeros(shape, dtype=np.float32)
        n_sp = int(rng.integers(7, 15))
        for d in _unit_vectors(rng, n_sp):
            length = float(rng.uniform(0.5, 1.0)) * spike_len
            p0 = np.array(center) - np.array([sl[0].start, sl[1].start, sl[2].start]) * np.array(sp)
            start = p0 + d * rad * 0.7
            end = p0 + d * (rad + length)
            paint_tube(tmp, start.tolist(), end.tolist(), float(rng.uniform(0.5, 0.9)), 0.15, 1.0, sp)
        spikes = np.clip(tmp, 0.0, 1.0) * (1.0 - occ)
        solid_spikes = spec.composition == "solid"
        spike_hu = np.float32(rng.uniform(-100.0, 30.0)) if solid_spikes else np.float32(-450.0)
        sub += spikes * (spike_hu - sub)
    sub += occ * (inner - sub)

    label_here = occ >= 0.5
    if inside is not None:
        label_here &= inside[sl]
    if labels is not None:
        lab_sub = labels[sl]
        lab_sub[label_here] = label_id
    vox = float(sp[0] * sp[1] * sp[2])
    count = int(label_here.sum())
    analytic = 4.0 / 3.0 * math.pi * a * b * c
    return NoduleTruth(
        label_id=int(label_id),
        kind=spec.kind,
        spec=spec,
        center_zyx_mm=(center[0], center[1], center[2]),
        long_axis_mm=float(spec.long_axis_mm),
        short_axis_mm=float(spec.short_axis_mm),
        mean_diameter_mm=float(spec.diameter_mm),
        solid_diameter_mm=spec.solid_core_mm,
        volume_mm3=count * vox,
        analytic_volume_mm3=float(analytic),
        voxel_count=count,
    )


def lung_background(
    shape: Sequence[int], spacing: Spacing, rng: np.random.Generator, base_hu: float | None = None
) -> FloatArray:
    """Lung parenchyma (about -850 HU) with coarse and fine texture, noise-free.

    Parameters
    ----------
    shape
        Volume shape (z, y, x).
    spacing
        Voxel spacing (mm).
    rng
        Random generator.
    base_hu
        Mean attenuation; random in -880..-800 HU when ``None``.
    """
    base = float(rng.uniform(-880.0, -800.0)) if base_hu is None else float(base_hu)
    field = smooth_noise(shape, 6.0, spacing, rng, 18.0)
    field += smooth_noise(shape, 1.2, spacing, rng, 14.0)
    return (np.float32(base) + field).astype(np.float32)


def _random_vessels(
    vol: FloatArray,
    spacing: Spacing,
    rng: np.random.Generator,
    center: NDArray[np.float64],
    keep_out_mm: float,
    extent_mm: NDArray[np.float64],
) -> None:
    """Draw a few tapering, branching vessels across a crop, mostly avoiding the nodule centre."""
    n = int(rng.integers(2, 6))
    for _ in range(n):
        for _attempt in range(10):
            p = rng.uniform(0.0, 1.0, 3) * extent_mm
            d = _unit_vectors(rng, 1)[0]
            # distance of the line from the centre
            w = center - p
            closest = np.linalg.norm(w - np.dot(w, d) * d)
            r0 = float(rng.uniform(0.6, 2.6))
            touching = rng.uniform() < 0.25
            if closest > keep_out_mm + r0 + (0.0 if touching else 1.5):
                break
        half = float(np.linalg.norm(extent_mm))
        hu = float(rng.uniform(20.0, 60.0))
        p0 = p - d * half
        p1 = p + d * half
        paint_tube(vol, p0.tolist(), p1.tolist(), r0, max(0.4, r0 * rng.uniform(0.5, 0.9)), hu, spacing)
        if rng.uniform() < 0.5:
            branch_dir = d + _unit_vectors(rng, 1)[0] * 0.8
            branch_dir /= np.linalg.norm(branch_dir)
            paint_tube(vol, p.tolist(), (p + branch_dir * half * 0.6).tolist(), r0 * 0.7, 0.3, hu, spacing)


def render_nodule_crop(
    spec: NoduleSpec,
    *,
    spacing_zyx_mm: Sequence[float] = (1.0, 0.7, 0.7),
    size_mm: float = 48.0,
    rng: np.random.Generator,
    noise_hu: float = 20.0,
    kernel: str = "soft",
    with_vessels: bool = True,
) -> NoduleCrop:
    """Render a cube of lung with texture, vessels, optional pleura or fissure, and the nodule centred.

    Parameters
    ----------
    spec
        The nodule.
    spacing_zyx_mm
        Voxel spacing (mm).
    size_mm
        Edge length of the cube (mm).
    rng
        Random generator (every random choice comes from it).
    noise_hu
        Image noise standard deviation (HU).
    kernel
        ``"soft"`` or ``"sharp"`` reconstruction kernel.
    with_vessels
        Whether to draw vessels crossing the crop.

    Returns
    -------
    NoduleCrop
        ``hu`` float32 (z, y, x), ``mask`` uint8, ``truth`` (centre in crop mm).
    """
    sp: Spacing = (float(spacing_zyx_mm[0]), float(spacing_zyx_mm[1]), float(spacing_zyx_mm[2]))
    shape = tuple(max(round(size_mm / s), 8) for s in sp)
    extent = np.array([n * s for n, s in zip(shape, sp, strict=True)], dtype=np.float64)
    center = np.array([(n // 2) * s for n, s in zip(shape, sp, strict=True)], dtype=np.float64)
    vol = lung_background(shape, sp, rng)
    labels = np.zeros(shape, dtype=np.int16)
    inside: NDArray[np.bool_] | None = None
    orientation: NDArray[np.float64] | None = None
    if with_vessels:
        _random_vessels(vol, sp, rng, center, spec.long_axis_mm / 2.0, extent)
    zz, yy, xx = box_offsets(
        (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2])), center.tolist(), sp
    )
    if spec.juxtapleural:
        ang = rng.uniform(0.0, 2.0 * np.pi)
        normal = np.array([0.0, np.sin(ang), np.cos(ang)], dtype=np.float32)
        gap = np.float32(spec.short_axis_mm / 2.0 * 0.85)
        plane = zz * normal[0] + yy * normal[1] + xx * normal[2] - gap
        w = float(np.mean(sp))
        wall = occupancy((-plane).astype(np.float32), w)
        muscle_hu = np.float32(rng.uniform(30.0, 55.0))
        vol += wall * (muscle_hu - vol)
        fat_layer = occupancy((-(plane - np.float32(rng.uniform(4.0, 7.0)))).astype(np.float32), w)
        vol += fat_layer * (np.float32(rng.uniform(-110.0, -80.0)) - vol)
        muscle2 = occupancy((-(plane - np.float32(rng.uniform(9.0, 12.0)))).astype(np.float32), w)
        vol += muscle2 * (muscle_hu - vol)
        inside = plane < 0
        # the nodule's z' axis along the pleural normal keeps its long axis along the pleura
        orientation = frame_with_normal([float(normal[0]), float(normal[1]), float(normal[2])], rng)
    if spec.kind == "perifissural":
        normal = _unit_vectors(rng, 1)[0]
        normal[0] *= 0.6
        normal /= np.linalg.norm(normal)
        c_half = max(0.6 * spec.short_axis_mm / 2.0, 0.75)
        plane = zz * np.float32(normal[0]) + yy * np.float32(normal[1]) + xx * np.float32(normal[2])
        plane = plane - np.float32(c_half)
        fissure = occupancy((np.abs(plane) - np.float32(0.35)).astype(np.float32), float(np.mean(sp)))
        vol += fissure * (np.float32(rng.uniform(-300.0, -100.0)) - vol)
        orientation = frame_with_normal([float(v) for v in normal], rng)
    truth = paint_nodule(
        vol, labels, 1, spec, center.tolist(), sp, rng, orientation=orientation, inside=inside
    )
    img = apply_scanner(vol, sp, rng, noise_hu=noise_hu, kernel=kernel)
    mask = (labels > 0).astype(np.uint8)
    return NoduleCrop(hu=img, mask=mask, truth=truth, spacing_zyx_mm=sp)


def random_spec(
    rng: np.random.Generator,
    *,
    diameter_range_mm: tuple[float, float] = (3.0, 30.0),
    kinds: Sequence[str] | None = None,
) -> NoduleSpec:
    """Draw a random nodule spec covering every kind, margin and calcification pattern.

    Sizes are drawn log-uniformly so small nodules (the hard ones) are common.

    Parameters
    ----------
    rng
        Random generator.
    diameter_range_mm
        Range of mean diameters (mm).
    kinds
        Kinds to choose from (all of :data:`NODULE_KINDS` when ``None``), with solid ones favoured.
    """
    pool = list(kinds) if kinds is not None else list(NODULE_KINDS)
    weights = np.array([3.0 if k == "solid" else 1.0 for k in pool])
    kind = str(rng.choice(pool, p=weights / weights.sum()))
    lo, hi = diameter_range_mm
    d = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    margin = str(rng.choice(MARGINS, p=[0.55, 0.25, 0.2]))
    calc: str | None = None
    fat = False
    solid_d: float | None = None
    wall: float | None = None
    elong = float(rng.uniform(1.0, 1.5))
    if kind == "calcified":
        calc = str(rng.choice(CALCIFICATION_PATTERNS))
        margin = "smooth" if rng.uniform() < 0.8 else "lobulated"
    elif kind == "fat":
        fat = True
        margin = "smooth" if rng.uniform() < 0.6 else "lobulated"
        if rng.uniform() < 0.4:
            calc = "popcorn"
    elif kind == "part_solid":
        d = max(d, 5.0)
        solid_d = float(rng.uniform(0.25, 0.7) * d)
    elif kind == "ground_glass":
        d = max(d, 4.0)
        margin = "smooth" if rng.uniform() < 0.7 else "lobulated"
    elif kind == "cavitary":
        d = max(d, 8.0)
        wall = float(rng.uniform(1.5, max(1.6, 0.3 * d)))
    elif kind == "perifissural":
        d = min(max(d, 3.0), 10.0)
        margin = "smooth"
        elong = float(rng.uniform(1.3, 2.0))
    d = min(d, hi)
    jux = kind not in ("perifissural",) and rng.uniform() < 0.15
    return NoduleSpec(
        kind=kind,
        diameter_mm=round(d, 2),
        margin=margin,
        calcification=calc,
        solid_diameter_mm=solid_d,
        fat=fat,
        cavity_wall_mm=wall,
        elongation=elong,
        juxtapleural=jux,
    )


def nodule_mask_stats(mask: NDArray[np.uint8], spacing: Sequence[float]) -> tuple[float, int]:
    """Volume (mm3) and voxel count of a binary mask."""
    n = int(np.count_nonzero(mask))
    return n * float(spacing[0] * spacing[1] * spacing[2]), n


__all__ = [
    "BENIGN_CALCIFICATION_PATTERNS",
    "CALCIFICATION_PATTERNS",
    "MARGINS",
    "NODULE_KINDS",
    "NoduleCrop",
    "NoduleSpec",
    "NoduleTruth",
    "lung_background",
    "paint_nodule",
    "random_spec",
    "render_nodule_crop",
]
