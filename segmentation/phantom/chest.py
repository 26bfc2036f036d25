"""A synthetic whole-chest CT: body, fat, muscle, ribs, spine, heart, aorta, lungs with texture,
branching vessels and airways, fissures, and nodules of every kind.

Conventions (shared by the whole library): arrays are indexed ``[z, y, x]``; ``x`` increases towards
the patient's left, ``y`` towards posterior, ``z`` towards superior (the usual axial DICOM
orientation sorted by slice position). Millimetre coordinates are ``index * spacing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.phantom._raster import Spacing, apply_scanner, frame_with_normal, paint_tube
from segmentation.phantom.nodules import NoduleSpec, NoduleTruth, paint_nodule, random_spec

#: Slice spacings (mm) drawn when none is given, with their weights.
_Z_SPACINGS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0)
_Z_WEIGHTS = (0.18, 0.18, 0.12, 0.14, 0.18, 0.1, 0.1)


@dataclass(frozen=True)
class ChestPhantom:
    """A synthetic chest CT with its ground truth.

    Attributes
    ----------
    hu
        Image (int16, HU), axes z, y, x.
    spacing_zyx_mm
        Voxel spacing (mm).
    labels
        Nodule instance map (int16): 0 background, ``truth.label_id`` inside each nodule.
    lung_mask
        Lungs (uint8): 1 right lung, 2 left lung, 0 elsewhere.
    nodules
        Truth for each nodule.
    kernel
        Reconstruction kernel simulated (``"soft"`` or ``"sharp"``).
    noise_hu
        Image noise standard deviation (HU).
    """

    hu: NDArray[np.int16]
    spacing_zyx_mm: tuple[float, float, float]
    labels: NDArray[np.int16]
    lung_mask: NDArray[np.uint8]
    nodules: list[NoduleTruth]
    kernel: str
    noise_hu: float


@dataclass
class _Anatomy:
    lz: float  # z extent (mm)
    cy: float
    cx: float
    body_ay: float
    body_ax: float
    cav_ay: float
    cav_ax: float
    z_apex: float
    z_base: float
    z_dome: tuple[float, float]  # right, left
    z_hilum: float
    heart_c: tuple[float, float, float]
    heart_r: tuple[float, float, float]
    fat_mm: float
    muscle_mm: float
    rib_period: float
    rib_phase: float


def _anatomy(rng: np.random.Generator, shape: Sequence[int], sp: Spacing) -> _Anatomy:
    lz = shape[0] * sp[0]
    fov_y = shape[1] * sp[1]
    fov_x = shape[2] * sp[2]
    body_ax = min(rng.uniform(150.0, 178.0), 0.47 * fov_x)
    body_ay = min(rng.uniform(0.62, 0.72) * body_ax, 0.45 * fov_y)
    fat = float(rng.uniform(6.0, 22.0))
    muscle = float(rng.uniform(8.0, 14.0))
    cav_ax = body_ax - fat - muscle - 10.0
    cav_ay = body_ay - fat - muscle - 10.0
    cy = fov_y / 2.0 + rng.uniform(-8.0, 8.0)
    cx = fov_x / 2.0 + rng.uniform(-6.0, 6.0)
    z_apex = lz * rng.uniform(0.9, 0.96)
    z_base = lz * rng.uniform(0.04, 0.1)
    dome_r = lz * rng.uniform(0.26, 0.34)
    dome_l = dome_r - rng.uniform(5.0, 20.0)
    z_hilum = lz * rng.uniform(0.5, 0.58)
    heart_c = (dome_l + 0.12 * lz, cy - 0.25 * cav_ay, cx + 0.18 * cav_ax)
    heart_r = (0.22 * lz, 0.5 * cav_ay, 0.38 * cav_ax)
    return _Anatomy(
        lz=lz,
        cy=cy,
        cx=cx,
        body_ay=body_ay,
        body_ax=body_ax,
        cav_ay=cav_ay,
        cav_ax=cav_ax,
        z_apex=z_apex,
        z_base=z_base,
        z_dome=(dome_r, dome_l),
        z_hilum=z_hilum,
        heart_c=heart_c,
        heart_r=heart_r,
        fat_mm=fat,
        muscle_mm=muscle,
        rib_period=float(rng.uniform(30.0, 38.0)),
        rib_phase=float(rng.uniform(0.0, 1.0)),
    )


def _lung_slice(
    an: _Anatomy, z: float, yy: NDArray[np.float32], xx: NDArray[np.float32]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Right and left lung masks of one axial slice at height ``z`` (mm)."""
    out: list[NDArray[np.bool_]] = []
    for side, dome in ((-1.0, an.z_dome[0]), (1.0, an.z_dome[1])):
        if z >= an.z_apex or z <= an.z_base:
            out.append(np.zeros(yy.shape[0:1] + xx.shape[1:2], dtype=bool))
            continue
        top = 0.62 * an.lz
        g = 1.0 if z <= top else float(np.sqrt(max(an.z_apex - z, 0.0) / (an.z_apex - top)))
        g = max(g, 0.05)
        lx = an.cx + side * 0.5 * an.cav_ax * (1.0 - 0.25 * (1.0 - g))
        ly = an.cy + 0.08 * an.cav_ay * (1.0 - g)
        rx = 0.52 * an.cav_ax * g
        ry = 0.95 * an.cav_ay * (0.35 + 0.65 * g)
        e = ((xx - lx) / rx) ** 2 + ((yy - ly) / ry) ** 2
        cav = ((xx - an.cx) / an.cav_ax) ** 2 + ((yy - an.cy) / an.cav_ay) ** 2
        lung = (e < 1.0) & (cav < 1.0)
        # mediastinum band and spine
        med_half = 14.0 + 14.0 * (1.0 - abs(z - an.z_hilum) / an.lz)
        lung &= side * (xx - an.cx) > med_half
        spine_y = an.cy + an.cav_ay - 18.0
        lung &= ((xx - an.cx) ** 2 + (yy - spine_y) ** 2) > 34.0**2
        # heart (an ellipsoid; carves the left lung more)
        hz, hy, hx = an.heart_c
        rz, ry_h, rx_h = an.heart_r
        dz = (z - hz) / rz
        if abs(dz) < 1.0:
            heart = ((yy - hy) / ry_h) ** 2 + ((xx - hx) / rx_h) ** 2 < (1.0 - dz * dz)
            lung &= ~heart
        # diaphragm dome: lung only above it
        rr = ((xx - lx) / (0.52 * an.cav_ax)) ** 2 + ((yy - an.cy) / an.cav_ay) ** 2
        dome_z = an.z_base + (dome - an.z_base) * np.clip(1.0 - rr, 0.0, 1.0)
        lung &= z > dome_z
        out.append(lung)
    return out[0], out[1]


