"""Training of the fused model on synthetic cases: cache building, a resumable loop, temperature scaling.

Text encoding is kept cheap: the backbone is frozen and the training notes' token states are cached once
(fp16, on disk); crops are rendered once and cached (int16 HU). The loop checkpoints every epoch and
resumes from the last checkpoint. Imports torch: import this module lazily.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812

from radiology_app.core.errors import ModelError
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.diagnosis.crops import N_RADIOMICS, estimate_noise_hu, image_channels, radiomics
from radiology_app.diagnosis.cues import N_CUES, extract_cues, with_facts
from radiology_app.diagnosis.features import quality_vector
from radiology_app.diagnosis.network import FusedNet, NetConfig
from radiology_app.diagnosis.phantom import add_noise, apply_slice_thickness
from radiology_app.diagnosis.synthetic import SyntheticCase, generate_cases, render_case
from radiology_app.diagnosis.text import MAX_TOKENS, TextBackbone, encode_cached

log = logging.getLogger(__name__)

#: Reads a note's patient facts in context (CLI-contract names -> values), injected from the CLI layer
#: (``radiology_app.notes.facts.extract_facts``; the diagnosis package may not import the notes package).
FactsReader = Callable[[str], Mapping[str, object]]

TRAIN_SEED = 1000
VAL_SEED = 2000
EVAL_SEED = 3000
SITE_B_TRAIN_SEED = 4000
SITE_B_EVAL_SEED = 5000


@dataclass
class CaseArrays:
    """Cases as arrays (the cache format)."""

    hu: npt.NDArray[np.int16]  # [N, 32, 32, 32]
    mask: npt.NDArray[np.uint8]  # [N, 32, 32, 32]
    labels: npt.NDArray[np.int64]
    thickness: npt.NDArray[np.float32]
    noise_est: npt.NDArray[np.float32]
    states: npt.NDArray[np.float16]  # [N, L, H]
    tmask: npt.NDArray[np.uint8]  # [N, L]
    cues: npt.NDArray[np.float32]  # [N, n_cues]
    informativeness: npt.NDArray[np.float32]
    notes: list[str]
    #: 0 = crop from this package's phantom, 1 = from the segmentation phantom through the U-Net.
    renderer: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    #: 0 where the U-Net missed a segmentation-phantom nodule and its true mask stands in.
    unet_found: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    #: Cue vectors with the patient facts replaced by the facts reader's (equal to ``cues`` without one).
    fact_cues: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, N_CUES), np.float32))

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.renderer) != n:
            self.renderer = np.zeros(n, np.uint8)
        if len(self.unet_found) != n:
            self.unet_found = np.ones(n, np.uint8)
        if len(self.fact_cues) != n:
            self.fact_cues = np.array(self.cues, dtype=np.float32, copy=True)

    def read_facts(self, reader: FactsReader | None) -> None:
        """Fill :attr:`fact_cues` from ``reader`` (each note's facts through :func:`with_facts`, as
        ``analyze`` passes them); without a reader they equal the lexicon's cues."""
        if reader is None:
            self.fact_cues = np.array(self.cues, dtype=np.float32, copy=True)
            return
        out = np.array(self.cues, dtype=np.float32, copy=True)
        for i, t in enumerate(self.notes):
            if t.strip():
                out[i] = with_facts(out[i], reader(t))
        self.fact_cues = out

    def __len__(self) -> int:
        return len(self.labels)

    def save(self, path: Path) -> None:
        """Write to ``path`` (``.npz``; states as a separate ``.npy`` beside it)."""
        np.save(path.with_suffix(".states.npy"), self.states)
        np.savez(
            path,
            hu=self.hu,
            mask=self.mask,
            labels=self.labels,
            thickness=self.thickness,
            noise_est=self.noise_est,
            tmask=self.tmask,
            cues=self.cues,
            informativeness=self.informativeness,
            notes=np.asarray(self.notes, dtype=object),
            renderer=self.renderer,
            unet_found=self.unet_found,
        )

    @staticmethod
    def load(path: Path, facts_reader: FactsReader | None = None) -> CaseArrays:
        """Read what :meth:`save` wrote (facts read afresh with ``facts_reader``)."""
        z = np.load(path, allow_pickle=True)  # our own cache file, never a weights file
        states = np.load(path.with_suffix(".states.npy"), mmap_mode="r")
        notes = [str(s) for s in z["notes"]]
        # Cues are recomputed (cheap) so a cache always matches the current lexicon.
        cue_list = [extract_cues(t) for t in notes]
        cues = np.stack([c.vector for c in cue_list]) if notes else np.zeros((0, N_CUES), np.float32)
        info = np.asarray([c.informativeness for c in cue_list], dtype=np.float32)
        a = CaseArrays(
            z["hu"],
            z["mask"],
            z["labels"],
            z["thickness"],
            z["noise_est"],
            np.asarray(states),
            z["tmask"],
            cues,
            info,
            notes,
            z["renderer"] if "renderer" in z.files else np.zeros(0, np.uint8),
            z["unet_found"] if "unet_found" in z.files else np.zeros(0, np.uint8),
        )
        a.read_facts(facts_reader)
        return a


