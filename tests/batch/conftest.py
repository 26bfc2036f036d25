"""Fixtures for the batch-runner tests: an isolated data folder and database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from radiology_app.store.database import StudyDatabase


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(h))
    return h


@pytest.fixture()
def db(home: Path) -> Iterator[StudyDatabase]:
    database = StudyDatabase(home / "studies.sqlite3")
    try:
        yield database
    finally:
        database.close()
