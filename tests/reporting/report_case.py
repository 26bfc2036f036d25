"""A small synthetic chest CT with two nodules and hand-built findings, for the report and DICOM tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from radiology_app.core.findings import (
    Findings,
    FleischnerAssessment,
    LungRadsAssessment,
    ModelRecord,
    NoduleFinding,
)
from radiology_app.core.types import Patient, Series, Study, Volume

CHINESE_NOTE = "患者男，64岁，吸烟30年，每天1包。咳嗽两周，痰中带血。否认发热。既往无肿瘤病史。"


@dataclass(frozen=True)
class Case:
    """A volume, its label map, identity and findings."""

    volume: Volume
    labels: npt.NDArray[np.int16]
    patient: Patient
    study: Study
    series: Series
    findings: Findings


def make_volume(
    shape: tuple[int, int, int] = (24, 96, 96), spacing: tuple[float, float, float] = (2.5, 3.0, 3.0)
) -> tuple[Volume, npt.NDArray[np.int16]]:
    """Body ellipse, two lungs at -850 HU with noise, two spherical nodules (labels 1 and 2)."""
    rng = np.random.default_rng(7)
    z, y, x = shape
    zz, yy, xx = np.meshgrid(np.arange(z), np.arange(y), np.arange(x), indexing="ij")
    hu = np.full(shape, -1000.0, dtype=np.float32)
    body = ((yy - y / 2) / (0.42 * y)) ** 2 + ((xx - x / 2) / (0.47 * x)) ** 2 <= 1
    hu[body] = 40.0
    for cx in (0.3 * x, 0.7 * x):
        lung = ((yy - y / 2) / (0.3 * y)) ** 2 + ((xx - cx) / (0.15 * x)) ** 2 <= 1
        hu[lung & (zz > 1) & (zz < z - 2)] = -850.0
    hu += rng.normal(0, 15, shape).astype(np.float32)
    labels = np.zeros(shape, dtype=np.int16)
    sz, sy, sx = spacing
    for label, (cz, cy, cx, r_mm, val) in enumerate([(12, 48, 29, 5.0, 30.0), (10, 44, 67, 3.5, -550.0)], 1):
        d = np.sqrt(((zz - cz) * sz) ** 2 + ((yy - cy) * sy) ** 2 + ((xx - cx) * sx) ** 2)
        sphere = d <= r_mm
        hu[sphere] = val
        labels[sphere] = label
    vol = Volume(
        hu=np.round(hu).astype(np.int16),
        spacing_zyx_mm=spacing,
        origin_lps_mm=(-144.0, -144.0, -30.0),
        direction=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        series_uid="1.2.826.0.1.3680043.10.1.2",
        slice_thickness_mm=2.5,
    )
    return vol, labels


def make_findings(volume: Volume, labels: npt.NDArray[np.int16], note: str | None) -> Findings:
    nodules = []
    specs: list[dict[str, Any]] = [
        dict(
            composition="solid",
            lobe="RUL",
            side="right",
            mean_hu=30.0,
            min_hu=-120.0,
            max_hu=95.0,
            lr=LungRadsAssessment("4A", "3-month LDCT", "solid >= 8 to < 15 mm at baseline"),
            fl=FleischnerAssessment(
                "CT at 3 months, then consider PET/CT or tissue sampling", "single solid > 8 mm", True
            ),
            brock=0.083,
            diff=(
                ("adenocarcinoma", 0.52),
                ("granuloma", 0.21),
                ("metastasis", 0.12),
                ("hamartoma", 0.08),
                ("infection", 0.07),
            ),
            mal=0.68,
            w={"image": 0.62, "text": 0.38},
            ev=("吸烟30年", "痰中带血"),
            spic=0.55,
        ),
        dict(
            composition="ground_glass",
            lobe="LUL",
            side="left",
            mean_hu=-560.0,
            min_hu=-700.0,
            max_hu=-420.0,
            lr=LungRadsAssessment("2", "12-month LDCT", "non-solid < 30 mm"),
            fl=FleischnerAssessment("No routine follow-up", "single ground-glass < 6 mm", True),
            brock=0.012,
            diff=(("adenocarcinoma", 0.44), ("infection", 0.40), ("intrapulmonary_lymph_node", 0.16)),
            mal=0.41,
            w={"image": 0.81, "text": 0.19},
            ev=(),
            spic=0.1,
        ),
    ]
    for label, s in enumerate(specs, 1):
        idx = np.argwhere(labels == label)
        c = idx.mean(axis=0)
        lo, hi = idx.min(axis=0), idx.max(axis=0)
        areas = [(labels[k] == label).sum() for k in range(labels.shape[0])]
        sp = volume.spacing_zyx_mm
        d = float(2 * ((labels == label).sum() * np.prod(sp) * 3 / (4 * np.pi)) ** (1 / 3))
        nodules.append(
            NoduleFinding(
                id=f"N{label}",
                label_id=label,
                centroid_lps_mm=volume.index_to_lps(tuple(c)),
                bbox_lps_mm=(volume.index_to_lps(tuple(lo)), volume.index_to_lps(tuple(hi))),
                centroid_zyx=(float(c[0]), float(c[1]), float(c[2])),
                bbox_zyx=(tuple(int(v) for v in lo), tuple(int(v) for v in hi)),  # type: ignore[arg-type]
                key_slice_z=int(np.argmax(areas)),
                long_axis_mm=round(d + 0.6, 1),
                short_axis_mm=round(d - 0.5, 1),
                mean_diameter_mm=round(d, 1),
                volume_mm3=float((labels == label).sum() * np.prod(sp)),
                mean_hu=s["mean_hu"],
                min_hu=s["min_hu"],
                max_hu=s["max_hu"],
                composition=s["composition"],
                calcification=None,
                fat=False,
                side=s["side"],
                lobe=s["lobe"],
                juxtapleural=False,
                spiculation_score=s["spic"],
                lung_rads=s["lr"],
                fleischner=s["fl"],
                brock_probability=s["brock"],
                differential=s["diff"],
                malignancy_probability=s["mal"],
                modality_weights=s["w"],
                evidence=s["ev"],
            )
        )
    facts: dict[str, Any] = {
        "age": {"value": 64, "span": [3, 6], "text": "64岁"},
        "sex": {"value": "M", "span": [2, 3], "text": "男"},
        "smoking_status": {"value": "current", "span": [7, 12], "text": "吸烟30年"},
        "pack_years": {"value": 30.0, "span": [7, 16], "text": "吸烟30年，每天1包"},
        "fever": {"value": False, "span": [29, 33], "text": "否认发热"},
        "hemoptysis": {"value": True, "span": [23, 27], "text": "痰中带血"},
        "cough": {"value": True, "span": [17, 19], "text": "咳嗽"},
        "personal_cancer_history": {"value": False, "span": None, "text": None},
    }
    return Findings(
        study_uid="1.2.826.0.1.3680043.10.1.1",
        series_uid=volume.series_uid,
        run_id=3,
        created_at="2026-11-29T10:00:00+00:00",
        warnings=("Slice spacing 2.5 mm is thicker than the 1.5 mm recommended for nodule assessment.",),
        facts=facts if note else {},
        note_text=note,
        models=(ModelRecord("nodule_unet", "1.0.0", "a" * 64), ModelRecord("fused_dx", "0.3.0", "b" * 64)),
        nodules=tuple(nodules),
        lung_rads=LungRadsAssessment("4A", "3-month LDCT", "worst nodule N1"),
        fleischner=FleischnerAssessment(
            "Not applicable: the patient meets lung-cancer screening criteria", "screening population", False
        ),
        series_number=2,
    )


def build_case(
    shape: tuple[int, int, int] = (24, 96, 96),
    spacing: tuple[float, float, float] = (2.5, 3.0, 3.0),
    note: str | None = CHINESE_NOTE,
) -> Case:
    """Build the synthetic case (also used by the benchmarks and the pipeline tests)."""
    vol, labels = make_volume(shape, spacing)
    patient = Patient(patient_id="RA-000123", name="Zhang^Wei", sex="M", birth_date=dt.date(1962, 3, 14))
    study = Study(
        study_uid="1.2.826.0.1.3680043.10.1.1",
        patient_id="RA-000123",
        study_date=dt.date(2026, 11, 2),
        study_time="093012",
        accession_number="ACC-77881",
        description="CT THORAX LOW DOSE",
        referring_physician="Li^Na",
        patient_age_years=64,
    )
    series = Series(
        series_uid=vol.series_uid,
        study_uid=study.study_uid,
        modality="CT",
        description="Lung 2.5mm",
        series_number=2,
        convolution_kernel="B70f",
        slice_thickness_mm=2.5,
        manufacturer="SIEMENS",
        model_name="SOMATOM Definition AS",
        instance_count=24,
    )
    return Case(vol, labels, patient, study, series, make_findings(vol, labels, note))
