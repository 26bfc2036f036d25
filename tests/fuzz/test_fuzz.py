"""A few hundred seeded mutations of real DICOM files through import, show and volume reading:
no traceback, no hang, every file imported or refused with a reason. (10,000 in ``make fuzz``.)"""

from __future__ import annotations

from dicom_fuzz import MUTATIONS, run_fuzz


def test_three_hundred_mutations_end_in_an_import_or_a_reason() -> None:
    report = run_fuzz(300, seed=19, time_limit_s=60.0)
    assert report.tried == 300
    assert report.tracebacks == [], report.text()
    assert report.hangs == [], report.text()
    assert report.imported + sum(report.refused.values()) == report.tried
    assert all(reason.strip(": ") for reason in report.refused)
    assert set(report.by_mutation) == set(MUTATIONS)
    assert report.imported > 0 and report.refused  # the mutations are neither all harmless nor all fatal
    assert set(report.seeds.values()) <= {"imported", "refused"}
