"""Errors raised by the standalone segmentation library.

The library never imports ``radiology_app``; the application maps these to its own error hierarchy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

#: Progress callback signature used throughout the library: ``(done, total, message)``.
ProgressFn = Callable[[int, int, str], None]


class SegmentationError(Exception):
    """Root of every error the segmentation library raises on purpose."""


class SegmentationCancelled(SegmentationError):
    """The caller cancelled a slow operation (its ``cancel.cancelled`` became true)."""


class ModelIntegrityError(SegmentationError):
    """A weights file is missing, unreadable, or its SHA-256 does not match its model card.

    Parameters
    ----------
    path
        The weights file.
    problem
        What is wrong with it.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[type[ModelIntegrityError], tuple[Path, str]]:
        """Rebuild from ``(path, problem)`` (so the error crosses process boundaries)."""
        return type(self), (self.path, self.problem)


class InvalidVolumeError(SegmentationError):
    """An input array or spacing cannot be segmented (wrong dimensionality, non-positive spacing...)."""


def check_cancel(cancel: object | None) -> None:
    """Raise :class:`SegmentationCancelled` when ``cancel`` has a true ``cancelled`` attribute.

    Parameters
    ----------
    cancel
        Any object with a boolean ``cancelled`` attribute, or ``None``.

    Raises
    ------
    SegmentationCancelled
        When cancellation was requested.
    """
    if cancel is not None and bool(getattr(cancel, "cancelled", False)):
        raise SegmentationCancelled("segmentation cancelled")


def report(on_progress: ProgressFn | None, done: int, total: int, message: str) -> None:
    """Call ``on_progress(done, total, message)`` when a callback was given."""
    if on_progress is not None:
        on_progress(done, total, message)
