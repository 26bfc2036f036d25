"""Shared fixtures for the segmentation tests: one thread, tiny networks and tiny phantoms."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def tiny_segmenter() -> object:
    """An untrained, tiny U-Net wrapped as a segmenter (fast; its output is arbitrary)."""
    import torch

    from segmentation.inference import NoduleSegmenter
    from segmentation.model import ModelConfig, build_unet

    torch.manual_seed(0)
    cfg = ModelConfig(
        channels=(4, 8, 16), strides=(2, 2), num_res_units=0, working_spacing_mm=2.5, patch_size=16
    )
    net = build_unet(cfg).eval()
    return NoduleSegmenter(net=net, config=cfg, sha256="0" * 64, roi_size=32, min_max_probability=0.0)
