"""The analysis pipeline, Qt-free: study -> series -> volume -> lung mask -> nodules -> measurements ->
facts -> rules -> differential per nodule -> :class:`~radiology_app.core.findings.Findings`.

The command line, the batch runner, the GUI and the tests all call these functions:

- :func:`analyze_study` runs the whole flow with progress and cancel, reports each nodule as soon as it
  is assessed (``on_nodule``), stores the findings as an analysis run in the study database and the
  instance label map next to it (``analyses/<run_id>/labels.npz`` in the data folder).
- :func:`add_nodule_at` (click-to-segment), :func:`review_nodule` and :func:`reassess` apply clinician
  edits and re-run the clinical rules; :func:`store_findings` saves the reviewed state.
- :func:`write_report` renders the PDF, :func:`export_dicom` writes SEG, SR and the encapsulated PDF.

Models are loaded once per process and cached (:class:`ModelRegistry`); torch is imported only when a
model is first needed, so importing this module stays cheap.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radiology_app.core.config import Settings, app_paths, load_settings
from radiology_app.core.errors import (
    ModelError,
    ModelIntegrityError,
    OperationCancelled,
    ReportError,
    VolumeError,
)
from radiology_app.core.findings import (
    BENIGN_CALCIFICATIONS,
    ContrastReading,
    Findings,
    FleischnerAssessment,
    LungRadsAssessment,
    ModelRecord,
    NoduleFinding,
    accept_nodule,
    add_nodule,
    edit_nodule,
    next_nodule_id,
    reject_nodule,
    remove_nodule,
    sign_findings,
)
from radiology_app.core.guard import is_recoverable, one_line
from radiology_app.core.logs import hash_uid
from radiology_app.core.progress import CancelToken, Progress, ProgressCallback, check_cancel, report, scaled
from radiology_app.core.types import Instance, Patient, Study, Volume
from radiology_app.reporting.text import IRREGULAR_FROM, SPICULATED_FROM, compose_impression
from radiology_app.store.database import StudyDatabase

log = logging.getLogger(__name__)

NoduleCallback = Callable[[NoduleFinding], None]
THIN_SLICE_MM = 1.5
#: Nodules per call of the diagnosis model.
DIAGNOSIS_BATCH = 4


# -- model registry ------------------------------------------------------------------------------


class ModelRegistry:
    """Loads each model once per process and hands out the cached instance (thread-safe).

    The nodule segmenter and the fused diagnosis model are loaded lazily, on first use; the diagnosis
    model is keyed by the settings that change it (backend, text backbone, adapter). Each kind has its
    own lock, so one can load (e.g. the diagnosis model in the background) while the other does.
    """

    def __init__(self) -> None:
        self._segmenter_lock = threading.Lock()
        self._diagnosis_lock = threading.Lock()
        self._segmenters: dict[str, Any] = {}
        self._diagnosis: dict[tuple[str, str, str, bool], Any] = {}

    def segmenter(self, settings: Settings | None = None) -> Any:
        """The nodule segmenter (``segmentation.inference.load_model()``) on the settings' backend.

        With ``segmentation_backend == "onnxruntime"`` its networks run through ONNX Runtime, exported
        on first use into ``<data folder>/onnx`` (hash-checked there on every load).

        Raises
        ------
        ModelIntegrityError
            If the weights do not match their model card.
        ModelError
            If the model cannot be loaded or exported.
        """
        backend = (settings or load_settings()).segmentation_backend
        with self._segmenter_lock:
            if backend not in self._segmenters:
                from segmentation import errors as seg_errors
                from segmentation import inference

                try:
                    self._segmenters[backend] = inference.load_model(
                        backend=backend, onnx_cache=app_paths().home / "onnx"
                    )
                except seg_errors.ModelIntegrityError as exc:
                    raise ModelIntegrityError(str(exc)) from exc
                except (seg_errors.SegmentationError, OSError, ValueError, RuntimeError) as exc:
                    raise ModelError(f"cannot load the nodule segmentation model ({exc})") from exc
            return self._segmenters[backend]

    def diagnosis(self, settings: Settings, *, saliency: bool = True) -> Any:
        """The fused diagnosis model for ``settings`` (``radiology_app.diagnosis.api``).

        Parameters
        ----------
        saliency
            Whether its predictions carry image saliency maps (the GUI's overlay). The pipeline asks
            for a model without (about 8x faster per nodule on the CPU, and it batches).

        Raises
        ------
        ModelError
            If the model cannot be loaded (including a hash mismatch).
        """
        key = (settings.inference_backend, settings.text_backbone_dir, settings.adapter_dir, saliency)
        with self._diagnosis_lock:
            if key not in self._diagnosis:
                from radiology_app.diagnosis import api

                self._diagnosis[key] = api.load_diagnosis_model(settings, saliency=saliency)
            return self._diagnosis[key]

    def clear(self) -> None:
        """Forget every loaded model (e.g. after the settings changed)."""
        with self._segmenter_lock:
            self._segmenters.clear()
        with self._diagnosis_lock:
            self._diagnosis.clear()


#: The process-wide registry.
MODELS = ModelRegistry()


# -- small helpers ------------------------------------------------------------------------------


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _age_years(patient: Patient | None, study: Study | None) -> int | None:
    if study is not None and study.patient_age_years is not None:
        return study.patient_age_years
    if patient is not None and patient.birth_date is not None and study is not None and study.study_date:
        b, s = patient.birth_date, study.study_date
        return s.year - b.year - ((s.month, s.day) < (b.month, b.day))
    return None


def _facts_json(text: str | None) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Extract facts from a note in the contract shape; problems become warnings."""
    if not text or not text.strip():
        return {}, []
    try:
        from radiology_app.notes.facts import extract_facts
    except ImportError:
        return {}, ["the note fact extractor is not installed: facts were not read from the note"]
    facts: dict[str, dict[str, Any]] = extract_facts(text).to_json()["facts"]
    return facts, []


def fact_values(facts: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: value}`` of contract-shaped facts (``{name: {"value": ...}}``)."""
    return {k: v.get("value") if isinstance(v, Mapping) else v for k, v in facts.items()}


def estimate_noise_hu(hu: npt.NDArray[np.generic], lung: npt.NDArray[np.generic] | None) -> float | None:
    """Image noise (HU) from neighbouring-pixel differences inside the lungs (robust MAD estimate).

    Texture adds a little, so this is an upper bound of the quantum noise; it is the quality signal the
    diagnosis model's router expects.
    """
    z = hu.shape[0]
    picks = sorted({z // 3, z // 2, (2 * z) // 3})
    diffs = []
    for k in picks:
        sl = np.asarray(hu[k], dtype=np.float32)
        d = sl[:, 1:] - sl[:, :-1]
        if lung is not None:
            m = np.asarray(lung[k], dtype=bool)
            m = m[:, 1:] & m[:, :-1]
            d = d[m]
        diffs.append(np.ravel(d))
    alld = np.concatenate(diffs) if diffs else np.zeros(0, dtype=np.float32)
    if alld.size < 100:
        return None
    mad = float(np.median(np.abs(alld - np.median(alld))))
    return 1.4826 * mad / float(np.sqrt(2.0))


def _key_slice(
    labels: npt.NDArray[np.generic],
    label_id: int,
    bbox_zyx: tuple[tuple[int, int, int], tuple[int, int, int]] | None,
) -> int | None:
    if bbox_zyx is None:
        zs = np.nonzero(np.any(labels == label_id, axis=(1, 2)))[0]
        if zs.size == 0:
            return None
        lo, hi = int(zs[0]), int(zs[-1])
    else:
        lo, hi = int(bbox_zyx[0][0]), int(bbox_zyx[1][0])
    sub = labels[lo : hi + 1] == label_id
    areas = sub.reshape(sub.shape[0], -1).sum(axis=1)
    return lo + int(np.argmax(areas)) if areas.size and areas.max() > 0 else None


def instance_numbers_by_slice(instances: Sequence[Instance], volume: Volume) -> list[int] | None:
    """InstanceNumber of each slice index of ``volume`` (matched by position), or ``None`` if unknown."""
    from radiology_app.dicom.folder import slice_index_by_sop

    index = slice_index_by_sop(instances, volume)
    out: list[int | None] = [None] * volume.shape_zyx[0]
    for inst in instances:
        k = index.get(inst.sop_instance_uid)
        if k is not None and inst.instance_number is not None:
            out[k] = inst.instance_number
    if any(v is None for v in out):
        return None
    return [int(v) for v in out if v is not None]


# -- measurements -> findings ------------------------------------------------------------------------------


def _vec3(v: Sequence[float]) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])


def nodule_from_measurement(
    nodule_id: str, label_id: int, m: Any, volume: Volume, labels: npt.NDArray[np.generic] | None
) -> NoduleFinding:
    """Turn a ``segmentation.measure.NoduleMeasurement`` into a :class:`NoduleFinding` (LPS, key slice)."""
    centroid = _vec3(m.centroid_zyx)
    bbox = getattr(m, "bbox_zyx", None)
    bbox_zyx = None
    bbox_lps = None
    if bbox is not None:
        lo = tuple(int(v) for v in bbox[0])
        hi = tuple(int(v) for v in bbox[1])
        bbox_zyx = ((lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2]))
        corners = np.array(
            [
                volume.index_to_lps((float(a), float(b), float(c)))
                for a in (lo[0], hi[0])
                for b in (lo[1], hi[1])
                for c in (lo[2], hi[2])
            ]
        )
        bbox_lps = (_vec3(corners.min(axis=0)), _vec3(corners.max(axis=0)))
    pattern = getattr(m, "calcification_pattern", None)
    calcification = (pattern or "indeterminate") if getattr(m, "calcification", False) else None
    key = _key_slice(np.asarray(labels), label_id, bbox_zyx) if labels is not None else None
    if key is None:
        key = round(centroid[0])

    def opt(name: str) -> float | None:
        v = getattr(m, name, None)
        return None if v is None else float(v)

    return NoduleFinding(
        id=nodule_id,
        label_id=label_id,
        centroid_lps_mm=volume.index_to_lps(centroid),
        bbox_lps_mm=bbox_lps,
        centroid_zyx=centroid,
        bbox_zyx=bbox_zyx,
        key_slice_z=key,
        long_axis_mm=opt("long_axis_mm"),
        short_axis_mm=opt("short_axis_mm"),
        mean_diameter_mm=opt("mean_diameter_mm"),
        volume_mm3=opt("volume_mm3"),
        mean_hu=opt("mean_hu"),
        min_hu=opt("min_hu"),
        max_hu=opt("max_hu"),
        composition=getattr(m, "composition", None),
        solid_component_mm=opt("solid_component_mm"),
        calcification=calcification,
        fat=getattr(m, "fat", None),
        side=getattr(m, "side", None),
        lobe=getattr(m, "lobe", None),
        juxtapleural=getattr(m, "juxtapleural", None),
        perifissural=getattr(m, "perifissural", None),
        on_fissure_or_pleura=getattr(m, "on_fissure_or_pleura", None),
        lymph_node_morphology=getattr(m, "lymph_node_morphology", None),
        spiculation_score=opt("spiculation_score"),
    )


# -- rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientContext:
    """The patient facts the rules need, from DICOM first and the note second."""

    age_years: float | None
    female: bool | None
    smoking_status: str | None
    pack_years: float | None
    years_since_quit: float | None
    family_history: bool | None
    emphysema: bool | None
    known_cancer: bool | None
    immunosuppressed: bool | None

    @classmethod
    def from_findings(cls, f: Findings) -> PatientContext:
        """Build from the findings' stored DICOM age/sex and the note facts."""
        return cls.from_facts(fact_values(f.facts), age_years=f.patient_age_years, sex=f.patient_sex)

    @classmethod
    def from_facts(
        cls, facts: Mapping[str, Any], *, age_years: float | None = None, sex: str | None = None
    ) -> PatientContext:
        """Build from note fact values (``{name: value}``); DICOM age and sex win when given."""
        age = age_years if age_years is not None else facts.get("age")
        sex = sex or facts.get("sex")
        return cls(
            age_years=None if age is None else float(age),
            female=None if sex not in ("F", "M") else sex == "F",
            smoking_status=facts.get("smoking_status"),
            pack_years=facts.get("pack_years"),
            years_since_quit=facts.get("years_since_quit"),
            family_history=facts.get("family_history_lung_cancer"),
            emphysema=facts.get("emphysema_or_copd"),
            known_cancer=facts.get("personal_cancer_history"),
            immunosuppressed=facts.get("immunosuppressed"),
        )


def _solid_part(n: NoduleFinding) -> float | None:
    """The solid component for the rules: part-solid nodules only, never larger than the whole nodule.

    The measurement takes the solid component's own long/short axes, which on an irregular nodule can
    come out a little larger than the whole nodule's mean diameter; the guidelines presuppose solid <=
    total, so the rules get the smaller of the two (the report still shows the measured value).
    """
    if n.composition != "part_solid" or n.solid_component_mm is None:
        return None
    if n.mean_diameter_mm is None:
        return n.solid_component_mm
    return min(n.solid_component_mm, n.mean_diameter_mm)


#: Volume over that of a ball of the long axis's diameter at or under which a nodule is "oval or
#: lentiform" rather than round (an ellipsoid with both other axes at 0.84 of the long one: 0.7).
FLAT_ROUNDNESS = 0.7


def _benign_juxtapleural_shape(n: NoduleFinding) -> bool:
    """Smooth margin and an oval/lentiform shape, as the Lung-RADS juxtapleural rule asks.

    Conservative: unknown margins or shape, or any irregularity, answer ``False``.
    """
    if not n.juxtapleural or n.spiculation_score is None or n.spiculation_score >= IRREGULAR_FROM:
        return False
    if n.long_axis_mm is None or n.volume_mm3 is None or n.long_axis_mm <= 0:
        return False
    roundness = n.volume_mm3 / (np.pi / 6.0 * n.long_axis_mm**3)
    return bool(roundness <= FLAT_ROUNDNESS)


def _lung_rads_for(n: NoduleFinding) -> LungRadsAssessment:
    from radiology_app.rules import LungRadsInput, RuleInputError, lung_rads

    if n.mean_diameter_mm is None or n.composition is None:
        return LungRadsAssessment(None, None, "size or composition unknown")
    spiculated = n.spiculation_score is not None and n.spiculation_score >= SPICULATED_FROM
    try:
        r = lung_rads(
            LungRadsInput(
                composition=n.composition,
                mean_diameter_mm=n.mean_diameter_mm,
                long_axis_mm=n.long_axis_mm,
                short_axis_mm=n.short_axis_mm,
                solid_component_mm=_solid_part(n),
                benign_calcification=n.calcification in BENIGN_CALCIFICATIONS,
                fat=bool(n.fat),
                juxtapleural=bool(n.juxtapleural or n.perifissural),
                benign_juxtapleural_morphology=bool(n.perifissural) or _benign_juxtapleural_shape(n),
                suspicious_features=("spiculation",) if spiculated else (),
            )
        )
    except RuleInputError as exc:
        return LungRadsAssessment(None, None, f"not assessable: {exc}")
    return LungRadsAssessment(r.category or None, r.management, r.reason)


def _fleischner_inputs(nodules: Sequence[NoduleFinding]) -> list[Any]:
    from radiology_app.rules import FleischnerInput

    return [
        FleischnerInput(
            composition=n.composition or "solid",
            mean_diameter_mm=n.mean_diameter_mm,
            long_axis_mm=n.long_axis_mm,
            short_axis_mm=n.short_axis_mm,
            solid_component_mm=_solid_part(n),
            benign_calcification=n.calcification in BENIGN_CALCIFICATIONS,
            perifissural=bool(n.perifissural),
        )
        for n in nodules
        if n.mean_diameter_mm is not None
    ]


def _fleischner_for(
    nodules: Sequence[NoduleFinding], p: PatientContext, with_risk_reason: bool = True
) -> FleischnerAssessment:
    from radiology_app.rules import FleischnerPatient, RuleInputError, fleischner, suggest_high_risk

    inputs = _fleischner_inputs(nodules)
    if not inputs:
        return FleischnerAssessment(None, "no measured nodule", None)
    high, why = suggest_high_risk(
        smoking_status=p.smoking_status,
        pack_years=p.pack_years,
        years_since_quit=p.years_since_quit,
        family_history_lung_cancer=p.family_history,
        emphysema_or_fibrosis=p.emphysema,
        age_years=p.age_years,
    )
    patient = FleischnerPatient(
        age_years=p.age_years,
        high_risk=high,
        known_cancer=bool(p.known_cancer),
        immunosuppressed=bool(p.immunosuppressed),
    )
    try:
        r = fleischner(inputs, patient)
    except RuleInputError as exc:
        return FleischnerAssessment(None, f"not assessable: {exc}", None)
    reason = f"{r.reason}; {why}" if with_risk_reason else r.reason
    return FleischnerAssessment(r.recommendation, reason, r.applies)


def _brock_for(n: NoduleFinding, count: int, p: PatientContext) -> tuple[float | None, str | None]:
    from radiology_app.rules import BrockInput, RuleInputError, brock_probability, lobe_is_upper

    size = n.long_axis_mm or n.mean_diameter_mm
    if size is None or p.age_years is None or p.female is None:
        return None, "Brock needs age, sex and nodule size"
    try:
        r = brock_probability(
            BrockInput(
                age_years=p.age_years,
                female=p.female,
                family_history_lung_cancer=bool(p.family_history),
                emphysema=bool(p.emphysema),
                nodule_size_mm=size,
                nodule_type=n.composition or "solid",
                upper_lobe=lobe_is_upper(n.lobe),
                nodule_count=max(1, count),
                spiculation=n.spiculation_score is not None and n.spiculation_score >= SPICULATED_FROM,
                size_is_mean_diameter=n.long_axis_mm is None,
            )
        )
    except RuleInputError as exc:
        return None, f"Brock not assessable: {exc}"
    return r.probability, r.reason


def assess_nodule(n: NoduleFinding, count: int, patient: PatientContext) -> NoduleFinding:
    """Per-nodule Lung-RADS, Fleischner (as a single nodule), Brock probability, and the differential
    reconciled with the image signs, the known history and Brock (when the model has given one)."""
    brock, _ = _brock_for(n, count, patient)
    n = dataclasses.replace(
        n,
        lung_rads=_lung_rads_for(n),
        fleischner=_fleischner_for([n], patient, with_risk_reason=False),
        brock_probability=brock,
    )
    return reconciled(n, patient)


def reconciled(n: NoduleFinding, patient: PatientContext) -> NoduleFinding:
    """The nodule with its model differential made coherent (``diagnosis.coherence.reconcile``)."""
    if not n.model_differential:
        return n
    from radiology_app.diagnosis.coherence import ImageSigns, reconcile

    r = reconcile(
        n.model_differential,
        ImageSigns(
            n.composition,
            n.calcification,
            bool(n.fat),
            bool(n.perifissural),
            spiculated=n.spiculation_score is not None and n.spiculation_score >= SPICULATED_FROM,
            irregular=n.spiculation_score is not None and n.spiculation_score >= IRREGULAR_FROM,
            mean_diameter_mm=n.mean_diameter_mm,
            on_fissure_or_pleura=n.on_fissure_or_pleura,
            lymph_node_morphology=bool(n.lymph_node_morphology),
        ),
        personal_cancer_history=patient.known_cancer,
        brock_probability=n.brock_probability,
        lidc_malignancy=n.lidc_malignancy_probability,
    )
    return dataclasses.replace(
        n,
        differential=r.ranked,
        malignancy_probability=r.malignancy_probability,
        model_malignancy_probability=r.model_malignancy,
        reasoning=r.reasons,
    )


def reassess(findings: Findings) -> Findings:
    """Re-run the clinical rules on every reported nodule and the exam, and recompose the impression.

    Rejected nodules keep their last assessment but do not count (Brock's nodule count, the exam's
    Lung-RADS category and the Fleischner recommendation use only reported nodules).
    """
    from radiology_app.rules import LungRadsResult, overall_lung_rads

    patient = PatientContext.from_findings(findings)
    reported = findings.reported_nodules
    nodules = tuple(
        assess_nodule(n, len(reported), patient) if n.is_reported else n for n in findings.nodules
    )
    reported_new = [n for n in nodules if n.is_reported]
    results = [
        LungRadsResult(n.lung_rads.category, n.lung_rads.management or "", n.lung_rads.reason or "")
        for n in reported_new
        if n.lung_rads.category
    ]
    overall = overall_lung_rads(results)
    lr = LungRadsAssessment(overall.category or None, overall.management, overall.reason)
    fl = (
        _fleischner_for(reported_new, patient)
        if reported_new
        else FleischnerAssessment("No routine follow-up", "no nodule reported", True)
    )
    out = dataclasses.replace(findings, nodules=nodules, lung_rads=lr, fleischner=fl)
    return dataclasses.replace(out, impression=compose_impression(out))


# -- diagnosis ------------------------------------------------------------------------------


def diagnose_nodules(
    model: Any,
    nodules: Sequence[NoduleFinding],
    volume: Volume,
    labels: npt.NDArray[np.generic],
    note_text: str,
    noise_hu: float | None,
    patient: PatientContext,
    facts: Mapping[str, object] | None = None,
) -> list[NoduleFinding]:
    """Run the fused model on ``nodules`` (crops from ``volume`` and ``labels``) and reconcile each
    differential with its image signs, ``patient``'s history and Brock (:func:`reconciled`)."""
    from radiology_app.diagnosis import api

    inputs = []
    for n in nodules:
        mask = (labels == n.label_id).astype(np.uint8)
        assert n.centroid_zyx is not None
        crop_hu, crop_mask, crop_spacing = api.extract_crop(
            volume.hu, volume.spacing_zyx_mm, mask, n.centroid_zyx
        )
        inputs.append(
            api.DiagnosisInput(
                crop_hu=crop_hu,
                crop_mask=crop_mask,
                spacing_zyx_mm=crop_spacing,
                note_text=note_text,
                slice_thickness_mm=volume.slice_thickness_mm,
                noise_hu=noise_hu,
                facts=facts,
            )
        )
    results = model.predict(inputs)
    out = []
    for n, d in zip(nodules, results, strict=True):
        out.append(
            reconciled(
                dataclasses.replace(
                    n,
                    model_differential=tuple((str(dx), float(p)) for dx, p in d.ranked),
                    lidc_malignancy_probability=getattr(d, "lidc_malignancy", None),
                    modality_weights={str(k): float(v) for k, v in d.modality_weights.items()},
                    evidence=tuple(str(getattr(e, "text", e)) for e in d.evidence),
                ),
                patient,
            )
        )
    return out


def _model_records(diag_model: Any, segmenter: Any) -> tuple[ModelRecord, ...]:
    """Provenance of the models used: the segmenter (name, version, SHA-256), its candidate classifier
    when it has one, and the diagnosis model's."""
    config = getattr(segmenter, "config", None)
    extra = getattr(config, "extra", None) or {}
    version = extra.get("version") if isinstance(extra, Mapping) else None
    records = [
        ModelRecord(
            str(getattr(segmenter, "name", "nodule_unet")),
            None if version is None else str(version),
            getattr(segmenter, "sha256", None) or None,
        )
    ]
    classifier = getattr(segmenter, "classifier", None)
    if classifier is not None:
        records.append(ModelRecord("nodule_fp_classifier", None, getattr(classifier, "sha256", None) or None))
    if diag_model is not None and hasattr(diag_model, "model_info"):
        records += [
            ModelRecord(str(i.name), getattr(i, "version", None), getattr(i, "sha256", None))
            for i in diag_model.model_info()
        ]
    return tuple(records)


# -- the analysis ------------------------------------------------------------------------------


def _labels_dir(run_id: int) -> Path:
    return app_paths().home / "analyses" / str(run_id)


def save_labels(labels: npt.NDArray[np.generic], run_id: int, name: str = "labels.npz") -> Path:
    """Write the instance label map of a run into the data folder and return its path."""
    folder = _labels_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    np.savez_compressed(path, labels=np.asarray(labels, dtype=np.int16))
    return path


def load_labels(findings: Findings) -> npt.NDArray[np.int16] | None:
    """The instance label map of ``findings`` (``None`` when it has none or the file is gone)."""
    if not findings.labels_path or not Path(findings.labels_path).exists():
        return None
    with np.load(findings.labels_path) as data:
        return np.asarray(data["labels"], dtype=np.int16)


def _contrast_reading(seg: Any, *, header_agent: str) -> ContrastReading:
    """How the segmentation read contrast (header, or the blood pool on the image)."""
    pool = seg.blood_pool
    source = "header" if header_agent else ("image" if seg.contrast_enhanced else "none")
    return ContrastReading(
        enhanced=bool(seg.contrast_enhanced),
        source=source,
        blood_pool_hu=pool.blood_hu if pool is not None else None,
        calcium_threshold_hu=float(seg.calcium_hu),
    )


def analyze_study(
    db: StudyDatabase,
    study_ref: str,
    *,
    note_text: str | None = None,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_nodule: NoduleCallback | None = None,
    series_uid: str | None = None,
    registry: ModelRegistry | None = None,
) -> Findings:
    """Analyse one stored study and store the findings as an analysis run.

    Parameters
    ----------
    db
        The study database.
    study_ref
        StudyInstanceUID, unique prefix, or an imported path (see ``StudyDatabase.resolve_study``).
    note_text
        The clinical note to use; ``None`` takes the study's latest stored note (if any).
    settings
        Model settings (backend, text backbone, adapter); the saved settings when ``None``.
    on_progress
        Overall progress, 0..1000 units, with the current stage as message.
    cancel
        Polled between stages and inside the slow ones.
    on_nodule
        Called with each nodule once it is measured, assessed and diagnosed.
    series_uid
        Analyse this series instead of the automatically chosen one.
    registry
        Model cache (the process-wide :data:`MODELS` by default).

    Returns
    -------
    Findings
        With ``run_id`` and ``labels_path`` set.

    Raises
    ------
    StudyNotFoundError, SeriesSelectionError, VolumeError
        If the study, a suitable series or its volume cannot be had, or its voxels are far coarser than
        the nodule detector was trained on.
    ModelError
        If the segmentation model cannot be loaded or run.
    OperationCancelled
        If ``cancel`` was set (the run is stored with status ``"cancelled"``).
    """

    settings = settings or load_settings()
    registry = registry or MODELS
    report(on_progress, 0, 1000, "", "finding the study")
    study = db.resolve_study(study_ref)
    patient = db.get_patient(study.patient_id)
    if note_text is None:
        notes = db.notes_for_study(study.study_uid)
        note_text = notes[-1].text if notes else None
    run_id = db.save_analysis_run(study.study_uid, "{}", "running")
    log.info("analysis run %d of study %s started", run_id, hash_uid(study.study_uid))
    try:
        findings = _run(
            db,
            study,
            patient,
            run_id,
            note_text,
            settings,
            registry,
            series_uid,
            on_progress,
            cancel,
            on_nodule,
        )
    except OperationCancelled:
        db.update_analysis_run(run_id, status="cancelled")
        raise
    except BaseException as exc:
        if not is_recoverable(exc):
            db.update_analysis_run(run_id, status="interrupted")
            raise
        db.update_analysis_run(run_id, status="failed", reason=one_line(exc))
        log.warning("analysis run %d failed: %s", run_id, type(exc).__name__)
        raise
    db.update_analysis_run(run_id, findings_json=findings.to_json_text(), status="done")
    report(on_progress, 1000, 1000, "", "done")
    return findings


def _run(
    db: StudyDatabase,
    study: Study,
    patient: Patient | None,
    run_id: int,
    note_text: str | None,
    settings: Settings,
    registry: ModelRegistry,
    series_uid: str | None,
    on_progress: ProgressCallback | None,
    cancel: CancelToken | None,
    on_nodule: NoduleCallback | None,
) -> Findings:
    from radiology_app.importer import load_study_volume
    from segmentation import errors as seg_errors
    from segmentation import inference

    choice, volume = load_study_volume(
        db,
        study.study_uid,
        series_uid=series_uid,
        on_progress=scaled(on_progress, 0.01, 0.15, message="reading the CT"),
        cancel=cancel,
    )
    series = db.get_series(choice.series_uid)
    warnings: list[str] = [*choice.warnings, *volume.warnings]
    if volume.spacing_zyx_mm[0] > THIN_SLICE_MM:
        warnings.append(
            f"slice interval {volume.spacing_zyx_mm[0]:.2f} mm: thin sections (<= 1.5 mm) are "
            "recommended for nodule measurement"
        )
    refusal = inference.coarse_spacing_refusal(volume.spacing_zyx_mm)
    if refusal:
        raise VolumeError(f"series {hash_uid(volume.series_uid)}: {refusal}")
    coarse = inference.coarse_spacing_warning(volume.spacing_zyx_mm)
    if coarse:
        warnings.append(coarse)
    facts, fact_warnings = _facts_json(note_text)
    warnings += fact_warnings
    if not note_text:
        warnings.append("no clinical note: facts unknown; the differential relies on the image")
    check_cancel(cancel)
    report(on_progress, 160, 1000, "", "loading the segmentation model")
    segmenter = registry.segmenter(settings)
    # the diagnosis model (mostly imports and file reads, which hold the GIL) loads in the background
    # while the network runs (ONNX Runtime and torch release the GIL there); it starts once the segmenter
    # is loaded, so the two never import torch and MONAI at the same time (concurrent imports of MONAI can
    # deadlock), and after resampling and the lung mask, which it would slow several-fold
    loader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dx-loader")
    diag_started: list[concurrent.futures.Future[Any]] = []

    def start_loader() -> concurrent.futures.Future[Any]:
        if not diag_started:
            diag_started.append(loader.submit(registry.diagnosis, settings, saliency=False))
            loader.shutdown(wait=False)
        return diag_started[0]

    seg_progress = scaled(on_progress, 0.17, 0.75, message="finding nodules")

    def on_segmentation(done: int, total: int, message: str) -> None:
        if message == "network":
            start_loader()
        if seg_progress is not None:
            seg_progress(Progress(done=done, total=total, unit="windows", message=message))

    try:
        seg = inference.segment_nodules(
            volume.hu,
            volume.spacing_zyx_mm,
            segmenter=segmenter,
            on_progress=on_segmentation,
            cancel=cancel,
            contrast=True if series.contrast_agent else None,
        )
    except seg_errors.SegmentationCancelled as exc:
        raise OperationCancelled("analysis cancelled during segmentation") from exc
    except seg_errors.SegmentationError as exc:
        raise ModelError(
            f"nodule segmentation failed on series {hash_uid(volume.series_uid)} ({exc})"
        ) from exc
    labels = np.asarray(seg.labels, dtype=np.int16)
    labels_path = save_labels(labels, run_id)
    contrast = _contrast_reading(seg, header_agent=series.contrast_agent)
    if contrast.source == "image":
        warnings.append(
            "no contrast agent is recorded in the DICOM headers, but the blood in the heart and great "
            f"vessels measures about {contrast.blood_pool_hu:.0f} HU: read as contrast-enhanced "
            f"(calcification called only above {contrast.calcium_threshold_hu:.0f} HU)"
        )
    check_cancel(cancel)
    base = Findings(
        study_uid=study.study_uid,
        series_uid=choice.series_uid,
        run_id=run_id,
        created_at=_now_iso(),
        warnings=tuple(dict.fromkeys(warnings)),
        facts=facts,
        note_text=note_text,
        labels_path=str(labels_path),
        series_number=series.series_number,
        patient_age_years=_age_years(patient, study),
        patient_sex=patient.sex if patient else None,
        contrast=contrast,
    )
    patient_ctx = PatientContext.from_findings(base)
    diag_model = None
    try:
        report(on_progress, 760, 1000, "", "loading the diagnosis model")
        diag_model = start_loader().result()
    except (ModelError, ImportError, OSError) as exc:
        base = dataclasses.replace(
            base, warnings=(*base.warnings, f"differential diagnosis unavailable: {exc}")
        )
    noise = estimate_noise_hu(volume.hu, seg.lung_mask) if diag_model is not None else None
    measured = list(seg.nodules)
    nodules: list[NoduleFinding] = []
    count = len(measured)
    pending: list[NoduleFinding] = []
    for i, item in enumerate(measured):
        check_cancel(cancel)
        label_id = int(getattr(item, "label_id", i + 1))
        m = getattr(item, "measurement", item)
        n = nodule_from_measurement(f"N{i + 1}", label_id, m, volume, labels)
        pending.append(assess_nodule(n, count, patient_ctx))
        # the differential runs in small batches (one text encoding pass per batch), each batch's
        # nodules reported as soon as they are complete
        if len(pending) == DIAGNOSIS_BATCH or i == count - 1:
            if diag_model is not None:
                pending = diagnose_nodules(
                    diag_model,
                    pending,
                    volume,
                    labels,
                    note_text or "",
                    noise,
                    patient_ctx,
                    fact_values(facts),
                )
            for done in pending:
                nodules.append(done)
                if on_nodule is not None:
                    on_nodule(done)
            pending = []
            report(
                on_progress,
                780 + round(200 * (i + 1) / max(1, count)),
                1000,
                "",
                f"nodule {i + 1} of {count}",
            )
    check_cancel(cancel)
    findings = dataclasses.replace(base, nodules=tuple(nodules), models=_model_records(diag_model, segmenter))
    return reassess(findings)


# -- review ------------------------------------------------------------------------------


def review_nodule(findings: Findings, nodule_id: str, action: str, **changes: Any) -> Findings:
    """Apply a clinician's review action and re-run the rules.

    Parameters
    ----------
    action
        ``"accept"``, ``"reject"``, ``"edit"`` (with field ``changes``, e.g. ``composition="part_solid"``)
        or ``"remove"``.

    Raises
    ------
    FindingsError
        If the nodule does not exist or the edit is invalid.
    ValueError
        If ``action`` is unknown.
    """
    if action == "accept":
        out = accept_nodule(findings, nodule_id)
    elif action == "reject":
        out = reject_nodule(findings, nodule_id)
    elif action == "edit":
        out = edit_nodule(findings, nodule_id, **_with_node_shape_cleared(changes))
    elif action == "remove":
        out = remove_nodule(findings, nodule_id)
    else:
        raise ValueError(f"unknown review action {action!r}")
    return reassess(out)


def _with_node_shape_cleared(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes``, plus no perifissural pattern or lymph-node shape where they give the nodule a
    spiculated margin, a calcification or fat: the pattern is a smooth nodule without either."""
    score = changes.get("spiculation_score")
    if (
        (score is not None and score >= SPICULATED_FROM)
        or changes.get("calcification") is not None
        or changes.get("fat") is True
    ):
        return {**changes, "perifissural": False, "lymph_node_morphology": False}
    return dict(changes)


def edit_and_reassess(findings: Findings, nodule_id: str, **changes: Any) -> Findings:
    """Edit a nodule's fields (e.g. composition) and re-run the rules."""
    return review_nodule(findings, nodule_id, "edit", **changes)


def add_nodule_at(
    findings: Findings,
    volume: Volume,
    point_zyx: tuple[int, int, int],
    *,
    settings: Settings | None = None,
    registry: ModelRegistry | None = None,
) -> Findings:
    """Segment the nodule under a clicked voxel, measure, assess and diagnose it, and add it.

    The label map gets the new nodule under a new label id and is saved as a new file beside the old one
    (earlier findings keep theirs).

    Raises
    ------
    ReportError
        If nothing nodule-like is found at the point.
    ModelError
        If the segmentation model cannot be used.
    """
    from segmentation import errors as seg_errors
    from segmentation import inference, measure

    registry = registry or MODELS
    labels = load_labels(findings)
    if labels is None or labels.shape != volume.shape_zyx:
        labels = np.zeros(volume.shape_zyx, dtype=np.int16)
    try:
        mask = inference.segment_at_point(
            volume.hu,
            volume.spacing_zyx_mm,
            (int(point_zyx[0]), int(point_zyx[1]), int(point_zyx[2])),
            segmenter=registry.segmenter(),
        )
    except seg_errors.SegmentationError as exc:
        raise ModelError(f"click-to-segment failed ({exc})") from exc
    mask = np.asarray(mask, dtype=bool) & (labels == 0)
    if not mask.any():
        raise ReportError(f"no new nodule found at voxel {tuple(point_zyx)}")
    label_id = int(labels.max()) + 1
    labels = labels.copy()
    labels[mask] = label_id
    m = measure.measure_nodule(volume.hu, mask.astype(np.uint8), volume.spacing_zyx_mm)
    nid = next_nodule_id(findings)
    n = nodule_from_measurement(nid, label_id, m, volume, labels)
    patient = PatientContext.from_findings(findings)
    n = assess_nodule(n, len(findings.reported_nodules) + 1, patient)
    try:
        model = registry.diagnosis(settings or load_settings(), saliency=False)
        noise = estimate_noise_hu(volume.hu, None)
        n = diagnose_nodules(
            model, [n], volume, labels, findings.note_text or "", noise, patient, fact_values(findings.facts)
        )[0]
    except (ModelError, ImportError, OSError) as exc:
        log.warning("no differential for the added nodule: %s", exc)
    run = findings.run_id if findings.run_id is not None else 0
    path = save_labels(labels, run, f"labels-{label_id}.npz")
    out = add_nodule(dataclasses.replace(findings, labels_path=str(path)), n)
    return reassess(out)


def store_findings(db: StudyDatabase, findings: Findings, *, status: str | None = None) -> Findings:
    """Save findings into their analysis run (a new run when they have none).

    ``status`` defaults to ``"signed"`` for signed findings and ``"reviewed"`` otherwise.
    """
    status = status or ("signed" if findings.is_signed else "reviewed")
    if findings.run_id is None:
        run_id = db.save_analysis_run(findings.study_uid, "{}", status)
        findings = dataclasses.replace(findings, run_id=run_id)
    db.update_analysis_run(findings.run_id or 0, findings_json=findings.to_json_text(), status=status)
    return findings


def latest_findings(db: StudyDatabase, study_uid: str) -> Findings | None:
    """The findings of the study's most recent completed analysis run, or ``None``."""
    for run in reversed(db.analysis_runs_for_study(study_uid)):
        if run.status in ("done", "reviewed", "signed") and run.findings_json not in ("", "{}"):
            return Findings.from_json(run.findings_json)
    return None


# -- outputs ------------------------------------------------------------------------------


#: Header line of a de-identified report, in place of the institution's name and address.
DEIDENTIFIED_INSTITUTION = "CT chest report (de-identified copy)"


def _report_context(
    findings: Findings, db: StudyDatabase, settings: Settings, volume: Volume | None, deidentified: bool
) -> Any:
    from radiology_app.importer import load_study_volume
    from radiology_app.reporting.pdf import ReportContext

    study = db.get_study(findings.study_uid)
    patient = db.get_patient(study.patient_id)
    series = db.get_series(findings.series_uid)
    instances = db.instances_for_series(findings.series_uid)
    if volume is None or volume.series_uid != findings.series_uid:
        _, volume = load_study_volume(db, findings.study_uid, series_uid=findings.series_uid)
    labels = load_labels(findings)
    if labels is not None and labels.shape != volume.shape_zyx:
        labels = None
    if deidentified:
        patient = Patient(
            patient_id="DE-IDENTIFIED", name="DE-IDENTIFIED", sex=patient.sex if patient else None
        )
        # basic profile: no identity, no dates (the DICOM copy shifts its dates), no free text
        study = dataclasses.replace(
            study,
            accession_number="",
            referring_physician="",
            patient_id="DE-IDENTIFIED",
            study_date=None,
            study_time="",
            description="",
            institution="",
        )
        findings = dataclasses.replace(findings, note_text=None)
        series = dataclasses.replace(series, description="")
        # the institution identifies the patient's whereabouts: neither in the header nor the metadata
        settings = settings.replace(institution_name=DEIDENTIFIED_INSTITUTION, institution_address="")
    return ReportContext(
        findings=findings,
        patient=patient,
        study=study,
        series=series,
        volume=volume,
        labels=labels,
        instance_numbers=instance_numbers_by_slice(instances, volume),
        deidentified=deidentified,
        institution_name=settings.institution_name,
        institution_address=settings.institution_address,
    )


def write_report(
    findings: Findings,
    db: StudyDatabase,
    out_pdf: Path,
    *,
    reviewer: str | None = None,
    sign: bool = False,
    settings: Settings | None = None,
    volume: Volume | None = None,
) -> Findings:
    """Render the PDF report of ``findings`` into ``out_pdf`` and record it in the analysis run.

    Parameters
    ----------
    reviewer
        Name of the reviewing clinician; with ``sign=True`` the findings are signed now in that name.
    sign
        Sign the findings before rendering (needs ``reviewer``).
    volume
        The analysed volume if already in memory (saves reading the series again).

    Returns
    -------
    Findings
        The findings as reported (signed if asked), with ``report`` set to the PDF path.

    Raises
    ------
    ReportError
        If the PDF cannot be written.
    """
    settings = settings or load_settings()
    if sign:
        findings = sign_findings(findings, reviewer or settings.reviewer_name)
    elif reviewer and not findings.reviewer:
        findings = dataclasses.replace(findings, reviewer=reviewer)
    from radiology_app.reporting.pdf import render_report_pdf

    ctx = _report_context(findings, db, settings, volume, deidentified=False)
    out = render_report_pdf(ctx, Path(out_pdf))
    findings = dataclasses.replace(findings, report=str(out.resolve()))
    if findings.run_id is not None:
        # writing a report is not a review: the run keeps its status unless the findings are signed
        kept = "signed" if findings.is_signed else db.get_analysis_run(findings.run_id).status
        store_findings(db, findings, status=kept)
    db.audit(
        "report.write",
        {"study": hash_uid(findings.study_uid), "run_id": findings.run_id, "signed": findings.is_signed},
    )
    return findings


def export_dicom(
    findings: Findings,
    db: StudyDatabase,
    out_dir: Path,
    *,
    deidentify: bool = False,
    include_ct: bool = False,
    settings: Settings | None = None,
    volume: Volume | None = None,
    uid_seed: str | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Any:
    """Write DICOM SEG, TID 1500 SR and Encapsulated PDF of ``findings`` into ``out_dir``.

    With ``deidentify`` the PDF is rendered without patient identity or note text, and every object
    goes through the basic confidentiality profile (``include_ct`` adds the CT series, consistently
    de-identified).

    Returns
    -------
    radiology_app.dicom.export.ExportResult

    Raises
    ------
    ReportError, OperationCancelled
    """
    from radiology_app.dicom.export import export_dicom_objects
    from radiology_app.reporting.pdf import render_report_bytes

    settings = settings or load_settings()
    ctx = _report_context(findings, db, settings, volume, deidentified=deidentify)
    pdf: bytes | None = None
    pdf_problem = ""
    try:
        pdf = render_report_bytes(ctx)
    except ReportError as exc:  # SEG and SR are still worth writing
        pdf_problem = str(exc)
    paths = [Path(i.path) for i in db.instances_for_series(findings.series_uid)]
    result = export_dicom_objects(
        findings,
        paths,
        ctx.labels,
        Path(out_dir),
        pdf_bytes=pdf,
        volume=ctx.volume,
        deidentify=deidentify,
        include_ct=include_ct,
        uid_seed=uid_seed,
        on_progress=on_progress,
        cancel=cancel,
    )
    if pdf_problem:
        result = dataclasses.replace(result, warnings=(*result.warnings, pdf_problem))
    db.audit(
        "dicom.export",
        {
            "study": hash_uid(findings.study_uid),
            "run_id": findings.run_id,
            "deidentified": deidentify,
            "objects": len(result.paths),
        },
    )
    return result


def findings_by_id(findings: Findings) -> Mapping[str, NoduleFinding]:
    """The nodules keyed by id (handy for the GUI)."""
    return {n.id: n for n in findings.nodules}
