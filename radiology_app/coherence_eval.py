"""``evaluate-coherence``: does the differential fit what the image shows and what the note affirms?

Material that the differential never trained on:

* **images**: nodules drawn by the *segmentation* phantom (``segmentation.phantom``, not the renderer the
  fused model was first trained on) inside whole synthetic chests, found by the shipped detector and taken
  through the pipeline's own path (U-Net outline, measurement, crop, Brock, fused model, LIDC branch,
  reconciliation);
* **notes**: the hand-written regression set (``tests/data/notes/regression``), never used in training,
  each read as written and in three counterfactual edits: a personal cancer history added, the same
  cancer moved to a relative, and a denied cancer history added.

Which diagnoses fit which appearance follows the clinical reference, section 7 (:data:`FITTING`).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radiology_app.core.config import Settings
from radiology_app.core.errors import ModelError
from radiology_app.core.findings import BENIGN_CALCIFICATIONS, NoduleFinding
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.core.types import Volume
from radiology_app.pipeline import (
    MODELS,
    PatientContext,
    assess_nodule,
    diagnose_nodules,
    estimate_noise_hu,
    fact_values,
    nodule_from_measurement,
)
from radiology_app.reporting.text import IRREGULAR_FROM, SPICULATED_FROM

#: Appearance kinds drawn, with the segmentation phantom's spec for each.
KINDS: tuple[str, ...] = (
    "solid_smooth",
    "solid_spiculated",
    "part_solid",
    "ground_glass",
    "calcified",
    "fat",
    "cavitary",
    "perifissural",
)
_PRIMARY = ("adenocarcinoma", "squamous_cell_carcinoma", "small_cell_carcinoma")
#: Diagnoses that fit each appearance (clinical reference section 7). Metastasis fits every kind except
#: the definitive benign ones, but only with a known primary.
FITTING: dict[str, frozenset[str]] = {
    # smooth solid: granuloma, hamartoma, carcinoid, lymph node, solid adenocarcinoma, squamous,
    # infection; not small cell (a central mass with adenopathy, rarely a solitary peripheral nodule)
    "solid_smooth": frozenset(
        {
            "adenocarcinoma",
            "squamous_cell_carcinoma",
            "carcinoid",
            "granuloma",
            "hamartoma",
            "infection",
            "intrapulmonary_lymph_node",
        }
    ),
    # spiculation favours a primary lung cancer; organising pneumonia can be spiculated
    "solid_spiculated": frozenset({*_PRIMARY, "infection"}),
    "part_solid": frozenset({"adenocarcinoma", "infection"}),
    "ground_glass": frozenset({"adenocarcinoma", "infection"}),
    "calcified": frozenset({"granuloma", "hamartoma"}),
    "fat": frozenset({"hamartoma"}),
    "cavitary": frozenset({"squamous_cell_carcinoma", "adenocarcinoma", "infection", "granuloma"}),
    "perifissural": frozenset({"intrapulmonary_lymph_node"}),
}
_BENIGN_SIGN_KINDS = frozenset({"calcified", "fat"})
#: Kinds for the personal-history shift: solid nodules without a benign sign.
_SOLID_PLAIN = frozenset({"solid_smooth", "solid_spiculated"})
_CANCERS_EN = ("colorectal adenocarcinoma", "breast cancer", "renal cell carcinoma", "melanoma", "sarcoma")
_CANCERS_ZH = ("结肠癌", "乳腺癌", "肾癌", "黑色素瘤", "骨肉瘤")
_VARIANTS = ("as_written", "personal_history", "relative_history", "denied_history")


@dataclass(frozen=True)
class CoherenceCase:
    """One nodule read with one note variant (``group``: the same nodule and note, all variants)."""

    group: str
    kind: str
    note_id: str
    variant: str
    history: bool
    top: str
    metastasis: float
    malignancy: float
    brock_disagreement: bool
    model_top: str = ""
    model_metastasis: float = 0.0
    model_malignancy: float = 0.0
    signs: str = ""
    sign_measured: bool | None = None

    def model_only(self) -> CoherenceCase:
        """The same case read from the fused model's own differential (before reconciliation)."""
        return dataclasses.replace(
            self, top=self.model_top, metastasis=self.model_metastasis, malignancy=self.model_malignancy
        )


