"""Compare medspaCy's ConText with our note-fact rules on the English regression notes.

Not part of the package (medspaCy 1.3.1 needs spaCy < 3.8 and numpy < 2; the project runs numpy 2).
Run it in a throw-away environment, from the repository root::

    python3 -m venv /tmp/medspacy-venv
    /tmp/medspacy-venv/bin/pip install medspacy==1.3.1
    /tmp/medspacy-venv/bin/python docs/context/medspacy_compare.py [--baseline-rev a5b7372] [--json OUT]

For ``personal_cancer_history`` and ``family_history_lung_cancer`` it derives a value from the
ConText modifiers of cancer targets (see :func:`derive`) and scores it, and our extractor on the same
notes, against ``labels.json``. Our package is imported from the working tree (it is pure Python);
``--baseline-rev`` also scores our extractor as it was at a git revision (the first run, before the
regression set's fixes), read with ``git archive`` into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FACTS = ("personal_cancer_history", "family_history_lung_cancer")
Value = bool | None

#: Target rules given to medspaCy: (literal, category). Multi-word literals match token sequences;
#: the longest target wins, so the IGNORE ones hide "basal cell carcinoma", "lung cancer screening".
LUNG_TARGETS = [
    "lung cancer", "lung ca", "lung carcinoma", "lung adenocarcinoma", "adenocarcinoma of lung",
    "adenocarcinoma of the lung", "cancer of the lung", "ca lung", "small cell lung cancer",
    "non-small cell lung cancer", "bronchogenic carcinoma", "nsclc", "sclc", "lung primary",
    "primary lung cancer", "primary lung ca",
]  # fmt: skip
CANCER_TARGETS = [
    "cancer", "cancers", "ca", "carcinoma", "carcinomas", "adenocarcinoma", "malignancy",
    "malignancies", "malignant", "neoplasm", "tumour", "tumor", "lymphoma", "leukaemia", "leukemia",
    "myeloma", "melanoma", "sarcoma", "seminoma", "hodgkin", "hodgkin's", "mesothelioma", "cll", "aml",
    "cml", "hcc", "rcc", "tcc", "scc", "dcis",
]  # fmt: skip
IGNORE_TARGETS = [
    "basal cell carcinoma", "basal cell carcinomas", "basal cell", "bcc", "lung cancer screening",
    "cancer screening", "breast screening", "lung cancer clinic", "cancer clinic", "benign tumour",
    "benign tumor", "cancer nurse",
]  # fmt: skip

#: ConText rules added to medspaCy's defaults in the "+ cues" configuration: what our rules know and
#: the default rule set lacks (British relatives, FH headers, "?"-style uncertainty).
EXTRA_FAMILY = ["mum", "mam", "mums", "fh", "fhx", "fam hx", "family hx", "family history", "grandad"]
EXTRA_POSSIBLE = [
    "?", "query", "queried", "c/f", "concerning for", "concern for", "ddx", "differential",
    "differential diagnosis", "vs", "versus", "suspected", "suspicion of", "suspicious for",
    "highly suspicious for", "cannot exclude", "considered",
]  # fmt: skip
EXTRA_HYPOTHETICAL = ["return if", "if"]
SPOUSES = {"wife", "husband", "spouse", "partner", "wife's", "husband's"}


@dataclass(frozen=True)
class Scores:
    """Accuracy (null included), precision and recall of one fact."""

    n: int
    accuracy: float
    precision: float
    recall: float


def load_notes(corpus: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """English notes of ``corpus``: ``(note_id, text, labels)``."""
    labels = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    out = []
    for note_id in sorted(labels):
        if note_id.startswith("en_"):
            out.append(
                (note_id, (corpus / "en" / f"{note_id}.txt").read_text(encoding="utf-8"), labels[note_id])
            )
    return out


def build_nlp(extra_cues: bool) -> Any:
    """``medspacy.load()`` with our cancer target rules (and, if asked, the extra ConText cues)."""
    from loguru import logger

    logger.remove()  # PyRuSH logs every sentence at DEBUG
    import medspacy
    from medspacy.context import ConTextRule
    from medspacy.target_matcher import TargetRule

    nlp = medspacy.load()
    rules = [TargetRule(t, "LUNG_CANCER", pattern=_tokens(t)) for t in LUNG_TARGETS]
    rules += [TargetRule(t, "CANCER", pattern=_tokens(t)) for t in CANCER_TARGETS]
    rules += [TargetRule(t, "IGNORE", pattern=_tokens(t)) for t in IGNORE_TARGETS]
    nlp.get_pipe("medspacy_target_matcher").add(rules)
    if extra_cues:
        ctx = nlp.get_pipe("medspacy_context")
        extra = [ConTextRule(t, "FAMILY", direction="FORWARD", pattern=_tokens(t)) for t in EXTRA_FAMILY]
        extra += [
            ConTextRule(t, "POSSIBLE_EXISTENCE", direction="FORWARD", pattern=_tokens(t))
            for t in EXTRA_POSSIBLE
        ]
        extra += [
            ConTextRule(t, "HYPOTHETICAL", direction="FORWARD", pattern=_tokens(t))
            for t in EXTRA_HYPOTHETICAL
        ]
        ctx.add(extra)
    return nlp


def _tokens(phrase: str) -> list[dict[str, Any]]:
    """A case-insensitive token pattern for ``phrase`` (spaCy splits "?" and "c/f" as written)."""
    import spacy

    tok = spacy.blank("en").tokenizer
    return [{"LOWER": t.lower_} for t in tok(phrase)]


def derive(doc: Any, spouse_is_other: bool) -> dict[str, Value]:
    """Fact values from the ConText modifiers of the cancer targets of ``doc``.

    * ``personal_cancer_history``: ``True`` if a cancer target is neither family, possible nor
      hypothetical nor negated (historical counts: a past cancer is a history); otherwise ``False``
      if such a target is negated; otherwise ``None``.
    * ``family_history_lung_cancer``: ``True`` if a lung-cancer target is family and affirmed;
      ``False`` if a family cancer target is negated ("no family history of cancer"); else ``None``.

    With ``spouse_is_other`` a target whose only FAMILY cue is a spouse word is nobody's (neither
    the patient's nor a blood relative's), as in our labels.
    """
    personal: list[bool] = []
    family: list[bool] = []
    for ent in doc.ents:
        if ent.label_ not in ("CANCER", "LUNG_CANCER"):
            continue
        fam_mods = [m for m in ent._.modifiers if m.category == "FAMILY"]
        if (
            spouse_is_other
            and fam_mods
            and all(doc[m.modifier_span[0] : m.modifier_span[1]].text.lower() in SPOUSES for m in fam_mods)
        ):
            continue
        if ent._.is_uncertain or ent._.is_hypothetical:
            continue
        if ent._.is_family:
            if ent._.is_negated:
                family.append(False)
            elif ent.label_ == "LUNG_CANCER":
                family.append(True)
            continue
        personal.append(not ent._.is_negated)
    return {
        "personal_cancer_history": _combine(personal),
        "family_history_lung_cancer": _combine(family),
    }


def _combine(values: list[bool]) -> Value:
    if any(values):
        return True
    return False if values else None


def ours_now(texts: Iterable[tuple[str, str]]) -> dict[str, dict[str, Value]]:
    """Our extractor, from the working tree."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from radiology_app.notes.facts import extract_facts

    out: dict[str, dict[str, Value]] = {}
    for nid, text in texts:
        facts = extract_facts(text)
        out[nid] = {f: facts.value(f) for f in FACTS}  # type: ignore[misc]
    return out


