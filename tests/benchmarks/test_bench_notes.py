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