def _spec(kind: str, rng: np.random.Generator) -> Any:
    from segmentation.phantom.nodules import NoduleSpec

    d = float(rng.uniform(7.0, 14.0))
    elong = float(rng.uniform(1.0, 1.3))
    if kind == "solid_smooth":
        return NoduleSpec("solid", d, margin=str(rng.choice(["smooth", "lobulated"])), elongation=elong)
    if kind == "solid_spiculated":
        return NoduleSpec("solid", d, margin="spiculated", elongation=elong)
    if kind == "part_solid":
        return NoduleSpec("part_solid", d + 3.0, solid_diameter_mm=float(rng.uniform(0.3, 0.6)) * (d + 3.0))
    if kind == "ground_glass":
        return NoduleSpec("ground_glass", d + 2.0)
    if kind == "calcified":
        pattern = str(rng.choice(list(BENIGN_CALCIFICATIONS)))
        return NoduleSpec("calcified", d, calcification=pattern)
    if kind == "fat":
        return NoduleSpec("fat", d + 3.0, fat=True)
    if kind == "cavitary":
        return NoduleSpec("cavitary", d + 6.0, margin=str(rng.choice(["lobulated", "spiculated"])))
    return NoduleSpec("perifissural", float(rng.uniform(5.0, 9.0)), elongation=float(rng.uniform(1.3, 1.8)))


def note_variants(text: str, language: str, index: int) -> dict[str, str]:
    """The note as written and its three counterfactual edits (a cancer named by ``index``)."""
    if language == "zh":
        cancer = _CANCERS_ZH[index % len(_CANCERS_ZH)]
        return {
            "as_written": text,
            "personal_history": f"{text}\n既往史：{cancer}术后3年。",
            "relative_history": f"{text}\n家族史：母亲患{cancer}。",
            "denied_history": f"{text}\n否认肿瘤病史。",
        }
    cancer = _CANCERS_EN[index % len(_CANCERS_EN)]
    return {
        "as_written": text,
        "personal_history": f"{text}\nPast history: {cancer}, treated 2021, on surveillance.",
        "relative_history": f"{text}\nFamily history: mother had {cancer}.",
        "denied_history": f"{text}\nNo personal history of cancer.",
    }


def _phantom_nodules(
    seed: int, kinds: Sequence[str], segmenter: Any
) -> Iterator[tuple[Volume, np.ndarray[Any, Any], list[tuple[str, NoduleFinding]], float | None]]:
    """One chest phantom with a nodule of each of ``kinds``: (volume, labels, [(kind, nodule)], noise)."""
    from segmentation import inference
    from segmentation.phantom.chest import make_chest_phantom

    rng = np.random.default_rng(seed)
    specs = [_spec(k, rng) for k in kinds]
    ph = make_chest_phantom(
        seed,
        shape_zyx=(96, 320, 320),
        spacing_zyx_mm=(1.25, 0.9, 0.9),
        nodules=specs,
        noise_hu=float(rng.uniform(12.0, 30.0)),
        kernel="soft",
    )
    volume = Volume(
        hu=ph.hu,
        spacing_zyx_mm=ph.spacing_zyx_mm,
        origin_lps_mm=(0.0, 0.0, 0.0),
        direction=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        slice_thickness_mm=ph.spacing_zyx_mm[0],
    )
    seg = inference.segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=segmenter)
    sp = np.asarray(ph.spacing_zyx_mm)
    found: list[tuple[str, NoduleFinding]] = []
    for i, item in enumerate(seg.nodules):
        m = item.measurement
        centre = np.asarray(m.centroid_zyx) * sp
        for truth, kind in zip(ph.nodules, kinds, strict=False):
            if np.linalg.norm(centre - np.asarray(truth.center_zyx_mm)) <= max(
                5.0, truth.mean_diameter_mm / 2
            ):
                found.append(
                    (kind, nodule_from_measurement(f"N{i + 1}", item.label_id, m, volume, seg.labels))
                )
                break
    yield volume, seg.labels, found, estimate_noise_hu(ph.hu, seg.lung_mask)


def _regression_notes(corpus: Path | None) -> list[tuple[str, str, str, bool]]:
    """``(note_id, language, text, affirmed personal cancer history)`` of the regression set."""
    from radiology_app.notes.evaluation import default_corpus_dir, load_corpus

    notes = load_corpus(corpus or default_corpus_dir() / "regression")
    return [(n.note_id, n.language, n.text, n.labels.get("personal_cancer_history") is True) for n in notes]


