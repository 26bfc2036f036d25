"""Fixtures of the pipeline tests: a temporary data folder with the small study imported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_case import FakeRegistry, fake_segment_nodules, make_phantom, write_study

from radiology_app.store.database import StudyDatabase
from segmentation.phantom.chest import ChestPhantom


@pytest.fixture(scope="session")
def phantom() -> ChestPhantom:
    return make_phantom()


@pytest.fixture(scope="session")
def study_files(phantom: ChestPhantom, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_study(phantom, tmp_path_factory.mktemp("ct"))


@pytest.fixture()
def db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phantom: ChestPhantom, study_files: list[Path]
) -> Iterator[StudyDatabase]:
    """A fresh data folder and database with the study imported; the segmenter replaced by its double."""
    from radiology_app.importer import import_paths

    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("segmentation.inference.segment_nodules", fake_segment_nodules(phantom))
    (tmp_path / "home").mkdir()
    database = StudyDatabase(tmp_path / "home" / "studies.sqlite3")
    import_paths([study_files[0].parent], database)
    yield database
    database.close()


@pytest.fixture()
def registry() -> FakeRegistry:
    return FakeRegistry()
