"""Small synthetic studies and a stand-in analysis step for the batch-runner tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from radiology_app.core.config import Settings
from radiology_app.core.errors import SeriesSelectionError
from radiology_app.core.findings import Findings, LungRadsAssessment, NoduleFinding
from radiology_app.core.progress import CancelToken, ProgressCallback, check_cancel, report
from radiology_app.core.types import Patient, Study
from radiology_app.dicom.write_ct import write_ct_series
from radiology_app.store.database import StudyDatabase


def make_study(root: Path, index: int, *, slices: int = 6, size: int = 24) -> str:
    """Write one tiny CT study under ``root/study_<index>``; return its StudyInstanceUID."""
    from pydicom.uid import generate_uid

    uid = str(generate_uid(entropy_srcs=["batch-test", str(root), str(index)]))
    rng = np.random.default_rng(index)
    hu = rng.integers(-1000, 400, size=(slices, size, size)).astype(np.int16)
    write_ct_series(
        hu,
        (2.0, 0.7, 0.7),
        root / f"study_{index:03d}",
        patient=Patient(patient_id=f"PT{index:03d}", name=f"TEST^{index}"),
        study=Study(study_uid=uid, patient_id=f"PT{index:03d}", study_date=dt.date(2024, 1, 1 + index % 28)),
        uid_seed=f"{root}-{index}",
    )
    return uid


def add_broken_files(folder: Path) -> list[Path]:
    """A truncated DICOM file, a text file and an empty file."""
    folder.mkdir(parents=True, exist_ok=True)
    truncated = folder / "truncated.dcm"
    truncated.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI")
    text = folder / "notes.txt"
    text.write_text("not an image")
    empty = folder / "empty.dcm"
    empty.write_bytes(b"")
    return [truncated, text, empty]


class FakeAnalyzer:
    """Stands in for ``pipeline.analyze_study`` (no model weights needed): stores real Findings.

    Each study gets ``1 + index % 3`` nodules; UIDs in ``fail`` raise a real pipeline error; every call
    is counted, so tests can prove nothing was analysed twice.
    """

    def __init__(self, fail: set[str] | None = None) -> None:
        self.fail = fail or set()
        self.calls: list[str] = []

    def __call__(
        self,
        db: StudyDatabase,
        study_ref: str,
        *,
        settings: Settings | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Findings:
        self.calls.append(study_ref)
        report(on_progress, 0, 1000, "", "finding nodules")
        check_cancel(cancel)
        if study_ref in self.fail:
            raise SeriesSelectionError("no CT series suitable for analysis", study_ref)
        series = db.series_for_study(study_ref)[0]
        k = int(db.get_study(study_ref).patient_id[2:])
        nodules = tuple(
            NoduleFinding(
                id=f"N{i + 1}",
                label_id=i + 1,
                centroid_lps_mm=(10.0 * i, 5.0, -20.0),
                long_axis_mm=4.0 + k + i,
                short_axis_mm=3.0 + i,
                mean_diameter_mm=3.5 + k + i,
                volume_mm3=30.0 * (i + 1),
                mean_hu=-50.0 + i,
                composition="solid",
                lung_rads=LungRadsAssessment(category="3" if i else "2"),
                differential=(("granuloma", 0.6), ("adenocarcinoma", 0.4)),
                modality_weights={"image": 0.7, "text": 0.3},
            )
            for i in range(1 + k % 3)
        )
        findings = Findings(study_uid=study_ref, series_uid=series.series_uid, nodules=nodules)
        run_id = db.save_analysis_run(study_ref, findings.to_json_text(), "done")
        report(on_progress, 1000, 1000, "", "done")
        return dataclasses.replace(findings, run_id=run_id)


class FakeReporter:
    """Stands in for ``pipeline.write_report``: writes a small PDF-like file and records the path."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(
        self, findings: Findings, db: StudyDatabase, out_pdf: Path, *, settings: Settings | None = None
    ) -> Findings:
        self.calls.append(findings.study_uid)
        out_pdf.write_bytes(b"%PDF-1.4\n% report of " + findings.study_uid.encode() + b"\n%%EOF\n")
        return dataclasses.replace(findings, report=str(out_pdf))


def statuses(items: Any) -> dict[str, str]:
    return {s.study_uid: s.status for s in items}


class UntrainedRegistry:
    """A pipeline ModelRegistry whose segmenter is an untrained network (no weights file needed).

    Every real step runs (volume load, sliding-window inference, measurement, rules, findings, PDF);
    what the network finds is meaningless and not asserted.
    """

    def __init__(self) -> None:
        import torch

        from radiology_app.pipeline import ModelRegistry
        from segmentation.inference import NoduleSegmenter
        from segmentation.model import ModelConfig, build_unet

        torch.manual_seed(0)
        config = ModelConfig(channels=(4, 8, 16, 32))
        self._inner = ModelRegistry()
        self._seg = NoduleSegmenter(net=build_unet(config).eval(), config=config, name="untrained-test")

    def segmenter(self, settings: Any = None) -> Any:
        return self._seg

    def diagnosis(self, settings: Any, *, saliency: bool = True) -> Any:
        return self._inner.diagnosis(settings, saliency=saliency)
