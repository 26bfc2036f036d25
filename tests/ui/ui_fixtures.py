"""Small synthetic volumes for the UI tests (no DICOM, no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from radiology_app.core.types import Volume


def make_volume(
    shape: tuple[int, int, int] = (40, 64, 72),
    spacing: tuple[float, float, float] = (2.5, 0.7, 0.7),
    nodule_zyx: tuple[int, int, int] | None = (20, 30, 40),
    radius_vox: int = 4,
) -> Volume:
    """A small CT-like volume: air outside, a soft-tissue body, two lungs, one bright nodule."""
    z, y, x = shape
    hu = np.full(shape, -1000, dtype=np.int16)
    yy, xx = np.mgrid[0:y, 0:x]
    body = ((yy - y / 2) / (0.45 * y)) ** 2 + ((xx - x / 2) / (0.45 * x)) ** 2 <= 1
    hu[:, body] = 40
    for cx in (0.3 * x, 0.7 * x):
        lung = ((yy - y / 2) / (0.3 * y)) ** 2 + ((xx - cx) / (0.15 * x)) ** 2 <= 1
        hu[:, lung] = -850
    if nodule_zyx is not None:
        zz, yy3, xx3 = np.mgrid[0:z, 0:y, 0:x]
        cz, cy, cx3 = nodule_zyx
        ball = (
            ((zz - cz) * spacing[0]) ** 2 + ((yy3 - cy) * spacing[1]) ** 2 + ((xx3 - cx3) * spacing[2]) ** 2
        ) <= (radius_vox * spacing[1]) ** 2
        hu[ball] = 30
    direction = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    return Volume(
        hu=hu,
        spacing_zyx_mm=spacing,
        origin_lps_mm=(-25.0, -20.0, -100.0),
        direction=direction,
        series_uid="1.2.3.4",
    )


def write_study(
    out_dir: Path,
    volume: Volume | None = None,
    patient_name: str = "Test^Alice",
    patient_id: str = "P001",
    study_uid: str = "1.2.826.0.1.3680043.8.498.777.1",
    description: str = "CT chest",
) -> list[Path]:
    """Write ``volume`` (default :func:`make_volume`) as a real CT DICOM series into ``out_dir``."""
    import datetime as dt

    from radiology_app.core.types import Patient, Study
    from radiology_app.dicom.write_ct import write_ct_series

    volume = volume or make_volume()
    return write_ct_series(
        volume.hu,
        volume.spacing_zyx_mm,
        out_dir,
        origin_lps_mm=volume.origin_lps_mm,
        patient=Patient(patient_id=patient_id, name=patient_name, sex="F"),
        study=Study(
            study_uid=study_uid,
            patient_id=patient_id,
            study_date=dt.date(2024, 5, 17),
            description=description,
        ),
        uid_seed=study_uid,
        series_description="axial lung",
    )


def make_findings(study_uid: str = "1.2.826.0.1.3680043.8.498.777.1", series_uid: str = "1.2.3.4") -> Any:
    """Two model nodules with measurements, categories and a differential (as the pipeline makes them)."""
    from radiology_app.core.findings import Findings, LungRadsAssessment, NoduleFinding

    n1 = NoduleFinding(
        id="N1",
        label_id=1,
        centroid_zyx=(20.0, 30.0, 40.0),
        centroid_lps_mm=(3.0, 1.0, -50.0),
        mean_diameter_mm=6.1,
        long_axis_mm=6.8,
        short_axis_mm=5.4,
        volume_mm3=118.0,
        mean_hu=25.0,
        composition="solid",
        lobe="RUL",
        side="right",
        lung_rads=LungRadsAssessment("3", "6-month LDCT", "solid 6-8 mm"),
        brock_probability=0.062,
        differential=(("adenocarcinoma", 0.41), ("granuloma", 0.33), ("hamartoma", 0.16)),
        malignancy_probability=0.47,
        modality_weights={"image": 0.62, "text": 0.38},
        evidence=("30 pack-years", "former smoker"),
    )
    n2 = NoduleFinding(
        id="N2",
        label_id=2,
        centroid_zyx=(10.0, 20.0, 20.0),
        mean_diameter_mm=4.2,
        volume_mm3=35.0,
        composition="ground_glass",
        lobe="LLL",
        lung_rads=LungRadsAssessment("2", "12-month LDCT"),
        brock_probability=0.011,
        differential=(("infection", 0.5), ("adenocarcinoma", 0.3)),
        modality_weights={"image": 0.4, "text": 0.6},
    )
    return Findings(
        study_uid=study_uid, series_uid=series_uid, nodules=(n1, n2), lung_rads=LungRadsAssessment("3")
    )
