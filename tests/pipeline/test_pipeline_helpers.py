"""Small pure helpers of the pipeline: noise estimate, key slice, measurement conversion."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from radiology_app.core.types import Volume
from radiology_app.pipeline import ModelRegistry, estimate_noise_hu, nodule_from_measurement


def test_noise_estimate_recovers_gaussian_sigma() -> None:
    rng = np.random.default_rng(0)
    hu = (-850 + rng.normal(0, 25.0, (12, 64, 64))).astype(np.float32)
    lung = np.ones(hu.shape, dtype=np.uint8)
    est = estimate_noise_hu(hu, lung)
    assert est is not None and abs(est - 25.0) < 2.0
    assert estimate_noise_hu(hu, np.zeros_like(lung)) is None  # no lung: no estimate


def test_measurement_to_finding_lps_and_key_slice() -> None:
    vol = Volume(
        hu=np.zeros((10, 20, 20), dtype=np.int16),
        spacing_zyx_mm=(2.0, 0.5, 0.5),
        origin_lps_mm=(-5.0, -5.0, 100.0),
        direction=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    )
    labels = np.zeros(vol.shape_zyx, dtype=np.int16)
    labels[3:6, 8:12, 8:12] = 4
    labels[4, 7:13, 7:13] = 4  # slice 4 has the largest area
    m = SimpleNamespace(
        centroid_zyx=(4.0, 9.5, 9.5),
        bbox_zyx=((3, 7, 7), (5, 12, 12)),
        long_axis_mm=3.0,
        short_axis_mm=2.5,
        mean_diameter_mm=2.8,
        volume_mm3=20.0,
        mean_hu=10.0,
        min_hu=-5.0,
        max_hu=40.0,
        composition="solid",
        solid_component_mm=2.8,
        calcification=True,
        calcification_pattern=None,
        fat=False,
        side="right",
        lobe="RLL",
        juxtapleural=False,
        spiculation_score=0.1,
    )
    n = nodule_from_measurement("N7", 4, m, vol, labels)
    assert n.key_slice_z == 4 and n.label_id == 4
    assert n.centroid_lps_mm == (-5.0 + 9.5 * 0.5, -5.0 + 9.5 * 0.5, 108.0)
    assert n.bbox_lps_mm == ((-1.5, -1.5, 106.0), (1.0, 1.0, 110.0))
    assert n.calcification == "indeterminate"  # calcified without a recognised pattern


def test_solid_component_larger_than_nodule_is_capped_for_the_rules() -> None:
    from radiology_app.core.findings import NoduleFinding
    from radiology_app.pipeline import _lung_rads_for, _solid_part

    n = NoduleFinding(
        id="N1",
        composition="part_solid",
        mean_diameter_mm=13.4,
        long_axis_mm=15.5,
        short_axis_mm=11.2,
        solid_component_mm=14.8,
    )
    assert _solid_part(n) == 13.4
    lr = _lung_rads_for(n)
    assert lr.category is not None  # assessable (the raw value would be rejected by the rules)
    assert _solid_part(NoduleFinding(id="N2", composition="solid", solid_component_mm=5.0)) is None


def test_juxtapleural_rule_needs_a_smooth_flat_nodule() -> None:
    from radiology_app.core.findings import NoduleFinding
    from radiology_app.pipeline import _lung_rads_for

    def nodule(**kw: object) -> NoduleFinding:
        base: dict[str, object] = {
            "id": "N1",
            "composition": "solid",
            "mean_diameter_mm": 7.0,
            "long_axis_mm": 9.0,
            "short_axis_mm": 5.0,
            "volume_mm3": 110.0,  # a lentil: 0.29 of a 9 mm ball
            "juxtapleural": True,
            "spiculation_score": 0.05,
        }
        base.update(kw)
        return NoduleFinding(**base)  # type: ignore[arg-type]

    assert _lung_rads_for(nodule()).category == "2"
    # solid 7 mm without the benign juxtapleural features: category 3
    assert _lung_rads_for(nodule(spiculation_score=0.3)).category == "3"
    assert _lung_rads_for(nodule(volume_mm3=350.0)).category == "3"  # round (0.92 of the ball)
    assert _lung_rads_for(nodule(juxtapleural=False)).category == "3"
    assert _lung_rads_for(nodule(spiculation_score=None)).category == "3"


def test_the_segmenter_loads_while_the_diagnosis_model_is_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's two models have their own locks: analyze_study loads the diagnosis model in the
    background during segmentation, which a shared lock had serialised (about 4 s of every analysis)."""
    import threading

    from radiology_app.core.config import Settings
    from radiology_app.diagnosis import api
    from segmentation import inference

    loading, release = threading.Event(), threading.Event()

    def slow_diagnosis(*args: object, **kwargs: object) -> str:
        loading.set()
        release.wait(10.0)
        return "dx"

    monkeypatch.setattr(api, "load_diagnosis_model", slow_diagnosis)
    monkeypatch.setattr(inference, "load_model", lambda **kwargs: "seg")
    registry = ModelRegistry()
    worker = threading.Thread(target=registry.diagnosis, args=(Settings(),))
    worker.start()
    try:
        assert loading.wait(10.0)
        got: list[object] = []
        seg = threading.Thread(target=lambda: got.append(registry.segmenter(Settings())))
        seg.start()
        seg.join(5.0)
        assert got == ["seg"]  # while the diagnosis model is still loading
    finally:
        release.set()
        worker.join()
    assert registry.diagnosis(Settings()) == "dx"
