"""``radiology-app desktop-install`` / ``desktop-uninstall``: the per-user menu entry, icon and MIME types."""

from __future__ import annotations

import argparse
from typing import Any

from radiology_app.cli._common import add_command, emit


def _install(args: argparse.Namespace) -> int:
    from radiology_app.desktop import install_desktop_integration

    files, tools = install_desktop_integration()
    payload: dict[str, Any] = {
        "data_home": str(files.data_home),
        "files": [str(p) for p in files.all()],
        "caches_updated": tools,
    }
    emit(args, payload, "installed:\n  " + "\n  ".join(payload["files"]))
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    from radiology_app.desktop import uninstall_desktop_integration, xdg_data_home

    removed, tools = uninstall_desktop_integration()
    payload = {
        "data_home": str(xdg_data_home()),
        "removed": [str(p) for p in removed],
        "caches_updated": tools,
    }
    emit(args, payload, "removed:\n  " + "\n  ".join(map(str, removed)) if removed else "nothing to remove")
    return 0


def register(sub: Any) -> None:
    """Register ``desktop-install`` and ``desktop-uninstall``."""
    add_command(
        sub,
        "desktop-install",
        _install,
        "add the menu entry, icon and DICOM/DICOMDIR/ZIP file types for this user (XDG_DATA_HOME)",
    )
    add_command(sub, "desktop-uninstall", _uninstall, "remove what desktop-install added")
