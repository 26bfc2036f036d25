"""Fixtures of the reporting tests: a small synthetic case (see report_case.py)."""

from __future__ import annotations

import pytest
from report_case import Case, build_case


@pytest.fixture()
def case() -> Case:
    """The synthetic two-nodule case with a Chinese note."""
    return build_case()
