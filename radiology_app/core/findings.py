"""The findings of one analysis run: typed, frozen, JSON round-trippable, editable by pure functions.

A :class:`Findings` is what the pipeline produces, what the clinician reviews in the GUI, what the report
and the DICOM exporters read, and what the study database stores (as JSON, per analysis run). Its JSON
form follows ``cli-contract.md`` (``analyze``): the contract's keys are always present, absent values are
``null``; extra keys are allowed by the contract and used here for review state and provenance.

Coordinates: ``*_lps_mm`` are DICOM patient LPS in millimetres; ``*_zyx`` are voxel indices ``[z, y, x]``
of the analysed series (:attr:`Findings.series_uid`). The instance label map (voxel value = nodule
``label_id``) is too large for JSON; it lives in an ``.npz`` file whose path is :attr:`Findings.labels_path`.

Edits (accept, reject, edit, add, remove, sign) are pure functions returning a new :class:`Findings`; they
never recompute the clinical rules (that needs ``radiology_app.rules``; ``radiology_app.pipeline``
offers wrappers that re-assess after an edit).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from radiology_app.core.errors import RadiologyAppError

ReviewState = Literal["pending", "accepted", "rejected", "edited", "added"]
Source = Literal["model", "clinician"]
REVIEW_STATES: tuple[str, ...] = ("pending", "accepted", "rejected", "edited", "added")
SOURCES: tuple[str, ...] = ("model", "clinician")
COMPOSITIONS: tuple[str, ...] = ("solid", "part_solid", "ground_glass")
#: Calcification patterns that settle benignity (clinical reference 6.1), and every pattern a nodule
#: can carry.
BENIGN_CALCIFICATIONS: tuple[str, ...] = ("central", "laminated", "popcorn", "diffuse")
CALCIFICATIONS: tuple[str, ...] = (*BENIGN_CALCIFICATIONS, "punctate", "eccentric", "indeterminate")

Vec3 = tuple[float, float, float]


class FindingsError(RadiologyAppError):
    """A findings document is malformed, or an edit names a nodule that does not exist."""


@dataclass(frozen=True)
class LungRadsAssessment:
    """A Lung-RADS v2022 category with its management and the reason (the table row that drove it)."""

    category: str | None = None
    management: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class FleischnerAssessment:
    """A Fleischner 2017 recommendation, its reason, and whether the guideline applies at all."""

    recommendation: str | None = None
    reason: str | None = None
    applies: bool | None = None


@dataclass(frozen=True)
class ModelRecord:
    """Provenance of one model used in the run (name, version, SHA-256 of its weights)."""

    name: str
    version: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ContrastReading:
    """How the analysis read intravenous contrast.

    Attributes
    ----------
    enhanced
        Whether the scan was read as contrast-enhanced.
    source
        ``"header"`` (ContrastBolusAgent recorded), ``"image"`` (not recorded, but the blood pool is
        enhanced) or ``"none"``.
    blood_pool_hu
        HU of the blood in the heart and great vessels, when it could be measured.
    calcium_threshold_hu
        HU from which a voxel counted as calcium (raised above the blood on an enhanced scan).
    """

    enhanced: bool
    source: str
    blood_pool_hu: float | None
    calcium_threshold_hu: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ContrastReading | None:
        """Rebuild from :func:`dataclasses.asdict` output (``None`` stays ``None``)."""
        if not data:
            return None
        pool = data.get("blood_pool_hu")
        return cls(
            enhanced=bool(data.get("enhanced")),
            source=str(data.get("source") or "none"),
            blood_pool_hu=None if pool is None else float(pool),
            calcium_threshold_hu=float(data.get("calcium_threshold_hu") or 0.0),
        )


@dataclass(frozen=True)
class NoduleFinding:
    """One nodule: location, size, density, morphology, guideline assessment and differential.

    Attributes
    ----------
    id
        Stable identifier within the study (``"N1"``, ``"N2"``...).
    label_id
        Value of this nodule in the instance label map (0 if it has no mask).
    centroid_lps_mm
        Centroid in patient LPS, mm.
    bbox_lps_mm
        Bounding box as ``(min xyz, max xyz)`` in LPS mm.
    centroid_zyx
        Centroid as a fractional voxel index ``(z, y, x)``.
    bbox_zyx
        Voxel bounding box ``((zmin, ymin, xmin), (zmax, ymax, xmax))``, inclusive.
    key_slice_z
        Index of the axial slice shown as key image (largest nodule area).
    long_axis_mm, short_axis_mm, mean_diameter_mm
        Axial long axis, perpendicular short axis and their mean (one decimal, round half up), mm.
    volume_mm3
        Volume in mm^3.
    mean_hu, min_hu, max_hu
        Attenuation statistics inside the mask, HU.
    composition
        ``"solid"``, ``"part_solid"`` or ``"ground_glass"``.
    solid_component_mm
        Mean diameter of the solid component (part-solid nodules), mm.
    calcification
        Calcification pattern (``"central"``, ``"laminated"``, ``"popcorn"``, ``"diffuse"``,
        ``"indeterminate"``...) or ``None`` when not calcified.
    fat
        Macroscopic fat inside the nodule.
    side, lobe
        ``"left"``/``"right"`` and lobe or zone (``"RUL"``, ``"LLL"``, ``"left upper zone"``...).
    juxtapleural
        Touches the pleura.
    perifissural
        Perifissural pattern: under 10 mm, solid, smooth, flat, on a fissure or the pleura.
    lymph_node_morphology
        The same shape and place up to 12 mm (an intrapulmonary lymph node's size): it leads the
        differential, while Lung-RADS keeps its size category from 10 mm.
    on_fissure_or_pleura
        Touches the pleura, or a fissure runs into it (looked for in solid nodules up to 12 mm without
        calcium or fat): where an intrapulmonary lymph node lies, whatever its shape.
    spiculation_score
        Margin irregularity in ``[0, 1]``.
    lung_rads, fleischner
        Per-nodule guideline assessments.
    brock_probability
        Brock (PanCan full model) malignancy probability in ``[0, 1]``.
    differential
        Ranked ``(diagnosis, probability)`` pairs from the fused model.
    malignancy_probability
        The product's malignancy probability in ``[0, 1]``: Brock updated by the AI readings, held low
        by definitive benign signs (``radiology_app.diagnosis.coherence``).
    model_differential
        The fused model's own ``(diagnosis, probability)`` pairs, before reconciliation.
    model_malignancy_probability
        The fused model's own malignancy probability, before reconciliation.
    lidc_malignancy_probability
        The 2-D image branch's (trained on real LIDC crops) malignancy probability.
    reasoning
        How the differential and the malignancy probability were reconciled, in words.
    modality_weights
        Weight the fused model gave each modality (``image``, ``text``, maybe ``joint``).
    evidence
        Note phrases that weighed most.
    review
        Clinician review state.
    source
        ``"model"`` (found by the pipeline) or ``"clinician"`` (added by a click).
    """

    id: str
    label_id: int = 0
    centroid_lps_mm: Vec3 | None = None
    bbox_lps_mm: tuple[Vec3, Vec3] | None = None
    centroid_zyx: Vec3 | None = None
    bbox_zyx: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None
    key_slice_z: int | None = None
    long_axis_mm: float | None = None
    short_axis_mm: float | None = None
    mean_diameter_mm: float | None = None
    volume_mm3: float | None = None
    mean_hu: float | None = None
    min_hu: float | None = None
    max_hu: float | None = None
    composition: str | None = None
    solid_component_mm: float | None = None
    calcification: str | None = None
    fat: bool | None = None
    side: str | None = None
    lobe: str | None = None
    juxtapleural: bool | None = None
    perifissural: bool | None = None
    on_fissure_or_pleura: bool | None = None
    lymph_node_morphology: bool | None = None
    spiculation_score: float | None = None
    lung_rads: LungRadsAssessment = field(default_factory=LungRadsAssessment)
    fleischner: FleischnerAssessment = field(default_factory=FleischnerAssessment)
    brock_probability: float | None = None
    differential: tuple[tuple[str, float], ...] = ()
    malignancy_probability: float | None = None
    model_differential: tuple[tuple[str, float], ...] = ()
    model_malignancy_probability: float | None = None
    lidc_malignancy_probability: float | None = None
    reasoning: tuple[str, ...] = ()
    modality_weights: Mapping[str, float] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    review: ReviewState = "pending"
    source: Source = "model"

    @property
    def is_reported(self) -> bool:
        """Whether the nodule belongs in the report and the DICOM outputs (not rejected)."""
        return self.review != "rejected"

    @property
    def top_diagnosis(self) -> tuple[str, float] | None:
        """The most probable diagnosis, or ``None`` without a differential."""
        return self.differential[0] if self.differential else None

    def to_json(self) -> dict[str, Any]:
        """Return the contract's JSON object for this nodule (absent values ``null``)."""
        return {
            "id": self.id,
            "label_id": self.label_id,
            "centroid_lps_mm": _vec(self.centroid_lps_mm),
            "bbox_lps_mm": None if self.bbox_lps_mm is None else [_vec(v) for v in self.bbox_lps_mm],
            "centroid_zyx": _vec(self.centroid_zyx),
            "bbox_zyx": None if self.bbox_zyx is None else [list(v) for v in self.bbox_zyx],
            "key_slice_z": self.key_slice_z,
            "long_axis_mm": _num(self.long_axis_mm),
            "short_axis_mm": _num(self.short_axis_mm),
            "mean_diameter_mm": _num(self.mean_diameter_mm),
            "volume_mm3": _num(self.volume_mm3),
            "mean_hu": _num(self.mean_hu),
            "min_hu": _num(self.min_hu),
            "max_hu": _num(self.max_hu),
            "composition": self.composition,
            "solid_component_mm": _num(self.solid_component_mm),
            "calcification": self.calcification,
            "fat": self.fat,
            "side": self.side,
            "lobe": self.lobe,
            "juxtapleural": self.juxtapleural,
            "perifissural": self.perifissural,
            "on_fissure_or_pleura": self.on_fissure_or_pleura,
            "lymph_node_morphology": self.lymph_node_morphology,
            "spiculation_score": _num(self.spiculation_score),
            "lung_rads": dataclasses.asdict(self.lung_rads),
            "fleischner": dataclasses.asdict(self.fleischner),
            "brock_probability": _num(self.brock_probability),
            "differential": [{"diagnosis": d, "probability": _num(p)} for d, p in self.differential],
            "malignancy_probability": _num(self.malignancy_probability),
            "model_differential": [
                {"diagnosis": d, "probability": _num(p)} for d, p in self.model_differential
            ],
            "model_malignancy_probability": _num(self.model_malignancy_probability),
            "lidc_malignancy_probability": _num(self.lidc_malignancy_probability),
            "reasoning": list(self.reasoning),
            "modality_weights": {
                "image": _num(self.modality_weights.get("image")),
                "text": _num(self.modality_weights.get("text")),
                **{k: _num(v) for k, v in self.modality_weights.items() if k not in ("image", "text")},
            },
            "evidence": list(self.evidence),
            "review": self.review,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NoduleFinding:
        """Build a nodule from its JSON object.

        Raises
        ------
        FindingsError
            If ``id`` is missing or a field has the wrong shape.
        """
        if not isinstance(data, Mapping) or not data.get("id"):
            raise FindingsError("nodule JSON object without an 'id'")
        try:
            bbox = data.get("bbox_lps_mm")
            bbox_zyx = data.get("bbox_zyx")
            lr = data.get("lung_rads") or {}
            fl = data.get("fleischner") or {}
            weights = {
                str(k): float(v) for k, v in (data.get("modality_weights") or {}).items() if v is not None
            }
            review = data.get("review") or "pending"
            source = data.get("source") or "model"
            if review not in REVIEW_STATES or source not in SOURCES:
                raise FindingsError(f"nodule {data['id']}: unknown review {review!r} or source {source!r}")
            return cls(
                id=str(data["id"]),
                label_id=int(data.get("label_id") or 0),
                centroid_lps_mm=_tvec(data.get("centroid_lps_mm")),
                bbox_lps_mm=None if bbox is None else (_req_vec(bbox[0]), _req_vec(bbox[1])),
                centroid_zyx=_tvec(data.get("centroid_zyx")),
                bbox_zyx=None if bbox_zyx is None else (_ivec(bbox_zyx[0]), _ivec(bbox_zyx[1])),
                key_slice_z=_opt_int(data.get("key_slice_z")),
                long_axis_mm=_opt_float(data.get("long_axis_mm")),
                short_axis_mm=_opt_float(data.get("short_axis_mm")),
                mean_diameter_mm=_opt_float(data.get("mean_diameter_mm")),
                volume_mm3=_opt_float(data.get("volume_mm3")),
                mean_hu=_opt_float(data.get("mean_hu")),
                min_hu=_opt_float(data.get("min_hu")),
                max_hu=_opt_float(data.get("max_hu")),
                composition=data.get("composition"),
                solid_component_mm=_opt_float(data.get("solid_component_mm")),
                calcification=data.get("calcification"),
                fat=data.get("fat"),
                side=data.get("side"),
                lobe=data.get("lobe"),
                juxtapleural=data.get("juxtapleural"),
                perifissural=data.get("perifissural"),
                on_fissure_or_pleura=data.get("on_fissure_or_pleura"),
                lymph_node_morphology=data.get("lymph_node_morphology"),
                spiculation_score=_opt_float(data.get("spiculation_score")),
                lung_rads=LungRadsAssessment(lr.get("category"), lr.get("management"), lr.get("reason")),
                fleischner=FleischnerAssessment(
                    fl.get("recommendation"), fl.get("reason"), fl.get("applies")
                ),
                brock_probability=_opt_float(data.get("brock_probability")),
                differential=tuple(
                    (str(e["diagnosis"]), float(e["probability"])) for e in data.get("differential") or ()
                ),
                malignancy_probability=_opt_float(data.get("malignancy_probability")),
                model_differential=tuple(
                    (str(e["diagnosis"]), float(e["probability"]))
                    for e in data.get("model_differential") or ()
                ),
                model_malignancy_probability=_opt_float(data.get("model_malignancy_probability")),
                lidc_malignancy_probability=_opt_float(data.get("lidc_malignancy_probability")),
                reasoning=tuple(str(r) for r in data.get("reasoning") or ()),
                modality_weights=weights,
                evidence=tuple(str(e) for e in data.get("evidence") or ()),
                review=cast(ReviewState, review),
                source=cast(Source, source),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FindingsError(f"nodule {data.get('id')}: malformed JSON ({exc})") from exc


@dataclass(frozen=True)
class Findings:
    """Everything one analysis run found in one series, plus its review state.

    Attributes
    ----------
    study_uid, series_uid
        The study and the analysed series.
    run_id
        The analysis-run row in the study database, once stored.
    created_at
        ISO 8601 UTC time the analysis finished.
    warnings
        Recoverable problems met on the way (series choice, geometry, missing note...).
    facts
        Facts extracted from the clinical note, in the contract shape ``{name: {value, span, text}}``.
    note_text
        The clinical note the facts were read from (shown in the report's clinical information).
    models
        Provenance of every model used.
    nodules
        The nodules, in id order.
    lung_rads, fleischner
        The exam-level assessments (worst nodule / guideline for the whole exam).
    impression
        Numbered impression lines of the report.
    reviewer, signed_at
        Who signed, and when (ISO 8601 UTC); ``None`` while unsigned.
    labels_path
        ``.npz`` file holding the instance label map (key ``labels``, int16 ``[z, y, x]``) of the series.
    series_number
        SeriesNumber of the analysed series (for image references), when known.
    report
        Path of the PDF report, once written.
    patient_age_years, patient_sex
        Age (years) and sex (``"F"``/``"M"``) from the DICOM headers, for the rules (the note's facts
        fill in when these are ``None``).
    contrast
        How intravenous contrast was read (``None`` for findings made before this was recorded).
    """

    study_uid: str
    series_uid: str
    run_id: int | None = None
    created_at: str | None = None
    warnings: tuple[str, ...] = ()
    facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    note_text: str | None = None
    models: tuple[ModelRecord, ...] = ()
    nodules: tuple[NoduleFinding, ...] = ()
    lung_rads: LungRadsAssessment = field(default_factory=LungRadsAssessment)
    fleischner: FleischnerAssessment = field(default_factory=FleischnerAssessment)
    impression: tuple[str, ...] = ()
    reviewer: str | None = None
    signed_at: str | None = None
    labels_path: str | None = None
    series_number: int | None = None
    report: str | None = None
    patient_age_years: int | None = None
    patient_sex: str | None = None
    contrast: ContrastReading | None = None

    # -- queries -------------------------------------------------------------------------------------

    @property
    def reported_nodules(self) -> tuple[NoduleFinding, ...]:
        """Nodules that go into the report and DICOM outputs (every nodule not rejected)."""
        return tuple(n for n in self.nodules if n.is_reported)

    @property
    def is_signed(self) -> bool:
        """Whether a reviewer signed these findings."""
        return self.signed_at is not None

    def nodule(self, nodule_id: str) -> NoduleFinding:
        """Return the nodule with ``nodule_id``.

        Raises
        ------
        FindingsError
            If there is no such nodule.
        """
        for n in self.nodules:
            if n.id == nodule_id:
                return n
        raise FindingsError(f"study {self.study_uid}: no nodule {nodule_id!r} in these findings")

    def fact_value(self, name: str) -> Any:
        """Value of one extracted fact, or ``None`` when the note does not say."""
        entry = self.facts.get(name)
        return None if entry is None else entry.get("value")

    # -- JSON ----------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Return the contract's JSON document (``analyze``): contract keys always present."""
        return {
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "series_number": self.series_number,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "warnings": list(self.warnings),
            "facts": {k: dict(v) for k, v in self.facts.items()},
            "note_text": self.note_text,
            "models": [dataclasses.asdict(m) for m in self.models],
            "nodules": [n.to_json() for n in self.nodules],
            "lung_rads": dataclasses.asdict(self.lung_rads),
            "fleischner": dataclasses.asdict(self.fleischner),
            "impression": list(self.impression),
            "reviewer": self.reviewer,
            "signed_at": self.signed_at,
            "labels_path": self.labels_path,
            "report": self.report,
            "patient_age_years": self.patient_age_years,
            "patient_sex": self.patient_sex,
            "contrast": dataclasses.asdict(self.contrast) if self.contrast is not None else None,
        }

    def to_json_text(self) -> str:
        """The JSON document as text (UTF-8 safe, indented)."""
        return json.dumps(self.to_json(), ensure_ascii=False, indent=2)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> Findings:
        """Build findings from the JSON document (a mapping or its text).

        Raises
        ------
        FindingsError
            If the document is not valid JSON or lacks ``study_uid``/``series_uid``.
        """
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise FindingsError(f"findings are not valid JSON ({exc})") from exc
        if not isinstance(data, Mapping) or "study_uid" not in data or "series_uid" not in data:
            raise FindingsError("findings JSON must be an object with 'study_uid' and 'series_uid'")
        lr = data.get("lung_rads") or {}
        fl = data.get("fleischner") or {}
        facts_raw = data.get("facts") or {}
        if not isinstance(facts_raw, Mapping):
            raise FindingsError("findings JSON: 'facts' must be an object")
        try:
            models = tuple(
                ModelRecord(str(m["name"]), m.get("version"), m.get("sha256"))
                for m in data.get("models") or ()
            )
        except (KeyError, TypeError) as exc:
            raise FindingsError(f"findings JSON: malformed 'models' ({exc})") from exc
        return cls(
            study_uid=str(data["study_uid"]),
            series_uid=str(data["series_uid"]),
            run_id=_opt_int(data.get("run_id")),
            created_at=data.get("created_at"),
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
            facts={
                str(k): dict(v) if isinstance(v, Mapping) else {"value": v, "span": None, "text": None}
                for k, v in facts_raw.items()
            },
            note_text=data.get("note_text"),
            models=models,
            nodules=tuple(NoduleFinding.from_json(n) for n in data.get("nodules") or ()),
            lung_rads=LungRadsAssessment(lr.get("category"), lr.get("management"), lr.get("reason")),
            fleischner=FleischnerAssessment(fl.get("recommendation"), fl.get("reason"), fl.get("applies")),
            impression=tuple(str(s) for s in data.get("impression") or ()),
            reviewer=data.get("reviewer"),
            signed_at=data.get("signed_at"),
            labels_path=data.get("labels_path"),
            series_number=_opt_int(data.get("series_number")),
            report=data.get("report"),
            patient_age_years=_opt_int(data.get("patient_age_years")),
            patient_sex=data.get("patient_sex"),
            contrast=ContrastReading.from_json(data.get("contrast")),
        )


# -- pure edits -----------------------------------------------------------------------------------------


def _replace_nodule(findings: Findings, nodule_id: str, new: NoduleFinding | None) -> Findings:
    findings.nodule(nodule_id)  # raises when absent
    nodules: list[NoduleFinding] = []
    for n in findings.nodules:
        if n.id != nodule_id:
            nodules.append(n)
        elif new is not None:
            nodules.append(new)
    return dataclasses.replace(findings, nodules=tuple(nodules), signed_at=None)


def accept_nodule(findings: Findings, nodule_id: str) -> Findings:
    """Mark a nodule accepted (a clinician-added or edited nodule keeps its state). Clears the signature."""
    n = findings.nodule(nodule_id)
    review: ReviewState = n.review if n.review in ("added", "edited") else "accepted"
    return _replace_nodule(findings, nodule_id, dataclasses.replace(n, review=review))


def reject_nodule(findings: Findings, nodule_id: str) -> Findings:
    """Mark a nodule rejected (kept in the findings for the audit, left out of report and DICOM)."""
    n = findings.nodule(nodule_id)
    return _replace_nodule(findings, nodule_id, dataclasses.replace(n, review="rejected"))


def edit_nodule(findings: Findings, nodule_id: str, **changes: Any) -> Findings:
    """Change fields of a nodule (e.g. ``composition="part_solid", solid_component_mm=4.0``).

    The nodule becomes ``"edited"`` (``"added"`` stays ``"added"``). Rules are *not* re-run here; use
    ``radiology_app.pipeline.edit_and_reassess`` for that.

    Raises
    ------
    FindingsError
        If the nodule does not exist, a field is unknown or protected, or a composition is invalid.
    """
    n = findings.nodule(nodule_id)
    known = {f.name for f in dataclasses.fields(NoduleFinding)} - {"id", "review", "source"}
    bad = sorted(set(changes) - known)
    if bad:
        raise FindingsError(f"nodule {nodule_id}: cannot edit field(s) {', '.join(bad)}")
    if "composition" in changes and changes["composition"] not in COMPOSITIONS:
        raise FindingsError(f"nodule {nodule_id}: composition must be one of {', '.join(COMPOSITIONS)}")
    if changes.get("calcification") not in (None, *CALCIFICATIONS):
        raise FindingsError(
            f"nodule {nodule_id}: calcification must be none or one of {', '.join(CALCIFICATIONS)}"
        )
    if "fat" in changes and not isinstance(changes["fat"], bool):
        raise FindingsError(f"nodule {nodule_id}: fat must be true or false")
    review: ReviewState = "added" if n.review == "added" else "edited"
    return _replace_nodule(findings, nodule_id, dataclasses.replace(n, review=review, **changes))


def next_nodule_id(findings: Findings) -> str:
    """The next free ``"N<k>"`` id."""
    used = {n.id for n in findings.nodules}
    k = len(findings.nodules) + 1
    while f"N{k}" in used:
        k += 1
    return f"N{k}"


def add_nodule(findings: Findings, nodule: NoduleFinding) -> Findings:
    """Append a clinician-added nodule (its review becomes ``"added"``, source ``"clinician"``).

    Raises
    ------
    FindingsError
        If the id is already used.
    """
    if any(n.id == nodule.id for n in findings.nodules):
        raise FindingsError(f"study {findings.study_uid}: nodule id {nodule.id!r} already exists")
    added = dataclasses.replace(nodule, review="added", source="clinician")
    return dataclasses.replace(findings, nodules=(*findings.nodules, added), signed_at=None)


def remove_nodule(findings: Findings, nodule_id: str) -> Findings:
    """Delete a nodule entirely (for clinician-added mistakes; model findings are better rejected)."""
    return _replace_nodule(findings, nodule_id, None)


def sign_findings(findings: Findings, reviewer: str, signed_at: dt.datetime | None = None) -> Findings:
    """Record the reviewer's sign-off; pending nodules become accepted.

    Raises
    ------
    FindingsError
        If ``reviewer`` is empty.
    """
    if not reviewer.strip():
        raise FindingsError(f"study {findings.study_uid}: a reviewer name is needed to sign")
    when = (signed_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    nodules = tuple(
        dataclasses.replace(n, review="accepted") if n.review == "pending" else n for n in findings.nodules
    )
    return dataclasses.replace(
        findings, nodules=nodules, reviewer=reviewer.strip(), signed_at=when.isoformat()
    )


# -- small JSON helpers ---------------------------------------------------------------------------------


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _vec(v: Sequence[float] | None) -> list[float] | None:
    return None if v is None else [float(x) for x in v]


def _req_vec(v: Sequence[float]) -> Vec3:
    x, y, z = (float(a) for a in v)
    return x, y, z


def _tvec(v: Sequence[float] | None) -> Vec3 | None:
    return None if v is None else _req_vec(v)


def _ivec(v: Sequence[int]) -> tuple[int, int, int]:
    a, b, c = (int(x) for x in v)
    return a, b, c


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)
