"""Train the nodule U-Net on pre-generated phantom cases, with checkpoints, resume and a curve log.

Run ``python -m segmentation.train --data DIR --out DIR`` (or ``radiology-app train-seg``). Patches are
sampled around nodules (half of them), around vessels and other dense lung structures (hard negatives)
and anywhere in the lungs; MONAI transforms add flips, zoom (spacing), blur, noise and intensity
changes. Loss: Dice + cross-entropy. Seeds are fixed; a run cut off resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segmentation.checkpoint import save_checkpoint
from segmentation.dataset import TrainingCase, list_cases, load_case
from segmentation.errors import ProgressFn, SegmentationError, check_cancel, report
from segmentation.model import ModelConfig, build_unet, normalize_hu, torch_device
from segmentation.phantom.nodules import NODULE_KINDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """Training settings.

    Attributes
    ----------
    data_dir
        Folder of ``case_*.npz`` files (see :mod:`segmentation.dataset`).
    out_dir
        Folder for ``checkpoint.pt``, ``curve.jsonl`` and the exported weights.
    max_iters
        Optimiser steps in all.
    max_minutes
        Wall-clock budget of this call (minutes); the run checkpoints and stops when it is spent.
    batch_size
        Patches per step.
    lr
        Peak learning rate (AdamW, cosine decay).
    seed
        Seed of the sampler, augmentation and initialisation.
    threads
        torch CPU threads.
    checkpoint_every
        Steps between checkpoints.
    p_nodule, p_hard, p_pleura
        Probabilities that a patch is centred near a nodule (each nodule equally likely), on a hard
        negative (vessel), or on the pleura with a juxtapleural nodule painted in.
    p_small_paste, paste_slice_blur_vox
        Share of painted nodules drawn 3.5-8 mm, and the range of their slice-direction blur
        (voxels); see :class:`PatchSampler`.
    log_every
        Steps between lines of the curve log.
    config
        Network architecture and working grid.
    device
        ``"cpu"``, ``"cuda"``, or ``"auto"`` (CUDA when available).
    loader_workers
        Processes that draw and augment patches in parallel (0: in the training process). With
        workers, the cases present at the start are used and later ones are not picked up.
    """

    data_dir: Path
    out_dir: Path
    max_iters: int = 6000
    max_minutes: float = 70.0
    batch_size: int = 2
    lr: float = 2e-3
    seed: int = 1234
    threads: int = 1
    checkpoint_every: int = 100
    p_nodule: float = 0.35
    p_hard: float = 0.3
    p_pleura: float = 0.1
    p_small_paste: float = 0.0
    paste_slice_blur_vox: tuple[float, float] = (0.5, 0.5)
    log_every: int = 20
    config: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    device: str = "cpu"
    loader_workers: int = 0


class PatchSampler:
    """Draws training patches (image, label) from cases held in memory.

    Parameters
    ----------
    cases
        The cases.
    patch
        Patch edge (voxels).
    rng
        Random generator.
    p_nodule, p_hard
        Probabilities of nodule-centred and hard-negative-centred patches (the rest are random lung).
    p_paste
        Probability that a random-lung patch gets a painted nodule.
    p_pleura
        Probability of a pleural patch with a painted juxtapleural nodule.
    p_small
        Probability that a painted nodule is small (3.5-8 mm) rather than 3-25 mm.
    slice_blur_vox
        Range of the slice-direction blur (Gaussian sigma, voxels) of a painted nodule: about 1 voxel
        is a 3 mm slice on the 1.25 mm grid, 1.7 a 5 mm slice.
    """

    def __init__(
        self,
        cases: Sequence[TrainingCase],
        patch: int,
        rng: np.random.Generator,
        p_nodule: float = 0.55,
        p_hard: float = 0.3,
        p_paste: float = 0.7,
        p_pleura: float = 0.0,
        p_small: float = 0.0,
        slice_blur_vox: tuple[float, float] = (0.5, 0.5),
    ) -> None:
        if not cases:
            raise SegmentationError("no training cases to sample from")
        self.cases = list(cases)
        self.patch = patch
        self.rng = rng
        self.p_nodule = p_nodule
        self.p_hard = p_hard
        self.p_paste = p_paste
        self.p_pleura = p_pleura
        self.p_small = p_small
        self.slice_blur_vox = slice_blur_vox
        self._nodule_vox: list[list[NDArray[np.intp]]] = []
        self._hard_vox: list[NDArray[np.intp]] = []
        self._lung_vox: list[NDArray[np.intp]] = []
        self._pleura_vox: list[NDArray[np.intp]] = []
        for c in self.cases:
            self._index(c)

    def _index(self, c: TrainingCase) -> None:
        from scipy import ndimage

        # voxels per nodule, so that a small nodule is drawn as often as a large one
        found = ndimage.find_objects(c.labels)
        per_nodule: list[NDArray[np.intp]] = []
        for lab, box in enumerate(found, start=1):
            if box is None:
                continue
            vox = np.argwhere(c.labels[box] == lab)
            per_nodule.append(vox + np.array([s.start for s in box]))
        dense = (c.image > -500) & (c.lung > 0) & (c.labels == 0)
        hard = np.argwhere(dense)
        lung_b = c.lung > 0
        lung = np.argwhere(lung_b)
        pleura = np.argwhere(lung_b & ~ndimage.binary_erosion(lung_b, iterations=2))
        step_h = max(1, len(hard) // 20000)
        step_l = max(1, len(lung) // 20000)
        step_p = max(1, len(pleura) // 20000)
        self._nodule_vox.append(per_nodule)
        self._hard_vox.append(hard[::step_h])
        self._lung_vox.append(lung[::step_l])
        self._pleura_vox.append(pleura[::step_p])

    def add_case(self, c: TrainingCase) -> None:
        """Add a case (for data that arrives while training runs)."""
        self.cases.append(c)
        self._index(c)

    def sample(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """One patch: normalised image and binary nodule label, each ``[1, P, P, P]`` float32."""
        i = int(self.rng.integers(len(self.cases)))
        c = self.cases[i]
        u = self.rng.uniform()
        p_n, p_h, p_pl = (
            self.p_nodule,
            self.p_nodule + self.p_hard,
            self.p_nodule + self.p_hard + self.p_pleura,
        )
        pool: NDArray[np.intp]
        kind = "lung"
        if u < p_n and self._nodule_vox[i]:
            pool = self._nodule_vox[i][int(self.rng.integers(len(self._nodule_vox[i])))]
        elif u < p_h and len(self._hard_vox[i]):
            pool = self._hard_vox[i]
        elif p_h <= u < p_pl and len(self._pleura_vox[i]):
            pool, kind = self._pleura_vox[i], "pleura"
        else:
            pool = self._lung_vox[i]
        p = self.patch
        shift = self.rng.integers(-p // 4, p // 4 + 1, 3)
        centre = pool[int(self.rng.integers(len(pool)))] + shift
        img = np.full((p, p, p), -1000, dtype=np.int16)
        lab = np.zeros((p, p, p), dtype=np.int16)
        lung = np.zeros((p, p, p), dtype=bool)
        src: list[slice] = []
        dst: list[slice] = []
        for ax in range(3):
            lo = int(centre[ax]) - p // 2
            a0, a1 = max(lo, 0), min(lo + p, c.image.shape[ax])
            src.append(slice(a0, a1))
            dst.append(slice(a0 - lo, a1 - lo))
        s, d = tuple(src), tuple(dst)
        img[d] = c.image[s]
        lab[d] = c.labels[s]
        lung[d] = c.lung[s] > 0
        at = [(p // 2 - int(v)) * c.spacing_mm for v in shift]
        if kind == "pleura":
            return self._paste_nodule(img, lab, c.spacing_mm, at, lung=lung)
        if pool is self._lung_vox[i] and self.rng.uniform() < self.p_paste:
            return self._paste_nodule(img, lab, c.spacing_mm, at)
        return normalize_hu(img)[None], (lab > 0).astype(np.float32)[None]

    def _paste_nodule(
        self,
        img: NDArray[np.int16],
        lab: NDArray[np.int16],
        spacing_mm: float,
        at_mm: Sequence[float],
        lung: NDArray[np.bool_] | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Paint an extra random nodule at ``at_mm`` (a lung voxel): more kinds and sizes than the cases.

        With ``lung`` (the patch's lung mask) the point is on the pleura and the nodule is juxtapleural:
        moved into the lung to touch the wall, flattened along it and labelled only inside the lung.
        The painted change is blurred like the scanner and given noise matched to the patch, so the
        nodule cannot be told apart by missing noise.
        """
        from scipy import ndimage

        from segmentation.phantom._raster import frame_with_normal
        from segmentation.phantom.nodules import paint_nodule, random_spec

        vol = img.astype(np.float32)
        before = vol.copy()
        labels = np.zeros(vol.shape, dtype=np.int16)
        kinds = [k for k in NODULE_KINDS if k != "perifissural"] if lung is not None else None
        small = self.rng.uniform() < self.p_small
        spec = random_spec(self.rng, diameter_range_mm=(3.5, 8.0) if small else (3.0, 25.0), kinds=kinds)
        spec = dataclasses.replace(spec, juxtapleural=lung is not None)
        sp = (spacing_mm, spacing_mm, spacing_mm)
        centre = np.asarray(at_mm, dtype=np.float64)
        orientation = None
        if lung is not None:
            # the lung's inward direction at the point, from the smoothed mask's gradient
            idx = tuple(
                int(np.clip(round(v / spacing_mm), 0, n - 1)) for v, n in zip(at_mm, lung.shape, strict=True)
            )
            grads = np.gradient(ndimage.gaussian_filter(lung.astype(np.float32), 2.0))
            inward = np.array([float(g[idx]) for g in grads])
            norm = float(np.linalg.norm(inward))
            if norm > 1e-6:
                inward /= norm
                depth = self.rng.uniform(0.55, 0.95) * spec.short_axis_mm / 2.0
                centre = centre + inward * depth
                orientation = frame_with_normal((-inward).tolist(), self.rng)
        paint_nodule(
            vol, labels, 1, spec, centre.tolist(), sp, self.rng, orientation=orientation, inside=lung
        )
        sz = float(self.rng.uniform(*self.slice_blur_vox))
        delta = ndimage.gaussian_filter(vol - before, (sz, 0.5, 0.5))
        changed = np.abs(delta) > 1.0
        resid = before - ndimage.gaussian_filter(before, 1.0)
        lungish = (before > -950) & (before < -700)
        noise_sd = float(resid[lungish].std()) * 1.3 if lungish.sum() > 100 else 15.0
        out = before + delta
        field = ndimage.gaussian_filter(self.rng.standard_normal(vol.shape).astype(np.float32), 0.6)
        field *= np.float32(noise_sd / (float(field.std()) or 1.0))
        out[changed] += field[changed]
        lab_out = (lab > 0) | (labels > 0)
        return normalize_hu(out)[None], lab_out.astype(np.float32)[None]


