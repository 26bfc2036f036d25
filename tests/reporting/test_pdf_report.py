"""The PDF report: text content (patient fields, nodule rows, categories, probabilities, disclaimer),
embedded fonts, Chinese glyphs, metadata, review states."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from report_case import CHINESE_NOTE, Case

from radiology_app.core.findings import reject_nodule, sign_findings
from radiology_app.reporting.fonts import glyph_coverage
from radiology_app.reporting.pdf import AI_STATEMENT, ReportContext, render_report_pdf

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def _text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True)
    return " ".join(out.stdout.split())


def _ctx(case: Case, **changes: object) -> ReportContext:
    ctx = ReportContext(
        case.findings,
        case.patient,
        case.study,
        case.series,
        case.volume,
        case.labels,
        institution_name="Riverside General Hospital",
        institution_address="1 Riverside Road",
    )
    return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]


def test_report_text_has_every_required_field(case: Case, tmp_path: Path) -> None:
    signed = sign_findings(case.findings, "Dr. Anna Chen", dt.datetime(2026, 11, 29, 12, 5, tzinfo=dt.UTC))
    pdf = render_report_pdf(_ctx(case, findings=signed), tmp_path / "r.pdf")
    text = _text(pdf)
    for needle in (
        "Riverside General Hospital",
        "ZHANG, Wei",
        "RA-000123",
        "ACC-77881",
        "LI, Na",
        "2026-11-02",
        "Male",
        "64 years",
        "SIEMENS SOMATOM Definition AS",
        "B70f",
        "Slice thickness 2.5 mm",
        "Clinical information",
        "Technique",
        "Comparison",
        "Findings",
        "Impression",
        "Model provenance",
        "nodule_unet",
        "fused_dx",
        "a" * 64,
        "Reviewed and signed by: Dr. Anna Chen",
        "2026-11-29 12:05 UTC",
        "Page 1 of 2",
        "Page 2 of 2",
    ):
        assert needle in text, needle
    for n in signed.nodules:
        assert f"{n.long_axis_mm:.1f} x {n.short_axis_mm:.1f} ({n.mean_diameter_mm:.1f})" in text
        assert f"{n.volume_mm3:.0f}" in text
        assert f"Nodule {n.id}: {n.lobe}" in text
        assert f"category {n.lung_rads.category}" in text
        assert n.brock_probability is not None
        assert f"{100 * n.brock_probability:.1f}%" in text
        _, p = n.differential[0]
        assert f"{100 * p:.0f}%" in text
    assert "Adenocarcinoma" in text and "Intrapulmonary lymph node" in text
    assert "Lung-RADS v2022 category 4A" in text
    assert " ".join(AI_STATEMENT.split()[:12]) in text
    assert "PRELIMINARY" not in text


def test_chinese_note_renders_with_embedded_fonts(case: Case, tmp_path: Path) -> None:
    assert glyph_coverage(CHINESE_NOTE).missing == ()
    assert glyph_coverage(CHINESE_NOTE).needs_cjk
    pdf = render_report_pdf(_ctx(case), tmp_path / "zh.pdf")
    text = "".join(_text(pdf).split())
    assert "".join(CHINESE_NOTE.split()) in text  # every character extracted back: no missing glyph
    assert "吸烟30年" in text  # evidence phrase
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, check=True, text=True).stdout
    rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
    assert rows and any("WenQuanYi" in r[0] for r in rows)
    assert all(r[-5] == "yes" for r in rows), fonts  # every font embedded (emb column)


def test_unsigned_rejected_and_metadata(case: Case, tmp_path: Path) -> None:
    findings = reject_nodule(case.findings, "N2")
    pdf = render_report_pdf(_ctx(case, findings=findings), tmp_path / "u.pdf")
    text = _text(pdf)
    assert "PRELIMINARY - NOT SIGNED" in text
    assert "Nodule N2" not in text and "N2 proposed by the AI system were rejected" in text
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, check=True, text=True).stdout
    assert "CT chest pulmonary nodule report" in info and "radiology-app" in info
    assert case.findings.study_uid in info


def test_report_without_images_or_note(case: Case, tmp_path: Path) -> None:
    findings = dataclasses.replace(case.findings, note_text=None, facts={})
    pdf = render_report_pdf(
        _ctx(case, findings=findings, volume=None, labels=None, patient=None, study=None, series=None),
        tmp_path / "bare.pdf",
    )
    text = _text(pdf)
    assert "No clinical note was attached" in text
    assert "N1" in text and "N2" in text


def test_facts_from_note_are_listed(case: Case, tmp_path: Path) -> None:
    text = _text(render_report_pdf(_ctx(case), tmp_path / "f.pdf"))
    assert "Pack-years 30" in text
    assert "Haemoptysis yes" in text
    assert "Fever no / denied" in text


def test_technique_rounds_the_slice_thickness(case: Case, tmp_path: Path) -> None:
    series = dataclasses.replace(case.series, slice_thickness_mm=3.98734)
    text = _text(render_report_pdf(_ctx(case, series=series), tmp_path / "r.pdf"))
    assert "Slice thickness 3.987 mm" in text
    series = dataclasses.replace(case.series, slice_thickness_mm=0.625)
    assert "Slice thickness 0.625 mm" in _text(
        render_report_pdf(_ctx(case, series=series), tmp_path / "t.pdf")
    )


def test_cap_text_cuts_at_a_word_with_an_ellipsis() -> None:
    from radiology_app.reporting.text import cap_text

    assert cap_text("short  phrase", 20) == "short phrase"
    capped = cap_text("alpha beta gamma delta epsilon zeta", 20)
    assert capped == "alpha beta gamma\u2026" and len(capped) <= 20
    assert cap_text("x" * 500, 40) == "x" * 39 + "\u2026"


def test_odd_content_falls_back_to_the_simple_layout(case: Case, tmp_path: Path) -> None:
    from radiology_app.reporting.pdf import SIMPLE_LAYOUT_NOTICE

    odd = dataclasses.replace(case.findings.nodules[0], lobe="X" * 20_000)  # one cell taller than a page
    pdf = render_report_pdf(
        _ctx(case, findings=dataclasses.replace(case.findings, nodules=(odd,))), tmp_path / "odd.pdf"
    )
    text = _text(pdf)
    assert SIMPLE_LAYOUT_NOTICE.split(":")[0] in text
    assert "N1" in text and "ZHANG, Wei" in text and "Lung-RADS" in text


def test_many_nodules_and_a_huge_evidence_token(case: Case, tmp_path: Path) -> None:
    base = case.findings.nodules
    many = tuple(dataclasses.replace(base[i % 2], id=f"N{i + 1}", evidence=("Q" * 8_000,)) for i in range(30))
    findings = dataclasses.replace(case.findings, nodules=many)
    pdf = render_report_pdf(_ctx(case, findings=findings, volume=None), tmp_path / "many.pdf")
    text = _text(pdf)
    assert "N30" in text and "Q" * 8_000 not in text.replace(" ", "")
    assert "Simplified layout" not in text  # capped phrases fit the standard layout
