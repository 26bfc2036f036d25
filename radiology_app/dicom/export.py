"""DICOM outputs of an analysis: Segmentation, Comprehensive 3D SR (TID 1500) and Encapsulated PDF.

All three go into the study of the analysed CT series and reference it:

- **SEG** (highdicom): one binary segment per reported nodule (every nodule the clinician did not
  reject), on the frames of the source CT series; algorithm identification names the model and version.
- **SR** (highdicom, TID 1500 Measurement Report): per nodule a volumetric ROI group referencing its
  segment in the SEG, with long axis, short axis, mean diameter, volume, mean/min/max HU, the solid
  component, and qualitative evaluations (composition, Lung-RADS category, Brock probability, the top AI
  diagnosis). The observer is the signing clinician (when signed) and the software as a device.
- **Encapsulated PDF** (pydicom): the report PDF, with the source series in its Source Instance Sequence.

``deidentify=True`` passes every output (and the CT, with ``include_ct``) through one
:class:`~radiology_app.dicom.deidentify.Deidentifier`, so references between them stay consistent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from radiology_app import __version__
from radiology_app.core.errors import OperationCancelled, ReportError
from radiology_app.core.findings import Findings, NoduleFinding
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.core.types import Volume

ENCAPSULATED_PDF_SOP_CLASS = UID("1.2.840.10008.5.1.4.1.1.104.1")
SOFTWARE = "radiology-app"
PRIVATE_SCHEME = "99RADAPP"
_UID_ROOT = "1.2.826.0.1.3680043.10.1419."

#: SNOMED CT codes of lungs and lobes, by the lobe names the measurement step produces.
LOBE_CODES: dict[str, tuple[str, str]] = {
    "RUL": ("45653009", "Upper lobe of right lung"),
    "RML": ("72481006", "Middle lobe of right lung"),
    "RLL": ("90572001", "Lower lobe of right lung"),
    "LUL": ("44714003", "Upper lobe of left lung"),
    "LLL": ("41224006", "Lower lobe of left lung"),
    "right": ("3341006", "Right lung"),
    "left": ("44029006", "Left lung"),
}


@dataclass(frozen=True)
class ExportResult:
    """Paths written by :func:`export_dicom_objects`."""

    seg: Path | None
    sr: Path | None
    pdf: Path | None
    ct: tuple[Path, ...] = ()
    deidentified: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file written."""
        return tuple(p for p in (self.seg, self.sr, self.pdf) if p is not None) + self.ct


def _lobe_code(n: NoduleFinding) -> tuple[str, str]:
    lobe = (n.lobe or "").strip()
    up = lobe.upper()
    if up in LOBE_CODES:
        return LOBE_CODES[up]
    low = lobe.lower()
    side = (
        "right"
        if ("right" in low or up.startswith("R"))
        else "left"
        if ("left" in low or up.startswith("L"))
        else (n.side or "")
    )
    for key, words in (("U", ("upper", "lingula")), ("M", ("middle",)), ("L", ("lower",))):
        if any(w in low for w in words) and side in ("right", "left"):
            code = f"{side[0].upper()}{key}L"
            if code in LOBE_CODES:
                return LOBE_CODES[code]
    if side in ("right", "left"):
        return LOBE_CODES[side]
    return ("39607008", "Lung")


def dicom_person_name(display: str) -> str:
    """Turn a display name (``"Dr. Li Ming"``, ``"Chen, Anna"``) into DICOM PN ``Family^Given^^Prefix``."""
    text = " ".join(display.replace("^", " ").split())
    if not text:
        return "Reviewer^"
    prefix = ""
    for title in ("Dr.", "Dr", "Prof.", "Prof"):
        if text.startswith(title + " "):
            prefix, text = title, text[len(title) + 1 :]
            break
    if "," in text:
        family, given = (x.strip() for x in text.split(",", 1))
    else:
        parts = text.split(" ")
        family, given = parts[-1], " ".join(parts[:-1])
    return f"{family}^{given}^^{prefix}".rstrip("^") if given or prefix else f"{family}^"


