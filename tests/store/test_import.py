"""import_paths: bad files are listed with reasons, duplicates are caught, ZIPs are safe, and an
import killed part-way finishes on re-run without duplicates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radiology_app.core.errors import OperationCancelled
from radiology_app.core.progress import CancelToken
from radiology_app.dicom.zipsafe import ZipLimits
from radiology_app.importer import import_paths, load_study_volume
from radiology_app.store.database import StudyDatabase

WriteSeries = Callable[..., list[Path]]


def _reasons(result: object) -> dict[str, str]:
    return {Path(i.path).name: i.reason for i in result.issues}  # type: ignore[attr-defined]


def test_bad_files_listed_good_files_imported(
    tmp_path: Path, study_db: StudyDatabase, write_series: WriteSeries
) -> None:
    files = write_series("in")
    folder = files[0].parent
    (folder / "zero.dcm").write_bytes(b"")
    (folder / "random.bin").write_bytes(np.random.default_rng(1).bytes(5000))
    (folder / "notes.txt").write_text("not dicom", encoding="utf-8")
    data = files[3].read_bytes()
    (folder / "truncated.dcm").write_bytes(data[:-100])  # cut inside the pixel data
    (folder / "header_cut.dcm").write_bytes(data[:700])  # cut inside the header
    ds = pydicom.dcmread(files[4])
    del ds.PixelData
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.55555"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(folder / "nopixels.dcm")

    result = import_paths([folder], study_db, managed_dir=tmp_path / "managed")
    reasons = _reasons(result)
    assert result.instances_added == len(files)
    assert reasons["zero.dcm"].startswith("empty file")
    assert reasons["random.bin"].startswith("not a DICOM file")
    assert reasons["notes.txt"].startswith("not a DICOM file")
    assert reasons["truncated.dcm"].startswith("truncated")
    assert "truncated" in reasons["header_cut.dcm"]
    assert reasons["nopixels.dcm"].startswith("no pixel data (CT Image Storage")
    assert len(result.issues) == 6
    assert study_db.import_issues(result.run_id) == list(result.issues)
    run = study_db.get_import_run(result.run_id)
    assert run.status == "complete" and run.instances_added == len(files)


def test_same_files_twice_add_nothing_and_duplicates_are_caught(
    tmp_path: Path, study_db: StudyDatabase, write_series: WriteSeries
) -> None:
    files = write_series("a")
    first = import_paths([files[0].parent], study_db, managed_dir=tmp_path / "m")
    assert first.instances_added == len(files) and first.instances_already_present == 0
    again = import_paths([files[0].parent], study_db, managed_dir=tmp_path / "m")
    assert again.instances_added == 0 and again.instances_already_present == len(files)
    assert again.studies == first.studies
    # an identical copy elsewhere is "already present"; same UID with other pixels is an issue
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    shutil.copy(files[0], copy_dir / "same.dcm")
    ds = pydicom.dcmread(files[1])
    arr = ds.pixel_array.copy()
    arr[0, 0] += 5
    ds.PixelData = arr.tobytes()
    ds.save_as(copy_dir / "changed.dcm")
    dup = import_paths([copy_dir], study_db, managed_dir=tmp_path / "m")
    assert dup.instances_added == 0 and dup.instances_already_present == 1
    assert _reasons(dup)["changed.dcm"].startswith("duplicate SOP Instance UID with different content")
    n = study_db.connection.execute(
        "SELECT count(*), count(DISTINCT sop_instance_uid) FROM instances"
    ).fetchone()
    assert tuple(n) == (len(files), len(files))


def test_zip_slip_and_oversized_members_refused_rest_imported(
    tmp_path: Path, study_db: StudyDatabase, write_series: WriteSeries
) -> None:
    files = write_series("z")
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            zf.write(f, f"study/{f.name}")
        zf.writestr("../../evil.dcm", files[0].read_bytes())
        zf.writestr("/abs/evil2.dcm", files[0].read_bytes())
        zf.writestr("big/huge.bin", b"\x00" * 300_000)
        link = zipfile.ZipInfo("study/link.dcm")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    managed = tmp_path / "managed"
    limits = ZipLimits(max_member_bytes=200_000)
    result = import_paths([archive], study_db, managed_dir=managed, zip_limits=limits)
    assert result.instances_added == len(files)
    by_member = {i.path.split("study.zip/", 1)[1]: i.reason for i in result.issues}
    assert "path traversal" in by_member["../../evil.dcm"]
    assert "path traversal" in by_member["/abs/evil2.dcm"]
    assert "too large" in by_member["big/huge.bin"]
    assert "symbolic link" in by_member["study/link.dcm"]
    assert not (tmp_path / "evil.dcm").exists() and not Path("/abs/evil2.dcm").exists()
    extracted = [p for p in managed.rglob("*") if p.is_file()]
    assert len(extracted) == len(files)
    # the stored paths are the managed copies; the study resolves by the ZIP's path
    study = study_db.resolve_study(str(archive))
    series = study_db.series_for_study(study.study_uid)
    assert all(
        Path(i.path).is_relative_to(managed) for i in study_db.instances_for_series(series[0].series_uid)
    )
    again = import_paths([archive], study_db, managed_dir=managed, zip_limits=limits)
    assert again.instances_added == 0 and again.instances_already_present == len(files)


def test_zip_bomb_ratio_and_total_size(tmp_path: Path, study_db: StudyDatabase) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", b"\x00" * 5_000_000)
        zf.writestr("b.bin", b"\x01" * 900_000)
        zf.writestr("c.bin", b"\x02" * 900_000)
    result = import_paths(
        [archive], study_db, managed_dir=tmp_path / "m", zip_limits=ZipLimits(max_total_bytes=1_000_000)
    )
    reasons = {i.path.rsplit("/", 1)[1]: i.reason for i in result.issues}
    assert "ZIP bomb" in reasons["a.bin"]
    assert reasons["b.bin"].startswith("not a DICOM file")
    assert "total uncompressed size" in reasons["c.bin"]


def test_symlink_out_of_tree_not_followed(
    tmp_path: Path, study_db: StudyDatabase, write_series: WriteSeries
) -> None:
    files = write_series("outside")
    inside = tmp_path / "inside"
    inside.mkdir()
    os.symlink(files[0], inside / "link.dcm")
    os.symlink(files[0].parent, inside / "linkdir")
    result = import_paths([inside], study_db, managed_dir=tmp_path / "m")
    assert result.instances_added == 0
    assert all("outside the imported folder" in i.reason for i in result.issues)
    assert len(result.issues) == 2


def test_dicomdir_given_directly(tmp_path: Path, study_db: StudyDatabase) -> None:
    src = Path(pydicom.data.get_testdata_file("DICOMDIR")).parent  # type: ignore[arg-type]
    dst = tmp_path / "media"
    shutil.copytree(src, dst)
    result = import_paths([dst / "DICOMDIR"], study_db, managed_dir=tmp_path / "m")
    assert result.instances_added > 10
    assert any(i.reason.startswith("DICOMDIR") for i in result.issues)


def test_cancel_keeps_committed_batches(
    tmp_path: Path, study_db: StudyDatabase, write_series: WriteSeries
) -> None:
    files = write_series("c", hu=np.zeros((150, 8, 8), np.int16))
    token = CancelToken()

    def progress(p: object) -> None:
        if getattr(p, "done", 0) >= 64:
            token.cancel()

    with pytest.raises(OperationCancelled):
        import_paths(
            [files[0].parent],
            study_db,
            managed_dir=tmp_path / "m",
            batch_size=10,
            on_progress=progress,
            cancel=token,
        )
    runs = study_db.connection.execute("SELECT status FROM import_runs").fetchall()
    assert [r[0] for r in runs] == ["cancelled"]
    kept = study_db.connection.execute("SELECT count(*) FROM instances").fetchone()[0]
    assert 0 < kept < len(files)
    result = import_paths([files[0].parent], study_db, managed_dir=tmp_path / "m")
    assert result.instances_added + result.instances_already_present == len(files)
    assert result.instances_already_present == kept


KILL_SCRIPT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from radiology_app.store import database
    from radiology_app.importer import import_paths

    original = database.StudyDatabase.write_import_batch
    calls = [0]

    def dying_write(self, run_id, *, patients, studies, series, instances, issues):
        calls[0] += 1
        if calls[0] < 3:
            return original(self, run_id, patients=patients, studies=studies, series=series,
                            instances=instances, issues=issues)
        # third batch: killed in the middle of its transaction, after some rows were inserted
        with self.transaction() as conn:
            rows = [database._instance_row(i, run_id) for i in list(instances)[:3]]
            conn.executemany("INSERT INTO instances (sop_instance_uid, sop_class_uid, series_uid, path,"
                             " source_path, instance_number, ipp_x, ipp_y, ipp_z, image_orientation,"
                             " pixel_spacing, rows, columns, number_of_frames, transfer_syntax_uid,"
                             " content_hash, import_run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            os._exit(9)

    database.StudyDatabase.write_import_batch = dying_write
    db = database.StudyDatabase(Path(sys.argv[1]))
    import_paths([Path(sys.argv[2])], db, managed_dir=Path(sys.argv[3]), batch_size=10)
""")


