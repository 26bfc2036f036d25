"""The regression set of notes in other forms (``tests/data/notes/regression``): size, labels, goals.

The set was written before the extractor's code was read and scored once unseen (its README keeps
those first-run numbers); this test keeps the goals reached afterwards: every fact at precision and
recall >= 0.95, and the patient's own cancer history at >= 0.97 in each language.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from radiology_app.notes.evaluation import CorpusNote, evaluate_corpus, load_corpus
from radiology_app.notes.facts import FACT_NAMES, extract_facts

REGRESSION = Path(__file__).resolve().parents[1] / "data" / "notes" / "regression"


@pytest.fixture(scope="module")
def notes() -> list[CorpusNote]:
    return load_corpus(REGRESSION)


def test_size_layout_and_labels(notes: list[CorpusNote]) -> None:
    langs = [n.language for n in notes]
    assert langs.count("en") == 100 and langs.count("zh") == 50
    assert (REGRESSION / "README.md").is_file()
    for note in notes:
        assert set(note.labels) == set(FACT_NAMES), note.note_id
        assert extract_facts(note.text).language == note.language, note.note_id
    for name in FACT_NAMES:  # each score is measured on at least a few stated values
        assert sum(n.labels[name] is not None for n in notes) >= 5, name
    # the traps the set is about are there in both languages
    for lang in ("en", "zh"):
        sub = [n for n in notes if n.language == lang]
        assert sum(n.labels["family_history_lung_cancer"] is True for n in sub) >= 8
        assert sum(n.labels["personal_cancer_history"] is False for n in sub) >= 5
        assert sum(n.labels["personal_cancer_history"] is None for n in sub) >= 15


def test_every_fact_has_precision_and_recall_at_least_0_95(notes: list[CorpusNote]) -> None:
    result = evaluate_corpus(notes)
    low = {
        name: (round(s.precision, 3), round(s.recall, 3))
        for name, s in result.scores.items()
        if s.precision < 0.95 or s.recall < 0.95
    }
    assert not low, f"facts below 0.95: {low}; errors: {result.errors[:20]}"


@pytest.mark.parametrize("language", ["en", "zh"])
def test_personal_cancer_history_at_least_0_97_in_each_language(
    notes: list[CorpusNote], language: str
) -> None:
    """A relative's cancer or a suspected diagnosis is not the patient's own cancer history."""
    result = evaluate_corpus([n for n in notes if n.language == language])
    score = result.scores["personal_cancer_history"]
    assert score.precision >= 0.97 and score.recall >= 0.97 and score.accuracy >= 0.97, [
        e for e in result.errors if e[1] == "personal_cancer_history"
    ]
    family = result.scores["family_history_lung_cancer"]
    assert family.precision >= 0.95 and family.recall >= 0.95


def test_set_values_carry_a_consistent_context(notes: list[CorpusNote]) -> None:
    """A value comes from an affirmed (or, for ``False``, a negated) phrase about the right person."""
    for note in notes:
        for name, fact in extract_facts(note.text).facts.items():
            if fact.value is None:
                continue
            who = "family" if name == "family_history_lung_cancer" else "patient"
            certainty = "negated" if fact.value is False else "affirmed"
            assert (fact.experiencer, fact.certainty) == (who, certainty), (note.note_id, name)