def _draw_slice(
    an: _Anatomy,
    z: float,
    yy: NDArray[np.float32],
    xx: NDArray[np.float32],
    lungs: tuple[NDArray[np.bool_], NDArray[np.bool_]],
    rng_vals: NDArray[np.float64],
) -> NDArray[np.float32]:
    """The noise-free HU of one axial slice without vessels, airways or nodules."""
    shape = (yy.shape[0], xx.shape[1])
    img = np.full(shape, -1000.0, dtype=np.float32)
    wobble = 1.0 + 0.02 * np.sin(3.0 * np.arctan2(yy - an.cy, xx - an.cx) + rng_vals[0])
    body = ((xx - an.cx) / (an.body_ax * wobble)) ** 2 + ((yy - an.cy) / (an.body_ay * wobble)) ** 2
    img[body < 1.0] = -100.0 + 10.0 * rng_vals[1]
    sx = an.body_ax - an.fat_mm
    sy = an.body_ay - an.fat_mm
    muscle = ((xx - an.cx) / sx) ** 2 + ((yy - an.cy) / sy) ** 2
    img[muscle < 1.0] = 45.0
    cav = ((xx - an.cx) / (an.cav_ax + 10.0)) ** 2 + ((yy - an.cy) / (an.cav_ay + 10.0)) ** 2
    # ribs: an interrupted bony ring just outside the cavity
    ang = np.arctan2(yy - an.cy, xx - an.cx)
    ring = (cav < 1.0) & (((xx - an.cx) / an.cav_ax) ** 2 + ((yy - an.cy) / an.cav_ay) ** 2 >= 1.0)
    rib_on = ((z / an.rib_period + 0.35 * np.abs(ang) / np.pi + an.rib_phase) % 1.0) < 0.33
    img[ring & rib_on & (z < an.z_apex + 10.0)] = 450.0
    inner = ((xx - an.cx) / an.cav_ax) ** 2 + ((yy - an.cy) / an.cav_ay) ** 2 < 1.0
    img[inner] = 35.0  # mediastinum / soft tissue
    # mediastinal fat patches
    fat_c = ((xx - an.cx) / 30.0) ** 2 + ((yy - (an.cy - 0.45 * an.cav_ay)) / 20.0) ** 2 < 1.0
    img[inner & fat_c] = -95.0
    # spine: vertebral body with cortical rim and canal
    spine_y = an.cy + an.cav_ay - 18.0
    rs = (xx - an.cx) ** 2 + (yy - spine_y) ** 2
    img[rs < 17.0**2] = 700.0
    img[rs < 15.0**2] = 260.0
    canal = (xx - an.cx) ** 2 + (yy - (spine_y + 24.0)) ** 2
    img[canal < 8.0**2] = 20.0
    # descending aorta left of the spine, heart below the hilum
    if an.z_dome[1] < z < an.z_hilum + 40.0:
        ao = (xx - (an.cx + 24.0)) ** 2 + (yy - (spine_y - 22.0)) ** 2
        img[ao < 12.5**2] = 42.0
    hz, hy, hx = an.heart_c
    rz, ry_h, rx_h = an.heart_r
    dz = (z - hz) / rz
    if abs(dz) < 1.0:
        heart = ((yy - hy) / ry_h) ** 2 + ((xx - hx) / rx_h) ** 2 < (1.0 - dz * dz)
        img[heart & inner] = 40.0
    # abdomen below the diaphragm (liver on the right)
    if z < max(an.z_dome):
        below = inner & ~lungs[0] & ~lungs[1]
        img[below & (xx < an.cx + 20.0)] = 58.0
    lung_any = lungs[0] | lungs[1]
    img[lung_any] = -850.0
    return img


