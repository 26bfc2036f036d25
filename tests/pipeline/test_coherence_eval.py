"""evaluate-coherence: the counterfactual note edits and the summary's arithmetic."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from radiology_app.cli import main
from radiology_app.coherence_eval import (
    CoherenceCase,
    as_table,
    fits,
    note_variants,
    sign_measured,
    summarize,
)
from radiology_app.core.findings import NoduleFinding
from radiology_app.notes.facts import extract_facts


@pytest.mark.parametrize(
    ("text", "language"),
    [("72-year-old woman, ex-smoker. CT for cough.", "en"), ("男，65岁，吸烟30年。体检发现肺结节。", "zh")],
)
def test_counterfactual_edits_change_only_whose_cancer_it_is(text: str, language: str) -> None:
    variants = note_variants(text, language, 0)
    history = {k: extract_facts(v).value("personal_cancer_history") for k, v in variants.items()}
    assert history == {
        "as_written": None,
        "personal_history": True,
        "relative_history": None,
        "denied_history": False,
    }


def _case(group: str, kind: str, variant: str, top: str, met: float, mal: float) -> CoherenceCase:
    history = variant == "personal_history"
    return CoherenceCase(group, kind, "n1", variant, history, top, met, mal, False)


def test_summary_counts_fits_shifts_and_flips() -> None:
    cases = [
        _case("0:0:0", "solid_smooth", "as_written", "granuloma", 0.02, 0.1),
        _case("0:0:0", "solid_smooth", "personal_history", "metastasis", 0.62, 0.7),
        _case("0:0:0", "solid_smooth", "relative_history", "granuloma", 0.02, 0.1),
        _case("0:0:0", "solid_smooth", "denied_history", "hamartoma", 0.02, 0.1),
        _case("0:0:1", "calcified", "as_written", "granuloma", 0.0, 0.03),
        _case("0:0:1", "calcified", "personal_history", "metastasis", 0.0, 0.2),
        _case("0:0:1", "calcified", "relative_history", "granuloma", 0.0, 0.03),
        _case("0:0:1", "calcified", "denied_history", "granuloma", 0.0, 0.03),
    ]
    s = summarize(cases)
    assert s["cases"] == 8
    assert s["nodules"] == 2
    # metastasis fits a solid nodule with a known primary, never a calcified one
    assert s["coherent_top_rate_by_kind"] == {"solid_smooth": 1.0, "calcified": 0.75}
    assert s["counterfactual"]["personal_history_metastasis_shift"] == pytest.approx(0.6)
    assert s["counterfactual"]["family_history_metastasis_shift"] == 0.0
    assert s["counterfactual"]["negation_flip_rate"] == 0.5
    assert s["benign_sign_malignancy_le_0_1_rate"] == 0.75
    assert s["metastasis_top_rate_without_history"] == 0.0
    assert not fits(_case("x", "fat", "as_written", "granuloma", 0.0, 0.0))


def test_the_summary_tells_a_missed_sign_from_a_wrong_reading() -> None:
    found = NoduleFinding(id="N1", composition="solid", fat=True, spiculation_score=0.0)
    missed = dataclasses.replace(found, fat=False)
    assert sign_measured("fat", found) is True and sign_measured("fat", missed) is False
    assert sign_measured("cavitary", found) is None  # the findings record no cavity
    cases = [
        dataclasses.replace(_case("0:0:0", "fat", "as_written", "hamartoma", 0.0, 0.03), sign_measured=True),
        dataclasses.replace(_case("0:0:1", "fat", "as_written", "hamartoma", 0.0, 0.03), sign_measured=True),
        dataclasses.replace(_case("0:0:2", "fat", "as_written", "metastasis", 0.9, 0.9), sign_measured=False),
        _case("0:0:3", "cavitary", "as_written", "infection", 0.0, 0.3),
    ]
    s = summarize(cases)
    assert s["coherent_top_rate_by_kind"]["fat"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["sign_measured_rate_by_kind"] == {"fat": pytest.approx(2 / 3, abs=1e-4)}
    assert s["coherent_top_rate_by_kind_sign_measured"] == {"fat": 1.0}
    assert "sign measured 0.6667, top fits then 1.0" in as_table(s)


def test_seeds_are_pooled_and_their_chests_kept_apart(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[int] = []

    def run(*, seed: int, **_: Any) -> list[CoherenceCase]:
        # every seed draws "chest 0, note 0, nodule 0": its group names the seed
        seen.append(seed)
        variants = ("as_written", "personal_history", "relative_history", "denied_history")
        return [_case(f"{seed}/0:0:0", "solid_smooth", v, "granuloma", 0.02, 0.1) for v in variants]

    monkeypatch.setattr("radiology_app.coherence_eval.run_coherence", run)
    assert main(["evaluate-coherence", "--seed", "3", "--seeds", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert seen == doc["seeds"] == [3, 4]
    assert doc["nodules"] == 2
    assert doc["counterfactual"]["pairs"] == 2
