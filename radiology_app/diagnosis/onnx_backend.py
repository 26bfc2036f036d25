"""ONNX export of the fused network and the text backbone, and an ONNX Runtime runner.

:func:`export_onnx` needs torch (it runs once, when the files are missing); :class:`OnnxRunner` needs only
onnxruntime and the tokenizer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radiology_app.core.errors import ModelError
from radiology_app.diagnosis.features import quality_vector

log = logging.getLogger(__name__)


def export_onnx(net: Any, backbone: Any, folder: Path) -> None:
    """Export ``fused.onnx`` and ``text.onnx`` (opset 17, dynamic batch and token axes) into ``folder``.

    Raises
    ------
    ModelError
        If the export fails.
    """
    import torch

    from radiology_app.diagnosis.network import OnnxWrapper

    folder.mkdir(parents=True, exist_ok=True)
    hidden = backbone.hidden_size
    b, length = 2, 12
    args = (
        torch.zeros(b, 4, 32, 32, 32),
        torch.zeros(b, length, hidden),
        torch.ones(b, length),
        torch.zeros(b, net.cfg.n_cues),
        torch.zeros(b, net.cfg.n_quality),
        torch.zeros(b, max(1, net.cfg.n_radiomics)),
    )
    tmp = folder / "fused.onnx.tmp"
    try:
        torch.onnx.export(
            OnnxWrapper(net).eval(),
            args,
            str(tmp),
            dynamo=False,
            opset_version=17,
            input_names=["image", "text_states", "text_mask", "cues", "quality", "radiomics"],
            output_names=["probs", "weights", "text_attention"],
            dynamic_axes={
                "image": {0: "b"},
                "text_states": {0: "b", 1: "l"},
                "text_mask": {0: "b", 1: "l"},
                "cues": {0: "b"},
                "quality": {0: "b"},
                "radiomics": {0: "b"},
                "probs": {0: "b"},
                "weights": {0: "b"},
                "text_attention": {0: "b", 1: "l"},
            },
        )
        enc = backbone.tokenizer(["a b c", "d"], padding=True, return_tensors="pt")
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]

        class _Text(torch.nn.Module):
            def __init__(self, model: Any) -> None:
                super().__init__()
                self.model = model

            def forward(self, *xs: torch.Tensor) -> torch.Tensor:
                return self.model(**dict(zip(names, xs, strict=True))).last_hidden_state  # type: ignore[no-any-return]

        ttmp = folder / "text.onnx.tmp"
        torch.onnx.export(
            _Text(backbone.model).eval(),
            tuple(enc[k] for k in names),
            str(ttmp),
            dynamo=False,
            opset_version=17,
            input_names=names,
            output_names=["states"],
            dynamic_axes={**{k: {0: "b", 1: "l"} for k in names}, "states": {0: "b", 1: "l"}},
        )
    except Exception as exc:  # the exporter raises many unrelated types
        raise ModelError(f"{folder}: ONNX export failed ({type(exc).__name__}: {exc})") from exc
    tmp.replace(folder / "fused.onnx")
    ttmp.replace(folder / "text.onnx")
    (folder / "inputs.json").write_text(json.dumps({"text_inputs": names}), encoding="utf-8")


class OnnxRunner:
    """Runs the exported text encoder and fused network with ONNX Runtime (one intra-op thread)."""

    def __init__(self, folder: Path, tokenizer: Any, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.fused = ort.InferenceSession(
                str(folder / "fused.onnx"), opts, providers=["CPUExecutionProvider"]
            )
            self.text = ort.InferenceSession(
                str(folder / "text.onnx"), opts, providers=["CPUExecutionProvider"]
            )
            self.text_inputs = list(
                json.loads((folder / "inputs.json").read_text(encoding="utf-8"))["text_inputs"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{folder}: cannot open ONNX models ({exc})") from exc
        self.tokenizer = tokenizer

    def encode(self, notes: list[str]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], Any]:
        """Token states, mask and character offsets of notes (empty notes get an all-zero mask)."""
        from radiology_app.diagnosis.text import MAX_TOKENS

        enc = self.tokenizer(
            notes,
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            return_tensors="np",
            return_offsets_mapping=True,
        )
        feeds = {k: np.asarray(enc[k], dtype=np.int64) for k in self.text_inputs}
        states = self.text.run(None, feeds)[0].astype(np.float32)
        mask = np.asarray(enc["attention_mask"], dtype=np.float32)
        for i, t in enumerate(notes):
            if not t.strip():
                mask[i] = 0
        return states, mask, enc["offset_mapping"]

    def run(self, prep: dict[str, Any], notes: list[str]) -> tuple[Any, Any, Any, Any]:
        """Probabilities, router weights, token attention and offsets for a prepared batch."""
        states, mask, offsets = self.encode(notes)
        qual = np.stack(
            [
                quality_vector(n, th, nc, int(mask[i].sum()), present)
                for i, (n, th, nc, present) in enumerate(prep["quals"])
            ]
        ).astype(np.float32)
        feeds = {
            "image": prep["images"].astype(np.float32),
            "text_states": states,
            "text_mask": mask,
            "cues": prep["cues"].astype(np.float32),
            "quality": qual,
            "radiomics": prep["radiomics"].astype(np.float32),
        }
        declared = {i.name for i in self.fused.get_inputs()}  # unused inputs are dropped by the exporter
        probs, weights, attn = self.fused.run(None, {k: v for k, v in feeds.items() if k in declared})
        return probs, weights, attn, offsets
