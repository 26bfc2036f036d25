"""Subcommands ``import``, ``studies``, ``show`` and ``note`` (see the shared CLI contract)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from radiology_app.cli._common import add_command, emit, terminal_progress
from radiology_app.core.errors import ImportFailedError, SeriesSelectionError, VolumeError


def register(sub: Any) -> None:
    """Register the study subcommands on the ``radiology-app`` parser."""
    p = add_command(sub, "import", _cmd_import, "import DICOM files, folders, ZIP files or DICOMDIRs")
    p.add_argument("paths", nargs="+", metavar="PATH", help="file, folder, .zip or DICOMDIR")
    add_command(sub, "studies", _cmd_studies, "list the studies in the database")
    p = add_command(
        sub, "show", _cmd_show, "show a study: series, the series chosen for analysis, volume summary"
    )
    p.add_argument(
        "study", metavar="STUDY", help="StudyInstanceUID, a unique prefix of one, or an imported path"
    )
    p = add_command(sub, "note", _cmd_note, "attach a clinical note to a study")
    p.add_argument(
        "study", metavar="STUDY", help="StudyInstanceUID, a unique prefix of one, or an imported path"
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", type=Path, help="note file (UTF-8, or GB18030 for Chinese)")
    src.add_argument("--text", help="note text")
    p.add_argument("--author", default="", help="who wrote the note")


def _open_db() -> Any:
    from radiology_app.store.database import StudyDatabase

    return StudyDatabase.open_default()


def _cmd_import(args: argparse.Namespace) -> int:
    from radiology_app.importer import import_paths

    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if len(missing) == len(paths):
        raise ImportFailedError(f"no such file or folder: {', '.join(missing)}")
    with _open_db() as db:
        result = import_paths(paths, db, on_progress=terminal_progress("import"))
    payload = {
        "run_id": result.run_id,
        "studies": list(result.studies),
        "instances_added": result.instances_added,
        "instances_already_present": result.instances_already_present,
        "issues": [{"path": i.path, "reason": i.reason} for i in result.issues],
    }

    def human() -> str:
        lines = [
            f"import run {result.run_id}: {result.instances_added} instances added, "
            f"{result.instances_already_present} already present, {len(result.studies)} studies, "
            f"{len(result.issues)} files not imported"
        ]
        lines += [f"  {i.path}: {i.reason}" for i in result.issues[:20]]
        if len(result.issues) > 20:
            lines.append(f"  ... and {len(result.issues) - 20} more (use --json for all)")
        lines += [f"  study {uid}" for uid in result.studies]
        return "\n".join(lines)

    emit(args, payload, human)
    return 0


def _cmd_studies(args: argparse.Namespace) -> int:
    with _open_db() as db:
        rows = db.list_studies()
    payload = [
        {
            "study_uid": s.study_uid,
            "patient_id": s.patient_id,
            "patient_name": s.patient_name,
            "study_date": s.study_date.isoformat() if s.study_date else None,
            "modalities": list(s.modalities),
            "series_count": s.series_count,
            "instance_count": s.instance_count,
            "description": s.description,
        }
        for s in rows
    ]

    def human() -> str:
        if not rows:
            return "no studies; import some with: radiology-app import PATH"
        return "\n".join(
            f"{s.study_uid}  {s.study_date or '----------'}  {s.patient_id:<12} "
            f"{'/'.join(s.modalities):<8} {s.series_count} series, {s.instance_count} images"
            f"  {s.description}"
            for s in rows
        )

    emit(args, payload, human)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from radiology_app.dicom.volume import read_volume
    from radiology_app.importer import choose_series

    with _open_db() as db:
        study = db.resolve_study(args.study)
        series = db.series_for_study(study.study_uid)
        patient = db.get_patient(study.patient_id)
        notes = db.notes_for_study(study.study_uid)
        chosen: dict[str, Any] | None = None
        volume: dict[str, Any] | None = None
        problem: str | None = None
        try:
            choice = choose_series(db, study.study_uid)
            chosen = {
                "series_uid": choice.series_uid,
                "confidence": choice.confidence,
                "warnings": list(choice.warnings),
                "slice_thickness_mm": choice.slice_thickness_mm,
                "kernel_class": choice.kernel_class,
            }
            vol = read_volume(
                db.instances_for_series(choice.series_uid), on_progress=terminal_progress("read")
            )
            chosen["warnings"] += list(vol.warnings)
            volume = {
                "shape_zyx": list(vol.shape_zyx),
                "spacing_zyx_mm": list(vol.spacing_zyx_mm),
                "hu_min": float(vol.hu.min()),
                "hu_max": float(vol.hu.max()),
                "origin_lps_mm": list(vol.origin_lps_mm),
                "direction": [list(r) for r in vol.direction],
                "slice_thickness_mm": vol.slice_thickness_mm,
                "warnings": list(vol.warnings),
            }
        except (SeriesSelectionError, VolumeError) as exc:
            problem = str(exc)
    payload = {
        "study_uid": study.study_uid,
        "patient_id": study.patient_id,
        "patient_name": patient.name if patient else None,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "description": study.description,
        "series": [
            {
                "series_uid": s.series_uid,
                "series_number": s.series_number,
                "modality": s.modality,
                "description": s.description,
                "instance_count": s.instance_count,
                "slice_thickness_mm": s.slice_thickness_mm,
                "convolution_kernel": s.convolution_kernel,
                "image_type": list(s.image_type),
            }
            for s in series
        ],
        "chosen": chosen,
        "volume": volume,
        "problem": problem,
        "note_count": len(notes),
    }

    def human() -> str:
        lines = [
            f"study {study.study_uid}  patient {study.patient_id}  {study.study_date or ''}  "
            f"{study.description}",
            "series:",
        ]
        for s in series:
            mark = "*" if chosen and s.series_uid == chosen["series_uid"] else " "
            lines.append(
                f" {mark} #{s.series_number if s.series_number is not None else '-'} {s.modality:<3} "
                f"{s.instance_count:>4} images  {s.slice_thickness_mm or '?'} mm  "
                f"{s.convolution_kernel or '-'}  {s.description}"
            )
        if chosen:
            lines.append(f"chosen: {chosen['series_uid']} (confidence {chosen['confidence']:.2f})")
            lines += [f"  warning: {w}" for w in chosen["warnings"]]
        if volume:
            lines.append(
                f"volume: shape {tuple(volume['shape_zyx'])} (z, y, x), spacing "
                f"{tuple(round(v, 3) for v in volume['spacing_zyx_mm'])} mm, HU {volume['hu_min']:.0f}"
                f"..{volume['hu_max']:.0f}"
            )
        if problem:
            lines.append(f"no volume: {problem}")
        lines.append(f"notes: {len(notes)}")
        return "\n".join(lines)

    emit(args, payload, human)
    return 0


def _cmd_note(args: argparse.Namespace) -> int:
    from radiology_app.notes.loading import read_note_file

    if args.file is not None:
        text = read_note_file(args.file)
        source = str(Path(args.file).absolute())
    else:
        from radiology_app.core.errors import NoteError

        text = args.text
        if not text or not text.strip():
            raise NoteError("the note text is empty")
        source = ""
    with _open_db() as db:
        study = db.resolve_study(args.study)
        note = db.add_note(study.study_uid, text, author=args.author, source_path=source)
    emit(
        args,
        {"note_id": note.note_id, "study_uid": study.study_uid},
        f"note {note.note_id} attached to study {study.study_uid}",
    )
    return 0
