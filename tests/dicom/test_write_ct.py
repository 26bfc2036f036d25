"""write_ct_series writes real CT files that pydicom and SimpleITK read back exactly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk  # noqa: N813

from radiology_app.core.types import Patient, Study
from radiology_app.dicom.write_ct import write_ct_series

PATIENT = Patient("P-W1", "Doe^Jane", "F", dt.date(1960, 1, 2))
STUDY = Study("1.2.826.0.1.3680043.8.498.777", "P-W1", dt.date(2024, 5, 6), patient_age_years=64)


def _hu() -> np.ndarray:
    return np.random.default_rng(0).integers(-1024, 2000, size=(6, 20, 16)).astype(np.int16)


def test_round_trip_pixels_and_geometry(tmp_path: Path) -> None:
    hu = _hu()
    files = write_ct_series(
        hu,
        (2.5, 0.7, 0.8),
        tmp_path,
        origin_lps_mm=(-10.0, -20.0, -300.0),
        patient=PATIENT,
        study=STUDY,
        convolution_kernel="LUNG",
        uid_seed="s",
    )
    assert len(files) == 6
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    img = reader.Execute()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), hu)
    assert img.GetSpacing() == pytest.approx((0.8, 0.7, 2.5))
    assert img.GetOrigin() == pytest.approx((-10.0, -20.0, -300.0))
    ds = pydicom.dcmread(files[2])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert ds.Modality == "CT" and ds.ConvolutionKernel == "LUNG"
    assert ds.StudyInstanceUID == STUDY.study_uid and ds.PatientID == "P-W1"
    assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx([-10.0, -20.0, -295.0])
    np.testing.assert_array_equal(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept), hu[2])


def test_uid_seed_is_deterministic_and_unique(tmp_path: Path) -> None:
    a = write_ct_series(_hu(), (1, 1, 1), tmp_path / "a", patient=PATIENT, study=STUDY, uid_seed="k")
    b = write_ct_series(_hu(), (1, 1, 1), tmp_path / "b", patient=PATIENT, study=STUDY, uid_seed="k")
    c = write_ct_series(_hu(), (1, 1, 1), tmp_path / "c", patient=PATIENT, study=STUDY)
    uids_a = [pydicom.dcmread(p).SOPInstanceUID for p in a]
    uids_b = [pydicom.dcmread(p).SOPInstanceUID for p in b]
    uids_c = [pydicom.dcmread(p).SOPInstanceUID for p in c]
    assert uids_a == uids_b
    assert len(set(uids_a)) == len(uids_a)
    assert not set(uids_a) & set(uids_c)


def test_custom_slice_positions_and_bad_input(tmp_path: Path) -> None:
    files = write_ct_series(
        _hu()[:3], (2, 1, 1), tmp_path, patient=PATIENT, study=STUDY, slice_positions_mm=[0.0, 2.0, 7.0]
    )
    z = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in files]
    assert z == [0.0, 2.0, 7.0]
    with pytest.raises(ValueError, match="3-D"):
        write_ct_series(np.zeros((4, 4)), (1, 1, 1), tmp_path, patient=PATIENT, study=STUDY)
    with pytest.raises(ValueError, match="16-bit"):
        write_ct_series(np.full((1, 2, 2), 40000), (1, 1, 1), tmp_path, patient=PATIENT, study=STUDY)
