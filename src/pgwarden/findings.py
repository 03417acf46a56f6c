"""Findings are data: one frozen value per hazard found; renderers only format them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pgwarden.location import SourceLocation

__all__ = ["Finding", "Severity"]


class Severity(Enum):
    """error: will hurt a large, busy table; warning: depends on circumstances; note: style."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "note": 1}[self.value]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True, slots=True)
class Finding:
    """One hazard at one place: what will happen, what to do, and the fix when one exists."""

    code: str
    name: str
    severity: Severity
    message: str  # what will happen here
    help: str  # what to do instead
    location: SourceLocation
    fix: str | None = None  # the safe SQL replacing the statement, when mechanical
    step: int | None = None  # index of the plan step
