"""Subcommands ``evaluate-seg`` and ``train-seg`` (see the shared CLI contract).

torch and MONAI load only when a command runs, never at registration, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radiology_app.cli._common import add_command, emit
from radiology_app.core.errors import ModelError, ModelIntegrityError, OperationCancelled, RadiologyAppError

#: Keys of the ``evaluate-seg`` JSON fixed by the CLI contract (more follow them).
EVALUATE_KEYS = (
    "cases",
    "seed",
    "sensitivity_ge_4mm",
    "sensitivity_by_size",
    "sensitivity_by_type",
    "false_positives_per_scan",
    "dice_median",
    "median_abs_mean_diameter_error_mm",
    "median_volume_error_pct",
)


def register(sub: Any) -> None:
    """Register the segmentation subcommands on the ``radiology-app`` parser."""
    p = add_command(
        sub,
        "evaluate-seg",
        _cmd_evaluate,
        "evaluate the nodule segmenter on held-out synthetic chest CTs, or with --real on annotated real "
        "scans (takes minutes)",
    )
    p.add_argument(
        "--real",
        type=Path,
        default=None,
        metavar="DIR",
        help="evaluate on every series under DIR that has LIDC XML reads or LUNA16-style CSV rows",
    )
    p.add_argument(
        "--sheets",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --real: write a PNG per scan showing every finding (crop, place, score, match)",
    )
    p.add_argument("--cases", type=int, default=20, help="number of phantoms (default 20)")
    p.add_argument("--seed", type=int, default=None, help="first phantom seed (default 7000001)")
    p.add_argument("--weights", type=Path, default=None, help="safetensors weights (default: shipped)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")

    p = add_command(
        sub, "train-seg", _cmd_train, "train the nodule U-Net on synthetic chest CTs (CPU, hours)"
    )
    p.add_argument("--data", type=Path, required=True, help="folder of training cases (case_*.npz)")
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoint.pt and curve.jsonl")
    p.add_argument("--generate", type=int, default=0, help="first generate this many cases into --data")
    p.add_argument("--iters", type=int, default=3000, help="optimiser steps (default 3000)")
    p.add_argument("--minutes", type=float, default=70.0, help="wall-clock budget of this run")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--batch", type=int, default=2, help="patches per step")
    p.add_argument("--patch", type=int, default=48, help="patch edge in voxels")
    p.add_argument("--seed", type=int, default=1234, help="training seed")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (CUDA when available)")
    p.add_argument(
        "--loader-workers", type=int, default=0, help="processes that draw and augment patches (0: none)"
    )
    p.add_argument("--export", type=Path, default=None, help="write safetensors weights here at the end")

    p = add_command(
        sub,
        "train-fp",
        _cmd_train_fp,
        "train the candidate classifier that removes false positives of the shipped U-Net (CPU)",
    )
    p.add_argument("--data", type=Path, required=True, help="folder of candidate cases (cand_*.npz)")
    p.add_argument("--out", type=Path, required=True, help="folder for fp_checkpoint.pt and the curve")
    p.add_argument("--cases", type=int, default=60, help="training phantoms (generated when missing)")
    p.add_argument("--val-cases", type=int, default=12, help="validation phantoms (realistic size)")
    p.add_argument("--iters", type=int, default=3000, help="optimiser steps (default 3000)")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of the training")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--max-fp", type=float, default=0.7, help="false positives per scan allowed on validation")
    p.add_argument("--export", type=Path, default=None, help="write safetensors weights here at the end")
    p.add_argument(
        "--seed-base", type=int, default=None, help="first phantom seed (default: the usual range)"
    )
    p.add_argument(
        "--real",
        type=Path,
        default=None,
        metavar="DIR",
        help="annotated real scans (LIDC XML / LUNA16 CSV): nodules are inserted into their lungs and every "
        "other candidate is a hard negative",
    )
    p.add_argument(
        "--annotations",
        type=Path,
        action="append",
        default=[],
        help="an extra LUNA16-style CSV of lesions in the --real scans (repeatable)",
    )
    p.add_argument(
        "--hold-out", action="append", default=[], help="PatientID or SeriesInstanceUID to leave out"
    )
    p.add_argument(
        "--real-variants", type=int, default=6, help="cases per real scan (fresh inserted nodules)"
    )
    p.add_argument("--inserted", type=int, default=16, help="nodules inserted per real case")
    p.add_argument("--real-weight", type=float, default=1.0, help="real cases' share relative to phantoms'")
    p.add_argument(
        "--init", type=Path, default=None, help="start from these classifier weights (safetensors)"
    )
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument(
        "--positive-fraction", type=float, default=0.2, help="share of nodule candidates per batch"
    )
    p.add_argument("--pasted-fraction", type=float, default=0.2, help="share of pasted nodules per batch")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="operating threshold to export (default: chosen on validation)",
    )


def _progress(label: str) -> Any:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, message: str) -> None:
        sys.stderr.write(f"\r{label} {done}/{total} {message[:50]:<50}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _map_errors(exc: Exception) -> RadiologyAppError:
    from segmentation.errors import ModelIntegrityError as SegIntegrity
    from segmentation.errors import SegmentationCancelled

    if isinstance(exc, SegmentationCancelled):
        return OperationCancelled(str(exc))
    if isinstance(exc, SegIntegrity):
        return ModelIntegrityError(str(exc))
    return ModelError(str(exc))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from segmentation.errors import SegmentationError
    from segmentation.evaluate import EVAL_SEED, evaluate
    from segmentation.inference import load_model

    torch.set_num_threads(max(1, int(args.threads)))
    if args.real is not None:
        return _evaluate_real(args)
    seed = EVAL_SEED if args.seed is None else int(args.seed)
    try:
        seg = load_model(args.weights)
        rep = evaluate(cases=int(args.cases), seed=seed, segmenter=seg, on_progress=_progress("evaluate-seg"))
    except SegmentationError as exc:
        raise _map_errors(exc) from exc
    payload = rep.to_dict()
    ordered = {k: payload[k] for k in EVALUATE_KEYS}
    ordered.update({k: v for k, v in payload.items() if k not in ordered})

    def human() -> str:
        lines = [
            f"cases {rep.cases} (seed {rep.seed}), {rep.nodules} nodules ({rep.nodules_ge_4mm} >= 4 mm)",
            f"sensitivity >= 4 mm: {rep.sensitivity_ge_4mm}",
            f"false positives per scan: {rep.false_positives_per_scan}",
            f"Dice (median): {rep.dice_median}",
            f"median |mean-diameter error|: {rep.median_abs_mean_diameter_error_mm} mm",
            f"median |volume error|: {rep.median_volume_error_pct} %",
            "by size: " + ", ".join(f"{k} {v}" for k, v in rep.sensitivity_by_size.items()),
            "by type: " + ", ".join(f"{k} {v}" for k, v in rep.sensitivity_by_type.items()),
            "called spiculated, by true margin: "
            + ", ".join(f"{k} {v}" for k, v in rep.called_spiculated_by_margin.items()),
        ]
        return "\n".join(lines)

    emit(args, ordered, human)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from segmentation.dataset import generate_cases
    from segmentation.errors import SegmentationError
    from segmentation.model import ModelConfig
    from segmentation.train import TrainSettings, export_weights, train

    try:
        if args.generate > 0:
            generate_cases(args.data, int(args.generate), on_progress=_progress("generating"))
        res = train(
            TrainSettings(
                data_dir=args.data,
                out_dir=args.out,
                max_iters=int(args.iters),
                max_minutes=float(args.minutes),
                batch_size=int(args.batch),
                threads=int(args.threads),
                seed=int(args.seed),
                config=ModelConfig(patch_size=int(args.patch)),
                device=str(args.device),
                loader_workers=int(args.loader_workers),
            ),
            on_progress=_progress("train-seg"),
        )
        if args.export is not None:
            res["sha256"] = export_weights(Path(res["checkpoint"]), args.export)
    except SegmentationError as exc:
        raise _map_errors(exc) from exc
    emit(args, res)
    return 0


def _cmd_train_fp(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from segmentation.errors import SegmentationError
    from segmentation.fp_reduction import ClassifierConfig, load_classifier
    from segmentation.fp_train import CANDIDATE_SEED_BASE, FpTrainSettings, run_fp_training
    from segmentation.inference import load_model

    torch.set_num_threads(max(1, int(args.threads)))
    try:
        seg = load_model()
        real = _write_real_cases(args, seg) if args.real is not None else []
        # fine-tuning keeps the starting weights' architecture (their card must sit beside them)
        config = dataclasses.replace(load_classifier(args.init).config) if args.init else ClassifierConfig()
        res = run_fp_training(
            args.data,
            args.out,
            seg,
            cases=int(args.cases),
            val_cases=int(args.val_cases),
            settings=FpTrainSettings(
                out_dir=args.out,
                max_iters=int(args.iters),
                max_minutes=float(args.minutes),
                threads=int(args.threads),
                lr=float(args.lr),
                positive_fraction=float(args.positive_fraction),
                pasted_fraction=float(args.pasted_fraction),
                config=config,
                init_weights=args.init,
                unet_weight=0.0 if args.init is not None else 0.5,
            ),
            max_fp_per_scan=float(args.max_fp),
            export=args.export,
            seed_base=CANDIDATE_SEED_BASE if args.seed_base is None else int(args.seed_base),
            real_cases=real,
            real_weight=float(args.real_weight),
            threshold=args.threshold,
            on_progress=_progress("train-fp"),
        )
    except SegmentationError as exc:
        raise _map_errors(exc) from exc
    emit(args, res)
    return 0


@dataclass
class _AnnotatedScan:
    """One annotated series under a folder, read (``volume``) or not (``problem`` says why)."""

    series_uid: str
    annotations: Any
    found: Any = None
    volume: Any = None
    geometry: Any = None
    problem: str | None = None


def _annotated_scans(root: Path, extra: list[Path], managed: Path) -> Iterator[_AnnotatedScan]:
    """Every series under ``root`` with LIDC XML reads or LUNA16-style rows (``extra`` CSVs too)."""
    from radiology_app.core.errors import VolumeError
    from radiology_app.dicom.folder import series_in_folder, slice_index_by_sop
    from radiology_app.dicom.volume import read_volume
    from segmentation.annotations import find_annotations, read_luna_csv
    from segmentation.evaluate_real import ScanGeometry

    annotations = find_annotations(root)
    for csv_path in extra:
        for uid, ann in read_luna_csv(csv_path).items():
            annotations.setdefault(uid, ann)
    if not annotations:
        raise RadiologyAppError(f"{root}: no LIDC XML read or LUNA16-style CSV found")
    series, _ = series_in_folder(root, managed_dir=managed)
    for uid, ann in sorted(annotations.items()):
        scan = _AnnotatedScan(uid, ann, found=series.get(uid))
        if scan.found is None:
            scan.problem = "no DICOM series"
        else:
            try:
                scan.volume = read_volume(scan.found.instances)
            except VolumeError as exc:
                scan.problem = str(exc)
            else:
                v = scan.volume
                sop = slice_index_by_sop(scan.found.instances, v)
                scan.geometry = ScanGeometry(v.origin_lps_mm, v.spacing_zyx_mm, v.direction, sop)
        yield scan


def _write_real_cases(args: argparse.Namespace, seg: Any) -> list[Path]:
    """Cases from the annotated real scans under ``--real`` (existing case files are reused)."""
    import tempfile
    import zlib

    import numpy as np

    from segmentation.training.real_cases import lung_on_own_grid, real_scan, write_real_case

    out = Path(args.data) / "real"
    out.mkdir(parents=True, exist_ok=True)
    held = set(args.hold_out)
    paths: list[Path] = []
    show = _progress("real cases")
    with tempfile.TemporaryDirectory(prefix="radiology-app-train-") as managed:
        for item in _annotated_scans(args.real, list(args.annotations), Path(managed)):
            if item.problem is not None:
                continue
            name = item.found.patient_id or item.series_uid
            if name in held or item.series_uid in held:
                continue
            scan = real_scan(name, item.volume.hu, item.geometry, item.annotations)
            lung = lung_on_own_grid(scan.hu, scan.spacing_zyx_mm)
            for v in range(int(args.real_variants)):
                path = out / f"real_{name}_{v:02d}.npz"
                if not path.exists():
                    rng = np.random.default_rng([zlib.crc32(name.encode()), v])
                    write_real_case(path, scan, seg, rng, inserted=int(args.inserted), lung=lung)
                paths.append(path)
                if show is not None:
                    show(len(paths), len(paths), f"{name} case {v + 1}")
    return paths


def _evaluate_real(args: argparse.Namespace) -> int:
    """``evaluate-seg --real DIR``: detection and measurement against radiologists' annotations."""
    import tempfile
    import time

    from segmentation.errors import SegmentationError
    from segmentation.evaluate_real import (
        COLLECT_SCORE,
        ScanEvaluation,
        collecting_low_scores,
        evaluate_scan,
        summarize_real,
    )
    from segmentation.inference import coarse_spacing_refusal, load_model, segment_nodules

    root = Path(args.real)
    if not root.is_dir():
        raise RadiologyAppError(f"{root}: not a folder")
    skipped: list[dict[str, str]] = []
    scans: list[ScanEvaluation] = []
    show = _progress("evaluate-seg --real")
    try:
        seg = load_model(args.weights)
        with tempfile.TemporaryDirectory(prefix="radiology-app-eval-") as managed:
            for item in _annotated_scans(root, [], Path(managed)):
                volume, uid, ann = item.volume, item.series_uid, item.annotations
                problem = item.problem or coarse_spacing_refusal(volume.spacing_zyx_mm)
                if problem:
                    skipped.append({"series_uid": uid, "source": ann.source, "reason": problem})
                    continue
                found, geom = item.found, item.geometry
                if show is not None:
                    show(len(scans), len(scans) + 1, f"series {len(scans) + 1}")
                contrast = True if found.series.contrast_agent else None
                t0 = time.monotonic()
                with collecting_low_scores(seg, COLLECT_SCORE, COLLECT_SCORE):
                    result = segment_nodules(
                        volume.hu, volume.spacing_zyx_mm, segmenter=seg, contrast=contrast
                    )
                scan = evaluate_scan(volume.hu, geom, ann, seg, result=result)
                scan.seconds = round(time.monotonic() - t0, 1)
                scans.append(scan)
                if args.sheets is not None:
                    _write_sheet(Path(args.sheets), found.patient_id or uid, volume, result, scan, seg)
    except SegmentationError as exc:
        raise _map_errors(exc) from exc
    report = summarize_real(scans, seg.detection_threshold)
    payload = {
        "scans": report.scans,
        "cases": report.scans,
        "seed": None,
        **report.to_dict(),
        "skipped": skipped,
    }

    def human() -> str:
        lines = [
            f"scans {report.scans} ({len(skipped)} skipped), {report.nodules_ge_4mm} nodules >= 4 mm "
            "marked by >= 2 readers",
            f"sensitivity >= 4 mm: {report.sensitivity_ge_4mm}",
            f"false positives per scan: {report.false_positives_per_scan}",
            f"median |mean-diameter error| against the readers' outlines: "
            f"{report.median_abs_mean_diameter_error_mm} mm",
            f"Dice against the readers' consensus (median): {report.dice_median}",
            f"solid nodules called solid: {report.solid_called_solid}",
            "false positives by place: "
            + (", ".join(f"{k} {v}" for k, v in report.false_positives_by_where.items()) or "none"),
        ]
        for s in report.per_scan:
            lines.append(
                f"  {s['series_uid']}: {len(s['findings'])} findings, {s['false_positives']} false positives"
            )
        return "\n".join(lines)

    emit(args, payload, human)
    return 0


def _write_sheet(folder: Path, name: str, volume: Any, result: Any, scan: Any, seg: Any) -> None:
    """A contact sheet of the scan's findings at the operating threshold (what each one matched)."""
    from radiology_app.reporting.figures import SheetItem, findings_sheet

    by_label = {n.label_id: n for n in result.nodules}
    items: list[SheetItem] = []
    for f in sorted(scan.findings, key=lambda f: -f["score"]):
        if f["score"] < seg.detection_threshold:
            continue
        n = by_label[f["label_id"]]
        what = ", ".join(f["matches"]) if f["matches"] else f"FALSE POSITIVE: {f['where']}"
        caption = f"{len(items) + 1}. {f['mean_diameter_mm']} mm, score {f['score']:.2f}: {what}"
        field = min(80.0, max(30.0, 3.5 * f["mean_diameter_mm"]))
        items.append(SheetItem(n.label_id, n.measurement.centroid_zyx, caption, field))
    title = f"{name}: {len(items)} findings at score >= {seg.detection_threshold:g}"
    folder.mkdir(parents=True, exist_ok=True)
    findings_sheet(volume.hu, result.labels, volume.spacing_zyx_mm, items, title=title).save(
        folder / f"{name}.png"
    )
