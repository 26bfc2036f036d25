"""Site adaptation: a LoRA adapter on the text backbone plus fusion layers and heads, trained on local cases.

``CASES.csv`` columns (one row per nodule):

* ``crop``: a ``.npz`` file with ``hu`` (``[z, y, x]`` HU), ``mask`` and optionally ``spacing_zyx_mm``; or
  ``volume`` (a DICOM series folder or a file SimpleITK reads) with ``z``, ``y``, ``x`` (voxel index of the
  nodule centre) and optionally ``mask`` (a label image of the same grid);
* ``note`` (text) or ``note_file``;
* ``label``: a class name of :data:`~radiology_app.diagnosis.classes.CLASS_NAMES`;
* optional ``slice_thickness_mm``, ``noise_hu``.

A stratified fifth of the cases is held back; the adapter is trained on the rest with a distillation term
towards the base model's predictions (so the original domain is not forgotten), compared with the base
model on the held-back cases, and activated only when it is better. Imports torch.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radiology_app.core.config import Settings, app_paths, save_settings
from radiology_app.core.errors import ModelError
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.diagnosis.classes import CLASS_NAMES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalCase:
    """One local case, on the model's crop grid."""

    hu: npt.NDArray[np.float32]
    mask: npt.NDArray[np.uint8]
    note: str
    label: int
    slice_thickness_mm: float | None
    noise_hu: float | None


def _read_volume(path: Path) -> tuple[npt.NDArray[np.float32], tuple[float, float, float]]:
    import SimpleITK as sitk  # noqa: N813

    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()  # type: ignore[no-untyped-call]
            files = reader.GetGDCMSeriesFileNames(str(path))  # type: ignore[no-untyped-call]
            if not files:
                raise ModelError(f"{path}: no DICOM series in folder")
            reader.SetFileNames(files)  # type: ignore[no-untyped-call]
            img = reader.Execute()  # type: ignore[no-untyped-call]
        else:
            img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ModelError(f"{path}: cannot read volume ({exc})") from exc
    sx, sy, sz = img.GetSpacing()
    return sitk.GetArrayFromImage(img).astype(np.float32), (float(sz), float(sy), float(sx))


def _grow_mask(vol: npt.NDArray[np.float32], centre: tuple[float, float, float]) -> npt.NDArray[np.uint8]:
    """A nodule mask by connected soft-tissue/ground-glass voxels (> -500 HU) around the centre."""
    from scipy import ndimage

    lab, _ = ndimage.label(vol > -500)
    c = tuple(round(v) for v in centre)
    value = lab[c]
    return (lab == value).astype(np.uint8) if value else np.zeros(vol.shape, np.uint8)


def read_cases_csv(
    path: Path, *, on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None
) -> list[LocalCase]:
    """Read ``CASES.csv`` (see module doc); relative paths are relative to the CSV's folder.

    Raises
    ------
    ModelError
        For a missing file, column or unknown label (the row number is named).
    """
    from radiology_app.diagnosis.api import DiagnosisInput, _on_crop_grid
    from radiology_app.diagnosis.crops import extract_crop

    if not path.is_file():
        raise ModelError(f"{path}: cases file missing")
    base = path.parent
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "label" not in rows[0]:
        raise ModelError(f"{path}: needs a 'label' column and a 'crop' or 'volume' column")
    cases = []
    for i, row in enumerate(rows, start=2):
        check_cancel(cancel)
        label = (row.get("label") or "").strip()
        if label not in CLASS_NAMES:
            raise ModelError(f"{path}: row {i}: unknown label {label!r}")
        note = row.get("note") or ""
        if row.get("note_file"):
            note = (base / row["note_file"]).read_text(encoding="utf-8")
        if row.get("crop"):
            f = base / row["crop"]
            try:
                z = np.load(f)
                hu, mask = z["hu"], z["mask"]
                spacing = (
                    tuple(float(v) for v in z["spacing_zyx_mm"]) if "spacing_zyx_mm" in z else (1.25,) * 3
                )
            except (OSError, KeyError, ValueError) as exc:
                raise ModelError(f"{f}: row {i}: cannot read crop ({exc})") from exc
            inp = DiagnosisInput(hu, mask, (spacing[0], spacing[1], spacing[2]))
            h, m, _ = _on_crop_grid(inp)
        elif row.get("volume"):
            vol, sp = _read_volume(base / row["volume"])
            try:
                centre = (float(row["z"]), float(row["y"]), float(row["x"]))
            except (KeyError, ValueError) as exc:
                raise ModelError(f"{path}: row {i}: volume rows need z, y, x voxel indices") from exc
            if row.get("mask"):
                mvol, _ = _read_volume(base / row["mask"])
                mask_arr = (mvol > 0).astype(np.uint8)
            else:
                mask_arr = _grow_mask(vol, centre)
            h, m, _ = extract_crop(vol, sp, mask_arr, centre)
        else:
            raise ModelError(f"{path}: row {i}: needs 'crop' or 'volume'")
        st = float(row["slice_thickness_mm"]) if row.get("slice_thickness_mm") else None
        nz = float(row["noise_hu"]) if row.get("noise_hu") else None
        cases.append(LocalCase(h, m, note, CLASS_NAMES.index(label), st, nz))
        report(on_progress, i - 1, len(rows), "cases", "reading cases")
    return cases


