"""Reconcile the fused model's differential with definitive image signs, the patient's history and Brock.

The fused network reads the crop and the note. What it returns is then made clinically coherent here, by
explicit, reviewable rules from the clinical reference (section 7) and Lung-RADS v2022, each leaving a
reason for the clinician:

1. **Known primary.** Metastasis needs an affirmed personal cancer history. Without one it is held at a
   small prior (:data:`METASTASIS_PRIOR`), and in the end at that share of the malignant probability (a
   metastasis from an unknown primary is a rare first sign); with one, its odds are raised
   :data:`KNOWN_PRIMARY_LR`-fold.
2. **Malignancy anchored on Brock.** Brock (validated on real screening cohorts) is the pre-test
   probability. Two AI readings update its odds: the 2-D branch trained on real LIDC crops by its full
   log-odds shift from its (balanced) training prior, which matches its measured likelihood ratios
   (about x5 when positive, /4 when negative), and the fused model, measured only on synthetic cases, by
   half of its shift. Together they move Brock's odds at most :data:`MAX_AI_ODDS_RATIO`-fold either way;
   where they would have moved them further, the disagreement is stated. The malignant classes then share
   the anchored probability in the model's proportions, the benign classes the rest. Brock does not
   apply to a patient with a known cancer (its cohorts had none), nor without age and sex: the fused
   model's malignancy is then the pre-test probability, updated by the LIDC branch.
3. **Appearance.** A subsolid nodule (ground glass or part solid) is in the adenocarcinoma spectrum or
   infection ("virtually all subsolid cancers are adenocarcinomas"): within the malignant and the benign
   share, the classes solid by nature (squamous, small cell, carcinoid, granuloma, hamartoma, lymph node)
   keep at most 1 % each, adenocarcinoma and infection take the rest. A spiculated nodule is a primary
   lung cancer or inflammatory: the classes the table gives smooth margins (lymph node, hamartoma,
   granuloma, carcinoid) keep at most 1 % each, and with an irregular margin at most
   :data:`IRREGULAR_SMOOTH_SHARE` each; an irregular nodule (but one strand on a lymph node's shape and
   place is its septal line), or one over 12 mm, is not an intrapulmonary lymph node (sharp, smooth
   margin; usually <= 10-12 mm); away from the fissures and the pleura a lymph node keeps at most
   :data:`OFF_FISSURE_LYMPH_NODE_SHARE` of the benign share, so it does not lead. Small cell
   carcinoma, a central mass with adenopathy that is rarely a solitary peripheral nodule, keeps at most
   1 % of the malignant share of a solid nodule up to 30 mm. For a
   subsolid nodule the AI readings, which learnt malignancy from mostly solid nodules, may raise Brock
   but not lower it.
4. **Definitive benign signs** (last, so nothing undoes them): a benign calcification pattern or
   macroscopic fat makes a benign class lead (hamartoma for fat or popcorn calcification, granuloma
   otherwise) and holds malignancy at :data:`BENIGN_SIGN_MALIGNANCY` whatever the note says; the
   perifissural pattern makes intrapulmonary lymph node lead with malignancy held at
   :data:`PERIFISSURAL_MALIGNANCY` (not when the patient has a known primary: "caution with known
   extrapulmonary cancer"); the same shape and place at 10-12 mm, over Lung-RADS's limit but within a
   lymph node's size, makes the lymph node lead the benign causes without holding malignancy down.

Pure functions of plain values; no model is loaded here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from radiology_app.core.findings import BENIGN_CALCIFICATIONS
from radiology_app.diagnosis.classes import CLASS_NAMES, MALIGNANT_CLASSES

__all__ = [
    "ImageSigns",
    "Reconciled",
    "reconcile",
]

#: Metastasis probability without an affirmed personal cancer history (finally: its share of the
#: malignant probability).
METASTASIS_PRIOR = 0.02
#: Odds ratio for metastasis given an affirmed personal cancer history.
KNOWN_PRIMARY_LR = 5.0
#: Malignancy with a benign calcification pattern or macroscopic fat.
BENIGN_SIGN_MALIGNANCY = 0.03
#: Malignancy with the perifissural pattern.
PERIFISSURAL_MALIGNANCY = 0.05
#: With an irregular margin, each class the table gives smooth margins keeps at most this share of its
#: group (possible, not leading).
IRREGULAR_SMOOTH_SHARE = 0.2
#: Share of its group's probability a class that must lead gets at least.
LEADER_SHARE = 0.7
#: Weight of each AI reading's log-odds shift (the fused model's; the LIDC branch's), and the largest
#: odds ratio by which they move the pre-test probability.
FUSED_EVIDENCE_WEIGHT = 0.5
LIDC_EVIDENCE_WEIGHT = 1.0
MAX_AI_ODDS_RATIO = 10.0
#: The fused model's malignant share when it knows nothing (balanced classes, metastasis left out), and
#: the LIDC branch's (its loss balanced the classes).
FUSED_PRIOR = 4.0 / 8.0
LIDC_PRIOR = 0.5
#: Share of its group (malignant or benign) an implausible class keeps at most.
IMPLAUSIBLE_SHARE = 0.01
#: Classes solid by nature (implausible for a subsolid nodule) and classes with smooth margins
#: (implausible for a spiculated one), from the clinical reference, section 7.
_SOLID_BY_NATURE = (
    "squamous_cell_carcinoma",
    "small_cell_carcinoma",
    "carcinoid",
    "granuloma",
    "hamartoma",
    "intrapulmonary_lymph_node",
)
_SMOOTH_BY_NATURE = ("carcinoid", "granuloma", "hamartoma", "intrapulmonary_lymph_node")
#: Within-group proportions when the model gives no information: the frequency grouping of section 7
#: (common: granuloma, lung cancer, intrapulmonary lymph node; less common: carcinoid, metastasis,
#: infection; rare: hamartoma) and adenocarcinoma as the commonest cell type. A project choice, not a
#: measured prevalence. Metastasis gets its share only with a known primary (see :func:`reconcile`).
GROUP_PRIOR: dict[str, float] = {
    "adenocarcinoma": 0.5,
    "squamous_cell_carcinoma": 0.25,
    "small_cell_carcinoma": 0.1,
    "carcinoid": 0.1,
    "metastasis": 0.05,
    "granuloma": 0.45,
    "intrapulmonary_lymph_node": 0.25,
    "infection": 0.2,
    "hamartoma": 0.1,
}
#: Weight (in probability mass) of :data:`GROUP_PRIOR` against the model's own share of a group.
GROUP_PRIOR_WEIGHT = 0.05
#: Intrapulmonary lymph nodes are "usually <= 10-12 mm" (section 7).
LYMPH_NODE_MAX_MM = 12.0
#: Away from the fissures and the pleura a lymph node keeps at most this share of the benign
#: probability: it lies "attached to or within ~15 mm of a fissure or pleura" (section 7), but a fissure
#: can be missed, so it is not ruled out.
OFF_FISSURE_LYMPH_NODE_SHARE = 0.2
#: A nodule is at most 30 mm across; beyond it is a mass (small cell carcinoma is a central mass with
#: adenopathy, rarely a solitary peripheral nodule: section 7).
NODULE_MAX_MM = 30.0
#: A rule that lowers a class says so when the class had at least this probability.
MENTION_AT = 0.05
#: The class that takes what implausible classes give up, in the malignant and the benign group.
_LEADERS = {True: "adenocarcinoma", False: "infection"}
_EPS = 1e-6


@dataclass(frozen=True)
class ImageSigns:
    """What the measurement says of a nodule (see ``segmentation.measure``).

    Attributes
    ----------
    composition
        ``"solid"``, ``"part_solid"``, ``"ground_glass"`` or ``None``.
    calcification
        Calcification pattern or ``None``.
    fat
        Macroscopic fat.
    perifissural
        Solid, smooth, flat nodule under 10 mm on a fissure or the pleura (Lung-RADS's pattern).
    lymph_node_morphology
        The same shape and place up to 12 mm, an intrapulmonary lymph node's size.
    spiculated
        Spiculated margin.
    irregular
        Irregular (but not spiculated) margin.
    mean_diameter_mm
        Mean diameter, mm.
    on_fissure_or_pleura
        Touches the pleura or a fissure runs into it (``None``: not looked at).
    """

    composition: str | None = None
    calcification: str | None = None
    fat: bool = False
    perifissural: bool = False
    spiculated: bool = False
    irregular: bool = False
    mean_diameter_mm: float | None = None
    on_fissure_or_pleura: bool | None = None
    lymph_node_morphology: bool = False

    @property
    def benign_sign(self) -> str | None:
        """The definitive benign sign, in words, or ``None``."""
        if self.fat:
            return "macroscopic fat"
        if self.calcification in BENIGN_CALCIFICATIONS:
            return f"benign ({self.calcification}) calcification"
        return None


@dataclass(frozen=True)
class Reconciled:
    """The reconciled differential of one nodule.

    Attributes
    ----------
    ranked
        ``(diagnosis, probability)``, most likely first, summing to 1.
    malignancy_probability
        Sum of the malignant classes.
    model_malignancy
        The fused model's own malignancy probability, before reconciliation.
    reasons
        What was applied and why, in words, for the report and the GUI.
    brock_disagreement
        The AI readings alone would have moved Brock's odds more than :data:`MAX_AI_ODDS_RATIO`-fold.
    """

    ranked: tuple[tuple[str, float], ...]
    malignancy_probability: float
    model_malignancy: float
    reasons: tuple[str, ...]
    brock_disagreement: bool = False


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _normalised(q: Mapping[str, float]) -> dict[str, float]:
    total = sum(q.values())
    if total <= 0:
        return {c: 1.0 / len(q) for c in q}
    return {c: v / total for c, v in q.items()}


def _malignancy(q: Mapping[str, float]) -> float:
    return sum(v for c, v in q.items() if c in MALIGNANT_CLASSES)


def _with_malignancy(q: Mapping[str, float], p: float) -> dict[str, float]:
    """Scale the malignant classes to sum ``p`` and the benign ones to ``1 - p``.

    Within each group the model's proportions are shrunk towards :data:`GROUP_PRIOR` with the weight
    :data:`GROUP_PRIOR_WEIGHT`: when the model gave a group almost nothing, its proportions inside the
    group are noise and must not decide which diagnosis a raised share goes to.
    """
    mal = [c for c in q if c in MALIGNANT_CLASSES]
    ben = [c for c in q if c not in MALIGNANT_CLASSES]
    out: dict[str, float] = {}
    for group, total in ((mal, p), (ben, 1.0 - p)):
        s = sum(q[c] for c in group) + GROUP_PRIOR_WEIGHT
        for c in group:
            out[c] = total * (q[c] + GROUP_PRIOR_WEIGHT * GROUP_PRIOR[c]) / s
    return out


def _moved_within_group(q: Mapping[str, float], name: str, keep: float) -> dict[str, float]:
    """``name`` keeps ``keep``; the rest goes to the other classes of its group in their proportions."""
    malignant = name in MALIGNANT_CLASSES
    others = [c for c in q if (c in MALIGNANT_CLASSES) == malignant and c != name]
    out = dict(q)
    excess = q[name] - keep
    out[name] = keep
    s = sum(q[c] for c in others)
    for c in others:
        out[c] += excess * (q[c] / s if s > _EPS else 1.0 / len(others))
    return out


def _lead(q: Mapping[str, float], leader: str) -> dict[str, float]:
    """Give ``leader`` at least :data:`LEADER_SHARE` of its group's (malignant or benign) probability."""
    malignant = leader in MALIGNANT_CLASSES
    group = [c for c in q if (c in MALIGNANT_CLASSES) == malignant]
    total = sum(q[c] for c in group)
    if q[leader] >= LEADER_SHARE * total:
        return dict(q)
    rest = total - q[leader]
    out = dict(q)
    out[leader] = LEADER_SHARE * total
    for c in group:
        if c != leader:
            out[c] = (1.0 - LEADER_SHARE) * total * (q[c] / rest if rest > 0 else 1.0 / (len(group) - 1))
    return out


def _restrict(
    q: Mapping[str, float],
    implausible: Sequence[str],
    *,
    to_leader: bool = True,
    share: float = IMPLAUSIBLE_SHARE,
) -> dict[str, float]:
    """Within the malignant and the benign group (totals kept), each ``implausible`` class keeps at most
    ``share`` of its group; the group's leader (:data:`_LEADERS`) takes what they give up
    (with ``to_leader`` false, or if the leader is implausible itself, the group's other classes do, in
    the model's proportions)."""
    out = dict(q)
    for malignant in (True, False):
        group = [c for c in q if (c in MALIGNANT_CLASSES) == malignant]
        total = sum(q[c] for c in group)
        freed = 0.0
        for c in group:
            if c in implausible:
                out[c] = min(q[c], share * total)
                freed += q[c] - out[c]
        leader = _LEADERS[malignant]
        if to_leader and leader not in implausible:
            out[leader] += freed
        else:
            rest = [c for c in group if c not in implausible and c != "metastasis"]
            s = sum(out[c] for c in rest)
            for c in rest:
                out[c] += freed * (out[c] / s if s > _EPS else 1.0 / len(rest))
    return out


def _ai_shift(readings: Sequence[tuple[float, float, float]]) -> float:
    """Log-odds shift of AI readings ``(probability, training prior, weight)``."""
    return sum(w * (_logit(p) - _logit(prior)) for p, prior, w in readings)


def reconcile(
    ranked: Sequence[tuple[str, float]],
    signs: ImageSigns,
    *,
    personal_cancer_history: bool | None,
    brock_probability: float | None = None,
    lidc_malignancy: float | None = None,
) -> Reconciled:
    """Make a model differential coherent with image signs, the known history and Brock.

    Parameters
    ----------
    ranked
        The fused model's ``(diagnosis, probability)`` pairs (any order; classes of ``classes.py``).
    signs
        The nodule's measured image signs.
    personal_cancer_history
        The note's affirmed personal cancer history (``True``), its denial (``False``) or nothing
        (``None``); a relative's or a suspected cancer must be ``None`` here.
    brock_probability
        Brock's malignancy probability (0..1), when computable.
    lidc_malignancy
        The 2-D branch's malignancy probability (trained on real LIDC crops), when available.

    Returns
    -------
    Reconciled
        The differential, the malignancy probability and the reasons.
    """
    q = {c: 0.0 for c in CLASS_NAMES}
    q.update({str(c): max(0.0, float(p)) for c, p in ranked})
    q = _normalised(q)
    model_malignancy = _malignancy(q)
    reasons: list[str] = []
    known_primary = personal_cancer_history is True

    if known_primary:
        odds = q["metastasis"] / max(1.0 - q["metastasis"], _EPS) * KNOWN_PRIMARY_LR
        met = odds / (1.0 + odds)
        rest = 1.0 - q["metastasis"]
        q = {c: (met if c == "metastasis" else v * (1.0 - met) / max(rest, _EPS)) for c, v in q.items()}
        reasons.append("known primary cancer in the note: metastasis weighed up")
    elif q["metastasis"] > METASTASIS_PRIOR:
        q["metastasis"] = 0.0
        q = _normalised(q)
        q = {c: v * (1.0 - METASTASIS_PRIOR) for c, v in q.items()}
        q["metastasis"] = METASTASIS_PRIOR
        reasons.append("no known primary cancer: metastasis held at a small prior")

    fused = _malignancy({c: v for c, v in q.items() if c != "metastasis"}) / max(1.0 - q["metastasis"], _EPS)
    lidc = [] if lidc_malignancy is None else [(lidc_malignancy, LIDC_PRIOR, LIDC_EVIDENCE_WEIGHT)]
    cap = math.log(MAX_AI_ODDS_RATIO)
    disagreement = False
    subsolid = signs.composition in ("ground_glass", "part_solid")
    if brock_probability is not None and not known_primary:
        shift = _ai_shift([(fused, FUSED_PRIOR, FUSED_EVIDENCE_WEIGHT), *lidc])
        if subsolid and shift < 0:
            # the AI readings learnt malignancy from mostly solid nodules: they may raise Brock's
            # subsolid term, never lower it
            reasons.append("subsolid nodule: the AI readings may raise Brock, not lower it")
            shift = 0.0
        p = _sigmoid(_logit(brock_probability) + max(-cap, min(cap, shift)))
        disagreement = abs(shift) > cap
        if disagreement:
            word = "raise" if shift > 0 else "lower"
            reasons.append(
                f"AI and Brock disagree: the image and note readings would {word} Brock's "
                f"{brock_probability:.1%} further than a {MAX_AI_ODDS_RATIO:g}-fold change of its odds "
                f"({p:.1%}), where it is held"
            )
        else:
            reasons.append(f"malignancy: Brock {brock_probability:.1%} updated by the AI readings ({p:.1%})")
        q = _with_malignancy(q, p)
    elif lidc:
        raw = _ai_shift(lidc)
        before = _malignancy(q)
        q = _with_malignancy(q, _sigmoid(_logit(before) + max(-cap, min(cap, raw))))
        why = "Brock does not apply with a known cancer" if known_primary else "Brock not computable"
        reasons.append(f"malignancy: the fused model's, updated by the real-CT image branch ({why})")
        if abs(raw) > cap:
            word = "raise" if raw > 0 else "lower"
            reasons.append(
                f"the AI readings disagree: the real-CT image branch ({lidc[0][0]:.0%}) would {word} the "
                f"fused model's {before:.1%} further than a {MAX_AI_ODDS_RATIO:g}-fold change of its odds "
                f"({_malignancy(q):.1%}), where it is held"
            )

    if subsolid:
        q = _restrict(q, _SOLID_BY_NATURE)
        reasons.append(
            f"{str(signs.composition).replace('_', '-')} nodule: adenocarcinoma spectrum or infection "
            "(subsolid cancers are almost all adenocarcinomas)"
        )
    elif signs.spiculated and signs.benign_sign is None:
        q = _restrict(q, _SMOOTH_BY_NATURE)
        reasons.append(
            "spiculated margin: a primary lung cancer or an inflammatory lesion, not a lymph node, "
            "hamartoma, granuloma or carcinoid"
        )
    elif (
        signs.irregular
        and signs.benign_sign is None
        and not (signs.perifissural or signs.lymph_node_morphology)
    ):
        q = _restrict(q, ("intrapulmonary_lymph_node",), to_leader=False)
        # (the lymph node stays in the list, already under the share: so it takes none of what they give up)
        q = _restrict(q, _SMOOTH_BY_NATURE, share=IRREGULAR_SMOOTH_SHARE)
        reasons.append(
            "irregular margin: not an intrapulmonary lymph node (sharp and smooth); a primary lung cancer or "
            "an inflammatory lesion is more likely than a granuloma, hamartoma or carcinoid"
        )
    elif (signs.mean_diameter_mm or 0.0) > LYMPH_NODE_MAX_MM and signs.benign_sign is None:
        q = _restrict(q, ("intrapulmonary_lymph_node",), to_leader=False)
        reasons.append(f"over {LYMPH_NODE_MAX_MM:g} mm: not an intrapulmonary lymph node")
    elif signs.on_fissure_or_pleura is False and not signs.perifissural and signs.benign_sign is None:
        node = "intrapulmonary_lymph_node"
        held_down = _restrict(q, (node,), to_leader=False, share=OFF_FISSURE_LYMPH_NODE_SHARE)
        if held_down[node] < q[node] and q[node] >= MENTION_AT:
            reasons.append("off the fissures and the pleura: a lymph node is possible, not the likeliest")
        q = held_down
    if not subsolid and (signs.mean_diameter_mm or 0.0) <= NODULE_MAX_MM:
        if q["small_cell_carcinoma"] >= MENTION_AT:
            reasons.append("a nodule, not a central mass: small cell carcinoma is rarely a solitary nodule")
        q = _restrict(q, ("small_cell_carcinoma",), to_leader=False)
    sign = signs.benign_sign
    if sign is not None:
        leader = "hamartoma" if signs.fat or signs.calcification == "popcorn" else "granuloma"
        q = _lead(_with_malignancy(q, min(_malignancy(q), BENIGN_SIGN_MALIGNANCY)), leader)
        reasons.append(f"{sign}: benign ({leader.replace('_', ' ')}), whatever the note says")
    elif signs.perifissural and signs.composition == "solid":
        if known_primary:
            reasons.append("perifissural pattern, but with a known primary cancer it is not called benign")
        else:
            q = _with_malignancy(q, min(_malignancy(q), PERIFISSURAL_MALIGNANCY))
            q = _lead(q, "intrapulmonary_lymph_node")
            reasons.append("perifissural pattern: intrapulmonary lymph node")
    elif signs.lymph_node_morphology and signs.composition == "solid" and not known_primary:
        # over Lung-RADS's 10 mm the shape and place still favour a lymph node among the benign causes,
        # but its malignancy is not held down
        q = _lead(q, "intrapulmonary_lymph_node")
        reasons.append(
            "a lymph node's shape and place, over 10 mm: intrapulmonary lymph node leads the benign causes"
        )

    held = METASTASIS_PRIOR * _malignancy(q)
    if not known_primary and q["metastasis"] > held:
        q = _moved_within_group(q, "metastasis", held)
    q = _normalised(q)
    order = sorted(q.items(), key=lambda kv: -kv[1])
    return Reconciled(
        ranked=tuple((c, float(v)) for c, v in order),
        malignancy_probability=float(_malignancy(q)),
        model_malignancy=float(model_malignancy),
        reasons=tuple(reasons),
        brock_disagreement=disagreement,
    )
