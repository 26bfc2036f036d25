"""Diagnosis class names (exactly those of the CLI contract) and which of them are malignant."""

from __future__ import annotations

#: The differential's classes, in the order of the model's output.
CLASS_NAMES: tuple[str, ...] = (
    "adenocarcinoma",
    "squamous_cell_carcinoma",
    "small_cell_carcinoma",
    "carcinoid",
    "metastasis",
    "granuloma",
    "hamartoma",
    "infection",
    "intrapulmonary_lymph_node",
)

#: Classes counted as malignant for the malignancy probability (carcinoid is a low-grade malignant tumour).
MALIGNANT_CLASSES: frozenset[str] = frozenset(
    {"adenocarcinoma", "squamous_cell_carcinoma", "small_cell_carcinoma", "carcinoid", "metastasis"}
)

#: Boolean mask over :data:`CLASS_NAMES` of the malignant classes.
MALIGNANT_MASK: tuple[bool, ...] = tuple(name in MALIGNANT_CLASSES for name in CLASS_NAMES)

N_CLASSES = len(CLASS_NAMES)
