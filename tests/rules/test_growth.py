"""Sphere volume, VDT and percent change (§5), with the published cross-checks."""

from __future__ import annotations

import pytest

from radiology_app.rules import RuleInputError
from radiology_app.rules.growth import (
    assess_growth,
    percent_volume_change,
    sphere_diameter_mm,
    sphere_volume_mm3,
    vdt_band,
    volume_doubling_time_days,
    volume_doubling_time_from_diameters_days,
)
from radiology_app.rules.rounding import round_half_up


@pytest.mark.parametrize(("d", "v"), [(4, 34), (6, 113), (8, 268), (10, 524), (15, 1767), (30, 14137)])
def test_sphere_volumes_match_acr_equivalents(d: float, v: int) -> None:
    assert round_half_up(sphere_volume_mm3(d)) == v


@pytest.mark.parametrize(
    ("v", "d"), [(50, 4.57), (80, 5.35), (100, 5.76), (250, 7.82), (300, 8.31), (500, 9.85)]
)
def test_equivalent_diameters(v: float, d: float) -> None:
    assert sphere_diameter_mm(v) == pytest.approx(d, abs=0.005)


def test_vdt_published_cross_checks() -> None:
    assert volume_doubling_time_from_diameters_days(4, 5.5, 180) == pytest.approx(130.596, abs=1e-3)
    assert volume_doubling_time_from_diameters_days(6, 7.5, 90) == pytest.approx(93.189, abs=1e-3)


@pytest.mark.parametrize(
    ("v1", "v2", "days", "vdt"),
    [
        (sphere_volume_mm3(8.0), sphere_volume_mm3(10.0), 180, 186.4),
        (200, 300, 90, 153.9),
        (100, 125, 90, 279.6),
        (sphere_volume_mm3(5.0), sphere_volume_mm3(5.5), 365, 884.8),
    ],
)
def test_vdt_worked_examples(v1: float, v2: float, days: float, vdt: float) -> None:
    result = volume_doubling_time_days(v1, v2, days)
    assert result is not None and result == pytest.approx(vdt, abs=0.05)


def test_volume_and_diameter_vdt_agree() -> None:
    a = volume_doubling_time_days(sphere_volume_mm3(8), sphere_volume_mm3(10), 180)
    b = volume_doubling_time_from_diameters_days(8, 10, 180)
    assert a == pytest.approx(b)


def test_no_growth_gives_none() -> None:
    assert volume_doubling_time_days(300, 300, 90) is None
    assert volume_doubling_time_days(300, 250, 90) is None
    assert volume_doubling_time_from_diameters_days(8, 7, 90) is None
    assert vdt_band(None) == "no growth"


def test_percent_change() -> None:
    assert percent_volume_change(100, 125) == pytest.approx(25.0)
    assert percent_volume_change(200, 150) == pytest.approx(-25.0)
    assert percent_volume_change(sphere_volume_mm3(5.0), sphere_volume_mm3(5.5)) == pytest.approx(
        33.1, abs=0.05
    )


@pytest.mark.parametrize(
    ("days", "band"),
    [
        (29.9, "very fast"),
        (30, "suspicious"),
        (399.9, "suspicious"),
        (400, "intermediate"),
        (600, "intermediate"),
        (600.1, "typical of benign"),
    ],
)
def test_vdt_bands(days: float, band: str) -> None:
    assert vdt_band(days).startswith(band)


def test_assess_growth() -> None:
    g = assess_growth(100, 125, 90)
    assert g.vdt_days == pytest.approx(279.6, abs=0.05)
    assert g.band.startswith("suspicious")
    assert "25% volume increase" in g.reason


def test_bad_inputs_raise() -> None:
    with pytest.raises(RuleInputError, match="growth"):
        volume_doubling_time_days(0, 100, 90)
    with pytest.raises(RuleInputError):
        volume_doubling_time_days(100, 200, 0)
    with pytest.raises(RuleInputError):
        sphere_volume_mm3(-1)
    with pytest.raises(RuleInputError):
        percent_volume_change(0, 10)
