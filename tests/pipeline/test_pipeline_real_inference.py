"""The pipeline through the real ``segmentation.inference.segment_nodules`` with a tiny untrained U-Net:
checks the wiring (arguments, progress, cancel mapping, empty results), not detection quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pipeline_case import STUDY_UID, FakeRegistry

from radiology_app.core.errors import OperationCancelled
from radiology_app.core.progress import CancelToken, Progress
from radiology_app.pipeline import analyze_study, write_report
from radiology_app.store.database import StudyDatabase


class TinyRegistry(FakeRegistry):
    def __init__(self) -> None:
        super().__init__()
        import torch

        from segmentation.inference import NoduleSegmenter
        from segmentation.model import ModelConfig, build_unet

        torch.manual_seed(0)
        config = ModelConfig(
            channels=(4, 8), strides=(2,), num_res_units=0, working_spacing_mm=2.5, patch_size=32
        )
        self.tiny = NoduleSegmenter(
            net=build_unet(config).eval(), config=config, name="tiny_unet", roi_size=32
        )

    def segmenter(self, settings: Any = None) -> Any:
        return self.tiny


@pytest.fixture()
def real_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, study_files: list[Path]) -> StudyDatabase:
    import torch

    from radiology_app.importer import import_paths

    torch.set_num_threads(1)
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    db = StudyDatabase(tmp_path / "home" / "studies.sqlite3")
    import_paths([study_files[0].parent], db)
    return db


def test_real_inference_wiring(real_db: StudyDatabase, tmp_path: Path) -> None:
    registry = TinyRegistry()
    progress: list[Progress] = []
    f = analyze_study(real_db, STUDY_UID, registry=registry, on_progress=progress.append)
    assert any(p.message == "finding nodules" for p in progress)
    assert progress[-1].done == 1000
    assert f.models[0].name == "tiny_unet"
    assert f.lung_rads.category  # category 1 with no nodules, or the worst nodule's
    out = write_report(f, real_db, tmp_path / "r.pdf")
    assert out.report is not None and Path(out.report).exists()
    token = CancelToken()

    def cancel_when_segmenting(p: Progress) -> None:
        if p.message == "finding nodules":
            token.cancel()

    with pytest.raises(OperationCancelled):
        analyze_study(real_db, STUDY_UID, registry=registry, cancel=token, on_progress=cancel_when_segmenting)
    run = real_db.latest_analysis_run(STUDY_UID)
    assert run is not None and run.status == "cancelled"
    real_db.close()
