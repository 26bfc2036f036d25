"""Cue extraction (English/Chinese, negation) and the synthetic case generator (no torch)."""

from __future__ import annotations

import numpy as np

from radiology_app.diagnosis.classes import CLASS_NAMES
from radiology_app.diagnosis.cues import CUE_NAMES, extract_cues
from radiology_app.diagnosis.synthetic import generate_cases, render_case

IDX = {n: i for i, n in enumerate(CUE_NAMES)}


def test_english_cues_with_negation() -> None:
    c = extract_cues(
        "67-year-old woman. Current smoker, 45 pack-years. Denies fever. Reports hemoptysis. "
        "History of breast cancer, treated 3 years ago. Stable for 2 years."
    )
    v = c.vector
    assert abs(v[IDX["age"]] - 0.67) < 1e-6
    assert v[IDX["female"]] == 1 and v[IDX["male"]] == 0
    assert v[IDX["smoker_current"]] == 1
    assert abs(v[IDX["pack_years"]] - 0.45) < 1e-6
    assert v[IDX["fever"]] == -1
    assert v[IDX["hemoptysis"]] == 1
    assert v[IDX["prior_cancer"]] == 1
    assert v[IDX["course_stable"]] == 1
    assert 0 < c.informativeness <= 1


def test_chinese_cues_with_negation() -> None:
    v = extract_cues("患者男，58岁。否认吸烟史。发热两周。否认咯血。既往结肠癌病史。近期新出现。").vector
    assert v[IDX["male"]] == 1
    assert abs(v[IDX["age"]] - 0.58) < 1e-6
    assert v[IDX["smoker_never"]] == 1 and v[IDX["smoker_current"]] == 0
    assert v[IDX["fever"]] == 1
    assert v[IDX["hemoptysis"]] == -1
    assert v[IDX["prior_cancer"]] == 1
    assert v[IDX["course_new"]] == 1


def test_empty_note_has_no_cues() -> None:
    c = extract_cues("   ")
    assert not c.vector.any() and c.hits == () and c.informativeness == 0


def test_spans_point_at_the_phrase() -> None:
    text = "No weight loss. Presents with cough."
    hits = {h.name: h for h in extract_cues(text).hits}
    s, e = hits["cough"].span
    assert text[s:e].lower().startswith("cough")
    assert hits["weight_loss"].value == -1


def test_generator_is_deterministic_balanced_and_bilingual() -> None:
    a = generate_cases(90, 7)
    b = generate_cases(90, 7)
    assert [c.note for c in a] == [c.note for c in b]
    counts = np.bincount([c.label for c in a], minlength=len(CLASS_NAMES))
    assert (counts == 10).all()
    langs = {c.language for c in a}
    assert langs == {"en", "zh"}
    assert any("否认" in c.note for c in a) and any(("Denies" in c.note or "No " in c.note) for c in a)
    assert generate_cases(9, 8)[0].note != a[0].note


def test_metastasis_notes_state_a_primary_far_more_often() -> None:
    cases = generate_cases(360, 3)

    from radiology_app.cli.diagnosis_cmds import read_note_facts

    def share(name: str) -> float:
        sel = [c for c in cases if c.diagnosis == name]
        return float(np.mean([read_note_facts(c.note).get("personal_cancer_history") is True for c in sel]))

    # read in context, as the model gets it (generator version 4 words the history in many ways the
    # lexicon misses, and adds relatives' cancers that the lexicon would take for the patient's)
    assert share("metastasis") > 0.85
    assert share("adenocarcinoma") < 0.2


def test_site_b_is_a_shifted_domain() -> None:
    base = generate_cases(90, 5)
    site = generate_cases(90, 5, domain="site_b")
    inf_base = np.mean([extract_cues(c.note).informativeness for c in base])
    inf_site = np.mean([extract_cues(c.note).informativeness for c in site])
    assert inf_site < inf_base  # most site-B phrasings are outside the cue lexicon
    assert min(c.noise_hu for c in site) > max(c.noise_hu for c in base)


