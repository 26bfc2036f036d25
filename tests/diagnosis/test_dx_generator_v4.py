"""Generator version 4: counterfactual note pairs and their labels, structured facts as model input
(injected reader), and crops from the segmentation phantom through the pipeline's crop path."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radiology_app.diagnosis.classes import CLASS_NAMES
from radiology_app.diagnosis.cues import CUE_NAMES
from radiology_app.diagnosis.synthetic import (
    GENERATOR_VERSION,
    counterfactual_label,
    counterfactual_twin,
    generate_cases,
    with_twins,
)
from radiology_app.diagnosis.training.note_forms import write_note_v4

torch = pytest.importorskip("torch")

IDX = {n: i for i, n in enumerate(CUE_NAMES)}
MET = CLASS_NAMES.index("metastasis")


def _first(cases: list[Any], pred: Any) -> Any:
    return next(c for c in cases if pred(c))


def test_every_metastasis_has_an_affirmed_personal_cancer_history() -> None:
    from radiology_app.cli.diagnosis_cmds import read_note_facts

    assert GENERATOR_VERSION == 4
    cases = generate_cases(270, 31)
    mets = [c for c in cases if c.label == MET]
    assert mets and all(c.facts.prior_cancer for c in mets)
    read = [read_note_facts(c.note).get("personal_cancer_history") for c in mets if c.note]
    assert np.mean([v is True for v in read]) > 0.9  # stated in every note, read by the real extractor


def test_history_moved_to_a_relative_is_no_longer_a_metastasis() -> None:
    from radiology_app.cli.diagnosis_cmds import read_note_facts

    cases = generate_cases(270, 32)
    met = _first(cases, lambda c: c.label == MET and c.note)
    rng = np.random.default_rng(0)
    assert counterfactual_twin(met, "cancer_to_relative", rng) is None  # not labelled metastasis: dropped
    assert counterfactual_twin(met, "cancer_removed", rng) is None
    assert counterfactual_label(MET, met.phenotype, met.facts, replace(met.facts, prior_cancer=None)) is None
    # a relative's cancer or a suspicion added leaves a metastasis a metastasis (its own history stays)
    plain = replace(met, note_options=replace(met.note_options, relative_cancer=None, suspected=False))
    plain = replace(
        plain,
        note=write_note_v4(plain.facts, plain.note_seed, language=plain.language, options=plain.note_options),
    )
    for variant in ("relative_added", "suspected_added"):
        twin = counterfactual_twin(plain, variant, rng)
        assert twin is not None and twin.label == MET and twin.note != plain.note

    # the same note with the history moved: only the moved statement differs, and the real extractor
    # reads the twin's cancer as a relative's
    other = _first(cases, lambda c: c.label != MET and c.facts.prior_cancer and c.note and c.language == "en")
    twin = counterfactual_twin(other, "cancer_to_relative", rng)
    assert twin is not None and twin.label == other.label and twin.facts.prior_cancer is None
    assert read_note_facts(other.note).get("personal_cancer_history") is True
    assert read_note_facts(twin.note).get("personal_cancer_history") is not True
    a, b = set(other.note.replace("\n", " ").split(". ")), set(twin.note.replace("\n", " ").split(". "))
    assert len(a ^ b) <= 4


def test_an_added_cancer_history_keeps_only_definitive_image_signs() -> None:
    cases = generate_cases(540, 33)
    gran = _first(
        cases,
        lambda c: (
            c.diagnosis == "granuloma"
            and c.phenotype.calcification in ("central", "diffuse", "laminated")
            and not c.facts.prior_cancer
            and c.note
        ),
    )
    rng = np.random.default_rng(1)
    twin = counterfactual_twin(gran, "cancer_added", rng)
    assert twin is not None and twin.label == gran.label and twin.facts.prior_cancer
    assert twin.seed == gran.seed and twin.phenotype == gran.phenotype and twin.renderer == gran.renderer
    carcinoid = _first(cases, lambda c: c.diagnosis == "carcinoid" and not c.facts.prior_cancer and c.note)
    assert counterfactual_twin(carcinoid, "cancer_added", rng) is None  # a metastasis becomes plausible


def test_twins_follow_their_originals_and_keep_the_label_rules() -> None:
    base = generate_cases(360, 34)
    cases = with_twins(base, 34, share=0.5)
    twins = cases[len(base) :]
    assert len(twins) > 60
    assert {t.variant for t in twins} >= {"relative_added", "suspected_added", "cancer_added"}
    for t in twins:
        orig = base[t.twin_of]
        assert (t.phenotype, t.seed, t.renderer, t.noise_hu) == (
            orig.phenotype,
            orig.seed,
            orig.renderer,
            orig.noise_hu,
        )
        assert t.label == orig.label
        if t.label == MET:
            assert t.facts.prior_cancer
    notes = [c.note for c in base if c.note]
    forms = {c.note_options.form for c in base if c.note_options}
    assert len(forms) >= 10  # many document forms, both languages
    assert any("?" in n or "r/o" in n or "考虑" in n or "不除外" in n for n in notes)
    assert any(("had" in n or "患" in n) and ("cancer" in n or "癌" in n) for n in notes)


def test_facts_reader_feeds_structured_facts(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from radiology_app.diagnosis.text import load_backbone
    from radiology_app.diagnosis.train import CaseArrays, batch_tensors, build_arrays, synthetic_arrays

    calls: list[str] = []

    def reader(text: str) -> dict[str, object]:
        calls.append(text)
        return {"personal_cancer_history": False, "fever": True, "age": 50}

    bb = load_backbone(tiny_bert_dir)
    cases = [replace(c, renderer="diagnosis") for c in generate_cases(9, 35)]
    a = build_arrays(cases, bb, facts_reader=reader)
    has_note = np.asarray([bool(c.note.strip()) for c in cases])
    assert len(calls) == int(has_note.sum())
    assert (a.fact_cues[has_note, IDX["prior_cancer"]] == -1).all()
    assert (a.fact_cues[has_note, IDX["fever"]] == 1).all()
    assert np.allclose(a.fact_cues[has_note, IDX["age"]], 0.5)
    assert not np.array_equal(a.fact_cues, a.cues)
    fused = batch_tensors(a, np.arange(len(a)))["cues"].numpy()
    lexicon = batch_tensors(a, np.arange(len(a)), lexicon_cues=True)["cues"].numpy()
    assert np.allclose(fused, a.fact_cues) and np.allclose(lexicon, a.cues)
    # training mixes both (a caller without structured facts still works)
    rng = np.random.default_rng(0)
    mixed = batch_tensors(a, np.arange(len(a)), rng, p_lexicon_cues=0.5)["cues"].numpy()
    assert np.allclose(mixed[~has_note], 0) or mixed.shape == fused.shape
    # the cache stores no facts: they are read afresh on loading, with the reader given then
    path = tmp_path / "c.npz"
    a.save(path)
    assert np.array_equal(CaseArrays.load(path).fact_cues, a.cues)
    assert np.array_equal(CaseArrays.load(path, reader).fact_cues, a.fact_cues)
    b = synthetic_arrays(tmp_path, "t", 9, 35, bb, facts_reader=reader)
    assert b.fact_cues.shape == (9, len(CUE_NAMES))


def test_cli_reader_reads_in_context() -> None:
    from radiology_app.cli.diagnosis_cmds import read_note_facts

    assert read_note_facts("") == {}
    assert read_note_facts("Known breast cancer.").get("personal_cancer_history") is True
    assert read_note_facts("Mother had breast cancer.").get("personal_cancer_history") is not True


def test_evaluation_uses_the_reader_and_splits_by_renderer(
    tiny_model_bert: dict[str, Any], tmp_path: Path, app_home: Path
) -> None:
    from radiology_app.core.config import Settings
    from radiology_app.diagnosis.evaluate import run_evaluation

    seen: list[str] = []

    def reader(text: str) -> dict[str, object]:
        seen.append(text)
        return {}

    r = run_evaluation(
        Settings(text_backbone_dir=str(tiny_model_bert["backbone"])),
        cases=18,
        seed=78,
        weights=tiny_model_bert["weights"],
        card=tiny_model_bert["card"],
        cache_dir=tmp_path,
        latency=False,
        facts_reader=reader,
    )
    assert seen and r["structured_facts"] is True
    by = r["by_renderer"]
    assert by["diagnosis_phantom"]["n"] + by["segmentation_phantom"]["n"] == 18
    assert "unet_missed" in by["segmentation_phantom"] and 0 <= r["top1_lexicon_cues"] <= 1
    for v in r["counterfactual"].values():  # the same crops with one note statement edited
        assert v["n"] > 0 and 0 <= v["top_class_changed"] <= 1


def test_finetuning_reads_the_same_facts() -> None:
    from radiology_app.diagnosis.finetune import LocalCase, _static_inputs

    hu = np.full((32, 32, 32), -850.0, np.float32)
    mask = np.zeros((32, 32, 32), np.uint8)
    mask[14:18, 14:18, 14:18] = 1
    case = LocalCase(hu, mask, "Known breast cancer.", 0, 1.0, None)
    lex = _static_inputs([case])["cues"][0]
    read = _static_inputs([case], lambda t: {"personal_cancer_history": False})["cues"][0]
    assert lex[IDX["prior_cancer"]] == 1 and read[IDX["prior_cancer"]] == -1


def test_segmentation_phantom_crops_go_through_the_unet_and_the_pipeline_crop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from radiology_app.diagnosis.training import seg_crops

    cases = generate_cases(180, 36)
    gran = _first(cases, lambda c: c.diagnosis == "granuloma" and c.phenotype.calcification == "central")
    gran = replace(gran, renderer="segmentation", slice_thickness_mm=1.25)
    spec = seg_crops.segmentation_spec(gran)
    assert spec.kind == "calcified" and spec.calcification == "central"
    iln = _first(cases, lambda c: c.diagnosis == "intrapulmonary_lymph_node")
    assert seg_crops.segmentation_spec(iln).kind == "perifissural"
    ham = _first(cases, lambda c: c.diagnosis == "hamartoma" and c.phenotype.fat)
    assert seg_crops.segmentation_spec(ham).kind == "fat"

    crop = seg_crops.render_segmentation_case(gran)
    assert crop.hu.shape == (32, 32, 32) and crop.mask.shape == (32, 32, 32)
    assert crop.unet_found and crop.dice > 0.5
    assert crop.mask[14:18, 14:18, 14:18].any()  # centred on the outline, as pipeline._diagnose crops
    assert (crop.hu[crop.mask > 0] > 200).any()  # the calcium is in the crop

    # a miss falls back to the phantom's true mask, and is counted
    monkeypatch.setattr(seg_crops, "unet_outline", lambda *a, **k: None)
    miss = seg_crops.render_segmentation_case(gran)
    assert not miss.unet_found and miss.dice == 1.0 and miss.mask.any()
    from radiology_app.diagnosis.train import render_full

    _, _, found = render_full(gran)
    assert found is False
