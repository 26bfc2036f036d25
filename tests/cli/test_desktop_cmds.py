"""``desktop-install`` / ``desktop-uninstall`` into a temporary XDG data folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from radiology_app.desktop import render_entry


def _cli(args: list[str], xdg: Path, tmp_path: Path) -> dict[str, object]:
    env = {**os.environ, "XDG_DATA_HOME": str(xdg), "RADIOLOGY_APP_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-m", "radiology_app", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_install_writes_a_valid_entry_icon_and_mime_types_then_uninstall_removes_them(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    done = _cli(["desktop-install"], xdg, tmp_path)
    entry = xdg / "applications" / "radiology-app.desktop"
    icon = xdg / "icons" / "hicolor" / "scalable" / "apps" / "radiology-app.svg"
    mime = xdg / "mime" / "packages" / "radiology-app.xml"
    assert done["files"] == [str(entry), str(icon), str(mime)] and all(
        p.is_file() for p in (entry, icon, mime)
    )
    text = entry.read_text(encoding="utf-8")
    assert "MimeType=application/dicom;application/zip;" in text
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    program = exec_line.removeprefix("Exec=").split(" ")[0]
    assert Path(program).is_absolute() and Path(program).exists() and exec_line.endswith(" gui %F")
    if shutil.which("desktop-file-validate") is None:
        pytest.skip("desktop-file-validate is not installed (Debian: desktop-file-utils)")
    check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    if "update-mime-database" in done["caches_updated"]:  # type: ignore[operator]
        globs = (xdg / "mime" / "globs2").read_text(encoding="utf-8")
        assert "application/dicom:dicomdir" in globs and "application/dicom:*.dcm" in globs
    gone = _cli(["desktop-uninstall"], xdg, tmp_path)
    assert gone["removed"] == [str(entry), str(icon), str(mime)]
    assert not any(p.exists() for p in (entry, icon, mime))


def test_exec_quotes_a_launcher_path_with_spaces() -> None:
    out = render_entry("[Desktop Entry]\nExec=x\nTryExec=x\n", ["/opt/Radiology App/radiology-app"])
    assert 'Exec="/opt/Radiology App/radiology-app" gui %F' in out
    assert "TryExec=/opt/Radiology App/radiology-app" in out
