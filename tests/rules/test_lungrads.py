"""Lung-RADS v2022: the reference test vectors (§1.7), boundaries at every threshold, decisions (🛠)."""

from __future__ import annotations

import pytest

from radiology_app.rules import RuleInputError
from radiology_app.rules.lungrads import (
    MANAGEMENT,
    LungRadsInput,
    LungRadsResult,
    lung_rads,
    overall_lung_rads,
)


def cat(**kwargs: object) -> str:
    return lung_rads(LungRadsInput(**kwargs)).category  # type: ignore[arg-type]


# --- §1.7 test vectors -----------------------------------------------------------------------


def test_vector_baseline_solid_axes_rounded_up() -> None:
    r = lung_rads(LungRadsInput(composition="solid", long_axis_mm=7.3, short_axis_mm=5.8))
    assert r.category == "3"
    assert "6.6 mm" in r.reason
    assert r.management == MANAGEMENT["3"] == "LDCT in 6 months."


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"mean_diameter_mm": 5.9}, "2"),
        ({"mean_diameter_mm": 3.9, "status": "new"}, "2"),
        ({"mean_diameter_mm": 5.0, "status": "new"}, "3"),
        ({"mean_diameter_mm": 7.0, "status": "new"}, "4A"),
        (
            {
                "mean_diameter_mm": 7.0,
                "status": "existing",
                "prior_mean_diameter_mm": 5.0,
                "interval_months": 12,
            },
            "4A",
        ),
        (
            {
                "mean_diameter_mm": 9.0,
                "status": "existing",
                "prior_mean_diameter_mm": 7.4,
                "interval_months": 12,
            },
            "4B",
        ),
        (
            {
                "mean_diameter_mm": 9.0,
                "status": "existing",
                "prior_mean_diameter_mm": 7.5,
                "interval_months": 12,
            },
            "4A",
        ),
        ({"composition": "part_solid", "mean_diameter_mm": 10, "solid_component_mm": 5}, "3"),
        ({"composition": "part_solid", "mean_diameter_mm": 10, "solid_component_mm": 7}, "4A"),
        ({"composition": "part_solid", "mean_diameter_mm": 12, "solid_component_mm": 8}, "4B"),
        (
            {
                "composition": "part_solid",
                "mean_diameter_mm": 10,
                "solid_component_mm": 3,
                "status": "existing",
                "prior_mean_diameter_mm": 10,
                "prior_solid_component_mm": 0,
                "interval_months": 12,
            },
            "4A",
        ),
        ({"composition": "ground_glass", "mean_diameter_mm": 25}, "2"),
        ({"composition": "ground_glass", "mean_diameter_mm": 31}, "3"),
        (
            {"mean_diameter_mm": 8.0, "juxtapleural": True, "benign_juxtapleural_morphology": True},
            "2",
        ),
        ({"airway": "segmental_or_proximal"}, "4A"),
        (
            {
                "mean_diameter_mm": 7.0,
                "status": "existing",
                "prior_mean_diameter_mm": 7.0,
                "interval_months": 6,
                "prior_category": "3",
            },
            "2",
        ),
        ({"mean_diameter_mm": 9.0, "suspicious_features": ("spiculation",)}, "4X"),
    ],
)
def test_reference_vectors(kwargs: dict[str, object], expected: str) -> None:
    assert cat(**kwargs) == expected


def test_exactly_1_5_mm_is_not_growth_and_says_so() -> None:
    r = lung_rads(
        LungRadsInput(mean_diameter_mm=9.0, status="existing", prior_mean_diameter_mm=7.5, interval_months=12)
    )
    assert r.category == "4A"
    assert "not > 1.5 mm" in r.reason
    assert "stable" in r.reason


