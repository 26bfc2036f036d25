"""Round trip of the project's own SEG, TID 1500 SR and encapsulated PDF (radiology_app.dicom.export)
through a real archive: C-STORE them to Orthanc, retrieve with C-GET, read back with highdicom."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from conftest import LOCAL_AE, ArchiveFixture

from radiology_app.core.findings import Findings, LungRadsAssessment, NoduleFinding, sign_findings
from radiology_app.core.types import Patient, Study, Volume
from radiology_app.dicom.export import export_dicom_objects
from radiology_app.dicom.write_ct import write_ct_series
from radiology_app.pacs import dimse
from radiology_app.reporting.pdf import ReportContext, render_report_bytes


def _case(tmp_path: Path) -> tuple[Findings, list[Path], np.ndarray, Volume, Patient, Study]:
    from pydicom.uid import generate_uid

    study_uid = str(generate_uid(entropy_srcs=["pacs-export-round-trip"]))
    patient = Patient(patient_id="PX01", name="ROUND^TRIP", sex="F", birth_date=dt.date(1960, 1, 1))
    study = Study(
        study_uid=study_uid, patient_id="PX01", study_date=dt.date(2025, 5, 5), accession_number="RT1"
    )
    hu = np.full((12, 48, 48), -850, dtype=np.int16)
    zz, yy, xx = np.mgrid[:12, :48, :48]
    blob = (zz - 6) ** 2 / 4 + (yy - 20) ** 2 + (xx - 26) ** 2 <= 16
    hu[blob] = 30
    paths = write_ct_series(
        hu, (2.0, 0.8, 0.8), tmp_path / "ct", patient=patient, study=study, uid_seed="pacs-export-round-trip"
    )
    series_uid = str(pydicom.dcmread(paths[0], stop_before_pixels=True).SeriesInstanceUID)
    volume = Volume(
        hu=hu,
        spacing_zyx_mm=(2.0, 0.8, 0.8),
        origin_lps_mm=(0.0, 0.0, 0.0),
        direction=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        series_uid=series_uid,
    )
    labels = blob.astype(np.int16)
    nodule = NoduleFinding(
        id="N1",
        label_id=1,
        centroid_lps_mm=(20.8, 16.0, 12.0),
        long_axis_mm=7.5,
        short_axis_mm=6.0,
        mean_diameter_mm=6.8,
        volume_mm3=float(blob.sum() * 2.0 * 0.64),
        mean_hu=30.0,
        composition="solid",
        lobe="RUL",
        lung_rads=LungRadsAssessment(category="3"),
        differential=(("granuloma", 0.55), ("adenocarcinoma", 0.45)),
        modality_weights={"image": 0.6, "text": 0.4},
    )
    findings = Findings(study_uid=study_uid, series_uid=series_uid, nodules=(nodule,))
    findings = sign_findings(findings, "Dr. Test Reader", dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC))
    return findings, paths, labels, volume, patient, study


def test_seg_sr_pdf_round_trip_through_orthanc(archive: ArchiveFixture, tmp_path: Path) -> None:
    findings, ct_paths, labels, volume, patient, study = _case(tmp_path)
    pdf = render_report_bytes(ReportContext(findings, patient, study, None, volume, labels))
    exported = export_dicom_objects(
        findings, ct_paths, labels, tmp_path / "out", pdf_bytes=pdf, volume=volume
    )
    assert exported.seg and exported.sr and exported.pdf
    try:
        sent = dimse.store_files(archive.server.node, [*ct_paths, *exported.paths], local_ae=LOCAL_AE)
        assert sent.sent == len(ct_paths) + 3 and not sent.issues
        back = dimse.get_study(archive.server.node, study.study_uid, tmp_path / "back", local_ae=LOCAL_AE)
        assert len(back.files) == len(ct_paths) + 3
        by_class: dict[str, list[Path]] = {}
        for f in back.files:
            by_class.setdefault(str(pydicom.dcmread(f, stop_before_pixels=True).SOPClassUID), []).append(f)
        (seg_path,) = by_class["1.2.840.10008.5.1.4.1.1.66.4"]
        (pdf_path,) = by_class["1.2.840.10008.5.1.4.1.1.104.1"]
        sr_paths = [
            p for c, ps in by_class.items() if c.startswith("1.2.840.10008.5.1.4.1.1.88.") for p in ps
        ]
        assert len(sr_paths) == 1
        seg = hd.seg.segread(seg_path)
        vol = seg.get_volume(combine_segments=True, relabel=False)
        assert vol is not None and int((np.asarray(vol.array) == 1).sum()) == int(labels.sum())
        sr = hd.sr.srread(sr_paths[0])
        assert sr.StudyInstanceUID == study.study_uid
        doc = pydicom.dcmread(pdf_path)
        assert doc.MIMETypeOfEncapsulatedDocument == "application/pdf"
        assert bytes(doc.EncapsulatedDocument).startswith(b"%PDF") and bytes(doc.EncapsulatedDocument).rstrip(
            b"\x00"
        ).endswith(pdf.rstrip(b"\x00")[-32:])
        sent_uids = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in exported.paths}
        got_uids = {
            str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
            for p in (seg_path, pdf_path, *sr_paths)
        }
        assert sent_uids == got_uids
    finally:
        archive.server.delete_study(study.study_uid)
