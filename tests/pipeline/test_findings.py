"""Findings: JSON round trip in the contract shape, and the pure review edits."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from radiology_app.core.findings import (
    Findings,
    FindingsError,
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

CONTRACT_NODULE_KEYS = {
    "id",
    "centroid_lps_mm",
    "bbox_lps_mm",
    "long_axis_mm",
    "short_axis_mm",
    "mean_diameter_mm",
    "volume_mm3",
    "mean_hu",
    "composition",
    "solid_component_mm",
    "calcification",
    "fat",
    "lobe",
    "juxtapleural",
    "spiculation_score",
    "lung_rads",
    "fleischner",
    "brock_probability",
    "differential",
    "modality_weights",
    "evidence",
}


def _findings() -> Findings:
    n1 = NoduleFinding(
        id="N1",
        label_id=1,
        centroid_lps_mm=(10.0, -20.5, 30.0),
        bbox_lps_mm=((5.0, -25.0, 25.0), (15.0, -16.0, 35.0)),
        centroid_zyx=(12.0, 200.5, 300.25),
        bbox_zyx=((10, 190, 290), (14, 210, 310)),
        key_slice_z=12,
        long_axis_mm=9.1,
        short_axis_mm=7.3,
        mean_diameter_mm=8.2,
        volume_mm3=290.0,
        mean_hu=25.0,
        min_hu=-300.0,
        max_hu=120.0,
        composition="solid",
        solid_component_mm=None,
        calcification=None,
        fat=False,
        side="right",
        lobe="RUL",
        juxtapleural=False,
        spiculation_score=0.2,
        lung_rads=LungRadsAssessment("4A", "3-month LDCT", "solid 8-15 mm at baseline"),
        fleischner=FleischnerAssessment("CT at 3 months", "solid 6-8 mm high risk", True),
        brock_probability=0.07,
        differential=(("adenocarcinoma", 0.6), ("granuloma", 0.3)),
        malignancy_probability=0.65,
        modality_weights={"image": 0.7, "text": 0.3},
        evidence=("30 pack-years",),
    )
    n2 = NoduleFinding(id="N2", composition="ground_glass")
    return Findings(
        study_uid="1.2.3",
        series_uid="1.2.3.4",
        warnings=("two candidate series",),
        facts={"age": {"value": 64, "span": [0, 5], "text": "64 yo"}},
        models=(ModelRecord("nodule_unet", "1.0", "ab" * 32),),
        nodules=(n1, n2),
        lung_rads=LungRadsAssessment("4A", "3-month LDCT", "worst nodule N1"),
        impression=("1. 8.2 mm solid nodule RUL.",),
    )


def test_json_has_contract_keys_and_nulls() -> None:
    doc = _findings().to_json()
    for key in ("study_uid", "series_uid", "warnings", "facts", "models", "nodules", "report"):
        assert key in doc
    assert doc["report"] is None
    for nodule in doc["nodules"]:
        assert set(nodule) >= CONTRACT_NODULE_KEYS
    n2 = doc["nodules"][1]
    assert n2["long_axis_mm"] is None and n2["bbox_lps_mm"] is None
    assert n2["modality_weights"] == {"image": None, "text": None}
    assert n2["lung_rads"] == {"category": None, "management": None, "reason": None}
    assert doc["nodules"][0]["differential"][0] == {"diagnosis": "adenocarcinoma", "probability": 0.6}
    assert doc["nodules"][0]["bbox_lps_mm"] == [[5.0, -25.0, 25.0], [15.0, -16.0, 35.0]]
    json.dumps(doc)  # serialisable


def test_round_trip() -> None:
    f = _findings()
    assert Findings.from_json(f.to_json_text()) == f
    assert Findings.from_json(f.to_json()) == f


def test_malformed_json_raises() -> None:
    with pytest.raises(FindingsError):
        Findings.from_json("{not json")
    with pytest.raises(FindingsError):
        Findings.from_json({"study_uid": "1"})
    with pytest.raises(FindingsError):
        Findings.from_json(
            {"study_uid": "1", "series_uid": "2", "nodules": [{"id": "N1", "review": "maybe"}]}
        )


def test_edits_are_pure_and_tracked() -> None:
    f = _findings()
    g = reject_nodule(f, "N2")
    assert f.nodule("N2").review == "pending"
    assert g.nodule("N2").review == "rejected"
    assert [n.id for n in g.reported_nodules] == ["N1"]
    h = edit_nodule(g, "N1", composition="part_solid", solid_component_mm=4.0)
    assert h.nodule("N1").review == "edited" and h.nodule("N1").composition == "part_solid"
    assert accept_nodule(h, "N1").nodule("N1").review == "edited"
    with pytest.raises(FindingsError):
        edit_nodule(f, "N1", composition="cloudy")
    with pytest.raises(FindingsError):
        edit_nodule(f, "N1", review="accepted")
    with pytest.raises(FindingsError):
        reject_nodule(f, "N9")
    new = NoduleFinding(id=next_nodule_id(f), mean_diameter_mm=5.0)
    k = add_nodule(f, new)
    added = k.nodules[-1]
    assert added.id == "N3" and added.review == "added" and added.source == "clinician"
    with pytest.raises(FindingsError):
        add_nodule(k, new)
    assert [n.id for n in remove_nodule(k, "N3").nodules] == ["N1", "N2"]


def test_sign_accepts_pending_and_edit_clears_signature() -> None:
    f = reject_nodule(_findings(), "N2")
    s = sign_findings(f, " Dr. A. Chen ")
    assert s.reviewer == "Dr. A. Chen" and s.is_signed
    assert s.nodule("N1").review == "accepted" and s.nodule("N2").review == "rejected"
    assert not accept_nodule(s, "N1").is_signed
    with pytest.raises(FindingsError):
        sign_findings(f, "  ")


def _one_nodule(
    model: tuple[tuple[str, float], ...], *, mm: float, spiculation: float, facts: dict[str, Any]
) -> Findings:
    """A study with one solid RUL nodule of ``mm`` mean diameter whose differential is ``model``'s."""
    n1 = NoduleFinding(
        id="N1",
        composition="solid",
        mean_diameter_mm=mm,
        long_axis_mm=mm + 1.0,
        short_axis_mm=mm - 1.0,
        lobe="RUL",
        spiculation_score=spiculation,
        differential=model,
        model_differential=model,
    )
    return Findings(study_uid="1.2.3", series_uid="1.2.3.4", facts=facts, nodules=(n1,))


