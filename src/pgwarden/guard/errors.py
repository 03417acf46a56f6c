"""Errors raised by `pgwarden.guard`; all derive from `pgwarden.errors.PgwardenError`.

```
PgwardenError
└── GuardError                 root of the guard's errors
    ├── GuardConfigError       an invalid policy or pool setting
    └── Shed                   work refused to protect the database; .reason, .retry_after_s
        ├── CircuitOpen        the breaker is open (or half-open with its probes taken)
        ├── LimitReached       concurrency limit reached: queue full, stalled or wait timed out
        └── DatabaseUnavailable  no pooled connection in time, or a connect/lock/statement timeout
```
"""

from __future__ import annotations

from pgwarden.errors import PgwardenError

__all__ = [
    "CircuitOpen",
    "DatabaseUnavailable",
    "GuardConfigError",
    "GuardError",
    "LimitReached",
    "Shed",
]


class GuardError(PgwardenError):
    """Root of the guard's errors."""


class GuardConfigError(GuardError):
    """A policy or pool setting is out of range."""


class Shed(GuardError):
    """Work was refused without waiting on the database; retry after `retry_after_s`."""

    reason: str = "shed"

    def __init__(self, message: str, *, retry_after_s: int, guard: str) -> None:
        super().__init__(message, hint=f"retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s
        self.guard = guard


class CircuitOpen(Shed):
    """The circuit breaker is open: recent database calls failed. The message says how many
    of how many, the last failure's kind (by SQLSTATE) and when it probes again."""

    reason = "circuit_open"


class LimitReached(Shed):
    """The concurrency limit is reached and the request could not queue or waited too long."""

    reason = "limit"

    def __init__(
        self, message: str, *, retry_after_s: int, guard: str, reason: str = "limit"
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s, guard=guard)
        self.reason = reason


class DatabaseUnavailable(Shed):
    """The database did not answer in time (pool, connect, lock or statement timeout)."""

    reason = "database"
    # what failed, by SQLSTATE and class only (no conninfo): CircuitOpen names it
    failure: str | None = None
