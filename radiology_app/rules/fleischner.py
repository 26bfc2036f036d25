"""Fleischner Society 2017 recommendations for incidental pulmonary nodules on CT.

MacMahon H, et al. Radiology 2017;284(1):228-243. Tables as in the shared clinical reference §2.

Decisions on points the guideline leaves open (🛠), each tested in ``tests/rules/test_fleischner.py``:

1. **Rounding.** The mean of long and short axis is rounded half-up to the nearest millimetre before
   comparison: 5.4 -> 5 mm (< 6), 5.5 -> 6 mm (6-8), 8.4 -> 8 mm (6-8), 8.5 -> 9 mm (> 8).
   The size buckets are therefore ``<= 5``, ``6 to 8`` and ``>= 9`` whole millimetres.
2. **Risk.** The guideline gives no numeric rule for "high risk"; the clinician chooses
   (:attr:`FleischnerPatient.high_risk`). When it is ``None`` the *high-risk* row is used (the
   conservative one) and the reason says so; :func:`suggest_high_risk` proposes a choice from the
   risk factors named in the guideline (smoking, family history, emphysema/fibrosis, exposures, age).
3. **Multiple nodules.** The most suspicious nodule guides management: for solid nodules the largest;
   when solid and subsolid nodules are mixed, both tables are evaluated and the recommendation with
   the shorter first follow-up interval is returned, the other named in the reason.
4. **Part-solid < 6 mm** is managed as a ground-glass nodule of the same size (the guideline's comment).
5. **Typical perifissural / intrapulmonary lymph node morphology** (solid, smooth, lentiform or
   triangular, on a fissure or the pleura): no follow-up, even above 6 mm; such nodules are ignored
   when choosing the most suspicious of several nodules. Benign calcification: no follow-up.
6. **Who it does not apply to**: age < 35, known primary cancer, immunosuppression, or a screening
   exam; the result then has ``applies=False``. An unknown age is assumed to be >= 35 and said so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from radiology_app.rules._errors import RuleInputError
from radiology_app.rules.rounding import mean_diameter_mm, round_half_up

__all__ = [
    "FleischnerInput",
    "FleischnerPatient",
    "FleischnerResult",
    "fleischner",
    "suggest_high_risk",
]

_RULE = "Fleischner"
_COMPOSITIONS = ("solid", "part_solid", "ground_glass")

NO_FOLLOW_UP = "No routine follow-up."
OPTIONAL_12 = "Optional CT at 12 months."
SOLID_SINGLE_6_8_LOW = "CT at 6-12 months, then consider CT at 18-24 months."
SOLID_SINGLE_6_8_HIGH = "CT at 6-12 months, then CT at 18-24 months."
SOLID_SINGLE_GT8 = "Consider CT at 3 months, PET/CT, or tissue sampling."
SOLID_MULTI_LOW = "CT at 3-6 months, then consider CT at 18-24 months."
SOLID_MULTI_HIGH = "CT at 3-6 months, then CT at 18-24 months."
GGN_SINGLE_GE6 = "CT at 6-12 months to confirm persistence, then CT every 2 years until 5 years."
PART_SOLID_SINGLE_GE6 = (
    "CT at 3-6 months to confirm persistence. If unchanged and the solid component remains < 6 mm, "
    "annual CT should be performed for 5 years."
)
PART_SOLID_SOLID_GE6 = (
    " A persistent part-solid nodule with a solid component >= 6 mm is highly suspicious; with a solid "
    "component > 8 mm, growth or suspicious morphology consider PET/CT, biopsy or resection."
)
SUBSOLID_MULTI_LT6 = "CT at 3-6 months. If stable, consider CT at 2 and 4 years."
SUBSOLID_MULTI_GE6 = "CT at 3-6 months. Subsequent management based on the most suspicious nodule(s)."
PERIFISSURAL = "No follow-up recommended: typical perifissural nodule (intrapulmonary lymph node)."
CALCIFIED = "No follow-up recommended: benign calcification."

#: Months to the first follow-up of each recommendation, to rank them (lower = more urgent).
_URGENCY: dict[str, float] = {
    SOLID_SINGLE_GT8: 3,
    SOLID_MULTI_HIGH: 3,
    SOLID_MULTI_LOW: 3.1,
    PART_SOLID_SINGLE_GE6: 3,
    SUBSOLID_MULTI_GE6: 3,
    SUBSOLID_MULTI_LT6: 3.2,
    SOLID_SINGLE_6_8_HIGH: 6,
    SOLID_SINGLE_6_8_LOW: 6.1,
    GGN_SINGLE_GE6: 6.2,
    OPTIONAL_12: 12,
    NO_FOLLOW_UP: 1000,
    PERIFISSURAL: 1001,
    CALCIFIED: 1002,
}


@dataclass(frozen=True)
class FleischnerInput:
    """One incidental nodule.

    Attributes
    ----------
    composition
        ``"solid"``, ``"part_solid"`` or ``"ground_glass"``.
    mean_diameter_mm
        Mean of long and short axis, mm; give it or both axes.
    long_axis_mm, short_axis_mm
        Axes in mm; their mean is rounded half-up to a whole millimetre.
    solid_component_mm
        Solid-component diameter of a part-solid nodule, mm.
    perifissural
        Typical perifissural / intrapulmonary lymph node morphology (solid, smooth, lentiform or
        triangular, attached to a fissure or the pleura).
    benign_calcification
        Benign calcification pattern (diffuse, central, laminated, popcorn).
    """

    composition: str = "solid"
    mean_diameter_mm: float | None = None
    long_axis_mm: float | None = None
    short_axis_mm: float | None = None
    solid_component_mm: float | None = None
    perifissural: bool = False
    benign_calcification: bool = False


@dataclass(frozen=True)
class FleischnerPatient:
    """The patient facts that decide whether and how Fleischner applies.

    Attributes
    ----------
    age_years
        Age in years; ``None`` = unknown (assumed >= 35).
    high_risk
        Clinician's choice of the high-risk row; ``None`` = not chosen (high-risk row used).
    known_cancer
        Known primary cancer (at risk of metastases).
    immunosuppressed
        Immunocompromised or immunosuppressed patient.
    screening
        The CT is a lung-cancer screening exam (use Lung-RADS instead).
    """

    age_years: float | None = None
    high_risk: bool | None = None
    known_cancer: bool = False
    immunosuppressed: bool = False
    screening: bool = False


@dataclass(frozen=True)
class FleischnerResult:
    """A Fleischner recommendation with the row that gave it.

    Attributes
    ----------
    recommendation
        The management text (empty-size-bucket wording of the 2017 table).
    reason
        Which row, size bucket (rounded mm) and risk were used, or why the guideline does not apply.
    applies
        ``False`` when the patient or exam is outside the guideline's scope.
    """

    recommendation: str
    reason: str
    applies: bool = True


def suggest_high_risk(
    smoking_status: str | None = None,
    pack_years: float | None = None,
    years_since_quit: float | None = None,
    family_history_lung_cancer: bool | None = None,
    emphysema_or_fibrosis: bool | None = None,
    carcinogen_exposure: bool | None = None,
    age_years: float | None = None,
) -> tuple[bool, str]:
    """Suggest the Fleischner risk row from risk factors named in the guideline (decision 2).

    Any smoking history (current or former), a family history of lung cancer, emphysema or
    pulmonary fibrosis, or exposure to asbestos, uranium or radon suggests *high risk*; the NLST
    criterion (>= 30 pack-years and quit within 15 years) is named explicitly in the reason. Age
    alone is not used (the guideline names "older age" without a number). Low risk is suggested only
    for a never smoker (or 0 pack-years) without other factors; an unknown smoking history suggests
    high risk, the conservative row, as when no risk is chosen. The clinician decides.

    Parameters
    ----------
    smoking_status
        ``never``, ``former``, ``current`` or ``unknown``.
    pack_years, years_since_quit
        Smoking exposure (pack-years) and years since quitting.
    family_history_lung_cancer, emphysema_or_fibrosis, carcinogen_exposure
        Risk factors, ``None`` when unknown.
    age_years
        Age in years (reported in the reason only).

    Returns
    -------
    tuple of (bool, str)
        The suggested high-risk flag and the factors that drove it.
    """
    factors: list[str] = []
    if smoking_status in ("current", "former") or (pack_years is not None and pack_years > 0):
        text = f"{smoking_status or 'ever'} smoker"
        if pack_years is not None:
            text += f", {pack_years:g} pack-years"
            recent = smoking_status == "current" or (years_since_quit is not None and years_since_quit <= 15)
            if pack_years >= 30 and recent:
                text += " (NLST criterion: >= 30 pack-years, quit within 15 years)"
        factors.append(text)
    if family_history_lung_cancer:
        factors.append("family history of lung cancer")
    if emphysema_or_fibrosis:
        factors.append("emphysema or pulmonary fibrosis")
    if carcinogen_exposure:
        factors.append("asbestos, uranium or radon exposure")
    if factors:
        return True, "high risk suggested: " + "; ".join(factors)
    age_note = f" (age {age_years:g})" if age_years is not None else ""
    if smoking_status != "never" and not (pack_years is not None and pack_years == 0):
        return True, "high risk suggested (conservative): smoking history not known" + age_note
    return False, "low risk suggested: never smoker, no other known risk factor given" + age_note


def _rounded_mm(n: FleischnerInput) -> int:
    if n.long_axis_mm is not None and n.short_axis_mm is not None:
        try:
            return int(mean_diameter_mm(n.long_axis_mm, n.short_axis_mm, 0))
        except ValueError as exc:
            raise RuleInputError(_RULE, str(exc)) from exc
    if n.mean_diameter_mm is None:
        raise RuleInputError(_RULE, "the mean diameter (or both axes) of each nodule is required")
    if not math.isfinite(n.mean_diameter_mm) or n.mean_diameter_mm < 0:
        raise RuleInputError(
            _RULE, f"mean diameter must be a non-negative number of mm, got {n.mean_diameter_mm!r}"
        )
    return int(round_half_up(n.mean_diameter_mm, 0))


def _not_applicable(patient: FleischnerPatient) -> str | None:
    reasons: list[str] = []
    if patient.screening:
        reasons.append("lung cancer screening exam (use Lung-RADS)")
    if patient.age_years is not None and patient.age_years < 35:
        reasons.append(f"patient younger than 35 years (age {patient.age_years:g})")
    if patient.known_cancer:
        reasons.append("known primary cancer (risk of metastases)")
    if patient.immunosuppressed:
        reasons.append("immunocompromised patient")
    return "; ".join(reasons) if reasons else None


def _solid(sizes: Sequence[int], multiple: bool, high: bool, risk_text: str) -> tuple[str, str]:
    size = max(sizes)
    which = "multiple" if multiple else "single"
    if size <= 5:
        rec = OPTIONAL_12 if high else NO_FOLLOW_UP
        bucket = "< 6 mm"
    elif size <= 8:
        bucket = "6-8 mm"
        if multiple:
            rec = SOLID_MULTI_HIGH if high else SOLID_MULTI_LOW
        else:
            rec = SOLID_SINGLE_6_8_HIGH if high else SOLID_SINGLE_6_8_LOW
    else:
        bucket = "> 8 mm"
        rec = (SOLID_MULTI_HIGH if high else SOLID_MULTI_LOW) if multiple else SOLID_SINGLE_GT8
    largest = f", largest {size} mm" if multiple else f" {size} mm"
    return rec, f"solid, {which}{largest} (rounded to whole mm), {bucket}, {risk_text}"


def _subsolid(nodules: Sequence[tuple[FleischnerInput, int]], multiple: bool) -> tuple[str, str]:
    if multiple:
        size = max(s for _, s in nodules)
        if size <= 5:
            return SUBSOLID_MULTI_LT6, f"multiple subsolid, largest {size} mm, < 6 mm"
        return SUBSOLID_MULTI_GE6, f"multiple subsolid, largest {size} mm, >= 6 mm"
    n, size = nodules[0]
    if size <= 5:
        kind = (
            "part-solid < 6 mm managed as ground-glass" if n.composition == "part_solid" else "ground-glass"
        )
        return NO_FOLLOW_UP, f"single {kind}, {size} mm, < 6 mm"
    if n.composition == "ground_glass":
        return GGN_SINGLE_GE6, f"single ground-glass, {size} mm, >= 6 mm"
    if n.solid_component_mm is None:
        raise RuleInputError(_RULE, "a part-solid nodule of 6 mm or more needs its solid-component size")
    solid = round_half_up(n.solid_component_mm, 0)
    rec = PART_SOLID_SINGLE_GE6
    if solid >= 6:
        rec += PART_SOLID_SOLID_GE6
    return rec, f"single part-solid, {size} mm, >= 6 mm, solid component {solid:g} mm"


def fleischner(nodules: Sequence[FleischnerInput], patient: FleischnerPatient) -> FleischnerResult:
    """Fleischner 2017 recommendation for the incidental nodule(s) of one CT.

    Parameters
    ----------
    nodules
        All nodules of the exam (one = "single", several = "multiple").
    patient
        Age, risk choice and the exclusions.

    Returns
    -------
    FleischnerResult
        Recommendation and reason; ``applies=False`` with the reason when the guideline does not apply.

    Raises
    ------
    RuleInputError
        If a nodule has an unknown composition or misses a needed size.
    """
    excluded = _not_applicable(patient)
    if excluded is not None:
        return FleischnerResult(
            "Fleischner 2017 does not apply: " + excluded + ".",
            "outside the guideline's scope: " + excluded,
            applies=False,
        )
    for n in nodules:
        if n.composition not in _COMPOSITIONS:
            raise RuleInputError(_RULE, f"unknown composition {n.composition!r}; use one of {_COMPOSITIONS}")
    if not nodules:
        return FleischnerResult(NO_FOLLOW_UP, "no nodules")
    notes: list[str] = []
    if patient.age_years is None:
        notes.append("age unknown, assumed >= 35")
    if patient.high_risk is None:
        high = True
        risk_text = "high risk (risk not chosen: conservative row used)"
    else:
        high = patient.high_risk
        risk_text = "high risk" if high else "low risk"

    sized = [(n, _rounded_mm(n)) for n in nodules]
    benign = [n.benign_calcification or (n.perifissural and n.composition == "solid") for n, _ in sized]
    active = [ns for ns, is_benign in zip(sized, benign, strict=True) if not is_benign]
    if not active:
        calcified = sized[0][0].benign_calcification
        kind = "calcified" if calcified else "perifissural"
        return FleischnerResult(
            CALCIFIED if calcified else PERIFISSURAL, f"all nodules benign-appearing: {kind}"
        )
    if any(benign):
        notes.append(f"{sum(benign)} benign-appearing (perifissural or calcified) nodule(s) ignored")
    multiple = len(active) > 1
    solid = [(n, s) for n, s in active if n.composition == "solid"]
    subsolid = [(n, s) for n, s in active if n.composition != "solid"]
    candidates: list[tuple[str, str]] = []
    if solid:
        candidates.append(_solid([s for _, s in solid], multiple, high, risk_text))
    if subsolid:
        candidates.append(_subsolid(subsolid, multiple))
    candidates.sort(key=lambda c: _URGENCY.get(c[0].split(" A persistent")[0], 100))
    rec, reason = candidates[0]
    if len(candidates) > 1:
        notes.append(f"also evaluated: {candidates[1][1]} -> {candidates[1][0]}")
    if not solid:
        notes.append("subsolid management does not depend on the risk category")
    if notes:
        reason += "; " + "; ".join(notes)
    return FleischnerResult(rec, reason)
