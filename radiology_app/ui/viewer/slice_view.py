"""One slice view (axial, coronal or sagittal) of a :class:`ViewerModel`, painted with QPainter.

Mouse: left click moves the crosshair; left drag changes window/level (horizontal = width, vertical =
level); middle drag pans; right drag or Ctrl+wheel zooms; the wheel scrolls slices; in measure mode a left
drag draws a length ruler; in add mode a left click emits :attr:`SliceViewWidget.voxel_clicked`.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from radiology_app.ui.imaging import (
    Plane,
    PlaneGeometry,
    WindowLut,
    contour_mask,
    extract_slice,
    orientation_labels,
    place_in_slice,
    plane_geometry,
    screen_to_voxel,
    voxel_to_screen,
)
from radiology_app.ui.viewer.model import ViewerModel

#: Crosshair / frame colour of each plane (the line a plane draws in the others has its colour).
PLANE_COLORS = {
    Plane.AXIAL: QColor(80, 200, 255),
    Plane.CORONAL: QColor(120, 230, 120),
    Plane.SAGITTAL: QColor(255, 170, 60),
}
_DEFAULT_LABEL_COLOR = (255, 60, 60)
_DRAG_THRESHOLD_PX = 3


class InteractionMode(StrEnum):
    """What a left click or drag does."""

    NAVIGATE = "navigate"
    MEASURE = "measure"
    ADD_NODULE = "add"


class SliceViewWidget(QWidget):
    """Paints one plane of the shared :class:`ViewerModel`.

    Signals
    -------
    voxel_clicked(object)
        In add mode, the voxel ``(z, y, x)`` (ints) the user clicked.
    hover_changed(str)
        Text describing the voxel under the mouse (slice, LPS mm, HU).
    ruler_changed(float)
        Length in mm of the ruler just drawn.
    """

    voxel_clicked = Signal(object)
    hover_changed = Signal(str)
    ruler_changed = Signal(float)

    def __init__(self, model: ViewerModel, plane: Plane, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.plane = plane
        self.mode = InteractionMode.NAVIGATE
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)
        self._lut = WindowLut()
        self._geom: PlaneGeometry | None = None
        self._image: QImage | None = None
        self._image_buffer: npt.NDArray[np.uint32] | None = None
        self._image_key: tuple[object, ...] | None = None
        self._overlay: QImage | None = None
        self._overlay_buffer: npt.NDArray[np.uint8] | None = None
        self._overlay_key: tuple[object, ...] | None = None
        self._press_pos: QPointF | None = None
        self._press_button = Qt.MouseButton.NoButton
        self._press_window = (0.0, 0.0)
        self._press_zoom = 1.0
        self._press_pan = QPointF()
        self._dragging = False
        self._hover_zyx: tuple[int, int, int] | None = None
        self.ruler: tuple[int, tuple[float, float], tuple[float, float]] | None = None
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        model.volume_changed.connect(self._on_volume_changed)
        model.position_changed.connect(self.update)
        model.window_changed.connect(self.update)
        model.overlay_changed.connect(self._on_overlay_changed)
        self._on_volume_changed()

    # -- state -------------------------------------------------------------------------------------
    def _on_volume_changed(self) -> None:
        vol = self.model.volume
        self._geom = None if vol is None else plane_geometry(self.plane, vol.spacing_zyx_mm, vol.direction)
        self._image_key = None
        self._overlay_key = None
        self.ruler = None
        self.reset_view()

    def _on_overlay_changed(self) -> None:
        self._overlay_key = None
        self.update()

    def reset_view(self) -> None:
        """Fit the slice to the view (zoom 1, no pan)."""
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)
        self.update()

    @property
    def geometry_info(self) -> PlaneGeometry | None:
        """The plane geometry of the current volume (``None`` without one)."""
        return self._geom

    def slice_index(self) -> int:
        """Index of the slice this view shows (along its slice axis)."""
        if self._geom is None:
            return 0
        return self.model.position[self._geom.slice_axis]

    def slice_count(self) -> int:
        """Number of slices along this view's slice axis."""
        vol = self.model.volume
        if vol is None or self._geom is None:
            return 0
        return vol.shape_zyx[self._geom.slice_axis]

    # -- rendering ---------------------------------------------------------------------------------
    def render_slice(self) -> QImage | None:
        """Return the windowed grey image of the current slice (cached per slice and window)."""
        vol = self.model.volume
        if vol is None or self._geom is None:
            return None
        key = (id(vol), self.slice_index(), self.model.window_width_hu, self.model.window_level_hu)
        if key != self._image_key:
            raw = None
            if self._geom.slice_axis == 2:
                raw = self.model.sagittal_slice(self.slice_index())
                if raw is not None and self._geom.flip_rows:
                    raw = raw[::-1]
            if raw is None:
                raw = extract_slice(vol.hu, self._geom, self.slice_index())
            buf = self._lut.apply_rgb32(raw, self.model.window_width_hu, self.model.window_level_hu)
            h, w = buf.shape
            self._image_buffer = buf
            self._image = QImage(buf.data, w, h, 4 * w, QImage.Format.Format_RGB32)
            self._image_key = key
        return self._image

    def render_overlay(self) -> QImage | None:
        """Return the contour + saliency overlay of the current slice as ARGB, or ``None`` if empty."""
        m = self.model
        vol = m.volume
        if vol is None or self._geom is None or not m.overlay_visible:
            return None
        key = (id(vol), self.slice_index(), id(m.labels), id(m.saliency), tuple(m.label_colors.items()))
        if key == self._overlay_key:
            return self._overlay
        self._overlay_key = key
        self._overlay = None
        rgba: npt.NDArray[np.uint8] | None = None
        shape2d = extract_slice(vol.hu, self._geom, self.slice_index()).shape
        if m.saliency is not None:
            sal = self._saliency_slice()
            if sal is not None and float(sal.max()) > 0:
                rgba = np.zeros((*shape2d, 4), dtype=np.uint8)
                heat = np.clip(sal, 0.0, 1.0)
                rgba[..., 2] = 255  # red (BGRA order in memory for Format_ARGB32 on little-endian)
                rgba[..., 1] = (200 * heat).astype(np.uint8)
                rgba[..., 3] = (150 * heat).astype(np.uint8)
        if m.labels is not None:
            lab = extract_slice(m.labels, self._geom, self.slice_index())
            edge = contour_mask(lab)
            if edge.any():
                if rgba is None:
                    rgba = np.zeros((*shape2d, 4), dtype=np.uint8)
                for value in np.unique(lab[edge]):
                    r, g, b = m.label_colors.get(int(value), _DEFAULT_LABEL_COLOR)
                    sel = edge & (lab == value)
                    rgba[sel] = (b, g, r, 255)
        if rgba is not None:
            rgba = np.ascontiguousarray(rgba)
            self._overlay_buffer = rgba
            h, w = shape2d
            self._overlay = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_ARGB32)
        return self._overlay

    def _saliency_slice(self) -> npt.NDArray[np.float32] | None:
        m = self.model
        assert m.saliency is not None and m.volume is not None and self._geom is not None
        return place_in_slice(
            np.asarray(m.saliency), m.saliency_origin_zyx, m.volume.shape_zyx, self._geom, self.slice_index()
        )

    # -- coordinates -------------------------------------------------------------------------------
    def _scale(self) -> tuple[float, float]:
        """Screen pixels per image column and per image row."""
        assert self._geom is not None and self.model.volume is not None
        shape = self.model.volume.shape_zyx
        rows, cols = shape[self._geom.row_axis], shape[self._geom.col_axis]
        width_mm = cols * self._geom.col_spacing_mm
        height_mm = rows * self._geom.row_spacing_mm
        s = min(self.width() / width_mm, self.height() / height_mm) * self.zoom
        return s * self._geom.col_spacing_mm, s * self._geom.row_spacing_mm

    def image_to_widget(self, row: float, col: float) -> QPointF:
        """Map image pixel coordinates (row, column; pixel centres at +0.5) to widget coordinates."""
        assert self._geom is not None and self.model.volume is not None
        shape = self.model.volume.shape_zyx
        rows, cols = shape[self._geom.row_axis], shape[self._geom.col_axis]
        sx, sy = self._scale()
        return QPointF(
            self.width() / 2 + self.pan.x() + (col - cols / 2) * sx,
            self.height() / 2 + self.pan.y() + (row - rows / 2) * sy,
        )

    def widget_to_image(self, p: QPointF) -> tuple[float, float]:
        """Map a widget point to image coordinates ``(row, col)`` (continuous; pixel i spans [i, i+1))."""
        assert self._geom is not None and self.model.volume is not None
        shape = self.model.volume.shape_zyx
        rows, cols = shape[self._geom.row_axis], shape[self._geom.col_axis]
        sx, sy = self._scale()
        col = (p.x() - self.width() / 2 - self.pan.x()) / sx + cols / 2
        row = (p.y() - self.height() / 2 - self.pan.y()) / sy + rows / 2
        return row, col

    def widget_to_voxel(self, p: QPointF) -> tuple[int, int, int] | None:
        """Voxel ``(z, y, x)`` under widget point ``p``, or ``None`` outside the image."""
        vol = self.model.volume
        if vol is None or self._geom is None:
            return None
        row, col = self.widget_to_image(p)
        shape = vol.shape_zyx
        if not (0 <= row < shape[self._geom.row_axis] and 0 <= col < shape[self._geom.col_axis]):
            return None
        z, y, x = screen_to_voxel(self._geom, shape, self.slice_index(), math.floor(row), math.floor(col))
        return int(z), int(y), int(x)

    def voxel_to_widget(self, zyx: tuple[float, float, float]) -> QPointF:
        """Widget point of the centre of voxel ``zyx`` (its in-plane part)."""
        assert self._geom is not None and self.model.volume is not None
        row, col = voxel_to_screen(self._geom, self.model.volume.shape_zyx, zyx)
        return self.image_to_widget(row + 0.5, col + 0.5)

    def ruler_length_mm(self) -> float | None:
        """Length of the current ruler in mm, or ``None`` when there is none."""
        if self.ruler is None or self._geom is None:
            return None
        _, (r0, c0), (r1, c1) = self.ruler
        return math.hypot((r1 - r0) * self._geom.row_spacing_mm, (c1 - c0) * self._geom.col_spacing_mm)

    # -- painting ----------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        image = self.render_slice()
        if image is None or self._geom is None or self.model.volume is None:
            painter.setPen(QColor(140, 140, 140))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, f"{self.plane.value}\nno study")
            painter.end()
            return
        shape = self.model.volume.shape_zyx
        rows, cols = shape[self._geom.row_axis], shape[self._geom.col_axis]
        top_left = self.image_to_widget(0, 0)
        bottom_right = self.image_to_widget(rows, cols)
        target = QRectF(top_left, bottom_right)
        painter.setRenderHint(
            QPainter.RenderHint.SmoothPixmapTransform,
            self.zoom * min(self.width() / cols, self.height() / rows) < 4,
        )
        painter.drawImage(target, image)
        overlay = self.render_overlay()
        if overlay is not None:
            painter.setOpacity(self.model.overlay_opacity)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(target, overlay)
            painter.setOpacity(1.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self._paint_crosshair(painter)
        self._paint_markers(painter)
        self._paint_ruler(painter)
        self._paint_text(painter)
        painter.setPen(QPen(PLANE_COLORS[self.plane], 2 if self.hasFocus() else 1))
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        painter.end()

    def _paint_crosshair(self, painter: QPainter) -> None:
        assert self._geom is not None
        centre = self.voxel_to_widget(tuple(float(v) for v in self.model.position))  # type: ignore[arg-type]
        gap = 12.0
        others = {0: Plane.AXIAL, 1: Plane.CORONAL, 2: Plane.SAGITTAL}
        # Vertical line: the plane whose slice axis is this view's column axis.
        painter.setPen(QPen(PLANE_COLORS[others[self._geom.col_axis]], 1))
        painter.drawLine(QPointF(centre.x(), 0), QPointF(centre.x(), centre.y() - gap))
        painter.drawLine(QPointF(centre.x(), centre.y() + gap), QPointF(centre.x(), self.height()))
        painter.setPen(QPen(PLANE_COLORS[others[self._geom.row_axis]], 1))
        painter.drawLine(QPointF(0, centre.y()), QPointF(centre.x() - gap, centre.y()))
        painter.drawLine(QPointF(centre.x() + gap, centre.y()), QPointF(self.width(), centre.y()))

    def _paint_markers(self, painter: QPainter) -> None:
        assert self._geom is not None
        if not self.model.overlay_visible:
            return
        axis = self._geom.slice_axis
        here = self.slice_index()
        for marker in self.model.markers:
            if abs(marker.zyx[axis] - here) > 3:
                continue
            p = self.voxel_to_widget(marker.zyx)
            color = QColor(255, 230, 0) if marker.selected else QColor(255, 120, 120)
            painter.setPen(QPen(color, 1.5))
            painter.drawText(p + QPointF(14, -10), marker.label)

    def _paint_ruler(self, painter: QPainter) -> None:
        if self.ruler is None or self.ruler[0] != self.slice_index():
            return
        _, (r0, c0), (r1, c1) = self.ruler
        a, b = self.image_to_widget(r0, c0), self.image_to_widget(r1, c1)
        painter.setPen(QPen(QColor(255, 255, 0), 1.5))
        painter.drawLine(a, b)
        for p in (a, b):
            painter.drawEllipse(p, 3, 3)
        length = self.ruler_length_mm()
        painter.drawText(b + QPointF(6, -6), f"{length:.1f} mm")

    @staticmethod
    def _shadowed(painter: QPainter, x: int, y: int, text: str, color: QColor) -> None:
        """Draw text with a dark shadow so it stays legible over bright image regions."""
        painter.setPen(QColor(0, 0, 0))
        painter.drawText(x + 1, y + 1, text)
        painter.setPen(color)
        painter.drawText(x, y, text)

    def _paint_text(self, painter: QPainter) -> None:
        assert self._geom is not None and self.model.volume is not None
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF()))
        painter.setFont(font)
        fm = painter.fontMetrics()
        lh = fm.height()
        w, h = self.width(), self.height()
        white, amber = QColor(230, 230, 230), QColor(255, 220, 120)
        title = f"{self.plane.value.capitalize()}  {self.slice_index() + 1}/{self.slice_count()}"
        self._shadowed(painter, 6, lh, title, white)
        lps = self.model.position_lps_mm()
        if lps is not None:
            self._shadowed(painter, 6, 2 * lh, f"L {lps[0]:.1f}  P {lps[1]:.1f}  S {lps[2]:.1f} mm", white)
        wl = f"W {self.model.window_width_hu:.0f}  L {self.model.window_level_hu:.0f}"
        self._shadowed(painter, 6, h - 6, wl, white)
        hover = self._hover_text()
        if hover:
            self._shadowed(painter, 6, h - 6 - lh, hover, white)
        labels = orientation_labels(self._geom, self.model.volume.direction)
        self._shadowed(painter, 6, h // 2, labels["left"], amber)
        self._shadowed(painter, w - fm.horizontalAdvance(labels["right"]) - 6, h // 2, labels["right"], amber)
        self._shadowed(
            painter, w // 2 - fm.horizontalAdvance(labels["top"]) // 2, 3 * lh, labels["top"], amber
        )
        self._shadowed(
            painter, w // 2 - fm.horizontalAdvance(labels["bottom"]) // 2, h - lh - 6, labels["bottom"], amber
        )

    def _hover_text(self) -> str:
        if self._hover_zyx is None:
            return ""
        hu = self.model.hu_at(self._hover_zyx)
        if hu is None:
            return ""
        z, y, x = self._hover_zyx
        return f"({x}, {y}, {z})  {hu:.0f} HU"

    def hover_text(self) -> str:
        """Text describing the voxel under the mouse: voxel ``(x, y, z)`` and HU (empty when outside)."""
        return self._hover_text()

    # -- events ------------------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self._geom is None:
            return
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom = float(min(max(self.zoom * (1.15**steps), 0.25), 20.0))
            self.update()
        else:
            n = int(math.copysign(max(1, round(abs(steps))), steps))
            self.model.step(self._geom.slice_axis, -n)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        self._press_pos = event.position()
        self._press_button = event.button()
        self._press_window = (self.model.window_width_hu, self.model.window_level_hu)
        self._press_zoom = self.zoom
        self._press_pan = QPointF(self.pan)
        self._dragging = False
        if (
            self.mode is InteractionMode.MEASURE
            and event.button() == Qt.MouseButton.LeftButton
            and self._geom is not None
            and self.model.volume is not None
        ):
            r, c = self.widget_to_image(event.position())
            self.ruler = (self.slice_index(), (r, c), (r, c))
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        hover = self.widget_to_voxel(pos)
        if hover != self._hover_zyx:
            self._hover_zyx = hover
            self.hover_changed.emit(self._hover_text())
            self.update()
        if self._press_pos is None:
            return
        delta = pos - self._press_pos
        if not self._dragging and abs(delta.x()) + abs(delta.y()) < _DRAG_THRESHOLD_PX:
            return
        self._dragging = True
        button = self._press_button
        if button == Qt.MouseButton.LeftButton and self.mode is InteractionMode.MEASURE and self.ruler:
            r, c = self.widget_to_image(pos)
            self.ruler = (self.ruler[0], self.ruler[1], (r, c))
            self.update()
        elif button == Qt.MouseButton.LeftButton and self.mode is InteractionMode.NAVIGATE:
            width0, level0 = self._press_window
            self.model.set_window(width0 * (2.0 ** (delta.x() / 200.0)), level0 - delta.y() * 2.0)
        elif button == Qt.MouseButton.MiddleButton:
            self.pan = self._press_pan + delta
            self.update()
        elif button == Qt.MouseButton.RightButton:
            self.zoom = float(min(max(self._press_zoom * (2.0 ** (-delta.y() / 150.0)), 0.25), 20.0))
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._press_pos is None:
            return
        was_drag = self._dragging
        button = self._press_button
        self._press_pos = None
        self._dragging = False
        if button != Qt.MouseButton.LeftButton:
            return
        if self.mode is InteractionMode.MEASURE:
            length = self.ruler_length_mm()
            if length is not None and was_drag:
                self.ruler_changed.emit(length)
            elif not was_drag:
                self.ruler = None
            self.update()
            return
        if was_drag:
            return
        voxel = self.widget_to_voxel(event.position())
        if voxel is None:
            return
        if self.mode is InteractionMode.ADD_NODULE:
            self.voxel_clicked.emit(voxel)
        self.model.set_position(voxel)

    def leaveEvent(self, event: object) -> None:
        self._hover_zyx = None
        self.update()
