"""Evaluate the nodule segmenter on held-out chest phantoms (seeds the training never used).

Detection: a true nodule is found when a predicted nodule overlaps it. False positives: predicted
nodules that overlap no true nodule. Dice, diameter and volume errors are taken over found nodules;
the reference diameter and volume are measured on the true mask with the same conventions
(:func:`segmentation.measure.measure_nodule`), so they compare segmentation, not phantom geometry.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segmentation.dataset import TRAIN_SEED_BASE
from segmentation.errors import ProgressFn, SegmentationError, check_cancel, report
from segmentation.inference import NoduleSegmenter, load_model, segment_nodules
from segmentation.measure import SPICULATED_FROM, measure_nodule
from segmentation.phantom.chest import ChestPhantom, make_chest_phantom
from segmentation.phantom.nodules import NODULE_KINDS

log = logging.getLogger(__name__)

#: Default first seed of the evaluation phantoms (far from the training seeds).
EVAL_SEED = 7_000_001
#: Size bands (mm, nominal mean diameter): name -> [low, high).
SIZE_BANDS: dict[str, tuple[float, float]] = {
    "3-4": (3.0, 4.0),
    "4-6": (4.0, 6.0),
    "6-8": (6.0, 8.0),
    "8-15": (8.0, 15.0),
    ">=15": (15.0, 1e9),
}
#: Candidates down to this peak probability (or classifier score, with a classifier) are
#: collected for the operating-point table.
CANDIDATE_THRESHOLD = 0.5
CANDIDATE_SCORE = 0.1
#: The training script uses at most this many seeds from TRAIN_SEED_BASE.
TRAIN_SEED_SPAN = 100_000


@dataclass
class NoduleOutcome:
    """One true nodule's outcome."""

    kind: str
    diameter_mm: float
    margin: str
    juxtapleural: bool
    detected: bool
    dice: float | None = None
    diameter_error_mm: float | None = None
    volume_error_pct: float | None = None
    score: float | None = None
    spiculation_score: float | None = None


