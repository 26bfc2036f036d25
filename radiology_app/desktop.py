"""Per-user desktop integration (freedesktop.org XDG): menu entry, icon, and MIME types.

``install_desktop_integration`` writes, under ``$XDG_DATA_HOME`` (default ``~/.local/share``):

- ``applications/radiology-app.desktop``: the menu entry, its ``Exec`` pointing at this installation's
  launcher with ``gui %F``, and ``MimeType`` listing DICOM (``application/dicom``, which covers files
  named ``DICOMDIR``) and ZIP, so the file manager offers "Open with Radiology App";
- ``icons/hicolor/scalable/apps/radiology-app.svg``: the icon;
- ``mime/packages/radiology-app.xml``: ``application/dicom`` by name (``*.dcm``, ``DICOMDIR``) and by
  magic (``DICM`` at byte 128), for systems whose shared-mime-info lacks it.

It then refreshes the desktop and MIME caches with ``update-desktop-database`` and
``update-mime-database`` where they are installed. Nothing is made the default for ZIP files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from radiology_app.core.config import RESOURCES_DIR
from radiology_app.core.errors import ConfigError

DESKTOP_TEMPLATE = RESOURCES_DIR / "desktop" / "radiology-app.desktop"
MIME_PACKAGE = RESOURCES_DIR / "desktop" / "radiology-app-mime.xml"
ICON = RESOURCES_DIR / "icons" / "radiology-app.svg"
#: Characters that make an ``Exec`` argument need quoting (Desktop Entry Specification, "Exec key").
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


@dataclass(frozen=True)
class DesktopFiles:
    """Where the integration's files go under one XDG data folder."""

    data_home: Path

    @property
    def entry(self) -> Path:
        """The menu entry."""
        return self.data_home / "applications" / "radiology-app.desktop"

    @property
    def icon(self) -> Path:
        """The scalable icon."""
        return self.data_home / "icons" / "hicolor" / "scalable" / "apps" / "radiology-app.svg"

    @property
    def mime_package(self) -> Path:
        """The shared-mime-info package."""
        return self.data_home / "mime" / "packages" / "radiology-app.xml"

    def all(self) -> tuple[Path, Path, Path]:
        """Every file the integration writes."""
        return (self.entry, self.icon, self.mime_package)


def xdg_data_home() -> Path:
    """``$XDG_DATA_HOME`` when absolute (the spec ignores relative ones), else ``~/.local/share``."""
    env = os.environ.get("XDG_DATA_HOME", "")
    return Path(env) if env and os.path.isabs(env) else Path.home() / ".local" / "share"


def launcher_command() -> list[str]:
    """The command that starts this installation: the bundle's executable, the ``radiology-app`` script, or
    ``python -m radiology_app``."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).absolute())]
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    if script.name == "radiology-app" and script.is_file():
        return [str(script.absolute())]
    beside = Path(sys.executable).parent / "radiology-app"
    if beside.is_file():
        return [str(beside.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "radiology_app"]


def _quote(arg: str) -> str:
    if not arg or _RESERVED & set(arg):
        escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        arg = f'"{escaped}"'
    return arg.replace("\\", "\\\\")  # the string-value escape of the whole key


def render_entry(template: str, command: list[str]) -> str:
    """The menu entry ``template`` with ``Exec`` set to ``command gui %F`` and ``TryExec`` to its program."""
    lines = []
    for line in template.splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + " ".join(_quote(a) for a in [*command, "gui"]) + " %F"
        elif line.startswith("TryExec="):
            line = "TryExec=" + command[0].replace("\\", "\\\\")
        lines.append(line)
    return "\n".join(lines) + "\n"


def _refresh_caches(files: DesktopFiles) -> list[str]:
    """Run the cache tools that are installed; return their names."""
    ran = []
    for tool, folder in (
        ("update-desktop-database", files.entry.parent),
        ("update-mime-database", files.mime_package.parent.parent),
    ):
        exe = shutil.which(tool)
        if exe is None or not folder.is_dir():
            continue
        subprocess.run([exe, str(folder)], capture_output=True, check=False, timeout=120)
        ran.append(tool)
    return ran


def install_desktop_integration(data_home: Path | None = None) -> tuple[DesktopFiles, list[str]]:
    """Write the menu entry, icon and MIME package for this user; return them and the cache tools run.

    Raises
    ------
    ConfigError
        If a shipped file is missing or a file cannot be written (the message names the path).
    """
    files = DesktopFiles(data_home or xdg_data_home())
    try:
        template = DESKTOP_TEMPLATE.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{DESKTOP_TEMPLATE}: cannot read the menu entry template ({exc})") from exc
    try:
        for path in files.all():
            path.parent.mkdir(parents=True, exist_ok=True)
        files.entry.write_text(render_entry(template, launcher_command()), encoding="utf-8")
        shutil.copyfile(ICON, files.icon)
        shutil.copyfile(MIME_PACKAGE, files.mime_package)
    except OSError as exc:
        raise ConfigError(
            f"{exc.filename or files.data_home}: cannot install ({exc.strerror or exc})"
        ) from exc
    return files, _refresh_caches(files)


def uninstall_desktop_integration(data_home: Path | None = None) -> tuple[list[Path], list[str]]:
    """Remove what :func:`install_desktop_integration` wrote; return the removed files and cache tools run.

    Raises
    ------
    ConfigError
        If a file cannot be removed.
    """
    files = DesktopFiles(data_home or xdg_data_home())
    removed = []
    for path in files.all():
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"{path}: cannot remove ({exc.strerror or exc})") from exc
        removed.append(path)
    return removed, _refresh_caches(files)
