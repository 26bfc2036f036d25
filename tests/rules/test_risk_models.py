"""Brock (model 2b) and Mayo: the worked examples of the clinical reference (§3.6, §4.3)."""

from __future__ import annotations

import math

import pytest

from radiology_app.rules import RuleInputError
from radiology_app.rules.brock import BROCK_2B, BrockInput, brock_probability, lobe_is_upper, risk_band
from radiology_app.rules.mayo import MAYO, MayoInput, mayo_probability

B1 = BrockInput(62, False, False, False, 8, "solid", False, 4, False)
B2 = BrockInput(65, True, True, True, 12, "part_solid", True, 1, True)
B3 = BrockInput(55, False, False, False, 5, "ground_glass", False, 3, False)
B4 = BrockInput(70, False, False, True, 20, "solid", True, 1, True)


@pytest.mark.parametrize(
    ("inputs", "logit", "p"),
    [(B1, -4.2952, 0.013451), (B2, 0.1435, 0.535811), (B3, -6.1363, 0.002158), (B4, 0.1209, 0.530191)],
)
def test_brock_worked_examples(inputs: BrockInput, logit: float, p: float) -> None:
    r = brock_probability(inputs)
    assert r.probability == pytest.approx(p, abs=1e-6)
    assert r.logit == pytest.approx(logit, abs=1e-4)
    assert 0.0 < r.probability < 1.0


def test_brock_b2_term_breakdown() -> None:
    terms = dict(brock_probability(B2).terms)
    expected = {
        "intercept": -6.7892,
        "age": 0.0861,
        "female": 0.6011,
        "family history": 0.2961,
        "emphysema": 0.2953,
        "size": 3.5989,
        "part-solid": 0.377,
        "upper lobe": 0.6581,
        "nodule count": 0.2472,
        "spiculation": 0.7729,
    }
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, abs=1e-4), name


def test_brock_coefficients_match_published_odds_ratios() -> None:
    """Guards against the wrong public calculators listed in the reference."""
    ors = {
        "female": 1.82,
        "family_history": 1.34,
        "emphysema": 1.34,
        "upper_lobe": 1.93,
        "spiculation": 2.17,
        "part_solid": 1.46,
    }
    for name, odds in ors.items():
        assert math.exp(BROCK_2B[name]) == pytest.approx(odds, abs=0.005), name


def test_brock_size_term_is_zero_at_4mm_and_monotonic() -> None:
    r4 = brock_probability(BrockInput(62, False, False, False, 4, "solid", False, 4, False))
    assert dict(r4.terms)["size"] == pytest.approx(0.0, abs=1e-7)
    ps = [
        brock_probability(BrockInput(62, False, False, False, s, "solid", False, 4, False)).probability
        for s in (3, 6, 10, 20, 40)
    ]
    assert ps == sorted(ps)


def test_brock_reason_and_band() -> None:
    r = brock_probability(B2)
    assert r.band == "intermediate"
    assert "Brock full model with spiculation" in r.reason and "BTS" in r.reason
    assert brock_probability(B1).band == "low"
    assert "maximum diameter" in brock_probability(B1).reason
    assert (
        "mean diameter"
        in brock_probability(BrockInput(62, False, False, False, 8, size_is_mean_diameter=True)).reason
    )


@pytest.mark.parametrize(
    "bad",
    [
        BrockInput(62, False, False, False, 0),
        BrockInput(62, False, False, False, 8, nodule_count=0),
        BrockInput(62, False, False, False, 8, nodule_type="cavitary"),
        BrockInput(float("nan"), False, False, False, 8),
    ],
)
def test_brock_rejects_bad_input(bad: BrockInput) -> None:
    with pytest.raises(RuleInputError, match="Brock"):
        brock_probability(bad)


def test_lingula_counts_as_upper_lobe() -> None:
    assert lobe_is_upper("lingula") and lobe_is_upper("RUL") and lobe_is_upper("LUL")
    assert not lobe_is_upper("RML") and not lobe_is_upper("lll") and not lobe_is_upper(None)


@pytest.mark.parametrize(
    ("p", "band"), [(0.0499, "low"), (0.05, "intermediate"), (0.65, "intermediate"), (0.6501, "high")]
)
def test_risk_band_edges(p: float, band: str) -> None:
    assert risk_band(p) == band


M1 = MayoInput(65, True, False, 15, True, True)
M2 = MayoInput(45, False, False, 6, False, False)
M3 = MayoInput(70, True, True, 22, False, True)


@pytest.mark.parametrize(
    ("inputs", "logit", "p"), [(M1, 0.2415, 0.560083), (M2, -4.3033, 0.013343), (M3, 1.6269, 0.835745)]
)
def test_mayo_worked_examples(inputs: MayoInput, logit: float, p: float) -> None:
    r = mayo_probability(inputs)
    assert r.probability == pytest.approx(p, abs=1e-6)
    assert r.logit == pytest.approx(logit, abs=1e-4)


def test_mayo_spiculation_and_upper_lobe_not_swapped() -> None:
    assert MAYO["spiculation"] == 1.0407 and MAYO["upper_lobe"] == 0.7838
    assert math.exp(MAYO["smoker"]) == pytest.approx(2.21, abs=0.005)
    assert math.exp(MAYO["cancer"]) == pytest.approx(3.81, abs=0.005)


def test_mayo_scope_warnings_and_errors() -> None:
    assert "mass" in mayo_probability(MayoInput(60, True, False, 35)).reason
    assert (
        "outside the model's scope"
        in mayo_probability(MayoInput(60, True, False, 10, recent_extrathoracic_cancer=True)).reason
    )
    assert mayo_probability(M3).band == "high"
    with pytest.raises(RuleInputError, match="Mayo"):
        mayo_probability(MayoInput(60, True, False, 0))