def test_render_case_shapes_and_phenotypes() -> None:
    cases = generate_cases(27, 9)
    for c in cases[:9]:
        hu, mask = render_case(c)
        assert hu.shape == (32, 32, 32) and hu.dtype == np.float32
        assert mask.dtype == np.uint8 and mask.sum() > 0
        assert (
            mask[16, 16, 16] or c.phenotype.cavity_wall_mm > 0 or c.phenotype.juxtapleural or mask.sum() > 0
        )
    fat = [c for c in generate_cases(200, 4) if c.phenotype.fat][:2]
    for c in fat:
        hu, mask = render_case(c)
        inside = hu[mask > 0]
        assert ((inside > -130) & (inside < -30)).mean() > 0.03


def test_staging_and_paraneoplastic_cues_in_both_languages() -> None:
    v = extract_cues(
        "Perihilar opacity on the CXR. Hyponatraemia (Na 124), SIADH suspected. "
        "Doubled in size within a month. No mediastinal lymphadenopathy."
    ).vector
    assert v[IDX["central_location"]] == 1 and v[IDX["peripheral_location"]] == 0
    assert v[IDX["neuroendocrine_paraneoplastic"]] == 1 and v[IDX["hypercalcaemia"]] == 0
    assert v[IDX["course_rapid"]] == 1
    assert v[IDX["mediastinal_lymphadenopathy"]] == -1
    z = extract_cues("周围型结节。高钙血症。纵隔淋巴结肿大。短期内迅速增大。").vector
    assert z[IDX["peripheral_location"]] == 1 and z[IDX["central_location"]] == 0
    assert z[IDX["hypercalcaemia"]] == 1 and z[IDX["neuroendocrine_paraneoplastic"]] == 0
    assert z[IDX["mediastinal_lymphadenopathy"]] == 1 and z[IDX["course_rapid"]] == 1
    assert extract_cues("纵隔未见肿大淋巴结。").vector[IDX["mediastinal_lymphadenopathy"]] == -1


def test_squamous_and_small_cell_notes_differ_only_in_part_of_the_cases() -> None:
    cases = generate_cases(900, 13)

    def share(name: str, cue: str) -> float:
        sel = [c for c in cases if c.diagnosis == name and c.note]
        return float(np.mean([extract_cues(c.note).vector[IDX[cue]] > 0 for c in sel]))

    for cue in ("neuroendocrine_paraneoplastic", "course_rapid", "mediastinal_lymphadenopathy"):
        assert share("small_cell_carcinoma", cue) > share("squamous_cell_carcinoma", cue) + 0.2
        assert share("small_cell_carcinoma", cue) < 0.7  # the note alone cannot settle every case
    assert share("squamous_cell_carcinoma", "hypercalcaemia") > 0.15
    assert share("small_cell_carcinoma", "hypercalcaemia") == 0.0
    assert (
        share("small_cell_carcinoma", "central_location") > share("adenocarcinoma", "central_location") + 0.3
    )


def test_hamartoma_fat_and_small_cell_nodes_are_visible_in_the_crop() -> None:
    from radiology_app.diagnosis.crops import RADIOMICS_NAMES, radiomics

    cases = generate_cases(450, 17)
    fat_i, shell_i = RADIOMICS_NAMES.index("fat_fraction"), RADIOMICS_NAMES.index("pleural_contact")
    fat = [radiomics(*render_case(c))[fat_i] for c in cases if c.phenotype.fat][:8]
    assert np.mean(fat) > 0.15  # fat lobules fill a good part of the nodule, not a thin rim
    popcorn = [c for c in cases if c.phenotype.calcification == "popcorn"][:6]
    assert all((render_case(c)[0] > 400).sum() >= 5 for c in popcorn)
    sclc = [c for c in cases if c.diagnosis == "small_cell_carcinoma"]
    with_nodes = [radiomics(*render_case(c))[shell_i] for c in sclc if c.phenotype.adjacent_nodes][:6]
    without = [
        radiomics(*render_case(c))[shell_i]
        for c in sclc
        if not c.phenotype.adjacent_nodes and not c.phenotype.juxtapleural
    ][:6]
    assert np.mean(with_nodes) > np.mean(without) + 0.01  # soft tissue touching the nodule, outside its mask
    for c in sclc[:4]:
        _, mask = render_case(c)
        assert mask.sum() > 0
