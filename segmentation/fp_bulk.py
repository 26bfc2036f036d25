"""Candidate classifier at scale: many fresh phantoms in parallel processes, training on a GPU if present.

``python -m segmentation.fp_bulk OUT --workers 15 --generate-seconds 300 --train-seconds 170`` is the
run that made classifier version 3 (on a 16-core machine with one GPU; on 2 CPU cores the same run
takes hours). Each worker draws a realistic phantom (512 x 512, 1-5 mm slices), runs the shipped U-Net
on the 1.25 mm working grid and keeps its candidates' HU crops: every nodule candidate, every
candidate the U-Net gives >= 0.2 at its centre, and 400 random others, plus 120 lung crops with a
random nodule painted in. The first ``n_val`` phantoms are validation (every candidate kept).
Training holds all crops on the device and augments there (flips, quarter turns, shifts).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segmentation.model import torch_device

log = logging.getLogger(__name__)

#: Seeds of this run's phantoms start here (the U-Net used 1,000,000+, classifier v1/v2 1,020,000+,
#: the held-out evaluation 7,000,001+).
BULK_SEED_BASE = 1_060_000
#: Random low-probability negatives kept per training phantom.
EASY_NEGATIVES = 400
#: U-Net probability at a candidate's centre from which a negative is always kept (hard negative).
HARD_PROBABILITY = 0.2
#: Lung crops per training phantom that get a painted nodule.
PASTED_PER_CASE = 120
#: Minimum size (mm) of the nodules counted by the validation table.
MIN_DIAMETER_MM = 4.0
#: Nodule sizes (mm) of a small-nodule training phantom (see ``BulkSettings.small_nodule_share``).
SMALL_NODULE_RANGE_MM = (4.0, 9.0)


@dataclass(frozen=True)
class BulkSettings:
    """One bulk run.

    Attributes
    ----------
    out_dir
        Checkpoints, ``log.txt``, ``curve.jsonl`` and ``val_tables.json``.
    work_dir
        Per-phantom example files (kept, so a second call can train again without generating).
    workers
        Generating processes.
    generate_seconds, train_seconds
        Wall-clock budgets of the two phases (s); no phantom is started in the last 45 s of the first.
    n_val
        Validation phantoms (the first indices).
    seed_base
        Phantom ``i`` uses seed ``seed_base + i``.
    batch_size
        Crops per step (a fifth nodule candidates, a fifth painted nodules, the rest negatives).
    variants
        Names from :data:`VARIANTS` to train side by side on the same batches.
    small_nodule_share
        Share of training phantoms whose nodules are all 4-9 mm (:data:`SMALL_NODULE_RANGE_MM`) instead
        of 3-30 mm; which ones is fixed by the seed. Validation phantoms are always 3-30 mm.
    """

    out_dir: Path
    work_dir: Path
    workers: int = 15
    generate_seconds: float = 300.0
    train_seconds: float = 170.0
    n_val: int = 12
    seed_base: int = BULK_SEED_BASE
    batch_size: int = 256
    variants: tuple[str, ...] = ("C_wide",)
    small_nodule_share: float = 0.0


def phantom_arguments(i: int, settings: BulkSettings) -> dict[str, Any]:
    """Arguments of ``make_chest_phantom`` for phantom ``i`` beyond its seed."""
    if i < settings.n_val:
        return {"n_nodules": (4, 9)}
    kw: dict[str, Any] = {"n_nodules": (5, 10)}
    # a random stream of its own (key 9), apart from the phantom's
    if np.random.default_rng([settings.seed_base + i, 9]).random() < settings.small_nodule_share:
        kw["nodule_diameter_range_mm"] = SMALL_NODULE_RANGE_MM
    return kw


#: name -> (channels, learning rate)
VARIANTS: dict[str, tuple[tuple[int, ...], float]] = {
    "B_scratch": ((8, 16, 32, 64), 1e-3),
    "C_wide": ((16, 32, 64, 128), 1e-3),
}


_UNET: Any = None


def _unet_probability(image: NDArray[np.int16]) -> NDArray[np.float32]:
    """The shipped U-Net's nodule probability on a working-grid image (loaded once per process)."""
    import torch

    from segmentation.inference import _sliding_window, load_model

    global _UNET
    if _UNET is None:
        torch.set_num_threads(1)
        _UNET = load_model(None)
        _UNET.net.to(torch_device())
        _UNET.sw_batch_size = 8
    return _sliding_window(_UNET, image.astype(np.float32), None, None, 0, 1)


