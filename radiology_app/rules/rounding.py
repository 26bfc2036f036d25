"""Guideline rounding: halves go up, computed on the decimal representation.

Python's built-in :func:`round` rounds halves to the even neighbour (``round(6.5) == 6``) and works on
the binary float (``round(2.675, 2) == 2.67``). Guidelines round halves *up* ("5.5 mm counts as 6 mm",
Fleischner 2017) on the number as written. :func:`round_half_up` therefore rounds the shortest decimal
``repr`` of the float with :data:`decimal.ROUND_HALF_UP`, so ``round_half_up(2.675, 2) == 2.68`` and
``round_half_up(5.95, 1) == 6.0``.

Every threshold comparison in :mod:`radiology_app.rules` goes through this module:

* Lung-RADS: mean diameter (and solid component, and growth) rounded to 0.1 mm, then compared.
* Fleischner: mean diameter rounded to the nearest whole millimetre, then compared.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["mean_diameter_mm", "round_half_up"]


def round_half_up(value: float, ndigits: int = 0) -> float:
    """Round ``value`` to ``ndigits`` decimals with halves away from zero.

    Parameters
    ----------
    value
        The number to round (any unit; the unit is kept).
    ndigits
        Number of decimals to keep (may be negative: ``-1`` rounds to tens).

    Returns
    -------
    float
        The rounded value. Negative halves round away from zero (``-2.5 -> -3.0``), as
        :data:`decimal.ROUND_HALF_UP` does; guideline quantities are never negative.

    Raises
    ------
    ValueError
        If ``value`` is NaN or infinite.
    """
    if not math.isfinite(value):
        raise ValueError(f"cannot round a non-finite value: {value!r}")
    quantum = Decimal(1).scaleb(-ndigits)
    return float(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP))


def mean_diameter_mm(long_axis_mm: float, short_axis_mm: float, ndigits: int = 1) -> float:
    """Mean diameter ``(long + short) / 2`` in mm, rounded half-up to ``ndigits`` decimals.

    The sum is formed in :class:`decimal.Decimal` on the axes as written, so 6.2 and 5.7 mm give
    exactly 5.95 before rounding (-> 6.0 mm), with no binary-float error.

    Parameters
    ----------
    long_axis_mm, short_axis_mm
        The two axes in mm.
    ndigits
        Decimals of the result (1 for Lung-RADS, 0 for Fleischner).

    Returns
    -------
    float
        The rounded mean diameter in mm.

    Raises
    ------
    ValueError
        If an axis is negative or not finite.
    """
    for axis in (long_axis_mm, short_axis_mm):
        if not math.isfinite(axis) or axis < 0:
            raise ValueError(f"axis length must be a finite, non-negative number of mm, got {axis!r}")
    mean = (Decimal(repr(float(long_axis_mm))) + Decimal(repr(float(short_axis_mm)))) / 2
    return float(mean.quantize(Decimal(1).scaleb(-ndigits), rounding=ROUND_HALF_UP))
