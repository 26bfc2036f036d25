"""Start the desktop application: ``run_gui()`` builds the QApplication, the theme and the main window."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from radiology_app import __version__
from radiology_app.core.config import HOME_ENV
from radiology_app.core.errors import RadiologyAppError
from radiology_app.store.database import StudyDatabase
from radiology_app.ui.error_dialog import make_error_dialog
from radiology_app.ui.main_window import MainWindow
from radiology_app.ui.settings_dialog import DATA_HOME_KEY
from radiology_app.ui.theme import apply_theme

log = logging.getLogger(__name__)
ORGANIZATION = "radiology-app"
APPLICATION = "Radiology App"


def ensure_application(argv: list[str] | None = None) -> QApplication:
    """Return the running QApplication, creating and theming it if there is none."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    QApplication.setApplicationVersion(__version__)
    QApplication.setDesktopFileName("radiology-app")
    app = QApplication(argv if argv is not None else sys.argv[:1])
    apply_theme(app)
    return app


def create_main_window(study_uid: str | None = None, paths: Sequence[Path] = ()) -> MainWindow:
    """Open the study database and build the main window; open ``study_uid`` (a UID, prefix or path).

    ``paths`` (folders, DICOM files, ZIPs, DICOMDIRs) are imported in the background and the first
    study they hold is opened.

    Raises
    ------
    StoreError
        If the database cannot be opened.
    StudyNotFoundError
        If ``study_uid`` matches no study (or several).
    """
    ensure_application()
    chosen_home = str(QSettings().value(DATA_HOME_KEY, "") or "")
    if chosen_home and not os.environ.get(HOME_ENV):
        os.environ[HOME_ENV] = chosen_home
    db = StudyDatabase.open_default()
    window = MainWindow(db)
    if study_uid:
        study = db.resolve_study(study_uid)
        window.open_study(study.study_uid)
    if paths:
        window.import_and_open(paths)
    return window


def run_gui(study_uid: str | None = None, paths: Sequence[Path] = ()) -> int:
    """Run the application until the main window closes; return the exit status.

    Parameters
    ----------
    study_uid
        A StudyInstanceUID, unique prefix or imported path to open at start, or ``None``.
    paths
        Folders, DICOM files, ZIPs or DICOMDIRs to import and open (the desktop entry's ``%F``).
    """
    app = ensure_application()
    try:
        window = create_main_window(study_uid, paths)
    except RadiologyAppError as exc:
        box = make_error_dialog(None, "Radiology App cannot start", exc)
        box.exec()  # the only modal loop: there is no main window yet
        return 1
    window.show()
    if study_uid is None and not paths:
        QTimer.singleShot(0, window.browser.table.setFocus)
    status = app.exec()
    window.db.close()
    return int(status)
