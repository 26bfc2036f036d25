"""The batch runner driving the real pipeline and the real PDF report writer end to end.

The shipped nodule weights are not needed: the pipeline's model registry is given an untrained (randomly
initialised, seeded) network of the shipped architecture, so every real step runs (volume load,
sliding-window inference, measurement, rules, findings storage, PDF rendering). What the network finds
is meaningless and not asserted; what is asserted is the batch's bookkeeping around the real steps.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

import pytest
from batch_helpers import make_study

from radiology_app import batch
from radiology_app.store.database import StudyDatabase

torch = pytest.importorskip("torch")


class _UntrainedRegistry:
    """A pipeline ModelRegistry whose segmenter is an untrained network (no weights file needed)."""

    def __init__(self) -> None:
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


def test_batch_with_real_pipeline_and_reports(tmp_path: Path, db: StudyDatabase) -> None:
    from radiology_app import pipeline

    torch.set_num_threads(1)
    src = tmp_path / "in"
    uids = [make_study(src, i, slices=10, size=48) for i in range(2)]
    analyzer = functools.partial(pipeline.analyze_study, registry=_UntrainedRegistry())  # type: ignore[arg-type]
    summary = tmp_path / "cohort.csv"
    result = batch.run_batch(
        [src], db, analyze=True, report_dir=tmp_path / "reports", summary_path=summary, analyzer=analyzer
    )
    assert [s.study_uid for s in result.studies] == uids
    for s in result.studies:
        assert s.status == "done", s.reason
        assert s.report is not None and Path(s.report).read_bytes().startswith(b"%PDF")
        findings = pipeline.latest_findings(db, s.study_uid)
        assert findings is not None and findings.report == s.report
        assert s.nodules == len(findings.nodules)
    rows = list(csv.DictReader(summary.open(encoding="utf-8")))
    assert {r["study_uid"] for r in rows} == set(uids)
    assert sum(1 for r in rows if r["nodule_id"]) == sum(s.nodules or 0 for s in result.studies)
    again = batch.run_batch([src], db, analyze=True, report_dir=tmp_path / "reports", analyzer=analyzer)
    assert all(s.skipped for s in again.studies)
    assert [len(db.analysis_runs_for_study(u)) for u in uids] == [1, 1]
