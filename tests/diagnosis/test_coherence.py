"""The differential made coherent with definitive image signs, the known history and Brock."""

from __future__ import annotations

import dataclasses
import math

import pytest

from radiology_app.diagnosis.classes import CLASS_NAMES, MALIGNANT_CLASSES
from radiology_app.diagnosis.coherence import (
    BENIGN_SIGN_MALIGNANCY,
    MAX_AI_ODDS_RATIO,
    METASTASIS_PRIOR,
    ImageSigns,
    Reconciled,
    reconcile,
)

SOLID = ImageSigns("solid")


def _model(**probs: float) -> list[tuple[str, float]]:
    """A model output: the named probabilities, the rest spread evenly."""
    rest = (1.0 - sum(probs.values())) / (len(CLASS_NAMES) - len(probs))
    return [(c, probs.get(c, rest)) for c in CLASS_NAMES]


def _p(ranked: tuple[tuple[str, float], ...], name: str) -> float:
    return dict(ranked)[name]


def _odds(p: float) -> float:
    return p / (1.0 - p)


@pytest.mark.parametrize("history", [True, False, None])
@pytest.mark.parametrize(
    ("signs", "leader"),
    [
        (ImageSigns("solid", calcification="central"), "granuloma"),
        (ImageSigns("solid", calcification="laminated"), "granuloma"),
        (ImageSigns("solid", calcification="popcorn"), "hamartoma"),
        (ImageSigns("solid", fat=True), "hamartoma"),
    ],
)
def test_definitive_benign_sign_wins_over_the_model_and_the_note(
    signs: ImageSigns, leader: str, history: bool | None
) -> None:
    r = reconcile(_model(metastasis=0.85), signs, personal_cancer_history=history, brock_probability=0.3)
    assert r.ranked[0][0] == leader
    assert r.malignancy_probability <= BENIGN_SIGN_MALIGNANCY + 1e-9
    assert r.model_malignancy > 0.85
    assert any("whatever the note says" in why for why in r.reasons)


def test_indeterminate_calcification_is_not_a_benign_sign() -> None:
    r = reconcile(
        _model(adenocarcinoma=0.8),
        ImageSigns("solid", calcification="punctate"),
        personal_cancer_history=None,
        brock_probability=0.2,
    )
    assert r.ranked[0][0] == "adenocarcinoma"
    assert r.malignancy_probability > 0.2


@pytest.mark.parametrize("history", [False, None])
def test_metastasis_needs_a_known_primary(history: bool | None) -> None:
    r = reconcile(_model(metastasis=0.9), SOLID, personal_cancer_history=history)
    assert _p(r.ranked, "metastasis") == pytest.approx(METASTASIS_PRIOR * r.malignancy_probability)
    assert r.ranked[0][0] != "metastasis"
    # a ground-glass nodule with a low malignancy: metastasis is no rival to the adenocarcinoma spectrum
    ggn = reconcile(
        _model(metastasis=0.5),
        ImageSigns("ground_glass"),
        personal_cancer_history=history,
        brock_probability=0.02,
    )
    assert _p(ggn.ranked, "metastasis") <= METASTASIS_PRIOR * 0.02 + 1e-9
    assert _p(ggn.ranked, "adenocarcinoma") >= 0.015


def test_a_known_primary_raises_metastasis() -> None:
    model = _model(metastasis=0.3, granuloma=0.3)
    without = reconcile(model, SOLID, personal_cancer_history=None, brock_probability=0.05)
    with_hx = reconcile(model, SOLID, personal_cancer_history=True, brock_probability=0.05)
    assert _p(with_hx.ranked, "metastasis") - _p(without.ranked, "metastasis") >= 0.3
    assert with_hx.ranked[0][0] == "metastasis"


def test_perifissural_reads_as_a_lymph_node_unless_there_is_a_known_primary() -> None:
    signs = ImageSigns("solid", perifissural=True)
    r = reconcile(_model(squamous_cell_carcinoma=0.7), signs, personal_cancer_history=False)
    assert r.ranked[0][0] == "intrapulmonary_lymph_node"
    assert r.malignancy_probability <= 0.1
    known = reconcile(_model(metastasis=0.6), signs, personal_cancer_history=True)
    assert known.ranked[0][0] == "metastasis"
    assert any("known primary" in why for why in known.reasons)
    # a margin score smooth enough for the pattern (0.25-0.3) is not also "irregular"
    edgy = ImageSigns("solid", perifissural=True, irregular=True)
    node = reconcile(_model(intrapulmonary_lymph_node=0.6), edgy, personal_cancer_history=True)
    assert node.ranked[0][0] == "intrapulmonary_lymph_node"