# --- boundaries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "baseline", "new"),
    [
        (3.9, "2", "2"),
        (4.0, "2", "3"),
        (5.9, "2", "3"),
        (5.95, "3", "4A"),  # rounds to 6.0
        (6.0, "3", "4A"),
        (7.9, "3", "4A"),
        (8.0, "4A", "4B"),
        (14.9, "4A", "4B"),
        (14.95, "4B", "4B"),
        (15.0, "4B", "4B"),
    ],
)
def test_solid_size_boundaries(size: float, baseline: str, new: str) -> None:
    assert cat(mean_diameter_mm=size) == baseline
    assert cat(mean_diameter_mm=size, status="new") == new


def test_rounding_decision_axes_6_2_by_5_7() -> None:
    """🛠 1: the mean 5.95 rounds to 6.0 before comparison -> 3 (unrounded would give 2)."""
    assert cat(long_axis_mm=6.2, short_axis_mm=5.7) == "3"
    assert cat(long_axis_mm=6.2, short_axis_mm=5.6) == "2"  # 5.9


@pytest.mark.parametrize(
    ("now", "prior", "expected"),
    [
        (7.0, 5.5, "3"),  # +1.5: not growing; 7.0 by size -> 3
        (7.0, 5.4, "4A"),  # +1.6: growing < 8
        (7.9, 6.3, "4A"),  # +1.6: growing, 7.9 < 8
        (8.0, 6.4, "4B"),  # +1.6: growing >= 8
        (8.0, 6.5, "4A"),  # +1.5: not growing; 8.0 by size -> 4A
    ],
)
def test_growth_boundary(now: float, prior: float, expected: str) -> None:
    r = lung_rads(
        LungRadsInput(
            mean_diameter_mm=now, status="existing", prior_mean_diameter_mm=prior, interval_months=12
        )
    )
    assert r.category == expected


def test_growth_uses_rounded_values() -> None:
    # 7.04 -> 7.0 and 5.46 -> 5.5: rounded difference 1.5 -> not growth (raw difference 1.58)
    assert cat(mean_diameter_mm=7.04, status="existing", prior_mean_diameter_mm=5.46) == "3"


def test_unknown_interval_is_treated_as_within_12_months() -> None:
    assert cat(mean_diameter_mm=7.0, status="existing", prior_mean_diameter_mm=5.0) == "4A"


def test_slow_growth_over_24_months_is_4b_for_solid() -> None:
    """🛠 2: +2.0 mm in 24 months = 1.0 mm per 12 months: slow growth -> 4B (note 8)."""
    r = lung_rads(
        LungRadsInput(mean_diameter_mm=7.0, status="existing", prior_mean_diameter_mm=5.0, interval_months=24)
    )
    assert r.category == "4B"
    assert "slow" in r.reason


def test_fast_growth_over_18_months_is_growth() -> None:
    # +3.0 mm in 18 months = 2.0 mm per 12 months > 1.5
    assert (
        cat(mean_diameter_mm=7.0, status="existing", prior_mean_diameter_mm=4.0, interval_months=18) == "4A"
    )


def test_slow_growth_flag_for_ggn_stays_2() -> None:
    assert cat(composition="ground_glass", mean_diameter_mm=20, status="existing", slow_growth=True) == "2"


def test_explicit_growing_overrides_measurements() -> None:
    assert cat(mean_diameter_mm=9.0, status="existing", prior_mean_diameter_mm=9.0, growing=True) == "4B"


# --- part-solid -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "solid", "expected"),
    [
        (5.9, 3.0, "2"),
        (6.0, 5.9, "3"),
        (6.0, 5.95, "4A"),  # solid rounds to 6.0
        (10.0, 7.9, "4A"),
        (10.0, 8.0, "4B"),
    ],
)
def test_part_solid_baseline_boundaries(total: float, solid: float, expected: str) -> None:
    assert cat(composition="part_solid", mean_diameter_mm=total, solid_component_mm=solid) == expected


@pytest.mark.parametrize(
    ("total", "solid", "expected"),
    [
        (5.0, 2.0, "3"),  # new, total < 6, small solid component
        (5.0, 4.0, "4B"),  # 🛠 4: overlap (3 vs 4B) -> highest
        (8.0, 3.9, "4A"),
        (8.0, 4.0, "4B"),
    ],
)
def test_part_solid_new(total: float, solid: float, expected: str) -> None:
    assert (
        cat(composition="part_solid", mean_diameter_mm=total, solid_component_mm=solid, status="new")
        == expected
    )