def run_coherence(
    *,
    seed: int = 0,
    phantoms: int = 12,
    notes_per_nodule: int = 3,
    corpus: Path | None = None,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[CoherenceCase]:
    """Read every found phantom nodule with regression notes and their counterfactual edits.

    Raises
    ------
    ModelError
        A model could not be loaded.
    NoteError
        The regression set is missing or malformed.
    """
    from radiology_app.core.config import load_settings
    from radiology_app.notes.facts import extract_facts

    notes = _regression_notes(corpus)
    if not notes:
        raise ModelError("the regression note set is empty")
    model = MODELS.diagnosis(settings or load_settings(), saliency=False)
    segmenter = MODELS.segmenter()
    rng = np.random.default_rng(seed)
    cases: list[CoherenceCase] = []
    per = len(KINDS) // 2
    for p in range(phantoms):
        check_cancel(cancel)
        kinds = [KINDS[(p * per + k) % len(KINDS)] for k in range(per)]
        for volume, labels, found, noise in _phantom_nodules(seed * 1000 + p, kinds, segmenter):
            for k in range(notes_per_nodule):
                note_id, language, text, base_history = notes[int(rng.integers(len(notes)))]
                variants = note_variants(text, language, p + k)
                for variant, note in variants.items():
                    if base_history and variant != "as_written":
                        continue
                    facts = fact_values(extract_facts(note).to_json()["facts"])
                    patient = PatientContext.from_facts(facts)
                    assessed = [assess_nodule(n, len(found), patient) for _, n in found]
                    done = diagnose_nodules(model, assessed, volume, labels, note, noise, patient, facts)
                    history = base_history or variant == "personal_history"
                    for j, ((kind, _), n) in enumerate(zip(found, done, strict=True)):
                        cases.append(_case(f"{seed}/{p}:{k}:{j}", kind, note_id, variant, history, n))
        report(on_progress, p + 1, phantoms, "phantoms", "coherence")
    return cases


def _case(
    group: str, kind: str, note_id: str, variant: str, history: bool, n: NoduleFinding
) -> CoherenceCase:
    probs = dict(n.differential)
    own = dict(n.model_differential)
    return CoherenceCase(
        group=group,
        kind=kind,
        note_id=note_id,
        variant=variant,
        history=history,
        top=n.differential[0][0],
        metastasis=float(probs.get("metastasis", 0.0)),
        malignancy=float(n.malignancy_probability or 0.0),
        brock_disagreement=any(r.startswith("AI and Brock disagree") for r in n.reasoning),
        model_top=n.model_differential[0][0] if n.model_differential else "",
        model_metastasis=float(own.get("metastasis", 0.0)),
        model_malignancy=float(n.model_malignancy_probability or 0.0),
        signs=(
            f"{n.mean_diameter_mm} mm {n.composition} spic={n.spiculation_score} calc={n.calcification} "
            f"fat={n.fat} perif={n.perifissural}"
        ),
        sign_measured=sign_measured(kind, n),
    )


def sign_measured(kind: str, n: NoduleFinding) -> bool | None:
    """Whether the measurement found the sign that defines ``kind`` (``None``: the findings record no
    such sign, as for a cavity): fat, a benign calcification pattern, a spiculated margin, the
    perifissural pattern (or a lymph node's shape and place up to 12 mm), the subsolid composition, or a
    smooth solid nodule."""
    score = n.spiculation_score if n.spiculation_score is not None else 0.0
    measured = {
        "fat": bool(n.fat),
        "calcified": n.calcification in BENIGN_CALCIFICATIONS,
        "solid_spiculated": score >= SPICULATED_FROM,
        "perifissural": bool(n.perifissural or n.lymph_node_morphology),
        "part_solid": n.composition == "part_solid",
        "ground_glass": n.composition == "ground_glass",
        "solid_smooth": n.composition == "solid" and score < IRREGULAR_FROM,
    }
    return measured.get(kind)


def write_cases_csv(cases: Sequence[CoherenceCase], path: Path) -> None:
    """One row per case (kind, note, variant, measured signs, tops, probabilities, fits)."""
    import csv

    names = [f.name for f in dataclasses.fields(CoherenceCase)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*names, "fits"])
        for c in cases:
            w.writerow([*(getattr(c, n) for n in names), fits(c)])


def fits(case: CoherenceCase) -> bool:
    """Whether the top diagnosis fits the appearance (metastasis only with a known primary)."""
    if case.top == "metastasis":
        return case.history and case.kind not in _BENIGN_SIGN_KINDS
    return case.top in FITTING[case.kind]


