"""The ``gui`` command, the lazy Qt import, and the desktop entry."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_help_does_not_load_qt_or_torch() -> None:
    code = (
        "import sys; from radiology_app.cli import build_parser; p = build_parser(); "
        "assert 'gui' in p.format_help(); "
        "print('PySide6' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "False"]


def test_gui_without_display_fails_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["RADIOLOGY_APP_HOME"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "radiology_app", "gui"], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 1
    assert "no display" in out.stderr


def test_desktop_entry_points_at_the_gui_command() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(ROOT / "resources" / "desktop" / "radiology-app.desktop", encoding="utf-8")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Exec"].startswith("radiology-app gui")
    assert (ROOT / "resources" / "icons" / f"{d['Icon']}.svg").exists()
    assert d["Categories"].endswith(";")
