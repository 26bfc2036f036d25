"""Choose the CT series of a study to analyse.

Ranking, best first: CT images that are ORIGINAL/PRIMARY, axial and have enough slices; then the
thinnest slices; then, between reconstructions of the same thickness, a lung (sharp) kernel; then the
most slices. The choice comes with a confidence in [0, 1] and warnings that say what made it less
than certain.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from radiology_app.core.errors import SeriesSelectionError
from radiology_app.core.types import Instance, Series

CT_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2"}
#: Fewer slices than this and the series cannot cover a chest at analysable resolution.
MIN_SLICES = 30
#: Thicker slices than this (mm) miss small nodules (Lung-RADS asks for <= 2.5 mm).
MAX_GOOD_THICKNESS_MM = 2.5

_LUNG_KERNEL = re.compile(
    r"LUNG|BONE|SHARP|DETAIL|EDGE|HIGH ?RES|\bHR\b|^[BIQH][A-Z]?(5[5-9]|[6-9]\d)|^BL\d"
    r"|^(L|YA|YB|YC|YD)$|^FC(5\d|8\d)"
)
_SOFT_KERNEL = re.compile(r"STANDARD|SOFT|SMOOTH|BODY|^[BIQH][A-Z]?([0-4]\d)|^(A|B|C)$|^FC(0\d|1\d)")


@dataclass(frozen=True)
class SeriesChoice:
    """The series chosen for analysis.

    Attributes
    ----------
    series_uid
        SeriesInstanceUID of the chosen series.
    confidence
        How sure the choice is, 0..1 (1: one clear, complete, thin, original axial CT series).
    warnings
        Why the confidence is lower, in words for the clinician.
    slice_count
        Number of images (frames) in the series.
    slice_thickness_mm
        Slice thickness used for ranking (tag, or spacing of positions), or ``None`` if unknown.
    kernel_class
        ``"lung"``, ``"soft"`` or ``"unknown"``.
    """

    series_uid: str
    confidence: float
    warnings: tuple[str, ...] = ()
    slice_count: int = 0
    slice_thickness_mm: float | None = None
    kernel_class: str = "unknown"


def kernel_class(kernel: str) -> str:
    """Classify a ConvolutionKernel value as ``"lung"`` (sharp), ``"soft"`` or ``"unknown"``."""
    k = kernel.upper().strip()
    if not k:
        return "unknown"
    if _LUNG_KERNEL.search(k):
        return "lung"
    if _SOFT_KERNEL.search(k):
        return "soft"
    return "unknown"


@dataclass(frozen=True)
class _Candidate:
    series: Series
    slices: int
    thickness: float | None
    axial: bool | None
    original: bool | None
    localizer: bool
    kernel: str

    @property
    def tier(self) -> int:
        if self.localizer or self.slices < 3:
            return 0
        if self.axial is False:
            return 1
        if self.original is False or self.slices < MIN_SLICES:
            return 2
        return 3

    def key(self) -> tuple[float, float, float, float]:
        thick = round(self.thickness, 1) if self.thickness is not None else 99.0
        return (-self.tier, thick, 0.0 if self.kernel == "lung" else 1.0, -float(self.slices))


def _describe(s: Series) -> str:
    num = f"series {s.series_number}" if s.series_number is not None else "series"
    return f"{num} ({s.description})" if s.description else num


def _analyse(series: Series, instances: Sequence[Instance]) -> _Candidate:
    slices = sum(max(1, i.number_of_frames) for i in instances) if instances else series.instance_count
    iops = [i.image_orientation for i in instances if i.image_orientation is not None]
    axial: bool | None = None
    normal = None
    if iops:
        iop = np.asarray(iops[0], dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        axial = bool(abs(normal[2]) > 0.9)
    elif "AXIAL" in series.image_type:
        axial = True
    thickness = series.slice_thickness_mm
    if normal is not None:
        pos = sorted(
            float(np.dot(normal, i.image_position_lps_mm))
            for i in instances
            if i.image_position_lps_mm is not None
        )
        diffs = [b - a for a, b in itertools.pairwise(pos) if b - a > 1e-3]
        if diffs:
            step = statistics.median(diffs)
            # the tag is the reconstructed thickness (overlapping series have a smaller step);
            # without it the step between slices is the best estimate
            if thickness is None or thickness <= 0:
                thickness = step
    it = series.image_type
    original = None if not it else (it[0] == "ORIGINAL" and (len(it) < 2 or it[1] == "PRIMARY"))
    localizer = "LOCALIZER" in it or "SCOUT" in it or "TOPOGRAM" in series.description.upper()
    return _Candidate(
        series, slices, thickness, axial, original, localizer, kernel_class(series.convolution_kernel)
    )


def select_series(series: Sequence[Series], instances: Mapping[str, Sequence[Instance]]) -> SeriesChoice:
    """Choose the series of a study to analyse.

    Parameters
    ----------
    series
        All series of the study.
    instances
        Instances of each series, by SeriesInstanceUID (geometry is used for orientation and slice spacing).

    Returns
    -------
    SeriesChoice
        The chosen series with a confidence and warnings.

    Raises
    ------
    SeriesSelectionError
        If the study has no CT image series at all.
    """
    cands = []
    for s in series:
        inst = instances.get(s.series_uid, ())
        is_ct = s.modality == "CT" or any(i.sop_class_uid in CT_SOP_CLASSES for i in inst)
        if is_ct and (inst or s.instance_count):
            cands.append(_analyse(s, inst))
    if not cands:
        mods = ", ".join(sorted({s.modality or "?" for s in series})) or "none"
        raise SeriesSelectionError(f"the study has no CT image series (modalities: {mods})")
    cands.sort(key=lambda c: c.key())
    best = cands[0]
    warnings: list[str] = []
    confidence = 1.0
    if best.tier == 0:
        raise SeriesSelectionError(
            f"the study's only CT series are localizers or have fewer than 3 images "
            f"({', '.join(_describe(c.series) for c in cands)})"
        )
    if best.axial is False:
        confidence -= 0.4
        warnings.append("no axial CT series; the chosen series is not axial")
    if best.original is False:
        confidence -= 0.25
        warnings.append(
            f"the chosen series is DERIVED/SECONDARY ({'/'.join(best.series.image_type[:2])}), "
            "not an original acquisition"
        )
    elif best.original is None:
        confidence -= 0.05
    if best.slices < MIN_SLICES:
        confidence -= 0.3
        warnings.append(f"only {best.slices} slices; a chest CT for nodule analysis usually has 100 or more")
    if best.thickness is None:
        confidence -= 0.1
        warnings.append("slice thickness unknown")
    elif best.thickness > MAX_GOOD_THICKNESS_MM:
        confidence -= 0.15
        warnings.append(
            f"thick slices ({best.thickness:.2g} mm); small nodules may be missed "
            f"(<= {MAX_GOOD_THICKNESS_MM} mm recommended)"
        )
    rivals = [c for c in cands[1:] if c.tier == best.tier]
    same = [c for c in rivals if c.key() == best.key()]
    if same:
        confidence -= 0.2
        warnings.append(f"{len(same) + 1} equally suitable CT series; chose {_describe(best.series)}")
    similar = [
        c
        for c in rivals
        if c not in same
        and c.thickness is not None
        and best.thickness is not None
        and abs(c.thickness - best.thickness) < 0.15
    ]
    if similar and best.kernel == "lung":
        warnings.append(
            f"{len(similar) + 1} reconstructions of {best.thickness:.2g} mm; chose the lung kernel "
            f"{best.series.convolution_kernel!r}"
        )
    elif similar:
        confidence -= 0.1
        warnings.append(
            f"{len(similar) + 1} reconstructions of similar thickness and no lung kernel among "
            f"them; chose {_describe(best.series)}"
        )
    return SeriesChoice(
        series_uid=best.series.series_uid,
        confidence=round(max(0.05, min(1.0, confidence)), 3),
        warnings=tuple(warnings),
        slice_count=best.slices,
        slice_thickness_mm=best.thickness,
        kernel_class=best.kernel,
    )
