"""The Qt-free calls the GUI makes into the layers below, in one place.

Every function here is plain Python (no Qt) and is what the GUI's workers run; the lower layers are
imported lazily so the window opens without loading torch. Slow functions take ``on_progress`` and
``cancel`` like the rest of the application.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from radiology_app.core.findings import Findings, FindingsError, NoduleFinding
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.core.types import ImportResult, Volume
from radiology_app.reporting.text import margin_score
from radiology_app.store.database import StudyDatabase

Facts = dict[str, dict[str, Any]]


def import_paths(
    paths: Sequence[Path],
    db: StudyDatabase,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImportResult:
    """Import folders, ZIP files or DICOMDIRs into ``db`` (see ``radiology_app.importer``)."""
    from radiology_app.importer import import_paths as _import_paths

    result: ImportResult = _import_paths([Path(p) for p in paths], db, on_progress=on_progress, cancel=cancel)
    return result


def prepare_demo_study(
    db: StudyDatabase,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> str:
    """Write, import and annotate the demo study once (see ``radiology_app.demo``); its StudyInstanceUID."""
    from radiology_app.demo import ensure_demo_study

    return ensure_demo_study(db, on_progress=on_progress, cancel=cancel)


def load_volume(
    db: StudyDatabase,
    study_uid: str,
    *,
    series_uid: str | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Volume:
    """Read the study's chosen CT series (or ``series_uid``) as the pipeline does.

    The series-selection warnings come first in the volume's ``warnings``.
    """
    from radiology_app.importer import load_study_volume

    choice, volume = load_study_volume(
        db, study_uid, series_uid=series_uid, on_progress=on_progress, cancel=cancel
    )
    if choice.warnings and series_uid is None:  # selection warnings only when the series was chosen here
        volume = dataclasses.replace(volume, warnings=(*choice.warnings, *volume.warnings))
    return volume


def extract_facts(text: str) -> Facts:
    """Facts of a note in the contract shape: ``{name: {value, span, text}}`` plus each fact's context."""
    from radiology_app.notes.facts import extract_facts as _extract

    return facts_mapping(_extract(text))


def facts_mapping(obj: Any) -> Facts:
    """Normalise an extraction result (mapping, dataclass or object with ``facts``) to the contract shape."""
    if hasattr(obj, "to_json") and callable(obj.to_json):
        obj = obj.to_json()
    if not isinstance(obj, Mapping) and hasattr(obj, "facts"):
        obj = obj.facts
    if isinstance(obj, Mapping) and "facts" in obj and isinstance(obj["facts"], Mapping):
        obj = obj["facts"]
    out: Facts = {}
    if not isinstance(obj, Mapping):
        return out
    for name, fact in obj.items():
        if dataclasses.is_dataclass(fact) and not isinstance(fact, type):
            fact = dataclasses.asdict(fact)
        if isinstance(fact, Mapping):
            span = fact.get("span")
            out[str(name)] = {
                "value": fact.get("value"),
                "span": list(span) if span else None,
                "text": fact.get("text"),
                **{key: fact.get(key) for key in ("experiencer", "certainty", "temporality")},
            }
        else:
            out[str(name)] = {"value": fact, "span": None, "text": None}
    return out


def analyze(
    db: StudyDatabase,
    study_uid: str,
    note_text: str | None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_nodule: Callable[[NoduleFinding], None] | None = None,
) -> Findings:
    """Run the whole analysis of a study (``radiology_app.pipeline.analyze_study``) and store it."""
    from radiology_app import pipeline
    from radiology_app.core.config import load_settings

    findings: Findings = pipeline.analyze_study(
        db,
        study_uid,
        note_text=note_text,
        settings=load_settings(),
        on_progress=on_progress,
        cancel=cancel,
        on_nodule=on_nodule,
    )
    return findings


def latest_findings(db: StudyDatabase, study_uid: str) -> Findings | None:
    """The findings of the study's most recent completed analysis run, or ``None``."""
    from radiology_app import pipeline

    return pipeline.latest_findings(db, study_uid)


def store_findings(db: StudyDatabase, findings: Findings) -> Findings:
    """Write the (edited) findings back to their analysis run (a new run when they have none)."""
    from radiology_app import pipeline

    return pipeline.store_findings(db, findings)


def review(findings: Findings, nodule_id: str, action: str, **changes: Any) -> Findings:
    """Apply a review action (``accept``, ``reject``, ``edit`` with field changes, ``remove``) and
    re-assess the guideline categories (exam level included)."""
    from radiology_app import pipeline

    return pipeline.review_nodule(findings, nodule_id, action, **changes)


