"""Volume geometry helpers."""

from __future__ import annotations

import numpy as np
import pytest

from radiology_app.core.types import Volume


def test_index_lps_round_trip_with_oblique_direction() -> None:
    c, s = np.cos(0.3), np.sin(0.3)
    direction = ((c, -s, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))
    vol = Volume(
        hu=np.zeros((4, 5, 6), np.int16),
        spacing_zyx_mm=(2.5, 0.7, 0.8),
        origin_lps_mm=(-100.0, -50.0, 30.0),
        direction=direction,
    )
    assert vol.shape_zyx == (4, 5, 6)
    lps = vol.index_to_lps((2.0, 3.0, 4.0))
    assert lps[2] == pytest.approx(30.0 + 2 * 2.5)
    assert vol.lps_to_index(lps) == pytest.approx((2.0, 3.0, 4.0))
