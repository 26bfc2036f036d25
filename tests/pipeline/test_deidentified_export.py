"""`export --deidentify`: no identifier planted in the study, the settings or the note leaves in any output.

Every output is read back the way a recipient would: each DICOM string element (nested sequences
included) of the SEG, SR, encapsulated PDF and CT, and the encapsulated PDF's text (pdftotext) and
metadata (pdfinfo).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pipeline_case import WholeNoteRegistry, write_study
from pydicom.dataset import Dataset

from radiology_app.cli import main
from radiology_app.core.config import AppPaths, Settings, save_settings
from segmentation.phantom.chest import ChestPhantom

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")

#: What the study headers carry (beyond the patient and study of ``write_study``).
PLANTED_HEADER = {
    "PatientName": "Vonnegut^Hildegard^Ottilie",
    "PatientID": "MRN-4471923",
    "PatientBirthDate": "19580102",
    "OtherPatientIDs": "NHS-9434765919",
    "PatientAddress": "17 Larkspur Crescent, Dunmore",
    "AccessionNumber": "ACC-5583021",
    "InstitutionName": "Saint Brigid Infirmary",
    "InstitutionAddress": "4 Quayside Row, Port Ellery",
    "StationName": "BRIGIDCT07",
    "ReferringPhysicianName": "Okonkwo^Chidubem",
    "OperatorsName": "Fairweather^Juniper",
    "StudyDescription": "CT THORAX Vonnegut follow-up",
    "StudyID": "SID-77120",
    "StudyDate": "20260601",
}
INSTITUTION = ("Kestrel Valley Medical Centre", "88 Heronsgate Lane, Ambleford")
REVIEWER = "Dr. Perpetua Quillfeather"
NOTE = (
    "Call 555-867-5309 re Hildegard Vonnegut MRN-4471923 lives 17 Larkspur Crescent email "
    "h.vonnegut@example.org GP Dr Thaddeus Brambleworth 68 yo woman ex-smoker 35 pack-years cough "
    "3 weeks"
)
IDENTIFIERS = (
    "Vonnegut",
    "Hildegard",
    "Ottilie",
    "4471923",
    "19580102",
    "1958-01-02",
    "9434765919",
    "Larkspur",
    "Dunmore",
    "5583021",
    "Brigid",
    "Quayside",
    "Ellery",
    "BRIGIDCT07",
    "Okonkwo",
    "Chidubem",
    "Fairweather",
    "Juniper",
    "SID-77120",
    "20260601",
    "2026-06-01",
    "Kestrel",
    "Heronsgate",
    "Ambleford",
    "Quillfeather",
    "Perpetua",
    "867-5309",
    "8675309",
    "example.org",
    "Brambleworth",
    "Thaddeus",
)


def _plant(files: list[Path]) -> None:
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword, value in PLANTED_HEADER.items():
            setattr(ds, keyword, value)
        ds.save_as(path)


def _strings(ds: Dataset) -> Iterator[str]:
    """Every textual value in ``ds``, nested sequences included (UIDs, pixel and document bytes left out:
    a UID's digits cannot name anyone, and the random ones dicognito draws may contain any digits)."""
    for elem in ds.iterall():
        if elem.VR in ("SQ", "UI", "OB", "OW", "OF", "OD", "OL", "OV", "UN") or elem.value is None:
            continue
        values = elem.value if elem.VM > 1 else [elem.value]
        yield from (str(v) for v in values)


def _pdf_text(ds: Dataset, tmp_path: Path) -> str:
    pdf = tmp_path / "encapsulated.pdf"
    pdf.write_bytes(bytes(ds.EncapsulatedDocument)[: int(ds.EncapsulatedDocumentLength)])
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return text + "\n" + info


@pytest.fixture()
def planted_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phantom: ChestPhantom) -> Iterator[Path]:
    from pipeline_case import fake_segment_nodules

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(home))
    monkeypatch.setattr("segmentation.inference.segment_nodules", fake_segment_nodules(phantom))
    monkeypatch.setattr("radiology_app.pipeline.MODELS", WholeNoteRegistry())
    save_settings(
        Settings().replace(institution_name=INSTITUTION[0], institution_address=INSTITUTION[1]),
        AppPaths(home),
    )
    files = write_study(phantom, tmp_path / "ct")
    _plant(files)
    yield tmp_path / "ct"


def test_nothing_identifying_leaves_a_deidentified_export(
    planted_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.txt"
    note.write_text(NOTE, encoding="utf-8")
    report = tmp_path / "identified.pdf"
    args = ["analyze", str(planted_home), "--note", str(note), "--report", str(report)]
    assert main([*args, "--reviewer", REVIEWER, "--sign", "--json", str(tmp_path / "f.json")]) == 0
    ident = subprocess.run(["pdftotext", str(report), "-"], capture_output=True, text=True, check=True).stdout
    assert "867-5309" in ident and "Kestrel" in ident  # planted where the identified report shows them
    out = tmp_path / "deid"
    capsys.readouterr()
    assert main(["export", str(planted_home), "--dicom", str(out), "--deidentify", "--include-ct"]) == 0
    outputs = sorted(out.glob("*.dcm"))
    assert {p.name for p in outputs} >= {"SEG.dcm", "SR.dcm", "PDF.dcm", "CT_0001.dcm"}
    texts: list[str] = []
    for path in outputs:
        ds = pydicom.dcmread(path)
        texts += [f"{path.name}: {s}" for s in _strings(ds)]
        if path.name == "PDF.dcm":
            pdf_text = _pdf_text(ds, tmp_path)
            texts.append(f"PDF text: {pdf_text}")
    everything = "\n".join(texts).lower()
    leaks = [i for i in IDENTIFIERS if i.lower() in everything]
    assert not leaks, [line for line in texts if any(i.lower() in line.lower() for i in leaks)][:10]
    assert "Nodule" in pdf_text and "Lung-RADS" in pdf_text  # the report is still there
    assert "note is left out of this de-identified copy" in " ".join(pdf_text.split())
    today = dt.datetime.now(dt.UTC)
    assert today.strftime("%Y") not in pdf_text.split("CreationDate:")[1].splitlines()[0]
    assert "radiology-app" in pdf_text.split("Author:")[1].splitlines()[0]
