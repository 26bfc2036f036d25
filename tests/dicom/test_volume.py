"""read_volume: geometry from positions, warnings on damaged series, compressed and multi-frame input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from radiology_app.core.errors import OperationCancelled, VolumeError
from radiology_app.core.progress import CancelToken, Progress
from radiology_app.core.types import Instance
from radiology_app.dicom.index import HeaderRecord, read_header
from radiology_app.dicom.volume import read_volume

WriteSeries = Callable[..., list[Path]]


def _instances(paths: list[Path]) -> list[Instance]:
    out = []
    for p in paths:
        rec = read_header(str(p))
        assert isinstance(rec, HeaderRecord), rec
        out.append(rec.instance)
    return out


def _hu(n: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-1000, 1500, size=(n, 10, 12)).astype(np.int16)


def test_round_trip_shuffled(write_series: WriteSeries) -> None:
    hu = _hu()
    files = write_series(hu=hu, spacing_zyx_mm=(1.25, 0.7, 0.6), origin_lps_mm=(-5.0, -7.0, -100.0))
    progress: list[Progress] = []
    insts = _instances(files)[::-1]
    vol = read_volume(insts[3:] + insts[:3], on_progress=progress.append)
    np.testing.assert_array_equal(vol.hu, hu)
    assert vol.hu.dtype == np.int16
    assert vol.spacing_zyx_mm == pytest.approx((1.25, 0.7, 0.6))
    assert vol.origin_lps_mm == pytest.approx((-5.0, -7.0, -100.0))
    np.testing.assert_allclose(vol.direction, np.eye(3))
    assert vol.warnings == ()
    assert progress[-1].done == progress[-1].total == 8
    assert vol.index_to_lps((2, 0, 0)) == pytest.approx((-5.0, -7.0, -97.5))


def test_descending_positions_sorted_along_normal(write_series: WriteSeries) -> None:
    hu = _hu(5)
    files = write_series(hu=hu, slice_positions_mm=[0.0, -2.0, -4.0, -6.0, -8.0])
    vol = read_volume(_instances(files))
    np.testing.assert_array_equal(vol.hu, hu[::-1])
    assert vol.spacing_zyx_mm[0] == pytest.approx(2.0)
    assert vol.origin_lps_mm[2] == pytest.approx(-8.0)


def test_missing_slice_is_interpolated_with_warning(write_series: WriteSeries) -> None:
    hu = _hu(10)
    files = write_series(hu=hu)
    del files[4]
    vol = read_volume(_instances(files))
    assert vol.shape_zyx == (10, 10, 12)
    assert any("1 missing slice" in w for w in vol.warnings)
    expected = np.rint((hu[3].astype(float) + hu[5]) / 2)
    np.testing.assert_allclose(vol.hu[4], expected, atol=1)
    np.testing.assert_array_equal(vol.hu[5:], hu[5:])


def test_uneven_spacing_resampled_with_warning(write_series: WriteSeries) -> None:
    hu = _hu(6)
    files = write_series(hu=hu, slice_positions_mm=[0.0, 2.0, 4.0, 7.0, 9.0, 11.0])
    vol = read_volume(_instances(files))
    assert any("uneven slice spacing" in w for w in vol.warnings)
    assert vol.spacing_zyx_mm[0] == pytest.approx(2.0)
    assert vol.shape_zyx[0] == 6  # 0..10 mm at 2 mm
    np.testing.assert_array_equal(vol.hu[:3], hu[:3])


def test_duplicates_mixed_matrix_and_tilt(tmp_path: Path, write_series: WriteSeries) -> None:
    hu = _hu(6)
    files = write_series("main", hu=hu)
    series_uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    odd = write_series("odd", hu=np.zeros((1, 16, 16), np.int16), series_uid=series_uid, uid_seed="odd")
    insts = _instances(files) + _instances(odd)
    vol = read_volume(insts)
    assert vol.shape_zyx == (6, 10, 12)
    assert any("mixed matrix sizes" in w for w in vol.warnings)
    # gantry tilt: positions drift along y as z increases
    tilted = []
    for k, p in enumerate(files):
        ds = pydicom.dcmread(p)
        ipp = [float(v) for v in ds.ImagePositionPatient]
        ds.ImagePositionPatient = [ipp[0], ipp[1] + 0.35 * k * 2.0, ipp[2]]
        out = tmp_path / f"tilt{k}.dcm"
        ds.save_as(out)
        tilted.append(out)
    vol = read_volume(_instances(tilted))
    assert any("gantry tilt of 19.3 degrees" in w for w in vol.warnings)


def test_rescale_float_and_single_slice(tmp_path: Path, write_series: WriteSeries) -> None:
    files = write_series(hu=_hu(3))
    ds = pydicom.dcmread(files[0])
    ds.RescaleSlope = "0.5"
    ds.save_as(tmp_path / "half.dcm")
    vol = read_volume(_instances([tmp_path / "half.dcm"]))
    assert vol.hu.dtype == np.float32
    np.testing.assert_allclose(vol.hu[0], ds.pixel_array * 0.5 - 1024)
    assert any("single-slice" in w for w in vol.warnings)


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_compressed_series(tmp_path: Path, write_series: WriteSeries, syntax: str) -> None:
    hu = np.random.default_rng(3).integers(-1000, 1500, size=(3, 64, 64)).astype(np.int16)
    files = write_series(hu=hu)
    out = []
    for k, p in enumerate(files):
        ds = pydicom.dcmread(p)
        ds.compress(syntax)
        q = tmp_path / f"c{k}.dcm"
        ds.save_as(q)
        out.append(q)
    insts = _instances(out)
    assert insts[0].transfer_syntax_uid == syntax
    vol = read_volume(insts)
    np.testing.assert_array_equal(vol.hu, hu)


def test_enhanced_multiframe_ct() -> None:
    path = pydicom.data.get_testdata_file("eCT_Supplemental.dcm")
    assert path is not None
    [inst] = _instances([Path(path)])
    assert inst.number_of_frames == 2
    vol = read_volume([inst])
    assert vol.shape_zyx == (2, 512, 512)
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.astype(np.float64)
    pos = [
        float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in ds.PerFrameFunctionalGroupsSequence
    ]
    order = np.argsort(pos) if vol.direction[2][2] > 0 else np.argsort(pos)[::-1]
    tr = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    expected = frames[order] * float(tr.RescaleSlope) + float(tr.RescaleIntercept)
    np.testing.assert_allclose(vol.hu, expected)
    assert vol.spacing_zyx_mm[0] == pytest.approx(abs(pos[1] - pos[0]))


def test_cancel_and_errors(tmp_path: Path, write_series: WriteSeries) -> None:
    files = write_series(hu=_hu(4))
    token = CancelToken()
    token.cancel()
    with pytest.raises(OperationCancelled):
        read_volume(_instances(files), cancel=token)
    with pytest.raises(VolumeError):
        read_volume([])
    insts = _instances(files)
    files[1].write_bytes(files[1].read_bytes()[:-50])
    with pytest.raises(VolumeError, match=files[1].name):
        read_volume(insts)
