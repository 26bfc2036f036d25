"""Fact extraction speed per note, against a bare regex scan of the same notes (the anchor).

Not collected by default; run ``make benchmarks``. Prints the ratio, asserts nothing on time.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from radiology_app.notes.evaluation import load_corpus
from radiology_app.notes.facts import extract_facts

_ANCHOR = re.compile(
    r"fever|cough|h(?:ae|e)mopt\w*|weight|smok\w*|pack|cancer|TB|COPD|emphysema|发热|咳嗽|咯血|体重|吸烟|癌|结核|慢阻肺",
    re.IGNORECASE,
)


def test_extraction_speed() -> None:
    texts = [n.text for n in load_corpus(Path(__file__).resolve().parents[1] / "data" / "notes")]
    rounds = 5
    t0 = time.perf_counter()
    for r in range(rounds):
        for text in texts:
            _ = [m.span() for m in _ANCHOR.finditer(text + " " * r)]
    anchor = (time.perf_counter() - t0) / (rounds * len(texts))
    t0 = time.perf_counter()
    for r in range(rounds):
        for text in texts:
            extract_facts(text + " " * r)  # a new string each round: no cache hits
    ours = (time.perf_counter() - t0) / (rounds * len(texts))
    print(
        f"\nextract_facts: {1000 * ours:.2f} ms per note; bare trigger scan: {1000 * anchor:.3f} ms; "
        f"ratio {ours / anchor:.0f}x ({len(texts)} notes x {rounds})"
    )


def _megabyte(unit: str) -> str:
    return (unit * (1_000_000 // len(unit) + 1))[:1_000_000]


def _utf8_prefix(text: str, n_bytes: int) -> str:
    """The longest prefix of ``text`` that is at most ``n_bytes`` in UTF-8 (a note file's size)."""
    return text.encode("utf-8")[:n_bytes].decode("utf-8", errors="ignore")


def test_one_megabyte_note_in_linear_time() -> None:
    """Budget: 1 MB in under 2 s. Once quadratic (24 s at 1 MB): every trigger rescanned its clause,
    and a note without punctuation is one clause. Prints 250 kB and 1 MB (characters): linear time is
    a ratio of 4; for Chinese also a 1 MB file (the largest note file, about 333,000 characters).

    Then linear but 3.1 s (corpus notes, en) and 4.9 s (no punctuation, en) at 1 MB: about 60 full
    scans of the note by case-insensitive patterns that ``re`` tries at every position, cue scans per
    mention. Now (2-core CPU, 2026-12-07) about 0.7 s (en), 0.6 s (zh), 1.6 s (no punctuation, en) and
    1.8 s (no punctuation, zh; 0.6 s for a 1 MB file): patterns run case-sensitively on the case-folded
    note, with ASCII classes on an ASCII note, each cue and relative is found once per note, and a
    yes/no fact stops reading once it is affirmed (``docs/reliability.md``)."""
    texts = [n.text for n in load_corpus(Path(__file__).resolve().parents[1] / "data" / "notes")]
    english = " ".join(t for t in texts if t.isascii())
    kinds = {
        "corpus notes (en)": english,
        "corpus notes (zh)": " ".join(t for t in texts if not t.isascii()),
        "no punctuation (en)": "patient has cough and fever smoker 30 pack years history of breast cancer "
        "no hemoptysis mother had lung cancer ",
        "no punctuation (zh)": "患者咳嗽发热吸烟三十年无咯血有乳腺癌病史母亲肺癌",
    }
    for name, unit in kinds.items():
        full = _megabyte(unit)
        sizes = [full[:250_000], full]
        if not full.isascii():
            sizes.append(_utf8_prefix(full, 1_000_000))
        times = []
        for text in sizes:
            t0 = time.perf_counter()
            extract_facts(text)
            times.append(time.perf_counter() - t0)
        file_time = f", 1 MB file ({len(sizes[2]):,} characters) {times[2]:.2f} s" if len(times) > 2 else ""
        print(
            f"\nextract_facts, {name}: 250 kB {times[0]:.2f} s, 1 MB {times[1]:.2f} s{file_time} "
            f"(budget 2 s; ratio {times[1] / times[0]:.1f}, linear = 4)"
        )
