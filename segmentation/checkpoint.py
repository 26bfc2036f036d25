"""Training checkpoints: written atomically so a run cut off mid-write can still resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_checkpoint(path: Path, model: Any, optimizer: Any, iteration: int, config_json: str) -> None:
    """Write ``model``/``optimizer`` state, the step count and the config to ``path`` (via a temp file)."""
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "iteration": iteration,
            "config": config_json,
        },
        tmp,
    )
    tmp.replace(path)
