"""Fixtures for the Qt tests: offscreen platform, one torch thread, a private data folder, small volumes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from ui_fixtures import make_volume

from radiology_app.core.types import Volume


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(home))
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture(autouse=True)
def _qsettings_isolated(tmp_path: Path) -> Iterator[None]:
    from PySide6.QtCore import QCoreApplication, QSettings

    QCoreApplication.setOrganizationName("radiology-app-tests")
    QCoreApplication.setApplicationName("radiology-app-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))
    yield


@pytest.fixture
def small_volume() -> Volume:
    """A 40x64x72 int16 volume with one nodule at voxel (20, 30, 40)."""
    return make_volume()