def test_import_killed_part_way_then_rerun(tmp_path: Path, write_series: WriteSeries) -> None:
    files = write_series("k", hu=np.zeros((45, 8, 8), np.int16))
    db_path = tmp_path / "killed.sqlite3"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(db_path), str(files[0].parent), str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 9, proc.stderr
    db = StudyDatabase(db_path)
    try:
        assert db.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        committed = db.connection.execute("SELECT count(*) FROM instances").fetchone()[0]
        assert committed == 20  # two whole batches; the third batch's transaction was rolled back
        assert db.connection.execute("SELECT status FROM import_runs").fetchone()[0] == "running"
        result = import_paths([files[0].parent], db, managed_dir=tmp_path / "m", batch_size=10)
        statuses = [r[0] for r in db.connection.execute("SELECT status FROM import_runs ORDER BY run_id")]
        assert statuses == ["interrupted", "complete"]
        assert result.instances_added == len(files) - 20
        assert result.instances_already_present == 20
        again = import_paths([files[0].parent], db, managed_dir=tmp_path / "m")
        assert again.instances_added == 0
        row = db.connection.execute(
            "SELECT count(*), count(DISTINCT sop_instance_uid) FROM instances"
        ).fetchone()
        assert tuple(row) == (len(files), len(files))
        _choice, volume = load_study_volume(db, result.studies[0])
        assert volume.shape_zyx == (45, 8, 8)
    finally:
        db.close()
