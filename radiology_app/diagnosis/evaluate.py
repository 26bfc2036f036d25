"""Evaluation of the fused model on held-out synthetic cases (the ``evaluate`` command). Imports torch.

Conditions measured on the same cases: fused (image + note), image only (note emptied), text only (crop
replaced by nodule-free lung background at maximal noise), degraded image (heavy noise, 3-5 mm slices), and
empty note; plus latency per nodule through :class:`~radiology_app.diagnosis.api.DiagnosisModel` on both
backends.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from radiology_app.core.config import Settings, app_paths
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.diagnosis.metrics import classification_report, top_k


def _subset_report(probs: Any, labels: Any, sel: Any) -> dict[str, Any]:
    from radiology_app.diagnosis.classes import CLASS_NAMES

    n = int(sel.sum())
    out: dict[str, Any] = {"n": n, "top1": top_k(probs[sel], labels[sel], 1) if n else None}
    per = {}
    for k, name in enumerate(CLASS_NAMES):
        m = sel & (labels == k)
        if m.any():
            per[name] = {"n": int(m.sum()), "recall": float((probs[m].argmax(1) == k).mean())}
    out["per_class_recall"] = per
    return out


def evaluate_arrays(net: Any, arrays: Any) -> dict[str, Any]:
    """Metrics of a network on cached cases under the fused and single-modality conditions.

    The fused condition gives the model the notes' structured facts (as ``analyze`` does) when the
    arrays were read with a facts reader; ``top1_lexicon_cues`` is the same with the lexicon's cues.
    ``by_renderer`` splits the fused top-1 by the renderer of the crop.
    """
    from radiology_app.diagnosis.train import predict_arrays

    labels = arrays.labels
    probs, w = predict_arrays(net, arrays)
    result = classification_report(probs, labels)
    p_lex, _ = predict_arrays(net, arrays, lexicon_cues=True)
    result["top1_lexicon_cues"] = top_k(p_lex, labels, 1)
    renderer = np.asarray(arrays.renderer)
    result["by_renderer"] = {
        "diagnosis_phantom": _subset_report(probs, labels, renderer == 0),
        "segmentation_phantom": _subset_report(probs, labels, renderer == 1),
    }
    result["by_renderer"]["segmentation_phantom"]["unet_missed"] = int(
        ((renderer == 1) & (np.asarray(arrays.unet_found) == 0)).sum()
    )
    p_img, w_img = predict_arrays(net, arrays, force_drop_note=True)
    p_txt, w_txt = predict_arrays(net, arrays, drop_image=True)
    p_deg, w_deg = predict_arrays(net, arrays, force_degrade=True)
    fused, img_only, txt_only = top_k(probs, labels, 1), top_k(p_img, labels, 1), top_k(p_txt, labels, 1)
    has_note = arrays.tmask.any(1)
    result["modality"] = {
        "router_mean": {
            "image": float(w[:, 0].mean()),
            "text": float(w[:, 1].mean()),
            "joint": float(w[:, 2].mean()),
        },
        "top1_image_only": img_only,
        "top1_text_only": txt_only,
        "top1_fused": fused,
        "fusion_gain_points": 100.0 * (fused - max(img_only, txt_only)),
        "router_mean_degraded_image": {
            "image": float(w_deg[:, 0].mean()),
            "text": float(w_deg[:, 1].mean()),
            "joint": float(w_deg[:, 2].mean()),
        },
        "top1_degraded_image": top_k(p_deg, labels, 1),
        "router_mean_empty_note": {
            "image": float(w_img[:, 0].mean()),
            "text": float(w_img[:, 1].mean()),
            "joint": float(w_img[:, 2].mean()),
        },
        "router_mean_text_only": {
            "image": float(w_txt[:, 0].mean()),
            "text": float(w_txt[:, 1].mean()),
            "joint": float(w_txt[:, 2].mean()),
        },
        "text_weight_shift_degraded_points": 100.0 * float(w_deg[has_note, 1].mean() - w[has_note, 1].mean()),
    }
    return result


def counterfactual_report(
    net: Any, arrays: Any, cases: list[Any], backbone: Any, facts_reader: Any = None
) -> dict[str, Any]:
    """What one edit of the note does to the model's answer on the same held-out cases (same crop).

    * ``cancer_to_relative``: metastases whose personal cancer history is moved to a relative (the
      generator no longer calls them metastasis): share predicted metastasis before and after;
    * ``relative_added`` / ``suspected_added``: a relative's cancer or a suspected diagnosis added to
      non-metastasis cases: share predicted metastasis before and after, and share whose top class
      changed;
    * ``cancer_added``: a personal cancer history added to non-metastasis cases with a definitive image
      sign (the label stays): top-1 before and after.
    """
    from radiology_app.diagnosis.classes import CLASS_NAMES
    from radiology_app.diagnosis.synthetic import definitive_image_sign, edit_case
    from radiology_app.diagnosis.train import _case_arrays, encode_notes, predict_arrays

    met = CLASS_NAMES.index("metastasis")
    probs, _ = predict_arrays(net, arrays)
    top = probs.argmax(1)
    out: dict[str, Any] = {}
    rng = np.random.default_rng(9)

    def pick_case(variant: str, c: Any) -> bool:
        if variant == "cancer_to_relative":
            return bool(c.label == met)
        if variant == "cancer_added":
            return bool(c.label != met and definitive_image_sign(c.diagnosis, c.phenotype))
        return bool(c.label != met)

    plans = ("cancer_to_relative", "relative_added", "suspected_added", "cancer_added")
    for variant in plans:
        idx, edited = [], []
        for i, c in enumerate(cases):
            if pick_case(variant, c):
                e = edit_case(c, variant, rng)
                if e is not None:
                    idx.append(i)
                    edited.append(e)
        if not idx:
            continue
        ix = np.asarray(idx)
        notes = [e.note for e in edited]
        states, tmask = encode_notes(backbone, notes)
        sub = _case_arrays(
            edited,
            arrays.hu[ix],
            arrays.mask[ix],
            arrays.noise_est[ix],
            states,
            tmask,
            notes,
            np.asarray(arrays.unet_found)[ix],
            facts_reader,
        )
        p2, _ = predict_arrays(net, sub)
        t2 = p2.argmax(1)
        labels = arrays.labels[ix]
        out[variant] = {
            "n": len(idx),
            "predicted_metastasis_before": float((top[ix] == met).mean()),
            "predicted_metastasis_after": float((t2 == met).mean()),
            "top1_before": float((top[ix] == labels).mean()),
            "top1_after": float((t2 == labels).mean()),
            "top_class_changed": float((t2 != top[ix]).mean()),
        }
    return out


def measure_latency(
    settings: Settings, arrays: Any, n: int = 20, facts_reader: Any = None, **load_kw: Any
) -> dict[str, float | None]:
    """Median milliseconds per nodule (one nodule per call, saliency off) on each backend."""
    from radiology_app.core.errors import ModelError
    from radiology_app.diagnosis.api import DiagnosisInput, load_diagnosis_model

    inputs = [
        DiagnosisInput(
            arrays.hu[i].astype(np.float32),
            arrays.mask[i],
            note_text=arrays.notes[i],
            slice_thickness_mm=float(arrays.thickness[i]),
            facts=facts_reader(arrays.notes[i]) if facts_reader is not None else None,
        )
        for i in range(min(n, len(arrays)))
    ]
    out: dict[str, float | None] = {}
    for backend in ("pytorch", "onnxruntime"):
        try:
            model = load_diagnosis_model(
                settings.replace(inference_backend=backend), saliency=False, **load_kw
            )
        except ModelError:
            out[backend] = None
            continue
        model.predict(inputs[:2])  # warm-up
        times = []
        for inp in inputs:
            t = time.perf_counter()
            model.predict([inp])
            times.append(1000.0 * (time.perf_counter() - t))
        out[backend] = float(np.median(times))
    return out


def run_evaluation(
    settings: Settings,
    *,
    cases: int = 900,
    seed: int | None = None,
    weights: Path | None = None,
    card: Path | None = None,
    domain: str = "base",
    cache_dir: Path | None = None,
    latency: bool = True,
    threads: int = 1,
    facts_reader: Any = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Evaluate the configured fused model (with its adapter, if any) on held-out synthetic cases.

    Parameters
    ----------
    settings
        Backbone, adapter and backend settings.
    cases
        Number of cases (balanced over the classes).
    seed
        Case seed; default the evaluation seed that training never used.
    weights, card
        Override the bundled weights (tests).
    domain
        ``"base"`` or ``"site_b"``.
    cache_dir
        Where rendered cases are cached (default: the data folder's ``cache/diagnosis``).
    facts_reader
        Reads a note's patient facts in context (``{name: value}``), as ``analyze`` passes them to the
        model; injected by the CLI (the notes package's extractor). ``None``: the lexicon's cues only.

    Returns
    -------
    dict
        The ``evaluate`` JSON (see the CLI contract).
    """
    import torch

    from radiology_app.diagnosis.api import load_adapter_heads, load_fused_net
    from radiology_app.diagnosis.text import load_backbone
    from radiology_app.diagnosis.train import EVAL_SEED, SITE_B_EVAL_SEED, synthetic_arrays
    from radiology_app.diagnosis.weights import FUSED_CARD, FUSED_WEIGHTS

    torch.set_num_threads(threads)
    seed = seed if seed is not None else (EVAL_SEED if domain == "base" else SITE_B_EVAL_SEED)
    weights, card = weights or FUSED_WEIGHTS, card or FUSED_CARD
    net, meta, sha = load_fused_net(weights, card)
    adapter = Path(settings.adapter_dir) if settings.adapter_dir else None
    if adapter is not None:
        net, _, _ = load_adapter_heads(adapter, meta, sha)
    backbone = load_backbone(settings.text_backbone_dir or None)
    cache = cache_dir or app_paths().home / "cache" / "diagnosis"
    check_cancel(cancel)
    arrays = synthetic_arrays(
        cache,
        "eval",
        cases,
        seed,
        backbone,
        domain=domain,
        facts_reader=facts_reader,
        on_progress=on_progress,
        cancel=cancel,
    )
    if adapter is not None:  # same rendered crops; notes re-encoded by the adapted backbone
        from radiology_app.diagnosis.train import encode_notes

        adapted = load_backbone(settings.text_backbone_dir or None, adapter / "lora")
        arrays.states, arrays.tmask = encode_notes(adapted, arrays.notes)
    check_cancel(cancel)
    result = evaluate_arrays(net, arrays)
    from radiology_app.diagnosis.synthetic import GENERATOR_VERSION, generate_cases

    if domain == "base" and GENERATOR_VERSION >= 4 and adapter is None:
        gen = generate_cases(cases, seed, domain=domain)
        if [c.note for c in gen] == arrays.notes and [c.label for c in gen] == [
            int(v) for v in arrays.labels
        ]:
            result["counterfactual"] = counterfactual_report(net, arrays, gen, backbone, facts_reader)
    result.update(
        {
            "cases": cases,
            "seed": seed,
            "domain": domain,
            "weights_sha256": sha,
            "adapter": str(adapter) if adapter else None,
            "structured_facts": facts_reader is not None,
        }
    )
    result["latency_ms_per_nodule"] = (
        measure_latency(settings, arrays, facts_reader=facts_reader, weights=weights, card=card)
        if latency
        else {"pytorch": None, "onnxruntime": None}
    )
    report(on_progress, cases, cases, "cases", "done")
    return result
