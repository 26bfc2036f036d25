"""Must show (#19): a batch over a folder holding each crashing input plus a good study, run twice,
finishes; the good study's report exists; the bad ones are ``failed`` with their reasons; nothing is
left ``running``. The real pipeline and report writer run (with an untrained segmenter)."""

from __future__ import annotations

import functools
from pathlib import Path

import pydicom
import pytest
from batch_helpers import UntrainedRegistry, make_study
from hostile_dicom import make_absurd_size, make_corrupt_rle
from pydicom.uid import JPEGLSLossless

from radiology_app import batch
from radiology_app.store.database import StudyDatabase

torch = pytest.importorskip("torch")


def _files(root: Path, index: int) -> list[Path]:
    return sorted((root / f"study_{index:03d}").glob("*.dcm"))


def _unknown_vr(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"\x18\x00\x50\x00DS", b"\x18\x00\x50\x00DR"))


def _jpeg_ls_wider_than_its_stream(path: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.compress(JPEGLSLossless)
    ds.Columns = 32768  # GDCM aborted the process on this (std::terminate): refused before decoding now
    ds.save_as(path)


def test_batch_over_crashing_inputs_and_a_good_study_twice(tmp_path: Path, db: StudyDatabase) -> None:
    from radiology_app import pipeline

    torch.set_num_threads(1)
    src = tmp_path / "in"
    uids = [make_study(src, i, slices=10, size=48) for i in range(5)]
    good = uids[0]
    make_corrupt_rle(_files(src, 1)[4])  # the Rust RLE decoder panics
    for p in _files(src, 2):
        make_absurd_size(p)  # 65535 x 65535 with 8 KB of pixels
    for p in _files(src, 3):
        _unknown_vr(p)
    for p in _files(src, 4):
        _jpeg_ls_wider_than_its_stream(p)
    analyzer = functools.partial(pipeline.analyze_study, registry=UntrainedRegistry())  # type: ignore[arg-type]
    reports = tmp_path / "reports"

    for attempt in (1, 2):
        result = batch.run_batch([src], db, analyze=True, report_dir=reports, analyzer=analyzer)
        by_uid = {s.study_uid: s for s in result.studies}
        assert set(by_uid) == set(uids)
        assert by_uid[good].status == "done"
        assert by_uid[good].report is not None and Path(by_uid[good].report).read_bytes().startswith(b"%PDF")
        assert by_uid[good].skipped == (attempt == 2)
        for uid in uids[1:]:
            study = by_uid[uid]
            assert study.status == "failed" and "\n" not in study.reason, study
            assert db.get_batch_item(result.batch_id, uid).status == "failed"  # type: ignore[union-attr]
        reasons = {uid: by_uid[uid].reason for uid in uids[1:]}
        assert "PanicException" in reasons[uids[1]] and str(_files(src, 1)[4]) in reasons[uids[1]]
        assert "65535 x 65535" in reasons[uids[2]] and "memory budget" in reasons[uids[2]]
        assert "Unknown Value Representation 'DR'" in reasons[uids[3]]
        assert "the compressed frame is 48 x 48 but the header says 48 x 32768" in reasons[uids[4]]
    runs = [r for uid in uids for r in db.analysis_runs_for_study(uid)]
    assert not [r for r in runs if r.status == "running"]
    assert sorted(r.status for r in runs) == ["done"] + ["failed"] * 8  # the bad ones tried twice