def _grow_tree(
    occ: NDArray[np.float32],
    sp: Spacing,
    rng: np.random.Generator,
    start: NDArray[np.float64],
    targets: NDArray[np.float64],
    radius: float,
    min_radius: float,
    exponent: float,
) -> None:
    """Grow a space-filling branching tube tree from ``start`` towards ``targets`` (mm points)."""
    stack: list[tuple[NDArray[np.float64], NDArray[np.float64], float]] = [(start, targets, radius)]
    while stack:
        p, tg, r = stack.pop()
        if len(tg) == 0 or r < min_radius:
            continue
        centroid = tg.mean(axis=0)
        vec = centroid - p
        dist = float(np.linalg.norm(vec))
        if len(tg) == 1 or dist < 2.0:
            end = tg[0] if len(tg) == 1 else centroid
            paint_tube(occ, p.tolist(), end.tolist(), r, max(r * 0.6, 0.3), 1.0, sp)
            continue
        step = min(0.5 * dist, 40.0)
        q = p + vec / dist * step
        r_end = r * 0.92
        paint_tube(occ, p.tolist(), q.tolist(), r, r_end, 1.0, sp)
        # split the targets by a plane through their centroid along their main spread
        centred = tg - centroid
        cov = centred.T @ centred
        _, v = np.linalg.eigh(cov)
        axis = v[:, -1] + rng.normal(0.0, 0.25, 3)
        side = centred @ axis > 0
        groups = [tg[side], tg[~side]]
        n = len(tg)
        for g in groups:
            if len(g):
                stack.append((q, g, r_end * (len(g) / n) ** exponent))