def _uid(seed: str | None, *parts: str) -> UID:
    if seed is None:
        return generate_uid()
    return generate_uid(prefix=_UID_ROOT, entropy_srcs=[seed, *parts])


def sort_source_datasets(datasets: Sequence[Dataset], volume: Volume | None = None) -> list[Dataset]:
    """Order single-frame CT datasets like the volume's z axis (by position along the slice normal).

    Raises
    ------
    ReportError
        If a dataset lacks ImagePositionPatient/ImageOrientationPatient, or the count differs from the
        volume's number of slices.
    """
    try:
        iop = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    except (AttributeError, IndexError) as exc:
        raise ReportError("source CT series has no ImageOrientationPatient") from exc
    normal = np.cross(iop[:3], iop[3:])
    if volume is not None:
        normal = np.asarray(volume.direction, dtype=float)[:, 2]
    try:
        keyed = sorted(
            datasets, key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, dtype=float), normal))
        )
    except AttributeError as exc:
        raise ReportError("a source CT image has no ImagePositionPatient") from exc
    if volume is not None and len(keyed) != volume.shape_zyx[0]:
        raise ReportError(
            f"source series has {len(keyed)} images but the analysed volume {volume.shape_zyx[0]} slices"
        )
    return keyed


def build_segmentation(
    findings: Findings,
    sources: Sequence[Dataset],
    labels: npt.NDArray[np.generic],
    *,
    uid_seed: str | None = None,
) -> Dataset:
    """Build the SEG of the reported nodules on the (sorted) source CT datasets.

    Raises
    ------
    ReportError
        If no nodule has a mask, or the label map does not match the source images.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    nodules = [n for n in findings.reported_nodules if n.label_id > 0]
    if not nodules:
        raise ReportError(f"study {findings.study_uid}: no reported nodule has a mask for the DICOM SEG")
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    if labels.shape != (len(sources), rows, cols):
        raise ReportError(
            f"label map shape {labels.shape} does not match the source series "
            f"({len(sources)}, {rows}, {cols})"
        )
    seg_map = np.zeros(labels.shape, dtype=np.uint8)
    descriptions = []
    model = findings.models[0] if findings.models else None
    for k, n in enumerate(nodules, 1):
        seg_map[labels == n.label_id] = k
        manual = n.source == "clinician"
        algo = (
            None
            if manual
            else hd.AlgorithmIdentificationSequence(
                name=model.name if model else SOFTWARE,
                version=(model.version or "unknown") if model else __version__,
                family=codes.cid7162.ArtificialIntelligence,
            )
        )
        code, meaning = _lobe_code(n)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=k,
                segment_label=n.id,
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Nodule,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
                if manual
                else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=None if manual else algo,
                tracking_uid=_uid(uid_seed, "track", findings.series_uid, n.id),
                tracking_id=n.id,
                anatomic_regions=[hd.sr.CodedConcept(code, "SCT", meaning)],
            )
        )
    try:
        seg = hd.seg.Segmentation(
            source_images=list(sources),
            pixel_array=seg_map,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=_uid(uid_seed, "seg-series", findings.series_uid),
            series_number=9001,
            sop_instance_uid=_uid(uid_seed, "seg", findings.series_uid),
            instance_number=1,
            manufacturer=SOFTWARE,
            manufacturer_model_name=SOFTWARE,
            software_versions=__version__,
            device_serial_number="0",
            series_description="AI lung nodules (reviewed)",
            content_description="Pulmonary nodules",
            content_label="NODULES",
            omit_empty_frames=True,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ReportError(f"study {findings.study_uid}: cannot build the DICOM SEG ({exc})") from exc
    return seg


def _num(name: object, value: float | None, unit: object, derivation: object | None = None) -> object | None:
    import highdicom as hd

    if value is None:
        return None
    return hd.sr.Measurement(name=name, value=float(value), unit=unit, derivation=derivation)  # type: ignore[arg-type]


def build_sr(
    findings: Findings, sources: Sequence[Dataset], seg: Dataset, *, uid_seed: str | None = None
) -> Dataset:
    """Build the Comprehensive 3D SR (TID 1500) with each reported nodule's measurements.

    Raises
    ------
    ReportError
        If highdicom refuses the content.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sct = hd.sr.CodedConcept

    def private(value: str, meaning: str) -> hd.sr.CodedConcept:
        return sct(value, PRIVATE_SCHEME, meaning)

    observer_device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_uid(uid_seed, "device"), name=SOFTWARE, manufacturer_name=SOFTWARE, model_name=__version__
        ),
    )
    observer_person = None
    if findings.reviewer:
        observer_person = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=dicom_person_name(findings.reviewer)
            ),
        )
    context = hd.sr.ObservationContext(
        observer_person_context=observer_person, observer_device_context=observer_device
    )
    seg_numbers = {d.SegmentLabel: int(d.SegmentNumber) for d in seg.SegmentSequence}
    groups = []
    mm, mm3, hu = codes.UCUM.Millimeter, codes.UCUM.CubicMillimeter, codes.UCUM.HounsfieldUnit
    attenuation = sct("112031", "DCM", "Attenuation Coefficient")
    for n in findings.reported_nodules:
        if n.id not in seg_numbers:
            continue
        measurements = [
            m
            for m in (
                _num(codes.SCT.LongAxis, n.long_axis_mm, mm),
                _num(codes.SCT.ShortAxis, n.short_axis_mm, mm),
                _num(codes.SCT.Diameter, n.mean_diameter_mm, mm, codes.SCT.Mean),
                _num(codes.SCT.Volume, n.volume_mm3, mm3),
                _num(attenuation, n.mean_hu, hu, codes.SCT.Mean),
                _num(attenuation, n.min_hu, hu, codes.SCT.Minimum),
                _num(attenuation, n.max_hu, hu, codes.SCT.Maximum),
                _num(private("SOLIDDIAM", "Solid component diameter"), n.solid_component_mm, mm)
                if n.composition == "part_solid"
                else None,
                _num(
                    private("BROCK", "Brock malignancy probability"),
                    None if n.brock_probability is None else 100.0 * n.brock_probability,
                    codes.UCUM.Percent,
                ),
                _num(
                    private("AIMALIG", "AI malignancy probability"),
                    None if n.malignancy_probability is None else 100.0 * n.malignancy_probability,
                    codes.UCUM.Percent,
                ),
            )
            if m is not None
        ]
        qualitative = []
        if n.composition:
            qualitative.append(
                hd.sr.QualitativeEvaluation(
                    name=private("COMPOSITION", "Nodule composition"),
                    value=private(n.composition.upper(), n.composition.replace("_", "-")),
                )
            )
        if n.lung_rads.category:
            qualitative.append(
                hd.sr.QualitativeEvaluation(
                    name=private("LUNGRADS", "Lung-RADS v2022 category"),
                    value=private(f"LR{n.lung_rads.category}", f"Lung-RADS {n.lung_rads.category}"),
                )
            )
        if n.top_diagnosis is not None:
            dx = n.top_diagnosis[0]
            qualitative.append(
                hd.sr.QualitativeEvaluation(
                    name=private("AIDX", "Most likely diagnosis (AI suggestion)"),
                    value=private(dx.upper()[:16], dx.replace("_", " ")),
                )
            )
        code, meaning = _lobe_code(n)
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=_uid(uid_seed, "track", findings.series_uid, n.id), identifier=n.id
                ),
                referenced_segment=hd.sr.ReferencedSegment(
                    sop_class_uid=seg.SOPClassUID,
                    sop_instance_uid=seg.SOPInstanceUID,
                    segment_number=seg_numbers[n.id],
                    source_series=hd.sr.SourceSeriesForSegmentation(findings.series_uid),
                ),
                finding_type=codes.SCT.Nodule,
                finding_sites=[hd.sr.FindingSite(anatomic_location=sct(code, "SCT", meaning))],
                measurements=measurements,  # type: ignore[arg-type]
                qualitative_evaluations=qualitative or None,
                algorithm_id=None
                if n.source == "clinician"
                else hd.sr.AlgorithmIdentification(
                    name=findings.models[0].name if findings.models else SOFTWARE,
                    version=(findings.models[0].version or "unknown") if findings.models else __version__,
                ),
            )
        )
    report_content = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=sct("24627-2", "LN", "CT Chest"),
        imaging_measurements=groups or None,
        title=codes.cid7021.ImagingMeasurementReport,
    )
    try:
        sr = hd.sr.Comprehensive3DSR(
            evidence=[*sources, seg],
            content=report_content,
            series_instance_uid=_uid(uid_seed, "sr-series", findings.series_uid),
            series_number=9002,
            sop_instance_uid=_uid(uid_seed, "sr", findings.series_uid),
            instance_number=1,
            manufacturer=SOFTWARE,
            series_description="AI lung nodule measurements (reviewed)",
            is_complete=True,
            is_final=findings.is_signed,
            is_verified=findings.is_signed,
            institution_name=None,
            verifying_observer_name=dicom_person_name(findings.reviewer or "")
            if findings.is_signed
            else None,
            verifying_organization=SOFTWARE if findings.is_signed else None,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ReportError(f"study {findings.study_uid}: cannot build the DICOM SR ({exc})") from exc
    return sr


def build_encapsulated_pdf(
    pdf_bytes: bytes,
    sources: Sequence[Dataset],
    *,
    title: str = "CT chest nodule report",
    series_uid: str | None = None,
    uid_seed: str | None = None,
    when: dt.datetime | None = None,
) -> Dataset:
    """Wrap ``pdf_bytes`` as an Encapsulated PDF instance in the study of ``sources``.

    Raises
    ------
    ReportError
        If the bytes are not a PDF.
    """
    if not pdf_bytes.startswith(b"%PDF"):
        raise ReportError("the report to encapsulate is not a PDF")
    ref = sources[0]
    when = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    sop_uid = _uid(uid_seed, "pdf", str(ref.SeriesInstanceUID))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = ENCAPSULATED_PDF_SOP_CLASS
    ds.SOPInstanceUID = sop_uid
    for kw in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    ):
        setattr(ds, kw, getattr(ref, kw, ""))
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = series_uid or _uid(uid_seed, "pdf-series", str(ref.SeriesInstanceUID))
    ds.SeriesNumber = 9003
    ds.SeriesDescription = "AI lung nodule report (PDF)"
    ds.Manufacturer = SOFTWARE
    ds.SoftwareVersions = __version__
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    ds.ContentDate = when.strftime("%Y%m%d")
    ds.ContentTime = when.strftime("%H%M%S")
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = title
    concept = Dataset()
    concept.CodeValue = "18748-4"
    concept.CodingSchemeDesignator = "LN"
    concept.CodeMeaning = "Diagnostic imaging report"
    ds.ConceptNameCodeSequence = [concept]
    source_items = []
    for src in sources:
        item = Dataset()
        item.ReferencedSOPClassUID = src.SOPClassUID
        item.ReferencedSOPInstanceUID = src.SOPInstanceUID
        source_items.append(item)
    ds.SourceInstanceSequence = source_items
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    data = pdf_bytes + (b"\x00" if len(pdf_bytes) % 2 else b"")
    ds.EncapsulatedDocument = data
    ds.EncapsulatedDocumentLength = len(pdf_bytes)
    return ds


