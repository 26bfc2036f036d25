"""Fleischner 2017: reference vectors (§2.6), the rounding boundaries, scope and decisions (🛠)."""

from __future__ import annotations

import pytest

from radiology_app.rules import RuleInputError
from radiology_app.rules.fleischner import (
    FleischnerInput,
    FleischnerPatient,
    fleischner,
    suggest_high_risk,
)

LOW = FleischnerPatient(age_years=60, high_risk=False)
HIGH = FleischnerPatient(age_years=60, high_risk=True)


def solid(mm: float) -> FleischnerInput:
    return FleischnerInput(composition="solid", mean_diameter_mm=mm)


# --- §2.6 vectors -----------------------------------------------------------------------------


def test_single_solid_5_4_low_risk() -> None:
    r = fleischner([solid(5.4)], LOW)
    assert r.recommendation == "No routine follow-up."
    assert "5 mm" in r.reason and r.applies


def test_single_solid_5_5_rounds_to_6_low_risk() -> None:
    r = fleischner([solid(5.5)], LOW)
    assert r.recommendation == "CT at 6-12 months, then consider CT at 18-24 months."
    assert "6 mm" in r.reason


def test_single_solid_7_high_risk() -> None:
    assert fleischner([solid(7)], HIGH).recommendation == "CT at 6-12 months, then CT at 18-24 months."


@pytest.mark.parametrize("patient", [LOW, HIGH])
def test_single_solid_9_any_risk(patient: FleischnerPatient) -> None:
    assert (
        fleischner([solid(9)], patient).recommendation
        == "Consider CT at 3 months, PET/CT, or tissue sampling."
    )


def test_multiple_solid_largest_7_low_risk() -> None:
    r = fleischner([solid(4), solid(7), solid(5)], LOW)
    assert r.recommendation == "CT at 3-6 months, then consider CT at 18-24 months."
    assert "largest 7 mm" in r.reason


def test_single_ggn_8() -> None:
    r = fleischner([FleischnerInput(composition="ground_glass", mean_diameter_mm=8)], LOW)
    assert (
        r.recommendation == "CT at 6-12 months to confirm persistence, then CT every 2 years until 5 years."
    )


def test_single_part_solid_8_solid_4() -> None:
    r = fleischner([FleischnerInput(composition="part_solid", mean_diameter_mm=8, solid_component_mm=4)], LOW)
    assert r.recommendation.startswith("CT at 3-6 months to confirm persistence.")
    assert "solid component remains < 6 mm, annual CT should be performed for 5 years" in r.recommendation
    assert "highly suspicious" not in r.recommendation


@pytest.mark.parametrize(
    ("patient", "why"),
    [
        (FleischnerPatient(age_years=30), "younger than 35"),
        (FleischnerPatient(age_years=60, known_cancer=True), "known primary cancer"),
        (FleischnerPatient(age_years=60, immunosuppressed=True), "immunocompromised"),
        (FleischnerPatient(age_years=60, screening=True), "screening"),
    ],
)
def test_not_applicable(patient: FleischnerPatient, why: str) -> None:
    r = fleischner([solid(7)], patient)
    assert not r.applies
    assert why in r.reason
    assert "does not apply" in r.recommendation


# --- boundaries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mm", "low", "high"),
    [
        (5.49, "No routine follow-up.", "Optional CT at 12 months."),
        (
            5.5,
            "CT at 6-12 months, then consider CT at 18-24 months.",
            "CT at 6-12 months, then CT at 18-24 months.",
        ),
        (
            8.4,
            "CT at 6-12 months, then consider CT at 18-24 months.",
            "CT at 6-12 months, then CT at 18-24 months.",
        ),
        (
            8.5,
            "Consider CT at 3 months, PET/CT, or tissue sampling.",
            "Consider CT at 3 months, PET/CT, or tissue sampling.",
        ),
    ],
)
def test_single_solid_boundaries(mm: float, low: str, high: str) -> None:
    assert fleischner([solid(mm)], LOW).recommendation == low
    assert fleischner([solid(mm)], HIGH).recommendation == high


def test_axes_are_averaged_then_rounded() -> None:
    # (6.0 + 5.0) / 2 = 5.5 -> 6 mm
    r = fleischner([FleischnerInput(long_axis_mm=6.0, short_axis_mm=5.0)], LOW)
    assert r.recommendation.startswith("CT at 6-12 months")


def test_age_35_applies_34_does_not() -> None:
    assert fleischner([solid(7)], FleischnerPatient(age_years=35, high_risk=False)).applies
    assert not fleischner([solid(7)], FleischnerPatient(age_years=34.9, high_risk=False)).applies


