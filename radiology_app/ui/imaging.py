"""Qt-free image maths for the viewer: window/level lookup tables, slice extraction, orientation.

Everything here works on numpy arrays so that it can be tested and benchmarked without a display.
Volumes are indexed ``[z, y, x]``; HU values are int16 or float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

#: Window presets as ``(width_hu, level_hu)``, with the key that selects each.
PRESETS: dict[str, tuple[float, float]] = {
    "lung": (1500.0, -600.0),
    "mediastinum": (350.0, 50.0),
    "soft tissue": (400.0, 40.0),
    "bone": (2500.0, 480.0),
}

#: Offset added to int16 HU before indexing a 65,536-entry LUT.
_LUT_OFFSET = 32768


class Plane(StrEnum):
    """The three orthogonal display planes."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


@dataclass(frozen=True)
class PlaneGeometry:
    """How one plane maps the volume to the screen.

    Attributes
    ----------
    row_axis, col_axis
        Volume axes (0 = z, 1 = y, 2 = x) shown along screen rows (downwards) and columns (rightwards).
    slice_axis
        Volume axis the plane steps through.
    flip_rows
        Whether the screen rows run against the volume axis (so superior is at the top).
    row_spacing_mm, col_spacing_mm
        Physical size of one screen row / column, in mm.
    """

    row_axis: int
    col_axis: int
    slice_axis: int
    flip_rows: bool
    row_spacing_mm: float
    col_spacing_mm: float


def plane_geometry(
    plane: Plane,
    spacing_zyx_mm: tuple[float, float, float],
    direction: tuple[tuple[float, float, float], ...],
) -> PlaneGeometry:
    """Return the :class:`PlaneGeometry` of ``plane`` for a volume.

    Parameters
    ----------
    plane
        Which plane.
    spacing_zyx_mm
        Voxel spacing in mm.
    direction
        3x3 matrix whose columns are the LPS unit vectors of the x, y and z axes.
    """
    sz, sy, sx = spacing_zyx_mm
    d = np.asarray(direction, dtype=float)
    # z-axis LPS S component: when positive, higher z index = more superior -> flip for display.
    flip = bool(d[2, 2] > 0) if abs(d[2, 2]) > 1e-6 else False
    if plane is Plane.AXIAL:
        return PlaneGeometry(
            row_axis=1, col_axis=2, slice_axis=0, flip_rows=False, row_spacing_mm=sy, col_spacing_mm=sx
        )
    if plane is Plane.CORONAL:
        return PlaneGeometry(
            row_axis=0, col_axis=2, slice_axis=1, flip_rows=flip, row_spacing_mm=sz, col_spacing_mm=sx
        )
    return PlaneGeometry(
        row_axis=0, col_axis=1, slice_axis=2, flip_rows=flip, row_spacing_mm=sz, col_spacing_mm=sy
    )


def extract_slice(volume: npt.NDArray[Any], geom: PlaneGeometry, index: int) -> npt.NDArray[Any]:
    """Return the 2-D slice ``index`` of ``volume`` for ``geom``, in screen order (rows, columns).

    The result may be a view; it is not copied unless flipping requires it.
    """
    n = volume.shape[geom.slice_axis]
    index = int(min(max(index, 0), n - 1))
    if geom.slice_axis == 0:
        img = volume[index]
    elif geom.slice_axis == 1:
        img = volume[:, index, :]
    else:
        img = volume[:, :, index]
    if geom.flip_rows:
        img = img[::-1]
    result: npt.NDArray[Any] = img
    return result


def screen_to_voxel(
    geom: PlaneGeometry, shape_zyx: tuple[int, int, int], slice_index: int, row: float, col: float
) -> tuple[float, float, float]:
    """Map a (fractional) screen pixel ``(row, col)`` of a slice back to a voxel index ``(z, y, x)``."""
    zyx = [0.0, 0.0, 0.0]
    zyx[geom.slice_axis] = float(slice_index)
    if geom.flip_rows:
        row = shape_zyx[geom.row_axis] - 1 - row
    zyx[geom.row_axis] = row
    zyx[geom.col_axis] = col
    return zyx[0], zyx[1], zyx[2]


