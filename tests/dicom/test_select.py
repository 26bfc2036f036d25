"""select_series: CT, axial, original, enough slices, thinnest, lung kernel; confidence and warnings."""

from __future__ import annotations

import pytest

from radiology_app.core.errors import SeriesSelectionError
from radiology_app.core.types import Instance, Series
from radiology_app.dicom.select import kernel_class, select_series

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def _series(
    uid: str,
    n: int,
    step: float,
    *,
    kernel: str = "",
    thickness: float | None = None,
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    modality: str = "CT",
    iop: tuple[float, ...] = AXIAL,
    number: int = 1,
) -> tuple[Series, list[Instance]]:
    s = Series(
        uid,
        "1.2.3",
        modality,
        description=f"s{uid}",
        series_number=number,
        image_type=image_type,
        convolution_kernel=kernel,
        slice_thickness_mm=thickness,
        instance_count=n,
    )
    normal = (0.0, 0.0, 1.0) if iop == AXIAL else (0.0, 1.0, 0.0)
    sop_class = "1.2.840.10008.5.1.4.1.1.2" if modality == "CT" else "1.2.840.10008.5.1.4.1.1.4"
    insts = [
        Instance(
            f"{uid}.{k}",
            sop_class,
            uid,
            f"/x/{uid}/{k}",
            image_position_lps_mm=(normal[0] * k * step, normal[1] * k * step, normal[2] * k * step),
            image_orientation=iop,  # type: ignore[arg-type]
            rows=8,
            columns=8,
        )
        for k in range(n)
    ]
    return s, insts


def _select(*pairs: tuple[Series, list[Instance]]):  # type: ignore[no-untyped-def]
    return select_series([p[0] for p in pairs], {p[0].series_uid: p[1] for p in pairs})


def test_single_good_series_full_confidence() -> None:
    choice = _select(_series("a", 200, 1.0, thickness=1.0, kernel="B70f"))
    assert choice.series_uid == "a" and choice.confidence == 1.0 and choice.warnings == ()
    assert choice.slice_count == 200 and choice.kernel_class == "lung"


def test_thinnest_wins_and_localizer_ignored() -> None:
    choice = _select(
        _series("thick", 60, 5.0, thickness=5.0),
        _series("thin", 300, 1.0, thickness=1.0),
        _series("scout", 2, 1.0, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")),
    )
    assert choice.series_uid == "thin"
    assert choice.confidence == 1.0


def test_lung_kernel_preferred_between_two_reconstructions() -> None:
    choice = _select(
        _series("soft", 300, 1.0, thickness=1.0, kernel="STANDARD", number=2),
        _series("lung", 300, 1.0, thickness=1.0, kernel="LUNG", number=3),
    )
    assert choice.series_uid == "lung"
    assert any("lung kernel" in w for w in choice.warnings)
    choice = _select(
        _series("s1", 300, 1.0, thickness=1.0, kernel="B30f", number=2),
        _series("s2", 300, 1.0, thickness=1.0, kernel="B31f", number=3),
    )
    assert choice.confidence < 1.0


def test_original_axial_preferred_over_derived_and_coronal() -> None:
    choice = _select(
        _series("mpr", 300, 1.0, iop=CORONAL, image_type=("DERIVED", "SECONDARY", "REFORMATTED")),
        _series("ax", 150, 2.0, thickness=2.0),
    )
    assert choice.series_uid == "ax"
    only_derived = _select(_series("d", 150, 1.0, image_type=("DERIVED", "SECONDARY", "AXIAL")))
    assert only_derived.confidence < 0.8 and any("DERIVED" in w for w in only_derived.warnings)
    only_coronal = _select(_series("c", 150, 1.0, iop=CORONAL))
    assert only_coronal.confidence <= 0.6 and any("not axial" in w for w in only_coronal.warnings)


def test_thick_and_short_series_lower_confidence() -> None:
    choice = _select(_series("a", 12, 5.0))
    assert choice.slice_thickness_mm == pytest.approx(5.0)  # from positions when the tag is missing
    assert choice.confidence < 0.7
    assert any("only 12 slices" in w for w in choice.warnings)
    assert any("thick slices" in w for w in choice.warnings)


def test_no_ct_raises() -> None:
    with pytest.raises(SeriesSelectionError, match="MR"):
        _select(_series("m", 50, 1.0, modality="MR"))
    with pytest.raises(SeriesSelectionError, match="localizer"):
        _select(_series("s", 2, 1.0, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")))


@pytest.mark.parametrize(
    ("kernel", "expected"),
    [
        ("LUNG", "lung"),
        ("BONEPLUS", "lung"),
        ("B70f", "lung"),
        ("Br64d", "lung"),
        ("I70f\\3", "lung"),
        ("FC56", "lung"),
        ("YC", "lung"),
        ("STANDARD", "soft"),
        ("B30f", "soft"),
        ("Br40d", "soft"),
        ("FC08", "soft"),
        ("", "unknown"),
        ("XYZ", "unknown"),
    ],
)
def test_kernel_class(kernel: str, expected: str) -> None:
    assert kernel_class(kernel) == expected
