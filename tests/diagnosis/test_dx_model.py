"""The fused model end to end with tiny random backbones: training, safetensors + card, the public API,
LoRA target choice per architecture, Qwen3 path, ONNX parity, modality handling and fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radiology_app.core.config import Settings, load_settings
from radiology_app.core.errors import ModelError, ModelIntegrityError
from radiology_app.diagnosis.classes import CLASS_NAMES
from radiology_app.diagnosis.synthetic import generate_cases, render_case


def _inputs(n: int = 4, seed: int = 21) -> list[Any]:
    from radiology_app.diagnosis.api import DiagnosisInput

    out = []
    for c in generate_cases(n, seed):
        hu, mask = render_case(c)
        out.append(DiagnosisInput(hu, mask, note_text=c.note, slice_thickness_mm=c.slice_thickness_mm))
    return out


def test_lora_targets_per_architecture(tiny_bert_dir: Path, tiny_qwen3_dir: Path) -> None:
    from radiology_app.diagnosis.text import load_backbone, lora_target_modules

    assert lora_target_modules(load_backbone(tiny_bert_dir).model) == ["query", "value"]
    assert lora_target_modules(load_backbone(tiny_qwen3_dir).model) == ["q_proj", "v_proj"]
    bb = load_backbone(tiny_qwen3_dir, trainable_lora={"r": 4, "lora_alpha": 8})
    trainable = [n for n, p in bb.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_backbone_rejects_a_folder_without_a_model(tmp_path: Path) -> None:
    from radiology_app.diagnosis.text import load_backbone

    with pytest.raises(ModelError):
        load_backbone(tmp_path)


def test_predict_returns_ranked_calibrated_differentials(
    tiny_model_bert: dict[str, Any], app_home: Path
) -> None:
    from radiology_app.diagnosis.api import load_diagnosis_model

    settings = Settings(text_backbone_dir=str(tiny_model_bert["backbone"]))
    model = load_diagnosis_model(settings, weights=tiny_model_bert["weights"], card=tiny_model_bert["card"])
    inputs = _inputs()
    res = model.predict(inputs)
    assert len(res) == len(inputs)
    for r, inp in zip(res, inputs, strict=True):
        names = [n for n, _ in r.ranked]
        probs = [p for _, p in r.ranked]
        assert sorted(names) == sorted(CLASS_NAMES)
        assert probs == sorted(probs, reverse=True)
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert 0.0 <= r.malignancy_probability <= 1.0
        assert set(r.modality_weights) == {"image", "text", "joint"}
        assert sum(r.modality_weights.values()) == pytest.approx(1.0, abs=1e-4)
        assert r.saliency is not None and r.saliency.shape == inp.crop_hu.shape
        assert r.saliency.dtype == np.float32 and r.saliency.max() <= 1.0 + 1e-6
        for ev in r.evidence:
            assert inp.note_text[ev.span[0] : ev.span[1]] == ev.text
    infos = model.model_info()
    assert infos[0].sha256 == json.loads(json.dumps(infos[0].sha256))
    assert len(infos[0].sha256) == 64


def test_crops_of_other_geometry_are_resampled(tiny_model_bert: dict[str, Any], app_home: Path) -> None:
    from radiology_app.diagnosis.api import DiagnosisInput, load_diagnosis_model

    model = load_diagnosis_model(
        Settings(text_backbone_dir=str(tiny_model_bert["backbone"])),
        weights=tiny_model_bert["weights"],
        card=tiny_model_bert["card"],
    )
    hu = np.full((20, 70, 70), -850.0, np.float32)
    hu[8:12, 30:40, 30:40] = 30.0
    r = model.predict([DiagnosisInput(hu, (hu > 0).astype(np.uint8), (2.0, 0.7, 0.7), "")])[0]
    assert r.saliency is not None and r.saliency.shape == hu.shape
    assert r.evidence == ()
    with pytest.raises(ModelError):
        model.predict([DiagnosisInput(hu, np.zeros((2, 2, 2), np.uint8), (1, 1, 1), "")])


def test_tampered_weights_are_refused(tiny_model_bert: dict[str, Any], tmp_path: Path) -> None:
    from radiology_app.diagnosis.api import load_diagnosis_model

    w = tmp_path / "fused_dx.safetensors"
    data = bytearray(tiny_model_bert["weights"].read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError):
        load_diagnosis_model(
            Settings(text_backbone_dir=str(tiny_model_bert["backbone"])),
            weights=w,
            card=tiny_model_bert["card"],
        )


def test_a_mismatched_backbone_is_refused(tiny_model_bert: dict[str, Any], tiny_qwen3_dir: Path) -> None:
    from radiology_app.diagnosis.api import load_diagnosis_model

    with pytest.raises(ModelError, match="backbone"):
        load_diagnosis_model(
            Settings(text_backbone_dir=str(tiny_qwen3_dir)),
            weights=tiny_model_bert["weights"],
            card=tiny_model_bert["card"],
        )


def test_qwen3_backbone_path_trains_and_predicts(
    tiny_qwen3_dir: Path, tmp_path: Path, app_home: Path, tiny_tools: dict[str, Any]
) -> None:
    from radiology_app.diagnosis.api import load_diagnosis_model

    w, c = tiny_tools["train_tiny"](tiny_qwen3_dir, tmp_path, n_cases=18, epochs=1)
    model = load_diagnosis_model(Settings(text_backbone_dir=str(tiny_qwen3_dir)), weights=w, card=c)
    res = model.predict(_inputs(2))
    assert len(res) == 2 and all(len(r.ranked) == len(CLASS_NAMES) for r in res)


def test_onnxruntime_backend_matches_pytorch(tiny_model_bert: dict[str, Any], app_home: Path) -> None:
    from radiology_app.diagnosis.api import load_diagnosis_model

    settings = Settings(text_backbone_dir=str(tiny_model_bert["backbone"]))
    kw = {"weights": tiny_model_bert["weights"], "card": tiny_model_bert["card"]}
    pt = load_diagnosis_model(settings, saliency=False, **kw)
    ort = load_diagnosis_model(settings.replace(inference_backend="onnxruntime"), **kw)
    assert ort.backend == "onnxruntime"
    inputs = [*_inputs(3), _inputs(1, seed=5)[0]]
    from dataclasses import replace

    inputs.append(replace(inputs[0], note_text=""))
    a, b = pt.predict(inputs), ort.predict(inputs)
    for x, y in zip(a, b, strict=True):
        px, py = dict(x.ranked), dict(y.ranked)
        assert max(abs(px[k] - py[k]) for k in px) < 1e-4
        assert max(abs(x.modality_weights[k] - y.modality_weights[k]) for k in x.modality_weights) < 1e-4
        assert [e.span for e in x.evidence] == [e.span for e in y.evidence]
    with pytest.raises(ModelError):
        load_diagnosis_model(settings.replace(inference_backend="tensorflow"), **kw)


def test_training_resumes_from_its_checkpoint(
    tiny_bert_dir: Path, tmp_path: Path, tiny_tools: dict[str, Any]
) -> None:
    from radiology_app.diagnosis.network import NetConfig
    from radiology_app.diagnosis.text import load_backbone
    from radiology_app.diagnosis.train import TrainConfig, build_arrays, train_model

    bb = load_backbone(tiny_bert_dir)
    tr = build_arrays(generate_cases(18, 31), bb)
    va = build_arrays(generate_cases(9, 32), bb)
    cfg = NetConfig(text_hidden=bb.hidden_size, **tiny_tools["net"])  # type: ignore[arg-type]
    _, h1 = train_model(tr, va, cfg, TrainConfig(epochs=2, batch_size=9), tmp_path, max_seconds=0.0)
    assert len(h1["epochs"]) == 1  # stopped after the first epoch
    _, h2 = train_model(tr, va, cfg, TrainConfig(epochs=2, batch_size=9), tmp_path)
    assert [e["epoch"] for e in h2["epochs"]] == [1, 2]  # resumed, not restarted


def test_finetune_writes_an_adapter_and_reports_before_after(
    tiny_model_bert: dict[str, Any], tmp_path: Path, app_home: Path
) -> None:
    from radiology_app.diagnosis.api import load_diagnosis_model
    from radiology_app.diagnosis.finetune import finetune_from_csv, write_cases_csv

    csv_path = write_cases_csv(generate_cases(27, 41, domain="site_b"), tmp_path / "local")
    settings = Settings(text_backbone_dir=str(tiny_model_bert["backbone"]))
    r = finetune_from_csv(
        csv_path,
        settings,
        out_dir=tmp_path / "adapter",
        epochs=1,
        threads=1,
        weights=tiny_model_bert["weights"],
        card=tiny_model_bert["card"],
    )
    assert set(r["before"]) >= {"top1", "nll"} and set(r["after"]) >= {"top1", "nll"}
    assert r["n_train"] + r["n_held_back"] == 27
    adapter = Path(r["adapter_dir"])
    assert (adapter / "lora" / "adapter_config.json").exists() and (adapter / "fused.safetensors").exists()
    better = r["after"]["top1"] > r["before"]["top1"] or (
        r["after"]["top1"] == r["before"]["top1"] and r["after"]["nll"] < r["before"]["nll"]
    )
    assert r["activated"] == better
    assert (load_settings().adapter_dir == str(adapter)) == better
    model = load_diagnosis_model(
        settings.replace(adapter_dir=str(adapter)),
        weights=tiny_model_bert["weights"],
        card=tiny_model_bert["card"],
    )
    assert [i.name for i in model.model_info()][1] == "site-adapter"
    assert len(model.predict(_inputs(1))) == 1
    info = json.loads((adapter / "adapter.json").read_text())
    info["sha256"] = "0" * 64
    (adapter / "adapter.json").write_text(json.dumps(info))
    with pytest.raises(ModelIntegrityError):
        load_diagnosis_model(
            settings.replace(adapter_dir=str(adapter)),
            weights=tiny_model_bert["weights"],
            card=tiny_model_bert["card"],
        )


def test_finetune_refuses_a_worse_adapter(
    tiny_model_bert: dict[str, Any], tmp_path: Path, app_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from radiology_app.diagnosis import finetune as ft

    calls = {"n": 0}
    real = ft._score

    def fake_score(*args: Any, **kw: Any) -> dict[str, float]:
        calls["n"] += 1
        s = real(*args, **kw)
        # the first call scores the current model: pretend it is perfect
        return {**s, "top1": 1.0, "nll": 0.0} if calls["n"] == 1 else s

    monkeypatch.setattr(ft, "_score", fake_score)
    csv_path = ft.write_cases_csv(generate_cases(18, 43), tmp_path / "local")
    r = ft.finetune_from_csv(
        csv_path,
        Settings(text_backbone_dir=str(tiny_model_bert["backbone"])),
        out_dir=tmp_path / "adapter",
        epochs=1,
        threads=1,
        weights=tiny_model_bert["weights"],
        card=tiny_model_bert["card"],
    )
    assert r["activated"] is False and "not activated" in r["reason"]
    assert load_settings().adapter_dir == ""


def test_cases_csv_errors_name_the_row(tmp_path: Path) -> None:
    from radiology_app.diagnosis.finetune import read_cases_csv

    p = tmp_path / "cases.csv"
    p.write_text("crop,note,label\nx.npz,hello,not_a_class\n", encoding="utf-8")
    with pytest.raises(ModelError, match="row 2"):
        read_cases_csv(p)


def test_training_pairs_a_degraded_copy_with_its_clean_original(tiny_bert_dir: Path) -> None:
    import torch

    from radiology_app.diagnosis.text import load_backbone
    from radiology_app.diagnosis.train import batch_tensors, build_arrays, fused_loss

    a = build_arrays(generate_cases(9, 41), load_backbone(tiny_bert_dir))
    idx = np.arange(9)
    b = batch_tensors(a, idx, np.random.default_rng(0), p_drop_note=0.3, p_drop_cues=0.3, n_pairs=4)
    assert b["image"].shape[0] == 13
    assert torch.equal(b["labels"][9:], b["labels"][:4])
    assert torch.equal(b["text_mask"][9:], b["text_mask"][:4])  # same note decisions
    assert torch.equal(b["cues"][9:], b["cues"][:4])
    q = b["quality"]
    assert (q[9:, 0] > q[:4, 0] + 0.4).all()  # the noise estimate sees the degradation
    assert (q[9:, 1] >= 0.6).all() and (q[:4, 1] <= 0.4).all()  # 3-5 mm vs the case's own slices
    # Without a generator (evaluation) no pairs are added.
    assert batch_tensors(a, idx, None, n_pairs=4)["image"].shape[0] == 9

    # The router term: a degraded copy that gives the note no more weight than its original costs the
    # margin; one that shifts enough weight to the note costs nothing.
    n, c = 4, len(CLASS_NAMES)
    labels = torch.zeros(2 * n, dtype=torch.long)
    logits = torch.zeros(2 * n, c)
    base = {
        "log_mix": torch.log_softmax(logits, -1),
        "logits_image": logits,
        "logits_text": logits,
        "logits_joint": logits,
        "gates": torch.full((2 * n, 3), 0.5),
        "z_image": torch.nn.functional.normalize(torch.ones(2 * n, 4), dim=-1),
        "z_text": torch.nn.functional.normalize(torch.ones(2 * n, 4), dim=-1),
    }
    same = dict(base, weights=torch.tensor([[0.3, 0.3, 0.4]] * (2 * n)))
    shifted = dict(base, weights=torch.tensor([[0.3, 0.3, 0.4]] * n + [[0.1, 0.6, 0.3]] * n))
    mask = torch.ones(2 * n, 5)
    plain = float(fused_loss(same, labels))
    assert abs(float(fused_loss(same, labels, n_pairs=n, text_mask=mask)) - (plain + 0.15)) < 1e-5
    assert abs(float(fused_loss(shifted, labels, n_pairs=n, text_mask=mask)) - plain) < 1e-5
    no_note = torch.zeros(2 * n, 5)
    assert abs(float(fused_loss(same, labels, n_pairs=n, text_mask=no_note)) - plain) < 1e-5
