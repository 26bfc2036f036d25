"""The 2-D image malignancy branch trained and validated on real LIDC-IDRI nodule crops.

Input: one axial slice (the slice of largest nodule area), placed at its physical size on a 64 mm canvas
at 1 mm per pixel (outside the crop: -1000 HU), in lung and mediastinal windows. Labels from the
radiologists' median malignancy rating: <= 2.5 benign, >= 3.5 malignant, 3 excluded. Splits are
patient-disjoint (a hash of the patient ID). Imports torch only inside functions.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from radiology_app.core.errors import ModelError
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report

log = logging.getLogger(__name__)

CANVAS_PX = 64
CANVAS_MM_PER_PX = 1.0
_WINDOWS = ((-1350.0, 150.0), (-125.0, 225.0))


@dataclass(frozen=True)
class LidcCrop:
    """One labelled crop: HU slice, pixel spacing (mm, row/col), patient, label (1 malignant, 0 benign)."""

    file: str
    hu: npt.NDArray[np.float32]
    spacing_mm: tuple[float, float]
    patient_id: str
    label: int


def patient_fold(patient_id: str, n_folds: int = 5) -> int:
    """Deterministic fold of a patient (SHA-256 of the ID); fold 0 is the validation fold."""
    return int(hashlib.sha256(patient_id.encode("utf-8")).hexdigest(), 16) % n_folds


def label_from_median(median: float) -> int | None:
    """1 malignant (>= 3.5), 0 benign (<= 2.5), ``None`` indeterminate."""
    if median >= 3.5:
        return 1
    if median <= 2.5:
        return 0
    return None


def load_crops(
    crops_dir: Path,
    labels_csv: Path,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[LidcCrop]:
    """Read labelled crops (indeterminate ratings skipped).

    Raises
    ------
    ModelError
        If the label file lacks the needed columns or names a file that cannot be read.
    """
    if not labels_csv.is_file():
        raise ModelError(f"{labels_csv}: label file missing")
    with open(labels_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    need = {"file", "patient_id", "malignancy_median"}
    if not rows or not need <= set(rows[0]):
        raise ModelError(f"{labels_csv}: needs columns {sorted(need)}")
    out = []
    for i, row in enumerate(rows):
        check_cancel(cancel)
        try:
            lab = label_from_median(float(row["malignancy_median"]))
        except ValueError:  # unmatched crop: no rating
            lab = None
        if lab is None:
            continue
        hu, sp, _ = read_crop(crops_dir / row["file"])
        out.append(LidcCrop(row["file"], hu, sp, row["patient_id"], lab))
        if i % 200 == 0:
            report(on_progress, i, len(rows), "crops", "reading crops")
    return out


def read_crop(path: Path) -> tuple[npt.NDArray[np.float32], tuple[float, float], float | None]:
    """One crop's HU, pixel spacing (row, column; mm) and slice thickness (mm; ``None`` if unrecorded).

    Raises
    ------
    ModelError
        If the file cannot be read as a CT image.
    """
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1)) + float(
            getattr(ds, "RescaleIntercept", 0)
        )
        row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
        thickness = float(ds.SliceThickness) if getattr(ds, "SliceThickness", None) else None
    except Exception as exc:  # pydicom raises many types for broken files
        raise ModelError(f"{path}: cannot read crop ({exc})") from exc
    return hu, (row_mm, col_mm), thickness


def to_canvas(hu: npt.NDArray[np.floating], spacing_mm: tuple[float, float]) -> npt.NDArray[np.float32]:
    """Place a 2-D HU crop at physical size, centred on the 64 mm canvas; returns 2 window channels."""
    zoom = (spacing_mm[0] / CANVAS_MM_PER_PX, spacing_mm[1] / CANVAS_MM_PER_PX)
    img = ndimage.zoom(np.asarray(hu, dtype=np.float32), zoom, order=1) if hu.size > 1 else np.asarray(hu)
    canvas = np.full((CANVAS_PX, CANVAS_PX), -1000.0, dtype=np.float32)
    h, w = img.shape
    sh, sw = min(h, CANVAS_PX), min(w, CANVAS_PX)
    iy, ix = (h - sh) // 2, (w - sw) // 2
    cy, cx = (CANVAS_PX - sh) // 2, (CANVAS_PX - sw) // 2
    canvas[cy : cy + sh, cx : cx + sw] = img[iy : iy + sh, ix : ix + sw]
    return np.stack([np.clip((canvas - lo) / (hi - lo), 0, 1) for lo, hi in _WINDOWS]).astype(np.float32)


def slice_from_crop3d(
    crop_hu: npt.NDArray[np.floating],
    crop_mask: npt.NDArray[np.generic],
    spacing_zyx_mm: tuple[float, float, float],
) -> tuple[npt.NDArray[np.float32], tuple[float, float]] | None:
    """The axial slice of largest mask area, cut to the mask's bounding box (like the LIDC crops)."""
    m = np.asarray(crop_mask) > 0
    if not m.any():
        return None
    z = int(np.argmax(m.sum(axis=(1, 2))))
    ys, xs = np.nonzero(m[z])
    sl = np.asarray(crop_hu, dtype=np.float32)[z, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return sl, (float(spacing_zyx_mm[1]), float(spacing_zyx_mm[2]))


def build_net() -> Any:
    """The small 2-D CNN (MONAI-style blocks): 2 x 64 x 64 -> malignancy logit."""
    import torch

    from radiology_app.diagnosis.blocks import Convolution

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Sequential(
                Convolution(2, 2, 16, strides=1, kernel_size=3),
                torch.nn.MaxPool2d(2),
                Convolution(2, 16, 32, strides=1, kernel_size=3),
                torch.nn.MaxPool2d(2),
                Convolution(2, 32, 64, strides=1, kernel_size=3),
                torch.nn.MaxPool2d(2),
                Convolution(2, 64, 64, strides=1, kernel_size=3, dropout=0.2),
            )
            self.head = torch.nn.Linear(64, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.features(x)
            return self.head(f.mean((2, 3))).squeeze(-1)  # type: ignore[no-any-return]

    return Net()


def train_lidc(
    crops: list[LidcCrop],
    *,
    epochs: int = 40,
    seed: int = 0,
    threads: int = 1,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train on folds 1-4 and validate on fold 0 (patient-disjoint). Returns the net and its metrics."""
    import torch

    from radiology_app.diagnosis.metrics import binary_metrics

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x = np.stack([to_canvas(c.hu, c.spacing_mm) for c in crops])
    y = np.asarray([c.label for c in crops], dtype=np.float32)
    val = np.asarray([patient_fold(c.patient_id) == 0 for c in crops])
    xt, yt = torch.from_numpy(x[~val]), torch.from_numpy(y[~val])
    net = build_net()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    steps = max(1, len(xt) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * steps)
    n_pos = int((yt == 1).sum())
    pos_weight = torch.tensor(float(int((yt == 0).sum()) / max(1, n_pos)))
    rng = np.random.default_rng(seed)
    for ep in range(epochs):
        net.train()
        order = rng.permutation(len(xt))
        for s in range(steps):
            check_cancel(cancel)
            idx = torch.from_numpy(order[s * 64 : (s + 1) * 64])
            xb = xt[idx]
            k = int(rng.integers(4))
            xb = torch.rot90(xb, k, (2, 3))
            if rng.random() < 0.5:
                xb = torch.flip(xb, (3,))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(xb), yt[idx], pos_weight=pos_weight
            )
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
        report(on_progress, ep + 1, epochs, "epochs", "training 2-D branch")
    scores = predict_canvases(net, x[val])
    metrics = binary_metrics(scores, y[val].astype(bool))
    metrics.update(
        {
            "n_train": int((~val).sum()),
            "n_val": int(val.sum()),
            "n_val_patients": len({c.patient_id for c, v in zip(crops, val, strict=True) if v}),
        }
    )
    return net, metrics


def predict_canvases(net: Any, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Malignancy probabilities for canvases ``[N, 2, 64, 64]`` (mean over 4 rotations)."""
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(x), 256):
            xb = torch.from_numpy(x[s : s + 256])
            p = torch.stack([torch.sigmoid(net(torch.rot90(xb, k, (2, 3)))) for k in range(4)]).mean(0)
            out.append(p.numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def save_lidc(net: Any, weights: Path, card: Path, metrics: dict[str, Any]) -> str:
    """Save weights (safetensors) and the model card; return the SHA-256."""
    from safetensors.torch import save_file

    from radiology_app.diagnosis.weights import sha256_file

    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        str(weights),
        metadata={"config": json.dumps({"version": "1.0.0", "canvas_px": CANVAS_PX, "metrics": metrics})},
    )
    sha = sha256_file(weights)
    card.write_text(
        f"""# Model card: 2-D LIDC image malignancy branch (`lidc_image.safetensors`)

Version 1.0.0. **An AI suggestion for a clinician to review; not a validated medical device.**

## What it is
A small 2-D CNN (MONAI convolution blocks) on one axial slice of the nodule (the slice of largest outline)
placed at physical size on a 64 mm canvas (1 mm pixels, lung and mediastinal windows). Output: probability
that radiologists would rate the nodule malignant.

## Training data
Real LIDC-IDRI nodule crops from `../shared/data/lidc-nodule-crops` (CC BY 3.0; Armato et al. 2011,
TCIA doi:10.7937/K9/TCIA.2015.LO9QL9SX). Labels: median radiologist malignancy rating <= 2.5 benign,
>= 3.5 malignant, 3 excluded. Patient-disjoint split by SHA-256 of the patient ID (fold 0 of 5 =
validation). Train {metrics["n_train"]} crops, validation {metrics["n_val"]} crops from
{metrics["n_val_patients"]} patients. Several crops can be the same nodule outlined by different readers.
Ratings are radiologists' suspicion, not pathology.

## Measured (validation fold, patient-disjoint)
AUC {metrics["auc"]:.3f}; at threshold 0.5: sensitivity {metrics["sensitivity"]:.3f}, specificity
{metrics["specificity"]:.3f}. Reproduce: `radiology-app train-diagnosis --lidc-only` then
`radiology-app evaluate-crops --crops ../shared/data/lidc-nodule-crops/crops --labels
../shared/data/lidc-nodule-crops/labels.csv --split val`.

SHA-256: {sha}
""",
        encoding="utf-8",
    )
    return sha


def load_lidc(weights: Path, card: Path) -> tuple[Any, str]:
    """Load the 2-D branch after checking its SHA-256 against the card."""
    from safetensors.torch import load_file

    from radiology_app.diagnosis.weights import verify_weights

    sha = verify_weights(weights, card)
    net = build_net()
    try:
        net.load_state_dict(load_file(str(weights)))
    except RuntimeError as exc:
        raise ModelError(f"{weights}: weights do not fit the 2-D branch ({exc})") from exc
    net.eval()
    return net, sha


def evaluate_crops(
    crops_dir: Path,
    labels_csv: Path,
    *,
    split: str = "val",
    weights: Path | None = None,
    card: Path | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Malignancy AUC/sensitivity/specificity of the 2-D branch on a crop folder.

    Parameters
    ----------
    split
        ``"val"`` (patient fold 0, never trained on), ``"train"`` or ``"all"``.
    """
    from radiology_app.diagnosis.metrics import binary_metrics
    from radiology_app.diagnosis.weights import LIDC_CARD, LIDC_WEIGHTS

    if split not in ("val", "train", "all"):
        raise ModelError(f"unknown split {split!r} (val, train or all)")
    net, sha = load_lidc(weights or LIDC_WEIGHTS, card or LIDC_CARD)
    crops = load_crops(crops_dir, labels_csv, on_progress=on_progress, cancel=cancel)
    if split != "all":
        crops = [c for c in crops if (patient_fold(c.patient_id) == 0) == (split == "val")]
    if not crops:
        raise ModelError(f"{labels_csv}: no labelled crops in split {split!r}")
    x = np.stack([to_canvas(c.hu, c.spacing_mm) for c in crops])
    y = np.asarray([c.label for c in crops], dtype=bool)
    m = binary_metrics(predict_canvases(net, x), y)
    return {
        "n": len(crops),
        "auc": m["auc"],
        "sensitivity": m["sensitivity"],
        "specificity": m["specificity"],
        "split": split,
        "n_patients": len({c.patient_id for c in crops}),
        "n_malignant": int(y.sum()),
        "weights_sha256": sha,
    }


#: Share of malignant crops the branch was trained to treat as even odds (its loss balanced the classes).
TRAINING_PRIOR = 0.5


class LidcBranch:
    """The loaded 2-D branch, for use at run time on the pipeline's 3-D crops."""

    def __init__(self, net: Any, sha256: str) -> None:
        self._net = net
        self.sha256 = sha256

    def malignancy(
        self,
        crops: list[tuple[npt.NDArray[np.floating], npt.NDArray[np.generic], tuple[float, float, float]]],
    ) -> list[float | None]:
        """Malignancy probability per ``(crop_hu, crop_mask, spacing_zyx_mm)`` (``None``: empty mask).

        Each crop is cut, like the LIDC training crops, to its largest axial outline's bounding box.
        """
        canvases, where = [], []
        for i, (hu, mask, spacing) in enumerate(crops):
            sl = slice_from_crop3d(hu, mask, spacing)
            if sl is not None:
                canvases.append(to_canvas(*sl))
                where.append(i)
        out: list[float | None] = [None] * len(crops)
        if canvases:
            for i, p in zip(where, predict_canvases(self._net, np.stack(canvases)), strict=True):
                out[i] = float(p)
        return out


def load_lidc_branch(weights: Path | None = None, card: Path | None = None) -> LidcBranch:
    """Load the shipped 2-D branch (SHA-256 checked against its card).

    Raises
    ------
    ModelError, ModelIntegrityError
        Missing, altered or incompatible weights.
    """
    from radiology_app.diagnosis.weights import LIDC_CARD, LIDC_WEIGHTS

    net, sha = load_lidc(weights or LIDC_WEIGHTS, card or LIDC_CARD)
    return LidcBranch(net, sha)