def _sample_in_mask(
    mask: NDArray[np.bool_], sp: Spacing, rng: np.random.Generator, n: int
) -> NDArray[np.float64]:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return np.zeros((0, 3))
    pick = rng.choice(idx, size=min(n, idx.size), replace=False)
    zyx = np.array(np.unravel_index(pick, mask.shape), dtype=np.float64).T
    zyx += rng.uniform(-0.5, 0.5, zyx.shape)
    out: NDArray[np.float64] = zyx * np.array(sp)
    return out


def make_chest_phantom(
    seed: int,
    *,
    shape_zyx: Sequence[int] | None = None,
    spacing_zyx_mm: Sequence[float] | None = None,
    nodules: Sequence[NoduleSpec] | None = None,
    n_nodules: tuple[int, int] = (1, 5),
    nodule_diameter_range_mm: tuple[float, float] = (3.0, 30.0),
    noise_hu: float | None = None,
    kernel: str | None = None,
    with_vessels: bool = True,
) -> ChestPhantom:
    """Generate a synthetic chest CT with nodules and its ground truth.

    Parameters
    ----------
    seed
        Seed of every random choice (same seed, same phantom).
    shape_zyx
        Volume shape; random realistic (512 x 512 in-plane, 270-320 mm of z) when ``None``.
    spacing_zyx_mm
        Voxel spacing (mm); drawn from 1-5 mm slices and 0.6-0.9 mm pixels when ``None``.
    nodules
        The nodules to draw; ``None`` draws ``n_nodules`` random ones.
    n_nodules
        Inclusive range of the number of random nodules.
    nodule_diameter_range_mm
        Diameter range (mm) of random nodules.
    noise_hu
        Image noise (HU standard deviation); random 10-35 when ``None``.
    kernel
        ``"soft"`` or ``"sharp"``; random when ``None``.
    with_vessels
        Whether to draw vessel and airway trees (turn off only for fast tests).

    Returns
    -------
    ChestPhantom
        The image (int16 HU), nodule instance labels, lung mask and nodule truth.
    """
    rng = np.random.default_rng(seed)
    if spacing_zyx_mm is None:
        sz = float(rng.choice(_Z_SPACINGS, p=np.array(_Z_WEIGHTS) / sum(_Z_WEIGHTS)))
        sxy = float(np.round(rng.uniform(0.6, 0.9), 3))
        sp: Spacing = (sz, sxy, sxy)
    else:
        sp = (float(spacing_zyx_mm[0]), float(spacing_zyx_mm[1]), float(spacing_zyx_mm[2]))
    if shape_zyx is None:
        shape = (round(rng.uniform(270.0, 320.0) / sp[0]), 512, 512)
    else:
        shape = (int(shape_zyx[0]), int(shape_zyx[1]), int(shape_zyx[2]))
    if kernel is None:
        kernel = "soft" if rng.uniform() < 0.6 else "sharp"
    if noise_hu is None:
        noise_hu = float(rng.uniform(10.0, 35.0))
    an = _anatomy(rng, shape, sp)

    yy = (np.arange(shape[1], dtype=np.float32) * np.float32(sp[1]))[:, None]
    xx = (np.arange(shape[2], dtype=np.float32) * np.float32(sp[2]))[None, :]
    vol = np.empty(shape, dtype=np.float32)
    lung_mask = np.zeros(shape, dtype=np.uint8)
    for k in range(shape[0]):
        z = (k + 0.5) * sp[0]
        lr = _lung_slice(an, z, yy, xx)
        vol[k] = _draw_slice(an, z, yy, xx, lr, rng.uniform(-1.0, 1.0, 4))
        lung_mask[k][lr[0]] = 1
        lung_mask[k][lr[1]] = 2
    lung = lung_mask > 0

    # parenchymal texture and the gravity gradient (posterior lung is denser)
    tex = _texture(shape, sp, rng)
    grad = np.float32(35.0) * (yy - np.float32(an.cy)) / np.float32(an.cav_ay)
    vol += np.where(lung, tex + grad[None, :, :] + np.float32(rng.uniform(-30.0, 30.0)), np.float32(0.0))

    # fissures: an oblique one in each lung, a horizontal one on the right
    fissure_planes: list[tuple[NDArray[np.float64], NDArray[np.float64], int]] = []
    zz_mm = (np.arange(shape[0], dtype=np.float32) * np.float32(sp[0]))[:, None, None]
    for side_label in (1, 2):
        nrm = np.array([1.0, rng.uniform(-1.0, -0.6), 0.0])
        nrm /= np.linalg.norm(nrm)
        side = -1.0 if side_label == 1 else 1.0
        pt = np.array([an.z_hilum, an.cy, an.cx + side * 0.5 * an.cav_ax])
        fissure_planes.append((pt, nrm, side_label))
    fissure_planes.append(
        (np.array([an.z_hilum + 10.0, an.cy, an.cx - 0.5 * an.cav_ax]), np.array([1.0, 0.0, 0.08]), 1)
    )
    for pt, nrm, lab in fissure_planes:
        dist = (zz_mm - pt[0]) * nrm[0] + (yy[None] - pt[1]) * nrm[1] + (xx[None] - pt[2]) * nrm[2]
        occ = np.clip(0.5 - (np.abs(dist) - 0.3) / np.float32(np.mean(sp)), 0.0, 1.0)
        if lab == 1 and nrm[1] == 0.0:  # horizontal fissure: anterior half of the right lung only
            occ = occ * (yy[None] < an.cy)
        sel = (lung_mask == lab) & (occ > 0)
        vol[sel] += occ[sel] * (np.float32(-250.0) - vol[sel])

    if with_vessels:
        _vessels_and_airways(vol, lung, sp, an, rng)

    labels = np.zeros(shape, dtype=np.int16)
    truths = place_nodules(
        vol, labels, lung_mask, sp, rng, nodules, n_nodules, nodule_diameter_range_mm, fissure_planes
    )

    img = apply_scanner(vol, sp, rng, noise_hu=noise_hu, kernel=kernel)
    hu = np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    return ChestPhantom(
        hu=hu,
        spacing_zyx_mm=sp,
        labels=labels,
        lung_mask=lung_mask,
        nodules=truths,
        kernel=kernel,
        noise_hu=float(noise_hu),
    )