def encode_notes(
    backbone: TextBackbone, notes: list[str]
) -> tuple[npt.NDArray[np.float16], npt.NDArray[np.uint8]]:
    """Token states for notes; empty notes get an all-zero mask."""
    states, masks = encode_cached(backbone, notes)
    for i, t in enumerate(notes):
        if not t.strip():
            masks[i] = 0
    return states, masks


def _case_arrays(
    cases: list[SyntheticCase],
    hu: npt.NDArray[np.int16],
    mask: npt.NDArray[np.uint8],
    noise: npt.NDArray[np.float32],
    states: npt.NDArray[np.float16],
    tmask: npt.NDArray[np.uint8],
    notes: list[str],
    unet_found: npt.NDArray[np.uint8] | None = None,
    facts_reader: FactsReader | None = None,
) -> CaseArrays:
    """Assemble rendered, encoded cases (labels, slice thickness, renderer and note cues from ``cases``)."""
    cue_list = [extract_cues(t) for t in notes]
    a = CaseArrays(
        hu=hu,
        mask=mask,
        labels=np.asarray([c.label for c in cases], dtype=np.int64),
        thickness=np.asarray([c.slice_thickness_mm for c in cases], dtype=np.float32),
        noise_est=noise,
        states=states,
        tmask=tmask,
        cues=(np.stack([c.vector for c in cue_list]) if cases else np.zeros((0, N_CUES))).astype(np.float32),
        informativeness=np.asarray([c.informativeness for c in cue_list], dtype=np.float32),
        notes=notes,
        renderer=np.asarray([c.renderer == "segmentation" for c in cases], dtype=np.uint8),
        unet_found=unet_found if unet_found is not None else np.ones(len(cases), np.uint8),
    )
    a.read_facts(facts_reader)
    return a


def render_full(case: SyntheticCase) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], bool]:
    """A case's crop, mask and whether the U-Net found it (always ``True`` for this package's phantom)."""
    if case.renderer == "segmentation":
        from radiology_app.diagnosis.training.seg_crops import render_segmentation_case

        crop = render_segmentation_case(case)
        return crop.hu, crop.mask, crop.unet_found
    h, m = render_case(case)
    return h, m, True


