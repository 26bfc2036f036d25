"""Frozen domain types shared by every layer.

Coordinates are DICOM patient LPS in millimetres unless a name says otherwise. Arrays are indexed
``[z, y, x]`` (slice, row, column).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Patient:
    """A patient as identified by the DICOM headers."""

    patient_id: str
    name: str = ""
    sex: str | None = None  # "F", "M", "O" or None
    birth_date: dt.date | None = None


@dataclass(frozen=True)
class Study:
    """One imaging study (StudyInstanceUID)."""

    study_uid: str
    patient_id: str
    study_date: dt.date | None = None
    study_time: str = ""
    accession_number: str = ""
    description: str = ""
    referring_physician: str = ""
    institution: str = ""
    patient_age_years: int | None = None


@dataclass(frozen=True)
class Series:
    """One series of a study, as summarised from its instances' headers."""

    series_uid: str
    study_uid: str
    modality: str
    description: str = ""
    series_number: int | None = None
    image_type: tuple[str, ...] = ()
    convolution_kernel: str = ""
    slice_thickness_mm: float | None = None
    manufacturer: str = ""
    model_name: str = ""
    body_part: str = ""
    instance_count: int = 0
    contrast_agent: str = ""


@dataclass(frozen=True)
class Instance:
    """One DICOM file (or ZIP member) of a series, with the geometry needed to build a volume."""

    sop_instance_uid: str
    sop_class_uid: str
    series_uid: str
    path: str
    instance_number: int | None = None
    image_position_lps_mm: tuple[float, float, float] | None = None
    image_orientation: tuple[float, float, float, float, float, float] | None = None
    pixel_spacing_mm: tuple[float, float] | None = None  # (row spacing, column spacing)
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int = 1
    transfer_syntax_uid: str = ""
    content_hash: str = ""  # SHA-1 of the header fields that identify the content


@dataclass(frozen=True)
class ImportIssue:
    """A file that was not imported, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Volume:
    """A CT series as a 3-D array of Hounsfield units.

    Attributes
    ----------
    hu
        Array ``[z, y, x]`` in HU (int16 or float32). Slices are ordered along the slice normal.
    spacing_zyx_mm
        Voxel spacing in mm; z comes from the slice positions, not SliceThickness.
    origin_lps_mm
        LPS position of voxel ``[0, 0, 0]``.
    direction
        3x3 matrix whose columns are the LPS unit vectors of the x (column), y (row) and z (slice) axes.
    series_uid
        The series the volume was read from.
    warnings
        Recoverable problems met while reading (missing slices, uneven spacing, tilt...).
    """

    hu: npt.NDArray[np.generic]
    spacing_zyx_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float]
    direction: tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
    series_uid: str = ""
    warnings: tuple[str, ...] = ()
    slice_thickness_mm: float | None = None

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Shape of the array, ``(z, y, x)``."""
        z, y, x = self.hu.shape
        return int(z), int(y), int(x)

    def index_to_lps(self, zyx: tuple[float, float, float]) -> tuple[float, float, float]:
        """Map a (possibly fractional) voxel index ``(z, y, x)`` to LPS mm."""
        d = np.asarray(self.direction, dtype=float)
        sz, sy, sx = self.spacing_zyx_mm
        ijk = np.array([zyx[2] * sx, zyx[1] * sy, zyx[0] * sz])
        p = np.asarray(self.origin_lps_mm, dtype=float) + d @ ijk
        return float(p[0]), float(p[1]), float(p[2])

    def lps_to_index(self, lps: tuple[float, float, float]) -> tuple[float, float, float]:
        """Map an LPS point (mm) to a fractional voxel index ``(z, y, x)``."""
        d = np.asarray(self.direction, dtype=float)
        sz, sy, sx = self.spacing_zyx_mm
        rel = np.asarray(lps, dtype=float) - np.asarray(self.origin_lps_mm, dtype=float)
        ijk = np.linalg.solve(d, rel)
        return float(ijk[2] / sz), float(ijk[1] / sy), float(ijk[0] / sx)


class NoteLanguage(StrEnum):
    """Language of a clinical note."""

    EN = "en"
    ZH = "zh"


@dataclass(frozen=True)
class ClinicalNote:
    """A free-text clinical note attached to a study."""

    note_id: int
    study_uid: str
    text: str
    author: str = ""
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    source_path: str = ""


@dataclass(frozen=True)
class ImportResult:
    """What one import run did."""

    run_id: int
    studies: tuple[str, ...]
    instances_added: int
    instances_already_present: int
    issues: tuple[ImportIssue, ...]
    root_paths: tuple[Path, ...] = ()
