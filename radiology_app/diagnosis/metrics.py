"""Classification metrics (numpy + scikit-learn; no torch)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

from radiology_app.diagnosis.classes import CLASS_NAMES, MALIGNANT_MASK


def top_k(probs: npt.NDArray[np.floating], labels: npt.NDArray[np.integer], k: int) -> float:
    """Share of cases whose label is among the ``k`` most probable classes."""
    if len(labels) == 0:
        return float("nan")
    top = np.argsort(-probs, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def macro_auc(probs: npt.NDArray[np.floating], labels: npt.NDArray[np.integer]) -> float:
    """Mean one-vs-rest ROC AUC over the classes present (with both positives and negatives)."""
    aucs = []
    for c in range(probs.shape[1]):
        y = labels == c
        if 0 < y.sum() < len(y):
            aucs.append(roc_auc_score(y, probs[:, c]))
    return float(np.mean(aucs)) if aucs else float("nan")


def expected_calibration_error(
    probs: npt.NDArray[np.floating], labels: npt.NDArray[np.integer], bins: int = 15
) -> float:
    """ECE of the top-1 confidence, equal-width bins."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(conf[sel].mean() - correct[sel].mean())
    return float(ece)


def binary_metrics(
    scores: npt.NDArray[np.floating], positive: npt.NDArray[np.bool_], threshold: float = 0.5
) -> dict[str, float]:
    """AUC, sensitivity and specificity of a score at ``threshold``."""
    pred = scores >= threshold
    pos, neg = positive.sum(), (~positive).sum()
    return {
        "auc": float(roc_auc_score(positive, scores)) if 0 < pos < len(positive) else float("nan"),
        "sensitivity": float((pred & positive).sum() / pos) if pos else float("nan"),
        "specificity": float((~pred & ~positive).sum() / neg) if neg else float("nan"),
    }


def classification_report(probs: npt.NDArray[np.floating], labels: npt.NDArray[np.integer]) -> dict[str, Any]:
    """The ``evaluate`` metrics: top-1/3, macro AUC, malignant sensitivity/specificity, ECE, confusion."""
    mal = probs[:, np.asarray(MALIGNANT_MASK)].sum(1)
    is_mal = np.asarray(MALIGNANT_MASK)[labels]
    b = binary_metrics(mal, is_mal)
    n = len(CLASS_NAMES)
    conf = np.zeros((n, n), dtype=int)
    for t, p in zip(labels, probs.argmax(1), strict=True):
        conf[int(t), int(p)] += 1
    return {
        "top1": top_k(probs, labels, 1),
        "top3": top_k(probs, labels, 3),
        "macro_auc": macro_auc(probs, labels),
        "malignancy_auc": b["auc"],
        "sensitivity_malignant": b["sensitivity"],
        "specificity_malignant": b["specificity"],
        "ece": expected_calibration_error(probs, labels),
        "classes": list(CLASS_NAMES),
        "confusion": conf.tolist(),
    }
