"""The data folder holds PHI: directories 0700, files 0600, existing ones fixed on start-up."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from radiology_app.core import config
from radiology_app.core.config import AppPaths, Settings, save_settings

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def keep_umask() -> Iterator[None]:
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def _world_readable_folder(home: Path) -> list[Path]:
    """A data folder as an older version left it: everything readable by every local user."""
    os.umask(0o022)
    files = [
        home / "studies.sqlite3",
        home / "settings.json",
        home / "notes" / "note.txt",
        home / "managed" / "pacs" / "1.2.3" / "x.dcm",
        home / "logs" / "radiology-app.log",
        home / "reports" / "report.pdf",
        home / "analyses" / "7" / "labels.npz",
    ]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"PHI")
        f.chmod(0o644)
    for d in {p.parent for p in files} | {home}:
        d.chmod(0o755)
    return files


def test_existing_data_folder_made_private_on_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_umask: None
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    files = _world_readable_folder(home)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (home / "link").symlink_to(outside)
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(home))
    monkeypatch.setattr(config, "_SECURED", set())
    assert config.app_home() == home
    assert _mode(home) == 0o700
    for f in files:
        assert _mode(f) == 0o600, f
        for d in f.relative_to(home).parents:
            assert _mode(home / d) == 0o700, d
    assert _mode(outside) == 0o644  # a link is not followed out of the folder


def test_files_created_after_start_up_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_umask: None
) -> None:
    os.umask(0o022)
    monkeypatch.setenv("RADIOLOGY_APP_HOME", str(tmp_path / "fresh"))
    monkeypatch.setattr(config, "_SECURED", set())
    paths = config.app_paths()
    assert _mode(paths.home) == 0o700
    from radiology_app.store.database import StudyDatabase

    with StudyDatabase.open_default() as db:
        db.connection.execute("SELECT 1")
    assert _mode(paths.database) == 0o600
    paths.reports.mkdir()
    assert _mode(paths.reports) == 0o700


def test_settings_written_owner_only_even_over_a_readable_file(tmp_path: Path, keep_umask: None) -> None:
    os.umask(0o022)
    paths = AppPaths(tmp_path)
    paths.settings_file.write_text("{}")
    paths.settings_file.chmod(0o644)
    save_settings(Settings().replace(institution_name="St Elsewhere"), paths)
    assert _mode(paths.settings_file) == 0o600


def test_command_line_start_up_secures_the_folder(tmp_path: Path, keep_umask: None) -> None:
    home = tmp_path / "cli-home"
    home.mkdir()
    files = _world_readable_folder(home)
    env = {**os.environ, "RADIOLOGY_APP_HOME": str(home), "PYTHONPATH": os.getcwd()}
    out = subprocess.run(
        [sys.executable, "-m", "radiology_app", "studies", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert _mode(home) == 0o700, out.stderr
    assert all(_mode(f) == 0o600 for f in files)


def test_the_folder_is_walked_once(tmp_path: Path, keep_umask: None) -> None:
    from radiology_app.core.privacy import secure_data_folder

    home = tmp_path / "home"
    home.mkdir()
    files = _world_readable_folder(home)
    assert secure_data_folder(home) > len(files)
    files[0].chmod(0o644)  # changed by hand after the first start-up: no longer looked at
    home.chmod(0o755)
    assert secure_data_folder(home) == 1
    assert _mode(home) == 0o700 and _mode(files[0]) == 0o644