@dataclass
class EvaluationReport:
    """Metrics of an evaluation run (the ``evaluate-seg`` JSON)."""

    cases: int
    seed: int
    sensitivity_ge_4mm: float | None
    sensitivity_by_size: dict[str, float | None]
    sensitivity_by_type: dict[str, float | None]
    false_positives_per_scan: float
    dice_median: float | None
    median_abs_mean_diameter_error_mm: float | None
    median_volume_error_pct: float | None
    median_signed_volume_error_pct: float | None = None
    nodules: int = 0
    nodules_ge_4mm: int = 0
    counts_by_size: dict[str, int] = field(default_factory=dict)
    counts_by_type: dict[str, int] = field(default_factory=dict)
    sensitivity_by_margin: dict[str, float | None] = field(default_factory=dict)
    called_spiculated_by_margin: dict[str, float | None] = field(default_factory=dict)
    operating_points: list[dict[str, float | None]] = field(default_factory=list)
    score_threshold: float = 0.0
    score_source: str = "network peak probability"
    seconds_per_case: float = 0.0
    model_sha256: str = ""
    spacings_mm: list[list[float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (contract keys first)."""
        from dataclasses import asdict

        return asdict(self)


def _score_source(seg: NoduleSegmenter) -> str:
    if seg.classifier is None:
        return "network peak probability"
    return "candidate classifier probability (at least the network's peak for a large, confident component)"


def _rate(hits: list[bool]) -> float | None:
    return round(float(np.mean(hits)), 4) if hits else None


def evaluate_case(ph: ChestPhantom, segmenter: NoduleSegmenter) -> tuple[list[NoduleOutcome], list[float]]:
    """Segment one phantom and compare with its truth.

    Returns
    -------
    tuple
        The outcome of each true nodule, and the detection score of each false positive.
    """
    # collect candidates down to a low score so operating points can be computed; the headline
    # metrics apply the segmenter's own threshold afterwards
    clf = segmenter.classifier if segmenter is not None else None
    configured = segmenter.min_max_probability if segmenter is not None else None
    configured_clf = clf.threshold if clf is not None else None
    try:
        if segmenter is not None:
            segmenter.min_max_probability = min(CANDIDATE_THRESHOLD, segmenter.min_max_probability)
        if clf is not None and configured_clf is not None:
            clf.threshold = min(CANDIDATE_SCORE, configured_clf)
        res = segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=segmenter)
    finally:
        if segmenter is not None and configured is not None:
            segmenter.min_max_probability = configured
        if clf is not None and configured_clf is not None:
            clf.threshold = configured_clf
    pred = res.labels
    truth = ph.labels
    sp = ph.spacing_zyx_mm
    score = {n.label_id: n.score for n in res.nodules}
    spiculation = {n.label_id: n.measurement.spiculation_score for n in res.nodules}
    matched_pred: set[int] = set()
    outcomes: list[NoduleOutcome] = []
    for t in ph.nodules:
        g = truth == t.label_id
        ids = np.unique(pred[g])
        ids = ids[ids > 0]
        o = NoduleOutcome(
            kind=t.kind,
            diameter_mm=t.mean_diameter_mm,
            margin=t.spec.margin,
            juxtapleural=t.spec.juxtapleural,
            detected=bool(ids.size),
        )
        if ids.size:
            matched_pred.update(int(i) for i in ids)
            p = np.isin(pred, ids)
            # compare within the union's bounding box (fast)
            both = np.argwhere(g | p)
            lo = np.maximum(both.min(axis=0) - 3, 0)
            hi = both.max(axis=0) + 4
            sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
            gs, ps = g[sl], p[sl]
            o.dice = round(2.0 * float((gs & ps).sum()) / float(gs.sum() + ps.sum()), 4)
            mt = measure_nodule(ph.hu[sl], gs, sp)
            mp = measure_nodule(ph.hu[sl], ps, sp)
            o.diameter_error_mm = round(abs(mp.mean_diameter_mm - mt.mean_diameter_mm), 2)
            o.volume_error_pct = round(100.0 * (mp.volume_mm3 - mt.volume_mm3) / max(mt.volume_mm3, 1e-6), 2)
            o.score = max(score.get(int(i), 0.0) for i in ids)
            o.spiculation_score = max(spiculation.get(int(i), 0.0) for i in ids)
        outcomes.append(o)
    fps = [n.score for n in res.nodules if n.label_id not in matched_pred]
    return outcomes, fps


def evaluate(
    *,
    cases: int = 20,
    seed: int = EVAL_SEED,
    segmenter: NoduleSegmenter | None = None,
    phantom_kwargs: dict[str, Any] | None = None,
    on_progress: ProgressFn | None = None,
    cancel: object | None = None,
    on_case: Callable[[EvaluationReport], None] | None = None,
) -> EvaluationReport:
    """Run the held-out evaluation.

    Parameters
    ----------
    cases
        Number of phantoms (realistic size: 512 x 512, 270-320 mm of z, 1-5 mm slices).
    seed
        Seed of the first phantom; phantom ``i`` uses ``seed + i``. Seeds in the training range
        are refused.
    segmenter
        The network; the shipped one when ``None``.
    phantom_kwargs
        Extra arguments for :func:`~segmentation.phantom.chest.make_chest_phantom` (tests use
        small shapes).
    on_progress, cancel
        Progress ``(case, cases, message)`` and cooperative cancellation.
    on_case
        Called with the running metrics after each phantom (for long runs).

    Returns
    -------
    EvaluationReport
        The metrics.

    Raises
    ------
    SegmentationError
        When the seeds overlap the training seeds or ``cases`` < 1.
    """
    if cases < 1:
        raise SegmentationError(f"cases must be at least 1, not {cases}")
    if seed < TRAIN_SEED_BASE + TRAIN_SEED_SPAN and seed + cases > TRAIN_SEED_BASE:
        raise SegmentationError(
            f"seeds {seed}..{seed + cases - 1} overlap the training seeds "
            f"{TRAIN_SEED_BASE}..{TRAIN_SEED_BASE + TRAIN_SEED_SPAN - 1}"
        )
    seg = segmenter if segmenter is not None else load_model()
    kw = dict(phantom_kwargs or {})
    outcomes: list[NoduleOutcome] = []
    fps: list[float] = []
    spacings: list[list[float]] = []
    t0 = time.monotonic()

    def current(done: int) -> EvaluationReport:
        return summarize(
            outcomes,
            fps,
            done,
            seed,
            seconds=time.monotonic() - t0,
            model_sha256=seg.sha256,
            spacings=spacings,
            threshold=seg.detection_threshold,
            score_source=_score_source(seg),
        )

    for i in range(cases):
        check_cancel(cancel)
        report(on_progress, i, cases, f"phantom {i + 1}/{cases}")
        ph = make_chest_phantom(seed + i, **kw)
        spacings.append([float(s) for s in ph.spacing_zyx_mm])
        o, f = evaluate_case(ph, seg)
        outcomes.extend(o)
        fps.extend(f)
        log.info(
            "case %d: %d/%d found, %d candidates unmatched", i, sum(x.detected for x in o), len(o), len(f)
        )
        if on_case is not None:
            on_case(current(i + 1))
    report(on_progress, cases, cases, "done")
    return current(cases)


def summarize(
    outcomes: Sequence[NoduleOutcome],
    fps: Sequence[float],
    cases: int,
    seed: int,
    *,
    seconds: float = 0.0,
    model_sha256: str = "",
    spacings: Sequence[Sequence[float]] = (),
    threshold: float = 0.0,
    score_source: str = "network peak probability",
) -> EvaluationReport:
    """Metrics over the outcomes of ``cases`` phantoms (see :func:`evaluate`).

    A nodule counts as found, and a false positive counts, only when its detection score is at
    least ``threshold`` (the segmenter's operating threshold).
    """
    raw_outcomes = list(outcomes)
    raw_fps = list(fps)
    outcomes = [
        o if (o.score or 0.0) >= threshold else dataclasses.replace(o, detected=False) for o in outcomes
    ]
    fps = [f for f in fps if f >= threshold]
    ge4 = [o.detected for o in outcomes if o.diameter_mm >= 4.0]
    by_size: dict[str, float | None] = {}
    counts_size: dict[str, int] = {}
    for band, (lo, hi) in SIZE_BANDS.items():
        hits = [o.detected for o in outcomes if lo <= o.diameter_mm < hi]
        by_size[band] = _rate(hits)
        counts_size[band] = len(hits)
    by_type: dict[str, float | None] = {}
    counts_type: dict[str, int] = {}
    for kind in NODULE_KINDS:
        hits = [o.detected for o in outcomes if o.kind == kind]
        by_type[kind] = _rate(hits)
        counts_type[kind] = len(hits)
    by_margin = {
        m: _rate([o.detected for o in outcomes if o.margin == m])
        for m in ("smooth", "lobulated", "spiculated")
    }
    by_margin["juxtapleural"] = _rate([o.detected for o in outcomes if o.juxtapleural])
    found = [o for o in outcomes if o.detected]
    # of the found nodules of each true margin, the share the measurement calls spiculated
    called_spiculated = {
        m: _rate([(o.spiculation_score or 0.0) >= SPICULATED_FROM for o in found if o.margin == m])
        for m in ("smooth", "lobulated", "spiculated")
    }
    dices = [o.dice for o in found if o.dice is not None]
    derr = [o.diameter_error_mm for o in found if o.diameter_error_mm is not None]
    verr = [o.volume_error_pct for o in found if o.volume_error_pct is not None]
    ops: list[dict[str, float | None]] = []
    for thr in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98):
        hits = [o.detected and (o.score or 0.0) >= thr for o in raw_outcomes if o.diameter_mm >= 4.0]
        ops.append(
            {
                "min_score": thr,
                "sensitivity_ge_4mm": _rate(hits),
                "false_positives_per_scan": round(sum(1 for f in raw_fps if f >= thr) / cases, 3),
            }
        )
    return EvaluationReport(
        cases=cases,
        seed=seed,
        sensitivity_ge_4mm=_rate(ge4),
        sensitivity_by_size=by_size,
        sensitivity_by_type=by_type,
        false_positives_per_scan=round(len(fps) / cases, 3),
        dice_median=round(float(np.median(dices)), 4) if dices else None,
        median_abs_mean_diameter_error_mm=round(float(np.median(derr)), 3) if derr else None,
        median_volume_error_pct=round(float(np.median(np.abs(verr))), 2) if verr else None,
        median_signed_volume_error_pct=round(float(np.median(verr)), 2) if verr else None,
        nodules=len(outcomes),
        nodules_ge_4mm=len(ge4),
        counts_by_size=counts_size,
        counts_by_type=counts_type,
        sensitivity_by_margin=by_margin,
        called_spiculated_by_margin=called_spiculated,
        operating_points=ops,
        seconds_per_case=round(seconds / max(cases, 1), 1),
        score_threshold=threshold,
        score_source=score_source,
        model_sha256=model_sha256,
        spacings_mm=[list(map(float, x)) for x in spacings],
    )