def voxel_to_screen(
    geom: PlaneGeometry, shape_zyx: tuple[int, int, int], zyx: tuple[float, float, float]
) -> tuple[float, float]:
    """Map a voxel index ``(z, y, x)`` to the screen pixel ``(row, col)`` of ``geom``'s plane."""
    row = zyx[geom.row_axis]
    if geom.flip_rows:
        row = shape_zyx[geom.row_axis] - 1 - row
    return row, zyx[geom.col_axis]


class WindowLut:
    """A cached lookup table that maps HU to 8-bit grey for one window/level.

    For int16 data a 65,536-entry table is indexed directly (about 1 ms for 512x512); other dtypes
    are scaled arithmetically.
    """

    def __init__(self) -> None:
        self._key: tuple[float, float] | None = None
        self._table: npt.NDArray[np.uint8] = np.zeros(65536, dtype=np.uint8)
        self._key32: tuple[float, float] | None = None
        self._table32: npt.NDArray[np.uint32] = np.zeros(65536, dtype=np.uint32)

    def table(self, width_hu: float, level_hu: float) -> npt.NDArray[np.uint8]:
        """Return the 65,536-entry LUT for ``(width_hu, level_hu)`` (indexed by ``hu + 32768``)."""
        key = (float(width_hu), float(level_hu))
        if key != self._key:
            hu = np.arange(65536, dtype=np.float32) - _LUT_OFFSET
            self._table = window_float(hu, width_hu, level_hu)
            self._key = key
        return self._table

    def table_rgb32(self, width_hu: float, level_hu: float) -> npt.NDArray[np.uint32]:
        """The LUT as opaque 0xFFRRGGBB grey pixels (QImage ``Format_RGB32``), cached per window."""
        key = (float(width_hu), float(level_hu))
        if key != self._key32:
            grey = self.table(width_hu, level_hu).astype(np.uint32)
            opaque = np.full(grey.shape, 0xFF000000, dtype=np.uint32)
            self._table32 = opaque | (grey << np.uint32(16)) | (grey << np.uint32(8)) | grey
            self._key32 = key
        return self._table32

    def apply_rgb32(
        self, image: npt.NDArray[Any], width_hu: float, level_hu: float
    ) -> npt.NDArray[np.uint32]:
        """Return ``image`` windowed to opaque grey RGB32 pixels (C-contiguous uint32, same shape).

        Qt draws (and scales) RGB32 images about twice as fast as 8-bit grey ones.
        """
        idx: npt.NDArray[Any]
        if image.dtype == np.int16:
            idx = image.view(np.uint16) ^ np.uint16(0x8000)
        else:
            idx = (
                np.clip(np.rint(np.asarray(image, dtype=np.float32)), -32768, 32767).astype(np.int32)
                + _LUT_OFFSET
            )
        out: npt.NDArray[np.uint32] = np.ascontiguousarray(self.table_rgb32(width_hu, level_hu)[idx])
        return out

    def apply(self, image: npt.NDArray[Any], width_hu: float, level_hu: float) -> npt.NDArray[np.uint8]:
        """Return ``image`` windowed to uint8, C-contiguous, same shape."""
        if image.dtype == np.int16:
            lut = self.table(width_hu, level_hu)
            # Flipping the sign bit of the two's-complement int16 gives hu + 32768 as uint16.
            idx = image.view(np.uint16) ^ np.uint16(0x8000)
            out: npt.NDArray[np.uint8] = np.ascontiguousarray(lut[idx])
            return out
        return np.ascontiguousarray(window_float(np.asarray(image, dtype=np.float32), width_hu, level_hu))


