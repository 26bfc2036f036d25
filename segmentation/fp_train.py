"""Train the candidate classifier (false-positive reduction) on phantoms seen through the U-Net (CPU).

1. :func:`generate_candidate_cases` writes ``cand_XXXX.npz``: a training phantom on the working grid
   (cropped to the lungs) with the shipped U-Net's probability and the nodule truth.
2. :func:`case_examples` turns a case into labelled candidate crops: a candidate is a nodule when its
   peak lies on (or within 2 voxels of) a true nodule; every true nodule also gives its own peak.
3. :func:`train_classifier` trains with balanced batches, flips, in-plane rotations and shifts,
   checkpoints and resumes, then :func:`choose_threshold` picks the operating point on validation
   cases (whole candidate sets, so false positives per scan are real counts).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.candidates import all_candidates, candidate_crops
from segmentation.checkpoint import save_checkpoint
from segmentation.dataset import TRAIN_SEED_BASE, TrainingCase, phantom_to_working_grid
from segmentation.errors import ProgressFn, SegmentationError, check_cancel, report
from segmentation.fp_reduction import FP_FORMAT, ClassifierConfig, blend_with_unet, build_classifier

if TYPE_CHECKING:
    from segmentation.phantom.chest import ChestPhantom

log = logging.getLogger(__name__)

#: Candidate-case phantoms use seeds ``CANDIDATE_SEED_BASE + i`` (training range, away from U-Net cases).
CANDIDATE_SEED_BASE = TRAIN_SEED_BASE + 20_000
#: Case indices from here on are validation cases (realistic geometry, every candidate kept).
VALIDATION_START = 500
#: Lung dilation (working voxels) of the region where candidates may lie.
LUNG_DILATION = 5
#: Negative crops kept per training case (a random sample of its candidates).
NEGATIVES_PER_CASE = 400


def generate_candidate_cases(
    out_dir: Path,
    indices: Sequence[int],
    segmenter: Any,
    *,
    seed_base: int = CANDIDATE_SEED_BASE,
    n_nodules: tuple[int, int] = (4, 9),
    on_progress: ProgressFn | None = None,
    cancel: object | None = None,
    phantom_kwargs: dict[str, Any] | None = None,
) -> list[Path]:
    """Write phantoms ``cand_IIII.npz`` with the U-Net's probability (existing files are kept).

    Phantom ``i`` uses seed ``seed_base + i``. Training indices (below :data:`VALIDATION_START`)
    get 340-380 mm fields of 0.75-1.1 mm pixels (fast to generate; the working grid is coarser
    still); validation indices get the realistic 512 x 512 geometry of the evaluation.
    """
    from segmentation.inference import _sliding_window
    from segmentation.phantom.chest import make_chest_phantom

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for n, i in enumerate(indices):
        check_cancel(cancel)
        path = out_dir / f"cand_{i:04d}.npz"
        paths.append(path)
        if path.exists():
            continue
        seed = seed_base + i
        kw = dict(phantom_kwargs or {})
        if not kw and i < VALIDATION_START:
            rng = np.random.default_rng(seed)
            sz = float(rng.choice((1.0, 1.25, 1.5, 2.0, 2.5, 3.0)))
            sxy = float(np.round(rng.uniform(0.75, 1.1), 3))
            n_xy = round(rng.uniform(340.0, 380.0) / sxy)
            kw = {
                "spacing_zyx_mm": (sz, sxy, sxy),
                "shape_zyx": (round(rng.uniform(260.0, 310.0) / sz), n_xy, n_xy),
            }
        if "nodules" not in kw:
            kw["n_nodules"] = n_nodules
        ph = make_chest_phantom(seed, **kw)
        case = phantom_to_working_grid(ph, segmenter.config.working_spacing_mm)
        prob = _sliding_window(segmenter, case.image.astype(np.float32), None, cancel, 0, 1)
        write_candidate_case(path, ph, case, prob)
        report(on_progress, n + 1, len(indices), f"candidate case {n + 1}/{len(indices)}")
    return paths


def write_candidate_case(
    path: Path, ph: ChestPhantom, case: TrainingCase, prob: NDArray[np.float32], *, compress: bool = True
) -> None:
    """Write a phantom's working-grid case, the U-Net's probability and the nodule truth (via a temp file)."""
    truth = [
        {"label": t.label_id, "kind": t.kind, "d": t.mean_diameter_mm, "jp": bool(t.spec.juxtapleural)}
        for t in ph.nodules
    ]
    write_case_file(path, case, prob, truth, compress=compress)


def write_case_file(
    path: Path,
    case: TrainingCase,
    prob: NDArray[np.float32],
    truth: list[dict[str, Any]],
    *,
    compress: bool = True,
    **extra: NDArray[Any],
) -> None:
    """Write a candidate case (working-grid image, labels, lung, U-Net probability, truth, ``extra``)."""
    tmp = path.with_suffix(".tmp.npz")
    save = np.savez_compressed if compress else np.savez
    arrays: dict[str, Any] = {
        "image": case.image,
        "labels": case.labels,
        "lung": case.lung,
        "prob": prob.astype(np.float16),
        "spacing": np.float32(case.spacing_mm),
        "truth": np.array(json.dumps(truth)),
        **extra,
    }
    save(tmp, **arrays)
    tmp.replace(path)


@dataclass(frozen=True)
class CaseExamples:
    """Labelled candidate crops of one case.

    Attributes
    ----------
    crops
        ``[N, 2, s, s, s]`` float16.
    labels
        1 for a nodule candidate, 0 otherwise.
    nodule_of
        Index into ``truth`` of the nodule a candidate lies on (-1 for none).
    truth
        The case's nodules (``kind``, ``d`` mean diameter in mm, ...).
    """

    crops: NDArray[np.float16]
    labels: NDArray[np.int8]
    nodule_of: NDArray[np.int16]
    truth: list[dict[str, Any]]


def case_examples(path: Path, *, all_negatives: bool = False, seed: int = 0) -> CaseExamples:
    """Candidates of a case written by :func:`generate_candidate_cases`, labelled by its truth.

    With ``all_negatives`` every candidate is kept (validation); otherwise at most
    :data:`NEGATIVES_PER_CASE` negatives, and each true nodule adds a crop at its own peak. A case
    with an ``ignore`` mask (real scans: reader marks that are neither target nor negative) loses the
    non-nodule candidates inside it.
    """
    with np.load(path) as z:
        image = z["image"]
        labels = z["labels"]
        lung = z["lung"] > 0
        prob = z["prob"].astype(np.float32)
        spacing = float(z["spacing"])
        truth: list[dict[str, Any]] = json.loads(str(z["truth"]))
        ignore = z["ignore"] if "ignore" in z.files else None
    region = ndimage.binary_dilation(lung, iterations=LUNG_DILATION)
    cands = all_candidates(image, prob, region, float(spacing))
    near = ndimage.grey_dilation(labels, size=(5, 5, 5))
    lab_of = {int(t["label"]): i for i, t in enumerate(truth)}
    centres = [c.centre for c in cands]
    owner = [lab_of.get(int(near[c]), -1) for c in centres]
    pos = [i for i, o in enumerate(owner) if o >= 0]
    neg = [i for i, o in enumerate(owner) if o < 0 and (ignore is None or not ignore[centres[i]])]
    if not all_negatives and len(neg) > NEGATIVES_PER_CASE:
        rng = np.random.default_rng(seed)
        neg = sorted(int(i) for i in rng.choice(np.asarray(neg), NEGATIVES_PER_CASE, replace=False))
    keep = pos + neg
    sel_centres = [centres[i] for i in keep]
    sel_owner = [owner[i] for i in keep]
    if not all_negatives:
        # each true nodule's own peak (its centre of mass when the network gave it nothing)
        for i, t in enumerate(truth):
            m = labels == int(t["label"])
            if not m.any():
                continue
            pm = np.where(m, prob, -1.0)
            if float(pm.max()) > 0.01:
                c = np.unravel_index(int(np.argmax(pm)), pm.shape)
            else:
                c = tuple(round(v) for v in ndimage.center_of_mass(m))
            sel_centres.append((int(c[0]), int(c[1]), int(c[2])))
            sel_owner.append(i)
    crops = candidate_crops(image, prob, sel_centres).astype(np.float16)
    own = np.asarray(sel_owner, dtype=np.int16)
    return CaseExamples(crops, (own >= 0).astype(np.int8), own, truth)


def _augment(x: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    """Flips on 3 axes, an in-plane quarter turn and a shift of up to 2 voxels, per crop."""
    out = np.empty_like(x)
    for i in range(len(x)):
        c = x[i]
        for ax in (1, 2, 3):
            if rng.uniform() < 0.5:
                c = np.flip(c, axis=ax)
        c = np.rot90(c, k=int(rng.integers(4)), axes=(2, 3))
        shift = [0, *(int(s) for s in rng.integers(-2, 3, 3))]
        out[i] = np.roll(c, shift, axis=(0, 1, 2, 3))
    return out


def _paste_nodules(
    x: NDArray[np.float32], rng: np.random.Generator, spacing_mm: float
) -> NDArray[np.float32]:
    """Paint a random nodule (any kind, 3.5-30 mm) at the centre of each crop's HU channel.

    The painted change gets a random slice-direction blur (thin to 5 mm slices) and scanner noise
    matched to the crop's lung, so it cannot be told apart by sharpness or missing noise.
    """
    from segmentation.model import HU_CENTER, HU_SCALE, normalize_hu
    from segmentation.phantom.nodules import paint_nodule, random_spec

    out = x.copy()
    size = x.shape[-1]
    for i in range(len(x)):
        before = x[i, 0] * np.float32(HU_SCALE) + np.float32(HU_CENTER)
        vol = before.copy()
        spec = random_spec(rng, diameter_range_mm=(3.5, 30.0))
        if spec.juxtapleural:
            spec = dataclasses.replace(spec, juxtapleural=False)
        centre = [(size / 2.0 + float(rng.uniform(-1.5, 1.5))) * spacing_mm for _ in range(3)]
        paint_nodule(vol, None, 1, spec, centre, (spacing_mm,) * 3, rng)
        sz = float(rng.uniform(0.3, 1.6))
        delta = ndimage.gaussian_filter(vol - before, (sz, 0.5, 0.5))
        changed = np.abs(delta) > 1.0
        new = before + delta
        new[changed] += matched_noise(before, rng)[changed]
        out[i, 0] = normalize_hu(new)
    return out


def matched_noise(image_hu: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    """Correlated noise (HU) as strong as the scan's own, measured in its aerated lung.

    Painted nodules carry no scanner noise of their own; adding this where they changed the image keeps
    them from standing out by smoothness.
    """
    resid = image_hu - ndimage.gaussian_filter(image_hu, 1.0)
    lungish = (image_hu > -950) & (image_hu < -700)
    noise_sd = float(resid[lungish].std()) * 1.3 if lungish.sum() > 100 else 15.0
    field: NDArray[np.float32] = ndimage.gaussian_filter(
        rng.standard_normal(image_hu.shape).astype(np.float32), 0.6
    )
    field *= np.float32(noise_sd / (float(field.std()) or 1.0))
    return field


def _lung_centred(crops: NDArray[np.float16]) -> NDArray[np.bool_]:
    """Crops whose centre is aerated lung (normalised HU below -500 over the central 3^3 voxels)."""
    from segmentation.model import normalize_hu

    c = crops.shape[-1] // 2
    centre = crops[:, 0, c - 1 : c + 2, c - 1 : c + 2, c - 1 : c + 2].astype(np.float32).mean(axis=(1, 2, 3))
    lung_level = float(normalize_hu(np.array([-500.0]))[0])
    result: NDArray[np.bool_] = centre < lung_level
    return result


@dataclass(frozen=True)
class FpTrainSettings:
    """Settings of :func:`train_classifier`.

    ``positive_fraction`` of each batch are the cases' nodule candidates and ``pasted_fraction``
    lung candidates with a random nodule painted in; the rest are negatives. Pasting needs a
    classifier that reads the HU channel only (``config.in_channels == 1``). ``unet_weight`` is
    the share of the U-Net's probability in the exported score (used when the threshold is chosen).
    """

    out_dir: Path
    max_iters: int = 3000
    max_minutes: float = 60.0
    batch_size: int = 64
    positive_fraction: float = 0.2
    pasted_fraction: float = 0.2
    spacing_mm: float = 1.25
    lr: float = 1e-3
    seed: int = 4321
    threads: int = 1
    checkpoint_every: int = 100
    unet_weight: float = 0.5
    config: ClassifierConfig = field(default_factory=ClassifierConfig)
    init_weights: Path | None = None


def train_classifier(
    train: Sequence[CaseExamples],
    settings: FpTrainSettings,
    *,
    case_weights: Sequence[float] | None = None,
    crop_weights: Sequence[NDArray[np.float32] | None] | None = None,
    on_progress: ProgressFn | None = None,
    cancel: object | None = None,
) -> dict[str, Any]:
    """Train (or resume) the classifier on labelled crops; checkpoint and log the curve.

    ``case_weights`` (one per case) make a case's crops that many times as likely to be drawn as
    another's, among positives and among negatives (to balance real scans against phantoms);
    ``crop_weights`` (one array or ``None`` per case) do the same per crop (hard negatives). With
    ``settings.init_weights`` (a shipped classifier's safetensors) training starts from those weights.

    Returns
    -------
    dict
        ``iteration``, ``finished``, ``last_loss``, ``checkpoint`` and ``minutes``.
    """
    import torch

    crops = np.concatenate([e.crops for e in train])
    labels = np.concatenate([e.labels for e in train])
    weight = np.concatenate(
        [
            np.full(len(e.labels), 1.0 if case_weights is None else case_weights[i])
            * (1.0 if crop_weights is None or crop_weights[i] is None else np.asarray(crop_weights[i]))
            for i, e in enumerate(train)
        ]
    )
    pos = np.flatnonzero(labels == 1)
    neg = np.flatnonzero(labels == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise SegmentationError("the classifier needs both nodule and non-nodule candidates")
    p_pos = weight[pos] / weight[pos].sum()
    p_neg = weight[neg] / weight[neg].sum()
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    out = settings.out_dir
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "fp_checkpoint.pt"
    net = build_classifier(settings.config)
    if settings.init_weights is not None:
        from safetensors.torch import load_file

        net.load_state_dict(load_file(str(settings.init_weights)))
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=1e-4)
    it = 0
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        it = int(state["iteration"])
    rng = np.random.default_rng([settings.seed, it])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n_pos = max(1, round(settings.batch_size * settings.positive_fraction))
    paste = settings.pasted_fraction > 0 and settings.config.in_channels == 1
    n_paste = round(settings.batch_size * settings.pasted_fraction) if paste else 0
    lung_neg = neg[_lung_centred(crops[neg])] if paste else neg
    if n_paste and len(lung_neg) == 0:
        n_paste = 0
    t0 = time.monotonic()
    running: list[float] = []
    last = float("nan")

    def save() -> None:
        save_checkpoint(ckpt, net, opt, it, settings.config.to_json())

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
        lr = settings.lr * 0.5 * (1.0 + math.cos(math.pi * it / settings.max_iters))
        for g in opt.param_groups:
            g["lr"] = max(lr, settings.lr * 0.02)
        idx = np.concatenate(
            [rng.choice(pos, n_pos, p=p_pos), rng.choice(neg, settings.batch_size - n_pos - n_paste, p=p_neg)]
        )
        x = crops[idx, : settings.config.in_channels].astype(np.float32)
        y_np = labels[idx].astype(np.float32)
        if n_paste:
            pasted = _paste_nodules(
                crops[rng.choice(lung_neg, n_paste), :1].astype(np.float32), rng, settings.spacing_mm
            )
            x = np.concatenate([x, pasted])
            y_np = np.concatenate([y_np, np.ones(n_paste, dtype=np.float32)])
        x = _augment(x, rng)
        y = torch.from_numpy(y_np)
        loss = loss_fn(net(torch.from_numpy(x))[:, 0], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        it += 1
        last = float(loss.item())
        running.append(last)
        if it % 20 == 0:
            rec = {
                "iteration": it,
                "loss": float(np.mean(running)),
                "lr": lr,
                "minutes": (time.monotonic() - t0) / 60.0,
            }
            running = []
            with (out / "fp_curve.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            log.info("fp iter %d loss %.4f", it, rec["loss"])
        if it % settings.checkpoint_every == 0:
            save()
        report(on_progress, it, settings.max_iters, f"loss {last:.3f}")
    save()
    return {
        "iteration": it,
        "finished": finished,
        "last_loss": last,
        "checkpoint": str(ckpt),
        "minutes": (time.monotonic() - t0) / 60.0,
    }


#: A real scan's negative that the starting classifier accepts is drawn this many times as often.
HARD_NEGATIVE_WEIGHT = 8.0


def hard_negative_weights(
    settings: FpTrainSettings, cases: Sequence[CaseExamples]
) -> list[NDArray[np.float32]]:
    """Per-crop weights of ``cases`` that favour the negatives the starting classifier accepts.

    Every crop weighs 1 without ``settings.init_weights``; with them, a negative the starting weights
    score at or above the configured threshold weighs :data:`HARD_NEGATIVE_WEIGHT`.
    """
    if settings.init_weights is None:
        return [np.ones(len(e.labels), dtype=np.float32) for e in cases]
    import torch
    from safetensors.torch import load_file

    net = build_classifier(settings.config)
    net.load_state_dict(load_file(str(settings.init_weights)))
    net.eval()
    n_in = settings.config.in_channels
    out: list[NDArray[np.float32]] = []
    with torch.inference_mode():
        for e in cases:
            scores = np.zeros(len(e.crops), dtype=np.float32)
            for a in range(0, len(e.crops), 128):
                x = torch.from_numpy(e.crops[a : a + 128, :n_in].astype(np.float32))
                scores[a : a + 128] = torch.sigmoid(net(x)[:, 0]).numpy()
            wrong = (e.labels == 0) & (scores >= settings.config.threshold)
            out.append(np.where(wrong, HARD_NEGATIVE_WEIGHT, 1.0).astype(np.float32))
    return out


def choose_threshold(
    net: Any,
    validation: Sequence[CaseExamples],
    *,
    max_fp_per_scan: float = 0.7,
    min_diameter_mm: float = 4.0,
    unet_weight: float = 0.0,
) -> tuple[float, list[dict[str, float]]]:
    """Operating point on whole validation candidate sets: the lowest threshold within the FP budget.

    Scores are blended with the U-Net's probability at each candidate by ``unet_weight``, as
    :meth:`~segmentation.fp_reduction.CandidateClassifier.score` does.

    Returns
    -------
    tuple
        The threshold, and the table of (threshold, sensitivity for nodules >= ``min_diameter_mm``,
        false positives per scan).
    """
    import torch

    net.eval()
    n_in = int(next(net.parameters()).shape[1])
    scored: list[tuple[NDArray[np.float32], CaseExamples]] = []
    with torch.inference_mode():
        for e in validation:
            s = np.zeros(len(e.crops), dtype=np.float32)
            for a in range(0, len(e.crops), 128):
                x = e.crops[a : a + 128, :n_in].astype(np.float32)
                s[a : a + 128] = torch.sigmoid(net(torch.from_numpy(x))[:, 0]).numpy()
            scored.append((blend_with_unet(s, e.crops, unet_weight), e))
    table: list[dict[str, float]] = []
    best = 0.99
    for thr in np.round(np.arange(0.05, 1.0, 0.05), 2):
        hits = 0
        total = 0
        fps = 0
        for s, e in scored:
            acc = s >= thr
            fps += int((acc & (e.labels == 0)).sum())
            for i, t in enumerate(e.truth):
                if float(t["d"]) >= min_diameter_mm:
                    total += 1
                    hits += int(bool((acc & (e.nodule_of == i)).any()))
        fp = fps / max(len(scored), 1)
        table.append({"threshold": float(thr), "sensitivity": hits / max(total, 1), "fp_per_scan": fp})
    within = [r for r in table if r["fp_per_scan"] <= max_fp_per_scan]
    if within:
        best = min(r["threshold"] for r in within)
    return best, table


def export_classifier(
    checkpoint: Path, weights_out: Path, threshold: float, unet_sha256: str, unet_weight: float = 0.0
) -> str:
    """Write a checkpoint as safetensors, threshold and U-Net weight in its config; return its SHA-256."""
    import hashlib

    import torch
    from safetensors.torch import save_file

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = dataclasses.replace(
        ClassifierConfig.from_json(state["config"]),
        threshold=float(threshold),
        unet_weight=float(unet_weight),
    )
    tensors = {k: v.contiguous() for k, v in state["model"].items()}
    meta = {
        "config": cfg.to_json(),
        "iteration": str(state["iteration"]),
        "format": FP_FORMAT,
        "unet_sha256": unet_sha256,
    }
    weights_out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(weights_out), metadata=meta)
    return hashlib.sha256(weights_out.read_bytes()).hexdigest()


def cached_examples(path: Path, *, all_negatives: bool) -> CaseExamples:
    """:func:`case_examples` of a case, kept in ``examples/`` beside it for the next run."""
    cache = path.parent / "examples" / path.name
    if cache.exists():
        with np.load(cache) as z:
            return CaseExamples(z["crops"], z["labels"], z["nodule_of"], json.loads(str(z["truth"])))
    ex = case_examples(path, all_negatives=all_negatives, seed=int(path.stem.split("_")[-1]))
    cache.parent.mkdir(exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(
        tmp, crops=ex.crops, labels=ex.labels, nodule_of=ex.nodule_of, truth=np.array(json.dumps(ex.truth))
    )
    tmp.replace(cache)
    return ex


def run_fp_training(
    data_dir: Path,
    out_dir: Path,
    segmenter: Any,
    *,
    cases: int,
    val_cases: int,
    settings: FpTrainSettings | None = None,
    max_fp_per_scan: float = 0.7,
    export: Path | None = None,
    seed_base: int = CANDIDATE_SEED_BASE,
    real_cases: Sequence[Path] = (),
    real_weight: float = 1.0,
    threshold: float | None = None,
    on_progress: ProgressFn | None = None,
    cancel: object | None = None,
) -> dict[str, Any]:
    """Generate (or reuse) candidate cases, train, pick the threshold on validation and export.

    ``real_cases`` (written by :func:`segmentation.training.real_cases.write_real_case`) join the
    training phantoms with every candidate kept; all of them together are drawn ``real_weight`` times
    as often as all training phantoms together. A given ``threshold`` is exported as the operating
    point instead of the one chosen on the validation phantoms (which is still reported).

    Returns
    -------
    dict
        :func:`train_classifier`'s result plus ``threshold``, ``operating_points`` (validation)
        and ``sha256`` when exported. The same is written to ``out_dir/fp_validation.json``.
    """
    import torch

    train_idx = list(range(cases))
    val_idx = list(range(VALIDATION_START, VALIDATION_START + val_cases))
    paths = generate_candidate_cases(
        data_dir, train_idx + val_idx, segmenter, seed_base=seed_base, on_progress=on_progress, cancel=cancel
    )
    train_ex = [cached_examples(p, all_negatives=False) for p in paths[: len(train_idx)]]
    real_ex = [cached_examples(p, all_negatives=True) for p in real_cases]
    val_ex = [cached_examples(p, all_negatives=True) for p in paths[len(train_idx) :]]
    st = settings if settings is not None else FpTrainSettings(out_dir=out_dir)
    share = real_weight * max(len(train_ex), 1) / max(len(real_ex), 1)
    weights = [1.0] * len(train_ex) + [share] * len(real_ex)
    hard: list[NDArray[np.float32] | None] = [None] * len(train_ex)
    hard += hard_negative_weights(st, real_ex)
    res = train_classifier(
        train_ex + real_ex,
        st,
        case_weights=weights,
        crop_weights=hard,
        on_progress=on_progress,
        cancel=cancel,
    )
    state = torch.load(Path(res["checkpoint"]), map_location="cpu", weights_only=False)
    net = build_classifier(ClassifierConfig.from_json(state["config"]))
    net.load_state_dict(state["model"])
    w = st.unet_weight
    chosen, table = (
        choose_threshold(net, val_ex, max_fp_per_scan=max_fp_per_scan, unet_weight=w) if val_ex else (0.5, [])
    )
    threshold = chosen if threshold is None else float(threshold)
    res.update(
        threshold=threshold,
        threshold_chosen_on_validation=chosen,
        operating_points=table,
        train_cases=len(train_ex),
        validation_cases=len(val_ex),
        train_crops=int(sum(len(e.labels) for e in train_ex)),
        train_positives=int(sum(int(e.labels.sum()) for e in train_ex)),
        real_cases=[p.name for p in real_cases],
        real_crops=int(sum(len(e.labels) for e in real_ex)),
        real_positives=int(sum(int(e.labels.sum()) for e in real_ex)),
    )
    if export is not None:
        res["sha256"] = export_classifier(Path(res["checkpoint"]), export, threshold, segmenter.sha256, w)
    (out_dir / "fp_validation.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    return res