def _texture(shape: Sequence[int], sp: Spacing, rng: np.random.Generator) -> NDArray[np.float32]:
    """Coarse plus fine parenchymal texture, computed on a coarse grid for speed then upsampled."""
    factor = [max(1, round(3.0 / s)) for s in sp]
    small = tuple(max(2, int(np.ceil(n / f))) for n, f in zip(shape, factor, strict=True))
    sp_small = tuple(s * f for s, f in zip(sp, factor, strict=True))
    white = rng.standard_normal(small, dtype=np.float32)
    coarse = ndimage.gaussian_filter(white, [6.0 / s for s in sp_small], mode="wrap")
    coarse *= np.float32(18.0 / (float(coarse.std()) or 1.0))
    fine_white = rng.standard_normal(small, dtype=np.float32)
    fine = ndimage.gaussian_filter(fine_white, [1.0 for _ in sp_small], mode="wrap")
    fine *= np.float32(12.0 / (float(fine.std()) or 1.0))
    field = coarse + fine
    up = ndimage.zoom(field, [n / m for n, m in zip(shape, small, strict=True)], order=1)
    out = np.zeros(tuple(shape), dtype=np.float32)
    sl = tuple(slice(0, min(a, b)) for a, b in zip(shape, up.shape, strict=True))
    out[sl] = up[sl]
    return out