def test_overlap_decision_is_explained() -> None:
    r = lung_rads(
        LungRadsInput(composition="part_solid", mean_diameter_mm=5.0, solid_component_mm=4.0, status="new")
    )
    assert r.category == "4B"
    assert "highest of the matching rows" in r.reason
    assert "total < 6 mm -> 3" in r.reason


def test_part_solid_growing_solid_component() -> None:
    common = {
        "composition": "part_solid",
        "status": "existing",
        "mean_diameter_mm": 12.0,
        "prior_mean_diameter_mm": 12.0,
    }
    assert cat(solid_component_mm=5.0, prior_solid_component_mm=3.4, **common) == "4B"  # +1.6, >= 4
    assert cat(solid_component_mm=3.5, prior_solid_component_mm=1.9, **common) == "4A"  # +1.6, < 4
    assert (
        cat(solid_component_mm=5.0, prior_solid_component_mm=3.5, **common) == "3"
    )  # +1.5 -> stable, by size


def test_part_solid_total_grows_solid_does_not_is_flagged() -> None:
    """🛠 5: reclassify by size and flag for review."""
    r = lung_rads(
        LungRadsInput(
            composition="part_solid",
            status="existing",
            mean_diameter_mm=10.0,
            prior_mean_diameter_mm=7.0,
            solid_component_mm=3.0,
            prior_solid_component_mm=3.0,
            interval_months=12,
        )
    )
    assert r.category == "3"
    assert any("solid component" in f for f in r.review_flags)


def test_part_solid_needs_solid_component() -> None:
    with pytest.raises(RuleInputError, match="solid-component"):
        lung_rads(LungRadsInput(composition="part_solid", mean_diameter_mm=10.0))


def test_solid_component_larger_than_nodule_is_rejected() -> None:
    with pytest.raises(RuleInputError, match="larger than the nodule"):
        lung_rads(LungRadsInput(composition="part_solid", mean_diameter_mm=5.0, solid_component_mm=6.0))


# --- ground glass ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "status", "expected"),
    [
        (29.9, "baseline", "2"),
        (29.95, "baseline", "3"),  # rounds to 30.0
        (30.0, "new", "3"),
        (35.0, "existing", "2"),  # stable >= 30 mm
    ],
)
def test_ggn(size: float, status: str, expected: str) -> None:
    assert cat(composition="ground_glass", mean_diameter_mm=size, status=status) == expected


def test_ggn_growing_under_30_stays_2_but_fast_growing_over_30_is_3() -> None:
    """🛠 6: fast-growing GGN >= 30 mm -> 3."""
    assert (
        cat(composition="ground_glass", mean_diameter_mm=20, status="existing", prior_mean_diameter_mm=15)
        == "2"
    )
    assert (
        cat(composition="ground_glass", mean_diameter_mm=34, status="existing", prior_mean_diameter_mm=30)
        == "3"
    )


def test_ggn_doubling_is_4x_from_any_category() -> None:
    r = lung_rads(
        LungRadsInput(composition="ground_glass", mean_diameter_mm=14, suspicious_features=("ggn_doubling",))
    )
    assert r.category == "4X"
    assert r.management == MANAGEMENT["4B"]


# --- juxtapleural, airway, calcified ---------------------------------------------------------


@pytest.mark.parametrize(("size", "expected"), [(9.9, "2"), (9.95, "4A"), (10.0, "4A")])
def test_juxtapleural_10mm_boundary(size: float, expected: str) -> None:
    assert cat(mean_diameter_mm=size, juxtapleural=True, benign_juxtapleural_morphology=True) == expected


def test_juxtapleural_needs_benign_morphology() -> None:
    assert cat(mean_diameter_mm=8.0, juxtapleural=True) == "4A"


