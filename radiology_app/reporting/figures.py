"""Key images for the report: axial slices in a lung window with nodule contours, and zoomed crops.

Pure numpy + Pillow. Images are returned with their physical size so the PDF can draw them with the
right aspect ratio and a true scale bar. Display convention: radiological (patient right on the image
left), which is what an LPS volume with identity direction gives when drawn column 0 on the left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

LUNG_WINDOW = (-600.0, 1500.0)  # centre, width (HU)
CONTOUR_RGB = (255, 196, 0)  # this nodule: amber
OTHER_RGB = (0, 200, 255)  # other nodules on the same slice: cyan
BOX_RGB = (255, 80, 80)


@dataclass(frozen=True)
class KeyImage:
    """A rendered image and its physical size.

    Attributes
    ----------
    image
        RGB image.
    width_mm, height_mm
        Physical extent of the image, mm.
    box_px
        ``(x0, y0, x1, y1)`` of the zoom region drawn on an axial overview, in image pixels, or ``None``.
    """

    image: Image.Image
    width_mm: float
    height_mm: float
    box_px: tuple[int, int, int, int] | None = None


def window(hu: npt.NDArray[np.generic], center: float, width: float) -> npt.NDArray[np.uint8]:
    """Map HU to 0-255 grey levels through a window of ``center``/``width`` (HU)."""
    lo = center - width / 2.0
    scaled = (np.asarray(hu, dtype=np.float32) - lo) * (255.0 / width)
    out: npt.NDArray[np.uint8] = np.clip(scaled, 0.0, 255.0).astype(np.uint8)
    return out


def boundary(mask: npt.NDArray[np.generic]) -> npt.NDArray[np.bool_]:
    """The inner boundary pixels of a 2-D mask (4-neighbourhood)."""
    m: npt.NDArray[np.bool_] = np.asarray(mask, dtype=bool)
    if not m.any():
        return m
    p = np.pad(m, 1, constant_values=False)
    interior = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    edge: npt.NDArray[np.bool_] = m & ~interior
    return edge


def _thicken(edge: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    p = np.pad(edge, 1, constant_values=False)
    return p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]


def _overlay(
    grey: npt.NDArray[np.uint8], layers: list[tuple[npt.NDArray[np.bool_], tuple[int, int, int]]]
) -> npt.NDArray[np.uint8]:
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    for edge, colour in layers:
        rgb[edge] = colour
    return rgb


def render_axial(
    hu_slice: npt.NDArray[np.generic],
    labels_slice: npt.NDArray[np.generic] | None,
    label_id: int,
    spacing_yx_mm: tuple[float, float],
    *,
    zoom_box_mm: float | None = None,
    center_yx: tuple[float, float] | None = None,
    max_px: int = 512,
) -> KeyImage:
    """Render a whole axial slice in the lung window with nodule contours and the zoom region.

    Parameters
    ----------
    hu_slice
        Axial slice ``[y, x]`` in HU.
    labels_slice
        Instance labels of the slice (0 = background), or ``None``.
    label_id
        The nodule to outline in amber; other labels are outlined in cyan.
    spacing_yx_mm
        Row and column spacing, mm.
    zoom_box_mm
        Side of the zoom region (mm) to draw as a box around ``center_yx``, or ``None``.
    center_yx
        Nodule centre (fractional pixel index).
    max_px
        Longest side of the output image, pixels (the slice is downsampled if larger).
    """
    grey = window(hu_slice, *LUNG_WINDOW)
    layers: list[tuple[npt.NDArray[np.bool_], tuple[int, int, int]]] = []
    if labels_slice is not None:
        lab = np.asarray(labels_slice)
        others = boundary((lab > 0) & (lab != label_id))
        mine = _thicken(boundary(lab == label_id))
        layers = [(others, OTHER_RGB), (mine, CONTOUR_RGB)]
    rgb = _overlay(grey, layers)
    h, w = grey.shape
    box = None
    if zoom_box_mm is not None and center_yx is not None:
        half_y = zoom_box_mm / 2.0 / spacing_yx_mm[0]
        half_x = zoom_box_mm / 2.0 / spacing_yx_mm[1]
        y0, y1 = int(max(0, center_yx[0] - half_y)), int(min(h - 1, center_yx[0] + half_y))
        x0, x1 = int(max(0, center_yx[1] - half_x)), int(min(w - 1, center_yx[1] + half_x))
        for t in range(2):
            rgb[max(0, y0 - t), x0 : x1 + 1] = BOX_RGB
            rgb[min(h - 1, y1 + t), x0 : x1 + 1] = BOX_RGB
            rgb[y0 : y1 + 1, max(0, x0 - t)] = BOX_RGB
            rgb[y0 : y1 + 1, min(w - 1, x1 + t)] = BOX_RGB
        box = (x0, y0, x1, y1)
    img = Image.fromarray(rgb, "RGB")
    scale = min(1.0, max_px / max(h, w))
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
        if box is not None:
            box = tuple(round(v * scale) for v in box)  # type: ignore[assignment]
    return KeyImage(img, width_mm=w * spacing_yx_mm[1], height_mm=h * spacing_yx_mm[0], box_px=box)


def zoom_field_mm(mean_diameter_mm: float | None) -> float:
    """Field of view of the zoomed crop: 3.5 times the nodule diameter, between 30 and 80 mm."""
    d = mean_diameter_mm or 10.0
    return float(min(80.0, max(30.0, 3.5 * d)))


def render_zoom(
    hu_slice: npt.NDArray[np.generic],
    labels_slice: npt.NDArray[np.generic] | None,
    label_id: int,
    spacing_yx_mm: tuple[float, float],
    center_yx: tuple[float, float],
    field_mm: float,
    out_px: int = 320,
) -> KeyImage:
    """Render a square crop of ``field_mm`` around ``center_yx``, resampled to ``out_px`` pixels.

    Pixels outside the slice are drawn as air (-1000 HU). Bilinear for HU, nearest for the labels.
    """
    sy, sx = spacing_yx_mm
    mm = (np.arange(out_px, dtype=np.float64) + 0.5) * (field_mm / out_px) - field_mm / 2.0
    ys = center_yx[0] + mm / sy
    xs = center_yx[1] + mm / sx
    h, w = hu_slice.shape
    hu = np.asarray(hu_slice, dtype=np.float32)
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 1)
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 1)
    y1 = np.clip(y0 + 1, 0, h - 1)
    x1 = np.clip(x0 + 1, 0, w - 1)
    fy = np.clip(ys - np.floor(ys), 0, 1)[:, None].astype(np.float32)
    fx = np.clip(xs - np.floor(xs), 0, 1)[None, :].astype(np.float32)
    top = hu[np.ix_(y0, x0)] * (1 - fx) + hu[np.ix_(y0, x1)] * fx
    bot = hu[np.ix_(y1, x0)] * (1 - fx) + hu[np.ix_(y1, x1)] * fx
    crop = top * (1 - fy) + bot * fy
    inside = ((ys >= 0) & (ys <= h - 1))[:, None] & ((xs >= 0) & (xs <= w - 1))[None, :]
    crop = np.where(inside, crop, -1000.0)
    grey = window(crop, *LUNG_WINDOW)
    layers: list[tuple[npt.NDArray[np.bool_], tuple[int, int, int]]] = []
    if labels_slice is not None:
        yn = np.clip(np.round(ys).astype(int), 0, h - 1)
        xn = np.clip(np.round(xs).astype(int), 0, w - 1)
        lab = np.asarray(labels_slice)[np.ix_(yn, xn)] * inside
        layers = [
            (_thicken(boundary((lab > 0) & (lab != label_id))), OTHER_RGB),
            (_thicken(boundary(lab == label_id)), CONTOUR_RGB),
        ]
    img = Image.fromarray(_overlay(grey, layers), "RGB")
    return KeyImage(img, width_mm=field_mm, height_mm=field_mm)


def scale_bar_mm(field_mm: float) -> float:
    """A round scale-bar length (mm) about a quarter of the field."""
    for length in (50.0, 20.0, 10.0, 5.0, 2.0):
        if length <= field_mm / 3.0:
            return length
    return 1.0


@dataclass(frozen=True)
class SheetItem:
    """One finding on a contact sheet: its label, where it is, and a one-line caption."""

    label_id: int
    center_zyx: tuple[float, float, float]
    caption: str
    field_mm: float = 60.0


def findings_sheet(
    hu: npt.NDArray[np.generic],
    labels: npt.NDArray[np.generic],
    spacing_zyx_mm: tuple[float, float, float],
    items: list[SheetItem],
    *,
    title: str = "",
    columns: int = 4,
    tile_px: int = 192,
) -> Image.Image:
    """Every finding as a zoomed crop beside its axial overview, in a grid, for a reviewer's look.

    Each tile shows the crop (``item.field_mm`` across, this finding amber, others cyan) on the slice
    where the finding is largest, the whole slice with the crop's box, and the caption underneath.
    """
    from PIL import ImageDraw

    caption_px = 16
    rows = max(1, -(-len(items) // columns))
    top = caption_px if title else 0
    sheet = Image.new("RGB", (columns * 2 * tile_px, top + rows * (tile_px + caption_px)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((4, 2), title, fill=(255, 255, 255))
    sp_yx = (float(spacing_zyx_mm[1]), float(spacing_zyx_mm[2]))
    lab = np.asarray(labels)
    for i, item in enumerate(items):
        own = lab == item.label_id
        areas = own.sum(axis=(1, 2))
        k = int(np.argmax(areas)) if areas.any() else round(item.center_zyx[0])
        centre = (float(item.center_zyx[1]), float(item.center_zyx[2]))
        zoom = render_zoom(hu[k], lab[k], item.label_id, sp_yx, centre, item.field_mm, out_px=tile_px)
        axial = render_axial(hu[k], lab[k], item.label_id, sp_yx, zoom_box_mm=item.field_mm, center_yx=centre)
        x = (i % columns) * 2 * tile_px
        y = top + (i // columns) * (tile_px + caption_px)
        sheet.paste(zoom.image, (x, y))
        sheet.paste(axial.image.resize((tile_px, tile_px), Image.Resampling.BILINEAR), (x + tile_px, y))
        draw.text((x + 2, y + tile_px + 2), item.caption[:60], fill=(255, 230, 120))
    return sheet
