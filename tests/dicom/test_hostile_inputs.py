"""Hostile inputs (#19 items 1 and 2): a corrupt RLE slice whose Rust decoder panics, and a header that
claims 65535 x 65535 pixels with 8 KB of pixel data. Each becomes a one-line error naming the file;
nothing allocates the claimed size; the CLI prints no traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from hostile_dicom import make_absurd_size, make_corrupt_rle

from radiology_app.cli import main
from radiology_app.core.errors import VolumeError
from radiology_app.dicom.pixel_header import check_pixel_header
from radiology_app.dicom.volume import read_volume
from radiology_app.importer import import_paths
from radiology_app.store.database import StudyDatabase

STUDY = "1.2.826.0.1.3680043.8.498.1001"


@pytest.fixture(autouse=True)
def _logging(fresh_logging: None) -> None:
    """Each test's ``main`` logs to its own stderr."""


def _imported(paths: list[Path], db: StudyDatabase) -> list:  # type: ignore[type-arg]
    import_paths([paths[0].parent], db)
    (series,) = db.series_for_study(STUDY)
    return db.instances_for_series(series.series_uid)


def test_rust_decoder_panic_is_a_volume_error_naming_the_file(
    write_series: Callable[..., list[Path]], study_db: StudyDatabase, capfd: pytest.CaptureFixture[str]
) -> None:
    paths = write_series()
    bad = make_corrupt_rle(paths[5])
    with pytest.raises(BaseException) as raw:  # the real decoder's failure is no Exception
        _ = pydicom.dcmread(bad).pixel_array
    assert not isinstance(raw.value, Exception) and type(raw.value).__name__ == "PanicException"
    capfd.readouterr()
    with pytest.raises(VolumeError) as caught:
        read_volume(_imported(paths, study_db))
    message = str(caught.value)
    assert str(bad) in message and "PanicException" in message and "\n" not in message
    assert "panicked" not in capfd.readouterr().err  # the Rust panic's own print is kept off the console


def test_absurd_size_is_refused_before_any_allocation(
    write_series: Callable[..., list[Path]], study_db: StudyDatabase
) -> None:
    paths = write_series()
    for p in paths:  # the whole series claims 65535 x 65535 (12 x 8 GiB as int16)
        make_absurd_size(p)
    with pytest.raises(VolumeError) as caught:
        read_volume(_imported(paths, study_db))
    message = str(caught.value)
    assert str(paths[0].parent) in message and "\n" not in message
    assert "a volume of 12 x 65535 x 65535 needs 192.0 GiB" in message and "memory budget" in message


def test_pixel_data_shorter_than_the_geometry_is_refused(
    write_series: Callable[..., list[Path]], study_db: StudyDatabase
) -> None:
    paths = write_series()
    for p in paths:
        make_absurd_size(p, rows=1024, columns=1024)
    with pytest.raises(
        VolumeError, match=r"pixel data is 8192 bytes but .*\(1024 x 1024 x 1 x 2\) needs 2097152"
    ):
        read_volume(_imported(paths, study_db))


def test_header_check_compares_pixel_length_with_the_geometry(
    write_series: Callable[..., list[Path]],
) -> None:
    ds = pydicom.dcmread(write_series()[0])
    check_pixel_header(ds, "x.dcm")  # a true header passes
    ds.Rows = ds.Rows * 2
    with pytest.raises(VolumeError, match=r"pixel data is \d+ bytes but .* needs \d+"):
        check_pixel_header(ds, "x.dcm", budget_bytes=1 << 30)
    ds.Rows = ds.Columns = 65535
    with pytest.raises(VolumeError, match=r"more than the 1\.0 GiB memory budget"):
        check_pixel_header(ds, "x.dcm", budget_bytes=1 << 30)


def test_volume_over_the_memory_budget_is_refused(
    write_series: Callable[..., list[Path]], study_db: StudyDatabase
) -> None:
    instances = _imported(write_series(), study_db)
    with pytest.raises(VolumeError, match=r"a volume of 12 x 24 x 24 needs .* memory budget"):
        read_volume(instances, memory_budget_bytes=10_000)
    assert read_volume(instances).hu.shape == (12, 24, 24)


def _corrupt_one_slice(paths: list[Path]) -> Path:
    return make_corrupt_rle(paths[4])


def _absurd_series(paths: list[Path]) -> Path:
    for p in paths:
        make_absurd_size(p)
    return paths[0].parent


