"""Opaque steps: work the caller runs on its own session, traced as one step.

A plan step can stand for work that is not SQL pgwarden sends: Django's executor
running a `RunPython` migration. The caller maps that step to an `OpaqueStep`;
the tracer then, instead of sending the step's SQL, lets it open its own session
on the rehearsal target, points the lock sampler at that session's backend, and
runs it. What is recorded is what can be seen from outside the session: the
relation locks it held or waited for and for how long (sampled), its duration,
the probe traffic it blocked on the tables it names and those other steps touch,
and the rows it wrote (as the step counts them).
Rows read, WAL and temp files are not separable from the probes' and stay 0,
and there is no lock model to compare with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pgwarden.errors import PgwardenError

__all__ = ["OPAQUE_KIND", "OpaqueFailed", "OpaqueOutcome", "OpaqueStep"]

OPAQUE_KIND = "opaque"  # the `kind` of an opaque step's trace


@dataclass(frozen=True, slots=True)
class OpaqueOutcome:
    """What an opaque step says about its own run."""

    rows_written: int = 0


class OpaqueFailed(PgwardenError):
    """An opaque step failed; the message names what failed and why (becomes RH102)."""

    def __init__(self, message: str, *, sqlstate: str | None = None, state: str = "") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.state = state  # what the failure left behind on the target (rolled back, ...)


class OpaqueStep(Protocol):
    """A step the caller runs itself, on a session it opens on the rehearsal target."""

    @property
    def name(self) -> str:
        """Shown as the step's statement (`app.0003_x: RunPython fill`)."""
        ...

    @property
    def location(self) -> str:
        """Where the step comes from (`path:line:column`)."""
        ...

    @property
    def tables(self) -> tuple[str, ...]:
        """Tables it is likely to lock: probe traffic runs on them (those that exist)."""
        ...

    def open(self, dsn: str) -> int:
        """Open the session on the target `dsn`; return its backend pid."""
        ...

    def run(self) -> OpaqueOutcome:
        """Do the work; raise `OpaqueFailed` (or any exception) when it fails."""
        ...

    def close(self) -> None:
        """Close the session (also after a failure or Ctrl-C); idempotent."""
        ...
