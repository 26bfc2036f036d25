"""Diagnosis subcommands: ``evaluate``, ``evaluate-crops``, ``train-diagnosis``, ``finetune``.

torch is imported only inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from radiology_app.cli._common import add_command, emit, terminal_progress


def read_note_facts(text: str) -> dict[str, object]:
    """A note's patient facts as ``analyze`` gives them to the fused model: the notes package's in-context
    extractor, ``{name: value}`` (the diagnosis package may not import the notes package, so training
    and evaluation get this reader injected from here)."""
    if not text.strip():
        return {}
    from radiology_app.notes.facts import extract_facts

    facts = extract_facts(text).to_json()["facts"]
    return {k: v.get("value") if isinstance(v, Mapping) else v for k, v in facts.items()}


def _fmt_evaluate(r: dict[str, Any]) -> str:
    m = r["modality"]
    lat = r["latency_ms_per_nodule"]
    lines = [
        f"cases {r['cases']} (seed {r['seed']}, domain {r['domain']})",
        f"top-1 {r['top1']:.3f}  top-3 {r['top3']:.3f}  macro AUC {r['macro_auc']:.3f}  ECE {r['ece']:.3f}",
        f"malignant: sensitivity {r['sensitivity_malignant']:.3f}  "
        f"specificity {r['specificity_malignant']:.3f}",
        f"top-1 image only {m['top1_image_only']:.3f}  text only {m['top1_text_only']:.3f}  "
        f"fused {m['top1_fused']:.3f}  (gain {m['fusion_gain_points']:+.1f} points)",
        "router mean: " + ", ".join(f"{k} {v:.2f}" for k, v in m["router_mean"].items()),
        "router, degraded image: "
        + ", ".join(f"{k} {v:.2f}" for k, v in m["router_mean_degraded_image"].items()),
        "router, empty note: " + ", ".join(f"{k} {v:.2f}" for k, v in m["router_mean_empty_note"].items()),
        *(
            f"top-1 {name} renderer: {v['top1']:.3f} ({v['n']} cases)"
            for name, v in r.get("by_renderer", {}).items()
        ),
        "latency ms/nodule: "
        + ", ".join(f"{k} {'n/a' if v is None else f'{v:.1f}'}" for k, v in lat.items()),
    ]
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace) -> int:
    from radiology_app.core.config import load_settings
    from radiology_app.diagnosis.evaluate import run_evaluation

    settings = load_settings()
    if args.adapter is not None:
        settings = settings.replace(adapter_dir=args.adapter)
    result = run_evaluation(
        settings,
        cases=args.cases,
        seed=args.seed,
        domain=args.domain,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        latency=not args.no_latency,
        facts_reader=None if args.no_facts else read_note_facts,
        on_progress=terminal_progress("evaluate"),
    )
    emit(args, result, lambda: _fmt_evaluate(result))
    return 0


def _evaluate_crops(args: argparse.Namespace) -> int:
    from radiology_app.diagnosis.lidc import evaluate_crops

    result = evaluate_crops(
        Path(args.crops), Path(args.labels), split=args.split, on_progress=terminal_progress("evaluate-crops")
    )
    emit(
        args,
        result,
        lambda: (
            f"n {result['n']} ({result['n_patients']} patients, split {result['split']}): "
            f"AUC {result['auc']:.3f}, sensitivity {result['sensitivity']:.3f}, "
            f"specificity {result['specificity']:.3f}"
        ),
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from radiology_app.diagnosis.weights import FUSED_CARD, FUSED_WEIGHTS, LIDC_CARD, LIDC_WEIGHTS

    out = Path(args.out) if args.out else None
    result: dict[str, Any] = {"fused": None, "lidc": None}
    if not args.lidc_only:
        from radiology_app.diagnosis.train import TrainConfig, train_diagnosis

        weights = out / FUSED_WEIGHTS.name if out else FUSED_WEIGHTS
        card = out / FUSED_CARD.name if out else FUSED_CARD
        tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, threads=args.threads)
        r = train_diagnosis(
            weights,
            card,
            work_dir=Path(args.work_dir),
            n_train=args.train_cases,
            n_val=args.val_cases,
            tcfg=tcfg,
            backbone_dir=args.backbone,
            max_seconds=args.max_minutes * 60 if args.max_minutes else None,
            twins=args.twins,
            facts_reader=None if args.no_facts else read_note_facts,
            on_progress=terminal_progress("train"),
        )
        result["fused"] = {"weights": r["weights"], "sha256": r["sha256"], "history": r["history"]}
    if args.lidc or args.lidc_only:
        from radiology_app.diagnosis.lidc import load_crops, save_lidc, train_lidc

        crops_dir = Path(args.lidc_crops)
        crops = load_crops(crops_dir / "crops", crops_dir / "labels.csv")
        net, metrics = train_lidc(
            crops, epochs=args.lidc_epochs, threads=args.threads, on_progress=terminal_progress("train 2-D")
        )
        weights = out / LIDC_WEIGHTS.name if out else LIDC_WEIGHTS
        card = out / LIDC_CARD.name if out else LIDC_CARD
        result["lidc"] = {
            "weights": str(weights),
            "sha256": save_lidc(net, weights, card, metrics),
            "metrics": metrics,
        }
    emit(args, result)
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from radiology_app.core.config import load_settings
    from radiology_app.diagnosis.finetune import finetune_from_csv

    settings = load_settings()
    result = finetune_from_csv(
        Path(args.cases),
        settings,
        out_dir=Path(args.out) if args.out else None,
        epochs=args.epochs,
        activate=not args.no_activate,
        threads=args.threads,
        facts_reader=read_note_facts,
        on_progress=terminal_progress("finetune"),
    )
    emit(
        args,
        result,
        lambda: json.dumps(
            {k: result[k] for k in ("before", "after", "activated", "reason", "adapter_dir")}, indent=2
        ),
    )
    return 0


def register(sub: Any) -> None:
    """Add the diagnosis subcommands."""
    p = add_command(
        sub, "evaluate", _evaluate, "evaluate the fused differential model on held-out synthetic cases"
    )
    p.add_argument("--cases", type=int, default=900, help="number of held-out cases (default 900)")
    p.add_argument("--seed", type=int, default=None, help="case seed (default: the held-out evaluation seed)")
    p.add_argument("--domain", choices=("base", "site_b"), default="base", help="case domain")
    p.add_argument("--adapter", default=None, help="evaluate with this site adapter folder ('' for none)")
    p.add_argument("--cache-dir", default=None, help="folder for rendered cases (default: data folder)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    p.add_argument(
        "--no-facts",
        action="store_true",
        help="give the model the lexicon's cues only, not the note facts read in context",
    )

    p = add_command(
        sub,
        "evaluate-crops",
        _evaluate_crops,
        "malignancy AUC of the 2-D image branch on a folder of LIDC-style nodule crops",
    )
    p.add_argument("--crops", required=True, help="folder of crop DICOM files")
    p.add_argument("--labels", required=True, help="labels.csv (file, patient_id, malignancy_median)")
    p.add_argument(
        "--split",
        choices=("val", "train", "all"),
        default="all",
        help="patient-disjoint split to score (val = never trained on; default all)",
    )

    p = add_command(sub, "train-diagnosis", _train, "train the fused model on synthetic cases (resumable)")
    p.add_argument("--epochs", type=int, default=14)
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--train-cases", type=int, default=3600)
    p.add_argument("--val-cases", type=int, default=900)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backbone", default=None, help="local Hugging Face model folder (default MiniLM)")
    p.add_argument("--work-dir", default="runs/diagnosis", help="caches and checkpoints (resume from here)")
    p.add_argument("--out", default=None, help="write weights and cards here instead of resources/models")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after the epoch that passes this")
    p.add_argument(
        "--twins", type=float, default=0.25, help="share of training cases given a counterfactual twin"
    )
    p.add_argument("--no-facts", action="store_true", help="train without the note facts read in context")
    p.add_argument("--lidc", action="store_true", help="also train the 2-D LIDC branch")
    p.add_argument("--lidc-only", action="store_true", help="train only the 2-D LIDC branch")
    p.add_argument("--lidc-epochs", type=int, default=15)
    p.add_argument(
        "--lidc-crops", default="../shared/data/lidc-nodule-crops", help="folder with crops/ and labels.csv"
    )

    p = add_command(
        sub,
        "finetune",
        _finetune,
        "site adaptation: LoRA + heads on local cases; activates the adapter only if it is better",
    )
    p.add_argument("--cases", required=True, help="CASES.csv: crop (.npz) or study+location, note, label")
    p.add_argument("--out", default=None, help="adapter folder (default: data folder/adapters/<time>)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="most torch threads (fewer when the machine is busy; default 2)",
    )
    p.add_argument("--no-activate", action="store_true", help="never activate, only report")
