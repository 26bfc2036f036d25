"""Evaluation (contract keys, modality conditions) with a tiny model; the 2-D LIDC branch on real crops."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radiology_app.core.config import Settings

LIDC = Path(__file__).resolve().parents[3] / "shared" / "data" / "lidc-nodule-crops"
if not LIDC.exists():
    LIDC = Path("/work/shared/data/lidc-nodule-crops")


def test_run_evaluation_reports_the_contract_keys(
    tiny_model_bert: dict[str, Any], tmp_path: Path, app_home: Path
) -> None:
    from radiology_app.diagnosis.evaluate import run_evaluation

    r = run_evaluation(
        Settings(text_backbone_dir=str(tiny_model_bert["backbone"])),
        cases=18,
        seed=77,
        weights=tiny_model_bert["weights"],
        card=tiny_model_bert["card"],
        cache_dir=tmp_path,
    )
    for k in (
        "top1",
        "top3",
        "macro_auc",
        "sensitivity_malignant",
        "specificity_malignant",
        "ece",
        "classes",
        "confusion",
        "modality",
        "latency_ms_per_nodule",
    ):
        assert k in r
    m = r["modality"]
    for k in ("router_mean", "top1_image_only", "top1_text_only", "top1_fused", "fusion_gain_points"):
        assert k in m
    assert set(m["router_mean"]) >= {"image", "text"}
    assert m["fusion_gain_points"] == pytest.approx(
        100 * (m["top1_fused"] - max(m["top1_image_only"], m["top1_text_only"]))
    )
    lat = r["latency_ms_per_nodule"]
    assert lat["pytorch"] is not None and lat["pytorch"] > 0
    assert lat["onnxruntime"] is not None and lat["onnxruntime"] > 0
    assert np.asarray(r["confusion"]).sum() == 18
    assert list((tmp_path).glob("eval_base_77_18_*.npz"))  # rendered once, cached


def test_labels_folds_and_canvas() -> None:
    from radiology_app.diagnosis.lidc import label_from_median, patient_fold, slice_from_crop3d, to_canvas

    assert label_from_median(1.0) == 0 and label_from_median(2.5) == 0
    assert label_from_median(3.0) is None
    assert label_from_median(3.5) == 1 and label_from_median(5) == 1
    assert patient_fold("LIDC-IDRI-0001") == patient_fold("LIDC-IDRI-0001")
    folds = {patient_fold(f"LIDC-IDRI-{i:04d}") for i in range(100)}
    assert folds == {0, 1, 2, 3, 4}
    hu = np.full((20, 20), 40.0, np.float32)  # 10 mm at 0.5 mm
    c = to_canvas(hu, (0.5, 0.5))
    assert c.shape == (2, 64, 64)
    width = (c[1] > 0.2).any(axis=0).sum()
    assert 9 <= width <= 11
    crop = np.full((8, 16, 16), -900.0, np.float32)
    m = np.zeros_like(crop, dtype=np.uint8)
    m[3, 4:10, 5:9] = 1
    m[5, 6:8, 6:8] = 1
    sl = slice_from_crop3d(crop, m, (1.25, 1.25, 1.25))
    assert sl is not None and sl[0].shape == (6, 4)
    assert slice_from_crop3d(crop, np.zeros_like(m), (1, 1, 1)) is None


@pytest.mark.skipif(not (LIDC / "labels.csv").exists(), reason="shared LIDC crops not present")
def test_lidc_branch_trains_saves_and_evaluates_on_real_crops(tmp_path: Path) -> None:
    from radiology_app.diagnosis.lidc import evaluate_crops, load_crops, load_lidc, save_lidc, train_lidc

    with open(LIDC / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    keep = [r for r in rows if r["malignancy_median"] not in ("", "3.0")][:120]
    sub = tmp_path / "labels.csv"
    with open(sub, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(keep)
    crops = load_crops(LIDC / "crops", sub)
    assert len(crops) == len(keep) and {c.label for c in crops} == {0, 1}
    net, metrics = train_lidc(crops, epochs=1)
    assert metrics["n_train"] + metrics["n_val"] == len(crops)
    weights, card = tmp_path / "lidc_image.safetensors", tmp_path / "lidc_image.md"
    sha = save_lidc(net, weights, card, metrics)
    assert sha in card.read_text()
    load_lidc(weights, card)
    r = evaluate_crops(LIDC / "crops", sub, split="all", weights=weights, card=card)
    assert r["n"] == len(crops) and 0.0 <= r["auc"] <= 1.0
    assert set(r) >= {"n", "auc", "sensitivity", "specificity"}


def test_cli_help_lists_the_diagnosis_commands_without_torch() -> None:
    code = (
        "import sys, io, contextlib\nfrom radiology_app.cli import main\nout = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n    try: main(['evaluate', '--help'])\n"
        "    except SystemExit: pass\nprint(out.getvalue())\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--cases" in out and "NO-TORCH" in out