def _vessels_and_airways(
    vol: NDArray[np.float32], lung: NDArray[np.bool_], sp: Spacing, an: _Anatomy, rng: np.random.Generator
) -> None:
    """Branching arterial and venous trees and airways from each hilum, clipped to the lungs."""
    occ = np.zeros(vol.shape, dtype=np.float32)
    sub = (slice(None, None, 2), slice(None, None, 4), slice(None, None, 4))
    sub_sp: Spacing = (sp[0] * 2, sp[1] * 4, sp[2] * 4)
    for side in (-1.0, 1.0):
        side_mask = lung.copy()
        mid = round(an.cx / sp[2])
        if side < 0:
            side_mask[:, :, mid:] = False
        else:
            side_mask[:, :, :mid] = False
        hilum = np.array([an.z_hilum, an.cy - 0.05 * an.cav_ay, an.cx + side * 22.0])
        for tree, r0 in ((0, 6.0), (1, 5.5), (2, 5.0)):
            targets = _sample_in_mask(side_mask[sub], sub_sp, rng, 380)
            offset = np.array([(tree - 1.0) * 12.0, (tree - 1.0) * 10.0, 0.0])
            _grow_tree(occ, sp, rng, hilum + offset, targets, r0, 0.4, 0.33)
    vessel_hu = np.float32(rng.uniform(25.0, 50.0))
    # keep vessels inside the lungs and a little around the hila
    near_lung = ndimage.binary_dilation(lung[sub], iterations=2)
    near = np.repeat(np.repeat(np.repeat(near_lung, 2, 0), 4, 1), 4, 2)[
        : vol.shape[0], : vol.shape[1], : vol.shape[2]
    ]
    occ *= near
    vol += occ * (vessel_hu - vol)
    # airways: air lumen with a thin wall
    aw = np.zeros(vol.shape, dtype=np.float32)
    lumen = np.zeros(vol.shape, dtype=np.float32)
    carina = np.array([an.z_hilum + 18.0, an.cy - 0.05 * an.cav_ay, an.cx])
    top = np.array([an.lz, an.cy - 0.25 * an.cav_ay, an.cx])
    paint_tube(aw, top.tolist(), carina.tolist(), 10.0, 9.0, 1.0, sp)
    paint_tube(lumen, top.tolist(), carina.tolist(), 8.2, 7.4, 1.0, sp)
    for side in (-1.0, 1.0):
        side_mask = lung.copy()
        mid = round(an.cx / sp[2])
        if side < 0:
            side_mask[:, :, mid:] = False
        else:
            side_mask[:, :, :mid] = False
        targets = _sample_in_mask(side_mask[sub], sub_sp, rng, 40)
        tree_seed = int(rng.integers(2**31))
        wall_occ = np.zeros(vol.shape, dtype=np.float32)
        _grow_tree(wall_occ, sp, np.random.default_rng(tree_seed), carina, targets, 6.0, 1.2, 0.45)
        aw = np.maximum(aw, wall_occ)
        lum_occ = np.zeros(vol.shape, dtype=np.float32)
        _grow_tree(lum_occ, sp, np.random.default_rng(tree_seed), carina, targets, 4.8, 1.0, 0.45)
        lumen = np.maximum(lumen, lum_occ)
    vol += aw * (np.float32(10.0) - vol)
    vol += lumen * (np.float32(-1000.0) - vol)


