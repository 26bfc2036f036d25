"""Errors raised by the rule functions."""

from __future__ import annotations

from radiology_app.core.errors import RadiologyAppError

__all__ = ["RuleInputError"]


class RuleInputError(RadiologyAppError, ValueError):
    """An input to a clinical rule is missing, out of range or contradictory.

    Parameters
    ----------
    rule
        The rule concerned (``"Lung-RADS"``, ``"Fleischner"``, ``"Brock"``, ...).
    problem
        What is wrong, in words a user understands.
    """

    def __init__(self, rule: str, problem: str) -> None:
        self.rule = rule
        self.problem = problem
        super().__init__(f"{rule}: {problem}")
