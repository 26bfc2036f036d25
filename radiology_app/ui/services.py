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

from radiology_app.core.findings import Findings, NoduleFinding
from radiology_app.core.progress import CancelToken, ProgressCallback
from radiology_app.core.types import ImportResult, Volume
from radiology_app.store.database import StudyDatabase

Facts = dict[str, dict[str, Any]]


def import_paths(paths: Sequence[Path], db: StudyDatabase, *, on_progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> ImportResult:
    """Import folders, ZIP files or DICOMDIRs into ``db`` (see ``radiology_app.importer``)."""
    from radiology_app.importer import import_paths as _import_paths

    result: ImportResult = _import_paths([Path(p) for p in paths], db, on_progress=on_progress, cancel=cancel)
    return result


def load_volume(db: StudyDatabase, study_uid: str, *, series_uid: str | None = None,
                on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Volume:
    """Read the study's chosen CT series (or ``series_uid``) as the pipeline does.

    The series-selection warnings come first in the volume's ``warnings``.
    """
    from radiology_app.importer import load_study_volume

    choice, volume = load_study_volume(db, study_uid, series_uid=series_uid, on_progress=on_progress,
                                       cancel=cancel)
    if choice.warnings:
        volume = dataclasses.replace(volume, warnings=(*choice.warnings, *volume.warnings))
    return volume


def extract_facts(text: str) -> Facts:
    """Facts of a note in the contract shape ``{name: {"value", "span", "text"}}``."""
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
            out[str(name)] = {"value": fact.get("value"), "span": list(span) if span else None,
                              "text": fact.get("text")}
        else:
            out[str(name)] = {"value": fact, "span": None, "text": None}
    return out


def analyze(db: StudyDatabase, study_uid: str, note_text: str | None, *,
            on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
            on_nodule: Callable[[NoduleFinding], None] | None = None) -> Findings:
    """Run the whole analysis of a study (``radiology_app.pipeline.analyze_study``) and store it."""
    from radiology_app import pipeline
    from radiology_app.core.config import load_settings

    findings: Findings = pipeline.analyze_study(db, study_uid, note_text=note_text, settings=load_settings(),
                                                on_progress=on_progress, cancel=cancel, on_nodule=on_nodule)
    return findings


def latest_findings(db: StudyDatabase, study_uid: str) -> Findings | None:
    """The findings of the study's most recent analysis run, or ``None``."""
    run = db.latest_analysis_run(study_uid)
    if run is None or not run.findings_json:
        return None
    return dataclasses.replace(Findings.from_json(run.findings_json), run_id=run.run_id)


def store_findings(db: StudyDatabase, findings: Findings) -> Findings:
    """Write the (edited) findings back to their analysis run (a new run when it has none)."""
    status = "signed" if findings.is_signed else "reviewed"
    if findings.run_id is None:
        run_id = db.save_analysis_run(findings.study_uid, findings.to_json_text(), status)
        findings = dataclasses.replace(findings, run_id=run_id)
        db.update_analysis_run(run_id, findings_json=findings.to_json_text())
        return findings
    db.update_analysis_run(findings.run_id, findings_json=findings.to_json_text(), status=status)
    return findings


def add_nodule_at(db: StudyDatabase, findings: Findings, volume: Volume, zyx: tuple[int, int, int], *,
                  on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Findings:
    """Segment and measure the nodule at voxel ``zyx`` (click-to-segment) and add it to ``findings``."""
    from radiology_app import pipeline
    from radiology_app.core.config import load_settings

    result: Findings = pipeline.add_nodule_at(findings, volume, zyx, settings=load_settings(),
                                              on_progress=on_progress, cancel=cancel)
    return result


def edit_composition(findings: Findings, nodule_id: str, composition: str) -> Findings:
    """Change a nodule's composition and re-assess its guideline categories."""
    try:
        from radiology_app import pipeline
    except ImportError:  # pipeline not installed: edit without re-assessment
        pipeline = None  # type: ignore[assignment]
    edit = getattr(pipeline, "edit_and_reassess", None)
    if edit is not None:
        result: Findings = edit(findings, nodule_id, composition=composition)
        return result
    from radiology_app.core.findings import edit_nodule

    return edit_nodule(findings, nodule_id, composition=composition)


def write_report(db: StudyDatabase, findings: Findings, out_pdf: Path, *,
                 on_progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
    """Write the PDF report of ``findings`` to ``out_pdf`` and return its path."""
    from radiology_app import pipeline

    path = pipeline.write_report(db, findings, Path(out_pdf), on_progress=on_progress, cancel=cancel)
    return Path(path) if path is not None else Path(out_pdf)


def export_dicom(db: StudyDatabase, findings: Findings, out_dir: Path, *,
                 on_progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> list[Path]:
    """Write DICOM SEG, SR and encapsulated PDF of ``findings`` into ``out_dir``; return the files."""
    from radiology_app import pipeline

    paths = pipeline.export_dicom(db, findings, Path(out_dir), on_progress=on_progress, cancel=cancel)
    return [Path(p) for p in (paths or [])]


def load_labels(findings: Findings) -> Any:
    """The instance label map ``[z, y, x]`` of ``findings`` (int16), or ``None`` when there is none."""
    import numpy as np

    if not findings.labels_path or not Path(findings.labels_path).exists():
        return None
    with np.load(findings.labels_path) as data:
        return data["labels"]


def nodule_saliency(findings: Findings, volume: Volume, nodule_id: str, *,
                    on_progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> tuple[Any, tuple[int, int, int]] | None:
    """The fused model's image saliency around one nodule: ``(map in [0, 1], origin voxel (z, y, x))``.

    Raises
    ------
    ModelError
        If the installed pipeline cannot compute saliency.
    """
    from radiology_app import pipeline
    from radiology_app.core.errors import ModelError

    fn = getattr(pipeline, "nodule_saliency", None)
    if fn is None:
        raise ModelError("this version of the pipeline does not compute saliency maps")
    result: tuple[Any, tuple[int, int, int]] | None = fn(findings, volume, nodule_id, on_progress=on_progress,
                                                         cancel=cancel)
    return result
