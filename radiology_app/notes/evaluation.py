"""Per-fact precision and recall of :func:`radiology_app.notes.facts.extract_facts` on a labelled corpus.

Corpus layout (``tests/data/notes`` in the source tree): ``en/*.txt`` and ``zh/*.txt`` notes (UTF-8)
and ``labels.json`` mapping each note id (file stem) to ``{fact: value}`` for every fact name, with
``null`` where the note does not state the fact.

Scoring, per fact, over all notes: a prediction is a non-null extracted value; it is a true positive
when it equals the label (numbers within 0.05), a false positive otherwise. A label is a non-null
labelled value; it is missed (false negative) when the prediction is null or different.
Precision = TP / (TP + FP), recall = TP / (TP + FN); both are 1.0 when their denominator is 0.
Accuracy = share of notes where the extracted value equals the label, ``null`` included (so a value
read from a relative's or a suspected diagnosis, where the label is ``null``, lowers it).
``False`` (explicitly denied) is a value like any other, so negation errors count. ``micro`` pools
the counts of all facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radiology_app.core.errors import NoteError
from radiology_app.notes.facts import FACT_NAMES, FactValue, extract_facts

__all__ = [
    "CorpusNote",
    "FactScore",
    "NotesEvaluation",
    "default_corpus_dir",
    "evaluate_corpus",
    "load_corpus",
]


@dataclass(frozen=True)
class CorpusNote:
    """One labelled note."""

    note_id: str
    language: str
    text: str
    labels: dict[str, FactValue]


@dataclass(frozen=True)
class FactScore:
    """Counts and scores of one fact."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    agree: int = 0
    total: int = 0

    @property
    def precision(self) -> float:
        """TP / (TP + FP), 1.0 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN), 1.0 when nothing was labelled."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def accuracy(self) -> float:
        """Notes whose extracted value equals the label (``null`` included) / notes, 1.0 when none."""
        return self.agree / self.total if self.total else 1.0


@dataclass(frozen=True)
class NotesEvaluation:
    """The evaluation of the extractor on a corpus.

    Attributes
    ----------
    notes
        Number of notes by language.
    scores
        Per fact, over all notes.
    errors
        ``(note_id, fact, expected, got)`` for each disagreement.
    """

    notes: dict[str, int]
    scores: dict[str, FactScore]
    errors: list[tuple[str, str, FactValue, FactValue]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON shape printed by ``evaluate-notes --json``."""
        micro = FactScore(
            *(sum(getattr(s, k) for s in self.scores.values()) for k in ("tp", "fp", "fn", "agree", "total"))
        )
        return {
            "notes": self.notes,
            "facts": {
                name: {
                    "precision": round(score.precision, 4),
                    "recall": round(score.recall, 4),
                    "accuracy": round(score.accuracy, 4),
                    "tp": score.tp,
                    "fp": score.fp,
                    "fn": score.fn,
                }
                for name, score in self.scores.items()
            },
            "min_precision": round(min(s.precision for s in self.scores.values()), 4),
            "min_recall": round(min(s.recall for s in self.scores.values()), 4),
            "micro": {
                "precision": round(micro.precision, 4),
                "recall": round(micro.recall, 4),
                "accuracy": round(micro.accuracy, 4),
            },
            "errors": [{"note": n, "fact": f, "expected": exp, "got": got} for n, f, exp, got in self.errors],
        }


def default_corpus_dir() -> Path:
    """``tests/data/notes`` of the source tree this package sits in."""
    return Path(__file__).resolve().parents[2] / "tests" / "data" / "notes"


def load_corpus(directory: Path | str | None = None) -> list[CorpusNote]:
    """Read the labelled notes of ``directory`` (default: :func:`default_corpus_dir`).

    Raises
    ------
    NoteError
        If the folder, ``labels.json`` or a labelled note is missing or malformed.
    """
    root = Path(directory) if directory is not None else default_corpus_dir()
    labels_path = root / "labels.json"
    if not labels_path.is_file():
        raise NoteError(f"{labels_path}: labels file not found (is this a labelled note corpus?)")
    try:
        labels = json.loads(labels_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NoteError(f"{labels_path}: cannot read labels: {exc}") from exc
    notes: list[CorpusNote] = []
    for note_id, facts in sorted(labels.items()):
        language = note_id.split("_", 1)[0]
        path = root / language / f"{note_id}.txt"
        unknown = set(facts) - set(FACT_NAMES)
        if unknown:
            raise NoteError(f"{labels_path}: note {note_id} has unknown fact names {sorted(unknown)}")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise NoteError(f"{path}: cannot read labelled note: {exc}") from exc
        notes.append(CorpusNote(note_id, language, text, {n: facts.get(n) for n in FACT_NAMES}))
    return notes


def _same(expected: FactValue, got: FactValue) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return abs(float(expected) - float(got)) <= 0.05
    return expected == got


def _same_or_both_null(expected: FactValue, got: FactValue) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    return _same(expected, got)


def evaluate_corpus(notes: list[CorpusNote]) -> NotesEvaluation:
    """Score the extractor on labelled notes (see the module docstring for the rules)."""
    counts = {name: [0, 0, 0, 0, 0] for name in FACT_NAMES}
    errors: list[tuple[str, str, FactValue, FactValue]] = []
    by_language: dict[str, int] = {}
    for note in notes:
        by_language[note.language] = by_language.get(note.language, 0) + 1
        got = extract_facts(note.text).values()
        for name in FACT_NAMES:
            exp, pred = note.labels[name], got[name]
            c = counts[name]
            c[4] += 1
            if _same_or_both_null(exp, pred):
                c[3] += 1
            if pred is not None and exp is not None and _same(exp, pred):
                c[0] += 1
                continue
            if pred is not None:
                c[1] += 1
            if exp is not None:
                c[2] += 1
            if pred is not None or exp is not None:
                errors.append((note.note_id, name, exp, pred))
    scores = {name: FactScore(*c) for name, c in counts.items()}
    return NotesEvaluation(by_language, scores, errors)
