"""Descriptive header text: placeholders such as "None" that converters write count as not recorded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radiology_app.core.types import Patient, Study
from radiology_app.dicom.index import HeaderRecord, read_header
from radiology_app.dicom.write_ct import write_ct_series

PATIENT = Patient("P-H1", "Doe^Jane", "F", dt.date(1960, 1, 2))
STUDY = Study("1.2.826.0.1.3680043.8.498.778", "P-H1", dt.date(2024, 5, 6))


def _header(tmp_path: Path, contrast: str, **text: str) -> HeaderRecord:
    hu = np.zeros((1, 8, 8), dtype=np.int16)
    path = write_ct_series(hu, (1, 1, 1), tmp_path, patient=PATIENT, study=STUDY, uid_seed="h", **text)[0]
    ds = pydicom.dcmread(path)
    ds.ContrastBolusAgent = contrast
    ds.save_as(path)
    record = read_header(str(path))
    assert isinstance(record, HeaderRecord), record
    return record


@pytest.mark.parametrize("contrast", ["NONE", "None", "No", "non-contrast", "N/A", ""])
def test_placeholders_read_as_not_recorded(tmp_path: Path, contrast: str) -> None:
    series = _header(
        tmp_path, contrast, series_description="None", manufacturer="GE Medical Systems", model_name="NULL"
    ).series
    assert series.description == "" and series.model_name == "" and series.contrast_agent == ""
    assert series.manufacturer == "GE Medical Systems"


def test_real_text_is_kept(tmp_path: Path) -> None:
    series = _header(
        tmp_path, "Omnipaque 350", series_description="Lung 1.0 B70f", model_name="SOMATOM Force"
    ).series
    assert (series.description, series.model_name, series.contrast_agent) == (
        "Lung 1.0 B70f",
        "SOMATOM Force",
        "Omnipaque 350",
    )
