"""Nodule volume, growth and volume-doubling time (clinical reference §5).

* Sphere volume ``V = pi/6 d^3`` (mm^3 from mm) and its inverse.
* Volume-doubling time (Schwartz): ``VDT = t ln 2 / ln(V2/V1)`` days; undefined (``None``) when the
  nodule did not grow (V2 <= V1).
* Interpretation: < 400 days suspicious (NELSON: refer; LUSI: immediate recall), 400-600 days
  intermediate, > 600 days typical of benign lesions; < 30 days usually infection/inflammation.
  Decision (🛠): the boundaries 400 and 600 days belong to the intermediate band (LUSI recalls
  immediately at "<= 400"; we call exactly 400 days intermediate, following NELSON's "< 400").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from radiology_app.rules._errors import RuleInputError

__all__ = [
    "GrowthAssessment",
    "assess_growth",
    "percent_volume_change",
    "sphere_diameter_mm",
    "sphere_volume_mm3",
    "vdt_band",
    "volume_doubling_time_days",
    "volume_doubling_time_from_diameters_days",
]

_RULE = "growth"


def _positive(value: float, what: str) -> None:
    if not math.isfinite(value) or value <= 0:
        raise RuleInputError(_RULE, f"{what} must be a positive finite number, got {value!r}")


def sphere_volume_mm3(diameter_mm: float) -> float:
    """Volume in mm^3 of a sphere of ``diameter_mm`` (mm): ``pi/6 d^3``.

    Raises
    ------
    RuleInputError
        If the diameter is negative or not finite.
    """
    if not math.isfinite(diameter_mm) or diameter_mm < 0:
        raise RuleInputError(_RULE, f"diameter must be a non-negative number of mm, got {diameter_mm!r}")
    return math.pi / 6.0 * diameter_mm**3


def sphere_diameter_mm(volume_mm3: float) -> float:
    """Diameter in mm of the sphere of ``volume_mm3`` (mm^3): ``(6 V / pi)^(1/3)``.

    Raises
    ------
    RuleInputError
        If the volume is negative or not finite.
    """
    if not math.isfinite(volume_mm3) or volume_mm3 < 0:
        raise RuleInputError(_RULE, f"volume must be a non-negative number of mm^3, got {volume_mm3!r}")
    return float((6.0 * volume_mm3 / math.pi) ** (1.0 / 3.0))


def percent_volume_change(volume_before_mm3: float, volume_after_mm3: float) -> float:
    """Percent change of volume, ``100 (V2 - V1) / V1`` (NELSON/BTS: >= 25 % is significant growth).

    Raises
    ------
    RuleInputError
        If the earlier volume is not positive.
    """
    _positive(volume_before_mm3, "earlier volume")
    if not math.isfinite(volume_after_mm3) or volume_after_mm3 < 0:
        raise RuleInputError(_RULE, f"later volume must be a non-negative number, got {volume_after_mm3!r}")
    return 100.0 * (volume_after_mm3 - volume_before_mm3) / volume_before_mm3


def volume_doubling_time_days(
    volume_before_mm3: float, volume_after_mm3: float, interval_days: float
) -> float | None:
    """Volume-doubling time in days, ``t ln2 / ln(V2/V1)``; ``None`` when V2 <= V1 (no growth).

    Parameters
    ----------
    volume_before_mm3, volume_after_mm3
        Earlier and later volumes, mm^3 (> 0).
    interval_days
        Days between the two scans (> 0).

    Raises
    ------
    RuleInputError
        If a volume or the interval is not positive.
    """
    _positive(volume_before_mm3, "earlier volume")
    _positive(volume_after_mm3, "later volume")
    _positive(interval_days, "interval")
    if volume_after_mm3 <= volume_before_mm3:
        return None
    return interval_days * math.log(2.0) / math.log(volume_after_mm3 / volume_before_mm3)


def volume_doubling_time_from_diameters_days(
    diameter_before_mm: float, diameter_after_mm: float, interval_days: float
) -> float | None:
    """VDT in days from two diameters (sphere assumption): ``t ln2 / (3 ln(D2/D1))``; ``None`` if no growth.

    Raises
    ------
    RuleInputError
        If a diameter or the interval is not positive.
    """
    _positive(diameter_before_mm, "earlier diameter")
    _positive(diameter_after_mm, "later diameter")
    _positive(interval_days, "interval")
    if diameter_after_mm <= diameter_before_mm:
        return None
    return interval_days * math.log(2.0) / (3.0 * math.log(diameter_after_mm / diameter_before_mm))


def vdt_band(vdt_days: float | None) -> str:
    """Interpretation band of a VDT in days.

    Returns
    -------
    str
        ``"no growth"`` (None), ``"very fast (< 30 days): usually infection or inflammation"``,
        ``"suspicious (< 400 days)"``, ``"intermediate (400-600 days)"`` or
        ``"typical of benign (> 600 days)"``.
    """
    if vdt_days is None:
        return "no growth"
    if vdt_days < 30:
        return "very fast (< 30 days): usually infection or inflammation"
    if vdt_days < 400:
        return "suspicious (< 400 days)"
    if vdt_days <= 600:
        return "intermediate (400-600 days)"
    return "typical of benign (> 600 days)"


@dataclass(frozen=True)
class GrowthAssessment:
    """Growth between two scans.

    Attributes
    ----------
    vdt_days
        Volume-doubling time in days, ``None`` when the nodule did not grow.
    percent_volume_change
        ``100 (V2 - V1) / V1``.
    band
        :func:`vdt_band` of the VDT.
    reason
        The numbers in words.
    """

    vdt_days: float | None
    percent_volume_change: float
    band: str
    reason: str


def assess_growth(
    volume_before_mm3: float, volume_after_mm3: float, interval_days: float
) -> GrowthAssessment:
    """VDT, percent volume change and interpretation band for two volumes (mm^3) ``interval_days`` apart.

    Raises
    ------
    RuleInputError
        If a volume or the interval is not positive.
    """
    vdt = volume_doubling_time_days(volume_before_mm3, volume_after_mm3, interval_days)
    pct = percent_volume_change(volume_before_mm3, volume_after_mm3)
    band = vdt_band(vdt)
    vdt_text = "no growth" if vdt is None else f"VDT {vdt:.0f} days"
    reason = (
        f"{volume_before_mm3:.0f} -> {volume_after_mm3:.0f} mm3 in {interval_days:g} days: "
        f"{pct:+.1f}% volume, {vdt_text} ({band})"
    )
    if pct >= 25:
        reason += "; >= 25% volume increase (NELSON/BTS significant growth)"
    return GrowthAssessment(vdt, pct, band, reason)