@pytest.mark.parametrize("composition", ["ground_glass", "part_solid"])
@pytest.mark.parametrize("favoured", ["intrapulmonary_lymph_node", "squamous_cell_carcinoma", "granuloma"])
def test_subsolid_nodules_read_as_adenocarcinoma_spectrum_or_infection(
    composition: str, favoured: str
) -> None:
    r = reconcile(
        _model(**{favoured: 0.99}),
        ImageSigns(composition),
        personal_cancer_history=None,
        brock_probability=0.1,
    )
    assert r.ranked[0][0] in ("adenocarcinoma", "infection")
    assert _p(r.ranked, favoured) <= 0.01 + 1e-9


@pytest.mark.parametrize(
    ("brock", "fused", "lidc"), [(0.02, 0.99, 0.95), (0.6, 0.01, 0.05), (0.1, 0.6, 0.55)]
)
def test_malignancy_stays_within_a_stated_factor_of_brock(brock: float, fused: float, lidc: float) -> None:
    model = _model(adenocarcinoma=fused, granuloma=1.0 - fused - 1e-3)
    r = reconcile(model, SOLID, personal_cancer_history=None, brock_probability=brock, lidc_malignancy=lidc)
    ratio = _odds(r.malignancy_probability) / _odds(brock)
    assert 1.0 / MAX_AI_ODDS_RATIO - 1e-6 <= ratio <= MAX_AI_ODDS_RATIO + 1e-6
    extreme = abs(math.log(ratio)) >= math.log(MAX_AI_ODDS_RATIO) - 1e-6
    assert r.brock_disagreement == extreme
    assert any(("disagree" in why) == extreme for why in r.reasons if "Brock" in why)


def test_the_real_ct_branch_moves_the_malignancy() -> None:
    model = _model(adenocarcinoma=0.5, granuloma=0.4)
    low = reconcile(model, SOLID, personal_cancer_history=None, brock_probability=0.1, lidc_malignancy=0.1)
    high = reconcile(model, SOLID, personal_cancer_history=None, brock_probability=0.1, lidc_malignancy=0.9)
    assert low.malignancy_probability < 0.1 < high.malignancy_probability


def test_without_brock_a_capped_disagreement_of_the_ai_readings_is_stated() -> None:
    # no age or sex: the fused model's 2 % is the pre-test probability; the real-CT branch says 95 %
    model = _model(granuloma=0.98, adenocarcinoma=0.02)
    r = reconcile(model, SOLID, personal_cancer_history=None, lidc_malignancy=0.95)
    assert r.malignancy_probability <= 0.2 + 1e-9
    assert any(x.startswith("the AI readings disagree") and "raise" in x for x in r.reasons)
    agree = reconcile(model, SOLID, personal_cancer_history=None, lidc_malignancy=0.6)
    assert not any("disagree" in x for x in agree.reasons)


def test_probabilities_sum_to_one_and_are_ranked() -> None:
    r = reconcile(_model(carcinoid=0.4), SOLID, personal_cancer_history=True, lidc_malignancy=0.3)
    assert sum(p for _, p in r.ranked) == pytest.approx(1.0)
    assert [p for _, p in r.ranked] == sorted((p for _, p in r.ranked), reverse=True)
    assert {c for c, _ in r.ranked} == set(CLASS_NAMES)


@pytest.mark.parametrize("favoured", ["intrapulmonary_lymph_node", "hamartoma", "granuloma", "carcinoid"])
def test_a_spiculated_nodule_is_a_primary_cancer_or_inflammatory(favoured: str) -> None:
    signs = ImageSigns("solid", spiculated=True)
    r = reconcile(_model(**{favoured: 0.9}), signs, personal_cancer_history=None, brock_probability=0.2)
    assert r.ranked[0][0] in (
        "adenocarcinoma",
        "squamous_cell_carcinoma",
        "small_cell_carcinoma",
        "infection",
    )
    assert _p(r.ranked, favoured) <= 0.01 + 1e-9
    assert any("spiculated" in why for why in r.reasons)


def test_an_irregular_nodule_is_not_a_lymph_node_and_favours_cancer_or_inflammation() -> None:
    model = _model(intrapulmonary_lymph_node=0.6, granuloma=0.3, adenocarcinoma=0.05)
    r = reconcile(model, ImageSigns("solid", irregular=True), personal_cancer_history=None)
    assert r.ranked[0][0] in ("adenocarcinoma", "infection")
    assert _p(r.ranked, "intrapulmonary_lymph_node") <= 0.01 + 1e-9
    # possible, not leading: a granuloma keeps a fifth of the benign share
    benign = sum(v for c, v in r.ranked if c not in MALIGNANT_CLASSES)
    assert 0.1 * benign < _p(r.ranked, "granuloma") <= 0.2 * benign + 1e-9
    assert any("irregular margin" in x for x in r.reasons)