def make_examples(i: int, settings: BulkSettings, phantom_kwargs: dict[str, Any] | None = None) -> str:
    """Phantom ``i`` -> ``train_IIII.npz`` or ``val_IIII.npz`` in the work folder; a one-line summary."""
    try:
        from segmentation.dataset import phantom_to_working_grid
        from segmentation.fp_reduction import centre_probability
        from segmentation.fp_train import _lung_centred, _paste_nodules, case_examples, write_candidate_case
        from segmentation.phantom.chest import make_chest_phantom

        t = time.monotonic()
        is_val = i < settings.n_val
        seed = settings.seed_base + i
        ph = make_chest_phantom(seed, **{**phantom_arguments(i, settings), **(phantom_kwargs or {})})
        case = phantom_to_working_grid(ph, 1.25)
        tmp = settings.work_dir / f"case_{i:04d}.npz"
        write_candidate_case(tmp, ph, case, _unet_probability(case.image), compress=False)
        ex = case_examples(tmp, all_negatives=True, seed=i)
        tmp.unlink()
        truth = ex.truth
        crops, labels, owner = ex.crops, ex.labels, ex.nodule_of
        cp = centre_probability(crops)
        extra: dict[str, NDArray[Any]] = {}
        if not is_val:
            rng = np.random.default_rng(seed)
            neg = np.flatnonzero(labels == 0)
            hard = neg[cp[neg] >= HARD_PROBABILITY]
            easy = neg[cp[neg] < HARD_PROBABILITY]
            if len(easy) > EASY_NEGATIVES:
                easy = rng.choice(easy, EASY_NEGATIVES, replace=False)
            keep = np.sort(np.concatenate([np.flatnonzero(labels == 1), hard, easy]))
            crops, labels, owner, cp = crops[keep], labels[keep], owner[keep], cp[keep]
            lung_neg = np.flatnonzero((labels == 0) & _lung_centred(crops))
            n_paste = min(len(lung_neg), PASTED_PER_CASE)
            src = crops[rng.choice(lung_neg, n_paste, replace=False), :1].astype(np.float32)
            extra["pasted"] = _paste_nodules(src, rng, 1.25).astype(np.float16)
        name = f"{'val' if is_val else 'train'}_{i:04d}.npz"
        arrays: dict[str, NDArray[Any]] = {
            "hu": crops[:, :1],
            "labels": labels,
            "owner": owner,
            "cp": cp,
            "truth": np.array(json.dumps(truth)),
            **extra,
        }
        np.savez(settings.work_dir / name, **arrays)  # type: ignore[arg-type]
        sp = [round(float(s), 2) for s in ph.spacing_zyx_mm]
        return (
            f"case {i} {name[:-9]} spacing {sp} nodules {len(truth)} crops {len(labels)} "
            f"positives {int(labels.sum())} {time.monotonic() - t:.0f}s"
        )
    except Exception:
        return f"case {i} FAILED {traceback.format_exc()[-1500:]}"


