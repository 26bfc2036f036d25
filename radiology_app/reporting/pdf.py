"""The PDF report (reportlab), laid out like a radiology report a clinician signs.

Sections, in order: institution header; patient and exam fields; clinical information (the note and the
facts read from it); technique (from DICOM); comparison; findings (one table row per nodule, then per
nodule its key images, differential with modality weights and evidence, and guideline assessment);
impression; model provenance; the AI-suggestion statement; reviewer and sign-off. Every page carries
the patient line and "page x of y". Fonts are embedded (see :mod:`radiology_app.reporting.fonts`).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radiology_app import __version__
from radiology_app.core.errors import ReportError
from radiology_app.core.findings import Findings, NoduleFinding
from radiology_app.core.types import Patient, Series, Study, Volume
from radiology_app.reporting import figures
from radiology_app.reporting.fonts import LATIN, LATIN_BOLD, font_runs, markup, register_font
from radiology_app.reporting.text import (
    cap_text,
    compose_impression,
    composition_name,
    diagnosis_name,
    facts_summary,
    fmt_mm,
    fmt_pct,
    fmt_risk,
    location_name,
    margin_name,
    nodule_type,
    size_text,
)

AI_STATEMENT = (
    "The nodule detection, measurements, guideline categories and differential diagnosis in this report "
    "are AI suggestions produced by radiology-app {version}. They were reviewed, and corrected where "
    "needed, by the signing clinician, who is responsible for the final report. The AI models were "
    "trained mostly on synthetic data made by the software's developers, the nodule detector also on three "
    "real chest CTs, and one image branch of the malignancy estimate on real LIDC-IDRI nodules (see their "
    "model cards); they are not a validated medical device."
)
AI_STATEMENT_UNSIGNED = (
    "The nodule detection, measurements, guideline categories and differential diagnosis in this report "
    "are AI suggestions produced by radiology-app {version}. They have not yet been reviewed by a "
    "clinician and must not be used for patient management until a clinician has reviewed and signed "
    "them. The AI models were trained mostly on synthetic data made by the software's developers, the "
    "nodule detector also on three real chest CTs, and one image branch of the malignancy estimate on real "
    "LIDC-IDRI nodules (see their model cards); they are not a validated medical device."
)
UNSIGNED_STATEMENT = "PRELIMINARY - NOT SIGNED. AI suggestions awaiting review by a clinician."
NOTE_MAX_CHARS = 900
#: Longest evidence phrase, reasoning item and data-quality note shown (characters; longer ones end "…").
EVIDENCE_MAX_CHARS = 90
REASONING_MAX_CHARS = 160
WARNING_MAX_CHARS = 400
SIMPLE_LAYOUT_NOTICE = (
    "Simplified layout: this report's content did not fit the standard layout, so its tables are shown "
    "as lines of text."
)
REMOVED = "removed (de-identified copy)"


@dataclass(frozen=True)
class ReportContext:
    """Everything the report shows besides the findings.

    Attributes
    ----------
    findings
        The (reviewed) findings.
    patient, study, series
        DICOM identity and technique; any may be ``None`` (fields print as ``-``).
    volume
        The analysed CT volume, for key images (``None``: no images).
    labels
        Instance label map ``[z, y, x]`` matching ``volume`` (``None``: no contours).
    instance_numbers
        InstanceNumber of each slice index, for image references (``None``: slice index + 1).
    institution_name, institution_address
        Header lines.
    deidentified
        A de-identified copy: study UID, reviewer and report times are left out (the caller also
        strips patient identity, dates and the note from the other fields).
    """

    findings: Findings
    patient: Patient | None = None
    study: Study | None = None
    series: Series | None = None
    volume: Volume | None = None
    labels: npt.NDArray[np.generic] | None = None
    instance_numbers: Sequence[int] | None = None
    institution_name: str = "Department of Radiology"
    institution_address: str = ""
    deidentified: bool = False


# -- styles -----------------------------------------------------------------------------------------------


def _styles() -> dict[str, Any]:
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    base = ParagraphStyle("base", fontName=LATIN, fontSize=9, leading=11.5, textColor=colors.black)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.8, leading=9.6),
        "cellb": ParagraphStyle("cellb", parent=base, fontName=LATIN_BOLD, fontSize=7.8, leading=9.6),
        "inst": ParagraphStyle("inst", parent=base, fontName=LATIN_BOLD, fontSize=14, leading=17),
        "addr": ParagraphStyle(
            "addr", parent=base, fontSize=8.5, leading=10.5, textColor=colors.HexColor("#444444")
        ),
        "title": ParagraphStyle(
            "title",
            parent=base,
            fontName=LATIN_BOLD,
            fontSize=12,
            leading=15,
            textColor=colors.HexColor("#1f3b5a"),
        ),
        "h2": ParagraphStyle(
            "h2",
            parent=base,
            fontName=LATIN_BOLD,
            fontSize=10,
            leading=13,
            spaceBefore=7,
            spaceAfter=2,
            textColor=colors.HexColor("#1f3b5a"),
        ),
        "h3": ParagraphStyle(
            "h3", parent=base, fontName=LATIN_BOLD, fontSize=9.2, leading=12, spaceBefore=4, spaceAfter=2
        ),
        "note": ParagraphStyle(
            "note", parent=base, fontSize=8.5, leading=11, leftIndent=6, textColor=colors.HexColor("#222222")
        ),
        "warn": ParagraphStyle(
            "warn", parent=base, fontSize=8, leading=10, textColor=colors.HexColor("#8a4b00")
        ),
        "statement": ParagraphStyle(
            "statement", parent=base, fontSize=8.2, leading=10.5, textColor=colors.HexColor("#1f3b5a")
        ),
        "unsigned": ParagraphStyle(
            "unsigned",
            parent=base,
            fontName=LATIN_BOLD,
            fontSize=10,
            leading=13,
            textColor=colors.HexColor("#b00020"),
        ),
    }


def _p(text: str, style: Any) -> Any:
    from reportlab.platypus import Paragraph

    return Paragraph(markup(text), style)


def _pb(label: str, value: str, style: Any) -> Any:
    from reportlab.platypus import Paragraph

    return Paragraph(f"<b>{markup(label)}</b> {markup(value)}", style)


# -- flowables ----------------------------------------------------------------------------------------------


def _image_flowable(
    key: figures.KeyImage, width_pt: float, scale_bar: float | None, caption: str, orientation: bool
) -> Any:
    from reportlab.lib import colors
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import Flowable

    height_pt = width_pt * key.height_mm / key.width_mm

    class _KeyImageFlowable(Flowable):  # type: ignore[misc]
        def wrap(self, aw: float, ah: float) -> tuple[float, float]:
            return width_pt, height_pt + 11

        def draw(self) -> None:
            c = self.canv
            c.drawImage(ImageReader(key.image), 0, 11, width_pt, height_pt)
            c.setFont(LATIN, 7)
            c.setFillColor(colors.black)
            c.drawString(0, 2, caption)
            c.setFillColor(colors.white)
            c.setStrokeColor(colors.white)
            if orientation:
                c.setFont(LATIN_BOLD, 8)
                c.drawString(3, 11 + height_pt - 10, "R")
                c.drawRightString(width_pt - 3, 11 + height_pt - 10, "L")
            if scale_bar is not None:
                length_pt = width_pt * scale_bar / key.width_mm
                x0, y0 = width_pt - length_pt - 6, 17
                c.setFillColor(colors.Color(0, 0, 0, alpha=0.55))
                c.rect(x0 - 3, y0 - 4, length_pt + 6, 14, stroke=0, fill=1)
                c.setFillColor(colors.white)
                c.setLineWidth(1.6)
                c.line(x0, y0, x0 + length_pt, y0)
                c.line(x0, y0 - 2, x0, y0 + 2)
                c.line(x0 + length_pt, y0 - 2, x0 + length_pt, y0 + 2)
                c.setFont(LATIN, 6.5)
                c.drawCentredString(x0 + length_pt / 2, y0 + 3, f"{scale_bar:g} mm")

    return _KeyImageFlowable()


def _differential_flowable(n: NoduleFinding, width_pt: float) -> Any:
    """Probability bars of the differential, then the modality weights as one stacked bar."""
    from reportlab.lib import colors
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import Flowable

    rows = list(n.differential[:6])
    row_h = 11.0
    weights = n.modality_weights
    has_w = weights.get("image") is not None or weights.get("text") is not None
    height = row_h * len(rows) + (26 if has_w else 0) + 2
    label_w = 100.0
    bar_w = width_pt - label_w - 34
    malignant = {
        "adenocarcinoma",
        "squamous_cell_carcinoma",
        "small_cell_carcinoma",
        "carcinoid",
        "metastasis",
    }

    class _Bars(Flowable):  # type: ignore[misc]
        def wrap(self, aw: float, ah: float) -> tuple[float, float]:
            return width_pt, height

        def draw(self) -> None:
            c = self.canv
            y = height - row_h
            for i, (dx, p) in enumerate(rows):
                c.setFillColor(colors.black)
                c.setFont(LATIN_BOLD if i == 0 else LATIN, 7.3)
                c.drawString(0, y + 2, diagnosis_name(dx))
                c.setFillColor(colors.HexColor("#eeeeee"))
                c.rect(label_w, y + 1, bar_w, row_h - 3, stroke=0, fill=1)
                c.setFillColor(colors.HexColor("#b5483b" if dx in malignant else "#3b7bb5"))
                c.rect(label_w, y + 1, max(0.5, bar_w * float(p)), row_h - 3, stroke=0, fill=1)
                c.setFillColor(colors.black)
                c.setFont(LATIN, 7.3)
                c.drawString(label_w + bar_w + 3, y + 2, fmt_pct(p))
                y -= row_h
            if not has_w:
                return
            parts = [
                ("image", float(weights.get("image") or 0.0), "#5b6f8a"),
                ("text", float(weights.get("text") or 0.0), "#8a7a5b"),
                ("joint", float(sum(v for k, v in weights.items() if k not in ("image", "text"))), "#6f8a5b"),
            ]
            total = sum(v for _, v, _ in parts) or 1.0
            y -= 5
            c.setFont(LATIN, 7.3)
            c.drawString(0, y + 2, "Modality weights")
            x = label_w
            for name, value, colour in parts:
                if value <= 0:
                    continue
                w = bar_w * value / total
                c.setFillColor(colors.HexColor(colour))
                c.rect(x, y + 1, w, row_h - 3, stroke=0, fill=1)
                label = f"{name} {value / total:.2f}"
                if stringWidth(label, LATIN, 6.5) + 4 <= w:
                    c.setFillColor(colors.white)
                    c.setFont(LATIN, 6.5)
                    c.drawString(x + 2, y + 2.4, label)
                x += w
            c.setFillColor(colors.HexColor("#444444"))
            c.setFont(LATIN, 6.5)
            legend = " / ".join(f"{k} {v / total:.2f}" for k, v, _ in parts if v > 0)
            caption = f"({legend}; share of the decision carried by each input)"
            if stringWidth(caption, LATIN, 6.5) > width_pt:
                caption = f"({legend})"
            c.drawString(0, y - 8, caption)

    return _Bars()


# -- sections ------------------------------------------------------------------------------------------------


def _fmt_date(d: dt.date | None) -> str:
    return "-" if d is None else d.strftime("%Y-%m-%d")


def _age_text(ctx: ReportContext) -> str:
    if ctx.study is not None and ctx.study.patient_age_years is not None:
        return f"{ctx.study.patient_age_years} years"
    if (
        ctx.patient is not None
        and ctx.patient.birth_date is not None
        and ctx.study is not None
        and ctx.study.study_date is not None
    ):
        b, s = ctx.patient.birth_date, ctx.study.study_date
        return f"{s.year - b.year - ((s.month, s.day) < (b.month, b.day))} years"
    age = ctx.findings.fact_value("age")
    return f"{age} years (from note)" if age is not None else "-"


def _sex_text(ctx: ReportContext) -> str:
    sex = ctx.patient.sex if ctx.patient is not None else None
    if sex is None:
        sex = ctx.findings.fact_value("sex")
    return {"F": "Female", "M": "Male", "O": "Other"}.get(str(sex), "-") if sex else "-"


def _person_name(raw: str) -> str:
    """DICOM PN ``Family^Given^Middle`` -> ``FAMILY, Given Middle``."""
    if not raw:
        return "-"
    parts = raw.split("=")[0].split("^")
    family = parts[0].strip()
    given = " ".join(p.strip() for p in parts[1:3] if p.strip())
    return f"{family.upper()}, {given}" if given else family or raw


def _header(ctx: ReportContext, st: dict[str, Any]) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer, Table, TableStyle

    story: list[Any] = [_p(ctx.institution_name, st["inst"])]
    if ctx.institution_address:
        story.append(_p(ctx.institution_address, st["addr"]))
    story += [Spacer(1, 3 * mm), _p("CT CHEST - PULMONARY NODULE REPORT", st["title"]), Spacer(1, 2 * mm)]
    p, s = ctx.patient, ctx.study
    rows = [
        (
            "Patient",
            _person_name(p.name) if p else "-",
            "Study date",
            f"{_fmt_date(s.study_date if s else None)} {_fmt_time(s.study_time if s else '')}".strip(),
        ),
        ("Patient ID", p.patient_id if p else "-", "Accession", (s.accession_number if s else "") or "-"),
        ("Sex", _sex_text(ctx), "Referring physician", _person_name(s.referring_physician) if s else "-"),
        ("Age", _age_text(ctx), "Date of birth", _fmt_date(p.birth_date if p else None)),
        (
            "Exam",
            (s.description if s else "") or "CT chest",
            "Study UID",
            REMOVED if ctx.deidentified else ctx.findings.study_uid,
        ),
    ]
    data = [
        [_p(a, st["cellb"]), _p(b, st["cell"]), _p(c, st["cellb"]), _p(d, st["cell"])] for a, b, c, d in rows
    ]
    t = Table(data, colWidths=[22 * mm, 60 * mm, 30 * mm, 64 * mm])
    t.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), LATIN),
                ("BOX", (0, 0), (-1, -1), 0.6, colors.HexColor("#1f3b5a")),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef2f7")),
                ("BACKGROUND", (2, 0), (2, -1), colors.HexColor("#eef2f7")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    story.append(t)
    return story


def _fmt_time(t: str) -> str:
    digits = "".join(ch for ch in t if ch.isdigit())
    return f"{digits[0:2]}:{digits[2:4]}" if len(digits) >= 4 else ""


def _clinical(ctx: ReportContext, st: dict[str, Any]) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Table, TableStyle

    story: list[Any] = [_p("Clinical information", st["h2"])]
    note = (ctx.findings.note_text or "").strip()
    if note:
        shown = note if len(note) <= NOTE_MAX_CHARS else note[:NOTE_MAX_CHARS].rstrip() + " [...]"
        story.append(_p("Referral note:", st["h3"]))
        for para in [x for x in shown.splitlines() if x.strip()]:
            story.append(_p(para.strip(), st["note"]))
    elif ctx.deidentified:
        story.append(_p("The clinical note is left out of this de-identified copy.", st["base"]))
    else:
        story.append(_p("No clinical note was attached to this study.", st["base"]))
    pairs = facts_summary(ctx.findings.facts)
    if pairs:
        story.append(
            _p("Facts read from the note (automatic extraction; verify against the note):", st["h3"])
        )
        half = (len(pairs) + 1) // 2
        left, right = pairs[:half], pairs[half:]
        data = []
        for i in range(half):
            a = left[i]
            b = right[i] if i < len(right) else ("", "")
            data.append(
                [_p(a[0], st["cellb"]), _p(a[1], st["cell"]), _p(b[0], st["cellb"]), _p(b[1], st["cell"])]
            )
        t = Table(data, colWidths=[36 * mm, 52 * mm, 40 * mm, 48 * mm])
        t.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), LATIN),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")),
                    ("TOPPADDING", (0, 0), (-1, -1), 1),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ]
            )
        )
        story.append(t)
    elif note:
        story.append(_p("No risk-relevant facts could be read from the note.", st["small"]))
    return story


def _technique(ctx: ReportContext, st: dict[str, Any]) -> list[Any]:
    se, vol = ctx.series, ctx.volume
    parts: list[str] = []
    contrast = (se.contrast_agent if se else "").strip()
    reading = ctx.findings.contrast
    if contrast:
        parts.append(f"CT of the chest with intravenous contrast ({contrast}).")
    elif reading is not None and reading.enhanced and reading.blood_pool_hu is not None:
        parts.append(
            "CT of the chest; no contrast agent recorded in the DICOM headers, but the blood pool measures "
            f"about {reading.blood_pool_hu:.0f} HU: read as contrast-enhanced."
        )
    else:
        parts.append("CT of the chest; no contrast agent recorded in the DICOM headers.")
    if reading is not None and reading.enhanced:
        parts.append(
            f"Calcification was called only above {reading.calcium_threshold_hu:.0f} HU, denser than the "
            "enhanced blood."
        )
    if se is not None:
        scanner = " ".join(x for x in (se.manufacturer, se.model_name) if x).strip()
        if scanner:
            parts.append(f"Scanner: {scanner}.")
        if se.convolution_kernel:
            parts.append(f"Reconstruction kernel: {se.convolution_kernel}.")
        thick = se.slice_thickness_mm
        if thick is None and vol is not None:
            thick = vol.slice_thickness_mm
        if thick is not None:
            parts.append(f"Slice thickness {round(thick, 3):g} mm.")
    if vol is not None:
        sz, sy, sx = vol.spacing_zyx_mm
        z, y, x = vol.shape_zyx
        parts.append(f"Slice interval {sz:.2f} mm, {z} images of {y} x {x} pixels ({sy:.2f} x {sx:.2f} mm).")
    if se is not None:
        desc = f' "{se.description}"' if se.description else ""
        num = f" {se.series_number}" if se.series_number is not None else ""
        parts.append(f"Series analysed:{num}{desc}.")
    story = [
        _p("Technique", st["h2"]),
        _p(" ".join(parts), st["base"]),
        _p("Comparison", st["h2"]),
        _p(
            "None. No prior chest CT of this patient was available for comparison; nodules are assessed "
            "as baseline findings.",
            st["base"],
        ),
    ]
    if ctx.findings.warnings:
        story.append(_p("Data quality notes:", st["h3"]))
        for w in ctx.findings.warnings:
            story.append(_p(f"- {cap_text(w, WARNING_MAX_CHARS)}", st["warn"]))
    return story


def _image_ref(ctx: ReportContext, n: NoduleFinding) -> str:
    z = n.key_slice_z
    if z is None and n.centroid_zyx is not None:
        z = round(n.centroid_zyx[0])
    if z is None:
        return "-"
    im = (
        ctx.instance_numbers[z]
        if ctx.instance_numbers is not None and 0 <= z < len(ctx.instance_numbers)
        else z + 1
    )
    se = ctx.findings.series_number
    if se is None and ctx.series is not None:
        se = ctx.series.series_number
    return f"Se {se if se is not None else '-'} / Im {im}"


def _nodule_table(ctx: ReportContext, nodules: Sequence[NoduleFinding], st: dict[str, Any]) -> Any:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Table, TableStyle

    head = [
        "ID",
        "Location",
        "Image",
        "Type",
        "Size: long x short (mean), mm",
        "Volume mm³",
        "HU mean [min, max]",
        "Margin",
        "Lung-RADS",
        "Brock",
    ]
    data = [[_p(h, st["cellb"]) for h in head]]
    for n in nodules:
        hu = (
            "-"
            if n.mean_hu is None
            else (
                f"{n.mean_hu:.0f} [{'-' if n.min_hu is None else f'{n.min_hu:.0f}'}, "
                f"{'-' if n.max_hu is None else f'{n.max_hu:.0f}'}]"
            )
        )
        size = f"{fmt_mm(n.long_axis_mm)} x {fmt_mm(n.short_axis_mm)} ({fmt_mm(n.mean_diameter_mm)})"
        if n.composition == "part_solid" and n.solid_component_mm is not None:
            size += f"; solid {fmt_mm(n.solid_component_mm)}"
        review = {"added": " (added by clinician)", "edited": " (edited)"}.get(n.review, "")
        data.append(
            [
                _p(n.id + review, st["cellb"]),
                _p(location_name(n), st["cell"]),
                _p(_image_ref(ctx, n), st["cell"]),
                _p(nodule_type(n), st["cell"]),
                _p(size, st["cell"]),
                _p("-" if n.volume_mm3 is None else f"{n.volume_mm3:.0f}", st["cell"]),
                _p(hu, st["cell"]),
                _p(margin_name(n.spiculation_score), st["cell"]),
                _p(n.lung_rads.category or "-", st["cellb"]),
                _p(fmt_pct(n.brock_probability, 1), st["cell"]),
            ]
        )
    widths = [11, 18, 17, 23, 27, 13, 20, 16, 18, 13]
    t = Table(data, colWidths=[w * mm for w in widths], repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), LATIN),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe7f1")),
                ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#9aa8b8")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return t


def _nodule_block(ctx: ReportContext, n: NoduleFinding, st: dict[str, Any]) -> Any:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Spacer, Table, TableStyle

    title = (
        f"Nodule {n.id}: {location_name(n)}, {composition_name(n.composition).lower()}, "
        f"{fmt_mm(n.mean_diameter_mm)} mm"
    )
    if n.review == "added":
        title += " (added by the reviewing clinician)"
    parts: list[Any] = [_p(title, st["h3"])]
    images: list[Any] = []
    vol, labels = ctx.volume, ctx.labels
    z = (
        n.key_slice_z
        if n.key_slice_z is not None
        else (round(n.centroid_zyx[0]) if n.centroid_zyx is not None else None)
    )
    if vol is not None and z is not None and 0 <= z < vol.shape_zyx[0] and n.centroid_zyx is not None:
        spacing_yx = (vol.spacing_zyx_mm[1], vol.spacing_zyx_mm[2])
        center_yx = (n.centroid_zyx[1], n.centroid_zyx[2])
        lab = labels[z] if labels is not None else None
        field_mm = figures.zoom_field_mm(n.mean_diameter_mm)
        axial = figures.render_axial(
            vol.hu[z], lab, n.label_id, spacing_yx, zoom_box_mm=field_mm, center_yx=center_yx
        )
        zoom = figures.render_zoom(vol.hu[z], lab, n.label_id, spacing_yx, center_yx, field_mm)
        images = [
            _image_flowable(
                axial,
                58 * mm,
                figures.scale_bar_mm(axial.width_mm),
                f"Axial, lung window, {_image_ref(ctx, n)}",
                orientation=True,
            ),
            _image_flowable(
                zoom,
                44 * mm,
                figures.scale_bar_mm(field_mm),
                f"Zoom {field_mm:.0f} mm field",
                orientation=False,
            ),
        ]
    right: list[Any] = []
    if n.differential:
        right.append(
            _p("AI differential (image + note model, checked against signs and history)", st["cellb"])
        )
        right.append(_differential_flowable(n, 68 * mm))
        right.append(_pb("Malignancy probability (AI):", _malignancy_text(n), st["cell"]))
        if n.reasoning:
            right.append(_pb("How it was weighed:", _reasoning_text(n), st["cell"]))
    else:
        right.append(_p("No AI differential for this nodule.", st["cell"]))
    evidence = _evidence_text(ctx, n)
    if evidence:
        right.append(_pb("Note phrases that weighed most:", evidence, st["cell"]))
    row = [*images, right] if images else [right]
    widths = [60 * mm, 46 * mm, 70 * mm] if images else [176 * mm]
    t = Table([row], colWidths=widths)
    t.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), LATIN),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 1),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    parts.append(t)
    lr, fl = n.lung_rads, n.fleischner
    lines = [
        (
            "Measurements:",
            f"{size_text(n)}; volume "
            f"{'-' if n.volume_mm3 is None else f'{n.volume_mm3:.0f}'} mm³; "
            f"margin {margin_name(n.spiculation_score)}"
            f"{'' if n.spiculation_score is None else f' (spiculation score {n.spiculation_score:.2f})'}"
            f"{'; perifissural pattern' if n.perifissural else ''}.",
        ),
        (
            "Lung-RADS v2022:",
            f"category {lr.category or '-'}"
            f"{f' - {lr.management}' if lr.management else ''}"
            f"{f' ({lr.reason})' if lr.reason else ''}.",
        ),
        ("Fleischner 2017:", f"{fl.recommendation or '-'}{f' ({fl.reason})' if fl.reason else ''}."),
        ("Brock (PanCan, full model):", f"{fmt_pct(n.brock_probability, 1)} probability of malignancy."),
    ]
    box = Table([[_pb(a, b, st["cell"])] for a, b in lines], colWidths=[176 * mm])
    box.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), LATIN),
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f6f8fb")),
                ("BOX", (0, 0), (-1, -1), 0.3, colors.HexColor("#c5cfdb")),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    parts += [Spacer(1, 1.5 * mm), box, Spacer(1, 3 * mm)]
    return KeepTogether(parts)


def _reasoning_text(n: NoduleFinding) -> str:
    return "; ".join(cap_text(r, REASONING_MAX_CHARS) for r in n.reasoning[:5]) + "."


def _evidence_text(ctx: ReportContext, n: NoduleFinding) -> str:
    """The note phrases that weighed most, quoted and capped; empty in a de-identified copy (no note)."""
    if ctx.deidentified or not n.evidence:
        return ""
    return "; ".join(f"\u201c{cap_text(e, EVIDENCE_MAX_CHARS)}\u201d" for e in n.evidence[:5])


def _malignancy_text(n: NoduleFinding) -> str:
    """The product's malignancy probability and the readings behind it."""
    parts = []
    if n.model_malignancy_probability is not None:
        parts.append(f"image + note model alone {fmt_risk(n.model_malignancy_probability)}")
    if n.lidc_malignancy_probability is not None:
        parts.append(f"real-CT image branch {fmt_risk(n.lidc_malignancy_probability)}")
    return fmt_risk(n.malignancy_probability) + (f" ({', '.join(parts)})" if parts else "")