def _rate(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def summarize(cases: Sequence[CoherenceCase]) -> dict[str, Any]:
    """The contract's ``evaluate-coherence`` keys (plus counts), and under ``model_only`` the same
    figures for the fused model's own differential, before reconciliation."""
    out = _summary(cases)
    own = _summary([c.model_only() for c in cases])
    own.pop("brock_disagreement_rate")
    out["model_only"] = own
    return out


def _summary(cases: Sequence[CoherenceCase]) -> dict[str, Any]:
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for c in cases:
        by_kind[c.kind].append(fits(c))
    shift_personal, shift_family, flips = [], [], []
    groups: dict[str, list[CoherenceCase]] = defaultdict(list)
    for c in cases:
        groups[c.group].append(c)
    for group in groups.values():
        v = {c.variant: c for c in group}
        if len(v) < len(_VARIANTS):
            continue
        base = v["as_written"]
        if base.kind in _SOLID_PLAIN:
            shift_personal.append(v["personal_history"].metastasis - base.metastasis)
        shift_family.append(abs(v["relative_history"].metastasis - base.metastasis))
        flips.append(v["denied_history"].top != base.top)
    without = [c for c in cases if not c.history]
    benign = [c for c in cases if c.kind in _BENIGN_SIGN_KINDS]
    return {
        "cases": len(cases),
        "nodules": len({c.group.rsplit(":", 2)[0] + ":" + c.group.rsplit(":", 1)[1] for c in cases}),
        "coherent_top_rate": _rate([fits(c) for c in cases]),
        "coherent_top_rate_by_kind": {k: _rate(by_kind[k]) for k in KINDS if by_kind[k]},
        # measurement against reasoning: how often the kind's sign was measured, and the fit when it was
        "sign_measured_rate_by_kind": {
            k: _rate([c.sign_measured is True for c in cases if c.kind == k])
            for k in KINDS
            if any(c.kind == k and c.sign_measured is not None for c in cases)
        },
        "coherent_top_rate_by_kind_sign_measured": {
            k: _rate([fits(c) for c in cases if c.kind == k and c.sign_measured])
            for k in KINDS
            if any(c.kind == k and c.sign_measured for c in cases)
        },
        "metastasis_top_rate_without_history": _rate([c.top == "metastasis" for c in without]),
        "benign_sign_malignancy_le_0_1_rate": _rate([c.malignancy <= 0.10 for c in benign]),
        "counterfactual": {
            "personal_history_metastasis_shift": _mean(shift_personal),
            "family_history_metastasis_shift": _mean(shift_family),
            "negation_flip_rate": _rate(flips),
            "pairs": len(flips),
        },
        "brock_disagreement_rate": _rate([c.brock_disagreement for c in cases]),
    }


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def as_table(summary: dict[str, Any]) -> str:
    """A short human-readable table of :func:`summarize`'s output."""
    lines = [f"cases {summary['cases']}"]
    for key in (
        "coherent_top_rate",
        "metastasis_top_rate_without_history",
        "benign_sign_malignancy_le_0_1_rate",
        "brock_disagreement_rate",
    ):
        lines.append(f"{key:40s} {summary[key]}")
    measured = summary.get("sign_measured_rate_by_kind", {})
    when = summary.get("coherent_top_rate_by_kind_sign_measured", {})
    for kind, rate in summary["coherent_top_rate_by_kind"].items():
        sign = (
            f"  (sign measured {measured[kind]}, top fits then {when.get(kind)})" if kind in measured else ""
        )
        lines.append(f"  top fits appearance: {kind:20s} {rate}{sign}")
    for key, value in summary["counterfactual"].items():
        lines.append(f"  counterfactual {key:34s} {value}")
    own = summary.get("model_only")
    if own:
        lines.append("fused model alone (before reconciliation):")
        for key in (
            "coherent_top_rate",
            "metastasis_top_rate_without_history",
            "benign_sign_malignancy_le_0_1_rate",
        ):
            lines.append(f"  {key:38s} {own[key]}")
        for key, value in own["counterfactual"].items():
            lines.append(f"  counterfactual {key:34s} {value}")
    return "\n".join(lines)


__all__ = [
    "FITTING",
    "KINDS",
    "CoherenceCase",
    "as_table",
    "fits",
    "note_variants",
    "run_coherence",
    "sign_measured",
    "summarize",
]
