"""Weights files: safetensors only, with a markdown model card whose SHA-256 the loader checks.

No torch here: the checks work on bytes, so callers can verify a file before importing torch.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from radiology_app.core.config import RESOURCES_DIR
from radiology_app.core.errors import ModelError, ModelIntegrityError

MODELS_DIR = RESOURCES_DIR / "models"
FUSED_WEIGHTS = MODELS_DIR / "fused_dx.safetensors"
FUSED_CARD = MODELS_DIR / "fused_dx.md"
LIDC_WEIGHTS = MODELS_DIR / "lidc_image.safetensors"
LIDC_CARD = MODELS_DIR / "lidc_image.md"

_SHA_LINE = re.compile(r"SHA-256[^0-9a-fA-F]*([0-9a-fA-F]{64})")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_sha256(card: Path) -> str:
    """The SHA-256 a model card states.

    Raises
    ------
    ModelError
        If the card is missing or states no SHA-256.
    """
    if not card.is_file():
        raise ModelError(f"{card}: model card missing")
    m = _SHA_LINE.search(card.read_text(encoding="utf-8"))
    if not m:
        raise ModelError(f"{card}: model card states no SHA-256")
    return m.group(1).lower()


def verify_weights(weights: Path, card: Path) -> str:
    """Check ``weights`` against the SHA-256 in ``card``; return the hash.

    Raises
    ------
    ModelError
        If the weights file is missing or not ``.safetensors``.
    ModelIntegrityError
        If the hashes differ.
    """
    if weights.suffix != ".safetensors":
        raise ModelError(f"{weights}: only .safetensors weights are loaded")
    if not weights.is_file():
        raise ModelError(f"{weights}: weights file missing (train it with `radiology-app train-diagnosis`)")
    expected = card_sha256(card)
    actual = sha256_file(weights)
    if actual != expected:
        raise ModelIntegrityError(
            f"{weights}: SHA-256 {actual} does not match {expected} stated in {card.name}"
        )
    return actual


def read_metadata(weights: Path) -> dict[str, Any]:
    """The JSON ``config`` entry of a safetensors file's metadata (empty dict when absent).

    Raises
    ------
    ModelError
        If the header cannot be read.
    """
    try:
        with open(weights, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{weights}: not a safetensors file ({exc})") from exc
    meta = header.get("__metadata__", {}) or {}
    cfg = meta.get("config")
    return dict(json.loads(cfg)) if cfg else {}


def set_card_sha256(card: Path, sha: str) -> None:
    """Replace (or append) the ``SHA-256`` line of a model card."""
    text = card.read_text(encoding="utf-8") if card.exists() else ""
    line = f"SHA-256: {sha}"
    if _SHA_LINE.search(text):
        text = _SHA_LINE.sub(line, text, count=1)
    else:
        text = text.rstrip("\n") + f"\n\n{line}\n"
    card.write_text(text, encoding="utf-8")