def _findings_section(ctx: ReportContext, st: dict[str, Any]) -> list[Any]:
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer

    f = ctx.findings
    nodules = f.reported_nodules
    story: list[Any] = [_p("Findings", st["h2"])]
    rejected = [n.id for n in f.nodules if n.review == "rejected"]
    if not nodules:
        story.append(_p("Lungs: no pulmonary nodule identified by the AI system.", st["base"]))
    else:
        story.append(
            _p(
                f"Lungs: {len(nodules)} pulmonary nodule{'s' if len(nodules) != 1 else ''} "
                "(sizes by the conventions of Lung-RADS v2022 / Fleischner 2017: long and perpendicular "
                "short axis on the axial image of largest extent, mean rounded to 0.1 mm).",
                st["base"],
            )
        )
        story += [Spacer(1, 1.5 * mm), _nodule_table(ctx, nodules, st)]
    if rejected:
        story.append(
            _p(
                f"Candidate(s) {', '.join(rejected)} proposed by the AI system were rejected by the "
                "reviewing clinician and are not reported.",
                st["small"],
            )
        )
    story.append(
        _p(
            "Airways, pleura, heart, mediastinum, chest wall, bones and upper abdomen: not assessed by "
            "the AI system; see the signing clinician's review.",
            st["small"],
        )
    )
    for n in nodules:
        story.append(_nodule_block(ctx, n, st))
    return story


