"""Read a CT series into a HU volume with patient-space geometry.

Slices are sorted along the slice normal; the z spacing comes from the slice positions (never from
SliceThickness). Recoverable problems become warnings on the :class:`~radiology_app.core.types.Volume`:
missing slices and uneven spacing (the volume is resampled onto a regular grid by linear
interpolation along z), duplicate positions, mixed matrix sizes or orientations (the majority is
kept), gantry tilt. Uncompressed little-endian slices are read straight into a preallocated array;
everything else (JPEG lossless/baseline, JPEG-LS, JPEG 2000, RLE, big endian, enhanced multi-frame)
goes through pydicom's decoders (pylibjpeg plugins; GDCM only where no other plugin decodes), behind
one guard: the header is checked against the pixel data and the memory budget first, and any decoder
failure, a native crash such as a Rust panic included, becomes a :class:`VolumeError` naming the file.
"""

from __future__ import annotations

import contextlib
import struct
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder

from radiology_app.core.errors import VolumeError
from radiology_app.core.guard import is_recoverable, native_stderr_captured, one_line
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.core.types import Instance, Volume
from radiology_app.dicom.index import fast_read_dataset
from radiology_app.dicom.pixel_header import (
    NATIVE_LE,
    check_memory_budget,
    check_pixel_header,
    ensure_transfer_syntax,
    volume_memory_budget_bytes,
)
from radiology_app.dicom.quiet import quiet_pydicom

_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"}
_INT16_MIN, _INT16_MAX = -32768, 32767


@dataclass
class _Slice:
    """One 2-D image to place in the volume."""

    position: npt.NDArray[np.float64] | None
    orientation: npt.NDArray[np.float64] | None
    spacing: tuple[float, float] | None
    rows: int
    cols: int
    order: int
    load: Callable[[], _Stored]
    source: str


