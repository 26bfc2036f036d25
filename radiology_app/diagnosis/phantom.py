"""A small nodule-crop renderer for the diagnosis model's synthetic cases.

Renders one nodule phenotype (type, size, margin, calcification pattern, fat, cavity, elongation, pleural
contact, enlarged lymph nodes beside it) in lung background with vessels, at 0.625 mm and averaged down
to the crop grid, then applies the scanner's slice thickness and noise. Values are Hounsfield units. The
crop grid is the one of :mod:`radiology_app.diagnosis.crops` (``CROP_SHAPE`` voxels of ``CROP_SPACING_MM``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from radiology_app.diagnosis.crops import CROP_SHAPE, CROP_SPACING_MM

KINDS = ("solid", "part_solid", "ground_glass")
MARGINS = ("smooth", "lobulated", "spiculated")
CALCIFICATIONS = ("none", "central", "diffuse", "laminated", "popcorn", "punctate", "eccentric")


@dataclass(frozen=True)
class NodulePhenotype:
    """What a nodule looks like.

    Attributes
    ----------
    kind
        ``"solid"``, ``"part_solid"`` or ``"ground_glass"``.
    diameter_mm
        Mean diameter in mm.
    margin
        ``"smooth"``, ``"lobulated"`` or ``"spiculated"``.
    calcification
        One of :data:`CALCIFICATIONS`.
    solid_diameter_mm
        Diameter of the solid component of a part-solid nodule, mm (0 otherwise).
    fat
        Macroscopic fat inside (-120 to -40 HU).
    cavity_wall_mm
        Wall thickness of a cavity in mm; 0 for no cavity.
    elongation
        Ratio of the long to the short axes (1 = round; lentiform lymph nodes 1.6-2.5).
    juxtapleural
        Touches the chest wall / pleura.
    adjacent_nodes
        Number of enlarged (8-14 mm) soft-tissue lymph nodes rendered beside the nodule, outside its mask
        (the hilar/mediastinal adenopathy of a central small cell carcinoma).
    """

    kind: str = "solid"
    diameter_mm: float = 10.0
    margin: str = "smooth"
    calcification: str = "none"
    solid_diameter_mm: float = 0.0
    fat: bool = False
    cavity_wall_mm: float = 0.0
    elongation: float = 1.0
    juxtapleural: bool = False
    adjacent_nodes: int = 0


def _unit(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    v = rng.normal(size=3)
    return np.asarray(v / (np.linalg.norm(v) + 1e-9), dtype=np.float32)


def _norm(a: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    return np.asarray(np.sqrt(np.einsum("...i,...i->...", a, a)), dtype=np.float32)


def render_phenotype(
    ph: NodulePhenotype, rng: np.random.Generator, *, noise_hu: float = 20.0, slice_thickness_mm: float = 1.25
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """Render a nodule crop on the diagnosis crop grid.

    Parameters
    ----------
    ph
        The phenotype.
    rng
        Random generator (shape details, background, noise).
    noise_hu
        Standard deviation of the image noise in HU.
    slice_thickness_mm
        Reconstructed slice thickness in mm (z blur by a box of that width).

    Returns
    -------
    tuple
        ``(hu, mask)``: float32 HU and uint8 nodule mask, both of shape ``CROP_SHAPE`` ``[z, y, x]``.
    """
    fine = 2
    n = CROP_SHAPE[0] * fine
    step = CROP_SPACING_MM / fine
    ax = ((np.arange(n) - (n - 1) / 2.0) * step).astype(np.float32)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    pts = np.stack([z, y, x], axis=-1)

    # Background lung with smooth texture.
    hu = (
        -850.0
        + ndimage.zoom(ndimage.gaussian_filter(rng.normal(0, 1, (16, 16, 16)), 0.75), n / 16, order=1) * 120.0
    )
    hu = hu.astype(np.float32)
    # Vessels: a few straight tubes.
    for _ in range(int(rng.integers(1, 4))):
        d = _unit(rng)
        p0 = rng.uniform(-12, 12, 3)
        rel = pts - p0
        dist = _norm(rel - (rel @ d)[..., None] * d)
        radius = rng.uniform(0.6, 1.8)
        hu = np.where(dist < radius, 30.0 + rng.normal(0, 10), hu)

    r = ph.diameter_mm / 2.0
    # Orientation of the long axis.
    axis = _unit(rng)
    along = pts @ axis
    perp = pts - along[..., None] * axis
    e = max(1.0, ph.elongation)
    a_long, a_short = r * e ** (2 / 3), r / e ** (1 / 3)
    rho = np.sqrt((along / a_long) ** 2 + (_norm(perp) / a_short) ** 2)

    # Margin modulation in the direction of each voxel.
    norm = _norm(pts) + 1e-6
    dirs = pts / norm[..., None]
    if ph.margin in ("lobulated", "spiculated"):
        mod = np.zeros_like(rho)
        for _ in range(4):
            mod += np.cos(3.0 * (dirs @ _unit(rng)) * np.pi + rng.uniform(0, 6.28))
        rho = rho / (1.0 + 0.07 * mod)
    inside = rho < 1.0
    if ph.margin == "spiculated":
        for _ in range(int(rng.integers(8, 15))):
            d = _unit(rng)
            t = pts @ d
            dist = _norm(pts - t[..., None] * d)
            length = r * rng.uniform(1.4, 2.2)
            inside |= (dist < rng.uniform(0.35, 0.7)) & (t > 0) & (t < length)
    if ph.juxtapleural:
        wall_dir = _unit(rng)
        wall_dir[0] *= 0.3
        wall_dir /= _norm(wall_dir)
        s = pts @ wall_dir
        wall_at = r * rng.uniform(0.7, 1.0)
        hu = np.where(s > wall_at + 2.5, 40.0, np.where(s > wall_at, -100.0, hu))
    mask = inside.copy()

    if ph.kind == "solid":
        nod = np.full_like(hu, 35.0 + rng.normal(0, 12))
    else:
        nod = np.full_like(hu, -620.0 + rng.normal(0, 50))
        if ph.kind == "part_solid":
            rs = max(1.0, ph.solid_diameter_mm / 2.0)
            c = _unit(rng) * rng.uniform(0, max(0.0, r - rs) * 0.5)
            core = _norm(pts - c) < rs
            nod = np.where(core, 30.0, nod)
    nod += ndimage.zoom(ndimage.gaussian_filter(rng.normal(0, 1, (32, 32, 32)), 0.5), n / 32, order=0) * 25.0

    cal = ph.calcification
    if cal == "central":
        nod = np.where(rho < rng.uniform(0.3, 0.45), rng.uniform(400, 900), nod)
    elif cal == "diffuse":
        nod = np.where(rho < 0.95, rng.uniform(250, 600), nod)
    elif cal == "laminated":
        for shell in (0.35, 0.65, 0.9):
            nod = np.where(np.abs(rho - shell) < 0.08, rng.uniform(350, 700), nod)
    elif cal == "popcorn":
        # Chunky, irregular "popcorn" clusters: several lumps of 2.5 mm or more, each a few fused balls.
        for _ in range(int(rng.integers(5, 9))):
            c = _unit(rng) * r * rng.uniform(0.0, 0.65)
            size = max(1.25, r * rng.uniform(0.16, 0.26))
            for _ in range(3):
                cc = c + _unit(rng) * size * 0.6
                nod = np.where(_norm(pts - cc) < size * rng.uniform(0.7, 1.0), rng.uniform(600, 1000), nod)
    elif cal == "punctate":
        for _ in range(int(rng.integers(1, 4))):
            c = _unit(rng) * r * rng.uniform(0.0, 0.7)
            nod = np.where(_norm(pts - c) < rng.uniform(0.5, 0.9), rng.uniform(300, 600), nod)
    elif cal == "eccentric":
        c = _unit(rng) * r * rng.uniform(0.55, 0.75)
        nod = np.where(_norm(pts - c) < r * 0.25, rng.uniform(400, 800), nod)
    if ph.fat:
        # Macroscopic fat: one to three lobules filling a quarter to a half of the nodule (at least 2.5 mm
        # across, so they survive partial volume and slice thickness), -120 to -70 HU.
        for _ in range(int(rng.integers(1, 4))):
            c = _unit(rng) * r * rng.uniform(0.0, 0.35)
            rad = max(1.25, r * rng.uniform(0.4, 0.6))
            nod = np.where((_norm(pts - c) < rad) & (rho < 0.85), rng.uniform(-120, -70), nod)
    if ph.cavity_wall_mm > 0:
        inner = max(0.15, 1.0 - ph.cavity_wall_mm / r)
        c = _unit(rng) * r * (1 - inner) * 0.5
        rho_c = _norm(pts - c) / (r * inner)
        nod = np.where(rho_c < 1.0, -950.0, nod)
    hu = np.where(inside, nod, hu)
    for _ in range(ph.adjacent_nodes):
        # An enlarged lymph node beside the nodule (outside its mask): soft tissue, slightly oval.
        d = _unit(rng)
        rn = rng.uniform(4.0, 7.0)
        c = d * (r + rn * rng.uniform(0.6, 1.0))
        node = _norm((pts - c) * np.asarray([1.0, 1.0, rng.uniform(0.7, 1.0)], np.float32)) < rn
        node &= ~inside
        hu = np.where(node, 40.0 + rng.normal(0, 8), hu)

    # Partial volume to the crop grid, slice thickness, noise.
    hu = ndimage.gaussian_filter(hu, 0.6)
    hu = hu.reshape(CROP_SHAPE[0], fine, CROP_SHAPE[1], fine, CROP_SHAPE[2], fine).mean(axis=(1, 3, 5))
    m = (
        mask.reshape(CROP_SHAPE[0], fine, CROP_SHAPE[1], fine, CROP_SHAPE[2], fine).mean(axis=(1, 3, 5))
        >= 0.5
    )
    hu = apply_slice_thickness(hu, slice_thickness_mm)
    hu = add_noise(hu, noise_hu, rng)
    return hu.astype(np.float32), m.astype(np.uint8)


def apply_slice_thickness(hu: npt.NDArray[np.floating], slice_thickness_mm: float) -> npt.NDArray[np.float64]:
    """Blur along z with a box of ``slice_thickness_mm`` (no-op at or below the crop spacing)."""
    width = slice_thickness_mm / CROP_SPACING_MM
    if width <= 1.0:
        return np.asarray(hu, dtype=np.float64)
    return np.asarray(
        ndimage.uniform_filter1d(
            np.asarray(hu, dtype=np.float64), size=max(1, round(width)), axis=0, mode="nearest"
        )
    )


def add_noise(
    hu: npt.NDArray[np.floating], noise_hu: float, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Add slightly correlated Gaussian noise of standard deviation ``noise_hu`` (HU)."""
    if noise_hu <= 0:
        return np.asarray(hu, dtype=np.float64)
    nz = ndimage.gaussian_filter(rng.normal(0, 1, hu.shape), 0.5)
    nz *= noise_hu / (nz.std() + 1e-9)
    return np.asarray(np.asarray(hu, dtype=np.float64) + nz, dtype=np.float64)
