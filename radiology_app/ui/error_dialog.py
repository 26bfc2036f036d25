"""The error dialog: a clear sentence, the file or study concerned, and the technical details on demand."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from radiology_app.core.errors import RadiologyAppError
from radiology_app.ui.worker import WorkerError


def error_text(exc: BaseException) -> str:
    """Return the user-facing sentence for ``exc`` (our errors carry their own wording)."""
    if isinstance(exc, RadiologyAppError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "Not enough memory to finish this operation."
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"A file could not be read or written{where}: {exc.strerror or exc}"
    return f"Unexpected error: {type(exc).__name__}: {exc}"


def make_error_dialog(
    parent: QWidget | None, title: str, error: BaseException | WorkerError, details: str = ""
) -> QMessageBox:
    """Build (without showing) the error dialog for ``error``.

    Parameters
    ----------
    parent
        Parent window.
    title
        What the user was doing ("Import failed", "Analysis failed"...).
    error
        The exception, or a :class:`~radiology_app.ui.worker.WorkerError` from a background task.
    details
        Technical details (traceback); taken from the WorkerError when not given.
    """
    if isinstance(error, WorkerError):
        details = details or error.details
        exc = error.exception
    else:
        exc = error
    box = QMessageBox(parent)
    box.setObjectName("errorDialog")
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(f"<b>{title}</b>")
    box.setInformativeText(error_text(exc))
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    return box


def show_error(
    parent: QWidget | None, title: str, error: BaseException | WorkerError, details: str = ""
) -> None:
    """Show the error dialog, window-modal and non-blocking (``open()``, no nested event loop)."""
    box = make_error_dialog(parent, title, error, details)
    box.open()