def write_cases_csv(cases: list[Any], folder: Path) -> Path:
    """Write synthetic cases as crops (``.npz``) plus ``cases.csv`` (for demos and tests)."""
    from radiology_app.diagnosis.synthetic import render_case

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, c in enumerate(cases):
        hu, mask = render_case(c)
        name = f"crop_{k:05d}.npz"
        np.savez_compressed(folder / name, hu=hu, mask=mask, spacing_zyx_mm=np.asarray([1.25, 1.25, 1.25]))
        rows.append(
            {"crop": name, "note": c.note, "label": c.diagnosis, "slice_thickness_mm": c.slice_thickness_mm}
        )
    out = folder / "cases.csv"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["crop", "note", "label", "slice_thickness_mm"])
        w.writeheader()
        w.writerows(rows)
    return out


def _split(labels: npt.NDArray[np.int64], frac: float = 0.2, seed: int = 0) -> npt.NDArray[np.bool_]:
    """Stratified held-back mask."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        held[idx[: max(1, round(frac * len(idx)))] if len(idx) > 1 else []] = True
    return held


def _static_inputs(cases: list[LocalCase], facts_reader: Any = None) -> dict[str, Any]:
    from radiology_app.diagnosis.crops import estimate_noise_hu, image_channels, radiomics
    from radiology_app.diagnosis.cues import extract_cues, with_facts

    cues = [extract_cues(c.note) for c in cases]
    vectors = [
        with_facts(x.vector, facts_reader(c.note))
        if facts_reader is not None and c.note.strip()
        else x.vector
        for x, c in zip(cues, cases, strict=True)
    ]
    return {
        "images": np.stack([image_channels(c.hu, c.mask) for c in cases]).astype(np.float32),
        "cues": np.stack(vectors).astype(np.float32),
        "cue_objs": cues,
        "noise": [c.noise_hu if c.noise_hu is not None else estimate_noise_hu(c.hu) for c in cases],
        "labels": np.asarray([c.label for c in cases], dtype=np.int64),
        "radiomics": np.stack([radiomics(c.hu, c.mask) for c in cases]).astype(np.float32),
    }


def _image_tokens(net: Any, st: dict[str, Any], batch_size: int = 64) -> Any:
    """The image encoder's tokens for every case (it is frozen while fine-tuning: computed once)."""
    import torch

    net.image.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(st["labels"]), batch_size):
            out.append(
                net.image(
                    torch.from_numpy(st["images"][s : s + batch_size]),
                    torch.from_numpy(st["radiomics"][s : s + batch_size]),
                )
            )
    return torch.cat(out)


def _quality(st: dict[str, Any], cases: list[LocalCase], idx: npt.NDArray[np.int64], tmask: Any) -> Any:
    import torch

    from radiology_app.diagnosis.features import quality_vector

    return torch.from_numpy(
        np.stack(
            [
                quality_vector(
                    st["noise"][i],
                    cases[i].slice_thickness_mm,
                    st["cue_objs"][i],
                    int(tmask[k].sum()),
                    bool(cases[i].note.strip()),
                )
                for k, i in enumerate(idx)
            ]
        )
    )


