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


def test_iso_2022_ir_87_names_are_decoded_though_every_byte_is_7_bit(tmp_path: Path) -> None:
    """pydicom's real Japanese test file, and a CT slice named the same way, through the importer:
    ESC sequences switch to JIS X 0208 inside 7-bit bytes, so the ASCII fast path must not take them."""
    from radiology_app.importer import import_paths
    from radiology_app.store.database import StudyDatabase

    name = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    record = read_header(str(Path(pydicom.data.__file__).parent / "charset_files" / "chrH31.dcm"))
    assert isinstance(record, HeaderRecord) and record.patient.name == name
    hu = np.zeros((1, 8, 8), dtype=np.int16)
    path = write_ct_series(hu, (1, 1, 1), tmp_path / "ct", patient=PATIENT, study=STUDY, uid_seed="j")[0]
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = name
    ds.save_as(path)
    raw = path.read_bytes()
    assert b"\x1b$B" in raw and raw[raw.index(b"Yamada") :].split(b"\x00")[0].isascii()  # 7-bit only
    with StudyDatabase(tmp_path / "db.sqlite3") as db:
        import_paths([path], db)
        (study,) = db.list_studies()
        assert study.patient_name == name
