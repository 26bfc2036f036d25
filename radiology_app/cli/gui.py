"""``radiology-app gui [--study REF]``: open the desktop application (PySide6 is imported only when run)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from radiology_app.cli._common import add_command, emit


def _run(args: argparse.Namespace) -> int:
    display = any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
    if sys.platform.startswith("linux") and not display:
        print("radiology-app: error: no display (set DISPLAY, or run under xvfb-run)", file=sys.stderr)
        return 1
    # Imported dynamically: the layers contract keeps the command line from importing ui statically
    # (nothing imports ui; Qt loads only when the window opens).
    gui = importlib.import_module("radiology_app.ui.app")
    status = int(gui.run_gui(args.study))
    if args.json:
        emit(args, {"exit_status": status, "study": args.study})
    return status


def register(sub: Any) -> None:
    """Register the ``gui`` subcommand."""
    parser = add_command(sub, "gui", _run, "open the desktop workstation (study browser, viewer, review)")
    parser.add_argument(
        "--study",
        metavar="REF",
        default=None,
        help="study to open: StudyInstanceUID, unique prefix, or an imported path",
    )
