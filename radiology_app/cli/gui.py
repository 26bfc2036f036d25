"""``radiology-app gui [--study REF] [PATH ...]``: open the desktop application.

PySide6 is imported only when run. PATHs (folders, DICOM files, ZIPs, DICOMDIRs; the desktop entry's
``%F``) are imported and the first study they hold is opened.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from radiology_app.cli._common import add_command, emit
from radiology_app.core.errors import ImportFailedError


def _run(args: argparse.Namespace) -> int:
    paths = [Path(p).absolute() for p in args.paths]
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if missing:
        raise ImportFailedError(f"no such file or folder: {', '.join(missing)}")
    display = any(os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
    if sys.platform.startswith("linux") and not display:
        print("radiology-app: error: no display (set DISPLAY, or run under xvfb-run)", file=sys.stderr)
        return 1
    # Imported dynamically: the layers contract keeps the command line from importing ui statically
    # (nothing imports ui; Qt loads only when the window opens).
    gui = importlib.import_module("radiology_app.ui.app")
    status = int(gui.run_gui(args.study, paths))
    if args.json:
        emit(args, {"exit_status": status, "study": args.study, "paths": [str(p) for p in paths]})
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
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="folders, DICOM files, ZIPs or DICOMDIRs to import and open (as the desktop entry passes them)",
    )
