"""Words of the report: display names, clinical-information summary and the impression.

Pure functions over :class:`~radiology_app.core.findings.Findings`, shared by the PDF, the DICOM SR and
the GUI, so every output says the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from radiology_app.core.findings import BENIGN_CALCIFICATIONS, Findings, NoduleFinding

#: Spiculation score (0..1) from which a margin is called spiculated (and Brock's spiculation is "yes").
SPICULATED_FROM = 0.5
#: Score from which a margin is called irregular/lobulated rather than smooth.
IRREGULAR_FROM = 0.25

DIAGNOSIS_NAMES: dict[str, str] = {
    "adenocarcinoma": "Adenocarcinoma",
    "squamous_cell_carcinoma": "Squamous cell carcinoma",
    "small_cell_carcinoma": "Small cell carcinoma",
    "carcinoid": "Carcinoid",
    "metastasis": "Metastasis",
    "granuloma": "Granuloma",
    "hamartoma": "Hamartoma",
    "infection": "Infection / inflammation",
    "intrapulmonary_lymph_node": "Intrapulmonary lymph node",
}

COMPOSITION_NAMES: dict[str, str] = {
    "solid": "Solid",
    "part_solid": "Part-solid",
    "ground_glass": "Ground-glass",
}

FACT_LABELS: dict[str, str] = {
    "age": "Age",
    "sex": "Sex",
    "smoking_status": "Smoking",
    "pack_years": "Pack-years",
    "years_since_quit": "Years since quitting",
    "family_history_lung_cancer": "Family history of lung cancer",
    "personal_cancer_history": "Personal history of cancer",
    "cancer_site": "Cancer site",
    "fever": "Fever",
    "cough": "Cough",
    "hemoptysis": "Haemoptysis",
    "weight_loss": "Weight loss",
    "immunosuppressed": "Immunosuppression",
    "tb_or_fungal_exposure": "TB / endemic fungal exposure",
    "emphysema_or_copd": "Emphysema / COPD",
}


ELLIPSIS = "\u2026"


def cap_text(text: str, max_chars: int) -> str:
    """``text`` on one line, cut to at most ``max_chars`` characters (at a space when one is near) + "…"."""
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    cut = flat[: max_chars - 1]
    space = cut.rfind(" ")
    if space >= max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + ELLIPSIS


def diagnosis_name(code: str) -> str:
    """Display name of a diagnosis class (unknown codes are title-cased)."""
    return DIAGNOSIS_NAMES.get(code, code.replace("_", " ").capitalize())


def composition_name(code: str | None) -> str:
    """Display name of a composition, ``"-"`` when unknown."""
    if code is None:
        return "-"
    return COMPOSITION_NAMES.get(code, code.replace("_", " ").capitalize())


def margin_name(spiculation_score: float | None) -> str:
    """Margin description from the spiculation score: smooth, irregular/lobulated or spiculated."""
    if spiculation_score is None:
        return "-"
    if spiculation_score >= SPICULATED_FROM:
        return "spiculated"
    if spiculation_score >= IRREGULAR_FROM:
        return "lobulated/irregular"
    return "smooth"


#: The margins :func:`margin_name` gives, from smooth to spiculated.
MARGINS: tuple[str, ...] = ("smooth", "lobulated/irregular", "spiculated")


def margin_score(margin: str, current: float | None) -> float:
    """The spiculation score for a margin a clinician sets: ``current`` when it already reads as
    ``margin``, else the lowest score that does (0, :data:`IRREGULAR_FROM`, :data:`SPICULATED_FROM`).

    Raises
    ------
    ValueError
        If ``margin`` is not one of :data:`MARGINS`.
    """
    if margin not in MARGINS:
        raise ValueError(f"margin must be one of {', '.join(MARGINS)}, not {margin!r}")
    if current is not None and margin_name(current) == margin:
        return current
    return (0.0, IRREGULAR_FROM, SPICULATED_FROM)[MARGINS.index(margin)]


def location_name(n: NoduleFinding) -> str:
    """Lobe (or side) plus juxtapleural, e.g. ``"RUL, juxtapleural"``."""
    where = n.lobe or (f"{n.side} lung" if n.side else "-")
    return f"{where}, juxtapleural" if n.juxtapleural else where


def nodule_type(n: NoduleFinding) -> str:
    """Composition with calcification and fat, e.g. ``"Solid, calcified (popcorn), fat"``."""
    parts = [composition_name(n.composition)]
    if n.calcification:
        parts.append(f"calcified ({n.calcification})")
    if n.fat:
        parts.append("fat-containing")
    return ", ".join(parts)


def fmt_mm(v: float | None) -> str:
    """One decimal, or ``"-"``."""
    return "-" if v is None else f"{v:.1f}"


def fmt_pct(p: float | None, digits: int = 0) -> str:
    """A probability in [0, 1] as a percentage, or ``"-"``."""
    if p is None:
        return "-"
    return f"{100.0 * p:.{digits}f}%"


def fmt_risk(p: float | None) -> str:
    """A probability as a whole percentage, ``< 1%`` rather than ``0%`` below half a percent."""
    return "< 1%" if p is not None and p < 0.005 else fmt_pct(p)


def size_text(n: NoduleFinding) -> str:
    """``"9.1 x 7.3 mm (mean 8.2 mm)"`` plus the solid component for part-solid nodules."""
    text = f"{fmt_mm(n.long_axis_mm)} x {fmt_mm(n.short_axis_mm)} mm (mean {fmt_mm(n.mean_diameter_mm)} mm)"
    if n.composition == "part_solid" and n.solid_component_mm is not None:
        text += f", solid component {fmt_mm(n.solid_component_mm)} mm"
    return text


def fact_value_text(name: str, value: Any) -> str:
    """Human text of one fact value (``True`` -> ``"yes"``, ``False`` -> ``"no / denied"``)."""
    if value is True:
        return "yes"
    if value is False:
        return "no / denied"
    if name == "sex":
        return {"F": "female", "M": "male"}.get(str(value), str(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def facts_summary(facts: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The facts a note states, as ``(label, value)`` pairs in a fixed clinical order."""
    out: list[tuple[str, str]] = []
    for name, label in FACT_LABELS.items():
        entry = facts.get(name)
        if entry is None or entry.get("value") is None:
            continue
        out.append((label, fact_value_text(name, entry["value"])))
    return out


