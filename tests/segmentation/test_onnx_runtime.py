"""The ONNX Runtime backend with tiny networks: parity with PyTorch, the checked export cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segmentation.errors import ModelIntegrityError
from segmentation.fp_reduction import CandidateClassifier, ClassifierConfig, build_classifier
from segmentation.inference import NoduleSegmenter, load_model, segment_nodules, with_onnx
from segmentation.phantom.chest import make_chest_phantom
from segmentation.phantom.nodules import NoduleSpec

SMALL = {"shape_zyx": (40, 128, 128), "spacing_zyx_mm": (7.0, 2.8, 2.8), "with_vessels": False}
TINY_FP = ClassifierConfig(channels=(4, 8), strides=(2, 2), crop_size=32, threshold=0.5)


@pytest.fixture
def with_classifier(tiny_segmenter: NoduleSegmenter) -> NoduleSegmenter:
    import dataclasses

    import torch

    torch.manual_seed(1)
    clf = CandidateClassifier(net=build_classifier(TINY_FP).eval(), config=TINY_FP, sha256="1" * 64)
    return dataclasses.replace(tiny_segmenter, classifier=clf)


def test_onnx_runtime_matches_pytorch(tmp_path: Path, with_classifier: NoduleSegmenter) -> None:
    import torch

    ort = with_onnx(with_classifier, tmp_path)
    assert ort.onnx is not None and ort.classifier.onnx is not None
    assert with_classifier.onnx is None  # the PyTorch segmenter is left as it was
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(2, 1, 32, 48, 32)).astype(np.float32))
    np.testing.assert_allclose(ort.predict(x).numpy(), with_classifier.predict(x).numpy(), atol=1e-4)
    crops = rng.normal(size=(5, 2, 32, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(ort.classifier.score(crops), with_classifier.classifier.score(crops), atol=1e-4)

    ph: Any = make_chest_phantom(21, nodules=[NoduleSpec("solid", 14.0)], **SMALL)  # type: ignore[arg-type]
    a = segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=with_classifier, return_probability=True)
    b = segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=ort, return_probability=True)
    assert a.probability is not None and b.probability is not None
    assert float(np.abs(a.probability.astype(np.float32) - b.probability.astype(np.float32)).max()) <= 1e-3
    assert [n.score for n in a.nodules] == pytest.approx([n.score for n in b.nodules], abs=1e-3)
    assert np.array_equal(a.labels, b.labels)


def test_export_cache_is_deterministic_and_hash_checked(tmp_path: Path, tiny_segmenter: NoduleSegmenter) -> None:
    with_onnx(tiny_segmenter, tmp_path / "a")
    with_onnx(tiny_segmenter, tmp_path / "b")
    (graph,) = (tmp_path / "a").glob("nodule_unet-*.onnx")
    assert graph.read_bytes() == (tmp_path / "b" / graph.name).read_bytes()  # same weights, same bytes
    manifest = json.loads(graph.with_suffix(".json").read_text(encoding="utf-8"))
    assert manifest["weights_sha256"] == tiny_segmenter.sha256

    stamp = graph.stat().st_mtime_ns
    with_onnx(tiny_segmenter, tmp_path / "a")
    assert graph.stat().st_mtime_ns == stamp  # a checked cache is reused, not exported again

    good = graph.read_bytes()
    graph.write_bytes(good[:-10])  # a truncated (or altered) graph fails its check and is exported again
    with_onnx(tiny_segmenter, tmp_path / "a")
    assert graph.read_bytes() == good


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ModelIntegrityError, match="unknown backend 'tensorflow'"):
        load_model(backend="tensorflow")
