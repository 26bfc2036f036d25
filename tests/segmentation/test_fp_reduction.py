"""Candidates, the candidate classifier (tiny networks) and its training plumbing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segmentation.candidates import blob_candidates, candidate_crops, find_candidates
from segmentation.errors import ModelIntegrityError
from segmentation.fp_reduction import CandidateClassifier, ClassifierConfig, build_classifier, load_classifier
from segmentation.fp_train import (
    FpTrainSettings,
    case_examples,
    choose_threshold,
    export_classifier,
    generate_candidate_cases,
    train_classifier,
)
from segmentation.inference import NoduleSegmenter, load_model, segment_nodules

TINY = ClassifierConfig(channels=(4, 8), strides=(2, 2), crop_size=32, threshold=0.5)


def _ball(shape: tuple[int, int, int], centre: tuple[int, int, int], r: float) -> Any:
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= r * r


def test_find_candidates_one_per_peak_and_plateau() -> None:
    prob = np.zeros((40, 40, 40), dtype=np.float32)
    prob[_ball(prob.shape, (10, 10, 10), 3)] = 1.0  # a saturated plateau: one candidate
    prob[_ball(prob.shape, (30, 30, 30), 2)] = 0.3
    prob[30, 30, 30] = 0.4
    prob[5, 35, 5] = 0.02  # under the minimum
    region = np.ones(prob.shape, dtype=bool)
    cands = find_candidates(prob, region, min_probability=0.05)
    assert len(cands) == 2
    assert cands[0].probability == 1.0 and cands[1].centre == (30, 30, 30)
    region[25:, :, :] = False
    assert [c.probability for c in find_candidates(prob, region)] == [1.0]


def test_blob_candidates_rank_a_ball_above_a_vessel() -> None:
    img = np.full((48, 48, 48), -850.0, dtype=np.float32)
    img[_ball(img.shape, (24, 12, 24), 3)] = 0.0  # a 7.5 mm nodule at 1.25 mm
    img[:, 36:39, 22:25] = 0.0  # a vessel along z
    rng = np.random.default_rng(0)
    img += rng.normal(0, 10, img.shape).astype(np.float32)
    region = np.ones(img.shape, dtype=bool)
    cands = blob_candidates(img, region, 1.25)
    assert cands, "the ball must be found"
    assert abs(cands[0].centre[1] - 12) <= 1 and abs(cands[0].centre[2] - 24) <= 1
    # spots next to excluded centres are skipped
    again = blob_candidates(img, region, 1.25, exclude=[cands[0].centre])
    assert all(abs(c.centre[1] - 12) > 2 for c in again)


def test_candidate_crops_pad_outside_with_air() -> None:
    img = np.zeros((10, 10, 10), dtype=np.int16)
    prob = np.ones((10, 10, 10), dtype=np.float32)
    crops = candidate_crops(img, prob, [(0, 0, 0)], size=8)
    assert crops.shape == (1, 2, 8, 8, 8)
    assert crops[0, 1, 0, 0, 0] == 0.0 and crops[0, 1, 4, 4, 4] == 1.0
    assert crops[0, 0, 0, 0, 0] < crops[0, 0, 4, 4, 4]


def _tiny_classifier() -> CandidateClassifier:
    import torch

    torch.manual_seed(0)
    return CandidateClassifier(net=build_classifier(TINY).eval(), config=TINY)


def _write(tmp_path: Path, clf: CandidateClassifier, unet_sha: str) -> Path:
    import torch

    ckpt = tmp_path / "fp_checkpoint.pt"
    torch.save({"model": clf.net.state_dict(), "iteration": 1, "config": TINY.to_json()}, ckpt)
    w = tmp_path / "fp.safetensors"
    sha = export_classifier(ckpt, w, 0.7, unet_sha)
    assert sha == hashlib.sha256(w.read_bytes()).hexdigest()
    (tmp_path / "fp.md").write_text(f"# fp\n\n- SHA-256: `{sha}`\n", encoding="utf-8")
    return w


def test_classifier_round_trip_threshold_and_integrity(tmp_path: Path) -> None:
    clf = _tiny_classifier()
    w = _write(tmp_path, clf, "a" * 64)
    back = load_classifier(w)
    assert back.threshold == 0.7 and back.unet_sha256 == "a" * 64
    x = np.random.default_rng(0).normal(size=(3, 2, 32, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(back.score(x), clf.score(x), atol=1e-5)
    assert ((back.score(x) >= 0) & (back.score(x) <= 1)).all()
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_classifier(w)


def test_score_blends_in_the_unet_probability_at_the_centre(tmp_path: Path) -> None:
    import dataclasses

    clf = _tiny_classifier()
    x = np.random.default_rng(1).normal(size=(2, 2, 32, 32, 32)).astype(np.float32)
    x[:, 1] = 0.0
    x[0, 1, 16, 16, 16] = 0.9  # the U-Net's peak at the first candidate's centre
    x[1, 1, 0, 0, 0] = 1.0  # and far from the second's
    alone = clf.score(x)
    blended = CandidateClassifier(clf.net, dataclasses.replace(TINY, unet_weight=0.5)).score(x)
    np.testing.assert_allclose(blended, 0.5 * alone + 0.5 * np.array([0.9, 0.0]), atol=1e-6)
    # the weight travels with the exported weights; files without it score with the classifier alone
    ckpt = tmp_path / "c.pt"
    import torch

    torch.save({"model": clf.net.state_dict(), "iteration": 1, "config": TINY.to_json()}, ckpt)
    export_classifier(ckpt, tmp_path / "b.safetensors", 0.8, "c" * 64, unet_weight=0.5)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "b.safetensors"), "pt") as f:
        cfg = ClassifierConfig.from_json(f.metadata()["config"])
    assert cfg.unet_weight == 0.5 and cfg.threshold == 0.8
    legacy = json.loads(TINY.to_json())
    del legacy["unet_weight"]
    assert ClassifierConfig.from_json(json.dumps(legacy)).unet_weight == 0.0


def test_a_classifier_for_another_unet_is_refused(tmp_path: Path, tiny_segmenter: NoduleSegmenter) -> None:
    from safetensors.torch import save_file

    w = tmp_path / "unet.safetensors"
    save_file(
        {k: v.contiguous() for k, v in tiny_segmenter.net.state_dict().items()},
        str(w),
        metadata={"config": tiny_segmenter.config.to_json()},
    )
    (tmp_path / "unet.md").write_text(f"SHA-256: {hashlib.sha256(w.read_bytes()).hexdigest()}\n")
    fp = _write(tmp_path, _tiny_classifier(), "b" * 64)
    with pytest.raises(ModelIntegrityError, match="trained on the candidates"):
        load_model(w, classifier=fp)
    fp2 = _write(tmp_path, _tiny_classifier(), hashlib.sha256(w.read_bytes()).hexdigest())
    assert load_model(w, classifier=fp2).classifier is not None
    assert load_model(w).classifier is None  # other U-Nets get no classifier unless given


SMALL = {"shape_zyx": (40, 96, 96), "spacing_zyx_mm": (5.0, 3.5, 3.5)}


@pytest.fixture(scope="module")
def candidate_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from segmentation.model import ModelConfig, build_unet

    torch.manual_seed(0)
    cfg = ModelConfig(channels=(4, 8, 16), strides=(2, 2), num_res_units=0, working_spacing_mm=2.5)
    seg = NoduleSegmenter(net=build_unet(cfg).eval(), config=cfg, roi_size=32)
    out = tmp_path_factory.mktemp("cand")
    from segmentation.phantom.nodules import NoduleSpec

    kw = {
        **SMALL,
        "nodules": [NoduleSpec("solid", 14.0), NoduleSpec("part_solid", 12.0, solid_diameter_mm=6.0)],
    }
    (path,) = generate_candidate_cases(out, [0], seg, phantom_kwargs=kw)
    return path


def test_case_examples_label_candidates_by_the_truth(candidate_case: Path) -> None:
    with np.load(candidate_case) as z:
        truth = json.loads(str(z["truth"]))
        assert z["prob"].shape == z["image"].shape
    ex = case_examples(candidate_case)
    assert len(ex.truth) == len(truth) == 2
    # every true nodule contributes at least its own peak as a positive
    assert set(ex.nodule_of[ex.labels == 1].tolist()) == {0, 1}
    assert (ex.nodule_of[ex.labels == 0] == -1).all()
    assert ex.crops.shape[1:] == (2, 32, 32, 32)


def test_train_resume_and_choose_threshold(candidate_case: Path, tmp_path: Path) -> None:
    ex = case_examples(candidate_case)
    val = case_examples(candidate_case, all_negatives=True)
    st = FpTrainSettings(out_dir=tmp_path, max_iters=4, batch_size=8, checkpoint_every=2, config=TINY)
    res = train_classifier([ex], st)
    assert res["finished"] and res["iteration"] == 4
    res2 = train_classifier([ex], FpTrainSettings(out_dir=tmp_path, max_iters=6, batch_size=8, config=TINY))
    assert res2["iteration"] == 6  # resumed, not restarted
    import torch

    net = build_classifier(TINY)
    net.load_state_dict(torch.load(Path(res2["checkpoint"]), weights_only=False)["model"])
    for w in (0.0, 0.5):
        thr, table = choose_threshold(net, [val], max_fp_per_scan=1.0, unet_weight=w)
        assert 0.0 < thr < 1.0
        fps = [r["fp_per_scan"] for r in table]
        assert fps == sorted(fps, reverse=True)  # a higher threshold never accepts more


def test_segment_nodules_with_a_classifier(tiny_segmenter: NoduleSegmenter) -> None:
    from segmentation.phantom.chest import make_chest_phantom
    from segmentation.phantom.nodules import NoduleSpec

    ph = make_chest_phantom(3, nodules=[NoduleSpec("solid", 14.0)], **SMALL)  # type: ignore[arg-type]
    clf = _tiny_classifier()
    seg = NoduleSegmenter(net=tiny_segmenter.net, config=tiny_segmenter.config, roi_size=32, classifier=clf)
    clf.threshold = 0.0  # accept every candidate
    res = segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=seg)
    assert res.nodules, "with every candidate accepted something is found"
    assert seg.detection_threshold == 0.0
    for n in res.nodules:
        assert 0.0 <= n.score <= 1.0
        assert n.voxel_count == int((res.labels == n.label_id).sum())
    clf.threshold = 1.01  # accept none
    assert segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=seg).nodules == []


def test_an_accepted_nodule_too_small_in_the_network_outline_gets_the_classical_one(
    tiny_segmenter: NoduleSegmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 6 mm nodule where the U-Net barely passes 0.5 in one voxel is outlined, not dropped."""
    import segmentation.inference as inf

    sp = (1.25, 0.8, 0.8)
    shape = (48, 96, 96)
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    centre = (24, 48, 60)
    r2 = ((zz - centre[0]) * sp[0]) ** 2 + ((yy - centre[1]) * sp[1]) ** 2 + ((xx - centre[2]) * sp[2]) ** 2
    hu = np.full(shape, -850.0, dtype=np.float32)
    hu[r2 <= 3.0**2] = 30.0
    lung = np.ones(shape, dtype=np.uint8)

    def faint_peak(seg: object, img: np.ndarray, *_: object) -> np.ndarray:
        prob = np.zeros(img.shape, dtype=np.float32)
        prob[np.unravel_index(int(np.argmax(img)), img.shape)] = 0.55  # the densest working voxel
        return prob

    monkeypatch.setattr(inf, "_sliding_window", faint_peak)
    clf = _tiny_classifier()
    clf.threshold = 0.0  # accept every candidate
    seg = NoduleSegmenter(net=tiny_segmenter.net, config=tiny_segmenter.config, roi_size=32, classifier=clf)
    res = segment_nodules(hu, sp, segmenter=seg, lung=lung)
    at_nodule = [n for n in res.nodules if res.labels[centre] == n.label_id]
    assert at_nodule, "the accepted nodule must be kept"
    assert abs(at_nodule[0].measurement.mean_diameter_mm - 6.0) <= 1.0