def _augmenter(seed: int) -> Any:
    from monai.transforms.compose import Compose
    from monai.transforms.intensity.dictionary import (
        RandGaussianNoised,
        RandGaussianSmoothd,
        RandScaleIntensityd,
        RandShiftIntensityd,
    )
    from monai.transforms.spatial.dictionary import RandFlipd, RandZoomd

    keys = ["image", "label"]
    aug = Compose(
        [
            RandFlipd(keys, prob=0.5, spatial_axis=0),
            RandFlipd(keys, prob=0.5, spatial_axis=1),
            RandFlipd(keys, prob=0.5, spatial_axis=2),
            RandZoomd(
                keys, prob=0.2, min_zoom=0.85, max_zoom=1.2, mode=("trilinear", "nearest"), keep_size=True
            ),
            RandGaussianSmoothd(
                ["image"], prob=0.15, sigma_x=(0.3, 0.8), sigma_y=(0.3, 0.8), sigma_z=(0.3, 1.0)
            ),
            RandGaussianNoised(["image"], prob=0.4, mean=0.0, std=0.05),
            RandScaleIntensityd(["image"], prob=0.3, factors=0.08),
            RandShiftIntensityd(["image"], prob=0.3, offsets=0.06),
        ]
    )
    aug.set_random_state(seed=seed)
    return aug


