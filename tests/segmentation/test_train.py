"""Training: tiny cases, a tiny U-Net, checkpoints, resume and the curve log; export with SHA-256."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from segmentation.dataset import TrainingCase, generate_cases, list_cases, load_case
from segmentation.errors import SegmentationCancelled, SegmentationError
from segmentation.model import ModelConfig, normalize_hu
from segmentation.train import PatchSampler, TrainSettings, export_weights, train

TINY = ModelConfig(
    channels=(4, 8, 16), strides=(2, 2), num_res_units=0, working_spacing_mm=2.5, patch_size=16
)
PHANTOM = {"shape_zyx": (30, 96, 96), "spacing_zyx_mm": (9.0, 3.7, 3.7), "with_vessels": False}


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cases")
    generate_cases(d, 2, spacing_mm=2.5, n_nodules=(2, 3), phantom_kwargs=PHANTOM)
    return d


def test_generated_cases(cases_dir: Path) -> None:
    paths = list_cases(cases_dir)
    assert len(paths) == 2
    c = load_case(paths[0])
    assert c.image.shape == c.labels.shape == c.lung.shape
    assert c.spacing_mm == 2.5 and c.labels.max() >= 1 and c.lung.any()


def test_generated_cases_from_a_later_index_use_their_own_seeds(cases_dir: Path, tmp_path: Path) -> None:
    later = generate_cases(tmp_path, 1, spacing_mm=2.5, n_nodules=(2, 3), phantom_kwargs=PHANTOM, first=1)
    assert [p.name for p in later] == ["case_0001.npz"]
    # case 1 of a run from index 0 and the first case of a run from index 1 are the same phantom
    assert np.array_equal(load_case(later[0]).image, load_case(list_cases(cases_dir)[1]).image)


def test_sampler_favours_nodules(cases_dir: Path) -> None:
    cases = [load_case(p) for p in list_cases(cases_dir)]
    s = PatchSampler(cases, 16, np.random.default_rng(0), p_nodule=1.0, p_hard=0.0)
    with_nodule = sum(float(s.sample()[1].sum()) > 0 for _ in range(20))
    assert with_nodule >= 18
    x, y = s.sample()
    assert x.shape == y.shape == (1, 16, 16, 16) and x.dtype == np.float32


def test_sampler_draws_small_nodules_as_often_as_large() -> None:
    lab = np.zeros((40, 40, 40), dtype=np.int16)
    lab[2:22, 2:22, 2:22] = 1  # 8000 voxels
    lab[30:32, 30:32, 30:32] = 2  # 8 voxels
    case = TrainingCase(np.zeros_like(lab), lab, np.ones_like(lab, dtype=np.uint8), 2.5)
    s = PatchSampler([case], 8, np.random.default_rng(1), p_nodule=1.0, p_hard=0.0)
    # a patch near the large nodule holds far more than the small one's 8 labelled voxels
    near_small = sum(int(s.sample()[1].sum() <= 8) for _ in range(200))
    assert 60 <= near_small <= 140


def test_sampler_paints_juxtapleural_nodules_inside_the_lung(cases_dir: Path) -> None:
    case = load_case(list_cases(cases_dir)[0])
    s = PatchSampler([case], 16, np.random.default_rng(2), p_nodule=0.0, p_hard=0.0, p_pleura=1.0)
    with_nodule = sum(float(s.sample()[1].sum()) > 0 for _ in range(20))
    assert with_nodule >= 15


def test_train_checkpoint_resume_and_export(cases_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    base = TrainSettings(
        data_dir=cases_dir, out_dir=out, max_iters=4, checkpoint_every=2, log_every=1, config=TINY
    )
    r1 = train(base)
    assert r1["iteration"] == 4 and r1["finished"]
    import torch

    assert torch.load(out / "checkpoint.pt", weights_only=False)["iteration"] == 4
    steps: list[int] = []
    r2 = train(
        TrainSettings(data_dir=cases_dir, out_dir=out, max_iters=6, log_every=1, config=TINY),
        on_progress=lambda d, t, m: steps.append(d),
    )
    assert r2["iteration"] == 6 and steps == [5, 6]  # resumed, not restarted
    curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [c["iteration"] for c in curve] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(c["loss"]) for c in curve)
    w = tmp_path / "m.safetensors"
    sha = export_weights(out / "checkpoint.pt", w)
    assert sha == hashlib.sha256(w.read_bytes()).hexdigest()


def test_train_with_patch_workers_and_resume(cases_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    st = TrainSettings(data_dir=cases_dir, out_dir=out, max_iters=3, log_every=1, config=TINY)
    st = dataclasses.replace(st, device="auto", loader_workers=2)
    assert train(st)["iteration"] == 3
    r = train(dataclasses.replace(st, max_iters=5))
    assert r["iteration"] == 5 and r["finished"]
    curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    assert [c["iteration"] for c in curve] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(c["loss"]) for c in curve)


def test_train_cancel_checkpoints_first(cases_dir: Path, tmp_path: Path) -> None:
    class Cancel:
        cancelled = True

    with pytest.raises(SegmentationCancelled):
        train(TrainSettings(data_dir=cases_dir, out_dir=tmp_path, max_iters=3, config=TINY), cancel=Cancel())
    assert (tmp_path / "checkpoint.pt").exists()


def test_train_without_cases_fails(tmp_path: Path) -> None:
    with pytest.raises(SegmentationError, match="no case"):
        train(TrainSettings(data_dir=tmp_path, out_dir=tmp_path / "o", config=TINY))


def _blank_lung(n: int = 48) -> TrainingCase:
    img = np.full((n, n, n), -850, dtype=np.int16)
    return TrainingCase(img, np.zeros_like(img), np.ones_like(img, dtype=np.uint8), 1.25)


def _extent(mask: np.ndarray, axis: int) -> int:
    """Voxels the mask spans along an axis."""
    hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
    return int(hit[-1] - hit[0] + 1) if hit.size else 0


def test_sampler_paints_small_nodules_when_asked() -> None:
    small = PatchSampler([_blank_lung()], 32, np.random.default_rng(3), 0.0, 0.0, p_paste=1.0, p_small=1.0)
    anysize = PatchSampler([_blank_lung()], 32, np.random.default_rng(3), 0.0, 0.0, p_paste=1.0)
    # 8 mm is 6.4 voxels; lobulated or elongated shapes reach a little further
    assert max(_extent(small.sample()[1][0] > 0, 1) for _ in range(15)) <= 9
    assert max(_extent(anysize.sample()[1][0] > 0, 1) for _ in range(15)) > 9


def test_sampler_blurs_painted_nodules_along_the_slices() -> None:
    def spread(blur: tuple[float, float]) -> float:
        s = PatchSampler(
            [_blank_lung()],
            32,
            np.random.default_rng(4),
            0.0,
            0.0,
            p_paste=1.0,
            p_small=1.0,
            slice_blur_vox=blur,
        )
        lung = float(normalize_hu(np.array([-850.0]))[0])
        ratios = []
        for _ in range(10):
            x, y = s.sample()
            changed = x[0] > lung + 0.05  # brighter than the lung (the patch may reach into air)
            ratios.append(_extent(changed, 0) / max(_extent(changed, 1), 1))
            assert y.sum() > 0  # the label stays the nodule's own extent
        return float(np.median(ratios))

    assert spread((1.8, 1.8)) > spread((0.4, 0.4)) + 0.2


def test_command_line_passes_the_sampler_options(
    cases_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segmentation.train as tr

    seen: list[TrainSettings] = []

    def fake_train(st: TrainSettings) -> dict[str, str]:
        seen.append(st)
        return {"checkpoint": ""}

    monkeypatch.setattr(tr, "train", fake_train)
    args = ["--data", str(cases_dir), "--out", str(tmp_path)]
    assert tr.main([*args, "--small-paste", "0.6", "--slice-blur", "0.4", "1.8", "--p-nodule", "0.3"]) == 0
    st = seen[0]
    assert (st.p_small_paste, st.paste_slice_blur_vox, st.p_nodule) == (0.6, (0.4, 1.8), 0.3)
    assert tr.main(args) == 0
    assert (seen[1].p_small_paste, seen[1].paste_slice_blur_vox) == (0.0, (0.5, 0.5))
    assert (seen[1].device, seen[1].loader_workers) == ("cpu", 0)
    assert tr.main([*args, "--device", "auto", "--loader-workers", "12"]) == 0
    assert (seen[2].device, seen[2].loader_workers) == ("auto", 12)
    with pytest.raises(SystemExit):
        tr.main([*args, "--slice-blur", "1.0"])
