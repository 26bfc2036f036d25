"""``radiology-app risk`` prints the contract keys and agrees with the rule functions."""

from __future__ import annotations

import json

import pytest

from radiology_app.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["risk", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_risk_contract_keys_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run(
        capsys,
        *("--age", "65", "--sex", "F", "--family-history", "--emphysema", "--type", "part_solid"),
        *("--long-axis-mm", "12", "--diameter-mm", "10", "--solid-component-mm", "5", "--lobe", "RUL"),
        *("--spiculated", "--smoking", "former"),
    )
    for key in ("brock_probability", "mayo_probability", "lung_rads", "fleischner"):
        assert key in doc
    assert doc["brock_probability"] == pytest.approx(0.535811, abs=1e-6)  # reference B2 (count 1)
    lung_rads = doc["lung_rads"]
    assert isinstance(lung_rads, dict) and set(lung_rads) >= {"category", "reason"}
    assert lung_rads["category"] == "4X"  # baseline part-solid 10 mm, solid 5 -> 3, spiculated -> 4X
    fleischner = doc["fleischner"]
    assert isinstance(fleischner, dict) and set(fleischner) >= {"recommendation", "reason"}
    assert str(fleischner["recommendation"]).startswith("CT at 3-6 months")


def test_risk_missing_inputs_are_null_with_reason(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run(capsys, "--diameter-mm", "7")
    assert doc["brock_probability"] is None and doc["mayo_probability"] is None
    errors = doc["errors"]
    assert isinstance(errors, dict) and "brock" in errors and "mayo" in errors
    assert doc["lung_rads"]["category"] == "3"  # type: ignore[index]
    # no age, no risk factors given: the conservative high-risk row
    assert doc["fleischner"]["recommendation"] == "CT at 6-12 months, then CT at 18-24 months."  # type: ignore[index]


def test_risk_mayo_vector_and_fleischner_exclusion(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run(
        capsys,
        *("--age", "65", "--sex", "M", "--smoking", "current", "--diameter-mm", "15"),
        *("--spiculated", "--lobe", "lingula", "--known-cancer"),
    )
    assert doc["mayo_probability"] == pytest.approx(0.560083, abs=1e-6)  # reference M1, lingula = upper
    assert doc["fleischner"]["applies"] is False  # type: ignore[index]


def test_risk_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["risk", "--age", "62", "--sex", "M", "--diameter-mm", "8", "--count", "4"]) == 0
    out = capsys.readouterr().out
    assert "Brock" in out and "Lung-RADS v2022: 4A" in out