def generate(settings: BulkSettings, say: Any, phantom_kwargs: dict[str, Any] | None = None) -> int:
    """Run :func:`make_examples` on ``settings.workers`` processes until the budget is spent; cases made."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    submit_until = t0 + max(settings.generate_seconds - 45.0, 0.0)
    made = 0
    with mp.get_context("spawn").Pool(settings.workers) as pool:
        pending: dict[int, Any] = {}
        nxt = 0
        while True:
            while len(pending) < settings.workers and time.monotonic() < submit_until:
                pending[nxt] = pool.apply_async(make_examples, (nxt, settings, phantom_kwargs))
                nxt += 1
            for k in [k for k, r in pending.items() if r.ready()]:
                line = str(pending.pop(k).get())
                made += "FAILED" not in line
                say(line)
            if not pending and time.monotonic() >= submit_until:
                break
            if time.monotonic() > t0 + settings.generate_seconds + 60.0:
                say(f"generation: giving up on {sorted(pending)}")
                pool.terminate()
                break
            time.sleep(0.5)
    return made


def _load(work_dir: Path, kind: str) -> list[dict[str, NDArray[Any]]]:
    out = []
    for f in sorted(work_dir.glob(f"{kind}_*.npz")):
        with np.load(f) as z:
            out.append({k: z[k] for k in z.files})
    return out


def augment_batch(x: Any, g: Any) -> Any:
    """Random flips on 3 axes and in-plane quarter turns per crop; shifts of <= 2 voxels per quarter batch."""
    import torch

    b = x.shape[0]
    for d in (2, 3, 4):
        m = torch.rand(b, device=x.device, generator=g) < 0.5
        x = torch.where(m[:, None, None, None, None], x.flip(d), x)
    k = torch.randint(0, 4, (b,), device=x.device, generator=g)
    x = torch.stack([torch.rot90(x, r, (3, 4)) for r in range(4)])[k, torch.arange(b, device=x.device)]
    parts = []
    for c in x.chunk(4):
        s = [int(v) for v in torch.randint(-2, 3, (3,), generator=g, device=x.device).tolist()]
        parts.append(torch.roll(c, s, dims=(2, 3, 4)))
    return torch.cat(parts)


def validation_table(
    scores: Sequence[NDArray[np.float32]], val: Sequence[dict[str, NDArray[Any]]], unet_weight: float
) -> list[dict[str, float]]:
    """Per-candidate sensitivity (nodules >= 4 mm) and false positives per scan over thresholds 0.3-0.975."""
    rows = []
    for thr in np.round(np.arange(0.3, 1.0, 0.025), 3):
        hits = total = fps = 0
        for s, v in zip(scores, val, strict=True):
            acc = (1 - unet_weight) * s + unet_weight * v["cp"] >= thr
            fps += int((acc & (v["labels"] == 0)).sum())
            for j, t in enumerate(json.loads(str(v["truth"]))):
                if float(t["d"]) >= MIN_DIAMETER_MM:
                    total += 1
                    hits += int(bool((acc & (v["owner"] == j)).any()))
        rows.append(
            {"thr": float(thr), "sens": hits / max(total, 1), "fp": fps / max(len(val), 1), "n": total}
        )
    return rows


def train(
    settings: BulkSettings, say: Any, max_steps: int | None = None
) -> dict[str, list[dict[str, float]]]:
    """Train every variant on the work folder's examples; write checkpoints and validation tables."""
    import torch

    from segmentation.fp_reduction import ClassifierConfig, build_classifier

    dev = torch_device()
    tr, va = _load(settings.work_dir, "train"), _load(settings.work_dir, "val")
    say(f"train cases {len(tr)} validation cases {len(va)}")
    lab = np.concatenate([t["labels"] for t in tr])
    X = torch.from_numpy(np.concatenate([t["hu"] for t in tr])).to(dev)
    P = torch.from_numpy(np.concatenate([t["pasted"] for t in tr])).to(dev)
    pos = torch.from_numpy(np.flatnonzero(lab == 1)).to(dev)
    neg = torch.from_numpy(np.flatnonzero(lab == 0)).to(dev)
    say(f"train crops {len(lab)} nodule candidates {len(pos)} painted {len(P)}")
    g = torch.Generator(device=dev)
    g.manual_seed(4321)
    torch.manual_seed(4321)
    nets: dict[str, tuple[Any, Any, float, ClassifierConfig]] = {}
    for name in settings.variants:
        channels, lr = VARIANTS[name]
        cfg = ClassifierConfig(channels=channels)
        net = build_classifier(cfg).to(dev).train()
        nets[name] = (net, torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4), lr, cfg)
    n_pos = settings.batch_size // 5
    n_neg = settings.batch_size - 2 * n_pos
    y = torch.cat([torch.ones(2 * n_pos), torch.zeros(n_neg)]).to(dev)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    settings.out_dir.mkdir(parents=True, exist_ok=True)

    def save(step: int) -> None:
        for name, (net, _opt, _lr, cfg) in nets.items():
            state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
            torch.save(
                {"model": state, "iteration": step, "config": cfg.to_json()},
                settings.out_dir / f"ckpt_{name}.pt",
            )

    t0 = time.monotonic()
    total = max_steps
    it = 0
    t50 = 0.0
    last_save = t0
    losses: dict[str, list[float]] = {k: [] for k in nets}
    with (settings.out_dir / "curve.jsonl").open("w", encoding="utf-8") as curve:
        while total is None or it < total:
            el = time.monotonic() - t0
            if it == 50:
                t50 = el
            if total is None and it == 150:
                rate = 100 / max(el - t50, 1e-6)
                total = int(150 + rate * (settings.train_seconds - el))
                say(f"{rate:.1f} steps/s -> {total} steps")
            ip = pos[torch.randint(0, len(pos), (n_pos,), device=dev, generator=g)]
            iq = torch.randint(0, len(P), (n_pos,), device=dev, generator=g)
            ineg = neg[torch.randint(0, len(neg), (n_neg,), device=dev, generator=g)]
            x = augment_batch(torch.cat([X[ip], P[iq], X[ineg]]).float(), g)
            frac = min(it / total, 1.0) if total else 0.0
            for name, (net, opt, lr0, _cfg) in nets.items():
                for grp in opt.param_groups:
                    grp["lr"] = max(lr0 * 0.5 * (1 + math.cos(math.pi * frac)), lr0 * 0.02)
                loss = loss_fn(net(x)[:, 0], y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if it % 20 == 0:
                    losses[name].append(float(loss.detach()))
            it += 1
            if it % 200 == 0:
                rec = {"it": it, **{k: float(np.mean(v[-10:])) for k, v in losses.items()}}
                curve.write(json.dumps(rec) + "\n")
                curve.flush()
            if time.monotonic() - last_save > 30:
                save(it)
                last_save = time.monotonic()
    save(it)
    say(f"trained {it} steps in {time.monotonic() - t0:.0f}s")
    tables: dict[str, list[dict[str, float]]] = {}
    for name, (net, _opt, _lr, _cfg) in nets.items():
        net.eval()
        scores = []
        with torch.inference_mode():
            for v in va:
                xs = torch.from_numpy(v["hu"]).to(dev).float()
                s = torch.cat([torch.sigmoid(net(xs[a : a + 1024])[:, 0]) for a in range(0, len(xs), 1024)])
                scores.append(s.cpu().numpy())
        for w in (0.0, 0.3, 0.5):
            tables[f"{name}_w{w}"] = validation_table(scores, va, w)
    (settings.out_dir / "val_tables.json").write_text(json.dumps(tables), encoding="utf-8")
    return tables


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate (unless ``--generate-seconds 0``), then train and validate."""
    ap = argparse.ArgumentParser(prog="python -m segmentation.fp_bulk", description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/fp_bulk"))
    ap.add_argument("--workers", type=int, default=max((os.cpu_count() or 2) - 1, 1))
    ap.add_argument("--generate-seconds", type=float, default=300.0)
    ap.add_argument("--train-seconds", type=float, default=170.0)
    ap.add_argument("--variants", default="C_wide")
    ap.add_argument("--seed-base", type=int, default=BULK_SEED_BASE, help="phantom i uses seed SEED_BASE + i")
    ap.add_argument(
        "--small-nodule-share", type=float, default=0.0, help="share of training phantoms with 4-9 mm nodules"
    )
    args = ap.parse_args(argv)
    st = BulkSettings(
        out_dir=args.out,
        work_dir=args.work,
        workers=args.workers,
        generate_seconds=args.generate_seconds,
        train_seconds=args.train_seconds,
        variants=tuple(args.variants.split(",")),
        seed_base=args.seed_base,
        small_nodule_share=args.small_nodule_share,
    )
    st.out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    def say(msg: str) -> None:
        line = f"{time.monotonic() - t0:7.1f}s {msg}"
        print(line, flush=True)
        with (st.out_dir / "log.txt").open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    say(f"device {torch_device()}")
    if st.generate_seconds > 0:
        say(f"generated {generate(st, say)} cases")
    train(st, say)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