def _forward(
    net: Any,
    backbone: Any,
    st: dict[str, Any],
    cases: list[LocalCase],
    idx: npt.NDArray[np.int64],
    grad: bool,
    *,
    img_tokens: Any = None,
    tokens: dict[str, Any] | None = None,
    text_states: Any = None,
) -> dict[str, Any]:
    """Run the fused network on cases ``idx``: image tokens precomputed (``img_tokens``, all cases) or
    from the crops; text states given (``text_states``, rows of ``idx``), or encoded from the notes
    tokenized once (``tokens``, all cases) or from the notes."""
    import torch

    from radiology_app.diagnosis.text import token_batch

    rows = torch.from_numpy(np.asarray(idx, dtype=np.int64))
    if text_states is not None:
        states, tmask = text_states
    elif tokens is not None:
        batch = token_batch(tokens, rows)
        states, tmask = backbone.encode_tokens(batch, grad=grad), batch["attention_mask"].float()
    else:
        states, tmask, _ = backbone.encode([cases[i].note for i in idx], grad=grad)
    tmask = tmask.clone()
    for k, i in enumerate(idx):
        if not cases[i].note.strip():
            tmask[k] = 0
    img = (
        img_tokens[rows]
        if img_tokens is not None
        else net.image(torch.from_numpy(st["images"][idx]), torch.from_numpy(st["radiomics"][idx]))
    )
    out: dict[str, Any] = net.fuse(
        img, states, tmask, torch.from_numpy(st["cues"][idx]), _quality(st, cases, idx, tmask)
    )
    return out


def _batches(
    order: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64], bs: int, rng: np.random.Generator
) -> list[npt.NDArray[np.int64]]:
    """Split a shuffled order into batches of notes of similar length (sorted within windows of four
    batches, then the batches shuffled), so little of each batch is padding."""
    out: list[npt.NDArray[np.int64]] = []
    for w in range(0, len(order), 4 * bs):
        win = order[w : w + 4 * bs]
        win = win[np.argsort(lengths[win], kind="stable")]
        out.extend(win[s : s + bs] for s in range(0, len(win), bs))
    return [out[int(k)] for k in rng.permutation(len(out))]


def _text_states(
    backbone: Any, tokens: dict[str, Any], idx: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[Any, Any]:
    """Frozen-backbone states and masks for cases ``idx`` (in that order), padded to
    :data:`~radiology_app.diagnosis.text.MAX_TOKENS`; encoded in batches of similar length."""
    import torch

    from radiology_app.diagnosis.text import MAX_TOKENS, token_batch

    n = len(idx)
    states = torch.zeros(n, MAX_TOKENS, backbone.hidden_size)
    masks = torch.zeros(n, MAX_TOKENS)
    order = np.argsort(lengths[idx], kind="stable")
    for s in range(0, n, 32):
        pos = order[s : s + 32]
        batch = token_batch(tokens, torch.from_numpy(np.asarray(idx)[pos]))
        length = batch["input_ids"].shape[1]
        states[torch.from_numpy(pos), :length] = backbone.encode_tokens(batch)
        masks[torch.from_numpy(pos), :length] = batch["attention_mask"].float()
    return states, masks


def _score(
    net: Any,
    backbone: Any,
    st: dict[str, Any],
    cases: list[LocalCase],
    idx: npt.NDArray[np.int64],
    **inputs: Any,
) -> dict[str, float]:
    """Held-back top-1 and NLL; ``inputs`` as for :func:`_forward` (``text_states`` covers all of
    ``idx``)."""
    import torch

    net.eval()
    probs = []
    states = inputs.pop("text_states", None)
    with torch.no_grad():
        for s in range(0, len(idx), 64):
            part = (states[0][s : s + 64], states[1][s : s + 64]) if states is not None else None
            out = _forward(net, backbone, st, cases, idx[s : s + 64], False, text_states=part, **inputs)
            probs.append(out["log_probs"].exp().numpy())
    p = np.concatenate(probs)
    y = st["labels"][idx]
    return {
        "top1": float((p.argmax(1) == y).mean()),
        "nll": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-9, 1)).mean()),
        "n": len(idx),
    }


def usable_threads(threads: int) -> int:
    """At most ``threads`` torch threads, but no more than the cores other processes leave free (1-minute
    load average): on a busy machine, threads that wait for each other's descheduled peers made one
    fine-tuning step about four times slower on 2 threads than on 1 (measured on the shared 2-core
    development machine)."""
    import os

    try:
        free = (os.cpu_count() or 1) - os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return max(1, threads)
    return max(1, min(threads, int(free + 0.5)))