def _f(values: Any, n: int) -> npt.NDArray[np.float64] | None:
    try:
        arr = np.asarray([float(v) for v in values], dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _rescale(ds: Dataset | None, fallback: Dataset | None = None) -> tuple[float, float]:
    for src in (ds, fallback):
        if src is None:
            continue
        slope, inter = src.get("RescaleSlope"), src.get("RescaleIntercept")
        if slope is not None or inter is not None:
            try:
                return float(slope if slope not in (None, "") else 1.0), float(
                    inter if inter not in (None, "") else 0.0
                )
            except (TypeError, ValueError):
                continue
    return 1.0, 0.0


@dataclass(frozen=True)
class _Stored:
    """Stored pixel values of one slice and the rescale that maps them to HU."""

    values: npt.NDArray[Any]
    slope: float
    intercept: float


def _place(out: npt.NDArray[Any], k: int, px: _Stored) -> npt.NDArray[Any]:
    """Write slice ``k`` in HU into ``out``; return ``out`` (promoted to float32 if int16 cannot hold it)."""
    v = px.values
    if out.dtype == np.int16:
        if px.slope == 1.0 and float(px.intercept).is_integer() and v.dtype.kind in "iu":
            inter = int(px.intercept)
            info = np.iinfo(v.dtype)
            # only the bound that the shift can push out of int16 needs a pass over the pixels
            lo = int(v.min()) if info.min + inter < _INT16_MIN or info.min < _INT16_MIN else int(info.min)
            hi = int(v.max()) if info.max + inter > _INT16_MAX or info.max > _INT16_MAX else int(info.max)
            if lo + inter >= _INT16_MIN and hi + inter <= _INT16_MAX:
                if lo >= _INT16_MIN and hi <= _INT16_MAX:
                    src = v if v.dtype == np.int16 else v.astype(np.int16)
                    np.add(src, np.int16(inter), out=out[k])  # one pass, no temporary
                else:
                    out[k] = v.astype(np.int32) + inter
                return out
        out = out.astype(np.float32)
    out[k] = v.astype(np.float32) * np.float32(px.slope) + np.float32(px.intercept)
    return out


def _drop_gdcm_where_others_decode() -> None:
    """Remove GDCM from every pixel decoder of pydicom that has another plugin.

    On data whose header disagrees with its compressed stream, GDCM throws a C++ exception that nothing
    catches, and ``std::terminate`` aborts the whole process (SIGABRT: no Python guard can help). The
    pylibjpeg plugins raise Python errors instead; GDCM stays only where it is the sole decoder.
    """
    for uid in pydicom.uid.AllTransferSyntaxes:
        try:
            decoder = get_decoder(uid)
        except NotImplementedError:
            continue
        if "gdcm" in decoder.available_plugins and len(decoder.available_plugins) > 1:
            decoder.remove_plugin("gdcm")


_drop_gdcm_where_others_decode()


def _decoded_pixels(ds: Dataset, path: str, budget_bytes: int | None) -> npt.NDArray[Any]:
    """``ds.pixel_array`` behind the guard: header checked first, any decoder failure a ``VolumeError``.

    A native decoder's crash (a Rust ``PanicException``, which is no ``Exception``) is caught too, and
    what it prints on stderr is kept off the console.
    """
    try:
        check_pixel_header(ds, path, budget_bytes)
        with native_stderr_captured():
            return ds.pixel_array
    except VolumeError:
        raise
    except BaseException as exc:
        if not is_recoverable(exc):
            raise
        raise VolumeError(f"cannot decode pixel data ({one_line(exc)})", path) from exc


def _read_native(path: str, budget_bytes: int | None) -> tuple[Dataset, npt.NDArray[Any] | None]:
    """Read a header and, for uncompressed little-endian greyscale, the pixels without a decoder.

    Returns the dataset and the stored-value array, or ``None`` when the fast path does not apply
    (then the caller uses ``pixel_array``). The header is checked (:func:`check_pixel_header`) before
    the pixels are read.
    """
    with open(path, "rb") as fp:
        head = fp.read(132)
        fast = fast_read_dataset(fp) if head[128:132] == b"DICM" else None
        if fast is not None:
            ds, implicit = fast
        else:
            fp.seek(0)
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)  # raw data sets were indexed too
            implicit = bool(ds.is_implicit_VR)
        ts = ensure_transfer_syntax(ds)
        bits = int(ds.get("BitsAllocated", 0) or 0)
        if (
            ts not in NATIVE_LE
            or bits not in (8, 16)
            or int(ds.get("SamplesPerPixel", 1) or 1) != 1
            or int(ds.get("NumberOfFrames", 1) or 1) != 1
        ):
            return ds, None
        rows, cols = int(ds.Rows), int(ds.Columns)
        head = fp.read(12)
        if len(head) < 8 or struct.unpack("<HH", head[:4]) != (0x7FE0, 0x0010):
            return ds, None
        if implicit:
            (length,) = struct.unpack("<L", head[4:8])
            fp.seek(-4, 1)
        elif head[4:6] in _LONG_VRS:
            (length,) = struct.unpack("<L", head[8:12])
        else:
            return ds, None
        count = rows * cols
        if length == 0xFFFFFFFF:
            return ds, None
        check_pixel_header(ds, path, budget_bytes, pixel_length=length)
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        dtype = np.dtype(("<i" if signed else "<u") + str(bits // 8))
        arr = np.fromfile(fp, dtype=dtype, count=count)
        if arr.size != count:
            raise VolumeError("pixel data shorter than Rows x Columns", path)
        stored_bits = int(ds.get("BitsStored", bits) or bits)
        if stored_bits < bits:
            if signed:
                shift = bits - stored_bits
                arr = (arr << shift) >> shift  # sign-extend from BitsStored
            else:
                arr = arr & ((1 << stored_bits) - 1)
        return ds, arr.reshape(rows, cols)


@contextlib.contextmanager
def _unreadable_as_volume_error(path: str) -> Iterator[None]:
    """Turn any error of pydicom inside the block (a malformed element raises many types) into a
    ``VolumeError`` naming ``path``; decoder crashes are handled by :func:`_decoded_pixels`."""
    try:
        yield
    except VolumeError:
        raise
    except Exception as exc:
        raise VolumeError(f"cannot read the file ({one_line(exc)})", path) from exc


def _load_slice(path: str, meta_out: dict[str, Any], budget_bytes: int | None) -> _Stored:
    """Read one single-frame slice's stored values and rescale (``meta_out`` gets the slice thickness)."""
    ds, arr = _read_native(path, budget_bytes)
    if arr is None:
        ds = pydicom.dcmread(path, force=True)
        arr = _decoded_pixels(ds, path, budget_bytes)
    if arr.ndim != 2:
        raise VolumeError(f"expected one greyscale frame, got pixel array of shape {arr.shape}", path)
    if "thickness" not in meta_out:
        try:
            meta_out["thickness"] = float(ds.SliceThickness) if ds.get("SliceThickness") else None
        except (TypeError, ValueError):
            meta_out["thickness"] = None
    slope, intercept = _rescale(ds)
    return _Stored(arr, slope, intercept)


def _single_frame_slices(
    instances: Sequence[Instance], meta_out: dict[str, Any], budget_bytes: int | None
) -> list[_Slice]:
    slices = []
    for k, inst in enumerate(instances):
        path = inst.path

        def load(path: str = path) -> _Stored:
            with _unreadable_as_volume_error(path):
                return _load_slice(path, meta_out, budget_bytes)

        pos = (
            None
            if inst.image_position_lps_mm is None
            else np.asarray(inst.image_position_lps_mm, dtype=float)
        )
        ori = None if inst.image_orientation is None else np.asarray(inst.image_orientation, dtype=float)
        slices.append(
            _Slice(
                pos,
                ori,
                inst.pixel_spacing_mm,
                inst.rows or 0,
                inst.columns or 0,
                inst.instance_number if inst.instance_number is not None else k,
                load,
                path,
            )
        )
    return slices


def _multi_frame_slices(path: str, meta_out: dict[str, Any], budget_bytes: int | None) -> list[_Slice]:
    ds = pydicom.dcmread(path, force=True)
    frames = _decoded_pixels(ds, path, budget_bytes)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if frames.ndim == 2:
        frames = frames[np.newaxis]
    if frames.ndim != 3 or frames.shape[0] != n:
        raise VolumeError(f"expected {n} greyscale frames, got pixel array of shape {frames.shape}", path)
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared0 = shared[0] if shared else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []

    def group(item: Dataset | None, seq: str) -> Dataset | None:
        if item is None:
            return None
        s = item.get(seq)
        return s[0] if s else None

    thick = None
    pm_shared = group(shared0, "PixelMeasuresSequence")
    for src in (ds, pm_shared):
        if src is not None and src.get("SliceThickness") not in (None, ""):
            thick = float(src.SliceThickness)
            break
    meta_out["thickness"] = thick
    slices = []
    for k in range(n):
        pf = per_frame[k] if k < len(per_frame) else None
        pos_src = group(pf, "PlanePositionSequence")
        ori_src = group(pf, "PlaneOrientationSequence") or group(shared0, "PlaneOrientationSequence")
        pm = group(pf, "PixelMeasuresSequence") or pm_shared
        pos = (
            _f(pos_src.ImagePositionPatient, 3)
            if pos_src is not None and "ImagePositionPatient" in pos_src
            else (_f(ds.ImagePositionPatient, 3) if n == 1 and "ImagePositionPatient" in ds else None)
        )
        ori = (
            _f(ori_src.ImageOrientationPatient, 6)
            if ori_src is not None and "ImageOrientationPatient" in ori_src
            else (_f(ds.ImageOrientationPatient, 6) if "ImageOrientationPatient" in ds else None)
        )
        sp_arr = (
            _f(pm.PixelSpacing, 2)
            if pm is not None and "PixelSpacing" in pm
            else (_f(ds.PixelSpacing, 2) if "PixelSpacing" in ds else None)
        )
        spacing = (float(sp_arr[0]), float(sp_arr[1])) if sp_arr is not None else None
        slope, intercept = _rescale(
            group(pf, "PixelValueTransformationSequence"),
            group(shared0, "PixelValueTransformationSequence") or ds,
        )

        def load(k: int = k, slope: float = slope, intercept: float = intercept) -> _Stored:
            return _Stored(frames[k], slope, intercept)

        slices.append(
            _Slice(pos, ori, spacing, frames.shape[1], frames.shape[2], k, load, f"{path}#frame{k + 1}")
        )
    return slices


def read_volume(
    instances: Sequence[Instance],
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    memory_budget_bytes: int | None = None,
) -> Volume:
    """Read a series into a HU volume.

    Parameters
    ----------
    instances
        The instances of one series (any order), as stored by the importer.
    on_progress
        Called with the number of slices read (unit: ``"slices"``).
    cancel
        Polled before each slice.
    memory_budget_bytes
        The most memory the volume may take (:func:`volume_memory_budget_bytes` when ``None``); checked
        against the headers before any pixel buffer is allocated.

    Returns
    -------
    Volume
        ``hu`` is int16 when every slice's rescale is integral and fits, float32 otherwise;
        ``spacing_zyx_mm`` z from the slice positions; ``direction`` columns are the LPS row, column and
        slice-normal directions; ``warnings`` lists every recoverable problem met.

    Raises
    ------
    VolumeError
        If the series has no images, pixel data cannot be decoded (a decoder crash included), the
        headers disagree with the pixel data, the volume is over the memory budget, or the geometry is
        unusable.
    OperationCancelled
        If ``cancel`` was set.
    """
    if not instances:
        raise VolumeError("the series has no instances")
    budget = memory_budget_bytes or volume_memory_budget_bytes()
    warnings: list[str] = []
    meta: dict[str, Any] = {}
    multi = [i for i in instances if i.number_of_frames > 1]
    if multi:
        chosen = max(multi, key=lambda i: i.number_of_frames)
        if len(instances) > 1:
            warnings.append(
                f"series has {len(instances)} instances including multi-frame ones; "
                f"read the largest ({chosen.number_of_frames} frames)"
            )
        with quiet_pydicom() as caught_decoding, _unreadable_as_volume_error(chosen.path):
            slices = _multi_frame_slices(chosen.path, meta, budget)
        meta["irregularities"] = len(caught_decoding)
    else:
        slices = _single_frame_slices(instances, meta, budget)

    # matrix size: keep the majority
    sizes = Counter((s.rows, s.cols) for s in slices)
    if len(sizes) > 1:
        (r, c), n = sizes.most_common(1)[0]
        warnings.append(
            f"mixed matrix sizes {', '.join(f'{a}x{b}' for a, b in sizes)}; kept the {n} slices "
            f"of {r}x{c}, dropped {len(slices) - n}"
        )
        slices = [s for s in slices if (s.rows, s.cols) == (r, c)]

    geo = [s for s in slices if s.position is not None and s.orientation is not None]
    if len(geo) < len(slices):
        if geo:
            warnings.append(f"{len(slices) - len(geo)} slices without position/orientation dropped")
            slices = geo
        else:
            warnings.append(
                "no slice positions: slices ordered by instance number, z spacing unknown (1 mm used)"
            )

    # orientation: keep the majority
    if geo:
        keys = Counter(tuple(np.round(s.orientation, 3)) for s in slices if s.orientation is not None)
        if len(keys) > 1:
            best, n = keys.most_common(1)[0]
            warnings.append(
                f"mixed slice orientations; kept the {n} slices of the main orientation, dropped "
                f"{len(slices) - n}"
            )
            slices = [
                s for s in slices if s.orientation is not None and tuple(np.round(s.orientation, 3)) == best
            ]
        iop = np.asarray(slices[0].orientation, dtype=float)
        row_dir, col_dir = iop[:3], iop[3:]
        row_dir = row_dir / (np.linalg.norm(row_dir) or 1.0)
        col_dir = col_dir / (np.linalg.norm(col_dir) or 1.0)
        normal = np.cross(row_dir, col_dir)
        normal = normal / (np.linalg.norm(normal) or 1.0)
        slices.sort(key=lambda s: float(np.dot(normal, s.position)))  # type: ignore[arg-type]
        z = np.array([float(np.dot(normal, s.position)) for s in slices])  # type: ignore[arg-type]
        keep = [0]
        for k in range(1, len(z)):
            if z[k] - z[keep[-1]] > 1e-3:
                keep.append(k)
        if len(keep) < len(slices):
            warnings.append(f"{len(slices) - len(keep)} slices at duplicate positions dropped")
            slices = [slices[k] for k in keep]
            z = z[keep]
    else:
        slices.sort(key=lambda s: s.order)
        row_dir, col_dir, normal = np.eye(3)[0], np.eye(3)[1], np.eye(3)[2]
        z = np.arange(len(slices), dtype=float)

    spacing_yx = next((s.spacing for s in slices if s.spacing is not None), None)
    if spacing_yx is None:
        warnings.append("no PixelSpacing: 1 mm in-plane spacing assumed")
        spacing_yx = (1.0, 1.0)

    # z spacing, gaps and unevenness
    grid_z = z
    if len(z) >= 2:
        diffs = np.diff(z)
        step = float(np.median(diffs))
        tol = max(0.05 * step, 0.01)
        multiples = np.rint(diffs / step)
        regular = np.all(np.abs(diffs - step) <= tol)
        if regular:
            step = float((z[-1] - z[0]) / (len(z) - 1))  # the mean step: exact for evenly spaced slices
        else:
            missing = int(
                sum(
                    m - 1
                    for d, m in zip(diffs, multiples, strict=True)
                    if m >= 2 and abs(d - m * step) <= tol
                )
            )
            uneven = bool(np.any(np.abs(diffs - multiples * step) > tol) or np.any(multiples < 1))
            if missing:
                gaps = [
                    f"{z[k]:.1f}..{z[k + 1]:.1f} mm"
                    for k in range(len(diffs))
                    if multiples[k] >= 2 and abs(diffs[k] - multiples[k] * step) <= tol
                ]
                warnings.append(
                    f"{missing} missing slice(s) (gaps at {', '.join(gaps[:5])}); "
                    "filled by linear interpolation"
                )
            if uneven:
                warnings.append(
                    f"uneven slice spacing ({diffs.min():.2f} to {diffs.max():.2f} mm); resampled to "
                    f"{step:.2f} mm by linear interpolation"
                )
            n_grid = int(np.floor((z[-1] - z[0]) / step + 0.01)) + 1  # never extrapolate past the last slice
            grid_z = z[0] + step * np.arange(n_grid)
    else:
        step = float(meta.get("thickness") or 0.0) or 1.0
        warnings.append(f"single-slice series; z spacing {step:g} mm assumed")

    # gantry tilt: slice positions drift within the image plane
    if geo and len(slices) >= 2:
        p0, p1 = np.asarray(slices[0].position), np.asarray(slices[-1].position)
        v = p1 - p0
        if np.linalg.norm(v) > 0:
            cosang = abs(float(np.dot(v, normal))) / float(np.linalg.norm(v))
            angle = float(np.degrees(np.arccos(min(1.0, cosang))))
            if angle > 0.5:
                warnings.append(
                    f"gantry tilt of {angle:.1f} degrees: slices are sheared; positions and "
                    "measurements away from the centre are approximate"
                )

    # pixels
    rows, cols = slices[0].rows, slices[0].cols
    total = len(slices)
    check_memory_budget(
        max(total, len(grid_z)) * rows * cols,
        f"a volume of {total} x {rows} x {cols}",
        budget,
        slices[0].source,
    )
    out: npt.NDArray[Any] = np.empty((total, rows, cols), dtype=np.int16)
    with quiet_pydicom() as caught:
        for k, s in enumerate(slices):
            check_cancel(cancel)
            px = s.load()
            if px.values.shape != (rows, cols):
                raise VolumeError(f"slice has shape {px.values.shape}, expected {(rows, cols)}", s.source)
            out = _place(out, k, px)
            if k % 8 == 0 or k == total - 1:
                report(on_progress, k + 1, total, "slices", "reading slices")
    irregular = len(caught) + int(meta.get("irregularities", 0))
    if irregular:
        warnings.append(f"the DICOM reader reported {irregular} irregularities in the files' encoding")

    if len(grid_z) != len(z) or not np.allclose(grid_z, z):
        out = _resample_z(out, z, grid_z)

    origin = np.asarray(slices[0].position, dtype=float) if geo else np.zeros(3)
    direction = tuple(tuple(float(v) for v in row) for row in np.column_stack([row_dir, col_dir, normal]))
    return Volume(
        hu=out,
        spacing_zyx_mm=(float(step), float(spacing_yx[0]), float(spacing_yx[1])),
        origin_lps_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction=direction,  # type: ignore[arg-type]
        series_uid=instances[0].series_uid,
        warnings=tuple(warnings),
        slice_thickness_mm=meta.get("thickness"),
    )


def _resample_z(
    vol: npt.NDArray[Any], z: npt.NDArray[np.float64], grid: npt.NDArray[np.float64]
) -> npt.NDArray[Any]:
    """Linearly interpolate ``vol`` (slices at positions ``z``) onto positions ``grid`` along axis 0."""
    out = np.empty((len(grid), *vol.shape[1:]), dtype=vol.dtype)
    idx = np.clip(np.searchsorted(z, grid, side="right") - 1, 0, len(z) - 2)
    for k, g in enumerate(grid):
        i = int(idx[k])
        z0, z1 = z[i], z[i + 1]
        w = 0.0 if z1 == z0 else min(1.0, max(0.0, (g - z0) / (z1 - z0)))
        if w < 1e-6:
            out[k] = vol[i]
        elif w > 1 - 1e-6:
            out[k] = vol[i + 1]
        else:
            mixed = vol[i].astype(np.float32) * (1 - w) + vol[i + 1].astype(np.float32) * w
            out[k] = np.rint(mixed) if vol.dtype.kind == "i" else mixed
    return out
