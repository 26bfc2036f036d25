"""Training cases: chest phantoms resampled to the working grid and cropped to the lungs, as npz files.

Each case file holds ``image`` (int16 HU), ``labels`` (int16 nodule instances), ``lung`` (uint8),
``spacing`` (the working spacing) and ``truth`` (JSON list of the nodules' kinds and sizes).
Pre-generating cases keeps the training loop from being bound by phantom generation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segmentation.errors import ProgressFn, check_cancel, report
from segmentation.phantom.chest import ChestPhantom, make_chest_phantom
from segmentation.resample import resample_image, target_shape

log = logging.getLogger(__name__)

#: Seeds of training phantoms are ``TRAIN_SEED_BASE + i``; evaluation must use seeds outside.
TRAIN_SEED_BASE = 1_000_000
#: Slice spacings used for training phantoms (mm).
TRAIN_Z_SPACINGS = (1.25, 1.5, 2.0, 2.5, 3.0)


@dataclass(frozen=True)
class TrainingCase:
    """One pre-generated case on the working grid.

    Attributes
    ----------
    image
        HU (int16) ``[z, y, x]``.
    labels
        Nodule instance map (int16).
    lung
        Lung mask (uint8).
    spacing_mm
        Working spacing (mm).
    """

    image: NDArray[np.int16]
    labels: NDArray[np.int16]
    lung: NDArray[np.uint8]
    spacing_mm: float


def phantom_to_working_grid(ph: ChestPhantom, spacing_mm: float, margin_mm: float = 12.0) -> TrainingCase:
    """Resample a phantom to an isotropic working grid and crop it to the lungs' bounding box."""
    case, _ = to_working_grid(ph.hu, ph.labels, ph.lung_mask, ph.spacing_zyx_mm, spacing_mm, margin_mm)
    return case


def to_working_grid(
    hu: NDArray[np.generic],
    labels: NDArray[np.integer],
    lung: NDArray[np.integer],
    spacing_zyx_mm: Sequence[float],
    spacing_mm: float,
    margin_mm: float = 12.0,
) -> tuple[TrainingCase, tuple[tuple[int, ...], tuple[slice, ...]]]:
    """Resample a CT with its nodule labels and lung mask to an isotropic grid, cropped to the lungs.

    Returns
    -------
    case, (shape, crop)
        The case, and the working grid's full shape and the crop taken from it (to bring other masks
        along).
    """
    sp = tuple(float(s) for s in spacing_zyx_mm)
    tgt = (spacing_mm, spacing_mm, spacing_mm)
    shape = target_shape(hu.shape, sp, tgt)
    img = resample_image(hu, sp, shape=shape)
    nod = resample_image((labels > 0).astype(np.float32), sp, shape=shape) >= 0.5
    inst = resample_image(labels, sp, shape=shape, mode="nearest").astype(np.int16)
    lung_w = resample_image(lung, sp, shape=shape, mode="nearest").astype(np.uint8)
    labels_w = np.where(nod, inst, 0).astype(np.int16)
    idx = np.argwhere(lung_w > 0)
    m = round(margin_mm / spacing_mm)
    lo = np.maximum(idx.min(axis=0) - m, 0)
    hi = np.minimum(idx.max(axis=0) + m + 1, np.array(shape))
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    case = TrainingCase(
        image=np.clip(np.rint(img[sl]), -1024, 3071).astype(np.int16),
        labels=labels_w[sl],
        lung=lung_w[sl],
        spacing_mm=spacing_mm,
    )
    return case, (tuple(int(v) for v in shape), sl)


def generate_cases(
    out_dir: Path,
    n_cases: int,
    *,
    spacing_mm: float = 1.25,
    seed_base: int = TRAIN_SEED_BASE,
    n_nodules: tuple[int, int] = (3, 8),
    phantom_kwargs: dict[str, Any] | None = None,
    on_progress: ProgressFn | None = None,
    cancel: object | None = None,
    first: int = 0,
) -> list[Path]:
    """Generate ``n_cases`` training cases into ``out_dir`` (existing files are kept and skipped).

    Parameters
    ----------
    out_dir
        Folder for ``case_XXXX.npz`` files.
    n_cases
        How many cases.
    spacing_mm
        Working spacing (mm).
    seed_base
        Phantom ``i`` uses seed ``seed_base + i``.
    n_nodules
        Nodules per phantom (inclusive range).
    phantom_kwargs
        Fixed phantom arguments (shape, spacing...) instead of the random realistic ones (tests).
    on_progress, cancel
        Progress ``(done, total, message)`` and cooperative cancellation.
    first
        Index of the first case (so that several processes can fill one folder with disjoint ranges).

    Returns
    -------
    list of Path
        The case files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for n, i in enumerate(range(first, first + n_cases)):
        check_cancel(cancel)
        path = out_dir / f"case_{i:04d}.npz"
        paths.append(path)
        if path.exists():
            continue
        t0 = time.monotonic()
        seed = seed_base + i
        rng = np.random.default_rng(seed)
        sz = float(rng.choice(TRAIN_Z_SPACINGS))
        # in-plane pixels a little coarser than clinical (0.9-1.2 mm) keep generation fast; the
        # working grid (1.25 mm) is coarser still, so the network sees the same kind of image
        sxy = float(np.round(rng.uniform(0.9, 1.2), 3))
        n_xy = round(rng.uniform(350.0, 380.0) / sxy)
        if phantom_kwargs is not None:
            ph = make_chest_phantom(seed, n_nodules=n_nodules, **phantom_kwargs)
        else:
            ph = make_chest_phantom(
                seed,
                spacing_zyx_mm=(sz, sxy, sxy),
                shape_zyx=(round(rng.uniform(260.0, 310.0) / sz), n_xy, n_xy),
                n_nodules=n_nodules,
            )
        case = phantom_to_working_grid(ph, spacing_mm)
        truth = [
            {
                "label_id": t.label_id,
                "kind": t.kind,
                "diameter_mm": t.mean_diameter_mm,
                "margin": t.spec.margin,
                "juxtapleural": t.spec.juxtapleural,
            }
            for t in ph.nodules
        ]
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp,
            image=case.image,
            labels=case.labels,
            lung=case.lung,
            spacing=np.float32(spacing_mm),
            truth=np.array(json.dumps(truth)),
            source_spacing=np.array(ph.spacing_zyx_mm, dtype=np.float32),
        )
        tmp.replace(path)
        log.info("case %d: %d nodules, %.1f s", i, len(truth), time.monotonic() - t0)
        report(on_progress, n + 1, n_cases, f"case {n + 1}/{n_cases}")
    return paths


def load_case(path: Path) -> TrainingCase:
    """Read a case written by :func:`generate_cases`."""
    with np.load(path) as z:
        return TrainingCase(
            image=z["image"].astype(np.int16),
            labels=z["labels"].astype(np.int16),
            lung=z["lung"].astype(np.uint8),
            spacing_mm=float(z["spacing"]),
        )


def list_cases(folder: Path) -> Sequence[Path]:
    """The finished case files in ``folder``, sorted."""
    return sorted(p for p in folder.glob("case_*.npz") if not p.name.endswith(".tmp.npz"))


if __name__ == "__main__":  # pragma: no cover - command-line use
    import argparse

    parser = argparse.ArgumentParser(description="Pre-generate nodule training cases (npz).")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--spacing", type=float, default=1.25)
    parser.add_argument("--first", type=int, default=0, help="index (and seed offset) of the first case")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    generate_cases(args.out_dir, args.cases, spacing_mm=args.spacing, first=args.first)
