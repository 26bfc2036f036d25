"""Evaluation metrics on tiny phantoms and the evaluate-seg / train-seg command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radiology_app.cli import main
from radiology_app.cli.segmentation_cmds import EVALUATE_KEYS
from segmentation.dataset import TRAIN_SEED_BASE
from segmentation.errors import SegmentationError
from segmentation.evaluate import NoduleOutcome, evaluate, evaluate_case, summarize
from segmentation.inference import NoduleSegmenter
from segmentation.phantom.chest import make_chest_phantom
from segmentation.phantom.nodules import NoduleSpec

SMALL = {"shape_zyx": (40, 128, 128), "spacing_zyx_mm": (7.0, 2.8, 2.8), "with_vessels": False}


def test_evaluate_report_has_the_contract_keys(tiny_segmenter: NoduleSegmenter) -> None:
    rep = evaluate(cases=1, seed=7_000_001, segmenter=tiny_segmenter, phantom_kwargs=SMALL)
    d = rep.to_dict()
    for key in EVALUATE_KEYS:
        assert key in d
    assert d["cases"] == 1 and d["seed"] == 7_000_001
    assert set(d["sensitivity_by_size"]) == {"3-4", "4-6", "6-8", "8-15", ">=15"}
    assert d["false_positives_per_scan"] >= 0
    assert rep.nodules >= 1


def test_evaluate_case_perfect_segmenter_scores_perfectly(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the truth as the prediction, every nodule is found, Dice is 1 and errors are 0."""
    from segmentation import evaluate as ev
    from segmentation.inference import MeasuredNodule, SegmentationResult
    from segmentation.measure import measure_nodule

    ph = make_chest_phantom(
        3,
        nodules=[NoduleSpec("solid", 12.0), NoduleSpec("ground_glass", 16.0)],
        **SMALL,  # type: ignore[arg-type]
    )

    def truth_as_prediction(
        hu: np.ndarray, sp: tuple[float, float, float], **_: object
    ) -> SegmentationResult:
        nods = [
            MeasuredNodule(
                t.label_id, measure_nodule(hu, ph.labels == t.label_id, sp), 0.99, 0.9, t.voxel_count
            )
            for t in ph.nodules
        ]
        return SegmentationResult(ph.labels.copy(), None, ph.lung_mask, nods, "")

    monkeypatch.setattr(ev, "segment_nodules", truth_as_prediction)
    outcomes, fps = evaluate_case(ph, None)  # type: ignore[arg-type]
    assert fps == [] and all(o.detected for o in outcomes)
    assert all(o.dice == 1.0 and o.diameter_error_mm == 0.0 and o.volume_error_pct == 0.0 for o in outcomes)
    assert all(o.spiculation_score is not None for o in outcomes)


def test_summary_says_how_often_each_true_margin_is_called_spiculated() -> None:
    def found(margin: str, spic: float) -> NoduleOutcome:
        return NoduleOutcome("solid", 10.0, margin, False, True, 0.9, 0.1, 1.0, 0.99, spic)

    outcomes = [
        found("smooth", 0.0),
        found("smooth", 0.54),
        found("spiculated", 0.81),
        found("spiculated", 0.27),
    ]
    outcomes.append(NoduleOutcome("solid", 10.0, "lobulated", False, False))  # missed: not counted
    rep = summarize(outcomes, [], 1, 7_000_001)
    assert rep.called_spiculated_by_margin == {"smooth": 0.5, "lobulated": None, "spiculated": 0.5}


def test_evaluate_refuses_training_seeds(tiny_segmenter: NoduleSegmenter) -> None:
    with pytest.raises(SegmentationError, match="training seeds"):
        evaluate(cases=2, seed=TRAIN_SEED_BASE + 5, segmenter=tiny_segmenter)


