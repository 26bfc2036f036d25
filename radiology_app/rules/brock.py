"""Brock University / PanCan probability of malignancy (McWilliams et al., NEJM 2013).

Only the *full model with spiculation* ("model 2b", clinical reference §3.2) is implemented; its
coefficients appear identically in five independent public implementations and match the published
odds ratios. The parsimonious models are not implemented (coefficients not verified), nor model 2a
(one coefficient in conflict).

Decisions (🛠), tested in ``tests/rules/test_brock.py``:

1. **Size input** is the nodule's *maximum (long-axis)* diameter in mm, as measured by the PanCan
   radiologists (Tammemagi 2019). Callers with only a mean diameter may pass it; the reason always
   states which size was used. Sizes are used unrounded (the model is continuous).
2. **Lingula** counts as upper lobe (:func:`lobe_is_upper`): it is anatomically part of the left
   upper lobe.
3. **Nodule count** is the number of nodules on the scan, at least 1.

Risk bands: ACCP-style low < 5 %, intermediate 5-65 %, high > 65 %; the BTS 10 % threshold for PET-CT
is mentioned in the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from radiology_app.rules._errors import RuleInputError

__all__ = ["BROCK_2B", "BrockInput", "RiskResult", "brock_probability", "lobe_is_upper", "risk_band"]

_RULE = "Brock"

#: Coefficients of the full model with spiculation (model 2b).
BROCK_2B: dict[str, float] = {
    "intercept": -6.7892,
    "age": 0.0287,
    "female": 0.6011,
    "family_history": 0.2961,
    "emphysema": 0.2953,
    "size": -5.3854,
    "ground_glass": -0.1276,
    "part_solid": 0.377,
    "upper_lobe": 0.6581,
    "count": -0.0824,
    "spiculation": 0.7729,
}
_SIZE_CENTRE = 1.58113883  # (4/10) ** -0.5, as printed in the model
_UPPER_LOBES = frozenset(
    {"rul", "lul", "lingula", "right upper lobe", "left upper lobe", "right_upper", "left_upper"}
)


@dataclass(frozen=True)
class RiskResult:
    """A malignancy probability with the terms that produced it.

    Attributes
    ----------
    probability
        Probability of malignancy, 0..1.
    reason
        Model name, inputs used and the largest contributions, in words.
    band
        ``"low"`` (< 5 %), ``"intermediate"`` (5-65 %) or ``"high"`` (> 65 %).
    logit
        The linear predictor X (``p = 1 / (1 + exp(-X))``).
    terms
        Contribution of each term to X, by name.
    """

    probability: float
    reason: str
    band: str = ""
    logit: float = 0.0
    terms: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class BrockInput:
    """Inputs of the Brock full model.

    Attributes
    ----------
    age_years
        Age in years.
    female
        Female sex.
    family_history_lung_cancer
        A first-degree relative with lung cancer.
    emphysema
        Emphysema visible on CT.
    nodule_size_mm
        Maximum (long-axis) diameter in mm (decision 1), > 0.
    nodule_type
        ``"solid"``, ``"part_solid"`` or ``"ground_glass"``.
    upper_lobe
        Nodule in an upper lobe (lingula included, decision 2).
    nodule_count
        Number of nodules on the scan, >= 1.
    spiculation
        Spiculated margin.
    size_is_mean_diameter
        Set when ``nodule_size_mm`` is a mean rather than a maximum diameter (noted in the reason).
    """

    age_years: float
    female: bool
    family_history_lung_cancer: bool
    emphysema: bool
    nodule_size_mm: float
    nodule_type: str = "solid"
    upper_lobe: bool = False
    nodule_count: int = 1
    spiculation: bool = False
    size_is_mean_diameter: bool = False


def lobe_is_upper(lobe: str | None) -> bool:
    """Whether a lobe name is an upper lobe for Brock and Mayo (the lingula counts, decision 2).

    Parameters
    ----------
    lobe
        ``RUL``, ``RML``, ``RLL``, ``LUL``, ``lingula``, ``LLL`` (case-insensitive) or a spelled-out name.

    Returns
    -------
    bool
        ``True`` for the right and left upper lobes and the lingula.
    """
    return lobe is not None and lobe.strip().lower() in _UPPER_LOBES


def risk_band(probability: float) -> str:
    """ACCP-style band of a malignancy probability (0..1): low < 0.05 <= intermediate <= 0.65 < high."""
    if probability < 0.05:
        return "low"
    if probability <= 0.65:
        return "intermediate"
    return "high"


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _describe(model: str, p: float, terms: list[tuple[str, float]], extra: str) -> str:
    top = sorted((t for t in terms if t[0] != "intercept" and abs(t[1]) > 1e-12), key=lambda t: -abs(t[1]))[
        :4
    ]
    parts = ", ".join(f"{name} {value:+.3f}" for name, value in top)
    return f"{model}: {100 * p:.2f}% ({risk_band(p)} risk); largest terms: {parts or 'none'}{extra}"


def brock_probability(inputs: BrockInput) -> RiskResult:
    """Probability of malignancy with the Brock full model with spiculation (model 2b).

    Parameters
    ----------
    inputs
        Patient and nodule variables; sizes in mm.

    Returns
    -------
    RiskResult
        Probability 0..1, risk band, logit and per-term contributions.

    Raises
    ------
    RuleInputError
        If the size is not positive, the count is below 1 or the type is unknown.
    """
    if not inputs.nodule_size_mm > 0 or not math.isfinite(inputs.nodule_size_mm):
        raise RuleInputError(
            _RULE, f"nodule size must be a positive number of mm, got {inputs.nodule_size_mm!r}"
        )
    if inputs.nodule_count < 1:
        raise RuleInputError(_RULE, f"nodule count must be at least 1, got {inputs.nodule_count}")
    if inputs.nodule_type not in ("solid", "part_solid", "ground_glass"):
        raise RuleInputError(_RULE, f"unknown nodule type {inputs.nodule_type!r}")
    if not math.isfinite(inputs.age_years) or inputs.age_years <= 0:
        raise RuleInputError(_RULE, f"age must be a positive number of years, got {inputs.age_years!r}")
    c = BROCK_2B
    terms = [
        ("intercept", c["intercept"]),
        ("age", c["age"] * (inputs.age_years - 62)),
        ("female", c["female"] * inputs.female),
        ("family history", c["family_history"] * inputs.family_history_lung_cancer),
        ("emphysema", c["emphysema"] * inputs.emphysema),
        ("size", c["size"] * ((inputs.nodule_size_mm / 10) ** -0.5 - _SIZE_CENTRE)),
        ("part-solid", c["part_solid"] * (inputs.nodule_type == "part_solid")),
        ("ground-glass", c["ground_glass"] * (inputs.nodule_type == "ground_glass")),
        ("upper lobe", c["upper_lobe"] * inputs.upper_lobe),
        ("nodule count", c["count"] * (inputs.nodule_count - 4)),
        ("spiculation", c["spiculation"] * inputs.spiculation),
    ]
    x = math.fsum(v for _, v in terms)
    p = _logistic(x)
    size_kind = "mean" if inputs.size_is_mean_diameter else "maximum"
    extra = f"; size {inputs.nodule_size_mm:g} mm ({size_kind} diameter)"
    if p >= 0.10:
        extra += "; >= 10%: BTS threshold for PET-CT"
    reason = _describe("Brock full model with spiculation", p, terms, extra)
    return RiskResult(p, reason, risk_band(p), x, tuple(terms))