def ours_at(rev: str, corpus: Path) -> dict[str, dict[str, Value]]:
    """Our extractor as it was at git revision ``rev`` (run in a subprocess on an archived copy)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "radiology_app"], check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        code = (
            "import json,sys\n"
            "from radiology_app.notes.facts import extract_facts\n"
            f"facts={list(FACTS)!r}\n"
            "notes=json.load(sys.stdin)\n"
            "print(json.dumps({n:{f:extract_facts(t).value(f) for f in facts} for n,t in notes}))\n"
        )
        notes = [(nid, text) for nid, text, _ in load_notes(corpus)]
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(notes),
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp,
            env={"PYTHONPATH": tmp},
        )
    result: dict[str, dict[str, Value]] = json.loads(done.stdout)
    return result


def score(pred: dict[str, dict[str, Value]], gold: dict[str, dict[str, Any]], fact: str) -> Scores:
    """Accuracy over all notes (null included); precision/recall over stated values, as evaluate-notes."""
    tp = fp = fn = same = 0
    for nid, labels in gold.items():
        exp, got = labels[fact], pred[nid][fact]
        same += exp is got
        if exp is not None and got is exp:
            tp += 1
            continue
        fp += got is not None
        fn += exp is not None
    return Scores(
        len(gold), same / len(gold), tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0
    )


def main(argv: list[str] | None = None) -> int:
    """Print the comparison table and the per-note disagreements (and write them as JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--corpus", type=Path, default=ROOT / "tests" / "data" / "notes" / "regression")
    ap.add_argument("--baseline-rev", help="also score our extractor as it was at this git revision")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)

    notes = load_notes(args.corpus)
    gold = {nid: labels for nid, _, labels in notes}
    systems: dict[str, dict[str, dict[str, Value]]] = {}
    ms_per_note: dict[str, float] = {}
    for name, extra in (("medspaCy defaults + targets", False), ("medspaCy + targets + cues", True)):
        nlp = build_nlp(extra)
        t0 = time.perf_counter()
        systems[name] = {nid: derive(nlp(text), spouse_is_other=extra) for nid, text, _ in notes}
        ms_per_note[name] = 1000 * (time.perf_counter() - t0) / len(notes)
    if args.baseline_rev:
        systems[f"ours at {args.baseline_rev} (first run)"] = ours_at(args.baseline_rev, args.corpus)
    ours_now((nid, text) for nid, text, _ in notes[:1])  # import outside the timing
    t0 = time.perf_counter()
    systems["ours now"] = ours_now((nid, text) for nid, text, _ in notes)
    ms_per_note["ours now"] = 1000 * (time.perf_counter() - t0) / len(notes)

    table: dict[str, dict[str, Scores]] = {
        s: {f: score(p, gold, f) for f in FACTS} for s, p in systems.items()
    }
    print(f"{len(notes)} English notes of {args.corpus}")
    print(f"| system | {' | '.join(f'{f} acc / P / R' for f in FACTS)} |")
    print("|---|" + "---|" * len(FACTS))
    for s, per in table.items():
        cells = [f"{v.accuracy:.3f} / {v.precision:.3f} / {v.recall:.3f}" for v in per.values()]
        print(f"| {s} | {' | '.join(cells)} |")
    print("ms per note: " + ", ".join(f"{s} {v:.1f}" for s, v in ms_per_note.items()))
    disagreements = {
        s: [
            {"note": nid, "fact": f, "label": gold[nid][f], "got": p[nid][f]}
            for nid in gold
            for f in FACTS
            if p[nid][f] is not gold[nid][f]
        ]
        for s, p in systems.items()
    }
    for s, rows in disagreements.items():
        print(f"\n{s}: {len(rows)} disagreements")
        for r in rows:
            print(f"  {r['note']} {r['fact']}: label {r['label']}, got {r['got']}")
    if args.json:
        doc = {
            "notes": len(notes),
            "scores": {s: {f: vars(v) for f, v in per.items()} for s, per in table.items()},
            "ms_per_note": ms_per_note,
            "disagreements": disagreements,
        }
        args.json.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
