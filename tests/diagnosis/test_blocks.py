"""The plain-torch blocks equal MONAI's: same parameter names, same outputs, so shipped weights load."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
monai_conv = pytest.importorskip("monai.networks.blocks.convolutions")

from radiology_app.diagnosis import blocks  # noqa: E402


def _same(ours: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor) -> None:
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.train()
    theirs(x)  # moves the batch-norm statistics away from their initial values
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)


@pytest.mark.parametrize(("dims", "strides", "dropout"), [(2, 1, 0.2), (3, 2, None), (3, 1, None)])
def test_convolution_matches_monai(dims: int, strides: int, dropout: float | None) -> None:
    torch.manual_seed(0)
    theirs = monai_conv.Convolution(
        dims, 3, 5, strides=strides, kernel_size=3, act="PRELU", norm="BATCH", dropout=dropout
    )
    ours = blocks.Convolution(dims, 3, 5, strides=strides, kernel_size=3, dropout=dropout)
    _same(ours, theirs, torch.randn(2, 3, *([9] * dims)))


@pytest.mark.parametrize(("cin", "cout", "strides"), [(3, 5, 2), (3, 5, 1), (5, 5, 1)])
def test_residual_unit_matches_monai(cin: int, cout: int, strides: int) -> None:
    torch.manual_seed(1)
    theirs = monai_conv.ResidualUnit(
        3, cin, cout, strides=strides, kernel_size=3, subunits=2, act="PRELU", norm="BATCH"
    )
    ours = blocks.ResidualUnit(3, cin, cout, strides=strides, kernel_size=3, subunits=2)
    _same(ours, theirs, torch.randn(2, cin, 8, 8, 8))
