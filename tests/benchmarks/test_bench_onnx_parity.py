"""Evaluation: the ONNX Runtime backend of the nodule detector against PyTorch, on full-size cases.

On the demo study and on the first ``BENCH_PARITY_CASES`` (default 5) ``evaluate-seg`` phantoms, both
backends of the shipped models must find the same nodules, each outline with Dice >= 0.99 against
PyTorch's, detection scores within 1e-3 and the probability map within 1e-3 everywhere. Run with
``make benchmarks`` (prints the figures).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from segmentation.inference import DEFAULT_WEIGHTS

CASES = int(os.environ.get("BENCH_PARITY_CASES", "5"))


@pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="nodule U-Net weights not shipped")
def test_onnx_runtime_finds_what_pytorch_finds(tmp_path: Path) -> None:
    from segmentation.evaluate import EVAL_SEED
    from segmentation.inference import load_model, segment_nodules
    from segmentation.phantom.chest import demo_phantom, make_chest_phantom

    torch_seg = load_model()
    ort_seg = load_model(backend="onnxruntime", onnx_cache=tmp_path)
    cases = [("demo", demo_phantom)] + [
        (f"evaluate-seg {EVAL_SEED + i}", lambda s=EVAL_SEED + i: make_chest_phantom(s)) for i in range(CASES)
    ]
    lines, worst_dice, worst_prob, worst_score = [], 1.0, 0.0, 0.0
    for name, make in cases:
        ph = make()
        a = segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=torch_seg, return_probability=True)
        b = segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=ort_seg, return_probability=True)
        assert a.probability is not None and b.probability is not None
        prob = float(np.abs(a.probability.astype(np.float32) - b.probability.astype(np.float32)).max())
        assert len(a.nodules) == len(b.nodules), name
        dices, scores = [], []
        for na in a.nodules:
            ma = a.labels == na.label_id
            nb = max(b.nodules, key=lambda n: int((b.labels[ma] == n.label_id).sum()))
            mb = b.labels == nb.label_id
            dices.append(2.0 * float((ma & mb).sum()) / float(ma.sum() + mb.sum()))
            scores.append(abs(na.score - nb.score))
        d, s = min(dices, default=1.0), max(scores, default=0.0)
        worst_dice, worst_prob, worst_score = min(worst_dice, d), max(worst_prob, prob), max(worst_score, s)
        lines.append(
            f"{name:20s}: {len(a.nodules)} nodules both; min Dice {d:.4f}; max |score diff| {s:.2e}; "
            f"max |probability diff| {prob:.2e}"
        )
    print("\nONNX Runtime vs PyTorch (shipped U-Net and classifier):\n" + "\n".join(lines))
    assert worst_dice >= 0.99 and worst_score <= 1e-3 and worst_prob <= 1e-3