def test_juxtapleural_stable_stays_2_growing_is_solid() -> None:
    """🛠 8."""
    base = {"juxtapleural": True, "benign_juxtapleural_morphology": True, "status": "existing"}
    assert cat(mean_diameter_mm=8.0, prior_mean_diameter_mm=8.0, **base) == "2"
    assert cat(mean_diameter_mm=8.0, prior_mean_diameter_mm=6.0, **base) == "4B"


def test_airway_rows() -> None:
    r = lung_rads(LungRadsInput(airway="segmental_or_proximal", status="existing"))
    assert r.category == "4B"
    assert "bronchoscopy" in r.management
    assert cat(airway="subsegmental") == "2"
    assert cat(airway="subsegmental", status="existing", mean_diameter_mm=5, prior_mean_diameter_mm=5) == "2"


def test_growing_subsegmental_airway_nodule_is_flagged() -> None:
    """🛠 7."""
    r = lung_rads(
        LungRadsInput(airway="subsegmental", status="existing", mean_diameter_mm=7, prior_mean_diameter_mm=5)
    )
    assert r.category == "4A"
    assert r.review_flags


def test_airway_4a_is_not_stepped_down() -> None:
    r = lung_rads(LungRadsInput(airway="segmental_or_proximal", status="existing", prior_category="4A"))
    assert r.category == "4B"


@pytest.mark.parametrize("flag", ["benign_calcification", "fat"])
def test_benign_features_give_1(flag: str) -> None:
    assert cat(mean_diameter_mm=20.0, **{flag: True}) == "1"


# --- stepped management, 4X, 0 ---------------------------------------------------------------


def test_stepped_4a_stable_at_3_months_gives_3() -> None:
    r = lung_rads(
        LungRadsInput(
            mean_diameter_mm=9.0,
            status="existing",
            prior_mean_diameter_mm=9.2,
            interval_months=3,
            prior_category="4A",
        )
    )
    assert r.category == "3"
    assert "stepped" in r.reason


def test_stepped_not_applied_when_size_band_rises() -> None:
    # prior 3 (7.5 mm), now 8.5 mm (+1.0, not growth) -> by size 4A, no step-down
    assert (
        cat(mean_diameter_mm=8.5, status="existing", prior_mean_diameter_mm=7.5, prior_category="3") == "4A"
    )


def test_stepped_not_applied_when_growing() -> None:
    assert (
        cat(mean_diameter_mm=7.5, status="existing", prior_mean_diameter_mm=5.5, prior_category="3") == "4A"
    )


def test_4b_proven_benign_gives_2_but_stable_4b_stays() -> None:
    assert (
        cat(
            mean_diameter_mm=16,
            status="existing",
            prior_mean_diameter_mm=16,
            prior_category="4B",
            proven_benign=True,
        )
        == "2"
    )
    assert cat(mean_diameter_mm=16, status="existing", prior_mean_diameter_mm=16, prior_category="4B") == "4B"


def test_4x_needs_category_3_or_4() -> None:
    r = lung_rads(LungRadsInput(mean_diameter_mm=4.0, suspicious_features=("spiculation",)))
    assert r.category == "2"
    assert "4X applies only" in r.reason
    assert cat(mean_diameter_mm=7.0, suspicious_features=("lymphadenopathy",)) == "4X"


def test_unknown_suspicious_feature_rejected() -> None:
    with pytest.raises(RuleInputError, match="suspicious feature"):
        lung_rads(LungRadsInput(mean_diameter_mm=7.0, suspicious_features=("lobulated",)))


def test_category_0() -> None:
    assert cat(incomplete=True) == "0"
    r = lung_rads(LungRadsInput(mean_diameter_mm=5.0, status="new", possible_infection=True))
    assert r.category == "0"
    assert "1-3 months" in r.management
    # a nodule already meeting 4B keeps 4B (reference §1.4)
    assert cat(mean_diameter_mm=9.0, status="new", possible_infection=True) == "4B"


def test_known_lung_cancer_not_applicable() -> None:
    r = lung_rads(LungRadsInput(mean_diameter_mm=9.0, known_lung_cancer=True))
    assert not r.applies and r.category == ""


