"""Data folder and settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from radiology_app.core.config import AppPaths, Settings, app_home, load_settings, save_settings
from radiology_app.core.errors import ConfigError


def test_env_variable_overrides_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(tmp_path / "home"))
    assert app_home() == tmp_path / "home"
    assert (tmp_path / "home").is_dir()


def test_settings_round_trip_and_unknown_keys_ignored(tmp_path: Path) -> None:
    paths = AppPaths(tmp_path)
    assert load_settings(paths) == Settings()
    saved = Settings().replace(institution_name="St Elsewhere", inference_backend="onnxruntime")
    save_settings(saved, paths)
    text = paths.settings_file.read_text(encoding="utf-8").replace("{", '{"retired_key": 1,', 1)
    paths.settings_file.write_text(text, encoding="utf-8")
    assert load_settings(paths) == saved


def test_broken_settings_file_names_the_file(tmp_path: Path) -> None:
    paths = AppPaths(tmp_path)
    paths.settings_file.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings\.json"):
        load_settings(paths)
