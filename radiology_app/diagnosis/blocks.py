"""Convolution blocks of the diagnosis networks, in plain torch (import lazily).

They are MONAI's ``Convolution`` (conv, then batch norm, optional dropout and PReLU, "NDA" order) and
``ResidualUnit`` as the fused model and the LIDC branch use them, with the same module names, so the
shipped weights load unchanged (``tests/diagnosis/test_blocks.py`` checks both against MONAI). Importing
``monai`` loads every one of its submodules, about 2.5 s of start-up the analysis would spend for two
small blocks.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Convolution", "ResidualUnit"]

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class Convolution(nn.Sequential):
    """``kernel_size`` convolution with "same" padding, then batch norm, dropout (if any) and PReLU.

    Parameters
    ----------
    spatial_dims
        2 or 3.
    in_channels, out_channels
        Channel counts.
    strides
        Convolution stride (voxels).
    kernel_size
        Odd kernel size (voxels).
    dropout
        Dropout probability, or ``None``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        strides: int = 1,
        kernel_size: int = 3,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        self.add_module(
            "conv",
            _CONV[spatial_dims](in_channels, out_channels, kernel_size, strides, padding=kernel_size // 2),
        )
        adn = nn.Sequential()
        adn.add_module("N", _NORM[spatial_dims](out_channels))
        if dropout:
            adn.add_module("D", nn.Dropout(dropout))
        adn.add_module("A", nn.PReLU())
        self.add_module("adn", adn)


class ResidualUnit(nn.Module):
    """``subunits`` :class:`Convolution` blocks (the first with ``strides``) plus a residual path.

    The residual path is a convolution when the stride or the channel count changes (the full kernel when
    strided, 1 x 1 otherwise), the identity when neither does.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        strides: int = 1,
        kernel_size: int = 3,
        subunits: int = 2,
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential()
        channels, stride = in_channels, strides
        for k in range(max(1, subunits)):
            unit = Convolution(spatial_dims, channels, out_channels, strides=stride, kernel_size=kernel_size)
            self.conv.add_module(f"unit{k}", unit)
            channels, stride = out_channels, 1
        self.residual: nn.Module = nn.Identity()
        if strides != 1 or in_channels != out_channels:
            k_res = kernel_size if strides != 1 else 1
            self.residual = _CONV[spatial_dims](in_channels, out_channels, k_res, strides, padding=k_res // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``conv(x) + residual(x)``."""
        return self.conv(x) + self.residual(x)  # type: ignore[no-any-return]