def place_nodules(
    vol: NDArray[np.float32],
    labels: NDArray[np.int16],
    lung_mask: NDArray[np.uint8],
    sp: Spacing,
    rng: np.random.Generator,
    specs: Sequence[NoduleSpec] | None,
    n_nodules: tuple[int, int],
    diameter_range: tuple[float, float],
    fissures: Sequence[tuple[NDArray[np.float64], NDArray[np.float64], int]],
) -> list[NoduleTruth]:
    """Paint nodules into ``vol`` and ``labels`` (in place) in the lungs, juxtapleural ones against the wall.

    ``specs`` are drawn (``n_nodules`` of them, ``diameter_range`` mm) when ``None``. Perifissural
    nodules are laid on one of ``fissures`` (point, normal, side); with no fissures, give no such spec.
    Nodules that find no room are left out, so fewer truths than specs may come back.
    """
    if specs is None:
        n = int(rng.integers(n_nodules[0], n_nodules[1] + 1))
        specs = [random_spec(rng, diameter_range_mm=diameter_range) for _ in range(n)]
    lung = lung_mask > 0
    # distance to the lung boundary on a ~2 mm grid
    f = [max(1, round(2.0 / s)) for s in sp]
    coarse = lung[:: f[0], :: f[1], :: f[2]]
    csp = (sp[0] * f[0], sp[1] * f[1], sp[2] * f[2])
    edt = ndimage.distance_transform_edt(coarse, sampling=csp).astype(np.float32)
    grad = np.gradient(edt, *csp)
    cx_mm = vol.shape[2] * sp[2] / 2.0
    placed: list[tuple[NDArray[np.float64], float]] = []
    truths: list[NoduleTruth] = []
    for spec in specs:
        r = spec.long_axis_mm / 2.0
        orientation = None
        inside = None
        center: NDArray[np.float64] | None = None
        for _attempt in range(200):
            if spec.juxtapleural:
                cand = np.argwhere(
                    (edt > 0.55 * spec.short_axis_mm / 2.0) & (edt < 0.95 * spec.short_axis_mm / 2.0 + csp[1])
                )
            else:
                cand = np.argwhere(edt > r + 2.5)
            if len(cand) == 0:
                break
            ci = cand[rng.integers(len(cand))]
            c = ci * np.array(csp) + rng.uniform(-0.5, 0.5, 3) * np.array(csp)
            if spec.juxtapleural and abs(c[2] - cx_mm) < 60.0:
                continue  # costal pleura, not the mediastinum
            if spec.kind == "perifissural":
                pt, nrm, side = fissures[int(rng.integers(len(fissures)))]
                d = float(np.dot(c - pt, nrm))
                c_half = max(0.6 * spec.short_axis_mm / 2.0, 0.75)
                c = c - nrm * (d - np.sign(d or 1.0) * (c_half + 0.3))
                idx = tuple(int(v) for v in np.clip(np.round(c / np.array(csp)), 0, np.array(edt.shape) - 1))
                if edt[idx] < r + 1.0:
                    continue
                # the fissure is painted only in its own lung (the horizontal one in the anterior half)
                full = tuple(
                    int(v) for v in np.clip(np.round(c / np.array(sp)), 0, np.array(lung_mask.shape) - 1)
                )
                if int(lung_mask[full]) != side or (nrm[1] == 0.0 and c[1] >= pt[1]):
                    continue
                orientation = frame_with_normal(nrm.tolist(), rng)
            if any(np.linalg.norm(c - p) < r + q + 4.0 for p, q in placed):
                continue
            center = c
            break
        if center is None:
            continue
        if spec.juxtapleural:
            idx = tuple(int(v) for v in np.clip(np.round(center / np.array(csp)), 0, np.array(edt.shape) - 1))
            nrm_j = np.array([-float(g[idx]) for g in grad])
            nrm_j /= np.linalg.norm(nrm_j) or 1.0
            orientation = frame_with_normal(nrm_j.tolist(), rng)
            inside = lung
        truth = paint_nodule(
            vol,
            labels,
            len(truths) + 1,
            spec,
            center.tolist(),
            sp,
            rng,
            orientation=orientation,
            inside=inside,
        )
        if truth.voxel_count == 0:
            labels[labels == truth.label_id] = 0
            continue
        placed.append((center, r))
        truths.append(truth)
    return truths


def demo_phantom() -> ChestPhantom:
    """The deterministic demo study: 512 x 512 x 120 slices at 2.5 mm with four nodules >= 4 mm.

    The nodules are a spiculated solid 9 mm nodule, a 14 mm part-solid one with a 6 mm solid
    component, a 10 mm ground-glass nodule and a 6 mm centrally calcified granuloma.
    """
    specs = [
        NoduleSpec("solid", 9.0, margin="spiculated", elongation=1.2),
        NoduleSpec("part_solid", 14.0, margin="lobulated", solid_diameter_mm=6.0),
        NoduleSpec("ground_glass", 10.0),
        NoduleSpec("calcified", 6.0, calcification="central"),
    ]
    return make_chest_phantom(
        20260101,
        shape_zyx=(120, 512, 512),
        spacing_zyx_mm=(2.5, 0.7, 0.7),
        nodules=specs,
        noise_hu=18.0,
        kernel="soft",
    )