def add_nodule_at(
    db: StudyDatabase,
    findings: Findings,
    volume: Volume,
    zyx: tuple[int, int, int],
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Findings:
    """Segment and measure the nodule at voxel ``zyx`` (click-to-segment) and add it to ``findings``."""
    from radiology_app import pipeline
    from radiology_app.core.config import load_settings

    check_cancel(cancel)
    report(on_progress, 0, 1, "nodules", "segmenting the clicked nodule")
    result = pipeline.add_nodule_at(findings, volume, zyx, settings=load_settings())
    report(on_progress, 1, 1, "nodules", "nodule added")
    return result


def edit_composition(findings: Findings, nodule_id: str, composition: str) -> Findings:
    """Change a nodule's composition and re-assess its guideline categories."""
    return review(findings, nodule_id, "edit", composition=composition)


def edit_signs(
    findings: Findings, nodule_id: str, *, margin: str | None, calcification: str | None, fat: bool
) -> Findings:
    """Set a nodule's margin (``None``: as measured), calcification pattern (``None``: none) and
    macroscopic fat, then re-assess it. A spiculated margin makes Lung-RADS 4X from category 3 up, and a
    primary lung cancer or an inflammatory lesion leads the differential; a benign calcification or fat
    makes Lung-RADS 1, and a benign class leads.

    Raises
    ------
    FindingsError
        If the nodule does not exist or a sign is invalid.
    """
    current = findings.nodule(nodule_id).spiculation_score
    try:
        score = current if margin is None else margin_score(margin, current)
    except ValueError as exc:
        raise FindingsError(f"nodule {nodule_id}: {exc}") from exc
    return review(findings, nodule_id, "edit", spiculation_score=score, calcification=calcification, fat=fat)


def write_report(
    db: StudyDatabase,
    findings: Findings,
    out_pdf: Path,
    *,
    volume: Volume | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Findings:
    """Write the PDF report of ``findings`` to ``out_pdf``; return the findings with ``report`` set
    (stored in their analysis run)."""
    from radiology_app import pipeline

    check_cancel(cancel)
    report(on_progress, 0, 1, "reports", "writing the PDF report")
    result = pipeline.write_report(findings, db, Path(out_pdf), volume=volume)
    report(on_progress, 1, 1, "reports", "report written")
    return result


def export_dicom(
    db: StudyDatabase,
    findings: Findings,
    out_dir: Path,
    *,
    volume: Volume | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Write DICOM SEG, SR and encapsulated PDF of ``findings`` into ``out_dir``; return the files."""
    from radiology_app import pipeline

    result = pipeline.export_dicom(
        findings, db, Path(out_dir), volume=volume, on_progress=on_progress, cancel=cancel
    )
    return [Path(p) for p in result.paths]


def load_labels(findings: Findings) -> Any:
    """The instance label map ``[z, y, x]`` of ``findings`` (int16), or ``None`` when there is none."""
    from radiology_app import pipeline

    return pipeline.load_labels(findings)


def nodule_saliency(
    findings: Findings,
    volume: Volume,
    nodule_id: str,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[Any, tuple[int, int, int]]:
    """The fused model's image saliency around one nodule, on the volume's voxel grid.

    The nodule's crop is run through the diagnosis model again with saliency on (PyTorch backend); the
    crop-grid map (40 mm cube, 1.25 mm voxels) is resampled onto the volume's voxels.

    Returns
    -------
    tuple
        ``(saliency, origin_zyx)``: float32 map in [0, 1] covering the crop, and the voxel index of its
        first element in the volume.

    Raises
    ------
    ModelError
        If the nodule has no mask, or the backend gives no saliency (ONNX Runtime).
    """
    import numpy as np
    from scipy import ndimage

    from radiology_app import pipeline
    from radiology_app.core.config import load_settings
    from radiology_app.core.errors import ModelError
    from radiology_app.diagnosis import api
    from radiology_app.diagnosis.crops import CROP_SHAPE, CROP_SPACING_MM

    nodule = findings.nodule(nodule_id)
    labels = pipeline.load_labels(findings)
    if labels is None or nodule.centroid_zyx is None or not nodule.label_id:
        raise ModelError(f"nodule {nodule_id} has no segmentation mask, so no saliency can be computed")
    check_cancel(cancel)
    report(on_progress, 0, 2, "steps", "computing image saliency")
    mask = (labels == nodule.label_id).astype(np.uint8)
    crop_hu, crop_mask, crop_spacing = api.extract_crop(
        volume.hu, volume.spacing_zyx_mm, mask, nodule.centroid_zyx
    )
    model = pipeline.MODELS.diagnosis(load_settings())
    inp = api.DiagnosisInput(
        crop_hu=crop_hu,
        crop_mask=crop_mask,
        spacing_zyx_mm=crop_spacing,
        note_text=findings.note_text or "",
        slice_thickness_mm=volume.slice_thickness_mm,
    )
    result = model.predict([inp])[0]
    if result.saliency is None:
        raise ModelError("the ONNX Runtime backend computes no saliency; choose PyTorch in Settings")
    check_cancel(cancel)
    sal = np.asarray(result.saliency, dtype=np.float32)
    lo: list[int] = []
    axes = []
    for axis in range(3):
        half_vox = (CROP_SHAPE[axis] - 1) / 2.0 * CROP_SPACING_MM / volume.spacing_zyx_mm[axis]
        c = nodule.centroid_zyx[axis]
        first = max(0, int(np.floor(c - half_vox)))
        last = min(volume.shape_zyx[axis] - 1, int(np.ceil(c + half_vox)))
        lo.append(first)
        idx = np.arange(first, last + 1, dtype=np.float64)
        axes.append((idx - c) * volume.spacing_zyx_mm[axis] / CROP_SPACING_MM + (CROP_SHAPE[axis] - 1) / 2.0)
    grid = np.meshgrid(*axes, indexing="ij")
    out = ndimage.map_coordinates(sal, grid, order=1, mode="constant", cval=0.0).astype(np.float32)
    peak = float(out.max())
    if peak > 0:
        out /= peak
    report(on_progress, 2, 2, "steps", "saliency ready")
    return out, (lo[0], lo[1], lo[2])


def run_batch(
    paths: Sequence[Path],
    db: StudyDatabase,
    *,
    analyze: bool,
    report_dir: Path | None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_item: Callable[[Any], None] | None = None,
) -> Any:
    """Import (and optionally analyse and report) every study under ``paths`` with ``radiology_app.batch``.

    ``on_item`` receives each study's status as it changes (``study_uid``/``item_key``, ``status``,
    ``reason``, ``report``). Resumable: studies finished in an earlier run are skipped.
    """
    from radiology_app import batch

    return batch.run_batch(
        [Path(p) for p in paths],
        db,
        analyze=analyze,
        report_dir=report_dir,
        on_progress=on_progress,
        cancel=cancel,
        on_item=on_item,
    )
