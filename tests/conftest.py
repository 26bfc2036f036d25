"""Shared, generic fixtures: a private data folder, a study database, and small CT series on disk.

Packages add their own fixtures in ``tests/<pkg>/conftest.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from radiology_app.core.types import Patient, Study


@pytest.fixture
def app_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data folder for this test (``RADIOLOGY_APP_HOME``)."""
    home = tmp_path / "app-home"
    home.mkdir()
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(home))
    return home


@pytest.fixture
def study_db(tmp_path: Path) -> Iterator[Any]:
    """An empty :class:`~radiology_app.store.database.StudyDatabase` in the test's temporary folder."""
    from radiology_app.store.database import StudyDatabase

    db = StudyDatabase(tmp_path / "studies.sqlite3")
    yield db
    db.close()


def phantom_hu(shape_zyx: tuple[int, int, int] = (12, 24, 24), seed: int = 0) -> np.ndarray:
    """A small chest-like HU array: air outside, soft tissue body, two dark lungs, noise."""
    z, y, x = shape_zyx
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:y, 0:x]
    body = ((yy - y / 2) / (0.45 * y)) ** 2 + ((xx - x / 2) / (0.48 * x)) ** 2 <= 1
    lung_l = ((yy - y / 2) / (0.3 * y)) ** 2 + ((xx - 0.3 * x) / (0.14 * x)) ** 2 <= 1
    lung_r = ((yy - y / 2) / (0.3 * y)) ** 2 + ((xx - 0.7 * x) / (0.14 * x)) ** 2 <= 1
    sl = np.full((y, x), -1000.0)
    sl[body] = 40.0
    sl[lung_l | lung_r] = -850.0
    vol = np.repeat(sl[np.newaxis], z, axis=0) + rng.normal(0, 15, size=(z, y, x))
    return np.rint(vol).astype(np.int16)


@pytest.fixture
def write_series(tmp_path: Path) -> Callable[..., list[Path]]:
    """Factory writing a small CT series with :func:`write_ct_series`; returns the file paths.

    Keyword arguments go to ``write_ct_series``; extra ones: ``hu`` (array), ``folder`` (name under
    tmp_path), ``patient_id``, ``study_uid``.
    """
    from radiology_app.dicom.write_ct import write_ct_series

    def _write(
        folder: str = "series",
        *,
        hu: np.ndarray | None = None,
        patient_id: str = "PAT-1",
        study_uid: str = "1.2.826.0.1.3680043.8.498.1001",
        spacing_zyx_mm: tuple[float, float, float] = (2.0, 0.8, 0.8),
        **kwargs: Any,
    ) -> list[Path]:
        arr = phantom_hu() if hu is None else hu
        kwargs.setdefault("uid_seed", f"{study_uid}/{folder}")
        return write_ct_series(
            arr,
            spacing_zyx_mm,
            tmp_path / folder,
            patient=Patient(patient_id, "Test^Patient", "F", dt.date(1960, 3, 4)),
            study=Study(study_uid, patient_id, dt.date(2024, 1, 2), description="CT CHEST"),
            **kwargs,
        )

    return _write


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """Let ``cli.main`` configure logging anew, to this test's stderr.

    ``main`` configures logging once per process, and an earlier test's handlers write to its own
    captured stderr, closed since (``--- Logging error ---`` with a traceback in this test's stderr).
    """
    import logging

    root = logging.getLogger()
    handlers, flag = list(root.handlers), getattr(root, "_radiology_app_configured", False)
    root.handlers[:] = []
    root._radiology_app_configured = False  # type: ignore[attr-defined]
    yield
    root.handlers[:] = handlers
    root._radiology_app_configured = flag  # type: ignore[attr-defined]