def test_missing_size_raises_naming_the_rule() -> None:
    with pytest.raises(RuleInputError, match=r"Lung-RADS: .*mean diameter"):
        lung_rads(LungRadsInput())
    with pytest.raises(RuleInputError, match="both"):
        lung_rads(LungRadsInput(long_axis_mm=5.0))
    with pytest.raises(RuleInputError):
        lung_rads(LungRadsInput(composition="calcified", mean_diameter_mm=5.0))


# --- exam level -----------------------------------------------------------------------------


def _r(category: str) -> LungRadsResult:
    return LungRadsResult(category, MANAGEMENT[category], f"row {category}")


def test_overall_is_worst_nodule() -> None:
    r = overall_lung_rads([_r("2"), _r("4A"), _r("3")])
    assert r.category == "4A"
    assert "#2" in r.reason


def test_overall_order_with_category_0() -> None:
    """🛠 10: 0 outranks 1-3 but not 4A or higher."""
    assert overall_lung_rads([_r("3"), _r("0")]).category == "0"
    assert overall_lung_rads([_r("0"), _r("4A")]).category == "4A"
    assert overall_lung_rads([_r("4B"), _r("4X")]).category == "4X"


def test_overall_empty_and_s_modifier() -> None:
    assert overall_lung_rads([]).category == "1"
    assert overall_lung_rads([_r("2")], significant_other_finding=True).category == "2S"


def test_overall_not_applicable_propagates() -> None:
    na = lung_rads(LungRadsInput(mean_diameter_mm=5.0, known_lung_cancer=True))
    assert not overall_lung_rads([_r("2"), na]).applies


# --- atypical cysts and missing priors (🛠 11, 12) ---------------------------------------------


@pytest.mark.parametrize(
    ("cyst", "change", "status", "expected"),
    [
        ("thick_walled", None, "baseline", "4A"),
        ("multilocular", None, "new", "4A"),
        ("thick_walled", "growing_cystic_component", "existing", "3"),
        ("thick_walled", "growing_wall_or_nodularity", "existing", "4B"),
        ("thick_walled", "becomes_multilocular", "existing", "4A"),
        ("multilocular", "growing", "existing", "4B"),
        ("multilocular", "more_loculation_or_new_opacity", "existing", "4B"),
        ("multilocular", "none", "existing", "4A"),
        ("thin_walled", None, "baseline", "1"),
    ],
)
def test_atypical_cysts(cyst: str, change: str | None, status: str, expected: str) -> None:
    assert cat(cyst=cyst, cyst_change=change, status=status) == expected


def test_cyst_stepped_and_bad_change() -> None:
    r = lung_rads(LungRadsInput(cyst="thick_walled", status="existing", prior_category="4A"))
    assert r.category == "3" and "stepped" in r.reason
    with pytest.raises(RuleInputError, match="does not apply"):
        lung_rads(LungRadsInput(cyst="thick_walled", cyst_change="growing", status="existing"))
    with pytest.raises(RuleInputError):
        lung_rads(LungRadsInput(cyst="bullous"))


def test_missing_prior_is_flagged() -> None:
    r = lung_rads(LungRadsInput(mean_diameter_mm=7.0, status="existing"))
    assert r.category == "3"
    assert any("growth not assessed" in f for f in r.review_flags)
    r2 = lung_rads(
        LungRadsInput(
            composition="part_solid",
            mean_diameter_mm=9,
            solid_component_mm=4,
            status="existing",
            prior_mean_diameter_mm=9,
        )
    )
    assert any("solid-component growth not assessed" in f for f in r2.review_flags)
    assert not lung_rads(
        LungRadsInput(mean_diameter_mm=7.0, status="existing", prior_mean_diameter_mm=7.0)
    ).review_flags


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_non_finite_or_negative_sizes_rejected(bad: float) -> None:
    with pytest.raises(RuleInputError, match="Lung-RADS"):
        lung_rads(LungRadsInput(mean_diameter_mm=bad))
