"""A small synthetic study in a temporary data folder, and test doubles for the two networks.

The doubles replace only the networks: the nodule "segmenter" returns the phantom's true label map
(measured by the real ``segmentation.measure``), the "diagnosis model" maps a crop's mean HU to a fixed
differential. Everything else (DICOM write/import/read, measurement, rules, storage, report) is real.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radiology_app.core.config import Settings
from radiology_app.core.types import Patient, Study
from radiology_app.pipeline import ModelRegistry
from segmentation.errors import SegmentationCancelled
from segmentation.inference import MeasuredNodule, SegmentationResult
from segmentation.measure import measure_nodule
from segmentation.phantom.chest import ChestPhantom, make_chest_phantom
from segmentation.phantom.nodules import NoduleSpec

NOTE = (
    "68 yo woman, ex-smoker 35 pack-years, quit 10 years ago. Cough for 3 weeks, no fever. "
    "Mother had lung cancer."
)
STUDY_UID = "1.2.826.0.1.3680043.10.1419.77.1"


def make_phantom() -> ChestPhantom:
    """40 x 128 x 128 chest phantom at 2.5 x 2.2 x 2.2 mm with a solid and a ground-glass nodule."""
    return make_chest_phantom(
        3,
        shape_zyx=(40, 128, 128),
        spacing_zyx_mm=(2.5, 2.2, 2.2),
        nodules=[NoduleSpec("solid", 10.0), NoduleSpec("ground_glass", 9.0)],
    )


def write_study(ph: ChestPhantom, folder: Path) -> list[Path]:
    """Write the phantom as a DICOM CT series with a known patient."""
    from radiology_app.dicom.write_ct import write_ct_series

    patient = Patient(patient_id="PIPE-1", name="Test^Pipeline", sex="F", birth_date=dt.date(1958, 1, 2))
    study = Study(
        study_uid=STUDY_UID,
        patient_id="PIPE-1",
        study_date=dt.date(2026, 6, 1),
        accession_number="A1",
        description="CT CHEST",
        referring_physician="Ref^Doc",
        patient_age_years=68,
    )
    return write_ct_series(
        ph.hu,
        ph.spacing_zyx_mm,
        folder,
        patient=patient,
        study=study,
        origin_lps_mm=(-140.0, -140.0, -50.0),
        slice_thickness_mm=2.5,
        series_number=3,
        convolution_kernel="B45f",
        manufacturer="TEST",
        model_name="Phantom",
        uid_seed="pipeline-test",
    )


class FakeSegmenter:
    """Stands in for the U-Net: name and hash for provenance only."""

    name = "nodule_unet"
    sha256 = "c" * 64


def fake_segment_nodules(ph: ChestPhantom) -> Any:
    """A replacement for ``segmentation.inference.segment_nodules`` returning the phantom truth."""

    def segment(
        hu: Any,
        spacing: Sequence[float],
        *,
        segmenter: Any = None,
        lung: Any = None,
        on_progress: Any = None,
        cancel: Any = None,
        **_: Any,
    ) -> SegmentationResult:
        assert tuple(hu.shape) == tuple(ph.hu.shape)
        for k in range(4):
            if cancel is not None and getattr(cancel, "cancelled", False):
                raise SegmentationCancelled("cancelled")
            if on_progress is not None:
                on_progress(k + 1, 4, "windows")
        nodules = [
            MeasuredNodule(
                t.label_id,
                measure_nodule(
                    hu, (ph.labels == t.label_id).astype(np.uint8), tuple(spacing), lung_mask=ph.lung_mask
                ),
                0.99,
                0.9,
                int((ph.labels == t.label_id).sum()),
            )
            for t in ph.nodules
        ]
        return SegmentationResult(
            labels=ph.labels.copy(),
            probability=None,
            lung_mask=ph.lung_mask,
            nodules=nodules,
            model_sha256=FakeSegmenter.sha256,
        )

    return segment


@dataclass(frozen=True)
class _Info:
    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class _Evidence:
    text: str
    span: tuple[int, int]
    weight: float


@dataclass(frozen=True)
class _Dx:
    ranked: tuple[tuple[str, float], ...]
    malignancy_probability: float
    modality_weights: dict[str, float]
    evidence: tuple[_Evidence, ...]


class FakeDiagnosis:
    """Differential from the crop's mean HU inside the mask (solid -> adenocarcinoma, else infection)."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, inputs: Sequence[Any]) -> list[_Dx]:
        out = []
        for inp in inputs:
            self.calls += 1
            assert inp.crop_hu.shape == inp.crop_mask.shape and inp.crop_mask.any()
            solid = float(inp.crop_hu[inp.crop_mask > 0].mean()) > -300.0
            ranked = (
                (("adenocarcinoma", 0.7), ("granuloma", 0.2), ("infection", 0.1))
                if solid
                else (("infection", 0.55), ("adenocarcinoma", 0.35), ("intrapulmonary_lymph_node", 0.1))
            )
            text = inp.note_text[:12] or "none"
            out.append(
                _Dx(
                    ranked,
                    0.72 if solid else 0.35,
                    {"image": 0.6, "text": 0.4},
                    (_Evidence(text, (0, len(text)), 0.5),),
                )
            )
        return out

    def model_info(self) -> list[_Info]:
        return [_Info("fused_dx", "0.0-test", "d" * 64)]


class FakeRegistry(ModelRegistry):
    """A model registry handing out the doubles."""

    def __init__(self, diagnosis_available: bool = True) -> None:
        super().__init__()
        self.dx = FakeDiagnosis()
        self.available = diagnosis_available

    def segmenter(self, settings: Settings | None = None) -> Any:
        return FakeSegmenter()

    def diagnosis(self, settings: Settings, *, saliency: bool = True) -> Any:
        from radiology_app.core.errors import ModelError

        if not self.available:
            raise ModelError("fused_dx weights not installed (test)")
        return self.dx


class WholeNoteRegistry(FakeRegistry):
    """Doubles whose diagnosis quotes the whole note as its evidence (the fused model does so with one
    clause: a note without punctuation, or a short one)."""

    def diagnosis(self, settings: Settings, *, saliency: bool = True) -> Any:
        dx = super().diagnosis(settings, saliency=saliency)
        predict = dx.predict

        def whole_note(inputs: Sequence[Any]) -> list[_Dx]:
            out = []
            for inp, d in zip(inputs, predict(inputs), strict=True):
                whole = dataclasses.replace(d.evidence[0], text=inp.note_text, span=(0, len(inp.note_text)))
                out.append(dataclasses.replace(d, evidence=(whole,)))
            return out

        dx.predict = whole_note
        return dx
