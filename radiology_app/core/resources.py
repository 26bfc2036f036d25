"""Where the shipped resources (models and their cards, fonts and licences, styles, icons, demo note) are.

In a source checkout they are the top-level ``resources/`` folder beside the packages. An installed
wheel or the PyInstaller bundle carries that folder as the package-data package
``radiology_app_resources`` (``pyproject.toml`` maps it), read through :mod:`importlib.resources`.
The checkout wins when both exist, so a worktree never reads another tree's files.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

#: Name of the installed package that holds ``resources/``.
RESOURCES_PACKAGE = "radiology_app_resources"


def resources_root() -> Path:
    """The folder of the shipped resources.

    When neither a checkout's ``resources/`` nor the installed package is there, this returns the
    checkout's path anyway, so that opening a file names the missing path in its error.
    """
    root = Path(__file__).resolve().parents[2]
    checkout = root / "resources"
    if (root / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    try:
        installed = importlib.resources.files(RESOURCES_PACKAGE)
    except ModuleNotFoundError:
        return checkout
    return Path(str(installed))  # a wheel or the bundle unpacks it on the file system
