"""The bulk classifier run: examples from fresh phantoms, augmentation, training, validation table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from segmentation.fp_bulk import (
    SMALL_NODULE_RANGE_MM,
    BulkSettings,
    augment_batch,
    make_examples,
    phantom_arguments,
    train,
)

TINY_PHANTOM = {"shape_zyx": (60, 160, 160), "spacing_zyx_mm": (2.5, 1.8, 1.8), "n_nodules": (3, 4)}


def test_augmentation_only_moves_voxels() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 6, 6, 6)
    y = augment_batch(x, g)
    assert y.shape == x.shape
    for a, b in zip(x, y, strict=True):
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)
    assert not torch.equal(x, y)


def test_examples_train_and_validation_table(tmp_path: Path) -> None:
    st = BulkSettings(
        out_dir=tmp_path / "out", work_dir=tmp_path / "work", n_val=1, batch_size=10, variants=("B_scratch",)
    )
    st.work_dir.mkdir()
    for i in (0, 1):
        line = make_examples(i, st, TINY_PHANTOM)
        assert "FAILED" not in line, line
    with np.load(st.work_dir / "train_0001.npz") as z:
        assert z["hu"].shape[1:] == (1, 32, 32, 32)
        assert len(z["labels"]) == len(z["hu"]) == len(z["cp"])
        assert z["labels"].sum() >= 1
        assert len(z["pasted"]) >= 1
    with np.load(st.work_dir / "val_0000.npz") as z:
        assert "pasted" not in z.files
    said: list[str] = []
    tables = train(st, said.append, max_steps=3)
    assert (st.out_dir / "ckpt_B_scratch.pt").is_file()
    assert any("trained 3 steps" in s for s in said)
    rows = tables["B_scratch_w0.0"]
    assert json.loads((st.out_dir / "val_tables.json").read_text())["B_scratch_w0.0"] == rows
    sens = [r["sens"] for r in rows]
    fps = [r["fp"] for r in rows]
    assert sens == sorted(sens, reverse=True) and fps == sorted(fps, reverse=True)


def test_small_nodule_share_picks_training_phantoms_by_seed(tmp_path: Path) -> None:
    def small(share: float, seed_base: int = 5_000) -> list[bool]:
        st = BulkSettings(
            out_dir=tmp_path, work_dir=tmp_path, n_val=4, seed_base=seed_base, small_nodule_share=share
        )
        return [
            phantom_arguments(i, st).get("nodule_diameter_range_mm") == SMALL_NODULE_RANGE_MM
            for i in range(204)
        ]

    half = small(0.5)
    assert not any(half[:4]), "validation phantoms keep the full range of sizes"
    assert 70 <= sum(half[4:]) <= 130
    assert half == small(0.5), "the same seeds give the same choice"
    assert half != small(0.5, seed_base=6_000)
    assert not any(small(0.0)) and small(1.0)[4:] == [True] * 200