def test_cli_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate-seg", "--help"])
    out = capsys.readouterr().out
    assert "--cases" in out and "--seed" in out and "--json" in out
    with pytest.raises(SystemExit):
        main(["train-seg", "--help"])
    out = capsys.readouterr().out
    assert "--minutes" in out and "--device" in out and "--loader-workers" in out


def test_cli_evaluate_with_missing_weights_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["evaluate-seg", "--cases", "1", "--weights", str(tmp_path / "none.safetensors"), "--json"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "none.safetensors" in err and "not found" in err


def test_cli_train_seg_generates_trains_and_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from segmentation.dataset import generate_cases

    data = tmp_path / "cases"
    generate_cases(
        data,
        1,
        spacing_mm=2.5,
        n_nodules=(2, 2),
        phantom_kwargs={"shape_zyx": (30, 96, 96), "spacing_zyx_mm": (9.0, 3.7, 3.7), "with_vessels": False},
    )
    rc = main(
        [
            "train-seg",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
            "--iters",
            "2",
            "--patch",
            "32",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--loader-workers",
            "1",
            "--export",
            str(tmp_path / "w.safetensors"),
            "--json",
        ]
    )
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["iteration"] == 2 and len(res["sha256"]) == 64


def test_evaluate_reports_after_each_case(tiny_segmenter: NoduleSegmenter) -> None:
    seen: list[int] = []
    evaluate(
        cases=2,
        seed=7_000_001,
        segmenter=tiny_segmenter,
        phantom_kwargs=SMALL,
        on_case=lambda r: seen.append(r.cases),
    )
    assert seen == [1, 2]


def test_evaluate_seg_real_reads_series_and_annotations_from_a_folder(
    tmp_path: Path, write_series: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """``evaluate-seg --real``: a DICOM series with a LUNA16-style row, JSON out and a contact sheet."""
    ph = make_chest_phantom(
        5,
        nodules=[NoduleSpec("solid", 14.0)],
        shape_zyx=(48, 160, 160),
        spacing_zyx_mm=(2.5, 1.1, 1.1),
        with_vessels=False,
    )
    files = write_series("scan", hu=ph.hu, spacing_zyx_mm=ph.spacing_zyx_mm)  # type: ignore[operator]
    import pydicom

    series_uid = pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID
    zc, yc, xc = (float(v) for v in np.argwhere(ph.labels > 0).mean(axis=0))
    sz, sy, sx = ph.spacing_zyx_mm
    (tmp_path / "scan" / "rows.csv").write_text(
        "seriesuid,coordX,coordY,coordZ,diameter_mm\n"
        f"{series_uid},{xc * sx:.1f},{yc * sy:.1f},{zc * sz:.1f},{ph.nodules[0].mean_diameter_mm}\n",
        encoding="utf-8",
    )
    (tmp_path / "other.csv").write_text(  # a series that is not there is reported, not fatal
        "seriesuid,coordX,coordY,coordZ,diameter_mm\n9.9.9,0,0,0,6\n", encoding="utf-8"
    )
    sheets = tmp_path / "sheets"
    assert main(["evaluate-seg", "--real", str(tmp_path), "--sheets", str(sheets), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scans"] == out["cases"] == 1 and out["seed"] is None
    assert out["nodules_ge_4mm"] == 1
    assert out["skipped"] == [
        {"series_uid": "9.9.9", "source": str(tmp_path / "other.csv"), "reason": "no DICOM series"}
    ]
    (scan,) = out["per_scan"]
    assert scan["series_uid"] == series_uid and scan["format"] == "luna16-csv"
    assert {
        "sensitivity_ge_4mm",
        "false_positives_per_scan",
        "operating_points",
        "false_positives_by_where",
    } <= set(out)
    assert (sheets / "PAT-1.png").is_file()


def test_evaluate_seg_real_needs_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate-seg", "--real", str(tmp_path), "--json"]) != 0
    assert "no LIDC XML read or LUNA16-style CSV" in capsys.readouterr().err
