"""Findings are data: one frozen value per hazard found; renderers only format them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from pgwarden.location import SourceLocation

__all__ = ["Finding", "Fix", "FixStatement", "Placement", "Severity"]


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


class Placement(Enum):
    """Where a statement of a fix runs, relative to the step it replaces."""

    IN_PLACE = "in place"  # where the step was, inside the step's transaction
    BEFORE = "before"  # alone, before the step's transaction begins (cannot run inside one)
    AFTER = "after"  # after the step's transaction commits, in a transaction of its own
    SESSION = "session"  # a session setting: `lint --fix` writes it once at the top of the
    # file; `apply` sets its own timeouts, so a rewrite leaves it out


@dataclass(frozen=True, slots=True)
class FixStatement:
    """One statement of a fix, where it goes, and the comment shown above it."""

    sql: str  # one statement, ending in ";"
    placement: Placement
    comment: str | None = None  # e.g. "in a separate transaction:"


@dataclass(frozen=True, slots=True)
class Fix:
    """The safe SQL replacing a step, as statements placed relative to its transaction.

    `mechanical` fixes are applied by `lint --fix` and `apply --rewrite`; the
    others are advice, and `why_not` says what a person must check first.
    """

    statements: tuple[FixStatement, ...]
    mechanical: bool = True
    why_not: str | None = None

    @property
    def sql(self) -> str:
        """The fix as one SQL text, comments included (what users read)."""
        lines: list[str] = []
        for s in self.statements:
            if s.comment:
                lines.append(f"-- {s.comment}")
            lines.append(s.sql)
        return "\n".join(lines)

    @property
    def sets_session(self) -> bool:
        """Whether part of it is a session setting (`lint --fix` writes those at the top)."""
        return any(s.placement is Placement.SESSION for s in self.statements)


@dataclass(frozen=True, slots=True)
class Finding:
    """One hazard at one place: what will happen, what to do, and the fix when one exists."""

    code: str
    name: str
    severity: Severity
    message: str  # what will happen here
    help: str  # what to do instead
    location: SourceLocation
    fix: Fix | None = None  # the safe SQL replacing the statement
    step: int | None = None  # index of the plan step


_new = object.__new__


class _Slot(Protocol):
    """A slot of a class (its member descriptor)."""

    def __set__(self, instance: object, value: object) -> None: ...


def slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    """The setter of slot `name` of `cls`: sets the field of a frozen slotted dataclass
    instance made by `object.__new__`, at a third of the frozen __init__'s cost per field."""
    slot: _Slot = cls.__dict__[name]
    return slot.__set__


_FINDING_FIELDS = ("code", "name", "severity", "message", "help", "location", "fix", "step")
assert Finding.__slots__ == _FINDING_FIELDS, "new_finding() sets every field of Finding"
# Each slot's own setter: a frozen dataclass's __init__ looks each field up by name
# through object.__setattr__, 2.5x the cost of these (the lint of 20,000 statements
# builds 20,000 findings).
_code, _name, _severity, _message, _help, _location, _fix, _step = (
    slot_setter(Finding, name) for name in _FINDING_FIELDS
)


def new_finding(
    code: str,
    name: str,
    severity: Severity,
    message: str,
    help: str,
    location: SourceLocation,
    fix: Fix | None,
    step: int | None,
) -> Finding:
    """`Finding(...)` with every field given, built without the frozen __init__'s cost."""
    f: Finding = _new(Finding)
    _code(f, code)
    _name(f, name)
    _severity(f, severity)
    _message(f, message)
    _help(f, help)
    _location(f, location)
    _fix(f, fix)
    _step(f, step)
    return f
