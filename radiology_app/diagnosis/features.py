"""Quality signals for the modality router (no torch)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from radiology_app.diagnosis.cues import NoteCues
from radiology_app.diagnosis.text import MAX_TOKENS


def quality_vector(
    noise_hu: float, slice_thickness_mm: float | None, cues: NoteCues, n_tokens: int, note_present: bool
) -> npt.NDArray[np.float32]:
    """Build the router's quality vector.

    Parameters
    ----------
    noise_hu
        Image noise estimate, HU.
    slice_thickness_mm
        Slice thickness in mm, ``None`` when unknown.
    cues
        The note's cues (for informativeness).
    n_tokens
        Number of note tokens the backbone read.
    note_present
        Whether the note has any text.

    Returns
    -------
    numpy.ndarray
        float32 vector of length 6: noise/100, thickness/5, thickness known, informativeness,
        tokens/MAX_TOKENS, note present.
    """
    return np.asarray(
        [
            min(noise_hu, 400.0) / 100.0,
            (slice_thickness_mm or 0.0) / 5.0,
            0.0 if slice_thickness_mm is None else 1.0,
            cues.informativeness if note_present else 0.0,
            min(n_tokens, MAX_TOKENS) / MAX_TOKENS if note_present else 0.0,
            1.0 if note_present else 0.0,
        ],
        dtype=np.float32,
    )
