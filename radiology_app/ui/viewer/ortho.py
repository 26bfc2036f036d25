"""Three linked orthogonal views (axial large on the left, coronal and sagittal on the right)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from radiology_app.core.types import Volume
from radiology_app.ui.imaging import Plane
from radiology_app.ui.viewer.model import ViewerModel
from radiology_app.ui.viewer.slice_view import InteractionMode, SliceViewWidget

#: Keys that select window presets.
PRESET_KEYS: dict[int, str] = {
    int(Qt.Key.Key_1): "lung",
    int(Qt.Key.Key_2): "mediastinum",
    int(Qt.Key.Key_3): "soft tissue",
    int(Qt.Key.Key_4): "bone",
}

HELP_TEXT = (
    "Wheel: slices · Left drag: window/level · Middle drag: pan · Right drag / Ctrl+wheel: zoom · "
    "1 lung · 2 mediastinum · 3 soft tissue · 4 bone · O overlay · [ ] fade · M ruler · R reset"
)


class OrthoViewerWidget(QWidget):
    """The CT viewer: axial, coronal and sagittal :class:`SliceViewWidget` sharing one :class:`ViewerModel`.

    Signals
    -------
    voxel_clicked(object)
        Forwarded from any view in add-nodule mode: voxel ``(z, y, x)``.
    """

    voxel_clicked = Signal(object)

    def __init__(self, parent: QWidget | None = None, model: ViewerModel | None = None) -> None:
        super().__init__(parent)
        self.model = model or ViewerModel(self)
        self.status = QLabel(HELP_TEXT)
        self.status.setObjectName("viewerStatus")
        self.status.setWordWrap(True)
        self.views = {plane: SliceViewWidget(self.model, plane, self) for plane in Plane}
        for plane, view in self.views.items():
            view.setObjectName(f"{plane.value}View")
            view.voxel_clicked.connect(self.voxel_clicked)
            view.hover_changed.connect(self._show_hover)
            view.ruler_changed.connect(self._show_ruler)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.views[Plane.CORONAL])
        right.addWidget(self.views[Plane.SAGITTAL])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.views[Plane.AXIAL])
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 400])
        right.setSizes([500, 500])
        self.splitter = split
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def set_volume(self, volume: Volume | None) -> None:
        """Show ``volume`` in all three views."""
        self.model.set_volume(volume)

    def set_mode(self, mode: InteractionMode) -> None:
        """Set what a left click/drag does in every view."""
        for view in self.views.values():
            view.mode = mode
            view.setCursor(
                Qt.CursorShape.CrossCursor
                if mode is not InteractionMode.NAVIGATE
                else Qt.CursorShape.ArrowCursor
            )
        texts = {
            InteractionMode.NAVIGATE: HELP_TEXT,
            InteractionMode.MEASURE: "Ruler: drag to measure a length (Esc to leave)",
            InteractionMode.ADD_NODULE: "Add nodule: click on the nodule (Esc to leave)",
        }
        self.status.setText(texts[mode])

    @property
    def mode(self) -> InteractionMode:
        """The current interaction mode."""
        return self.views[Plane.AXIAL].mode

    def reset_views(self) -> None:
        """Reset zoom and pan of every view."""
        for view in self.views.values():
            view.reset_view()

    def _show_ruler(self, length_mm: float) -> None:
        self.status.setText(f"Ruler: {length_mm:.1f} mm")

    def _show_hover(self, text: str) -> None:
        if text and self.mode is InteractionMode.NAVIGATE:
            self.status.setText(text)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        focused = next((v for v in self.views.values() if v.hasFocus()), self.views[Plane.AXIAL])
        geom = focused.geometry_info
        if key in PRESET_KEYS:
            self.model.apply_preset(PRESET_KEYS[key])
        elif key == Qt.Key.Key_O:
            self.model.set_overlay_visible(not self.model.overlay_visible)
        elif key == Qt.Key.Key_BracketLeft:
            self.model.set_overlay_opacity(self.model.overlay_opacity - 0.2)
        elif key == Qt.Key.Key_BracketRight:
            self.model.set_overlay_opacity(self.model.overlay_opacity + 0.2)
        elif key == Qt.Key.Key_M:
            self.set_mode(
                InteractionMode.NAVIGATE if self.mode is InteractionMode.MEASURE else InteractionMode.MEASURE
            )
        elif key == Qt.Key.Key_Escape:
            self.set_mode(InteractionMode.NAVIGATE)
        elif key == Qt.Key.Key_R:
            self.reset_views()
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown) and geom:
            step = 1 if key in (Qt.Key.Key_Up, Qt.Key.Key_Down) else 10
            sign = -1 if key in (Qt.Key.Key_Up, Qt.Key.Key_PageUp) else 1
            self.model.step(geom.slice_axis, sign * step)
        else:
            super().keyPressEvent(event)
            return
        event.accept()
