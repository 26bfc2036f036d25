"""Write a HU volume as a real CT Image Storage series (one file per slice).

Used for the bundled demo study, for tests and for benchmarks. The files are standard single-frame CT
images (Explicit VR Little Endian, signed 16-bit stored values with RescaleSlope 1 and RescaleIntercept
-1024) that any DICOM viewer, pydicom, GDCM or SimpleITK reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

from radiology_app.core.types import Patient, Study

#: Value subtracted from HU before storing (stored = HU - intercept).
RESCALE_INTERCEPT = -1024.0
_IMPLEMENTATION_UID = "1.2.826.0.1.3680043.8.498.1"


def _uid(seed: str | None, *parts: str) -> str:
    """A new UID; deterministic when ``seed`` is given (derived from the seed and ``parts``)."""
    if seed is None:
        return str(generate_uid())
    return str(generate_uid(entropy_srcs=[seed, *parts]))


def _format_ds(value: float) -> str:
    """Format a float as a DICOM Decimal String (at most 16 characters)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if len(text) > 16:
        text = f"{value:.8g}"
    return text


def _age_string(years: int | None) -> str:
    if years is None or years < 0 or years > 999:
        return ""
    return f"{years:03d}Y"


def write_ct_series(
    hu: npt.NDArray[np.generic],
    spacing_zyx_mm: Sequence[float],
    out_dir: Path,
    *,
    origin_lps_mm: Sequence[float] = (0.0, 0.0, 0.0),
    patient: Patient,
    study: Study,
    series_uid: str | None = None,
    series_description: str = "",
    slice_thickness_mm: float | None = None,
    convolution_kernel: str = "",
    manufacturer: str = "",
    model_name: str = "",
    series_number: int = 1,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    uid_seed: str | None = None,
    row_direction: Sequence[float] = (1.0, 0.0, 0.0),
    column_direction: Sequence[float] = (0.0, 1.0, 0.0),
    slice_positions_mm: Sequence[float] | None = None,
    file_prefix: str = "CT",
) -> list[Path]:
    """Write ``hu`` as one CT Image Storage file per slice.

    Parameters
    ----------
    hu
        Array ``[z, y, x]`` of Hounsfield units (integer or float; floats are rounded).
    spacing_zyx_mm
        Voxel spacing in mm: slice step, row spacing, column spacing.
    out_dir
        Folder to write into (created if missing).
    origin_lps_mm
        LPS position (mm) of the centre of voxel ``[0, 0, 0]``.
    patient, study
        Patient and study attributes written into every file.
    series_uid
        SeriesInstanceUID; a new one (deterministic with ``uid_seed``) when ``None``.
    series_description, convolution_kernel, manufacturer, model_name, series_number, image_type
        Written as the matching DICOM attributes.
    slice_thickness_mm
        SliceThickness; defaults to the slice step.
    uid_seed
        When given, SeriesInstanceUID, SOPInstanceUIDs and FrameOfReferenceUID are derived from it,
        so writing twice gives identical files.
    row_direction, column_direction
        ImageOrientationPatient: LPS unit vectors of the row (x) and column (y) directions.
    slice_positions_mm
        Offsets (mm) of each slice along the slice normal from ``origin_lps_mm``; default
        ``k * spacing_zyx_mm[0]``. Use it to write series with gaps or uneven spacing.
    file_prefix
        File names are ``{file_prefix}{k:05d}.dcm``.

    Returns
    -------
    list of Path
        The written files, in slice order.

    Raises
    ------
    ValueError
        If ``hu`` is not 3-D, values do not fit the stored 16-bit range, or arguments disagree.
    """
    arr = np.asarray(hu)
    if arr.ndim != 3:
        raise ValueError(f"hu must be a 3-D [z, y, x] array, got shape {arr.shape}")
    if len(spacing_zyx_mm) != 3 or min(float(s) for s in spacing_zyx_mm) <= 0:
        raise ValueError(f"spacing_zyx_mm must be three positive numbers, got {spacing_zyx_mm!r}")
    nz, ny, nx = arr.shape
    if slice_positions_mm is not None and len(slice_positions_mm) != nz:
        raise ValueError(f"slice_positions_mm has {len(slice_positions_mm)} values for {nz} slices")
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.rint(arr)
    stored_min = float(arr.min()) - RESCALE_INTERCEPT if arr.size else 0.0
    stored_max = float(arr.max()) - RESCALE_INTERCEPT if arr.size else 0.0
    if stored_min < -32768 or stored_max > 32767:
        raise ValueError(f"HU range {arr.min()}..{arr.max()} does not fit signed 16-bit storage")
    stored = (arr.astype(np.int32) - int(RESCALE_INTERCEPT)).astype("<i2")

    sz, sy, sx = (float(s) for s in spacing_zyx_mm)
    row = np.asarray(row_direction, dtype=float)
    col = np.asarray(column_direction, dtype=float)
    normal = np.cross(row, col)
    origin = np.asarray(origin_lps_mm, dtype=float)
    offsets = (
        [float(p) for p in slice_positions_mm]
        if slice_positions_mm is not None
        else [k * sz for k in range(nz)]
    )

    seed = uid_seed
    series_uid = series_uid or _uid(seed, "series", study.study_uid, str(series_number))
    frame_uid = _uid(seed, "frame", series_uid)
    thickness = sz if slice_thickness_mm is None else float(slice_thickness_mm)
    now = dt.datetime.now()
    study_date = study.study_date.strftime("%Y%m%d") if study.study_date else ""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    base = Dataset()
    base.SpecificCharacterSet = "ISO_IR 192"
    base.ImageType = list(image_type)
    base.SOPClassUID = CTImageStorage
    base.StudyDate = study_date
    base.SeriesDate = study_date
    base.ContentDate = study_date or now.strftime("%Y%m%d")
    base.StudyTime = study.study_time
    base.AccessionNumber = study.accession_number
    base.Modality = "CT"
    base.Manufacturer = manufacturer
    base.InstitutionName = study.institution
    base.ReferringPhysicianName = study.referring_physician
    base.StudyDescription = study.description
    base.SeriesDescription = series_description
    base.ManufacturerModelName = model_name
    base.PatientName = patient.name
    base.PatientID = patient.patient_id
    base.PatientBirthDate = patient.birth_date.strftime("%Y%m%d") if patient.birth_date else ""
    base.PatientSex = patient.sex or ""
    age = _age_string(study.patient_age_years)
    if age:
        base.PatientAge = age
    base.BodyPartExamined = "CHEST"
    base.SliceThickness = _format_ds(thickness)
    base.KVP = "120"
    if convolution_kernel:
        base.ConvolutionKernel = convolution_kernel
    base.PatientPosition = "HFS"
    base.StudyInstanceUID = study.study_uid
    base.SeriesInstanceUID = series_uid
    base.StudyID = "1"
    base.SeriesNumber = series_number
    base.AcquisitionNumber = 1
    base.ImageOrientationPatient = [_format_ds(v) for v in (*row, *col)]
    base.FrameOfReferenceUID = frame_uid
    base.PositionReferenceIndicator = ""
    base.SamplesPerPixel = 1
    base.PhotometricInterpretation = "MONOCHROME2"
    base.Rows = ny
    base.Columns = nx
    base.PixelSpacing = [_format_ds(sy), _format_ds(sx)]
    base.BitsAllocated = 16
    base.BitsStored = 16
    base.HighBit = 15
    base.PixelRepresentation = 1
    base.WindowCenter = "-600"
    base.WindowWidth = "1500"
    base.RescaleIntercept = _format_ds(RESCALE_INTERCEPT)
    base.RescaleSlope = "1"
    base.RescaleType = "HU"

    paths: list[Path] = []
    for k in range(nz):
        sop_uid = _uid(seed, "sop", series_uid, str(k)) if seed is not None else str(generate_uid())
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = UID(_IMPLEMENTATION_UID)
        ds = Dataset()
        ds.update(base)
        ds.file_meta = meta
        ds.preamble = b"\x00" * 128
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = k + 1
        pos = origin + normal * offsets[k]
        ds.ImagePositionPatient = [_format_ds(v) for v in pos]
        ds.SliceLocation = _format_ds(float(pos @ normal))
        ds.PixelData = stored[k].tobytes()
        ds["PixelData"].VR = "OW"
        path = out_dir / f"{file_prefix}{k + 1:05d}.dcm"
        ds.save_as(path, enforce_file_format=True, little_endian=True, implicit_vr=False)
        paths.append(path)
    return paths
