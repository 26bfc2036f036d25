"""The error hierarchy. Every error the application raises derives from :class:`RadiologyAppError`."""

from __future__ import annotations

from pathlib import Path


class RadiologyAppError(Exception):
    """Root of every error the application raises on purpose."""


class ConfigError(RadiologyAppError):
    """The configuration or a settings file is invalid."""


class DicomError(RadiologyAppError):
    """A DICOM file or series cannot be used.

    Parameters
    ----------
    message
        What is wrong, in words a user understands.
    path
        The file (or folder) concerned, when one is.
    """

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


class SeriesSelectionError(DicomError):
    """No series of the study is suitable for analysis."""


class VolumeError(DicomError):
    """A series cannot be assembled into a 3-D volume."""


class ImportFailedError(RadiologyAppError):
    """An import could not run at all (as opposed to single files being skipped)."""


class StoreError(RadiologyAppError):
    """The study database cannot be opened, migrated or written."""


class StudyNotFoundError(StoreError):
    """No study matches the given UID, prefix or path (or more than one does)."""


class NoteError(RadiologyAppError):
    """A clinical note cannot be read or attached."""


class ModelError(RadiologyAppError):
    """A model cannot be loaded or run."""


class ModelIntegrityError(ModelError):
    """A weights file does not match the SHA-256 recorded in its model card."""


class ReportError(RadiologyAppError):
    """A report or DICOM output cannot be written."""


class OperationCancelled(RadiologyAppError):
    """A long operation was cancelled by the user through its :class:`CancelToken`."""
