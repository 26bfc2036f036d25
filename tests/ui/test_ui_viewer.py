"""The CT viewer widget: linked views, wheel, window/level drag, presets, zoom/pan, HU readout, ruler."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from radiology_app.core.types import Volume
from radiology_app.ui.imaging import Plane
from radiology_app.ui.viewer import OrthoViewerWidget
from radiology_app.ui.viewer.model import Marker
from radiology_app.ui.viewer.slice_view import InteractionMode


@pytest.fixture
def viewer(qtbot: QtBot, small_volume: Volume) -> OrthoViewerWidget:
    w = OrthoViewerWidget()
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    qtbot.waitExposed(w)
    w.set_volume(small_volume)
    return w


def _wheel(
    qtbot: QtBot, widget: object, delta: int, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
) -> None:
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    pos = QPointF(widget.width() / 2, widget.height() / 2)  # type: ignore[attr-defined]
    ev = QWheelEvent(
        pos,
        widget.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, delta),  # type: ignore[attr-defined]
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)


def test_opens_centred_and_views_are_linked(viewer: OrthoViewerWidget) -> None:
    m = viewer.model
    assert m.position == (20, 32, 36)
    axial = viewer.views[Plane.AXIAL]
    coronal = viewer.views[Plane.CORONAL]
    assert axial.slice_index() == 20 and axial.slice_count() == 40
    assert coronal.slice_index() == 32 and coronal.slice_count() == 64
    # Clicking in the axial view moves the coronal and sagittal slices.
    target = axial.voxel_to_widget((20, 30, 40))
    QtBot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=target.toPoint())
    assert m.position == (20, 30, 40)
    assert coronal.slice_index() == 30
    assert viewer.views[Plane.SAGITTAL].slice_index() == 40


def test_wheel_scrolls_and_ctrl_wheel_zooms(viewer: OrthoViewerWidget, qtbot: QtBot) -> None:
    axial = viewer.views[Plane.AXIAL]
    _wheel(qtbot, axial, -120)
    assert viewer.model.position[0] == 21
    _wheel(qtbot, axial, 240)
    assert viewer.model.position[0] == 19
    _wheel(qtbot, axial, 120, Qt.KeyboardModifier.ControlModifier)
    assert axial.zoom > 1.0
    for _ in range(100):
        _wheel(qtbot, axial, 120)
    assert viewer.model.position[0] == 0  # clamped


def test_drag_changes_window_and_keys_apply_presets(viewer: OrthoViewerWidget, qtbot: QtBot) -> None:
    m = viewer.model
    axial = viewer.views[Plane.AXIAL]
    w0, l0 = m.window_width_hu, m.window_level_hu
    start = QPoint(200, 200)
    QtBot.mousePress(axial, Qt.MouseButton.LeftButton, pos=start)
    QtBot.mouseMove(axial, QPoint(300, 150))
    QtBot.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=QPoint(300, 150))
    assert m.window_width_hu > w0 and m.window_level_hu > l0
    assert m.position == (20, 32, 36)  # a drag does not move the crosshair
    for key, expected in (
        (Qt.Key.Key_2, (350, 50)),
        (Qt.Key.Key_3, (400, 40)),
        (Qt.Key.Key_4, (2500, 480)),
        (Qt.Key.Key_1, (1500, -600)),
    ):
        QtBot.keyClick(axial, key)
        assert (m.window_width_hu, m.window_level_hu) == expected


def test_pan_zoom_and_hu_under_cursor(viewer: OrthoViewerWidget, qtbot: QtBot, small_volume: Volume) -> None:
    axial = viewer.views[Plane.AXIAL]
    p = axial.voxel_to_widget((20, 30, 40))
    QtBot.mouseMove(axial, p.toPoint())
    assert axial.hover_text().endswith(f"{small_volume.hu[20, 30, 40]} HU")
    assert "(40, 30, 20)" in axial.hover_text()
    before = axial.voxel_to_widget((20, 30, 40))
    QtBot.mousePress(axial, Qt.MouseButton.MiddleButton, pos=QPoint(100, 100))
    QtBot.mouseMove(axial, QPoint(150, 130))
    QtBot.mouseRelease(axial, Qt.MouseButton.MiddleButton, pos=QPoint(150, 130))
    after = axial.voxel_to_widget((20, 30, 40))
    assert after.x() - before.x() == pytest.approx(50, abs=1)
    assert after.y() - before.y() == pytest.approx(30, abs=1)
    QtBot.mousePress(axial, Qt.MouseButton.RightButton, pos=QPoint(100, 300))
    QtBot.mouseMove(axial, QPoint(100, 200))
    QtBot.mouseRelease(axial, Qt.MouseButton.RightButton, pos=QPoint(100, 200))
    assert axial.zoom > 1.5
    QtBot.keyClick(axial, Qt.Key.Key_R)
    assert axial.zoom == 1.0


def test_ruler_measures_in_millimetres(viewer: OrthoViewerWidget, qtbot: QtBot) -> None:
    axial = viewer.views[Plane.AXIAL]
    QtBot.keyClick(axial, Qt.Key.Key_M)
    assert viewer.mode is InteractionMode.MEASURE
    a = axial.voxel_to_widget((20, 10, 10))
    b = axial.voxel_to_widget((20, 10, 50))  # 40 columns x 0.7 mm = 28 mm
    with qtbot.waitSignal(axial.ruler_changed) as sig:
        QtBot.mousePress(axial, Qt.MouseButton.LeftButton, pos=a.toPoint())
        QtBot.mouseMove(axial, QPointF((a.x() + b.x()) / 2, a.y()).toPoint())
        QtBot.mouseMove(axial, b.toPoint())
        QtBot.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=b.toPoint())
    assert sig.args[0] == pytest.approx(28.0, abs=0.7)
    QtBot.keyClick(axial, Qt.Key.Key_Escape)
    assert viewer.mode is InteractionMode.NAVIGATE


def test_contour_overlay_toggle_and_fade(
    viewer: OrthoViewerWidget, qtbot: QtBot, small_volume: Volume
) -> None:
    labels = np.zeros(small_volume.shape_zyx, dtype=np.int16)
    labels[small_volume.hu == 30] = 1
    viewer.model.set_labels(labels, {1: (0, 255, 0)})
    viewer.model.set_markers((Marker("N1", (20.0, 30.0, 40.0), selected=True),))
    viewer.model.set_position((20, 30, 40))
    axial = viewer.views[Plane.AXIAL]
    overlay = axial.render_overlay()
    assert overlay is not None
    edge_pixel = overlay.pixelColor(40 + 4, 30)  # (x, y): right edge of the 4-voxel-radius disc
    assert edge_pixel == QColor(0, 255, 0, 255)
    assert overlay.pixelColor(40, 30).alpha() == 0  # inside is not filled
    grab_on = axial.grab().toImage()
    QtBot.keyClick(axial, Qt.Key.Key_O)
    assert not viewer.model.overlay_visible and axial.render_overlay() is None
    grab_off = axial.grab().toImage()
    assert grab_on != grab_off
    QtBot.keyClick(axial, Qt.Key.Key_O)
    QtBot.keyClick(axial, Qt.Key.Key_BracketLeft)
    assert viewer.model.overlay_opacity == pytest.approx(0.7)


def test_add_mode_emits_clicked_voxel(viewer: OrthoViewerWidget, qtbot: QtBot) -> None:
    viewer.set_mode(InteractionMode.ADD_NODULE)
    axial = viewer.views[Plane.AXIAL]
    with qtbot.waitSignal(viewer.voxel_clicked) as sig:
        QtBot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=axial.voxel_to_widget((20, 30, 40)).toPoint())
    assert sig.args[0] == (20, 30, 40)


def test_rendered_pixels_follow_the_window(viewer: OrthoViewerWidget, small_volume: Volume) -> None:
    axial = viewer.views[Plane.AXIAL]
    viewer.model.set_position((20, 30, 40))
    img = axial.render_slice()
    assert img is not None and (img.width(), img.height()) == (72, 64)
    lung_grey = img.pixelColor(int(0.3 * 72), 32).red()  # -850 HU in the lung window: dark grey
    assert 80 <= lung_grey <= 90  # (-850 + 1350) / 1500 * 255 = 85
    viewer.model.apply_preset("mediastinum")
    img = axial.render_slice()
    assert img is not None and img.pixelColor(int(0.3 * 72), 32).red() == 0


def test_empty_viewer_paints(qtbot: QtBot) -> None:
    w = OrthoViewerWidget()
    qtbot.addWidget(w)
    w.resize(400, 300)
    assert not w.grab().isNull()


def test_saliency_overlay_is_drawn_where_it_is_placed(
    viewer: OrthoViewerWidget, small_volume: Volume
) -> None:
    sal = np.zeros((5, 9, 9), dtype=np.float32)
    sal[2, 4, 4] = 1.0
    viewer.model.set_saliency(sal, (18, 26, 36))  # peak at voxel (20, 30, 40)
    viewer.model.set_position((20, 30, 40))
    axial = viewer.views[Plane.AXIAL].render_overlay()
    assert axial is not None
    peak = axial.pixelColor(40, 30)
    assert peak.alpha() > 100 and peak.red() == 255
    assert axial.pixelColor(10, 10).alpha() == 0
    coronal = viewer.views[Plane.CORONAL].render_overlay()
    assert coronal is not None and coronal.pixelColor(40, 40 - 1 - 20).alpha() > 100  # rows flipped: S up
    viewer.model.set_position((5, 5, 5))
    assert viewer.views[Plane.AXIAL].render_overlay() is None  # slice misses the map


def test_sagittal_copy_gives_the_same_pixels(
    viewer: OrthoViewerWidget, small_volume: Volume, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: viewer.model.sagittal_slice(0) is not None)
    for x in (0, 17, 71):
        sag = viewer.model.sagittal_slice(x)
        assert sag is not None
        np.testing.assert_array_equal(sag, small_volume.hu[:, :, x])
    view = viewer.views[Plane.SAGITTAL]
    viewer.model.set_position((20, 30, 40))
    img = view.render_slice()
    assert img is not None and (img.width(), img.height()) == (64, 40)
    # Row 0 of the sagittal image is the most superior slice (z = 39); the nodule (HU 30) at z=20, y=30.
    lut = view._lut.apply(small_volume.hu[::-1, :, 40].copy(), 1500, -600)
    assert img.pixelColor(30, 19).red() == lut[19, 30]
