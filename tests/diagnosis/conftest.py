"""Fixtures for the diagnosis tests: tiny random text backbones (BERT and Qwen3) and a tiny trained model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _copy_tokenizer(dst: Path) -> None:
    from radiology_app.diagnosis.text import default_backbone_dir

    src = default_backbone_dir()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with the MiniLM tokenizer."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny_bert")
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(cfg).save_pretrained(str(d))
    _copy_tokenizer(d)
    return d


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Qwen3 (hidden 32) with the MiniLM tokenizer."""
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny_qwen3")
    cfg = Qwen3Config(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    Qwen3Model(cfg).save_pretrained(str(d))
    _copy_tokenizer(d)
    return d


TINY_NET = {"d_model": 16, "n_heads": 2, "channels": (4, 8, 8, 16), "n_radiomics": 13}


def train_tiny(backbone_dir: Path, out: Path, n_cases: int = 27, epochs: int = 2) -> tuple[Path, Path]:
    """Train a tiny fused model on tiny synthetic data; return (weights, card)."""
    from radiology_app.diagnosis.network import NetConfig
    from radiology_app.diagnosis.synthetic import generate_cases
    from radiology_app.diagnosis.text import load_backbone
    from radiology_app.diagnosis.train import TrainConfig, build_arrays, save_fused, train_model, write_card

    bb = load_backbone(backbone_dir)
    train = build_arrays(generate_cases(n_cases, 11), bb)
    val = build_arrays(generate_cases(18, 12), bb)
    cfg = NetConfig(text_hidden=bb.hidden_size, **TINY_NET)  # type: ignore[arg-type]
    tcfg = TrainConfig(epochs=epochs, batch_size=9)
    net, hist = train_model(train, val, cfg, tcfg, out / "ckpt")
    weights, card = out / "fused_dx.safetensors", out / "fused_dx.md"
    sha = save_fused(net, bb, weights)
    write_card(card, sha, backbone=bb, n_train=n_cases, n_val=18, tcfg=tcfg, history=hist)
    return weights, card


@pytest.fixture(scope="session")
def tiny_model_bert(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny fused model trained with the tiny BERT backbone."""
    out = tmp_path_factory.mktemp("tiny_fused_bert")
    w, c = train_tiny(tiny_bert_dir, out)
    return {"weights": w, "card": c, "backbone": tiny_bert_dir, "dir": out}


@pytest.fixture(scope="session")
def tiny_tools() -> dict[str, Any]:
    """``train_tiny`` and the tiny network settings, for tests that train their own model."""
    return {"train_tiny": train_tiny, "net": TINY_NET}
