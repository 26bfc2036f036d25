"""Qt-free viewer maths: LUTs, slice extraction, screen/voxel mapping, orientation letters, contours."""

from __future__ import annotations

import numpy as np

from radiology_app.ui.imaging import (
    PRESETS,
    Plane,
    WindowLut,
    contour_mask,
    extract_slice,
    orientation_labels,
    place_in_slice,
    plane_geometry,
    screen_to_voxel,
    voxel_to_screen,
    window_float,
)

IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def test_presets_match_the_brief() -> None:
    assert PRESETS["lung"] == (1500.0, -600.0)
    assert PRESETS["mediastinum"] == (350.0, 50.0)
    assert PRESETS["soft tissue"] == (400.0, 40.0)
    assert PRESETS["bone"] == (2500.0, 480.0)


def test_lut_matches_float_window_for_int16() -> None:
    hu = np.array([[-32768, -1400, -1350, -600, 149, 150, 2000, 32767]], dtype=np.int16)
    lut = WindowLut()
    out = lut.apply(hu, 1500, -600)
    ref = window_float(hu.astype(np.float32), 1500, -600)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, ref)
    assert out[0, 0] == 0 and out[0, -1] == 255
    assert 120 <= out[0, 3] <= 135  # the level maps to mid grey
    # Float data takes the arithmetic path and agrees.
    np.testing.assert_array_equal(lut.apply(hu.astype(np.float32), 1500, -600), ref)


def test_extract_slice_and_round_trip_mapping() -> None:
    vol = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    shape = (4, 5, 6)
    for plane in Plane:
        g = plane_geometry(plane, (2.0, 0.5, 0.7), IDENTITY)
        img = extract_slice(vol, g, 2)
        assert img.shape == (shape[g.row_axis], shape[g.col_axis])
        # Every screen pixel maps back to the voxel whose value it shows.
        for r in range(img.shape[0]):
            for c in range(img.shape[1]):
                z, y, x = screen_to_voxel(g, shape, 2, r, c)
                assert vol[int(z), int(y), int(x)] == img[r, c]
                assert voxel_to_screen(g, shape, (z, y, x)) == (r, c)


def test_coronal_is_flipped_so_superior_is_up() -> None:
    g = plane_geometry(Plane.CORONAL, (2.0, 0.5, 0.5), IDENTITY)
    assert g.flip_rows and g.row_spacing_mm == 2.0
    labels = orientation_labels(g, IDENTITY)
    assert labels == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    axial = orientation_labels(plane_geometry(Plane.AXIAL, (2.0, 0.5, 0.5), IDENTITY), IDENTITY)
    assert axial == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    sag = orientation_labels(plane_geometry(Plane.SAGITTAL, (2.0, 0.5, 0.5), IDENTITY), IDENTITY)
    assert sag == {"left": "A", "right": "P", "top": "S", "bottom": "I"}


def test_contour_mask_is_the_boundary_only() -> None:
    lab = np.zeros((9, 9), dtype=np.int16)
    lab[2:7, 2:7] = 3
    edge = contour_mask(lab)
    assert edge.sum() == 16  # perimeter of a 5x5 square
    assert not edge[4, 4] and edge[2, 4]
    assert not contour_mask(np.zeros((4, 4), dtype=np.int16)).any()


def test_place_in_slice_for_every_plane() -> None:
    shape = (10, 12, 14)
    sub = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) + 1
    origin = (4, 5, 6)
    full = np.zeros(shape, dtype=np.float32)
    full[4:6, 5:8, 6:10] = sub
    for plane in Plane:
        g = plane_geometry(plane, (2.0, 0.5, 0.5), IDENTITY)
        for index in range(shape[g.slice_axis]):
            got = place_in_slice(sub, origin, shape, g, index)
            want = extract_slice(full, g, index)
            if not want.any():
                assert got is None
            else:
                assert got is not None
                np.testing.assert_array_equal(got, want)
    axial = plane_geometry(Plane.AXIAL, (2.0, 0.5, 0.5), IDENTITY)
    got2d = place_in_slice(sub[0], origin, shape, axial, 4)
    assert got2d is not None and got2d[5, 6] == 1
    assert place_in_slice(sub[0], origin, shape, axial, 5) is None


def test_rgb32_lut_is_opaque_grey_matching_the_8_bit_lut() -> None:
    lut = WindowLut()
    hu = np.array([[-2000, -1350, -600, 0, 149, 3000]], dtype=np.int16)
    grey = lut.apply(hu, 1500, -600).astype(np.uint32)
    rgb = lut.apply_rgb32(hu, 1500, -600)
    np.testing.assert_array_equal(rgb, 0xFF000000 | (grey << 16) | (grey << 8) | grey)
    np.testing.assert_array_equal(lut.apply_rgb32(hu.astype(np.float32), 1500, -600), rgb)
