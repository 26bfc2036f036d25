"""ONNX Runtime for the nodule U-Net and the candidate classifier: export into a cache, check, run.

The ONNX graphs are exported at run time from the verified safetensors weights (nothing is ever
downloaded). The export is deterministic for a given torch version; each cached file is named by the
weights' SHA-256 and the opset, and its own SHA-256 is recorded beside it in a manifest (with the
torch version that exported it) that the loader checks; a missing, partial or altered file is
exported again. A cached graph that passes its check is used without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segmentation.errors import ModelIntegrityError

log = logging.getLogger(__name__)

#: Inference backends of the nodule detector.
BACKENDS = ("pytorch", "onnxruntime")
#: ONNX opset of the exported graphs.
OPSET = 17
#: Environment variable that overrides the ONNX Runtime thread count (default: the CPU count).
THREADS_ENV = "SEGMENTATION_ORT_THREADS"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cached_onnx(
    cache_dir: Path,
    kind: str,
    weights_sha256: str,
    export: Callable[[Path], None],
) -> Path:
    """The cached ONNX file of a model, exported with ``export(path)`` when missing or failing its check.

    Parameters
    ----------
    cache_dir
        Folder of the cache (created when needed).
    kind
        Model name (``"nodule_unet"`` or ``"nodule_fp"``).
    weights_sha256
        SHA-256 of the verified safetensors weights the graph is exported from.
    export
        Writes the ONNX graph to the path it is given.

    Returns
    -------
    pathlib.Path
        The ONNX file, whose SHA-256 matches its manifest.

    Raises
    ------
    ModelIntegrityError
        When the export fails or its result cannot be written.
    """
    stem = f"{kind}-{weights_sha256[:16]}-opset{OPSET}"
    path = cache_dir / f"{stem}.onnx"
    manifest = cache_dir / f"{stem}.json"
    if path.is_file() and manifest.is_file():
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8"))
            if recorded.get("weights_sha256") == weights_sha256 and recorded.get("onnx_sha256") == _sha256(
                path
            ):
                return path
        except (OSError, ValueError, AttributeError):
            pass
        log.warning("cached ONNX graph %s fails its check; exporting it again", path.name)
    import torch

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        export(tmp)
        digest = _sha256(tmp)
        os.replace(tmp, path)
        body = {
            "weights_sha256": weights_sha256,
            "onnx_sha256": digest,
            "opset": OPSET,
            "torch": torch.__version__,
        }
        mtmp = manifest.with_name(f".{manifest.name}.{os.getpid()}.part")
        mtmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
        os.replace(mtmp, manifest)
    except ModelIntegrityError:
        raise
    except Exception as exc:  # the exporter and the file system raise many unrelated types
        raise ModelIntegrityError(path, f"ONNX export failed ({type(exc).__name__}: {exc})") from exc
    return path


def export_unet_onnx(net: Any, path: Path) -> None:
    """Export a nodule U-Net as ``image [b, 1, z, y, x] -> probability [b, 1, z, y, x]`` (softmax class 1).

    Batch and spatial axes are dynamic (spatial edges must be multiples of the U-Net's total stride).
    """
    import torch

    class _Probability(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.inner(x), dim=1)[:, 1:2]

    axes = {0: "b", 2: "z", 3: "y", 4: "x"}
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the tracer's notes on instance norm and shape checks do not apply to an eval-mode graph
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Probability(net).eval(),
            (torch.zeros(1, 1, 32, 32, 32),),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["image"],
            output_names=["probability"],
            dynamic_axes={"image": axes, "probability": axes},
        )


def export_classifier_onnx(net: Any, in_channels: int, crop_size: int, path: Path) -> None:
    """Export a candidate classifier as ``crops [b, c, s, s, s] -> probability [b]`` (sigmoid)."""
    import torch

    class _Probability(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.inner(x)[:, 0])

    s = crop_size
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Probability(net).eval(),
            (torch.zeros(2, in_channels, s, s, s),),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["crops"],
            output_names=["probability"],
            dynamic_axes={"crops": {0: "b"}, "probability": {0: "b"}},
        )


def ort_threads() -> int:
    """Intra-op threads for ONNX Runtime: ``$SEGMENTATION_ORT_THREADS``, else the CPU count."""
    env = os.environ.get(THREADS_ENV, "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return max(1, os.cpu_count() or 1)


class OrtModel:
    """One ONNX graph in an ONNX Runtime CPU session: float32 in, float32 out.

    Parameters
    ----------
    path
        The ONNX file.
    threads
        Intra-op threads (default :func:`ort_threads`).

    Raises
    ------
    ModelIntegrityError
        When ONNX Runtime cannot open the file.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or ort_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep instead of spinning: on a busy machine (a model loading beside it, other
        # programs) spinning threads take the cores the working ones need
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelIntegrityError(path, f"ONNX Runtime cannot open it ({exc})") from exc
        self.path = path
        self._input = self.session.get_inputs()[0].name

    def __call__(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Run the graph on one float32 batch."""
        out = self.session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)