def finetune(
    cases: list[LocalCase],
    settings: Settings,
    *,
    out_dir: Path | None = None,
    epochs: int = 6,
    lr: float = 1e-3,
    lora_r: int = 8,
    lora_layers: int | None = 3,
    distill_weight: float = 2.0,
    activate: bool = True,
    threads: int = 2,
    weights: Path | None = None,
    card: Path | None = None,
    facts_reader: Any = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Train a site adapter and activate it only when it beats the base model on held-back cases.

    The work is arranged for a small CPU budget: the frozen image encoder's tokens are computed once, the
    notes are tokenized once and batched by length, the base model's text states (for its held-back score
    and the distillation targets) come from one pass, and LoRA adapts only the last ``lora_layers``
    layers of the backbone, so back-propagation stops there.

    Parameters
    ----------
    cases
        Local cases.
    settings
        Current settings (backbone folder; ``adapter_dir`` is replaced when activating).
    out_dir
        Adapter folder (default: ``<data folder>/adapters/<UTC time>``).
    epochs, lr, lora_r, distill_weight
        Training settings (LoRA rank; weight of the distillation towards the base model).
    lora_layers
        Number of last backbone layers with LoRA (``None``: all).
    activate
        Activate (save in the settings) when better.
    threads
        Most torch threads to use (fewer when other processes keep cores busy: :func:`usable_threads`).
    weights, card
        Base fused weights (default: the bundled ones).
    facts_reader
        Reads a note's patient facts in context (``{name: value}``), as ``analyze`` gives them to the
        model (injected by the CLI); ``None``: the lexicon's cues only.

    Returns
    -------
    dict
        ``before``/``after`` (held-back top-1 and NLL), ``activated``, ``reason``, ``adapter_dir``,
        ``n_train``, ``n_held_back``, ``seconds`` (wall), ``cpu_seconds`` (this process), ``threads``
        (used), ``timings`` (wall seconds per stage).

    Raises
    ------
    ModelError
        Too few cases or unusable models.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812
    from safetensors.torch import save_file

    from radiology_app.diagnosis.api import load_fused_net
    from radiology_app.diagnosis.text import load_backbone
    from radiology_app.diagnosis.train import fused_loss
    from radiology_app.diagnosis.weights import FUSED_CARD, FUSED_WEIGHTS, sha256_file

    if len(cases) < 10:
        raise ModelError(f"fine-tuning needs at least 10 cases, got {len(cases)}")
    t0, c0 = time.monotonic(), time.process_time()
    timings: dict[str, float] = {}

    def lap(name: str, since: list[float]) -> None:
        now = time.monotonic()
        timings[name] = round(now - since[0], 2)
        since[0] = now

    mark = [t0]
    n_threads = usable_threads(threads)
    torch.set_num_threads(n_threads)
    torch.manual_seed(0)
    base_net, meta, base_sha = load_fused_net(weights or FUSED_WEIGHTS, card or FUSED_CARD)
    net, _, _ = load_fused_net(weights or FUSED_WEIGHTS, card or FUSED_CARD)
    base_bb = load_backbone(settings.text_backbone_dir or None)
    lora: dict[str, Any] = {"r": lora_r, "lora_alpha": 2 * lora_r, "lora_dropout": 0.05}
    if lora_layers is not None:
        lora["top_layers"] = lora_layers
    bb = load_backbone(settings.text_backbone_dir or None, trainable_lora=lora)
    lap("load_models", mark)
    st = _static_inputs(cases, facts_reader)
    held = _split(st["labels"])
    tr_idx, ho_idx = np.flatnonzero(~held), np.flatnonzero(held)
    img_tokens = _image_tokens(base_net, st)  # same frozen encoder weights in net
    tokens = bb.tokenize([c.note for c in cases])
    lengths = tokens["attention_mask"].sum(1).numpy().astype(np.int64)
    lap("image_tokens_and_tokenize", mark)
    all_idx = np.arange(len(cases))
    base_states = _text_states(base_bb, tokens, all_idx, lengths)  # base model: teacher and score
    lap("base_text_states", mark)
    if settings.adapter_dir:  # the model to beat is the one in use
        from radiology_app.diagnosis.api import load_adapter_heads

        cur_dir = Path(settings.adapter_dir)
        cur_net, _, _ = load_adapter_heads(cur_dir, meta, base_sha)
        cur_bb = load_backbone(settings.text_backbone_dir or None, cur_dir / "lora")
        before = _score(cur_net, cur_bb, st, cases, ho_idx, tokens=tokens)
    else:
        before = _score(
            base_net,
            base_bb,
            st,
            cases,
            ho_idx,
            img_tokens=img_tokens,
            text_states=(base_states[0][ho_idx], base_states[1][ho_idx]),
        )
    # Teacher predictions on the training cases (distillation keeps the original behaviour).
    with torch.no_grad():
        base_net.eval()
        teacher = torch.cat(
            [
                _forward(
                    base_net,
                    base_bb,
                    st,
                    cases,
                    tr_idx[s : s + 64],
                    False,
                    img_tokens=img_tokens,
                    text_states=(base_states[0][tr_idx[s : s + 64]], base_states[1][tr_idx[s : s + 64]]),
                )["log_probs"]
                for s in range(0, len(tr_idx), 64)
            ]
        )
    lap("before_and_teacher", mark)
    for p in net.image.parameters():
        p.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad] + [
        p for p in bb.model.parameters() if p.requires_grad
    ]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    bs = 16
    steps = max(1, int(np.ceil(len(tr_idx) / bs)))
    pos = {int(i): k for k, i in enumerate(tr_idx)}
    for ep in range(epochs):
        net.train()
        net.image.eval()
        bb.model.train()
        for s, idx in enumerate(_batches(rng.permutation(tr_idx), lengths, bs, rng)):
            check_cancel(cancel)
            if len(idx) < 2:
                continue
            out = _forward(net, bb, st, cases, idx, True, img_tokens=img_tokens, tokens=tokens)
            y = torch.from_numpy(st["labels"][idx])
            t = teacher[[pos[int(i)] for i in idx]]
            loss = fused_loss(out, y) + distill_weight * F.kl_div(
                out["log_mix"], t, log_target=True, reduction="batchmean"
            )
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(params, 2.0)
            opt.step()
            report(on_progress, ep * steps + s + 1, epochs * steps, "steps", f"epoch {ep + 1}")
    lap("training", mark)
    bb.model.eval()
    net.eval()
    after = _score(net, bb, st, cases, ho_idx, img_tokens=img_tokens, tokens=tokens)
    lap("after", mark)
    better = after["top1"] > before["top1"] or (
        after["top1"] == before["top1"] and after["nll"] < before["nll"]
    )
    adapter_out = out_dir or app_paths().adapters / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    adapter_out.mkdir(parents=True, exist_ok=True)
    bb.model.save_pretrained(str(adapter_out / "lora"))
    save_file(
        {k: v.detach().contiguous() for k, v in net.state_dict().items()},
        str(adapter_out / "fused.safetensors"),
        metadata={"config": json.dumps({"net": net.cfg.to_dict(), "base_sha256": base_sha})},
    )
    info = {
        "version": adapter_out.name,
        "sha256": sha256_file(adapter_out / "fused.safetensors"),
        "base_sha256": base_sha,
        "backbone": Path(bb.directory).name,
        "before": before,
        "after": after,
        "n_train": len(tr_idx),
        "n_held_back": len(ho_idx),
        "epochs": epochs,
        "lora_r": lora_r,
        "lora_layers": lora_layers,
    }
    (adapter_out / "adapter.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    if not better:
        reason = (
            f"not activated: held-back top-1 {after['top1']:.3f} is not better than the current model's "
            f"{before['top1']:.3f}"
        )
    elif not activate:
        reason = "better, but activation was not requested"
    else:
        save_settings(settings.replace(adapter_dir=str(adapter_out)))
        reason = f"activated: held-back top-1 {before['top1']:.3f} -> {after['top1']:.3f}"
    log.info("finetune: %s", reason)
    return {
        "before": before,
        "after": after,
        "activated": bool(better and activate),
        "reason": reason,
        "adapter_dir": str(adapter_out),
        "n_train": len(tr_idx),
        "n_held_back": len(ho_idx),
        "seconds": time.monotonic() - t0,
        "cpu_seconds": time.process_time() - c0,
        "threads": n_threads,
        "timings": timings,
        "lora_layers": lora_layers,
        "meta_version": meta.get("version"),
    }


def finetune_from_csv(path: Path, settings: Settings, **kw: Any) -> dict[str, Any]:
    """Read ``CASES.csv`` and run :func:`finetune`."""
    cases = read_cases_csv(path, on_progress=None, cancel=kw.get("cancel"))
    return finetune(cases, settings, **kw)