def test_fine_tuning_starts_from_given_weights_and_favours_their_mistakes(
    candidate_case: Path, tmp_path: Path
) -> None:
    import dataclasses

    from segmentation.fp_train import HARD_NEGATIVE_WEIGHT, hard_negative_weights

    ex = case_examples(candidate_case, all_negatives=True)
    start = _write(tmp_path, _tiny_classifier(), "a" * 64)
    # a starting threshold of 0 makes every negative one it accepts: all weigh the hard-negative weight
    st = FpTrainSettings(
        out_dir=tmp_path / "run",
        max_iters=2,
        batch_size=8,
        config=dataclasses.replace(TINY, threshold=0.0),
        init_weights=start,
    )
    (weights,) = hard_negative_weights(st, [ex])
    assert (weights[ex.labels == 0] == HARD_NEGATIVE_WEIGHT).all() and (weights[ex.labels == 1] == 1.0).all()
    strict = dataclasses.replace(st, config=dataclasses.replace(TINY, threshold=1.01))
    assert (hard_negative_weights(strict, [ex])[0] == 1.0).all()
    # without starting weights every crop weighs 1
    assert (hard_negative_weights(dataclasses.replace(st, init_weights=None), [ex])[0] == 1.0).all()
    # the run starts from the given weights (step 0 equals them) and takes per-crop weights
    res = train_classifier(
        [ex, ex], dataclasses.replace(st, max_iters=0), case_weights=[1.0, 3.0], crop_weights=[weights, None]
    )
    import torch
    from safetensors.torch import load_file

    trained = torch.load(Path(res["checkpoint"]), weights_only=False)["model"]
    given = load_file(str(start))
    assert all(torch.equal(trained[k], given[k]) for k in given)