def test_a_clinicians_edit_re_reconciles_the_differential() -> None:
    """The model's own differential is kept, so a corrected sign or history re-weighs the product's."""
    from radiology_app.pipeline import edit_and_reassess

    model = (("metastasis", 0.6), ("adenocarcinoma", 0.3), ("granuloma", 0.1))
    facts: dict[str, Any] = {
        "age": {"value": 64},
        "sex": {"value": "F"},
        "personal_cancer_history": {"value": True},
    }
    f = _one_nodule(model, mm=8.0, spiculation=0.1, facts=facts)
    known = edit_and_reassess(f, "N1", lobe="RUL")
    assert known.nodules[0].differential[0][0] == "metastasis"
    calcified = edit_and_reassess(f, "N1", calcification="central")
    assert calcified.nodules[0].differential[0][0] == "granuloma"
    assert calcified.nodules[0].malignancy_probability is not None
    assert calcified.nodules[0].malignancy_probability <= 0.1
    fat = edit_and_reassess(f, "N1", fat=True).nodules[0]
    assert fat.differential[0][0] == "hamartoma" and fat.lung_rads.category == "1"
    assert fat.malignancy_probability is not None and fat.malignancy_probability <= 0.1
    with pytest.raises(FindingsError, match="calcification must be none or one of central"):
        edit_and_reassess(f, "N1", calcification="starry")
    with pytest.raises(FindingsError, match="fat must be true or false"):
        edit_and_reassess(f, "N1", fat="yes")
    denied = dataclasses.replace(f, facts={**facts, "personal_cancer_history": {"value": False}})
    nodule = edit_and_reassess(denied, "N1", lobe="RUL").nodules[0]
    assert dict(nodule.differential)["metastasis"] <= 0.02
    assert nodule.model_differential == model
    assert NoduleFinding.from_json(nodule.to_json()) == nodule


def test_a_spiculated_margin_set_by_the_clinician_takes_the_lead_from_granuloma() -> None:
    from radiology_app.pipeline import edit_and_reassess

    model = (("granuloma", 0.6), ("hamartoma", 0.2), ("adenocarcinoma", 0.2))
    facts = {"age": {"value": 66}, "sex": {"value": "M"}, "personal_cancer_history": {"value": False}}
    f = _one_nodule(model, mm=9.0, spiculation=0.0, facts=facts)
    assert edit_and_reassess(f, "N1", lobe="RUL").nodules[0].differential[0][0] == "granuloma"
    spiculated = edit_and_reassess(f, "N1", spiculation_score=0.5).nodules[0]
    # a primary lung cancer or an inflammatory lesion leads; not granuloma, hamartoma or a lymph node
    assert spiculated.differential[0][0] in ("adenocarcinoma", "squamous_cell_carcinoma", "infection")
    probs = dict(spiculated.differential)
    assert probs["granuloma"] + probs["hamartoma"] <= 0.05
    assert spiculated.lung_rads.category == "4X"


def test_a_sign_set_on_a_perifissural_nodule_ends_the_lymph_node_pattern() -> None:
    from radiology_app.pipeline import edit_and_reassess

    model = (("intrapulmonary_lymph_node", 0.6), ("granuloma", 0.2), ("adenocarcinoma", 0.2))
    facts = {"age": {"value": 66}, "sex": {"value": "M"}, "personal_cancer_history": {"value": False}}
    f = _one_nodule(model, mm=8.0, spiculation=0.0, facts=facts)
    node = dataclasses.replace(f.nodules[0], juxtapleural=True, perifissural=True, lymph_node_morphology=True)
    f = dataclasses.replace(f, nodules=(node,))
    assert edit_and_reassess(f, "N1", lobe="RUL").nodules[0].lung_rads.category == "2"
    spiculated = edit_and_reassess(f, "N1", spiculation_score=0.5).nodules[0]
    assert not spiculated.perifissural and not spiculated.lymph_node_morphology
    assert spiculated.lung_rads.category == "4X"
    assert spiculated.differential[0][0] != "intrapulmonary_lymph_node"
    calcified = edit_and_reassess(f, "N1", calcification="central").nodules[0]
    assert not calcified.perifissural and calcified.differential[0][0] == "granuloma"
