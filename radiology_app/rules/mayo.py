"""Mayo Clinic probability of malignancy of a solitary pulmonary nodule (Swensen et al., 1997).

``X = -6.8272 + 0.0391 age + 0.7917 smoker + 1.3388 cancer + 0.1274 diameter + 1.0407 spiculation
+ 0.7838 upper_lobe``; ``p = 1 / (1 + exp(-X))`` (clinical reference §4). ``smoker`` is current *or*
former; ``cancer`` is an extrathoracic cancer diagnosed more than 5 years before. Spiculation is
1.0407 and upper lobe 0.7838 (one public app once had them swapped). The lingula counts as upper lobe
(:func:`radiology_app.rules.brock.lobe_is_upper`). The model is for the incidental setting; the
reason warns for nodules > 30 mm (masses) and for a cancer history < 5 years (out of scope).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from radiology_app.rules._errors import RuleInputError
from radiology_app.rules.brock import RiskResult, _describe, risk_band

__all__ = ["MAYO", "MayoInput", "mayo_probability"]

_RULE = "Mayo"

MAYO: dict[str, float] = {
    "intercept": -6.8272,
    "age": 0.0391,
    "smoker": 0.7917,
    "cancer": 1.3388,
    "diameter": 0.1274,
    "spiculation": 1.0407,
    "upper_lobe": 0.7838,
}


@dataclass(frozen=True)
class MayoInput:
    """Inputs of the Mayo model.

    Attributes
    ----------
    age_years
        Age in years (not centred).
    ever_smoker
        Current or former smoker.
    extrathoracic_cancer_over_5y
        History of extrathoracic cancer diagnosed more than 5 years ago.
    diameter_mm
        Nodule diameter in mm.
    spiculation
        Spiculated margin.
    upper_lobe
        Nodule in an upper lobe (lingula included).
    recent_extrathoracic_cancer
        Extrathoracic cancer diagnosed within 5 years: outside the model's scope (warned).
    """

    age_years: float
    ever_smoker: bool
    extrathoracic_cancer_over_5y: bool
    diameter_mm: float
    spiculation: bool = False
    upper_lobe: bool = False
    recent_extrathoracic_cancer: bool = False


def mayo_probability(inputs: MayoInput) -> RiskResult:
    """Probability of malignancy with the Mayo Clinic model.

    Parameters
    ----------
    inputs
        Patient and nodule variables; diameter in mm, age in years.

    Returns
    -------
    RiskResult
        Probability 0..1, risk band, logit, per-term contributions, and scope warnings in the reason.

    Raises
    ------
    RuleInputError
        If the diameter or the age is not a positive finite number.
    """
    if not math.isfinite(inputs.diameter_mm) or inputs.diameter_mm <= 0:
        raise RuleInputError(
            _RULE, f"nodule diameter must be a positive number of mm, got {inputs.diameter_mm!r}"
        )
    if not math.isfinite(inputs.age_years) or inputs.age_years <= 0:
        raise RuleInputError(_RULE, f"age must be a positive number of years, got {inputs.age_years!r}")
    c = MAYO
    terms = [
        ("intercept", c["intercept"]),
        ("age", c["age"] * inputs.age_years),
        ("smoker", c["smoker"] * inputs.ever_smoker),
        ("prior cancer > 5 y", c["cancer"] * inputs.extrathoracic_cancer_over_5y),
        ("diameter", c["diameter"] * inputs.diameter_mm),
        ("spiculation", c["spiculation"] * inputs.spiculation),
        ("upper lobe", c["upper_lobe"] * inputs.upper_lobe),
    ]
    x = math.fsum(v for _, v in terms)
    p = 1.0 / (1.0 + math.exp(-x))
    warnings = ""
    if inputs.diameter_mm > 30:
        warnings += "; caution: > 30 mm is a mass, outside the model's range"
    if inputs.recent_extrathoracic_cancer:
        warnings += "; caution: extrathoracic cancer < 5 years ago is outside the model's scope"
    reason = _describe("Mayo Clinic model", p, terms, warnings)
    return RiskResult(p, reason, risk_band(p), x, tuple(terms))
