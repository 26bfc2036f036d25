"""The DICOM fuzz run: 10,000 seeded mutations of real files through import, show and volume reading.

Not collected by default; ``make fuzz`` (or ``make benchmarks``). Prints files tried, imported, refused
by reason, tracebacks (must be 0), hangs (must be 0) and the slowest file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))

from dicom_fuzz import run_fuzz


def test_ten_thousand_mutations() -> None:
    count = int(os.environ.get("FUZZ_COUNT", "10000"))
    report = run_fuzz(count, seed=int(os.environ.get("FUZZ_SEED", "1")), time_limit_s=20.0)
    print(f"\nDICOM fuzz, seed {os.environ.get('FUZZ_SEED', '1')}:\n{report.text()}")
    assert not report.tracebacks and not report.hangs