def build_arrays(
    cases: list[SyntheticCase],
    backbone: TextBackbone,
    *,
    facts_reader: FactsReader | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> CaseArrays:
    """Render crops and encode notes for ``cases`` (a twin's crop is its original's, rendered once).

    Raises
    ------
    OperationCancelled
        When ``cancel`` is set.
    """
    n = len(cases)
    hu = np.zeros((n, 32, 32, 32), dtype=np.int16)
    mask = np.zeros((n, 32, 32, 32), dtype=np.uint8)
    noise = np.zeros(n, dtype=np.float32)
    found = np.ones(n, dtype=np.uint8)
    done: dict[tuple[object, ...], int] = {}
    for i, c in enumerate(cases):
        check_cancel(cancel)
        key = (c.phenotype, c.noise_hu, c.slice_thickness_mm, c.seed, c.renderer)
        if key in done and c.twin_of >= 0:
            j = done[key]
            hu[i], mask[i], noise[i], found[i] = hu[j], mask[j], noise[j], found[j]
            continue
        h, m, ok = render_full(c)
        hu[i] = np.clip(np.round(h), -2000, 3000).astype(np.int16)
        mask[i] = m
        noise[i] = estimate_noise_hu(h)
        found[i] = ok
        done.setdefault(key, i)
        if i % 50 == 0:
            report(on_progress, i, n, "cases", "rendering crops")
    notes = [c.note for c in cases]
    report(on_progress, n, n, "cases", "encoding notes")
    states, tmask = encode_notes(backbone, notes)
    return _case_arrays(cases, hu, mask, noise, states, tmask, notes, found, facts_reader)


def batch_tensors(
    a: CaseArrays,
    idx: npt.NDArray[np.int64],
    rng: np.random.Generator | None = None,
    *,
    p_degrade: float = 0.0,
    p_drop_note: float = 0.0,
    p_drop_cues: float = 0.0,
    p_drop_image: float = 0.0,
    p_lexicon_cues: float = 0.0,
    force_degrade: bool = False,
    force_drop_note: bool = False,
    drop_image: bool = False,
    lexicon_cues: bool = False,
    n_pairs: int = 0,
) -> dict[str, torch.Tensor]:
    """Assemble a batch (with optional augmentation, degradation and modality dropout).

    ``drop_image`` replaces the crop by lung background only (no nodule) and maximal noise: the
    "text only" condition. ``force_drop_note`` empties the note: the "image only" condition.
    The cue vector is the one with the structured facts (:attr:`CaseArrays.fact_cues`, what ``analyze``
    gives the model) unless ``lexicon_cues`` or, per row, ``p_lexicon_cues`` says the lexicon's own (a
    caller without structured facts).
    ``n_pairs`` > 0 (training) appends, for the first ``n_pairs`` cases of ``idx``, a copy with the image
    degraded (heavy noise, 3-5 mm slices) and the same note; those first cases keep a clean image. The
    router loss compares each pair (:func:`fused_loss`).
    """
    imgs, quals, cues, tmask, rads = [], [], [], [], []
    n_pairs = min(n_pairs, len(idx)) if rng is not None else 0
    rows = [int(i) for i in idx] + [int(i) for i in idx[:n_pairs]]
    # Per-row decisions drawn up front so that a degraded copy shares its original's note decisions.
    note_u = [rng.random() if rng is not None else 1.0 for _ in rows]
    cue_u = [rng.random() if rng is not None else 1.0 for _ in rows]
    lex_u = [rng.random() if rng is not None else 1.0 for _ in rows]
    for j in range(len(idx), len(rows)):
        note_u[j], cue_u[j], lex_u[j] = note_u[j - len(idx)], cue_u[j - len(idx)], lex_u[j - len(idx)]
    for j, i in enumerate(rows):
        paired_clean = j < n_pairs
        paired_copy = j >= len(idx)
        h = a.hu[i].astype(np.float32)
        m = a.mask[i]
        thick = float(a.thickness[i])
        noise_est = float(a.noise_est[i])
        if rng is not None:
            if rng.random() < 0.5:
                h, m = h[::-1], m[::-1]
            k = int(rng.integers(4))
            h, m = np.rot90(h, k, axes=(1, 2)), np.rot90(m, k, axes=(1, 2))
            if rng.random() < 0.5:
                h, m = h[:, :, ::-1], m[:, :, ::-1]
        degrade = paired_copy or (
            not paired_clean and (force_degrade or (rng is not None and rng.random() < p_degrade))
        )
        if degrade:
            g = rng if rng is not None else np.random.default_rng(int(i))
            thick = float(g.uniform(3.0, 5.0))
            h = add_noise(apply_slice_thickness(h, thick), float(g.uniform(80, 180)), g)
            noise_est = estimate_noise_hu(h)
        if drop_image or (
            not (paired_clean or paired_copy) and rng is not None and rng.random() < p_drop_image
        ):
            g = rng if rng is not None else np.random.default_rng(int(i))
            h = add_noise(np.full_like(h, -850.0), 250.0, g)
            m = np.zeros_like(m)
            thick, noise_est = 5.0, estimate_noise_hu(h)
        h, m = np.ascontiguousarray(h), np.ascontiguousarray(m)
        imgs.append(image_channels(h, m))
        rads.append(radiomics(h, m))
        note_present = bool(a.tmask[i].any())
        drop_note = force_drop_note or note_u[j] < p_drop_note
        cv = (a.cues[i] if lexicon_cues or lex_u[j] < p_lexicon_cues else a.fact_cues[i]).copy()
        tm = a.tmask[i].copy()
        if drop_note:
            note_present = False
            cv[:] = 0
            tm[:] = 0
        elif cue_u[j] < p_drop_cues:
            cv[:] = 0
        cues.append(cv)
        tmask.append(tm)
        from radiology_app.diagnosis.cues import NoteCues

        nc = NoteCues(cv, ())
        q = quality_vector(noise_est, thick, nc, int(tm.sum()), note_present)
        q[3] = float(a.informativeness[i]) if note_present and cv.any() else 0.0
        quals.append(q)
    ridx = np.asarray(rows, dtype=np.int64)
    return {
        "image": torch.from_numpy(np.stack(imgs)),
        "text_states": torch.from_numpy(np.asarray(a.states[ridx], dtype=np.float32)),
        "text_mask": torch.from_numpy(np.stack(tmask).astype(np.float32)),
        "cues": torch.from_numpy(np.stack(cues).astype(np.float32)),
        "quality": torch.from_numpy(np.stack(quals)),
        "labels": torch.from_numpy(a.labels[ridx]),
        "radiomics": torch.from_numpy(np.stack(rads)),
    }


def fused_loss(
    out: dict[str, torch.Tensor],
    labels: torch.Tensor,
    contrastive_weight: float = 0.1,
    *,
    n_pairs: int = 0,
    text_mask: torch.Tensor | None = None,
    pair_margin: float = 0.15,
    pair_weight: float = 1.0,
) -> torch.Tensor:
    """Fused NLL + per-head cross-entropy + router reliability targets + image-text contrastive loss.

    Each gate's target is its head's probability of the true class above chance, rescaled to [0, 1]
    (detached), so an empty note or a useless image drives that modality's gate towards zero.

    With ``n_pairs`` > 0 the last ``n_pairs`` rows are image-degraded copies of the first ``n_pairs``
    (:func:`batch_tensors`): for pairs whose note is present (``text_mask``), a hinge loss asks the router
    to give the note at least ``pair_margin`` more of the normalised weight on the degraded copy than on
    the clean original (the clean side detached, so only the degraded case's routing moves).
    """
    nll = F.nll_loss(out["log_mix"], labels)
    keys = ("logits_image", "logits_text", "logits_joint")
    heads = sum(F.cross_entropy(out[k], labels) for k in keys)
    n_cls = out["logits_image"].shape[1]
    with torch.no_grad():
        rel = torch.stack([F.softmax(out[k], -1).gather(1, labels[:, None]).squeeze(1) for k in keys], 1)
        target = ((rel - 1.0 / n_cls) / (1.0 - 1.0 / n_cls)).clamp(0.0, 1.0)
    gate_loss = F.binary_cross_entropy(out["gates"].clamp(1e-6, 1 - 1e-6), target)
    sim = out["z_image"] @ out["z_text"].T / 0.1
    same = (labels[:, None] == labels[None, :]).float()
    target = same / same.sum(1, keepdim=True)
    con = 0.5 * (
        -(target * F.log_softmax(sim, 1)).sum(1).mean() - (target.T * F.log_softmax(sim.T, 1)).sum(1).mean()
    )
    loss = nll + 0.5 * heads + gate_loss + contrastive_weight * con
    if n_pairs > 0:
        w = out["weights"]
        b = w.shape[0]
        clean, degraded = w[:n_pairs, 1].detach(), w[b - n_pairs :, 1]
        has_note = (
            text_mask[:n_pairs].sum(1) > 0
            if text_mask is not None
            else torch.ones_like(clean, dtype=torch.bool)
        )
        if bool(has_note.any()):
            shift = (degraded - clean)[has_note]
            loss = loss + pair_weight * F.relu(pair_margin - shift).mean()
    return loss


def _forward(net: FusedNet, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return net(  # type: ignore[no-any-return]
        b["image"], b["text_states"], b["text_mask"], b["cues"], b["quality"], b["radiomics"]
    )


def predict_arrays(
    net: FusedNet, a: CaseArrays, batch_size: int = 128, **conditions: bool
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Probabilities ``[N, C]`` and router weights ``[N, 3]`` for cached cases under a condition."""
    net.eval()
    probs, weights = [], []
    with torch.no_grad():
        for s in range(0, len(a), batch_size):
            idx = np.arange(s, min(len(a), s + batch_size))
            out = _forward(net, batch_tensors(a, idx, None, **conditions))
            probs.append(out["log_probs"].exp().numpy())
            weights.append(out["weights"].numpy())
    return np.concatenate(probs), np.concatenate(weights)


def fit_temperature(net: FusedNet, a: CaseArrays) -> float:
    """Fit the mixture's temperature on validation cases (minimum NLL); store it in the network."""
    net.eval()
    logs = []
    with torch.no_grad():
        for s in range(0, len(a), 128):
            idx = np.arange(s, min(len(a), s + 128))
            logs.append(_forward(net, batch_tensors(a, idx))["log_mix"])
    lm = torch.cat(logs)
    y = torch.from_numpy(a.labels)
    best_t, best = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.3), np.log(4.0), 80)):
        nll = float(F.cross_entropy(lm / float(t), y))
        if nll < best:
            best_t, best = float(t), nll
    net.temperature.fill_(best_t)  # type: ignore[operator]
    return best_t


