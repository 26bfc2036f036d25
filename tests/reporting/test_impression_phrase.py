"""The impression reads each nodule by malignancy band, a benign sign first."""

from __future__ import annotations

import pytest

from radiology_app.core.findings import NoduleFinding
from radiology_app.reporting.text import differential_phrase, margin_name, margin_score

DIFF = (("granuloma", 0.5), ("adenocarcinoma", 0.3), ("infection", 0.2))


@pytest.mark.parametrize(
    ("mal", "expected"),
    [
        (0.85, "suspicious for malignancy, most likely adenocarcinoma"),
        (0.30, "indeterminate: adenocarcinoma versus granuloma"),
        (0.03, "probably benign, most likely granuloma"),
        (0.001, "AI malignancy estimate < 1%"),
    ],
)
def test_bands(mal: float, expected: str) -> None:
    n = NoduleFinding(id="N1", differential=DIFF, malignancy_probability=mal, brock_probability=0.05)
    assert expected in differential_phrase(n)
    assert "Brock 5.0%" in differential_phrase(n)


def test_a_benign_sign_is_named_first() -> None:
    n = NoduleFinding(
        id="N1",
        calcification="laminated",
        differential=DIFF,
        malignancy_probability=0.02,
        brock_probability=0.1,
    )
    assert differential_phrase(n).startswith(
        "benign (laminated) calcification: benign, most likely granuloma"
    )


@pytest.mark.parametrize("composition", ["ground_glass", "part_solid"])
def test_a_low_risk_subsolid_nodule_keeps_the_adenocarcinoma_spectrum_in_view(composition: str) -> None:
    n = NoduleFinding(
        id="N1",
        composition=composition,
        differential=(("infection", 0.95), ("adenocarcinoma", 0.05)),
        malignancy_probability=0.05,
        brock_probability=0.05,
    )
    assert differential_phrase(n).startswith(
        "probably infection / inflammation; if it persists, the adenocarcinoma spectrum"
    )


@pytest.mark.parametrize(
    ("margin", "current", "expected"),
    [
        ("spiculated", 0.27, 0.5),  # raised to the lowest spiculated score
        ("spiculated", 0.81, 0.81),  # already spiculated: the measured score is kept
        ("lobulated/irregular", 0.81, 0.25),
        ("smooth", 0.27, 0.0),
        ("smooth", None, 0.0),
    ],
)
def test_a_clinicians_margin_sets_the_score_it_reads_as(
    margin: str, current: float | None, expected: float
) -> None:
    score = margin_score(margin, current)
    assert score == expected and margin_name(score) == margin


def test_an_unknown_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="margin must be one of smooth"):
        margin_score("fuzzy", 0.0)
