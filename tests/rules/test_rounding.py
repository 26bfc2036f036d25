"""Guideline rounding: halves up, on the decimal representation."""

from __future__ import annotations

import math

import pytest

from radiology_app.rules.rounding import mean_diameter_mm, round_half_up


@pytest.mark.parametrize(
    ("value", "ndigits", "expected"),
    [
        (5.5, 0, 6.0),
        (6.5, 0, 7.0),  # round() would give 6
        (4.5, 0, 5.0),  # round() would give 4
        (5.4, 0, 5.0),
        (8.5, 0, 9.0),
        (5.95, 1, 6.0),
        (6.45, 1, 6.5),  # binary float 6.45 is 6.4499999..., the decimal repr is 6.45
        (2.675, 2, 2.68),  # round(2.675, 2) == 2.67
        (1.5, 1, 1.5),
        (0.0, 0, 0.0),
        (1234.5, -1, 1230.0),
    ],
)
def test_round_half_up(value: float, ndigits: int, expected: float) -> None:
    assert round_half_up(value, ndigits) == expected


def test_builtin_round_differs_where_it_matters() -> None:
    assert round(6.5) == 6 and round_half_up(6.5) == 7.0
    assert round(2.675, 2) == 2.67 and round_half_up(2.675, 2) == 2.68


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_round_half_up_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        round_half_up(bad)


def test_mean_diameter_uses_exact_decimal_sum() -> None:
    assert mean_diameter_mm(6.2, 5.7) == 6.0  # 5.95 -> 6.0 (reference §1.6)
    assert mean_diameter_mm(7.3, 5.8) == 6.6  # 6.55 -> 6.6 (reference §1.7)
    assert mean_diameter_mm(5.9, 5.0, 0) == 5.0  # 5.45 -> 5
    assert mean_diameter_mm(6.0, 5.0, 0) == 6.0  # 5.5 -> 6


def test_mean_diameter_rejects_negative_axis() -> None:
    with pytest.raises(ValueError, match="axis"):
        mean_diameter_mm(-1.0, 2.0)
