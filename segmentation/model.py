"""The nodule U-Net: its configuration, intensity normalisation and construction (MONAI UNet).

torch and MONAI are imported inside functions so importing this module stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import torch

#: HU window fed to the network: clipped to [HU_MIN, HU_MAX] then scaled by (hu - HU_CENTER) / HU_SCALE.
HU_MIN = -1024.0
HU_MAX = 600.0
HU_CENTER = -400.0
HU_SCALE = 500.0


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and working grid of a nodule segmenter.

    Attributes
    ----------
    channels
        Feature channels per U-Net level.
    strides
        Down-sampling stride between levels.
    num_res_units
        Residual units per block.
    working_spacing_mm
        Isotropic working spacing (mm) the network was trained at.
    patch_size
        Training patch edge (voxels).
    """

    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2)
    num_res_units: int = 1
    working_spacing_mm: float = 1.25
    patch_size: int = 64
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The config as JSON (stored in the weights file's metadata)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        """Rebuild a config from :meth:`to_json` output."""
        raw: dict[str, Any] = json.loads(text)
        return cls(
            channels=tuple(int(c) for c in raw["channels"]),
            strides=tuple(int(s) for s in raw["strides"]),
            num_res_units=int(raw["num_res_units"]),
            working_spacing_mm=float(raw["working_spacing_mm"]),
            patch_size=int(raw["patch_size"]),
            extra={str(k): str(v) for k, v in dict(raw.get("extra", {})).items()},
        )


def normalize_hu(hu: NDArray[np.generic]) -> NDArray[np.float32]:
    """Map HU to the network's input range (float32)."""
    x = np.clip(np.asarray(hu, dtype=np.float32), HU_MIN, HU_MAX)
    out: NDArray[np.float32] = ((x - np.float32(HU_CENTER)) / np.float32(HU_SCALE)).astype(np.float32)
    return out


def build_unet(config: ModelConfig) -> torch.nn.Module:
    """A MONAI 3-D UNet (1 input channel, 2 output classes: background, nodule)."""
    from monai.networks.nets.unet import UNet

    net: torch.nn.Module = UNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=2,
        channels=config.channels,
        strides=config.strides,
        num_res_units=config.num_res_units,
        norm="instance",
    )
    return net


def torch_device(name: str = "auto") -> str:
    """``name`` itself, or for ``"auto"`` ``"cuda"`` when a GPU is available and ``"cpu"`` otherwise."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
