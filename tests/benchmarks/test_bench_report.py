"""Benchmark: the PDF report (budget <= 1 s), against a plain reportlab 2-page report measured in this run.

The report has four nodules with key images from a 512 x 512 x 120 volume, the differential bars,
the note with Chinese text (CJK font embedded), tables and page numbering. The anchor is a bare
reportlab document of two pages of paragraphs and a table (design.md quotes about 0.1 s). Run with
``make benchmarks``.
"""

from __future__ import annotations

import dataclasses
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reporting"))

from report_case import build_case

from radiology_app.core.findings import NoduleFinding
from radiology_app.reporting.pdf import ReportContext, render_report_bytes


def _anchor() -> float:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table

    styles = getSampleStyleSheet()
    t0 = time.perf_counter()
    buf = io.BytesIO()
    story = [
        Paragraph("Report " + "text " * 400, styles["Normal"]),
        Table([[f"r{i}c{j}" for j in range(8)] for i in range(12)]),
        PageBreak(),
        Paragraph("Impression " + "text " * 300, styles["Normal"]),
    ]
    SimpleDocTemplate(buf, pagesize=A4).build(story)
    return time.perf_counter() - t0


def test_bench_report() -> None:
    case = build_case(shape=(120, 512, 512), spacing=(2.5, 0.7, 0.7))
    extra = tuple(dataclasses.replace(n, id=f"N{k + 3}") for k, n in enumerate(case.findings.nodules))
    nodules: tuple[NoduleFinding, ...] = case.findings.nodules + extra
    ctx = ReportContext(
        dataclasses.replace(case.findings, nodules=nodules),
        case.patient,
        case.study,
        case.series,
        case.volume,
        case.labels,
    )
    render_report_bytes(ctx)  # warm: font registration (the CJK font parse is once per process)
    times, anchors = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        data = render_report_bytes(ctx)
        times.append(time.perf_counter() - t0)
        anchors.append(_anchor())
    best, anchor = min(times), min(anchors)
    print(
        f"\nPDF report, 4 nodules, {len(data) / 1e6:.2f} MB: {best:.3f} s (budget 1 s); "
        f"bare reportlab 2-page anchor {anchor:.3f} s; ratio {best / anchor:.1f}x"
    )
    assert data.startswith(b"%PDF")
