"""ACR Lung-RADS v2022 category and management for one nodule, and the exam-level category.

Scope: lung-cancer *screening* low-dose CT only (incidental nodules: :mod:`.fleischner`). Tables as in
the shared clinical reference §1 (ACR Lung-RADS v2022; Christensen et al., CHEST 2024).

Decisions on points the guideline leaves open (🛠 in the clinical reference), each tested in
``tests/rules/test_lungrads.py``:

1. **Rounding.** Mean diameters (total and solid component) are rounded half-up to 0.1 mm *before*
   they are compared with thresholds (:func:`.rounding.mean_diameter_mm`). Axes 6.2 x 5.7 mm give
   5.95 -> 6.0 mm -> baseline solid category 3. Growth is the difference of the rounded means, itself
   rounded to 0.1 mm, and must be *more than* 1.5 mm (exactly 1.5 mm is not growth).
2. **Growth interval.** Growth means > 1.5 mm within 12 months. When the prior is more than 12 months
   old, the increase is annualised (``delta * 12 / months``); an increase > 1.5 mm whose annual rate is
   <= 1.5 mm is *slow growth*: category 4B for solid and part-solid nodules (v2022 note 8), category 2
   for non-solid nodules (note 7). An unknown interval is taken as <= 12 months (annual screening).
3. **Stable nodules** (seen before, not growing) are classified by size with the baseline column,
   subject to stepped management (3 stable at the 6-month CT -> 2; 4A stable at the 3-month CT -> 3,
   not for airway nodules; 4B proven benign -> 2). A stable nodule whose size band is higher than its
   prior category is re-classified by size (no step-down).
4. **Overlapping part-solid rows.** Every row that matches is evaluated and the *highest* category
   wins (a conservative engine). So a new part-solid nodule with total 5 mm and a 4 mm solid
   component is 4B (the "new, total < 6 mm -> 3" row is outranked by "new solid component >= 4 mm").
   The "new solid component < 4 mm -> 4A" row is read as applying to new nodules of 6 mm or more
   (otherwise "new, total < 6 mm -> 3" could never apply): a new 5 mm part-solid nodule with a 2 mm
   solid component is 3. A solid component on an existing nodule whose prior solid component was
   0 mm (a GGN before) is a *new solid component* whatever its size.
5. **Part-solid nodule whose total grows but whose solid component does not**: re-classified by
   size with the baseline column, and a review flag is raised.
6. **Non-solid nodule >= 30 mm growing faster than slowly**: category 3 (conservative reading).
7. **Subsegmental airway nodule that grows**: no row in v2022; classified as a solid nodule by its
   size and growth, and flagged for review.
8. **Juxtapleural nodule** meeting the benign morphology (solid, smooth, oval/lentiform/triangular,
   < 10 mm): category 2 at baseline, when new, and also when stable on follow-up (a stable benign
   pattern does not raise suspicion); when growing it is classified as a solid nodule.
9. **4X.** Category 3, 4A or 4B plus an additional suspicious feature (spiculation, lymphadenopathy,
   frank metastatic disease, ...) -> 4X. Growth alone is not a 4X trigger. The ACR's own example "a
   ground-glass nodule that doubles in size in 1 year" upgrades to 4X from any category.
10. **Exam category.** Order used to pick the worst nodule: 1 < 2 < 3 < 0 < 4A < 4B < 4X. Category 0
    (incomplete, or possible infection) outranks the benign categories because the exam must be
    completed first, but a nodule that is already 4A or higher drives management (1.4: a nodule that
    looks like cancer and meets 4B criteria may be called 4B directly).

11. **Atypical pulmonary cysts** (v2022; thick wall >= 2 mm, or multilocular): the rows of the table
    (thick-walled or multilocular at baseline or new -> 4A; thick-walled with growing cystic component
    -> 3; becomes multilocular -> 4A; growing wall or nodularity, growing multilocular cyst, more
    loculation or new opacity -> 4B). A cyst seen before without change keeps the 4A of its row
    (stepped management still applies: 4A stable at the 3-month CT -> 3). A thin-walled unilocular
    cyst is benign and not a Lung-RADS finding (returned as 1). A cyst with an associated nodule is
    managed by its most concerning feature: categorise the nodule separately and take
    :func:`overall_lung_rads`.
12. **Missing priors.** A nodule marked as seen before without a prior size (and no explicit growth
    verdict) is classified as stable, with a review flag saying growth was not assessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from radiology_app.rules._errors import RuleInputError
from radiology_app.rules.rounding import mean_diameter_mm, round_half_up

__all__ = [
    "CATEGORY_ORDER",
    "MANAGEMENT",
    "AirwayLevel",
    "Composition",
    "CystChange",
    "CystType",
    "LungRadsInput",
    "LungRadsResult",
    "NoduleStatus",
    "lung_rads",
    "overall_lung_rads",
]

_RULE = "Lung-RADS"

#: Growth threshold in mm of mean diameter within 12 months (strictly greater than).
GROWTH_THRESHOLD_MM = 1.5


class Composition(StrEnum):
    """Nodule composition (attenuation type)."""

    SOLID = "solid"
    PART_SOLID = "part_solid"
    GROUND_GLASS = "ground_glass"


class NoduleStatus(StrEnum):
    """Whether the nodule is seen for the first time on a baseline screen, is new, or was seen before."""

    BASELINE = "baseline"
    NEW = "new"
    EXISTING = "existing"


class AirwayLevel(StrEnum):
    """Level of an airway (endobronchial) nodule."""

    SUBSEGMENTAL = "subsegmental"
    SEGMENTAL_OR_PROXIMAL = "segmental_or_proximal"


class CystType(StrEnum):
    """Lung-RADS v2022 cyst types."""

    THIN_WALLED = "thin_walled"
    THICK_WALLED = "thick_walled"
    MULTILOCULAR = "multilocular"


class CystChange(StrEnum):
    """Change of a cyst since the prior exam."""

    NONE = "none"
    GROWING_CYSTIC_COMPONENT = "growing_cystic_component"
    GROWING_WALL_OR_NODULARITY = "growing_wall_or_nodularity"
    BECOMES_MULTILOCULAR = "becomes_multilocular"
    GROWING = "growing"
    MORE_LOCULATION_OR_NEW_OPACITY = "more_loculation_or_new_opacity"


#: Suspicious features that upgrade a category 3/4 nodule to 4X.
SUSPICIOUS_FEATURES = frozenset(
    {"spiculation", "lymphadenopathy", "metastatic_disease", "ggn_doubling", "other"}
)

#: Rank of each category for the exam-level maximum (decision 10 in the module docstring).
CATEGORY_ORDER: dict[str, int] = {"1": 1, "2": 2, "3": 3, "0": 4, "4A": 5, "4B": 6, "4X": 7}

#: Management recommendation for each category (ACR v2022 wording, paraphrased).
MANAGEMENT: dict[str, str] = {
    "0": (
        "Comparison with prior chest CT and/or additional lung cancer screening CT images; "
        "for findings suggesting infection or inflammation: LDCT in 1-3 months."
    ),
    "1": "Continue annual screening with LDCT in 12 months.",
    "2": "Continue annual screening with LDCT in 12 months.",
    "3": "LDCT in 6 months.",
    "4A": "LDCT in 3 months; PET/CT may be considered if there is a solid nodule or solid component >= 8 mm.",
    "4B": (
        "Diagnostic chest CT with or without contrast; PET/CT may be considered if there is a solid "
        "nodule or solid component >= 8 mm; tissue sampling; and/or referral for further clinical "
        "evaluation. Management depends on clinical evaluation, patient preference and the probability "
        "of malignancy."
    ),
}
MANAGEMENT["4X"] = MANAGEMENT["4B"]
_AIRWAY_4B_MANAGEMENT = "Clinical evaluation, typically bronchoscopy."
_NOT_APPLICABLE = "Lung-RADS does not apply"


@dataclass(frozen=True)
class LungRadsInput:
    """One screening-CT nodule (or exam finding) to categorise.

    Attributes
    ----------
    composition
        Solid, part-solid or ground-glass (non-solid).
    mean_diameter_mm
        Mean of long and short axis in mm. Give either this or both axes.
    long_axis_mm, short_axis_mm
        Axes in mm (one decimal); the mean is formed and rounded half-up to 0.1 mm.
    solid_component_mm
        Mean diameter of the solid component of a part-solid nodule, mm.
    status
        Baseline (first screen), new (absent on the prior screen) or existing (seen before).
    prior_mean_diameter_mm
        Mean diameter on the prior screen, mm (existing nodules).
    prior_solid_component_mm
        Solid-component mean diameter on the prior screen, mm (existing part-solid nodules).
    interval_months
        Months between the prior and this exam; ``None`` = assumed <= 12 months.
    growing
        Explicit growth verdict that overrides the one computed from the prior measurement.
    slow_growth
        Grew over several screens without ever exceeding 1.5 mm in 12 months (v2022 notes 7 and 8).
    benign_calcification
        Complete, central, popcorn or concentric-ring calcification -> category 1.
    fat
        Contains macroscopic fat -> category 1.
    juxtapleural
        Perifissural, costal-, mediastinal- or diaphragmatic-pleural location.
    benign_juxtapleural_morphology
        Smooth margins and oval, lentiform or triangular shape (needed for the juxtapleural rule).
    airway
        Level of an airway nodule, or ``None`` when the nodule is not endobronchial.
    suspicious_features
        Features that raise suspicion (4X): ``spiculation``, ``lymphadenopathy``,
        ``metastatic_disease``, ``ggn_doubling`` (a GGN that doubles in size in 1 year), ``other``.
    prior_category
        The category given at the prior exam (for stepped management), e.g. ``"3"`` or ``"4A"``.
    proven_benign
        A category 4B finding proven benign after work-up -> category 2.
    possible_infection
        Findings suggest an infectious or inflammatory process (reader's choice: category 0).
    incomplete
        A prior CT is being located, or part of the lungs cannot be evaluated -> category 0.
    known_lung_cancer
        The patient has a known lung cancer: the exam is outside Lung-RADS (v2022 note 16).
    cyst
        The finding is a cyst: thin-walled, thick-walled (wall >= 2 mm) or multilocular.
    cyst_change
        Change of the cyst since the prior exam (``None`` or ``"none"`` = no change or baseline).
    """

    composition: Composition | str = Composition.SOLID
    mean_diameter_mm: float | None = None
    long_axis_mm: float | None = None
    short_axis_mm: float | None = None
    solid_component_mm: float | None = None
    status: NoduleStatus | str = NoduleStatus.BASELINE
    prior_mean_diameter_mm: float | None = None
    prior_solid_component_mm: float | None = None
    interval_months: float | None = None
    growing: bool | None = None
    slow_growth: bool = False
    benign_calcification: bool = False
    fat: bool = False
    juxtapleural: bool = False
    benign_juxtapleural_morphology: bool = False
    airway: AirwayLevel | str | None = None
    suspicious_features: tuple[str, ...] = ()
    prior_category: str | None = None
    proven_benign: bool = False
    possible_infection: bool = False
    incomplete: bool = False
    known_lung_cancer: bool = False
    cyst: CystType | str | None = None
    cyst_change: CystChange | str | None = None


@dataclass(frozen=True)
class LungRadsResult:
    """A Lung-RADS category with its management and the rule that drove it.

    Attributes
    ----------
    category
        ``"0"``, ``"1"``, ``"2"``, ``"3"``, ``"4A"``, ``"4B"`` or ``"4X"`` (``""`` when not applicable),
        with an ``"S"`` suffix when the exam-level S modifier is set.
    management
        The recommended management.
    reason
        Which table row (and which measured values) gave the category.
    applies
        ``False`` when Lung-RADS does not apply (known lung cancer).
    review_flags
        Situations the guideline does not settle, for the radiologist to confirm.
    """

    category: str
    management: str
    reason: str
    applies: bool = True
    review_flags: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Sizes:
    total_mm: float | None
    solid_mm: float | None
    growing_total: bool
    growing_solid: bool
    slow: bool
    note: str


def _rounded(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise RuleInputError(_RULE, f"{what} must be a non-negative number of mm, got {value!r}")
    return round_half_up(value, 1)


def _total_mm(n: LungRadsInput) -> float | None:
    if n.long_axis_mm is not None and n.short_axis_mm is not None:
        try:
            return mean_diameter_mm(n.long_axis_mm, n.short_axis_mm, 1)
        except ValueError as exc:
            raise RuleInputError(_RULE, str(exc)) from exc
    if n.long_axis_mm is not None or n.short_axis_mm is not None:
        raise RuleInputError(_RULE, "give both the long and the short axis, or the mean diameter")
    return _rounded(n.mean_diameter_mm, "mean diameter")


def _growth(now_mm: float | None, prior_mm: float | None, months: float | None) -> tuple[bool, bool, str]:
    """Return (growing, slow_growth, note) from two rounded mean diameters."""
    if now_mm is None or prior_mm is None:
        return False, False, ""
    delta = round_half_up(now_mm - prior_mm, 1)
    if delta <= GROWTH_THRESHOLD_MM:
        return False, False, f"change {delta:+.1f} mm (not > 1.5 mm)"
    if months is None or months <= 12:
        when = "" if months is None else f" in {months:g} months"
        return True, False, f"grew {delta:+.1f} mm{when} (> 1.5 mm within 12 months)"
    annual = round_half_up(delta * 12.0 / months, 1)
    if annual > GROWTH_THRESHOLD_MM:
        return True, False, f"grew {delta:+.1f} mm in {months:g} months ({annual:.1f} mm per 12 months)"
    return False, True, f"slow growth {delta:+.1f} mm in {months:g} months ({annual:.1f} mm per 12 months)"


def _sizes(n: LungRadsInput, composition: Composition, status: NoduleStatus) -> _Sizes:
    total = _total_mm(n)
    solid = _rounded(n.solid_component_mm, "solid component")
    prior_total = _rounded(n.prior_mean_diameter_mm, "prior mean diameter")
    prior_solid = _rounded(n.prior_solid_component_mm, "prior solid component")
    if n.interval_months is not None and not n.interval_months >= 0:
        raise RuleInputError(
            _RULE, f"interval must be a non-negative number of months, got {n.interval_months!r}"
        )
    notes: list[str] = []
    growing_total = growing_solid = slow = False
    if status is NoduleStatus.EXISTING:
        growing_total, slow_t, note_t = _growth(total, prior_total, n.interval_months)
        if note_t:
            notes.append(f"total {note_t}")
        slow = slow_t
        if composition is Composition.PART_SOLID:
            if prior_solid == 0.0 and solid is not None and solid > 0:
                growing_solid = True
                notes.append(f"new solid component {solid:.1f} mm (none on the prior)")
            else:
                growing_solid, slow_s, note_s = _growth(solid, prior_solid, n.interval_months)
                if note_s:
                    notes.append(f"solid component {note_s}")
                slow = slow or slow_s
    if n.growing is not None:
        growing_total = growing_solid = n.growing
        notes.append(
            "growth as stated by the reader" if n.growing else "not growing, as stated by the reader"
        )
        if n.growing:
            slow = False
    if n.slow_growth:
        slow = True
        notes.append("slow growth over several screens")
    return _Sizes(total, solid, growing_total, growing_solid, slow, "; ".join(notes))


def _solid_category(size: float, status: NoduleStatus, growing: bool) -> tuple[str, str]:
    """Solid-nodule table (clinical reference §1.3)."""
    if growing:
        return ("4A", "solid, growing, < 8 mm") if size < 8 else ("4B", "solid, growing, >= 8 mm")
    if status is NoduleStatus.NEW:
        if size < 4:
            return "2", "solid, new, < 4 mm"
        if size < 6:
            return "3", "solid, new, 4 to < 6 mm"
        if size < 8:
            return "4A", "solid, new, 6 to < 8 mm"
        return "4B", "solid, new, >= 8 mm"
    col = "baseline" if status is NoduleStatus.BASELINE else "stable, classified by size (baseline column)"
    if size < 6:
        return "2", f"solid, {col}, < 6 mm"
    if size < 8:
        return "3", f"solid, {col}, 6 to < 8 mm"
    if size < 15:
        return "4A", f"solid, {col}, 8 to < 15 mm"
    return "4B", f"solid, {col}, >= 15 mm"


def _part_solid_category(
    total: float, solid: float, status: NoduleStatus, growing_solid: bool
) -> tuple[str, str]:
    """Part-solid table with decision 4 (overlapping rows: the highest category wins)."""
    rows: list[tuple[str, str]] = []
    if status is NoduleStatus.NEW:
        if total < 6:
            rows.append(("3", "part-solid, new, total < 6 mm"))
            # The "new solid component < 4 mm -> 4A" row is read as applying to new nodules of 6 mm
            # or more; otherwise the "new, total < 6 mm -> 3" row could never apply.
            if solid >= 4:
                rows.append(("4B", "part-solid, new solid component >= 4 mm"))
        elif solid < 4:
            rows.append(("4A", "part-solid, new solid component < 4 mm"))
        else:
            rows.append(("4B", "part-solid, new solid component >= 4 mm"))
    else:
        if growing_solid:
            if solid < 4:
                rows.append(("4A", "part-solid, growing solid component < 4 mm"))
            else:
                rows.append(("4B", "part-solid, growing solid component >= 4 mm"))
        col = (
            "baseline" if status is NoduleStatus.BASELINE else "stable, classified by size (baseline column)"
        )
        if solid >= 8:
            rows.append(("4B", f"part-solid, {col}, solid component >= 8 mm"))
        elif total < 6:
            rows.append(("2", f"part-solid, {col}, total < 6 mm"))
        elif solid < 6:
            rows.append(("3", f"part-solid, {col}, total >= 6 mm, solid component < 6 mm"))
        else:
            rows.append(("4A", f"part-solid, {col}, total >= 6 mm, solid component 6 to < 8 mm"))
    best = max(rows, key=lambda r: CATEGORY_ORDER[r[0]])
    others = [r for r in rows if r is not best]
    if others:
        also = "; ".join(f"{r[1]} -> {r[0]}" for r in others)
        return best[0], f"{best[1]} (highest of the matching rows; also matched: {also})"
    return best


def _ggn_category(size: float, status: NoduleStatus, growing: bool, slow: bool) -> tuple[str, str]:
    """Non-solid table, with decision 6 for a fast-growing GGN >= 30 mm."""
    if size < 30:
        state = "growing" if growing else status.value
        return "2", f"non-solid, {state}, < 30 mm"
    if status in (NoduleStatus.BASELINE, NoduleStatus.NEW):
        return "3", f"non-solid, {status.value}, >= 30 mm"
    if growing:
        return "3", "non-solid, >= 30 mm, growing faster than slowly (conservative reading)"
    return "2", "non-solid, >= 30 mm, " + ("slowly growing" if slow else "stable")


def _step_down(category: str, n: LungRadsInput, growing: bool) -> tuple[str, str] | None:
    """Stepped management (§1.1) for a nodule seen before that is stable or smaller."""
    if n.proven_benign and n.prior_category in ("4B", "4X"):
        return "2", "stepped management: category 4B proven benign after work-up"
    if growing or n.prior_category is None:
        return None
    prior = n.prior_category.upper()
    if prior == "3" and CATEGORY_ORDER.get(category, 0) <= CATEGORY_ORDER["3"]:
        return "2", "stepped management: category 3 stable or smaller at the 6-month LDCT"
    if prior == "4A" and n.airway is None and CATEGORY_ORDER.get(category, 0) <= CATEGORY_ORDER["4A"]:
        return "3", "stepped management: category 4A stable or smaller at the 3-month LDCT"
    return None


def _coerce(n: LungRadsInput) -> tuple[Composition, NoduleStatus, AirwayLevel | None]:
    try:
        composition = Composition(n.composition)
        status = NoduleStatus(n.status)
        airway = None if n.airway is None else AirwayLevel(n.airway)
    except ValueError as exc:
        raise RuleInputError(_RULE, str(exc)) from exc
    unknown = set(n.suspicious_features) - SUSPICIOUS_FEATURES
    if unknown:
        raise RuleInputError(
            _RULE, f"unknown suspicious feature(s) {sorted(unknown)}; use {sorted(SUSPICIOUS_FEATURES)}"
        )
    return composition, status, airway


def lung_rads(nodule: LungRadsInput) -> LungRadsResult:
    """Categorise one screening-CT nodule with ACR Lung-RADS v2022.

    Parameters
    ----------
    nodule
        The nodule's composition, sizes (mm), history and modifiers.

    Returns
    -------
    LungRadsResult
        Category, management and the reason (row and values used).

    Raises
    ------
    RuleInputError
        If a needed size is missing or a value is out of range.
    """
    composition, status, airway = _coerce(nodule)
    flags: list[str] = []
    if nodule.known_lung_cancer:
        return LungRadsResult(
            "",
            _NOT_APPLICABLE + ": follow the oncology plan.",
            "known lung cancer takes the exam out of Lung-RADS (v2022 note 16)",
            applies=False,
        )
    if nodule.incomplete:
        return LungRadsResult(
            "0", MANAGEMENT["0"], "incomplete: prior CT being located or lungs not fully evaluable"
        )
    if nodule.benign_calcification:
        return LungRadsResult(
            "1", MANAGEMENT["1"], "benign calcification (complete, central, popcorn or concentric)"
        )
    if nodule.fat:
        return LungRadsResult("1", MANAGEMENT["1"], "fat-containing nodule")

    if nodule.cyst is not None:
        return _with_modifiers(_cyst_category(nodule, status), nodule, status)

    sizes = _sizes(nodule, composition, status)
    if status is NoduleStatus.EXISTING and nodule.growing is None and nodule.airway is None:
        if nodule.prior_mean_diameter_mm is None:
            flags.append("seen before but no prior size given: growth not assessed, classified as stable")
        elif composition is Composition.PART_SOLID and nodule.prior_solid_component_mm is None:
            flags.append("prior solid component not given: solid-component growth not assessed")
    growth_note = f" [{sizes.note}]" if sizes.note else ""
    category: str
    reason: str
    management: str | None = None

    if airway is AirwayLevel.SEGMENTAL_OR_PROXIMAL:
        if status is NoduleStatus.EXISTING:
            category, reason = (
                "4B",
                "airway nodule, segmental or more proximal, persisting (stable or growing)",
            )
            management = _AIRWAY_4B_MANAGEMENT
        else:
            category, reason = "4A", f"airway nodule, segmental or more proximal, {status.value}"
    elif airway is AirwayLevel.SUBSEGMENTAL and not sizes.growing_total:
        state = "stable" if status is NoduleStatus.EXISTING else status.value
        category, reason = "2", f"airway nodule, subsegmental, {state}"
    else:
        if airway is AirwayLevel.SUBSEGMENTAL:
            flags.append("growing subsegmental airway nodule: no Lung-RADS row; classified as a solid nodule")
            composition = Composition.SOLID
        if sizes.total_mm is None:
            raise RuleInputError(_RULE, "the mean diameter (or both axes) of the nodule is required")
        total = sizes.total_mm
        if (
            composition is Composition.SOLID
            and nodule.juxtapleural
            and nodule.benign_juxtapleural_morphology
            and total < 10
            and not sizes.growing_total
        ):
            state = "stable" if status is NoduleStatus.EXISTING else status.value
            category, reason = "2", f"juxtapleural, solid, smooth, typical shape, < 10 mm, {state}"
        elif composition is Composition.SOLID:
            if sizes.slow and not sizes.growing_total:
                category, reason = "4B", "solid nodule growing slowly over several screens (v2022 note 8)"
            else:
                category, reason = _solid_category(total, status, sizes.growing_total)
        elif composition is Composition.PART_SOLID:
            if sizes.solid_mm is None:
                raise RuleInputError(_RULE, "a part-solid nodule needs the solid-component mean diameter")
            if sizes.solid_mm > total:
                raise RuleInputError(
                    _RULE, f"solid component {sizes.solid_mm} mm is larger than the nodule {total} mm"
                )
            if sizes.slow and not (sizes.growing_total or sizes.growing_solid):
                category, reason = (
                    "4B",
                    "part-solid nodule growing slowly over several screens (v2022 note 8)",
                )
            else:
                category, reason = _part_solid_category(total, sizes.solid_mm, status, sizes.growing_solid)
                if sizes.growing_total and not sizes.growing_solid and status is NoduleStatus.EXISTING:
                    flags.append(
                        "part-solid nodule grows in total size but not in its solid component: review"
                    )
        else:
            category, reason = _ggn_category(total, status, sizes.growing_total, sizes.slow)
        reason = f"{reason} (mean {total:.1f} mm" + (
            f", solid component {sizes.solid_mm:.1f} mm)" if composition is Composition.PART_SOLID else ")"
        )

    base = _Base(
        category, reason + growth_note, management, tuple(flags), sizes.growing_total or sizes.growing_solid
    )
    return _with_modifiers(base, nodule, status)


@dataclass(frozen=True)
class _Base:
    """A category before stepped management, 4X and category 0 are applied."""

    category: str
    reason: str
    management: str | None
    flags: tuple[str, ...]
    growing: bool


def _cyst_category(n: LungRadsInput, status: NoduleStatus) -> _Base:
    """Atypical pulmonary cyst rows (decision 11)."""
    try:
        cyst = CystType(str(n.cyst))
        change = CystChange(n.cyst_change or CystChange.NONE)
    except ValueError as exc:
        raise RuleInputError(_RULE, str(exc)) from exc
    if cyst is CystType.THIN_WALLED:
        return _Base("1", "thin-walled unilocular cyst: benign, not a Lung-RADS finding", None, (), False)
    growing = change is not CystChange.NONE
    kind = "thick-walled cyst" if cyst is CystType.THICK_WALLED else "multilocular cyst"
    rows: dict[tuple[CystType, CystChange], tuple[str, str]] = {
        (CystType.THICK_WALLED, CystChange.GROWING_CYSTIC_COMPONENT): ("3", "growing cystic component"),
        (CystType.THICK_WALLED, CystChange.GROWING_WALL_OR_NODULARITY): (
            "4B",
            "growing wall thickness or nodularity",
        ),
        (CystType.THICK_WALLED, CystChange.BECOMES_MULTILOCULAR): ("4A", "becomes multilocular"),
        (CystType.MULTILOCULAR, CystChange.GROWING): ("4B", "growing (mean diameter)"),
        (CystType.MULTILOCULAR, CystChange.MORE_LOCULATION_OR_NEW_OPACITY): (
            "4B",
            "more loculation or new or increased opacity",
        ),
        (CystType.MULTILOCULAR, CystChange.BECOMES_MULTILOCULAR): ("4A", "becomes multilocular"),
    }
    if growing:
        if (cyst, change) not in rows:
            raise RuleInputError(_RULE, f"change {change.value!r} does not apply to a {kind}")
        category, what = rows[(cyst, change)]
        return _Base(category, f"atypical pulmonary cyst: {kind}, {what}", None, (), True)
    state = "unchanged" if status is NoduleStatus.EXISTING else status.value
    return _Base("4A", f"atypical pulmonary cyst: {kind}, {state}", None, (), False)


def _with_modifiers(base: _Base, nodule: LungRadsInput, status: NoduleStatus) -> LungRadsResult:
    """Apply stepped management, the 4X upgrade and the category-0 choice to a table category."""
    category, reason, management = base.category, base.reason, base.management
    if status is NoduleStatus.EXISTING or nodule.proven_benign:
        step = _step_down(category, nodule, base.growing)
        if step is not None:
            category, step_reason = step
            reason = f"{step_reason}; by size: {reason}"
            management = None

    feats = set(nodule.suspicious_features)
    if "ggn_doubling" in feats or (feats and category in ("3", "4A", "4B")):
        listed = ", ".join(sorted(f.replace("_", " ") for f in feats))
        reason = f"4X: category {category} with suspicious features ({listed}); {reason}"
        category = "4X"
        management = None
    elif feats:
        reason += "; suspicious features noted, but 4X applies only to category 3 or 4 findings"

    if nodule.possible_infection and CATEGORY_ORDER[category] < CATEGORY_ORDER["4A"]:
        reason = f"findings suggest infection or inflammation (reader's choice of category 0); {reason}"
        category = "0"
        management = None

    return LungRadsResult(category, management or MANAGEMENT[category], reason, True, base.flags)


def overall_lung_rads(
    results: Sequence[LungRadsResult], significant_other_finding: bool = False
) -> LungRadsResult:
    """The exam-level Lung-RADS category: the most suspicious nodule's (decision 10).

    Parameters
    ----------
    results
        Per-nodule results. An empty sequence means no nodules (category 1).
    significant_other_finding
        Adds the ``S`` modifier for a clinically significant finding unrelated to lung cancer.

    Returns
    -------
    LungRadsResult
        The worst category, with the management of that nodule and the reason naming it.
    """
    suffix = "S" if significant_other_finding else ""
    s_note = "; S: significant finding unrelated to lung cancer" if suffix else ""
    not_applicable = [r for r in results if not r.applies]
    if not_applicable:
        first = not_applicable[0]
        return LungRadsResult("", first.management, first.reason, applies=False)
    if not results:
        return LungRadsResult("1" + suffix, MANAGEMENT["1"], "no lung nodules" + s_note)
    ranked = sorted(enumerate(results), key=lambda ir: CATEGORY_ORDER[ir[1].category.rstrip("S")])
    index, worst = ranked[-1]
    flags = tuple(f for r in results for f in r.review_flags)
    reason = f"most suspicious of {len(results)} nodule(s) is #{index + 1}: {worst.reason}{s_note}"
    return LungRadsResult(worst.category.rstrip("S") + suffix, worst.management, reason, True, flags)