def test_a_lymph_node_shape_over_10_mm_leads_the_benign_causes_without_holding_malignancy() -> None:
    # one strand (irregular) on a lymph node's shape and place is its septal line
    signs = ImageSigns("solid", irregular=True, mean_diameter_mm=11.0, on_fissure_or_pleura=True)
    model = _model(infection=0.5, granuloma=0.2, intrapulmonary_lymph_node=0.1, adenocarcinoma=0.2)
    plain = reconcile(model, signs, personal_cancer_history=False)
    assert plain.ranked[0][0] != "intrapulmonary_lymph_node"
    node = reconcile(
        model, dataclasses.replace(signs, lymph_node_morphology=True), personal_cancer_history=False
    )
    assert node.ranked[0][0] == "intrapulmonary_lymph_node"
    assert node.malignancy_probability == pytest.approx(plain.malignancy_probability, abs=0.02)
    assert any("lymph node's shape and place" in why for why in node.reasons)
    # with a known primary it is not called a lymph node
    known = reconcile(
        model, dataclasses.replace(signs, lymph_node_morphology=True), personal_cancer_history=True
    )
    assert known.ranked[0][0] != "intrapulmonary_lymph_node"


def test_a_lymph_node_leads_only_small_and_on_a_fissure_or_the_pleura() -> None:
    model = _model(intrapulmonary_lymph_node=0.7, granuloma=0.1)

    def read(**signs: object) -> Reconciled:
        return reconcile(model, ImageSigns("solid", **signs), personal_cancer_history=None)  # type: ignore[arg-type]

    assert read(mean_diameter_mm=15.0, on_fissure_or_pleura=True).ranked[0][0] != "intrapulmonary_lymph_node"
    # away from the fissures and the pleura it may still be a lymph node, but it does not lead
    off = read(mean_diameter_mm=8.0, on_fissure_or_pleura=False)
    assert off.ranked[0][0] != "intrapulmonary_lymph_node"
    assert 0.05 < _p(off.ranked, "intrapulmonary_lymph_node") < _p(off.ranked, "granuloma")
    assert any("off the fissures and the pleura" in x for x in off.reasons)
    # on a fissure but not lentiform (or over the pattern's 10 mm), or not looked at: the model's reading
    assert read(mean_diameter_mm=11.0, on_fissure_or_pleura=True).ranked[0][0] == "intrapulmonary_lymph_node"
    assert read(mean_diameter_mm=8.0).ranked[0][0] == "intrapulmonary_lymph_node"
    assert read(perifissural=True, on_fissure_or_pleura=True).ranked[0][0] == "intrapulmonary_lymph_node"


def test_a_raised_malignant_share_does_not_follow_the_models_noise() -> None:
    """The model gave the malignant classes almost nothing (half of it metastasis); Brock and the real-CT
    branch raise the share: it goes by the clinical prior, never to metastasis without a known primary."""
    model = [(c, 1e-4) for c in CLASS_NAMES if c != "infection"] + [("infection", 1.0 - 8e-4)]
    model = [(c, 7e-4 if c == "metastasis" else p) for c, p in model]
    r = reconcile(model, SOLID, personal_cancer_history=None, brock_probability=0.5, lidc_malignancy=0.95)
    assert r.malignancy_probability > 0.2  # from the model's 0.1 %
    assert _p(r.ranked, "metastasis") <= METASTASIS_PRIOR + 1e-9
    assert max((p, c) for c, p in r.ranked if c != "infection")[1] == "adenocarcinoma"


@pytest.mark.parametrize("composition", ["ground_glass", "part_solid"])
def test_the_ai_may_raise_but_not_lower_brock_for_a_subsolid_nodule(composition: str) -> None:
    benign_reading = _model(adenocarcinoma=0.01, infection=0.9)
    low = reconcile(
        benign_reading,
        ImageSigns(composition),
        personal_cancer_history=None,
        brock_probability=0.05,
        lidc_malignancy=0.02,
    )
    assert low.malignancy_probability == pytest.approx(0.05, abs=1e-6)
    assert _p(low.ranked, "adenocarcinoma") >= 0.04
    high = reconcile(
        _model(adenocarcinoma=0.9),
        ImageSigns(composition),
        personal_cancer_history=None,
        brock_probability=0.05,
        lidc_malignancy=0.9,
    )
    assert high.malignancy_probability > 0.05
    # a solid nodule's Brock is still lowered by the same benign readings
    solid = reconcile(
        benign_reading, SOLID, personal_cancer_history=None, brock_probability=0.05, lidc_malignancy=0.02
    )
    assert solid.malignancy_probability < 0.05


def test_small_cell_carcinoma_does_not_lead_a_solitary_nodule() -> None:
    model = _model(small_cell_carcinoma=0.8, squamous_cell_carcinoma=0.1)
    nodule = reconcile(
        model, ImageSigns("solid", mean_diameter_mm=18.0), personal_cancer_history=None, brock_probability=0.6
    )
    assert nodule.ranked[0][0] == "squamous_cell_carcinoma"
    assert _p(nodule.ranked, "small_cell_carcinoma") <= 0.01 * nodule.malignancy_probability + 1e-9
    assert any("small cell" in why for why in nodule.reasons)
    mass = reconcile(
        model, ImageSigns("solid", mean_diameter_mm=45.0), personal_cancer_history=None, brock_probability=0.6
    )
    assert mass.ranked[0][0] == "small_cell_carcinoma"
