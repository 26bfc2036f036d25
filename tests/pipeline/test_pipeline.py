"""The analysis pipeline with real DICOM, measurement, rules, storage and report; networks doubled."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_case import NOTE, STUDY_UID, FakeRegistry, fake_segment_nodules, write_study

from radiology_app.core.errors import OperationCancelled, VolumeError
from radiology_app.core.findings import Findings, NoduleFinding
from radiology_app.core.progress import CancelToken, Progress
from radiology_app.pipeline import (
    analyze_study,
    export_dicom,
    latest_findings,
    load_labels,
    review_nodule,
    store_findings,
    write_report,
)
from radiology_app.store.database import StudyDatabase
from segmentation.phantom.chest import ChestPhantom, make_chest_phantom


def test_analyze_study_end_to_end(db: StudyDatabase, registry: FakeRegistry, phantom: ChestPhantom) -> None:
    seen: list[NoduleFinding] = []
    progress: list[Progress] = []
    f = analyze_study(
        db,
        STUDY_UID[:30],
        note_text=NOTE,
        registry=registry,
        on_nodule=seen.append,
        on_progress=progress.append,
    )
    assert f.study_uid == STUDY_UID and f.series_number == 3
    assert [n.id for n in f.nodules] == ["N1", "N2"] == [n.id for n in seen]
    assert [p.done for p in progress] == sorted(p.done for p in progress) and progress[-1].done == 1000
    by_kind = {n.composition: n for n in f.nodules}
    assert set(by_kind) == {"solid", "ground_glass"}
    for n in f.nodules:
        truth = next(t for t in phantom.nodules if t.label_id == n.label_id)
        assert n.centroid_zyx is not None and n.centroid_lps_mm is not None and n.bbox_lps_mm is not None
        centre_mm = np.asarray(n.centroid_zyx) * np.asarray(phantom.spacing_zyx_mm)
        assert np.linalg.norm(centre_mm - np.asarray(truth.center_zyx_mm)) < 3.0
        lo, hi = n.bbox_lps_mm
        assert all(a <= c <= b for a, c, b in zip(lo, n.centroid_lps_mm, hi, strict=True))
        assert n.mean_diameter_mm is not None and abs(n.mean_diameter_mm - truth.mean_diameter_mm) < 2.5
        assert n.lung_rads.category and n.lung_rads.reason
        assert n.fleischner.recommendation
        assert n.brock_probability is not None and 0.0 < n.brock_probability < 1.0
        assert n.differential and n.modality_weights == {"image": 0.6, "text": 0.4}
        assert n.evidence == (NOTE[:12],)
        assert n.key_slice_z is not None and n.review == "pending" and n.source == "model"
    # the model's own differential is kept; the product's is reconciled with the signs, history and Brock
    solid, glass = by_kind["solid"], by_kind["ground_glass"]
    assert solid.model_differential[0][0] == "adenocarcinoma"
    assert solid.model_malignancy_probability == pytest.approx(0.7)
    assert solid.brock_probability is not None and solid.malignancy_probability is not None
    odds = (solid.malignancy_probability / (1 - solid.malignancy_probability)) / (
        solid.brock_probability / (1 - solid.brock_probability)
    )
    assert 1.0 < odds <= 10.0 + 1e-6
    assert any("Brock" in why for why in solid.reasoning)
    assert glass.differential[0][0] in ("infection", "adenocarcinoma")
    assert dict(glass.differential)["intrapulmonary_lymph_node"] <= 0.01
    assert dict(glass.differential)["metastasis"] <= 0.02
    # facts from the note feed the rules: 68-year-old woman, former smoker, family history
    assert f.fact_value("age") == 68 and f.fact_value("sex") == "F"
    assert f.patient_age_years == 68 and f.patient_sex == "F"
    assert f.lung_rads.category is not None and f.impression
    assert [m.name for m in f.models] == ["nodule_unet", "fused_dx"]
    assert any("slice interval" in w for w in f.warnings)
    # the test scan's 2.2 mm pixels are coarser than the detector was trained on
    assert any("2.20 x 2.20 mm in-plane" in w and "coarser" in w for w in f.warnings)
    # stored: the run's JSON is the findings, and the label map is on disk
    run = db.latest_analysis_run(STUDY_UID)
    assert run is not None and run.status == "done" and run.run_id == f.run_id
    assert Findings.from_json(run.findings_json) == f
    labels = load_labels(f)
    assert labels is not None and np.array_equal(labels, phantom.labels)
    doc = f.to_json()
    json.dumps(doc)
    assert doc["report"] is None and len(doc["nodules"]) == 2


def test_uses_stored_note_and_works_without_diagnosis(db: StudyDatabase, phantom: ChestPhantom) -> None:
    db.add_note(STUDY_UID, NOTE)
    f = analyze_study(db, STUDY_UID, registry=FakeRegistry(diagnosis_available=False))
    assert f.note_text == NOTE and f.fact_value("pack_years") == 35
    assert all(not n.differential for n in f.nodules)
    assert any("differential diagnosis unavailable" in w for w in f.warnings)
    assert [m.name for m in f.models] == ["nodule_unet"]


def test_cancel_marks_run_cancelled(db: StudyDatabase, registry: FakeRegistry) -> None:
    token = CancelToken()

    def stop_at_first(_: NoduleFinding) -> None:
        token.cancel()

    with pytest.raises(OperationCancelled):
        analyze_study(db, STUDY_UID, note_text=NOTE, registry=registry, cancel=token, on_nodule=stop_at_first)
    run = db.latest_analysis_run(STUDY_UID)
    assert run is not None and run.status == "cancelled"
    token2 = CancelToken()
    token2.cancel()
    with pytest.raises(OperationCancelled):
        analyze_study(db, STUDY_UID, note_text=NOTE, registry=registry, cancel=token2)


def test_far_too_coarse_voxels_are_refused_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: FakeRegistry
) -> None:
    from radiology_app.importer import import_paths

    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    coarse = make_chest_phantom(5, shape_zyx=(16, 64, 64), spacing_zyx_mm=(4.0, 4.2, 4.2), nodules=[])
    files = write_study(coarse, tmp_path / "ct")
    with StudyDatabase(tmp_path / "home" / "studies.sqlite3") as database:
        import_paths([files[0].parent], database)
        with pytest.raises(VolumeError, match=r"4\.20 x 4\.20 mm in-plane .* detection is not run"):
            analyze_study(database, STUDY_UID, note_text=NOTE, registry=registry)
        run = database.latest_analysis_run(STUDY_UID)
        assert run is not None and run.status == "failed"


def test_review_reassesses(db: StudyDatabase, registry: FakeRegistry) -> None:
    f = analyze_study(db, STUDY_UID, note_text=NOTE, registry=registry)
    solid = next(n for n in f.nodules if n.composition == "solid")
    ggn = next(n for n in f.nodules if n.composition == "ground_glass")
    g = review_nodule(f, solid.id, "reject")
    assert g.nodule(solid.id).review == "rejected"
    assert g.lung_rads.category == ggn.lung_rads.category  # the exam category now comes from the GGN alone
    assert all(solid.id not in line for line in g.impression)
    h = review_nodule(g, ggn.id, "edit", composition="solid")
    assert h.nodule(ggn.id).composition == "solid" and h.nodule(ggn.id).review == "edited"
    assert h.nodule(ggn.id).lung_rads.reason != ggn.lung_rads.reason
    stored = store_findings(db, h)
    latest = latest_findings(db, STUDY_UID)
    assert latest == stored


def test_report_and_dicom_export(db: StudyDatabase, registry: FakeRegistry, tmp_path: Path) -> None:
    f = analyze_study(db, STUDY_UID, note_text=NOTE, registry=registry)
    out = write_report(f, db, tmp_path / "r" / "report.pdf", reviewer="Dr. Ada Byrne", sign=True)
    assert out.report is not None and Path(out.report).exists() and out.is_signed
    assert latest_findings(db, STUDY_UID) == out
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", out.report, "-"], capture_output=True, text=True).stdout
        assert "TEST, Pipeline" in text and "PIPE-1" in text and "Dr. Ada Byrne" in text
        assert "Im " in text  # image references from the instance numbers
    result = export_dicom(out, db, tmp_path / "dcm", deidentify=True, uid_seed="x")
    assert result.seg and result.sr and result.pdf
    pdf_doc = __import__("pydicom").dcmread(result.pdf)
    raw = bytes(pdf_doc.EncapsulatedDocument)
    assert b"PIPE-1" not in raw  # the de-identified PDF is rendered without identity
    if shutil.which("pdftotext"):
        (tmp_path / "deid.pdf").write_bytes(raw[: pdf_doc.EncapsulatedDocumentLength])
        text = subprocess.run(
            ["pdftotext", str(tmp_path / "deid.pdf"), "-"], capture_output=True, text=True
        ).stdout
        assert "Pipeline" not in text and "PIPE-1" not in text and "DE-IDENTIFIED" in text
        assert "ex-smoker" not in text  # no note text
        assert (
            "2026-06-01" not in text and STUDY_UID not in text and "Byrne" not in text
        )  # no dates, UIDs, names
        assert "removed (de-identified copy)" in text


def test_add_nodule_at(
    db: StudyDatabase, registry: FakeRegistry, phantom: ChestPhantom, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radiology_app.importer import load_study_volume
    from radiology_app.pipeline import add_nodule_at

    f = analyze_study(db, STUDY_UID, note_text=NOTE, registry=registry)
    _, volume = load_study_volume(db, STUDY_UID)
    point = (20, 64, 40)

    def sphere(
        hu: np.ndarray, spacing: tuple[float, float, float], p: tuple[int, int, int], **_: object
    ) -> np.ndarray:
        zz, yy, xx = np.meshgrid(*(np.arange(s) for s in hu.shape), indexing="ij")
        d = np.sqrt(
            ((zz - p[0]) * spacing[0]) ** 2
            + ((yy - p[1]) * spacing[1]) ** 2
            + ((xx - p[2]) * spacing[2]) ** 2
        )
        inside: np.ndarray = d <= 4.0
        return inside

    monkeypatch.setattr("segmentation.inference.segment_at_point", sphere)
    g = add_nodule_at(f, volume, point, registry=registry)
    new = g.nodules[-1]
    assert new.id == "N3" and new.source == "clinician" and new.review == "added"
    assert new.label_id == 3 and new.mean_diameter_mm is not None and new.differential
    labels = load_labels(g)
    assert labels is not None and int((labels == 3).sum()) > 0
    old = load_labels(f)
    assert old is not None and int((old == 3).sum()) == 0  # earlier findings keep their label map


def test_chinese_note_through_pipeline_and_report(
    db: StudyDatabase, registry: FakeRegistry, tmp_path: Path
) -> None:
    note = "女，68岁。吸烟35年，每天1包，已戒烟10年。咳嗽3周，否认发热。母亲患肺癌。"
    f = analyze_study(db, STUDY_UID, note_text=note, registry=registry)
    assert f.fact_value("age") == 68 and f.fact_value("sex") == "F"
    assert f.fact_value("fever") is False
    out = write_report(f, db, tmp_path / "zh.pdf")
    assert f.run_id is not None
    assert db.get_analysis_run(f.run_id).status == "done"  # writing a report is not a review
    if shutil.which("pdftotext"):
        assert out.report is not None
        text = subprocess.run(["pdftotext", out.report, "-"], capture_output=True, text=True).stdout
        assert "".join(note.split()) in "".join(text.split())


def test_the_diagnosis_model_loads_while_the_network_runs(
    db: StudyDatabase, phantom: ChestPhantom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its loading (imports that hold the GIL) starts with the network stage, not during resampling and
    the lung mask, which it slowed several-fold; and it overlaps the network."""
    import threading

    from segmentation import inference

    loading = threading.Event()
    seen: list[tuple[str, bool]] = []
    segment = fake_segment_nodules(phantom)

    def staged(hu: Any, spacing: Any, *, on_progress: Any = None, **kwargs: Any) -> Any:
        for message in ("resampling", "lung mask", "network"):
            on_progress(0, 3, message)
            seen.append((message, loading.wait(5.0 if message == "network" else 0.3)))
        return segment(hu, spacing, **kwargs)

    class Recording(FakeRegistry):
        def diagnosis(self, settings: Any, *, saliency: bool = True) -> Any:
            loading.set()
            return super().diagnosis(settings, saliency=saliency)

    monkeypatch.setattr(inference, "segment_nodules", staged)
    f = analyze_study(db, STUDY_UID, note_text=NOTE, registry=Recording())
    assert seen == [("resampling", False), ("lung mask", False), ("network", True)]
    assert f.nodules and f.nodules[0].differential
