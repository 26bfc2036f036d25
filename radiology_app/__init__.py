"""Chest-CT nodule workstation.

Results produced by this software are AI suggestions for a clinician to review; they are not
diagnoses.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