def _batch(sampler: PatchSampler, aug: Any, n: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    xs: list[NDArray[np.float32]] = []
    ys: list[NDArray[np.float32]] = []
    for _ in range(n):
        x, y = sampler.sample()
        out = aug({"image": x, "label": y})
        xs.append(np.asarray(out["image"], dtype=np.float32))
        ys.append((np.asarray(out["label"], dtype=np.float32) > 0.5).astype(np.float32))
    return np.stack(xs), np.stack(ys)


def _patch_stream(
    cases: Sequence[TrainingCase], settings: TrainSettings, start_iter: int, workers: int
) -> Iterator[tuple[Any, Any]]:
    """Batches ``(x, y)`` (torch, CPU) drawn and augmented by ``workers`` processes, each seeded apart."""
    import torch
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info

    class Patches(IterableDataset):  # type: ignore[type-arg]
        def __iter__(self) -> Iterator[tuple[NDArray[np.float32], NDArray[np.float32]]]:
            info = get_worker_info()
            wid = info.id if info is not None else 0
            sampler = _sampler(cases, settings, np.random.default_rng([settings.seed, start_iter, wid]))
            aug = _augmenter(settings.seed + start_iter + 7919 * (wid + 1))
            while True:
                x, y = _batch(sampler, aug, 1)
                yield x[0], y[0]

    loader = DataLoader(
        Patches(), batch_size=settings.batch_size, num_workers=workers, persistent_workers=True
    )
    for x, y in loader:
        yield torch.as_tensor(x), torch.as_tensor(y)


def _sampler(
    cases: Sequence[TrainingCase], settings: TrainSettings, rng: np.random.Generator
) -> PatchSampler:
    return PatchSampler(
        cases,
        settings.config.patch_size,
        rng,
        settings.p_nodule,
        settings.p_hard,
        p_pleura=settings.p_pleura,
        p_small=settings.p_small_paste,
        slice_blur_vox=settings.paste_slice_blur_vox,
    )


def train(
    settings: TrainSettings,
    *,
    on_progress: ProgressFn | None = None,
    cancel: object | None = None,
) -> dict[str, Any]:
    """Train (or resume) the U-Net; checkpoint regularly and log the loss curve.

    Parameters
    ----------
    settings
        What to train, where and for how long.
    on_progress, cancel
        Progress ``(step, max_iters, message)`` and cooperative cancellation (the run checkpoints
        first, then raises :class:`~segmentation.errors.SegmentationCancelled`).

    Returns
    -------
    dict
        ``iteration``, ``finished`` (bool), ``last_loss``, ``checkpoint`` (path) and ``minutes``.

    Raises
    ------
    SegmentationError
        When there are no cases in ``data_dir``.
    """
    import torch
    from monai.losses.dice import DiceCELoss

    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    out = settings.out_dir
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    curve_path = out / "curve.jsonl"
    paths = list(list_cases(settings.data_dir))
    if not paths:
        raise SegmentationError(f"{settings.data_dir}: no case_*.npz training cases")
    cfg = settings.config
    device = torch_device(settings.device)
    net = build_unet(cfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=1e-4)
    start_iter = 0
    rng = np.random.default_rng(settings.seed)
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_iter = int(state["iteration"])
        rng = np.random.default_rng([settings.seed, start_iter])
        torch.manual_seed(settings.seed + start_iter)
        log.info("resumed from %s at iteration %d", ckpt_path, start_iter)
    loaded = [load_case(p) for p in paths]
    workers = settings.loader_workers
    # with workers each draws from its own sampler; otherwise this process samples
    stream = _patch_stream(loaded, settings, start_iter, workers) if workers > 0 else None
    sampler = _sampler(loaded, settings, rng) if stream is None else None
    aug = _augmenter(settings.seed + start_iter) if stream is None else None
    known = set(paths)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5)
    t0 = time.monotonic()
    it = start_iter
    last_loss = float("nan")
    running: list[float] = []

    def save() -> None:
        save_checkpoint(ckpt_path, net, opt, it, cfg.to_json())

    net.train()
    finished = False
    while True:
        if it >= settings.max_iters:
            finished = True
            break
        if (time.monotonic() - t0) / 60.0 >= settings.max_minutes:
            break
        if cancel is not None and bool(getattr(cancel, "cancelled", False)):
            save()
            check_cancel(cancel)
        if sampler is not None and it % 200 == 0:  # pick up cases generated meanwhile
            for p in list_cases(settings.data_dir):
                if p not in known:
                    known.add(p)
                    sampler.add_case(load_case(p))
        lr = settings.lr * 0.5 * (1.0 + math.cos(math.pi * min(it / settings.max_iters, 1.0)))
        lr = max(lr, settings.lr * 0.02)
        if it < 100:
            lr *= (it + 1) / 100.0
        for g in opt.param_groups:
            g["lr"] = lr
        if sampler is None:
            assert stream is not None
            xt, yt = next(stream)
        else:
            xb, yb = _batch(sampler, aug, settings.batch_size)
            xt, yt = torch.from_numpy(xb), torch.from_numpy(yb)
        pred = net(xt.to(device))
        loss = loss_fn(pred, yt.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        it += 1
        last_loss = float(loss.item())
        running.append(last_loss)
        if it % settings.log_every == 0:
            rec = {
                "iteration": it,
                "loss": float(np.mean(running)),
                "lr": lr,
                "minutes": (time.monotonic() - t0) / 60.0,
                "cases": len(sampler.cases) if sampler is not None else len(loaded),
            }
            running = []
            with curve_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            log.info("iter %d loss %.4f lr %.2e cases %d", it, rec["loss"], lr, rec["cases"])
        if it % settings.checkpoint_every == 0:
            save()
        report(on_progress, it, settings.max_iters, f"loss {last_loss:.3f}")
    save()
    return {
        "iteration": it,
        "finished": finished,
        "last_loss": last_loss,
        "checkpoint": str(ckpt_path),
        "minutes": (time.monotonic() - t0) / 60.0,
    }


def export_weights(checkpoint: Path, weights_out: Path) -> str:
    """Write a checkpoint's model as safetensors (config in the metadata); return its SHA-256."""
    import hashlib

    import torch
    from safetensors.torch import save_file

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    tensors = {k: v.contiguous() for k, v in state["model"].items()}
    meta = {"config": str(state["config"]), "iteration": str(state["iteration"]), "format": "nodule-unet-1"}
    weights_out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(weights_out), metadata=meta)
    return hashlib.sha256(weights_out.read_bytes()).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: ``python -m segmentation.train``."""
    import argparse

    parser = argparse.ArgumentParser(description="Train the nodule U-Net on phantom cases.")
    parser.add_argument(
        "--data", type=Path, required=True, help="folder of case_*.npz (segmentation.dataset)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for checkpoint and curve")
    parser.add_argument("--iters", type=int, default=6000)
    parser.add_argument("--minutes", type=float, default=70.0)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--patch", type=int, default=48, help="training patch edge (voxels)")
    parser.add_argument("--export", type=Path, default=None, help="write safetensors weights here at the end")
    parser.add_argument("--p-nodule", type=float, default=0.35, help="share of nodule-centred patches")
    parser.add_argument("--p-hard", type=float, default=0.3, help="share of hard-negative patches")
    parser.add_argument("--p-pleura", type=float, default=0.1, help="share of pleural patches")
    parser.add_argument("--small-paste", type=float, default=0.0, help="share of painted nodules 3.5-8 mm")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (CUDA when available)")
    parser.add_argument(
        "--loader-workers", type=int, default=0, help="processes that draw and augment patches (0: none)"
    )
    parser.add_argument(
        "--slice-blur",
        type=float,
        nargs=2,
        default=(0.5, 0.5),
        metavar=("LO", "HI"),
        help="slice-direction blur of painted nodules (Gaussian sigma range, working voxels)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    res = train(
        TrainSettings(
            data_dir=args.data,
            out_dir=args.out,
            max_iters=args.iters,
            max_minutes=args.minutes,
            batch_size=args.batch,
            threads=args.threads,
            seed=args.seed,
            p_nodule=args.p_nodule,
            p_hard=args.p_hard,
            p_pleura=args.p_pleura,
            p_small_paste=args.small_paste,
            paste_slice_blur_vox=(args.slice_blur[0], args.slice_blur[1]),
            config=ModelConfig(patch_size=args.patch),
            device=args.device,
            loader_workers=args.loader_workers,
        )
    )
    if args.export is not None:
        res["sha256"] = export_weights(Path(res["checkpoint"]), args.export)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