@dataclass(frozen=True)
class TrainConfig:
    """Training settings."""

    epochs: int = 12
    batch_size: int = 48
    lr: float = 2e-3
    weight_decay: float = 1e-4
    p_degrade: float = 0.1
    p_drop_note: float = 0.12
    p_drop_cues: float = 0.25
    p_drop_image: float = 0.06
    p_lexicon_cues: float = 0.3
    p_pair: float = 0.2
    pair_margin: float = 0.15
    threads: int = 1
    seed: int = 0


def train_model(
    train: CaseArrays,
    val: CaseArrays,
    cfg: NetConfig,
    tcfg: TrainConfig,
    work_dir: Path,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    max_seconds: float | None = None,
) -> tuple[FusedNet, dict[str, Any]]:
    """Train (resuming from ``work_dir/checkpoint.pt`` when present) and fit the temperature.

    Parameters
    ----------
    train, val
        Cached cases.
    cfg, tcfg
        Network and training settings.
    work_dir
        Checkpoint folder (``checkpoint.pt`` is written after every epoch; loaded with
        ``weights_only=True``).
    max_seconds
        Stop after the epoch in progress when this wall time (s) is exceeded.

    Returns
    -------
    tuple
        The network (eval mode) and a history dict (per-epoch loss and validation top-1, seconds).
    """
    torch.set_num_threads(tcfg.threads)
    torch.manual_seed(tcfg.seed)
    work_dir.mkdir(parents=True, exist_ok=True)
    net = FusedNet(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    steps_per_epoch = max(1, len(train) // tcfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=tcfg.lr, total_steps=tcfg.epochs * steps_per_epoch, pct_start=0.15
    )
    history: dict[str, Any] = {"epochs": [], "seconds": 0.0}
    start_epoch = 0
    ckpt = work_dir / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start_epoch = int(state["epoch"])
        history = json.loads(str(state["history"]))
        log.info("resuming from epoch %d", start_epoch)
    t0 = time.monotonic()
    total = tcfg.epochs * steps_per_epoch
    for epoch in range(start_epoch, tcfg.epochs):
        net.train()
        rng = np.random.default_rng(tcfg.seed * 1000 + epoch)
        order = rng.permutation(len(train))
        losses = []
        for step in range(steps_per_epoch):
            check_cancel(cancel)
            idx = order[step * tcfg.batch_size : (step + 1) * tcfg.batch_size]
            b = batch_tensors(
                train,
                idx,
                rng,
                p_degrade=tcfg.p_degrade,
                p_drop_note=tcfg.p_drop_note,
                p_drop_cues=tcfg.p_drop_cues,
                p_drop_image=tcfg.p_drop_image,
                p_lexicon_cues=tcfg.p_lexicon_cues,
                n_pairs=round(tcfg.p_pair * len(idx)),
            )
            n_pairs = len(b["labels"]) - len(idx)
            loss = fused_loss(
                _forward(net, b),
                b["labels"],
                n_pairs=n_pairs,
                text_mask=b["text_mask"],
                pair_margin=tcfg.pair_margin,
            )
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(net.parameters(), 2.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            report(on_progress, epoch * steps_per_epoch + step + 1, total, "steps", f"epoch {epoch + 1}")
        probs, _ = predict_arrays(net, val)
        top1 = float((probs.argmax(1) == val.labels).mean())
        history["seconds"] = float(history["seconds"]) + (time.monotonic() - t0)
        t0 = time.monotonic()
        history["epochs"].append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_top1": top1})
        log.info("epoch %d loss %.4f val top1 %.4f", epoch + 1, np.mean(losses), top1)
        print(
            f"epoch {epoch + 1} loss {np.mean(losses):.4f} val_top1 {top1:.4f} "
            f"elapsed {history['seconds']:.0f}s",
            flush=True,
        )
        torch.save(
            {
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch + 1,
                "history": json.dumps(history),
            },
            ckpt,
        )
        if max_seconds is not None and float(history["seconds"]) > max_seconds:
            break
    history["temperature"] = fit_temperature(net, val)
    net.eval()
    return net, history


def load_or_build_arrays(
    path: Path, cases_fn: Any, backbone: TextBackbone, facts_reader: FactsReader | None = None, **kw: Any
) -> CaseArrays:
    """Load cached arrays from ``path`` or build and save them (facts always read afresh)."""
    if path.exists() and path.with_suffix(".states.npy").exists():
        a = CaseArrays.load(path, facts_reader)
        if a.states.shape[2] != backbone.hidden_size or a.states.shape[1] != MAX_TOKENS:
            raise ModelError(f"{path}: cache was built with another backbone; delete it")
        return a
    a = build_arrays(cases_fn(), backbone, facts_reader=facts_reader, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    a.save(path)
    return a


def carry_over_arrays(
    old: CaseArrays,
    old_cases: list[SyntheticCase],
    new_cases: list[SyntheticCase],
    backbone: TextBackbone,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> CaseArrays:
    """Arrays for ``new_cases`` from ``old`` (the arrays of ``old_cases``): a case whose phenotype, scanner
    settings and rendering seed are unchanged keeps its crop, a case whose note is unchanged keeps its
    token states; only the others are rendered or encoded.

    Raises
    ------
    ModelError
        When the old arrays do not belong to ``old_cases`` (other length, labels or notes).
    """
    n = len(new_cases)
    if len(old) != len(old_cases) or len(old_cases) != n:
        raise ModelError("carry-over: the old cache does not match the old cases")
    if [c.label for c in old_cases] != [int(v) for v in old.labels] or [
        c.note for c in old_cases
    ] != old.notes:
        raise ModelError("carry-over: the old cache does not match the old cases")
    hu, mask, noise = old.hu.copy(), old.mask.copy(), old.noise_est.copy()
    redo = [
        i
        for i, (a, b) in enumerate(zip(old_cases, new_cases, strict=True))
        if (a.phenotype, a.noise_hu, a.slice_thickness_mm, a.seed)
        != (b.phenotype, b.noise_hu, b.slice_thickness_mm, b.seed)
    ]
    for k, i in enumerate(redo):
        check_cancel(cancel)
        h, m = render_case(new_cases[i])
        hu[i] = np.clip(np.round(h), -2000, 3000).astype(np.int16)
        mask[i] = m
        noise[i] = estimate_noise_hu(h)
        if k % 50 == 0:
            report(on_progress, k, len(redo), "cases", "rendering changed crops")
    states, tmask = np.array(old.states), old.tmask.copy()
    notes = [c.note for c in new_cases]
    changed = [i for i in range(n) if notes[i] != old.notes[i]]
    if changed:
        s_new, m_new = encode_notes(backbone, [notes[i] for i in changed])
        states[changed], tmask[changed] = s_new, m_new
    log.info("carry-over: %d crops rendered, %d notes encoded of %d cases", len(redo), len(changed), n)
    return _case_arrays(new_cases, hu, mask, noise, states, tmask, notes)


def synthetic_arrays(
    cache_dir: Path,
    name: str,
    n: int,
    seed: int,
    backbone: TextBackbone,
    domain: str = "base",
    *,
    twins: float = 0.0,
    facts_reader: FactsReader | None = None,
    **kw: Any,
) -> CaseArrays:
    """Cached arrays for ``n`` synthetic cases of ``seed``/``domain`` (file named after them and the
    generator version), followed by counterfactual twins of about a ``twins`` share of them
    (:func:`~radiology_app.diagnosis.synthetic.with_twins`); facts read with ``facts_reader``.

    When only the previous generator version's cache of the same cases is there, it is carried over
    (:func:`carry_over_arrays`: version 3 changes a few percent of the cases) instead of rendering all.
    """
    from radiology_app.diagnosis.synthetic import GENERATOR_VERSION, with_twins

    tag = Path(backbone.directory).name.replace(" ", "_")
    stem = f"{name}_{domain}_{seed}_{n}_{tag}_{backbone.hidden_size}"
    if twins > 0:
        stem += f"_tw{round(100 * twins)}"
    path = cache_dir / f"{stem}_g{GENERATOR_VERSION}.npz"
    prev = cache_dir / f"{stem}_g{GENERATOR_VERSION - 1}.npz"
    if (
        GENERATOR_VERSION == 3
        and not path.exists()
        and prev.exists()
        and prev.with_suffix(".states.npy").exists()
    ):
        old = load_or_build_arrays(prev, lambda: [], backbone)
        a = carry_over_arrays(
            old,
            generate_cases(n, seed, domain=domain, version=2),
            generate_cases(n, seed, domain=domain),
            backbone,
            **kw,
        )
        a.save(path)
        a.read_facts(facts_reader)
        return a

    def cases() -> list[SyntheticCase]:
        base = generate_cases(n, seed, domain=domain)
        return with_twins(base, seed, twins) if twins > 0 else base

    return load_or_build_arrays(path, cases, backbone, facts_reader, **kw)


MODEL_VERSION = "1.3.0"


def save_fused(
    net: FusedNet, backbone: TextBackbone, weights: Path, extra: dict[str, Any] | None = None
) -> str:
    """Write the network as safetensors with its configuration in the metadata; return the SHA-256.

    The metadata records the architecture, the text backbone (folder name and hidden size), the version,
    the classes and the temperature, so the loader can rebuild and check everything without pickles.
    """
    from safetensors.torch import save_file

    from radiology_app.diagnosis.classes import CLASS_NAMES
    from radiology_app.diagnosis.weights import sha256_file

    meta: dict[str, Any] = {
        "net": net.cfg.to_dict(),
        "backbone": {"name": Path(backbone.directory).name, "hidden_size": backbone.hidden_size},
        "version": MODEL_VERSION,
        "classes": list(CLASS_NAMES),
        "temperature": float(net.temperature),  # type: ignore[arg-type]
    }
    meta.update(extra or {})
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(weights), metadata={"config": json.dumps(meta)})
    return sha256_file(weights)


def _generator_version() -> int:
    from radiology_app.diagnosis.synthetic import GENERATOR_VERSION

    return GENERATOR_VERSION


def write_card(
    card: Path,
    sha: str,
    *,
    backbone: TextBackbone,
    n_train: int,
    n_val: int,
    tcfg: TrainConfig,
    history: dict[str, Any],
) -> None:
    """Write the model card of freshly trained fused weights (measured metrics are added by evaluation)."""
    last = history["epochs"][-1] if history.get("epochs") else {}
    text = f"""# Model card: fused image+text differential diagnosis (`fused_dx.safetensors`)

Version {MODEL_VERSION}. **An AI suggestion for a clinician to review; not a validated medical device.**

## What it is
A fused image+text network (`radiology_app/diagnosis/network.py`): a small MONAI 3-D convolutional encoder
on a 40 mm crop (1.25 mm voxels; lung, mediastinal and high-attenuation HU windows plus the nodule mask),
the token states of the frozen text backbone `{Path(backbone.directory).name}` (hidden size
{backbone.hidden_size}) plus a bilingual negation-aware cue vector, cross-attention between image and text
tokens, three heads (image, text, joint) over 9 classes, and a modality router (pooled features + image
noise estimate, slice thickness, note informativeness) that gates the heads: each gate is trained to predict
how reliable its head is for the case, the fused logits are the gated sum, and the normalised gates are the
reported modality weights {{image, text, joint}}. Temperature scaling
(T = {history.get("temperature", 1.0):.3f}) fitted on the validation cases.

## Training data
Synthetic only: {n_train} training cases (seed {TRAIN_SEED}) and {n_val} validation cases (seed {VAL_SEED})
from `radiology_app/diagnosis/synthetic.py` (balanced over the 9 classes; notes 70 % English / 30 %
Chinese in many document forms with traps, 4 % empty; crops rendered by `radiology_app/diagnosis/phantom.py`
or, for a share of the cases, by the segmentation phantom outlined by the shipped U-Net and cropped like
the pipeline; noise 8-35 HU, slices 0.625-2 mm; generator version {_generator_version()}), followed by
counterfactual twins of the training cases (labels follow the facts). Structured note facts for
{1 - tcfg.p_lexicon_cues:.0%} of the training rows, the lexicon's cues for the rest. No real patient data.
Settings: {tcfg.epochs} epochs, batch {tcfg.batch_size}, AdamW lr {tcfg.lr}, one-cycle schedule, modality
dropout (note dropped {tcfg.p_drop_note:.0%}, image degraded {tcfg.p_degrade:.0%}, image replaced by noise
{tcfg.p_drop_image:.0%}, cues hidden {tcfg.p_drop_cues:.0%}); {tcfg.p_pair:.0%} of each batch repeated with
the image degraded (noise 80-180 HU, 3-5 mm slices) and a router loss asking for at least
{tcfg.pair_margin:.2f} more text weight on the degraded copy than on its clean original; contrastive
image-text alignment loss (weight 0.1), {tcfg.threads} CPU thread(s),
{history.get("seconds", 0.0) / 60:.1f} min. Last epoch: loss {last.get("loss", float("nan")):.4f}, validation
top-1 {last.get("val_top1", float("nan")):.4f}.

Reproduce: `radiology-app train-diagnosis --epochs {tcfg.epochs} --train-cases {n_train} --val-cases {n_val}`.

## Measured
Filled in from `radiology-app evaluate --json` (held-out seed {EVAL_SEED}, never used in training).

SHA-256: {sha}
"""
    card.write_text(text, encoding="utf-8")


def train_diagnosis(
    weights: Path,
    card: Path,
    *,
    work_dir: Path,
    n_train: int = 5400,
    n_val: int = 900,
    tcfg: TrainConfig | None = None,
    backbone_dir: str | None = None,
    max_seconds: float | None = None,
    twins: float = 0.25,
    facts_reader: FactsReader | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Build (or reuse) the caches in ``work_dir``, train with checkpoints, save weights and card.

    The training cases are followed by counterfactual twins of about a ``twins`` share of them;
    ``facts_reader`` (the notes package's extractor, injected by the CLI) gives each note's structured
    facts as ``analyze`` does.

    Returns
    -------
    dict
        ``weights``, ``sha256``, ``history``.
    """
    from radiology_app.core.progress import scaled
    from radiology_app.diagnosis.text import load_backbone

    tcfg = tcfg or TrainConfig()
    torch.set_num_threads(tcfg.threads)
    backbone = load_backbone(backbone_dir)
    cache = work_dir / "cache"
    val = synthetic_arrays(
        cache,
        "val",
        n_val,
        VAL_SEED,
        backbone,
        facts_reader=facts_reader,
        on_progress=scaled(on_progress, 0, 0.05),
        cancel=cancel,
    )
    train = synthetic_arrays(
        cache,
        "train",
        n_train,
        TRAIN_SEED,
        backbone,
        twins=twins,
        facts_reader=facts_reader,
        on_progress=scaled(on_progress, 0.05, 0.3),
        cancel=cancel,
    )
    cfg = NetConfig(text_hidden=backbone.hidden_size, n_radiomics=N_RADIOMICS)
    net, history = train_model(
        train,
        val,
        cfg,
        tcfg,
        work_dir / "checkpoints",
        on_progress=scaled(on_progress, 0.3, 1.0),
        cancel=cancel,
        max_seconds=max_seconds,
    )
    sha = save_fused(
        net,
        backbone,
        weights,
        {
            "training": {
                "n_train": n_train,
                "n_train_with_twins": len(train),
                "n_val": n_val,
                "epochs": len(history["epochs"]),
                "generator_version": _generator_version(),
                "structured_facts": facts_reader is not None,
                "segmentation_renderer_train": int(train.renderer.sum()),
                "unet_missed_train": int(((train.renderer == 1) & (train.unet_found == 0)).sum()),
            }
        },
    )
    write_card(card, sha, backbone=backbone, n_train=n_train, n_val=n_val, tcfg=tcfg, history=history)
    return {"weights": str(weights), "sha256": sha, "history": history}