def window_float(hu: npt.NDArray[np.floating], width_hu: float, level_hu: float) -> npt.NDArray[np.uint8]:
    """Map HU to 0..255 with a linear window of ``width_hu`` centred on ``level_hu``."""
    width = max(float(width_hu), 1.0)
    lo = float(level_hu) - width / 2.0
    scaled = (hu - lo) * (255.0 / width)
    out: npt.NDArray[np.uint8] = np.clip(scaled, 0.0, 255.0).astype(np.uint8)
    return out


def place_in_slice(
    sub: npt.NDArray[Any],
    origin_zyx: tuple[int, int, int],
    shape_zyx: tuple[int, int, int],
    geom: PlaneGeometry,
    index: int,
) -> npt.NDArray[np.float32] | None:
    """Return slice ``index`` of a sub-volume placed at ``origin_zyx`` in a volume of ``shape_zyx``.

    The result has the plane's full 2-D screen shape (zeros outside the sub-volume), or is ``None`` when
    the slice misses the sub-volume. ``sub`` may be 3-D ``[z, y, x]`` or 2-D ``[y, x]`` (one axial slice
    at ``origin_zyx[0]``).
    """
    if sub.ndim == 2:
        sub = sub[np.newaxis]
    k = index - origin_zyx[geom.slice_axis]
    if not 0 <= k < sub.shape[geom.slice_axis]:
        return None
    plane = np.take(sub, k, axis=geom.slice_axis)
    rows, cols = shape_zyx[geom.row_axis], shape_zyx[geom.col_axis]
    out = np.zeros((rows, cols), dtype=np.float32)
    r0, c0 = origin_zyx[geom.row_axis], origin_zyx[geom.col_axis]
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + plane.shape[0], rows), min(c0 + plane.shape[1], cols)
    if rs >= re or cs >= ce:
        return None
    out[rs:re, cs:ce] = plane[rs - r0 : re - r0, cs - c0 : ce - c0]
    return out[::-1] if geom.flip_rows else out


def contour_mask(labels_2d: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Return the one-pixel boundary of every non-zero label in a 2-D label image (4-neighbourhood)."""
    lab = np.asarray(labels_2d)
    fg = lab != 0
    if not fg.any():
        return np.zeros(lab.shape, dtype=bool)
    pad = np.pad(lab, 1, mode="constant")
    centre = pad[1:-1, 1:-1]
    edge = np.zeros(lab.shape, dtype=bool)
    for dy, dx in ((0, 1), (1, 0), (1, 2), (2, 1)):
        edge |= pad[dy : dy + lab.shape[0], dx : dx + lab.shape[1]] != centre
    result: npt.NDArray[np.bool_] = edge & fg
    return result


_AXIS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))


def direction_letter(vector_lps: npt.ArrayLike) -> str:
    """Return the patient-direction letter (L/R, P/A, S/I) of the dominant LPS component of a vector."""
    v = np.asarray(vector_lps, dtype=float)
    k = int(np.argmax(np.abs(v)))
    return _AXIS_LETTERS[k][1] if v[k] > 0 else _AXIS_LETTERS[k][0]


def orientation_labels(
    geom: PlaneGeometry, direction: tuple[tuple[float, float, float], ...]
) -> dict[str, str]:
    """Return the patient-direction letters at the ``left``/``right``/``top``/``bottom`` screen edges."""
    d = np.asarray(direction, dtype=float)
    # Volume axis a (0=z, 1=y, 2=x) runs along the LPS vector d[:, 2 - a].
    col_vec = d[:, 2 - geom.col_axis]
    row_vec = d[:, 2 - geom.row_axis] * (-1.0 if geom.flip_rows else 1.0)
    return {
        "right": direction_letter(col_vec),
        "left": direction_letter(-col_vec),
        "bottom": direction_letter(row_vec),
        "top": direction_letter(-row_vec),
    }
