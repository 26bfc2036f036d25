"""Subcommands ``extract-facts``, ``risk`` and ``evaluate-notes`` (see the shared CLI contract).

``risk`` computes Brock, Mayo, Lung-RADS and Fleischner from flags, for checking a case by hand; a
result whose inputs are missing is ``null`` with the reason in ``errors``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from radiology_app.cli._common import add_command, emit

_TYPES = ("solid", "part_solid", "ground_glass")


def register(sub: Any) -> None:
    """Register the clinical subcommands on the ``radiology-app`` parser."""
    p = add_command(
        sub, "extract-facts", _cmd_extract_facts, "read clinical facts (with spans) from a note file"
    )
    p.add_argument("file", type=Path, metavar="FILE", help="note file (UTF-8, or GB18030 for Chinese)")
    p.add_argument("--language", choices=("en", "zh"), help="note language (default: detected)")

    p = add_command(
        sub, "risk", _cmd_risk, "Brock, Mayo, Lung-RADS and Fleischner for one nodule, from flags"
    )
    g = p.add_argument_group("patient")
    g.add_argument("--age", type=float, help="age in years")
    g.add_argument("--sex", choices=("F", "M"), help="sex")
    g.add_argument("--smoking", choices=("never", "former", "current", "unknown"), help="smoking status")
    g.add_argument("--pack-years", type=float, help="pack-years")
    g.add_argument("--years-since-quit", type=float, help="years since quitting")
    g.add_argument("--family-history", action="store_true", help="family history of lung cancer")
    g.add_argument("--emphysema", action="store_true", help="emphysema on CT (or COPD)")
    g.add_argument(
        "--prior-cancer-over-5y",
        action="store_true",
        help="extrathoracic cancer diagnosed > 5 years ago (Mayo)",
    )
    g.add_argument(
        "--known-cancer", action="store_true", help="known primary cancer (Fleischner does not apply)"
    )
    g.add_argument(
        "--immunosuppressed", action="store_true", help="immunocompromised (Fleischner does not apply)"
    )
    g.add_argument(
        "--screening", action="store_true", help="lung cancer screening exam (Fleischner does not apply)"
    )
    g.add_argument(
        "--risk",
        choices=("auto", "low", "high"),
        default="auto",
        help="Fleischner risk row; auto suggests from smoking/family/emphysema, else the high-risk row",
    )
    n = p.add_argument_group("nodule")
    n.add_argument("--type", dest="nodule_type", choices=_TYPES, default="solid", help="composition")
    n.add_argument("--diameter-mm", type=float, help="mean diameter in mm")
    n.add_argument("--long-axis-mm", type=float, help="long axis in mm (Brock and Mayo use it when given)")
    n.add_argument("--short-axis-mm", type=float, help="short axis in mm")
    n.add_argument("--solid-component-mm", type=float, help="solid component mean diameter (part-solid), mm")
    n.add_argument("--lobe", help="RUL, RML, RLL, LUL, lingula or LLL (upper lobe: RUL, LUL, lingula)")
    n.add_argument(
        "--count", type=int, default=1, help="number of nodules on the scan (Brock; >1 = multiple)"
    )
    n.add_argument("--spiculated", action="store_true", help="spiculated margin")
    n.add_argument(
        "--status", choices=("baseline", "new", "existing"), default="baseline", help="Lung-RADS status"
    )
    n.add_argument("--prior-diameter-mm", type=float, help="mean diameter on the prior exam, mm")
    n.add_argument("--prior-solid-component-mm", type=float, help="solid component on the prior exam, mm")
    n.add_argument("--interval-months", type=float, help="months since the prior exam")
    n.add_argument("--prior-category", help="Lung-RADS category of the prior exam (stepped management)")
    n.add_argument("--juxtapleural", action="store_true", help="juxtapleural / perifissural location")
    n.add_argument(
        "--benign-morphology",
        action="store_true",
        help="smooth, oval/lentiform/triangular (perifissural pattern)",
    )
    n.add_argument("--benign-calcification", action="store_true", help="benign calcification pattern")
    n.add_argument("--fat", action="store_true", help="contains macroscopic fat")
    n.add_argument("--airway", choices=("subsegmental", "segmental_or_proximal"), help="airway nodule level")

    p = add_command(
        sub, "evaluate-notes", _cmd_evaluate_notes, "per-fact precision/recall on the labelled notes"
    )
    p.add_argument("--corpus", type=Path, help="corpus folder (default: tests/data/notes of the source tree)")


def _cmd_extract_facts(args: argparse.Namespace) -> int:
    from radiology_app.notes.facts import extract_facts
    from radiology_app.notes.loading import read_note_file

    text = read_note_file(args.file)
    facts = extract_facts(text, language=args.language)
    doc = facts.to_json()

    def human() -> str:
        lines = [f"language: {facts.language}"]
        for name, fact in doc["facts"].items():
            where = (
                ""
                if fact["span"] is None
                else f'   <- "{fact["text"]}" [{fact["span"][0]}:{fact["span"][1]}]'
            )
            lines.append(f"  {name:28s} {fact['value']!s:10s}{where}")
        return "\n".join(lines)

    emit(args, doc, human)
    return 0


def _mean_mm(args: argparse.Namespace) -> float | None:
    if args.diameter_mm is not None:
        return float(args.diameter_mm)
    if args.long_axis_mm is not None and args.short_axis_mm is not None:
        from radiology_app.rules.rounding import mean_diameter_mm

        return mean_diameter_mm(args.long_axis_mm, args.short_axis_mm, 1)
    return None


def _risk_payload(args: argparse.Namespace) -> dict[str, Any]:
    from radiology_app.rules import (
        BrockInput,
        FleischnerInput,
        FleischnerPatient,
        LungRadsInput,
        MayoInput,
        RuleInputError,
        brock_probability,
        fleischner,
        lobe_is_upper,
        lung_rads,
        mayo_probability,
        suggest_high_risk,
    )

    errors: dict[str, str] = {}
    mean = _mean_mm(args)
    size_for_models = args.long_axis_mm if args.long_axis_mm is not None else mean
    upper = lobe_is_upper(args.lobe)
    payload: dict[str, Any] = {
        "brock_probability": None,
        "mayo_probability": None,
        "lung_rads": {"category": None, "reason": None, "management": None},
        "fleischner": {"recommendation": None, "reason": None, "applies": None},
        "brock": None,
        "mayo": None,
        "errors": errors,
    }
    if args.age is None or args.sex is None or size_for_models is None:
        errors["brock"] = "needs --age, --sex and a size (--long-axis-mm, or --diameter-mm)"
    else:
        try:
            b = brock_probability(
                BrockInput(
                    age_years=args.age,
                    female=args.sex == "F",
                    family_history_lung_cancer=args.family_history,
                    emphysema=args.emphysema,
                    nodule_size_mm=size_for_models,
                    nodule_type=args.nodule_type,
                    upper_lobe=upper,
                    nodule_count=args.count,
                    spiculation=args.spiculated,
                    size_is_mean_diameter=args.long_axis_mm is None,
                )
            )
            payload["brock_probability"] = b.probability
            payload["brock"] = {"probability": b.probability, "band": b.band, "reason": b.reason}
        except RuleInputError as exc:
            errors["brock"] = str(exc)
    if args.age is None or args.smoking is None or size_for_models is None:
        errors["mayo"] = "needs --age, --smoking and a size (--long-axis-mm, or --diameter-mm)"
    else:
        try:
            m = mayo_probability(
                MayoInput(
                    age_years=args.age,
                    ever_smoker=args.smoking in ("former", "current"),
                    extrathoracic_cancer_over_5y=args.prior_cancer_over_5y,
                    diameter_mm=size_for_models,
                    spiculation=args.spiculated,
                    upper_lobe=upper,
                )
            )
            payload["mayo_probability"] = m.probability
            payload["mayo"] = {"probability": m.probability, "band": m.band, "reason": m.reason}
        except RuleInputError as exc:
            errors["mayo"] = str(exc)
    try:
        lr = lung_rads(
            LungRadsInput(
                composition=args.nodule_type,
                mean_diameter_mm=mean,
                solid_component_mm=args.solid_component_mm,
                status=args.status,
                prior_mean_diameter_mm=args.prior_diameter_mm,
                prior_solid_component_mm=args.prior_solid_component_mm,
                interval_months=args.interval_months,
                benign_calcification=args.benign_calcification,
                fat=args.fat,
                juxtapleural=args.juxtapleural,
                benign_juxtapleural_morphology=args.benign_morphology,
                airway=args.airway,
                suspicious_features=("spiculation",) if args.spiculated else (),
                prior_category=args.prior_category,
                known_lung_cancer=False,
            )
        )
        payload["lung_rads"] = {
            "category": lr.category or None,
            "reason": lr.reason,
            "management": lr.management,
            "review_flags": list(lr.review_flags),
        }
    except RuleInputError as exc:
        errors["lung_rads"] = str(exc)
    if args.risk == "auto":
        high: bool | None = None
        if args.smoking is not None or args.family_history or args.emphysema:
            high, _why = suggest_high_risk(
                smoking_status=args.smoking,
                pack_years=args.pack_years,
                years_since_quit=args.years_since_quit,
                family_history_lung_cancer=args.family_history,
                emphysema_or_fibrosis=args.emphysema,
                age_years=args.age,
            )
    else:
        high = args.risk == "high"
    try:
        nodules = [
            FleischnerInput(
                composition=args.nodule_type,
                mean_diameter_mm=mean,
                solid_component_mm=args.solid_component_mm,
                perifissural=args.juxtapleural and args.benign_morphology,
                benign_calcification=args.benign_calcification,
            )
        ]
        fr = fleischner(
            nodules * max(1, min(args.count, 2)),
            FleischnerPatient(
                age_years=args.age,
                high_risk=high,
                known_cancer=args.known_cancer,
                immunosuppressed=args.immunosuppressed,
                screening=args.screening,
            ),
        )
        payload["fleischner"] = {
            "recommendation": fr.recommendation,
            "reason": fr.reason,
            "applies": fr.applies,
        }
    except RuleInputError as exc:
        errors["fleischner"] = str(exc)
    return payload


def _cmd_risk(args: argparse.Namespace) -> int:
    payload = _risk_payload(args)

    def human() -> str:
        def pct(p: float | None) -> str:
            return "n/a" if p is None else f"{100 * p:.2f}%"

        lines = [
            f"Brock (full model, spiculation): {pct(payload['brock_probability'])}",
            f"Mayo:                            {pct(payload['mayo_probability'])}",
            f"Lung-RADS v2022: {payload['lung_rads']['category']} - {payload['lung_rads']['reason']}",
            f"  management: {payload['lung_rads']['management']}",
            f"Fleischner 2017: {payload['fleischner']['recommendation']}",
            f"  reason: {payload['fleischner']['reason']}",
        ]
        lines += [f"! {name}: {problem}" for name, problem in payload["errors"].items()]
        lines.append("These are guideline computations for a clinician to review.")
        return "\n".join(lines)

    emit(args, payload, human)
    return 0


def _cmd_evaluate_notes(args: argparse.Namespace) -> int:
    from radiology_app.notes.evaluation import evaluate_corpus, load_corpus

    result = evaluate_corpus(load_corpus(args.corpus))
    doc = result.to_json()

    def human() -> str:
        counts = ", ".join(f"{n} {lang}" for lang, n in sorted(result.notes.items()))
        head = f"{'fact':28s} {'precision':>9s} {'recall':>7s} {'accuracy':>8s}   tp  fp  fn"
        lines = [f"notes: {counts}", head]
        for name, s in result.scores.items():
            scores = f"{s.precision:9.3f} {s.recall:7.3f} {s.accuracy:8.3f}"
            lines.append(f"{name:28s} {scores} {s.tp:4d} {s.fp:3d} {s.fn:3d}")
        micro = doc["micro"]
        lines.append(
            f"{'micro':28s} {micro['precision']:9.3f} {micro['recall']:7.3f} {micro['accuracy']:8.3f}"
        )
        lines.append(f"min precision {doc['min_precision']:.3f}, min recall {doc['min_recall']:.3f}")
        lines += [f"  error {n}: {f} expected {e!r}, got {g!r}" for n, f, e, g in result.errors]
        return "\n".join(lines)

    emit(args, doc, human)
    return 0
