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


def evaluate_arrays(net: Any, arrays: Any) -> dict[str, Any]:
    """Metrics of a network on cached cases under the fused and single-modality conditions."""
    from radiology_app.diagnosis.train import predict_arrays

    labels = arrays.labels
    probs, w = predict_arrays(net, arrays)
    result = classification_report(probs, labels)
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


def measure_latency(settings: Settings, arrays: Any, n: int = 20, **load_kw: Any) -> dict[str, float | None]:
    """Median milliseconds per nodule (one nodule per call, saliency off) on each backend."""
    from radiology_app.core.errors import ModelError
    from radiology_app.diagnosis.api import DiagnosisInput, load_diagnosis_model

    inputs = [
        DiagnosisInput(
            arrays.hu[i].astype(np.float32),
            arrays.mask[i],
            note_text=arrays.notes[i],
            slice_thickness_mm=float(arrays.thickness[i]),
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
        cache, "eval", cases, seed, backbone, domain=domain, on_progress=on_progress, cancel=cancel
    )
    if adapter is not None:  # same rendered crops; notes re-encoded by the adapted backbone
        from radiology_app.diagnosis.train import encode_notes

        adapted = load_backbone(settings.text_backbone_dir or None, adapter / "lora")
        arrays.states, arrays.tmask = encode_notes(adapted, arrays.notes)
    check_cancel(cancel)
    result = evaluate_arrays(net, arrays)
    result.update(
        {
            "cases": cases,
            "seed": seed,
            "domain": domain,
            "weights_sha256": sha,
            "adapter": str(adapter) if adapter else None,
        }
    )
    result["latency_ms_per_nodule"] = (
        measure_latency(settings, arrays, weights=weights, card=card)
        if latency
        else {"pytorch": None, "onnxruntime": None}
    )
    report(on_progress, cases, cases, "cases", "done")
    return result