def _closing(ctx: ReportContext, st: dict[str, Any]) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Spacer, Table, TableStyle

    f = ctx.findings
    impression = f.impression or compose_impression(f)
    story: list[Any] = [_p("Impression", st["h2"])]
    story += [_p(line, st["base"]) for line in impression]
    prov: list[Any] = [_p("Model provenance", st["h2"])]
    if f.models:
        data = [
            [_p("Model", st["cellb"]), _p("Version", st["cellb"]), _p("SHA-256 of the weights", st["cellb"])]
        ]
        data += [
            [_p(m.name, st["cell"]), _p(m.version or "-", st["cell"]), _p(m.sha256 or "-", st["small"])]
            for m in f.models
        ]
        t = Table(data, colWidths=[45 * mm, 22 * mm, 109 * mm])
        t.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), LATIN),
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#9aa8b8")),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe7f1")),
                    ("TOPPADDING", (0, 0), (-1, -1), 1),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ]
            )
        )
        prov.append(t)
    else:
        prov.append(_p("No model recorded.", st["small"]))
    run = f"Analysis run {f.run_id}" if f.run_id is not None else "Analysis"
    when = REMOVED if ctx.deidentified else _fmt_signed(f.created_at)
    prov.append(_p(f"{run} at {when}, radiology-app {__version__}.", st["small"]))
    story += prov
    counts = {
        k: sum(1 for n in f.nodules if n.review == k) for k in ("accepted", "rejected", "edited", "added")
    }
    review = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no nodule reviewed"
    sign: list[Any] = [
        Spacer(1, 3 * mm),
        _p(
            (AI_STATEMENT if f.is_signed else AI_STATEMENT_UNSIGNED).format(version=__version__),
            st["statement"],
        ),
        Spacer(1, 2 * mm),
    ]
    if f.is_signed:
        sign.append(
            _pb("Reviewed and signed by:", REMOVED if ctx.deidentified else f"{f.reviewer}", st["base"])
        )
        sign.append(_pb("Signed at:", REMOVED if ctx.deidentified else _fmt_signed(f.signed_at), st["base"]))
        sign.append(_pb("Clinician review of AI findings:", review, st["base"]))
    else:
        sign.append(_p(UNSIGNED_STATEMENT, st["unsigned"]))
        if f.reviewer and not ctx.deidentified:
            sign.append(_pb("Reviewer:", f.reviewer, st["base"]))
    story.append(KeepTogether(sign))
    return story


