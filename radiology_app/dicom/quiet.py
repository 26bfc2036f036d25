"""Keep pydicom's per-file warnings off the console.

pydicom reports oddities of a file (wrong VR, bad UID text...) through both ``warnings`` and its
logger; for a hospital-sized import that is thousands of lines, and the messages can quote header
values (PHI). Callers collect them instead and report what matters in their own words.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[list[str]]:
    """Silence pydicom's warnings and warning logs inside the block.

    Yields
    ------
    list of str
        Filled with the text of each warning caught (for a summary; may hold header values, so do not
        log it).
    """
    caught: list[str] = []
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            yield caught
            caught.extend(str(r.message) for r in records)
    finally:
        logger.setLevel(level)