def export_dicom_objects(
    findings: Findings,
    source_paths: Sequence[Path],
    labels: npt.NDArray[np.generic] | None,
    out_dir: Path,
    *,
    pdf_bytes: bytes | None = None,
    volume: Volume | None = None,
    deidentify: bool = False,
    include_ct: bool = False,
    uid_seed: str | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Write SEG, SR and Encapsulated PDF (and optionally the CT) of ``findings`` into ``out_dir``.

    Parameters
    ----------
    findings
        The reviewed findings (rejected nodules are left out).
    source_paths
        Files of the analysed CT series.
    labels
        Instance label map ``[z, y, x]`` of the series (``None``: no SEG and SR, with a warning).
    out_dir
        Output folder (created).
    pdf_bytes
        The report PDF to encapsulate (``None``: no encapsulated PDF).
    volume
        The analysed volume, to order the source images like the label map.
    deidentify
        Apply the basic confidentiality profile (see :mod:`radiology_app.dicom.deidentify`). The PDF's
        content is not changed here: pass a PDF rendered without identity, dates or note text.
    include_ct
        Also write the CT series (de-identified consistently with the other objects when asked).
    uid_seed
        Make the new UIDs deterministic (tests, demo).
    on_progress, cancel
        Progress in objects written; cooperative cancel.

    Raises
    ------
    ReportError
        If the sources cannot be read or an object cannot be built or written.
    OperationCancelled
        If ``cancel`` is set.
    """
    if not source_paths:
        raise ReportError(f"study {findings.study_uid}: no source CT files to reference")
    total = 4 + (len(source_paths) if include_ct else 0)
    try:
        datasets = [pydicom.dcmread(str(p), stop_before_pixels=not include_ct) for p in source_paths]
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise ReportError(f"cannot read the source CT series for export ({exc})") from exc
    sources = sort_source_datasets(datasets, volume)
    report(on_progress, 1, total, "objects", "source series read")
    warnings: list[str] = []
    outputs: list[tuple[str, Dataset]] = []
    seg = sr = None
    if labels is not None and any(n.label_id > 0 for n in findings.reported_nodules):
        check_cancel(cancel)
        seg = build_segmentation(findings, sources, np.asarray(labels), uid_seed=uid_seed)
        outputs.append(("SEG", seg))
        report(on_progress, 2, total, "objects", "segmentation built")
        check_cancel(cancel)
        sr = build_sr(findings, sources, seg, uid_seed=uid_seed)
        outputs.append(("SR", sr))
        report(on_progress, 3, total, "objects", "structured report built")
    else:
        warnings.append("no nodule mask to export: DICOM SEG and SR were not written")
    if pdf_bytes is not None:
        outputs.append(("PDF", build_encapsulated_pdf(pdf_bytes, sources, uid_seed=uid_seed)))
    else:
        warnings.append("no PDF report given: the encapsulated PDF was not written")
    if include_ct:
        outputs += [("CT", ds) for ds in sources]
    if deidentify:
        from radiology_app.dicom.deidentify import Deidentifier

        deid = Deidentifier(seed=uid_seed)
        cleaned: list[tuple[str, Dataset]] = []
        for kind, ds in outputs:
            check_cancel(cancel)
            clean = deid.apply(ds)
            if kind == "PDF":
                clean.BurnedInAnnotation = "NO"  # the caller renders the de-identified PDF without identity
            cleaned.append((kind, clean))
        outputs = cleaned
    out_dir = Path(out_dir)
    written: dict[str, list[Path]] = {"SEG": [], "SR": [], "PDF": [], "CT": []}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for i, (kind, ds) in enumerate(outputs):
            check_cancel(cancel)
            name = f"CT_{len(written['CT']) + 1:04d}.dcm" if kind == "CT" else f"{kind}.dcm"
            path = out_dir / name
            ds.save_as(str(path), enforce_file_format=True)
            written[kind].append(path)
            report(on_progress, min(total, 3 + i), total, "objects", f"{kind} written")
    except OperationCancelled:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise ReportError(f"{out_dir}: cannot write DICOM outputs ({exc})") from exc
    report(on_progress, total, total, "objects", "export done")
    return ExportResult(
        seg=written["SEG"][0] if written["SEG"] else None,
        sr=written["SR"][0] if written["SR"] else None,
        pdf=written["PDF"][0] if written["PDF"] else None,
        ct=tuple(written["CT"]),
        deidentified=deidentify,
        warnings=tuple(warnings),
    )