def _fmt_signed(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- page furniture and the document --------------------------------------------------------------------


def _draw_runs(c: Any, x: float, y: float, text: str, size: float, align: str = "left") -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    runs = font_runs(text)
    width = sum(stringWidth(r, f, size) for f, r in runs)
    if align == "right":
        x -= width
    elif align == "centre":
        x -= width / 2
    for font, run in runs:
        c.setFont(font, size)
        c.drawString(x, y, run)
        x += stringWidth(run, font, size)


def _canvas_class(ctx: ReportContext) -> type:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    p, s = ctx.patient, ctx.study
    who = (
        f"{_person_name(p.name) if p else '-'}  |  ID {p.patient_id if p else '-'}  |  "
        f"Study {_fmt_date(s.study_date if s else None)}"
    )
    status = "Signed" if ctx.findings.is_signed else "PRELIMINARY - not signed"

    class _NumberedCanvas(Canvas):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._furniture(total)
                super().showPage()
            super().save()

        def _furniture(self, total: int) -> None:
            w, _ = A4
            self.saveState()
            self.setStrokeColor(colors.HexColor("#9aa8b8"))
            self.setLineWidth(0.4)
            self.line(14 * mm, 13 * mm, w - 14 * mm, 13 * mm)
            self.setFillColor(colors.HexColor("#333333"))
            _draw_runs(self, 14 * mm, 9 * mm, who, 7)
            _draw_runs(self, w - 14 * mm, 9 * mm, f"Page {self._pageNumber} of {total}", 7, "right")
            _draw_runs(
                self,
                w / 2,
                5.5 * mm,
                f"AI suggestions reviewed by the signing clinician  |  {status}",
                6.5,
                "centre",
            )
            if self._pageNumber > 1:
                _draw_runs(
                    self, 14 * mm, A4[1] - 9 * mm, f"{ctx.institution_name} - CT chest nodule report", 7
                )
            self.restoreState()

    return _NumberedCanvas


def render_report_bytes(ctx: ReportContext) -> bytes:
    """Render the report and return the PDF bytes.

    Raises
    ------
    ReportError
        If a font cannot be loaded or reportlab cannot lay the document out.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    register_font(LATIN)
    st = _styles()
    f = ctx.findings
    buf = io.BytesIO()
    # a de-identified copy names no person or place, and its metadata dates are reportlab's fixed ones
    author = f"radiology-app {__version__}" if ctx.deidentified else (f.reviewer or ctx.institution_name)
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=13 * mm,
        bottomMargin=17 * mm,
        title="CT chest pulmonary nodule report",
        author=author,
        subject="De-identified report" if ctx.deidentified else f"Study {f.study_uid}, series {f.series_uid}",
        creator=f"radiology-app {__version__}",
        producer=f"radiology-app {__version__} (reportlab)",
        keywords="chest CT, pulmonary nodule, Lung-RADS v2022, Fleischner 2017, Brock, AI suggestion",
        invariant=ctx.deidentified,
        initialFontName=LATIN,  # no unembedded Helvetica resource
    )
    try:
        doc.build(_story(ctx, st), canvasmaker=_canvas_class(ctx))
    except Exception:  # reportlab raises LayoutError and plain exceptions: try the simple layout
        buf.seek(0)
        buf.truncate()
        simple = [_p(SIMPLE_LAYOUT_NOTICE, st["warn"]), *_flatten(_story(ctx, st), st["cell"])]
        try:
            doc.build(simple, canvasmaker=_canvas_class(ctx))
        except Exception as exc:
            raise ReportError(f"study {f.study_uid}: cannot lay out the PDF report ({exc})") from exc
    return buf.getvalue()


def _story(ctx: ReportContext, st: dict[str, Any]) -> list[Any]:
    return [
        *_header(ctx, st),
        *_clinical(ctx, st),
        *_technique(ctx, st),
        *_findings_section(ctx, st),
        *_closing(ctx, st),
    ]


def _flatten(story: Sequence[Any], style: Any) -> list[Any]:
    """The simple layout: tables become one line of text per row, kept-together groups their parts.

    Paragraphs split across pages and every other flowable has a fixed size, so any content fits.
    """
    from reportlab.platypus import KeepTogether, Paragraph, Table

    out: list[Any] = []
    for item in story:
        if isinstance(item, Table):
            for row in item._cellvalues:
                cells = [c for c in row if c not in ("", None)]
                if all(isinstance(c, (Paragraph, str)) for c in cells):
                    texts = [c.text if isinstance(c, Paragraph) else markup(c) for c in cells]
                    line = " | ".join(t for t in texts if t.strip())
                    if line:
                        out.append(Paragraph(line, style))
                else:
                    out += _flatten([x for c in cells for x in (c if isinstance(c, list) else [c])], style)
        elif isinstance(item, KeepTogether):
            out += _flatten(item._content, style)
        elif isinstance(item, str):
            out.append(Paragraph(markup(item), style))
        else:
            out.append(item)
    return out


def render_report_pdf(ctx: ReportContext, out_pdf: Path) -> Path:
    """Render the report into ``out_pdf`` (parent folders created; written atomically).

    Raises
    ------
    ReportError
        If the PDF cannot be laid out or written.
    """
    data = render_report_bytes(ctx)
    out_pdf = Path(out_pdf)
    try:
        out_pdf.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_pdf.with_suffix(out_pdf.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(out_pdf)
    except OSError as exc:
        raise ReportError(f"{out_pdf}: cannot write the PDF report ({exc})") from exc
    return out_pdf
