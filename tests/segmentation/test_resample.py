"""Slice-by-slice resampling equals the separable matrix products it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.resample import nearest_index, nearest_resize, resample_image, resample_matrix


@pytest.mark.parametrize("shape", [(9, 31, 20), (23, 12, 20), (14, 14, 14)])
def test_linear_resampling_equals_the_matrix_products(shape: tuple[int, int, int]) -> None:
    src = np.random.default_rng(0).integers(-1024, 1500, size=(14, 17, 20)).astype(np.int16)
    wz, wy, wx = (resample_matrix(n, m) for n, m in zip(src.shape, shape, strict=True))
    expected = np.einsum("az,by,cx,zyx->abc", wz, wy, wx, src.astype(np.float64))
    got = resample_image(src, (1.0, 1.0, 1.0), shape=shape)
    assert got.shape == shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-2)  # HU, float32 rounding


def test_nearest_resampling_keeps_labels_and_dtype() -> None:
    labels = np.random.default_rng(1).integers(0, 3, size=(5, 7, 9)).astype(np.uint8)
    out = nearest_resize(labels, (11, 4, 9))
    iz, iy, ix = nearest_index(5, 11), nearest_index(7, 4), nearest_index(9, 9)
    assert out.dtype == np.uint8 and np.array_equal(out, labels[np.ix_(iz, iy, ix)])
    as_float = resample_image(labels, (1.0, 1.0, 1.0), shape=(11, 4, 9), mode="nearest")
    assert as_float.dtype == np.float32 and np.array_equal(as_float, out)
