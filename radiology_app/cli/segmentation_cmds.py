"""Subcommands ``evaluate-seg`` and ``train-seg`` (see the shared CLI contract).

torch and MONAI load only when a command runs, never at registration, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
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
    import torch

    from segmentation.errors import SegmentationError
    from segmentation.fp_train import FpTrainSettings, run_fp_training
    from segmentation.inference import load_model

    torch.set_num_threads(max(1, int(args.threads)))
    try:
        seg = load_model()
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
            ),
            max_fp_per_scan=float(args.max_fp),
            export=args.export,
            on_progress=_progress("train-fp"),
        )
    except SegmentationError as exc:
        raise _map_errors(exc) from exc
    emit(args, res)
    return 0


def _evaluate_real(args: argparse.Namespace) -> int:
    """``evaluate-seg --real DIR``: detection and measurement against radiologists' annotations."""
    import tempfile

    from radiology_app.core.errors import VolumeError
    from radiology_app.dicom.folder import series_in_folder, slice_index_by_sop
    from radiology_app.dicom.volume import read_volume
    from segmentation.annotations import find_annotations
    from segmentation.errors import SegmentationError
    from segmentation.evaluate_real import ScanEvaluation, ScanGeometry, evaluate_scan, summarize_real
    from segmentation.inference import coarse_spacing_refusal, load_model

    root = Path(args.real)
    if not root.is_dir():
        raise RadiologyAppError(f"{root}: not a folder")
    skipped: list[dict[str, str]] = []
    scans: list[ScanEvaluation] = []
    try:
        annotations = find_annotations(root)
        if not annotations:
            raise RadiologyAppError(f"{root}: no LIDC XML read or LUNA16-style CSV found")
        seg = load_model(args.weights)
        with tempfile.TemporaryDirectory(prefix="radiology-app-eval-") as managed:
            series, _ = series_in_folder(root, managed_dir=Path(managed))
            show = _progress("evaluate-seg --real")
            for k, (uid, ann) in enumerate(sorted(annotations.items())):
                if show is not None:
                    show(k, len(annotations), f"series {k + 1}/{len(annotations)}")
                found = series.get(uid)
                if found is None:
                    skipped.append({"series_uid": uid, "source": ann.source, "reason": "no DICOM series"})
                    continue
                try:
                    volume = read_volume(found.instances)
                except VolumeError as exc:
                    skipped.append({"series_uid": uid, "source": ann.source, "reason": str(exc)})
                    continue
                refusal = coarse_spacing_refusal(volume.spacing_zyx_mm)
                if refusal:
                    skipped.append({"series_uid": uid, "source": ann.source, "reason": refusal})
                    continue
                geom = ScanGeometry(
                    volume.origin_lps_mm,
                    volume.spacing_zyx_mm,
                    volume.direction,
                    slice_index_by_sop(found.instances, volume),
                )
                contrast = True if found.series.contrast_agent else None
                scans.append(evaluate_scan(volume.hu, geom, ann, seg, contrast=contrast))
            if show is not None:
                show(len(annotations), len(annotations), "done")
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
