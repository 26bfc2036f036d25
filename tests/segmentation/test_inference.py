"""Inference plumbing with a tiny network, model integrity checks, click-to-segment, shipped model."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segmentation.errors import InvalidVolumeError, ModelIntegrityError, SegmentationCancelled
from segmentation.inference import (
    DEFAULT_WEIGHTS,
    NoduleSegmenter,
    coarse_spacing_refusal,
    coarse_spacing_warning,
    load_model,
    segment_at_point,
    segment_nodules,
)
from segmentation.phantom.chest import make_chest_phantom
from segmentation.phantom.nodules import NoduleSpec, render_nodule_crop

SMALL = {"shape_zyx": (40, 128, 128), "spacing_zyx_mm": (7.0, 2.8, 2.8), "with_vessels": False}


@pytest.fixture(scope="module")
def phantom() -> Any:
    return make_chest_phantom(21, nodules=[NoduleSpec("solid", 14.0), NoduleSpec("solid", 10.0)], **SMALL)  # type: ignore[arg-type]


def test_segment_nodules_shapes_progress_and_measurements(
    phantom: Any, tiny_segmenter: NoduleSegmenter
) -> None:
    calls: list[tuple[int, int, str]] = []
    res = segment_nodules(
        phantom.hu,
        phantom.spacing_zyx_mm,
        segmenter=tiny_segmenter,
        on_progress=lambda d, t, m: calls.append((d, t, m)),
        return_probability=True,
    )
    assert res.labels.shape == phantom.hu.shape and res.labels.dtype == np.int16
    assert res.lung_mask.shape == phantom.hu.shape and res.lung_mask.dtype == np.uint8
    assert res.probability is not None and res.probability.dtype == np.float16
    assert res.probability.shape == phantom.hu.shape
    assert any("window batch" in m for _, _, m in calls)
    assert calls[-1][0] == calls[-1][1]
    # labels and nodule list agree
    ids = set(np.unique(res.labels).tolist()) - {0}
    assert ids == {n.label_id for n in res.nodules}
    for n in res.nodules:
        assert n.voxel_count == int((res.labels == n.label_id).sum())
        assert n.measurement.volume_mm3 > 0
    dice_lung = (
        2
        * ((res.lung_mask > 0) & (phantom.lung_mask > 0)).sum()
        / ((res.lung_mask > 0).sum() + (phantom.lung_mask > 0).sum())
    )
    assert dice_lung > 0.85


def test_segment_nodules_cancel(phantom: Any, tiny_segmenter: NoduleSegmenter) -> None:
    class Cancel:
        cancelled = False

    token = Cancel()

    def progress(done: int, total: int, message: str) -> None:
        if "window batch" in message:
            token.cancelled = True

    with pytest.raises(SegmentationCancelled):
        segment_nodules(
            phantom.hu, phantom.spacing_zyx_mm, segmenter=tiny_segmenter, on_progress=progress, cancel=token
        )


def test_invalid_input(tiny_segmenter: NoduleSegmenter) -> None:
    with pytest.raises(InvalidVolumeError):
        segment_nodules(np.zeros((5, 5)), (1.0, 1.0, 1.0), segmenter=tiny_segmenter)
    with pytest.raises(InvalidVolumeError):
        segment_nodules(np.zeros((5, 5, 5)), (1.0, -1.0, 1.0), segmenter=tiny_segmenter)
    with pytest.raises(InvalidVolumeError):
        segment_at_point(np.zeros((5, 5, 5)), (1.0, 1.0, 1.0), (9, 0, 0))


def _write_model(tmp_path: Path, seg: NoduleSegmenter) -> Path:
    from safetensors.torch import save_file

    w = tmp_path / "tiny.safetensors"
    save_file(
        {k: v.contiguous() for k, v in seg.net.state_dict().items()},
        str(w),
        metadata={"config": seg.config.to_json()},
    )
    sha = hashlib.sha256(w.read_bytes()).hexdigest()
    (tmp_path / "tiny.md").write_text(f"# tiny\n\n- SHA-256: `{sha}`\n", encoding="utf-8")
    return w


def test_load_model_checks_the_hash(tmp_path: Path, tiny_segmenter: NoduleSegmenter) -> None:
    import torch

    w = _write_model(tmp_path, tiny_segmenter)
    seg = load_model(w)
    x = torch.randn(1, 1, 16, 16, 16)
    assert torch.allclose(seg.predict(x), tiny_segmenter.predict(x))
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_model(w)
    with pytest.raises(ModelIntegrityError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    (tmp_path / "nohash.safetensors").write_bytes(b"x")
    (tmp_path / "nohash.md").write_text("no hash here", encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match="no SHA-256"):
        load_model(tmp_path / "nohash.safetensors")


@pytest.mark.parametrize(
    "spec",
    [
        NoduleSpec("solid", 8.0),
        NoduleSpec("solid", 12.0, margin="spiculated"),
        NoduleSpec("ground_glass", 12.0),
        NoduleSpec("part_solid", 14.0, solid_diameter_mm=6.0),
        NoduleSpec("solid", 10.0, juxtapleural=True),
        NoduleSpec("calcified", 6.0, calcification="central"),
    ],
)
def test_click_to_segment_without_a_model(spec: NoduleSpec) -> None:
    crop = render_nodule_crop(spec, rng=np.random.default_rng(4), noise_hu=20.0, size_mm=64.0)
    centre = tuple(int(n // 2) for n in crop.hu.shape)
    m = segment_at_point(crop.hu, crop.spacing_zyx_mm, centre)  # type: ignore[arg-type]
    g = crop.mask > 0
    dice = 2 * float((g & (m > 0)).sum()) / float(g.sum() + (m > 0).sum())
    assert dice >= 0.7, dice


def test_click_on_plain_lung_finds_nothing() -> None:
    crop = render_nodule_crop(NoduleSpec("solid", 6.0), rng=np.random.default_rng(1), with_vessels=False)
    m = segment_at_point(crop.hu, crop.spacing_zyx_mm, (5, 5, 5))
    assert m.sum() == 0


shipped = pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="no shipped weights")


@shipped
def test_shipped_model_loads_and_finds_a_nodule() -> None:
    seg = load_model()
    assert seg.sha256 == hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    found = 0
    for k, spec in enumerate(
        [NoduleSpec("solid", 10.0), NoduleSpec("part_solid", 14.0), NoduleSpec("solid", 6.0)]
    ):
        crop = render_nodule_crop(
            spec, rng=np.random.default_rng(k), spacing_zyx_mm=(1.25, 0.8, 0.8), size_mm=70.0
        )
        centre = tuple(int(n // 2) for n in crop.hu.shape)
        m = segment_at_point(crop.hu, crop.spacing_zyx_mm, centre, segmenter=seg)  # type: ignore[arg-type]
        g = crop.mask > 0
        dice = 2 * float((g & (m > 0)).sum()) / float(g.sum() + (m > 0).sum())
        found += dice >= 0.7
    assert found >= 2


def test_flat_outlines_in_a_thick_slice_need_a_high_score() -> None:
    from segmentation.inference import FLAT_OUTLINE_MIN_SCORE, _elongation, _vessel_like

    sp = (3.0, 0.7, 0.7)
    _, yy, xx = np.ogrid[:1, :21, :41]
    # a 5.8 mm nodule outlined in a single 3 mm slice: round once voxels count as boxes, a plate otherwise
    disc = ((yy - 10) * 0.7) ** 2 + ((xx - 20) * 0.7) ** 2 <= 2.9**2
    assert _elongation(disc, sp) < 3.0 < 6.0 < _elongation(disc, sp, voxel_extent=False)
    assert not _vessel_like(disc, sp, 6.0, FLAT_OUTLINE_MIN_SCORE)
    assert _vessel_like(disc, sp, 6.0, FLAT_OUTLINE_MIN_SCORE - 0.1)
    # a 1.4 mm wide, 20 mm long vessel in that slice is elongated either way, whatever its score
    vessel = ((yy == 10) | (yy == 11)) & (np.abs(xx - 20) * 0.7 <= 10.0)
    assert _elongation(vessel, sp) > 6.0
    assert _vessel_like(vessel, sp, 6.0, 1.0)
    # isotropic voxels: a ball is round and kept at any score, a rod is long
    zz, yy3, xx3 = np.ogrid[:15, :15, :41]
    ball = (zz - 7) ** 2 + (yy3 - 7) ** 2 + (xx3 - 20) ** 2 <= 36
    rod = ((zz - 7) ** 2 + (yy3 - 7) ** 2 <= 1) & (np.abs(xx3 - 20) <= 18)
    assert not _vessel_like(ball, (1.0, 1.0, 1.0), 6.0, 0.5)
    assert _vessel_like(rod, (1.0, 1.0, 1.0), 6.0, 1.0)


def test_large_confident_components_are_kept_unless_the_classifier_rejects_them_outright() -> None:
    from types import SimpleNamespace

    from scipy import ndimage

    from segmentation.inference import LARGE_COMPONENT_MIN_SCORE, LARGE_COMPONENT_MM, _classified_candidates

    sp = (1.25, 1.25, 1.25)
    shape = (40, 40, 120)
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]

    def ball(cx: int, d_mm: float) -> Any:
        return (zz - 20) ** 2 + (yy - 20) ** 2 + (xx - cx) ** 2 <= (d_mm / 2.5) ** 2

    prob = np.zeros(shape, dtype=np.float32)
    prob[ball(20, LARGE_COMPONENT_MM + 3)] = 1.0  # large and confident: kept
    prob[ball(60, 10.0)] = 1.0  # confident but small: the classifier decides
    prob[ball(100, LARGE_COMPONENT_MM + 3)] = 0.9  # large but not confident enough
    img = np.where(prob > 0, 0.0, -850.0).astype(np.float32)
    region = np.ones(shape, dtype=bool)
    comp, _ = ndimage.label(prob >= 0.5)
    doubtful = LARGE_COMPONENT_MIN_SCORE + 0.05  # under the threshold, above the floor
    rejecting = SimpleNamespace(
        classifier=SimpleNamespace(threshold=0.7, score=lambda c: np.full(len(c), doubtful))
    )
    kept, points = _classified_candidates(rejecting, img, prob, region, region, comp, sp)  # type: ignore[arg-type]
    assert [(int(comp[20, 20, 20]), 1.0)] == [(k, sc) for k, _sl, _pmax, _pmean, sc in kept]
    assert points == []
    # outside the lung it is left to the classifier
    kept, _ = _classified_candidates(rejecting, img, prob, np.zeros(shape, dtype=bool), region, comp, sp)  # type: ignore[arg-type]
    assert kept == []
    # and so is a component the classifier rejects outright (on real scans: apical streaks, atelectasis)
    outright = SimpleNamespace(classifier=SimpleNamespace(threshold=0.7, score=lambda c: np.zeros(len(c))))
    kept, _ = _classified_candidates(outright, img, prob, region, region, comp, sp)  # type: ignore[arg-type]
    assert kept == []


def test_coarse_spacing_is_warned_about() -> None:
    for ok in ((5.0, 1.2, 1.2), (1.0, 0.7, 0.7), (0.625, 0.5, 0.5)):
        assert coarse_spacing_warning(ok) is None, ok
    thick = coarse_spacing_warning((7.5, 0.7, 0.7))
    assert thick is not None and "7.50 mm slices" in thick and "slices <= 5 mm" in thick
    wide = coarse_spacing_warning((2.5, 2.2, 2.2))
    assert wide is not None and "2.20 x 2.20 mm in-plane" in wide and "pixels <= 1.2 mm" in wide
    # up to twice the trained voxels: a warning; beyond: the detector is not run
    assert (
        coarse_spacing_refusal((2.5, 2.2, 2.2)) is None and coarse_spacing_refusal((10.0, 0.7, 0.7)) is None
    )
    for refused in ((2.5, 4.2, 4.2), (12.0, 0.7, 0.7)):
        why = coarse_spacing_refusal(refused)
        assert why is not None and "not run" in why, refused
