"""The classical re-outline of a network detection (``segmentation.inference._refine``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.inference import REFINE_REACH_MM, _ball, _classical_at_point, _refine

SP = (1.0, 0.7, 0.7)
SHAPE = (60, 100, 100)
CENTRE = (30.0, 35.0, 35.0)  # mm


def _distance(centre: tuple[float, float, float]) -> NDArray[np.float64]:
    z, y, x = np.meshgrid(*(np.arange(n) * s for n, s in zip(SHAPE, SP, strict=True)), indexing="ij")
    d: NDArray[np.float64] = np.sqrt((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2)
    return d


def _scan(volume: NDArray[np.float64], seed: int) -> NDArray[np.float32]:
    """Blur (partial volume) and noise, as a scanner gives."""
    blurred = ndimage.gaussian_filter(volume, [0.6 / s for s in SP])
    noise = np.random.default_rng(seed).normal(0.0, 15.0, SHAPE)
    hu: NDArray[np.float32] = (blurred + noise).astype(np.float32)
    return hu


def _box(mask: NDArray[np.bool_]) -> tuple[slice, ...]:
    """The mask's tight box grown by 3 voxels, as the pipeline hands an outline to ``_refine``."""
    box = ndimage.find_objects(mask.astype(np.int8))[0]
    return tuple(slice(max(s.start - 3, 0), min(s.stop + 3, n)) for s, n in zip(box, SHAPE, strict=True))


def _refined(
    hu: NDArray[np.float32], mask: NDArray[np.bool_], peak_mm: tuple[float, ...]
) -> NDArray[np.bool_]:
    """``_refine`` on the mask's box, with a probability peaked at ``peak_mm``."""
    osl = _box(mask)
    prob = np.clip(1.0 - _distance(peak_mm)[osl] / 20.0, 0.0, 1.0).astype(np.float32)
    return _refine(hu, SP, osl, prob, mask[osl])


def _dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    return float(2.0 * (a & b).sum() / (a.sum() + b.sum()))


def test_the_re_outline_does_not_follow_a_thick_vessel_the_nodule_touches() -> None:
    d = _distance(CENTRE)
    _, y, x = np.meshgrid(*(np.arange(n) * s for n, s in zip(SHAPE, SP, strict=True)), indexing="ij")
    nodule = d <= 5.0
    # a 10 mm vessel running in z past the nodule's side, overlapping it by 4 mm
    vessel = (y - CENTRE[1]) ** 2 + (x - (CENTRE[2] + 6.0)) ** 2 <= 25.0
    volume = np.full(SHAPE, -850.0)
    volume[vessel] = 40.0
    volume[nodule] = 30.0
    hu = _scan(volume, 1)
    network = d <= 5.4  # the network's outline of the nodule, a little wide
    reach = ndimage.binary_dilation(network, structure=_ball(REFINE_REACH_MM, SP))
    # the scene is a real test: the classical outline at the nodule follows the vessel beyond that reach
    classical = _classical_at_point(hu, SP, tuple(round(c / s) for c, s in zip(CENTRE, SP, strict=True)))
    assert (classical & ~reach).sum() > 50

    refined = _refined(hu, network, CENTRE)
    osl = _box(network)
    assert not (refined & ~reach[osl]).any()
    assert _dice(refined, nodule[osl]) >= _dice(classical[osl], nodule[osl]) + 0.03


def test_a_ground_glass_outline_is_kept_when_the_re_outline_keeps_only_the_solid_core() -> None:
    d = _distance(CENTRE)
    core_centre = (CENTRE[0], CENTRE[1], CENTRE[2] + 2.5)
    volume = np.full(SHAPE, -850.0)
    volume[d <= 7.5] = -550.0
    volume[_distance(core_centre) <= 5.0] = 20.0
    hu = _scan(volume, 2)
    network = d <= 7.5
    refined = _refined(hu, network, core_centre)
    # the classical threshold, drawn from the core, would keep about a third of the nodule
    assert refined.sum() == network.sum()
    # a solid nodule's outline is still refined
    solid = np.full(SHAPE, -850.0)
    solid[d <= 5.0] = 30.0
    refined_solid = _refined(_scan(solid, 3), d <= 6.5, CENTRE)
    assert refined_solid.sum() < (d <= 6.5).sum() * 0.7
