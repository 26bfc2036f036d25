"""The ONNX Runtime backend with tiny networks: parity with PyTorch, the checked export cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segmentation.errors import ModelIntegrityError
from segmentation.fp_reduction import CandidateClassifier, ClassifierConfig, build_classifier
from segmentation.inference import DEFAULT_WEIGHTS, NoduleSegmenter, load_model, segment_nodules, with_onnx
from segmentation.phantom.chest import make_chest_phantom
from segmentation.phantom.nodules import NoduleSpec
from segmentation.sliding_window import sliding_window, window_count

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
    clf, ort_clf = with_classifier.classifier, ort.classifier
    np.testing.assert_allclose(ort_clf.score(crops), clf.score(crops), atol=1e-4)

    ph: Any = make_chest_phantom(21, nodules=[NoduleSpec("solid", 14.0)], **SMALL)  # type: ignore[arg-type]
    a = segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=with_classifier, return_probability=True)
    b = segment_nodules(ph.hu, ph.spacing_zyx_mm, segmenter=ort, return_probability=True)
    assert a.probability is not None and b.probability is not None
    assert float(np.abs(a.probability.astype(np.float32) - b.probability.astype(np.float32)).max()) <= 1e-3
    assert [n.score for n in a.nodules] == pytest.approx([n.score for n in b.nodules], abs=1e-3)
    assert np.array_equal(a.labels, b.labels)


def test_export_cache_is_deterministic_and_hash_checked(
    tmp_path: Path, tiny_segmenter: NoduleSegmenter
) -> None:
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


@pytest.mark.parametrize("shape", [(20, 45, 70), (40, 33, 32)])
def test_numpy_sliding_window_equals_monai(shape: tuple[int, int, int]) -> None:
    import torch
    from monai.inferers.utils import sliding_window_inference

    def net(x: np.ndarray) -> np.ndarray:  # position-dependent, so misplaced windows would show
        ramp = np.linspace(0.0, 1.0, x.shape[-1], dtype=np.float32)
        return np.tanh(x[:, :1] * 0.7 + ramp).astype(np.float32)

    img = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    ours = sliding_window(img, net, 32, 0.25, 3, -1.25)
    theirs = sliding_window_inference(
        torch.from_numpy(img)[None, None],
        roi_size=(32, 32, 32),
        sw_batch_size=3,
        predictor=lambda t: torch.from_numpy(net(t.numpy())),
        overlap=0.25,
        mode="gaussian",
        padding_mode="constant",
        cval=-1.25,
    )
    assert isinstance(theirs, torch.Tensor)
    np.testing.assert_allclose(ours, theirs[0, 0].numpy(), atol=1e-5)
    calls: list[int] = []
    sliding_window(img, net, 32, 0.25, 1, -1.25, on_batch=lambda done, total: calls.append(total))
    assert calls == [window_count(shape, 32, 0.25)] * len(calls) and len(calls) == calls[0]


@pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="nodule U-Net weights not shipped")
def test_a_cached_graph_runs_the_detector_without_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    load_model(backend="onnxruntime", onnx_cache=tmp_path)  # exports (torch is loaded here anyway)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "import numpy as np\n"
        "from segmentation.inference import load_model, segment_nodules\n"
        f"seg = load_model(backend='onnxruntime', onnx_cache=Path({str(tmp_path)!r}))\n"
        "hu = np.full((24, 64, 64), -800.0, dtype=np.float32)\n"
        "segment_nodules(hu, (5.0, 5.0, 5.0), segmenter=seg, lung=np.ones(hu.shape, np.uint8))\n"
        "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
