"""The shared state of the three linked views: volume, cursor, window/level and overlays."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QObject, Signal

from radiology_app.core.types import Volume
from radiology_app.ui.imaging import PRESETS


@dataclass(frozen=True)
class Marker:
    """A labelled point drawn on the views (a nodule centroid), voxel index ``(z, y, x)``."""

    label: str
    zyx: tuple[float, float, float]
    selected: bool = False


class ViewerModel(QObject):
    """State shared by the slice views; views listen to its signals and never hold their own copy.

    Signals
    -------
    volume_changed
        A new volume (or none) was set.
    position_changed
        The crosshair voxel ``(z, y, x)`` moved.
    window_changed
        Window width or level changed (HU).
    overlay_changed
        Contour labels, visibility, opacity or markers changed.
    """

    volume_changed = Signal()
    position_changed = Signal()
    window_changed = Signal()
    overlay_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.volume: Volume | None = None
        self.position: tuple[int, int, int] = (0, 0, 0)
        self.window_width_hu: float = PRESETS["lung"][0]
        self.window_level_hu: float = PRESETS["lung"][1]
        self.labels: npt.NDArray[np.integer] | None = None
        self.label_colors: dict[int, tuple[int, int, int]] = {}
        self.overlay_visible: bool = True
        self.overlay_opacity: float = 0.9
        self.saliency: npt.NDArray[np.floating] | None = None
        self.saliency_origin_zyx: tuple[int, int, int] = (0, 0, 0)
        self.markers: tuple[Marker, ...] = ()
        self._x_major: tuple[int, npt.NDArray[np.generic]] | None = None

    # -- volume and cursor -------------------------------------------------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        """Show ``volume`` (or nothing), centre the cursor and clear the overlays."""
        self.volume = volume
        self._x_major = None
        if volume is not None:
            threading.Thread(
                target=self._build_x_major, args=(volume,), daemon=True, name="sagittal-copy"
            ).start()
        self.labels = None
        self.saliency = None
        self.markers = ()
        if volume is not None:
            z, y, x = volume.shape_zyx
            self.position = (z // 2, y // 2, x // 2)
        self.volume_changed.emit()
        self.overlay_changed.emit()
        self.position_changed.emit()

    def _build_x_major(self, volume: Volume) -> None:
        # A sagittal slice of a [z, y, x] array touches one cache line per voxel (about 10 ms for 300x512);
        # an [x, z, y] copy makes it contiguous. Built off the GUI thread; numpy releases the GIL.
        copy = np.ascontiguousarray(np.moveaxis(volume.hu, 2, 0))
        if self.volume is volume:
            self._x_major = (id(volume), copy)

    def sagittal_slice(self, x_index: int) -> npt.NDArray[np.generic] | None:
        """Sagittal slice ``hu[:, :, x_index]`` (``[z, y]``) from the contiguous copy, once it is built."""
        cache = self._x_major
        if cache is None or self.volume is None or cache[0] != id(self.volume):
            return None
        arr = cache[1]
        plane: npt.NDArray[np.generic] = arr[int(min(max(x_index, 0), arr.shape[0] - 1))]
        return plane

    def set_position(self, zyx: tuple[float, float, float]) -> None:
        """Move the crosshair to voxel ``zyx`` (clamped to the volume)."""
        if self.volume is None:
            return
        shape = self.volume.shape_zyx
        pos = (
            int(min(max(round(zyx[0]), 0), shape[0] - 1)),
            int(min(max(round(zyx[1]), 0), shape[1] - 1)),
            int(min(max(round(zyx[2]), 0), shape[2] - 1)),
        )
        if pos != self.position:
            self.position = pos
            self.position_changed.emit()

    def step(self, axis: int, delta: int) -> None:
        """Move the cursor ``delta`` voxels along volume ``axis`` (0 = z, 1 = y, 2 = x)."""
        pos = list(self.position)
        pos[axis] += delta
        self.set_position((pos[0], pos[1], pos[2]))

    def position_lps_mm(self) -> tuple[float, float, float] | None:
        """The cursor's LPS position in mm, or ``None`` without a volume."""
        if self.volume is None:
            return None
        z, y, x = self.position
        return self.volume.index_to_lps((float(z), float(y), float(x)))

    def hu_at(self, zyx: tuple[int, int, int]) -> float | None:
        """HU of voxel ``zyx``, or ``None`` outside the volume."""
        if self.volume is None:
            return None
        shape = self.volume.shape_zyx
        if not all(0 <= zyx[i] < shape[i] for i in range(3)):
            return None
        return float(self.volume.hu[zyx])

    # -- window ------------------------------------------------------------------------------------
    def set_window(self, width_hu: float, level_hu: float) -> None:
        """Set window width and level in HU (width at least 1)."""
        width_hu = max(1.0, float(width_hu))
        if (width_hu, level_hu) != (self.window_width_hu, self.window_level_hu):
            self.window_width_hu = width_hu
            self.window_level_hu = float(level_hu)
            self.window_changed.emit()

    def apply_preset(self, name: str) -> None:
        """Apply one of :data:`~radiology_app.ui.imaging.PRESETS` by name."""
        width, level = PRESETS[name]
        self.set_window(width, level)

    # -- overlays ----------------------------------------------------------------------------------
    def set_labels(
        self, labels: npt.NDArray[np.integer] | None, colors: dict[int, tuple[int, int, int]] | None = None
    ) -> None:
        """Set the contour label volume (same shape as the volume, 0 = background) and label colours."""
        if labels is not None and self.volume is not None and labels.shape != self.volume.shape_zyx:
            raise ValueError(f"label volume shape {labels.shape} differs from volume {self.volume.shape_zyx}")
        self.labels = labels
        self.label_colors = dict(colors or {})
        self.overlay_changed.emit()

    def set_saliency(
        self, saliency: npt.NDArray[np.floating] | None, origin_zyx: tuple[int, int, int] = (0, 0, 0)
    ) -> None:
        """Set a saliency map in [0, 1] (3-D ``[z, y, x]`` or 2-D axial ``[y, x]``) at ``origin_zyx``."""
        self.saliency = saliency
        self.saliency_origin_zyx = origin_zyx
        self.overlay_changed.emit()

    def set_markers(self, markers: tuple[Marker, ...]) -> None:
        """Set the labelled points drawn on the views."""
        self.markers = markers
        self.overlay_changed.emit()

    def set_overlay_visible(self, visible: bool) -> None:
        """Show or hide the contour and saliency overlays."""
        self.overlay_visible = bool(visible)
        self.overlay_changed.emit()

    def set_overlay_opacity(self, opacity: float) -> None:
        """Set the overlay opacity in [0, 1]."""
        self.overlay_opacity = float(min(max(opacity, 0.0), 1.0))
        self.overlay_changed.emit()