def test_multiple_solid_rows() -> None:
    assert fleischner([solid(3), solid(5)], LOW).recommendation == "No routine follow-up."
    assert fleischner([solid(3), solid(5)], HIGH).recommendation == "Optional CT at 12 months."
    assert (
        fleischner([solid(3), solid(12)], HIGH).recommendation == "CT at 3-6 months, then CT at 18-24 months."
    )


def test_subsolid_rows() -> None:
    ggn = FleischnerInput(composition="ground_glass", mean_diameter_mm=5)
    assert fleischner([ggn], LOW).recommendation == "No routine follow-up."
    big = FleischnerInput(composition="ground_glass", mean_diameter_mm=9)
    assert (
        fleischner([ggn, ggn], LOW).recommendation
        == "CT at 3-6 months. If stable, consider CT at 2 and 4 years."
    )
    assert fleischner([ggn, big], LOW).recommendation.startswith("CT at 3-6 months. Subsequent management")


def test_part_solid_under_6_managed_as_ggn() -> None:
    """🛠 4."""
    r = fleischner(
        [FleischnerInput(composition="part_solid", mean_diameter_mm=5, solid_component_mm=2)], HIGH
    )
    assert r.recommendation == "No routine follow-up."
    assert "managed as ground-glass" in r.reason


def test_part_solid_with_solid_6_is_highly_suspicious() -> None:
    r = fleischner(
        [FleischnerInput(composition="part_solid", mean_diameter_mm=12, solid_component_mm=5.5)], LOW
    )
    assert "highly suspicious" in r.recommendation  # 5.5 rounds to 6


def test_part_solid_without_solid_size_raises() -> None:
    with pytest.raises(RuleInputError, match=r"Fleischner: .*solid-component"):
        fleischner([FleischnerInput(composition="part_solid", mean_diameter_mm=9)], LOW)


def test_unknown_risk_uses_high_risk_row_and_says_so() -> None:
    """🛠 2."""
    r = fleischner([solid(7)], FleischnerPatient(age_years=60))
    assert r.recommendation == "CT at 6-12 months, then CT at 18-24 months."
    assert "risk not chosen" in r.reason


def test_unknown_age_assumed_adult() -> None:
    r = fleischner([solid(4)], FleischnerPatient(high_risk=False))
    assert r.applies and "age unknown" in r.reason


def test_mixed_solid_and_subsolid_takes_most_urgent() -> None:
    """🛠 3: solid 4 mm (no routine follow-up) vs GGN 5 mm (multiple subsolid < 6 mm: CT at 3-6 months)."""
    r = fleischner([solid(4), FleischnerInput(composition="ground_glass", mean_diameter_mm=5)], LOW)
    assert r.recommendation == "CT at 3-6 months. If stable, consider CT at 2 and 4 years."
    assert "also evaluated" in r.reason


def test_perifissural_and_calcified_are_ignored() -> None:
    """🛠 5."""
    pfn = FleischnerInput(composition="solid", mean_diameter_mm=7, perifissural=True)
    assert "perifissural" in fleischner([pfn], HIGH).recommendation
    r = fleischner([pfn, solid(4)], HIGH)
    assert r.recommendation == "Optional CT at 12 months."
    assert "ignored" in r.reason
    calc = FleischnerInput(composition="solid", mean_diameter_mm=9, benign_calcification=True)
    assert "calcification" in fleischner([calc], HIGH).recommendation


def test_no_nodules_and_bad_composition() -> None:
    assert fleischner([], LOW).recommendation == "No routine follow-up."
    with pytest.raises(RuleInputError, match="composition"):
        fleischner([FleischnerInput(composition="cavitary", mean_diameter_mm=9)], LOW)
    with pytest.raises(RuleInputError, match="mean diameter"):
        fleischner([FleischnerInput()], LOW)


def test_suggest_high_risk() -> None:
    high, why = suggest_high_risk(smoking_status="former", pack_years=35, years_since_quit=5)
    assert high and "NLST" in why
    assert suggest_high_risk(family_history_lung_cancer=True)[0]
    assert suggest_high_risk(emphysema_or_fibrosis=True)[0]
    low, why = suggest_high_risk(smoking_status="never", age_years=50)
    assert not low and "low risk" in why
    # unknown smoking history: the conservative row, as when no risk is chosen
    for unknown in (None, "unknown"):
        high_u, why_u = suggest_high_risk(smoking_status=unknown)
        assert high_u and "not known" in why_u
    assert "NLST" not in suggest_high_risk(smoking_status="former", pack_years=35, years_since_quit=20)[1]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_non_finite_or_negative_sizes_rejected(bad: float) -> None:
    with pytest.raises(RuleInputError, match="Fleischner"):
        fleischner([FleischnerInput(mean_diameter_mm=bad)], LOW)
