"""DICOM SEG, TID 1500 SR and Encapsulated PDF: dciodvfy-clean, read back with highdicom, same numbers;
de-identified export keeps references and drops identity."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from report_case import Case

from radiology_app.core.findings import reject_nodule, sign_findings
from radiology_app.dicom.export import ExportResult, dicom_person_name, export_dicom_objects
from radiology_app.dicom.write_ct import write_ct_series
from radiology_app.reporting.pdf import ReportContext, render_report_bytes


def _export(case: Case, tmp_path: Path, **kw: Any) -> tuple[ExportResult, list[Path]]:
    paths = write_ct_series(
        case.volume.hu,
        case.volume.spacing_zyx_mm,
        tmp_path / "ct",
        origin_lps_mm=case.volume.origin_lps_mm,
        patient=case.patient,
        study=case.study,
        series_uid=case.volume.series_uid,
        series_number=2,
        slice_thickness_mm=2.5,
        uid_seed="export-test",
    )
    findings = sign_findings(case.findings, "Dr. Anna Chen", dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC))
    findings = kw.pop("findings", findings)  # type: ignore[assignment]
    pdf = render_report_bytes(
        ReportContext(
            findings,
            case.patient,
            case.study,
            case.series,
            case.volume,  # type: ignore[arg-type]
            case.labels,
        )
    )
    result = export_dicom_objects(
        findings,
        list(reversed(paths)),
        case.labels,
        tmp_path / "out",  # type: ignore[arg-type]
        pdf_bytes=pdf,
        volume=case.volume,
        uid_seed="t",
        **kw,
    )  # type: ignore[arg-type]
    return result, paths


def _dciodvfy_errors(path: Path) -> list[str]:
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools (dciodvfy) not installed")
def test_outputs_validate_with_dciodvfy(case: Case, tmp_path: Path) -> None:
    result, _ = _export(case, tmp_path)
    assert result.seg and result.sr and result.pdf
    for path in (result.seg, result.sr, result.pdf):
        assert _dciodvfy_errors(path) == [], path


def test_seg_and_sr_read_back_with_same_measurements(case: Case, tmp_path: Path) -> None:
    result, paths = _export(case, tmp_path)
    assert result.seg is not None and result.sr is not None and result.pdf is not None
    seg = hd.seg.segread(result.seg)
    assert seg.StudyInstanceUID == case.study.study_uid
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["N1", "N2"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == case.volume.series_uid
    ct_uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in paths}
    vol = seg.get_volume(combine_segments=True, relabel=False)
    assert vol is not None
    # the SEG's voxels carry the same nodules (frames may be reordered: compare voxel counts per segment)
    for k, n in enumerate(case.findings.nodules, 1):
        assert int((np.asarray(vol.array) == k).sum()) == int((case.labels == n.label_id).sum())
    sr = hd.sr.srread(result.sr)
    assert sr.StudyInstanceUID == case.study.study_uid
    groups = sr.content.get_volumetric_roi_measurement_groups()  # type: ignore[attr-defined]
    assert len(groups) == 2
    by_id = {str(g.tracking_identifier): g for g in groups}
    for n in case.findings.nodules:
        g = by_id[n.id]
        values = {m.name.meaning: m.value for m in g.get_measurements()}
        assert values["Long axis"] == pytest.approx(n.long_axis_mm)
        assert values["Short axis"] == pytest.approx(n.short_axis_mm)
        assert values["Diameter"] == pytest.approx(n.mean_diameter_mm)
        assert values["Volume"] == pytest.approx(n.volume_mm3)
        assert g.referenced_segment.referenced_sop_instance_uid == seg.SOPInstanceUID
    evidence = {
        i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for s in sr.CurrentRequestedProcedureEvidenceSequence
        for i in s.ReferencedSeriesSequence
    }
    assert evidence  # the CT series and the SEG are listed as evidence
    pdf = pydicom.dcmread(result.pdf)
    assert bytes(pdf.EncapsulatedDocument)[: pdf.EncapsulatedDocumentLength].startswith(b"%PDF")
    assert {i.ReferencedSOPInstanceUID for i in pdf.SourceInstanceSequence} == ct_uids
    assert pdf.StudyInstanceUID == case.study.study_uid and pdf.PatientID == case.patient.patient_id


def test_rejected_nodule_left_out(case: Case, tmp_path: Path) -> None:
    findings = reject_nodule(case.findings, "N2")
    result, _ = _export(case, tmp_path, findings=findings)
    assert result.seg is not None
    seg = hd.seg.segread(result.seg)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["N1"]


def test_deidentified_export(case: Case, tmp_path: Path) -> None:
    result, _ = _export(case, tmp_path, deidentify=True, include_ct=True)
    assert result.deidentified and len(result.ct) == case.volume.shape_zyx[0]
    seg = pydicom.dcmread(result.seg)  # type: ignore[arg-type]
    ct = pydicom.dcmread(result.ct[0])
    for ds in (seg, ct, pydicom.dcmread(result.sr), pydicom.dcmread(result.pdf)):  # type: ignore[arg-type]
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.PatientID != case.patient.patient_id and "Zhang" not in str(ds.PatientName)
        assert ds.StudyInstanceUID != case.study.study_uid
        assert ds.StudyInstanceUID == ct.StudyInstanceUID
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.SeriesInstanceUID
    for path in (result.seg, result.sr, result.ct[0]):
        raw = Path(path).read_bytes()  # type: ignore[arg-type]
        for ident in (b"RA-000123", b"ACC-77881", b"Zhang", case.study.study_uid.encode()):
            assert ident not in raw, (path, ident)
    if shutil.which("dciodvfy"):
        for path in (result.seg, result.sr, result.pdf, result.ct[0]):
            assert _dciodvfy_errors(path) == [], path  # type: ignore[arg-type]


def test_person_name() -> None:
    assert dicom_person_name("Dr. Anna Chen") == "Chen^Anna^^Dr."
    assert dicom_person_name("Chen, Anna") == "Chen^Anna"
    assert dicom_person_name("Chen") == "Chen^"
