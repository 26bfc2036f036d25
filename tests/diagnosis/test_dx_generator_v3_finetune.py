"""Generator version 3 (a partial refinement of version 2), carrying caches over, and the pieces that
make site adaptation cheap (tokenize once, length batches, LoRA on the last layers only)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from radiology_app.diagnosis.synthetic import GENERATOR_VERSION, generate_cases

torch = pytest.importorskip("torch")


def test_version_3_changes_a_few_cases_of_three_classes_and_leaves_the_rest_alone() -> None:
    v2 = generate_cases(900, 21, version=2)
    v3 = generate_cases(900, 21, version=3)
    assert GENERATOR_VERSION >= 3
    assert [c.seed for c in v2] == [c.seed for c in v3] and [c.label for c in v2] == [c.label for c in v3]
    changed = [
        a.diagnosis for a, b in zip(v2, v3, strict=True) if (a.phenotype, a.note) != (b.phenotype, b.note)
    ]
    assert 0 < len(changed) < 0.15 * len(v2)
    assert set(changed) <= {"adenocarcinoma", "small_cell_carcinoma", "hamartoma"}
    for a, b in zip(v2, v3, strict=True):
        if a.phenotype == b.phenotype and a.facts == b.facts:
            assert a.note == b.note  # untouched cases stay identical (their cached crop and states too)
        if not a.note:
            assert not b.note  # the empty-note share stays that of version 2

    def rate(cases: list, name: str, pred) -> float:  # type: ignore[type-arg, no-untyped-def]
        return float(np.mean([pred(c) for c in cases if c.diagnosis == name]))

    def smooth_solid(c) -> bool:  # type: ignore[no-untyped-def]
        return bool(c.phenotype.kind == "solid" and c.phenotype.margin == "smooth")

    assert rate(v3, "adenocarcinoma", smooth_solid) < rate(v2, "adenocarcinoma", smooth_solid)
    fat2, fat3 = (rate(v, "hamartoma", lambda c: c.phenotype.fat) for v in (v2, v3))
    assert fat2 < fat3 < 1.0  # still hamartomas without visible fat
    nodes3 = rate(v3, "small_cell_carcinoma", lambda c: c.phenotype.adjacent_nodes > 0)
    assert rate(v2, "small_cell_carcinoma", lambda c: c.phenotype.adjacent_nodes > 0) < nodes3 < 0.95
    with pytest.raises(ValueError, match="version"):
        generate_cases(3, 1, version=1)


def test_carrying_a_cache_over_equals_building_it_afresh(tiny_bert_dir: Path) -> None:
    from radiology_app.diagnosis.text import load_backbone
    from radiology_app.diagnosis.train import build_arrays, carry_over_arrays

    bb = load_backbone(tiny_bert_dir)
    new = generate_cases(6, 23, version=3)
    old = list(new)
    old[1] = replace(
        old[1], phenotype=replace(old[1].phenotype, diameter_mm=old[1].phenotype.diameter_mm + 3)
    )
    old[4] = replace(old[4], note=old[4].note + " Unrelated sentence.")
    fresh = build_arrays(new, bb)
    carried = carry_over_arrays(build_arrays(old, bb), old, new, bb)
    assert np.array_equal(carried.hu, fresh.hu) and np.array_equal(carried.mask, fresh.mask)
    assert carried.notes == fresh.notes and np.array_equal(carried.labels, fresh.labels)
    assert np.array_equal(carried.tmask, fresh.tmask)
    real = fresh.tmask[:, :, None].astype(np.float32)  # padding positions are masked in the network
    assert np.allclose(carried.states * real, fresh.states * real, atol=2e-3)
    assert np.allclose(carried.cues, fresh.cues)
    from radiology_app.core.errors import ModelError

    with pytest.raises(ModelError, match="does not match"):
        carry_over_arrays(fresh, new[:5], new[:5], bb)


def test_token_batches_drop_shared_padding_and_encode_like_the_notes(tiny_bert_dir: Path) -> None:
    from radiology_app.diagnosis.text import load_backbone, token_batch

    bb = load_backbone(tiny_bert_dir)
    notes = ["Short.", "A much longer note about a growing nodule in a current smoker with cough.", ""]
    tokens = bb.tokenize(notes)
    batch = token_batch(tokens, torch.tensor([0, 2]))
    assert batch["input_ids"].shape[1] < tokens["input_ids"].shape[1]
    assert bool((batch["attention_mask"].sum(0) > 0).all())
    states, mask, _ = bb.encode(["Short.", ""])
    assert torch.allclose(bb.encode_tokens(batch), states, atol=1e-5)
    assert torch.equal(batch["attention_mask"].float(), mask)


def test_lora_on_the_last_layers_only(tiny_bert_dir: Path, tiny_qwen3_dir: Path, tmp_path: Path) -> None:
    from radiology_app.diagnosis.text import load_backbone

    for d, marker in ((tiny_bert_dir, "layer.1."), (tiny_qwen3_dir, "layers.1.")):
        bb = load_backbone(d, trainable_lora={"r": 4, "lora_alpha": 8, "top_layers": 1})
        names = [n for n, p in bb.model.named_parameters() if p.requires_grad]
        assert names and all("lora_" in n and marker in n for n in names)
        full = load_backbone(d, trainable_lora={"r": 4, "lora_alpha": 8, "top_layers": 5})
        assert sum(p.requires_grad for p in full.model.parameters()) == 2 * len(names)
        with torch.no_grad():
            for n, p in bb.model.named_parameters():
                if "lora_B" in n:
                    p.fill_(0.5)
        bb.model.save_pretrained(str(tmp_path / d.name))
        merged = load_backbone(d, tmp_path / d.name)  # the inference path reads the adapter back
        plain = load_backbone(d)
        a = merged.encode(["Growing nodule."])[0]
        assert not torch.allclose(a, plain.encode(["Growing nodule."])[0])
        assert torch.allclose(a, bb.encode(["Growing nodule."])[0].detach(), atol=1e-4)


def test_length_batches_cover_every_case_once() -> None:
    from radiology_app.diagnosis.finetune import _batches

    rng = np.random.default_rng(0)
    order = rng.permutation(50)
    lengths = rng.integers(5, 90, 50)
    batches = _batches(order, lengths, 8, rng)
    assert sorted(int(i) for b in batches for i in b) == list(range(50))
    assert all(len(b) <= 8 for b in batches)
    assert all(bool(np.all(np.diff(lengths[b]) >= 0)) for b in batches)  # sorted within a batch


def test_fine_tuning_uses_only_the_cores_other_processes_leave_free(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from radiology_app.diagnosis.finetune import usable_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert usable_threads(2) == 2 and usable_threads(1) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))  # one core busy elsewhere
    assert usable_threads(2) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (4.0, 4.0, 4.0))
    assert usable_threads(2) == 1

    def no_load() -> tuple[float, float, float]:
        raise OSError("no load average")

    monkeypatch.setattr(os, "getloadavg", no_load)
    assert usable_threads(2) == 2
