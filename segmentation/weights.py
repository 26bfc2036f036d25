"""Shipped weights: read a safetensors file only after its SHA-256 matches its model card."""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from pathlib import Path
from typing import TYPE_CHECKING

from segmentation.errors import ModelIntegrityError

if TYPE_CHECKING:
    import torch


def shipped_models_dir() -> Path:
    """Folder of the shipped models: a checkout's ``resources/models``, else the installed package data.

    The installed copy is the package ``radiology_app_resources`` (``resources/`` mapped into the wheel),
    read through :mod:`importlib.resources`; the checkout wins so a worktree reads its own files.
    """
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "resources" / "models").is_dir():
        return root / "resources" / "models"
    try:
        installed = importlib.resources.files("radiology_app_resources") / "models"
    except ModuleNotFoundError:
        return root / "resources" / "models"  # neither: loading reports the missing file by path
    return Path(str(installed))


#: Folder of the shipped models.
MODELS_DIR = shipped_models_dir()


def read_card_sha256(card: Path) -> str:
    """The SHA-256 stated in a model card (a line containing ``SHA-256`` and 64 hex digits)."""
    try:
        text = card.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelIntegrityError(card, f"model card cannot be read ({exc})") from exc
    for line in text.splitlines():
        if "sha-256" in line.lower() or "sha256" in line.lower():
            m = re.search(r"\b([0-9a-fA-F]{64})\b", line)
            if m:
                return m.group(1).lower()
    raise ModelIntegrityError(card, "model card states no SHA-256")


def read_verified(
    path: Path, card: Path | None = None, *, with_tensors: bool = True
) -> tuple[str, dict[str, str], dict[str, torch.Tensor]]:
    """SHA-256, metadata and tensors of a safetensors file whose hash matches its card.

    Parameters
    ----------
    path
        The ``.safetensors`` file.
    card
        Its model card; ``path`` with the suffix ``.md`` when ``None``.
    with_tensors
        Read the tensors (torch); without, the tensors come back empty and torch is not imported.

    Raises
    ------
    ModelIntegrityError
        When the file or card is missing, the hash differs or the file cannot be read.
    """
    from safetensors import safe_open

    card_path = card if card is not None else path.with_suffix(".md")
    if not path.is_file():
        raise ModelIntegrityError(path, "weights file not found")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = read_card_sha256(card_path)
    if digest != expected:
        raise ModelIntegrityError(path, f"SHA-256 {digest} does not match the model card's {expected}")
    try:
        with safe_open(str(path), framework="pt" if with_tensors else "numpy") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()} if with_tensors else {}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types
        raise ModelIntegrityError(path, f"not a readable safetensors file ({exc})") from exc
    return digest, meta, tensors


def load_into(net: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> torch.nn.Module:
    """``net`` with the ``tensors`` read from ``path`` loaded, in eval mode.

    Raises
    ------
    ModelIntegrityError
        When the tensors do not fit the network.
    """
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ModelIntegrityError(path, f"weights do not fit the network ({exc})") from exc
    return net.eval()