def compose_impression(findings: Findings) -> tuple[str, ...]:
    """Numbered impression lines: nodules, the exam-level Lung-RADS and Fleischner, risk models.

    The wording states the guideline used and the model names, as the reporting conventions ask.
    """
    nodules = findings.reported_nodules
    lines: list[str] = []
    if not nodules:
        lines.append("No pulmonary nodule identified by the AI system.")
    else:
        count = "One pulmonary nodule" if len(nodules) == 1 else f"{len(nodules)} pulmonary nodules"
        lines.append(f"{count}. Largest: {_largest_text(nodules)}.")
        for n in nodules:
            if n.top_diagnosis is not None:
                lines.append(f"{n.id} ({location_name(n)}): {differential_phrase(n)}")
    if findings.lung_rads.category:
        mgmt = f": {findings.lung_rads.management}" if findings.lung_rads.management else ""
        lines.append(f"Lung-RADS v2022 category {findings.lung_rads.category}{mgmt}.")
    if findings.fleischner.recommendation:
        lines.append(f"Fleischner 2017: {findings.fleischner.recommendation}.")
    return tuple(f"{i}. {_strip_dot(t)}." for i, t in enumerate(lines, 1))


#: Malignancy bands of the impression (BTS 2015: < 10 % low, 10-70 % intermediate, > 70 % high).
LOW_RISK_BELOW = 0.10
HIGH_RISK_FROM = 0.70
_MALIGNANT = frozenset(
    {"adenocarcinoma", "squamous_cell_carcinoma", "small_cell_carcinoma", "carcinoid", "metastasis"}
)


def differential_phrase(n: NoduleFinding) -> str:
    """The impression's reading of a nodule's differential, by malignancy band, as a radiologist
    words it: a benign sign first, else suspicious / indeterminate / probably benign with the leading
    malignant and benign diagnoses, then the AI malignancy estimate and Brock."""
    mal = n.malignancy_probability
    malignant = [(d, p) for d, p in n.differential if d in _MALIGNANT]
    benign = [(d, p) for d, p in n.differential if d not in _MALIGNANT]
    first_m = diagnosis_name(malignant[0][0]).lower() if malignant else "malignancy"
    first_b = diagnosis_name(benign[0][0]).lower() if benign else "a benign lesion"
    risk = f"AI malignancy estimate {fmt_risk(mal)}, Brock {fmt_pct(n.brock_probability, 1)}"
    benign_calcification = n.calcification in BENIGN_CALCIFICATIONS
    if n.fat or benign_calcification:
        sign = "macroscopic fat" if n.fat else f"benign ({n.calcification}) calcification"
        return f"{sign}: benign, most likely {first_b} ({risk})."
    if mal is None:
        dx, p = n.differential[0]
        return f"most likely {diagnosis_name(dx).lower()} ({fmt_pct(p)}, AI differential; {risk})."
    if mal >= HIGH_RISK_FROM:
        return f"suspicious for malignancy, most likely {first_m} ({risk})."
    if mal >= LOW_RISK_BELOW:
        return f"indeterminate: {first_m} versus {first_b} ({risk})."
    if n.perifissural:
        return f"perifissural nodule, probably {first_b} ({risk})."
    if n.composition in ("ground_glass", "part_solid"):
        # a subsolid nodule that persists is in the adenocarcinoma spectrum (AIS / MIA) whatever its
        # present estimate: the follow-up CT decides
        return f"probably {first_b}; if it persists, the adenocarcinoma spectrum ({risk})."
    return f"probably benign, most likely {first_b} ({risk})."


def _strip_dot(text: str) -> str:
    return text.rstrip(". ")


def _largest_text(nodules: Sequence[NoduleFinding]) -> str:
    big = max(nodules, key=lambda n: n.mean_diameter_mm or 0.0)
    kind = composition_name(big.composition).lower()
    return f"{big.id}, {kind}, {fmt_mm(big.mean_diameter_mm)} mm, {location_name(big)}"
