"""The fact extractor's scanning: case folding that keeps offsets, and stretch-by-stretch reading."""

from __future__ import annotations

import re
import sys

import pytest

from radiology_app.notes import _engine
from radiology_app.notes._engine import (
    CueSet,
    FoldedPattern,
    NotePattern,
    Status,
    aggregate_bool,
    find_mentions,
    fold_case,
)
from radiology_app.notes.english import CUES
from radiology_app.notes.facts import extract_facts

#: Characters that ``re.IGNORECASE`` matches to an ASCII letter although they are not one, and some
#: whose lower case differs in length or depends on context.
_ODD = "İıſKΣσςẞßǅﬁÅ"


@pytest.fixture(scope="module")
def cased() -> str:
    """Every character that has a case or that folding changes (a few thousand of them)."""
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    folded = fold_case(every)
    assert len(folded) == len(every)
    pairs = zip(every, folded, strict=True)
    return "".join(c for c, f in pairs if c != f or c.lower() != c or c.upper() != c)


def test_fold_case_keeps_every_offset_and_every_character_class(cased: str) -> None:
    folded = fold_case(cased)
    assert len(folded) == len(cased)
    for cls in (r"\w", r"\s", r"\d"):
        pattern = re.compile(cls)
        assert [m.start() for m in pattern.finditer(folded)] == [m.start() for m in pattern.finditer(cased)]


def test_fold_case_folds_exactly_what_ignorecase_matches(cased: str) -> None:
    folded = fold_case(cased)
    for letter in "abcdefghijklmnopqrstuvwxyz":
        expected = [m.start() for m in re.finditer(letter, cased, re.IGNORECASE)]
        assert [m.start() for m in re.finditer(letter, folded)] == expected, letter


def test_folded_pattern_finds_what_ignorecase_finds() -> None:
    text = f"Patient İs a SMOKER; ſmoker{_ODD} smoKer, KOUGH and Cough. " * 3
    for source in (r"\bsmok\w*", r"\bcough\b", r"\bis\b", r"k\w+"):
        ignorecase = re.compile(source, re.IGNORECASE)
        folded = FoldedPattern(source)
        assert [m.span() for m in folded.finditer(text)] == [m.span() for m in ignorecase.finditer(text)]
        assert [m.span() for m in folded.finditer(text, 5, 60)] == [
            m.span() for m in ignorecase.finditer(text, 5, 60)
        ]
        first, expected = folded.search(text, 3), ignorecase.search(text, 3)
        assert (first and first.span()) == (expected and expected.span())


@pytest.mark.parametrize("separator", [" ", "\x1c", "\x1f", "\u00a0"])
def test_folded_pattern_on_a_long_note_matches_ignorecase_whatever_its_characters(separator: str) -> None:
    """A long plain-ASCII note is scanned with ASCII classes; separators that only Unicode counts as
    spaces, and non-ASCII text, keep the Unicode ones."""
    text = f"Cough{separator}and FEVER;{separator}no Hemoptysis{separator}x " * 200
    for source in (r"cough\s+and", r"\bfever\b", r"\S+\s", r"no\W+hemoptysis"):
        ignorecase = re.compile(source, re.IGNORECASE)
        folded = FoldedPattern(source)
        assert [m.span() for m in folded.finditer(text)] == [m.span() for m in ignorecase.finditer(text)]
        cased = NotePattern(source.upper() if source.islower() else source)
        plain = re.compile(cased.regex.pattern)
        assert [m.span() for m in cased.finditer(text)] == [m.span() for m in plain.finditer(text)]


def test_a_long_note_is_folded_once() -> None:
    note = "Cough. " * 1000
    assert fold_case(note) is fold_case(note)


_NO_CUES = CueSet(*(re.compile(r"(?!)") for _ in range(9)))


def test_mentions_across_a_stretch_boundary_keep_pattern_priority() -> None:
    """The first pattern wins an overlap even when the second one's match starts in an earlier stretch."""
    start = _engine._FIRST_STRETCH_CHARS
    text = "." * (start - 1) + "xabcd"
    mentions = find_mentions(text, "f", [re.compile("abcd"), re.compile("xab")], _NO_CUES)
    assert [(m.start, m.end) for m in mentions] == [(start, start + 4)]


def test_reading_stops_once_the_fact_is_affirmed_with_the_same_aggregate() -> None:
    filler = "Seen in clinic today. " * 400
    text = "Denies fever. " + filler + "Fever since Monday. " + filler + "No fever now. " + filler
    fever = [re.compile(r"\bfever\b", re.IGNORECASE)]
    every = find_mentions(text, "fever", fever, CUES)
    enough = find_mentions(text, "fever", fever, CUES, until_affirmed=True)
    assert [m.status for m in every] == [Status.NEGATED, Status.AFFIRMED, Status.NEGATED]
    assert len(enough) == 2
    assert aggregate_bool(enough) == aggregate_bool(every)


def test_a_long_note_gives_the_facts_of_its_parts() -> None:
    note = (
        "68 yo woman, ex-smoker (30 pack-years), quit 5 years ago. No fever. "
        + "Reviewed with the family today and all questions answered. " * 2000
        + "Now has a cough and fever; history of breast cancer; mother had lung cancer."
    )
    facts = extract_facts(note)
    assert facts.value("fever") is True
    assert facts.value("cough") is True
    assert facts.value("personal_cancer_history") is True
    assert facts.value("family_history_lung_cancer") is True
    assert facts.facts["fever"].span is not None and facts.facts["fever"].span[0] > 100_000
