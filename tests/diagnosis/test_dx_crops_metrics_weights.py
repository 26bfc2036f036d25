"""Crop geometry, input channels, noise estimate, metrics and the weights/model-card checks (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radiology_app.core.errors import ModelError, ModelIntegrityError
from radiology_app.diagnosis.crops import CROP_SHAPE, estimate_noise_hu, extract_crop, image_channels
from radiology_app.diagnosis.metrics import (
    classification_report,
    expected_calibration_error,
    macro_auc,
    top_k,
)
from radiology_app.diagnosis.phantom import add_noise
from radiology_app.diagnosis.weights import card_sha256, set_card_sha256, sha256_file, verify_weights


def test_extract_crop_centres_a_sphere_at_physical_size() -> None:
    spacing = (2.5, 0.7, 0.7)
    shape = (40, 120, 120)
    zz, yy, xx = np.meshgrid(
        *[np.arange(s) * sp for s, sp in zip(shape, spacing, strict=True)], indexing="ij"
    )
    centre_mm = (50.0, 40.0, 45.0)
    r = np.sqrt((zz - centre_mm[0]) ** 2 + (yy - centre_mm[1]) ** 2 + (xx - centre_mm[2]) ** 2)
    vol = np.where(r < 6.0, 40.0, -850.0).astype(np.float32)
    mask = (r < 6.0).astype(np.uint8)
    idx = tuple(c / s for c, s in zip(centre_mm, spacing, strict=True))
    hu, m, sp = extract_crop(vol, spacing, mask, idx)  # type: ignore[arg-type]
    assert hu.shape == CROP_SHAPE and m.shape == CROP_SHAPE and sp == (1.25, 1.25, 1.25)
    com = np.array(np.nonzero(m)).mean(axis=1)
    assert np.allclose(com, 15.5, atol=0.8)
    vol_mm3 = m.sum() * 1.25**3
    assert abs(vol_mm3 - 4 / 3 * np.pi * 6.0**3) / (4 / 3 * np.pi * 6.0**3) < 0.25


def test_extract_crop_pads_outside_with_air_and_checks_shapes() -> None:
    vol = np.zeros((10, 10, 10), np.float32)
    hu, m, _ = extract_crop(vol, (1.0, 1.0, 1.0), None, (0.0, 0.0, 0.0))
    assert hu.min() == -1000.0 and m.sum() == 0
    with pytest.raises(ModelError):
        extract_crop(vol, (1, 1, 1), np.zeros((3, 3, 3)), (0, 0, 0))


def test_image_channels_are_scaled_windows_plus_mask() -> None:
    hu = np.full(CROP_SHAPE, -1000.0, np.float32)
    hu[10:20, 10:20, 10:20] = 40.0
    m = (hu > 0).astype(np.uint8)
    ch = image_channels(hu, m)
    assert ch.shape == (4, *CROP_SHAPE) and ch.min() >= 0 and ch.max() <= 1
    assert (ch[3] == m).all()


def test_noise_estimate_grows_with_noise() -> None:
    rng = np.random.default_rng(0)
    base = np.full(CROP_SHAPE, -850.0)
    est = [estimate_noise_hu(add_noise(base, s, rng).astype(np.float32)) for s in (10, 40, 120)]
    assert est[0] < est[1] < est[2]
    assert 0.5 * 40 < est[1] < 2.0 * 40


def test_metrics_on_known_values() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.35, 0.15]])
    labels = np.array([0, 1, 2])
    assert top_k(probs, labels, 1) == pytest.approx(2 / 3)
    assert top_k(probs, labels, 2) == pytest.approx(2 / 3)
    assert top_k(probs, labels, 3) == pytest.approx(1.0)
    assert macro_auc(probs, labels) == pytest.approx(np.mean([1.0, 1.0, 0.5]))
    assert 0 <= expected_calibration_error(probs, labels) <= 1


def test_classification_report_keys() -> None:
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(9), size=50)
    y = rng.integers(0, 9, 50)
    r = classification_report(p, y)
    for k in (
        "top1",
        "top3",
        "macro_auc",
        "sensitivity_malignant",
        "specificity_malignant",
        "ece",
        "classes",
        "confusion",
    ):
        assert k in r
    assert np.asarray(r["confusion"]).sum() == 50


def test_weights_are_checked_against_the_card(tmp_path: Path) -> None:
    w = tmp_path / "m.safetensors"
    w.write_bytes(b"not really weights")
    card = tmp_path / "m.md"
    card.write_text("# card\n", encoding="utf-8")
    with pytest.raises(ModelError):
        verify_weights(w, card)  # no SHA line
    set_card_sha256(card, sha256_file(w))
    assert verify_weights(w, card) == card_sha256(card)
    w.write_bytes(b"tampered")
    with pytest.raises(ModelIntegrityError):
        verify_weights(w, card)
    p = tmp_path / "m.pt"
    p.write_bytes(b"x")
    with pytest.raises(ModelError):
        verify_weights(p, card)