@pytest.mark.parametrize("command", ["show", "analyze"])
@pytest.mark.parametrize("damage", [_corrupt_one_slice, _absurd_series])
def test_cli_gives_one_line_and_records_the_failed_run(
    command: str,
    damage: Callable[[list[Path]], Path],
    write_series: Callable[..., list[Path]],
    app_home: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    paths = write_series()
    bad = damage(paths)
    assert main(["import", str(paths[0].parent), "--json"]) == 0
    capfd.readouterr()
    rc = main([command, STUDY, "--json"])
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "panicked" not in err
    if command == "show":  # show reports the study and says why there is no volume
        doc = json.loads(out)
        assert rc == 0 and doc["volume"] is None and str(bad) in doc["problem"]
    else:
        assert rc == 1
        (line,) = [ln for ln in err.splitlines() if ln.startswith("radiology-app: error:")]
        assert str(bad) in line
        with StudyDatabase(app_home / "studies.sqlite3") as db:
            (run,) = db.analysis_runs_for_study(STUDY)
        assert run.status == "failed" and str(bad) in run.reason


_READ_IN_A_CHILD = (
    "import sys\n"
    "from radiology_app.core.errors import VolumeError\n"
    "from radiology_app.dicom.volume import read_volume\n"
    "from radiology_app.importer import import_paths\n"
    "from radiology_app.store.database import StudyDatabase\n"
    "db = StudyDatabase(sys.argv[2]); import_paths([sys.argv[1]], db)\n"
    "(study,) = db.list_studies(); (series,) = db.series_for_study(study.study_uid)\n"
    "try:\n"
    "    read_volume(db.instances_for_series(series.series_uid))\n"
    "except VolumeError as exc:\n"
    "    print(exc)\n"
)


def _read_in_a_child(bad: Path, tmp_path: Path) -> str:
    """Import and read ``bad`` in a child process (a regression may abort or hang it, not pytest)."""
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _READ_IN_A_CHILD, str(bad), str(tmp_path / "db.sqlite3")],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    return proc.stdout.strip()


def _jpeg_ls_file(tmp_path: Path, **changes: object) -> Path:
    ds = pydicom.dcmread(Path(pydicom.data.__file__).parent / "test_files" / "MR_small_jpeg_ls_lossless.dcm")
    for keyword, value in changes.items():
        setattr(ds.file_meta if keyword == "TransferSyntaxUID" else ds, keyword, value)
    bad = tmp_path / "in" / "jpegls.dcm"
    bad.parent.mkdir()
    ds.save_as(bad)
    return bad


def test_header_wider_than_the_jpeg_ls_stream_is_refused_before_decoding(tmp_path: Path) -> None:
    """Found by the fuzz harness: pydicom's real JPEG-LS file with Columns = 32768 made GDCM throw a C++
    exception into ``std::terminate`` (SIGABRT, the whole process gone)."""
    bad = _jpeg_ls_file(tmp_path, Columns=32768)
    message = _read_in_a_child(bad, tmp_path)
    assert message == f"{bad}: the compressed frame is 64 x 64 but the header says 64 x 32768; not decoded"


def test_jpeg_ls_stream_under_a_jpeg_lossless_syntax_is_refused_before_decoding(tmp_path: Path) -> None:
    """Found by the fuzz harness: libjpeg loops for ever on a JPEG-LS frame labelled JPEG Lossless."""
    bad = _jpeg_ls_file(tmp_path, TransferSyntaxUID=pydicom.uid.JPEGLosslessSV1)
    message = _read_in_a_child(bad, tmp_path)
    assert message.endswith(
        "the compressed frame is JPEG-LS but the transfer syntax says JPEG Lossless; not decoded"
    )


def test_deflated_files_are_imported_and_a_deflate_bomb_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the fuzz harness's seeds: every Deflated Explicit VR file was refused as "no pixel data"
    (the pixel data was looked for in the compressed bytes)."""
    from radiology_app.dicom import index

    real = Path(pydicom.data.__file__).parent / "test_files" / "image_dfl.dcm"
    record = index.read_header(str(real))
    assert isinstance(record, index.HeaderRecord), record
    monkeypatch.setattr(index, "MAX_INFLATED_BYTES", 1000)  # the real file inflates to more than that
    refused = index.read_header(str(real))
    assert not isinstance(refused, index.HeaderRecord)
    assert "inflates to more than" in refused.reason


def test_a_malformed_element_read_after_the_pixels_is_a_volume_error(
    write_series: Callable[..., list[Path]], study_db: StudyDatabase
) -> None:
    """Found by the fuzz harness: an unknown VR on SliceThickness raised NotImplementedError from
    ``read_volume`` (only the pixel decoding was guarded)."""
    paths = write_series()
    for p in paths:
        raw = p.read_bytes()
        assert raw.count(b"\x18\x00\x50\x00DS") == 1
        p.write_bytes(raw.replace(b"\x18\x00\x50\x00DS", b"\x18\x00\x50\x00DR"))
    with pytest.raises(VolumeError, match=r"cannot read the file .*Unknown Value Representation 'DR'"):
        read_volume(_imported(paths, study_db))
