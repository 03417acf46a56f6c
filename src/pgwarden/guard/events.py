"""Observers of guard events; `LogObserver` writes one structured log record per change
(the opening's says why, in `CircuitOpen`'s words)."""

from __future__ import annotations

import logging

from pgwarden.guard.breaker import BreakerState

__all__ = ["GuardObserver", "LogObserver"]

logger = logging.getLogger("pgwarden.guard")


class GuardObserver:
    """Base observer: override the events you need; every method is a no-op here."""

    def breaker_changed(
        self, guard: str, old: BreakerState, new: BreakerState, failure_rate: float, calls: int
    ) -> None:
        """The breaker moved from `old` to `new`."""

    def breaker_transition(
        self,
        guard: str,
        old: BreakerState,
        new: BreakerState,
        failure_rate: float,
        calls: int,
        *,
        why: str | None,
    ) -> None:
        """The breaker moved from `old` to `new`; `why` says why it opened, as `CircuitOpen`
        does (None when it did not open). The guard calls this one; by default it calls
        `breaker_changed`, so an observer overrides either."""
        self.breaker_changed(guard, old, new, failure_rate, calls)

    def limit_changed(self, guard: str, old: int, new: int) -> None:
        """The adaptive concurrency limit moved."""

    def admitted(self, guard: str, queued_s: float) -> None:
        """Work was admitted after `queued_s` in the queue (0 when not queued)."""

    def shed(self, guard: str, reason: str) -> None:
        """Work was refused: circuit_open, limit, stalled, queue_timeout or database."""

    def finished(self, guard: str, outcome: str, duration_s: float) -> None:
        """Admitted work finished with outcome success, failure or ignore."""


class LogObserver(GuardObserver):
    """Logs breaker transitions (warning when opening, saying why) and limit changes (debug)."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logger

    def breaker_changed(
        self, guard: str, old: BreakerState, new: BreakerState, failure_rate: float, calls: int
    ) -> None:
        self._log_breaker(guard, old, new, failure_rate, calls, why=None)

    def breaker_transition(
        self,
        guard: str,
        old: BreakerState,
        new: BreakerState,
        failure_rate: float,
        calls: int,
        *,
        why: str | None,
    ) -> None:
        if type(self).breaker_changed is not LogObserver.breaker_changed:
            # A subclass written against `breaker_changed` gets it, as it did before
            # `breaker_transition` existed (its super() call writes the line, without why).
            self.breaker_changed(guard, old, new, failure_rate, calls)
            return
        self._log_breaker(guard, old, new, failure_rate, calls, why=why)

    def _log_breaker(
        self,
        guard: str,
        old: BreakerState,
        new: BreakerState,
        failure_rate: float,
        calls: int,
        *,
        why: str | None,
    ) -> None:
        level = logging.WARNING if new is BreakerState.OPEN else logging.INFO
        self.log.log(
            level,
            "guard %s: circuit %s -> %s (failure rate %.2f over %d calls)%s",
            guard,
            old.value,
            new.value,
            failure_rate,
            calls,
            f": {why}" if why else "",
            extra={
                "event": "pgwarden.guard.breaker",
                "guard": guard,
                "from_state": old.value,
                "to_state": new.value,
                "failure_rate": failure_rate,
                "calls": calls,
                "why": why,
            },
        )

    def limit_changed(self, guard: str, old: int, new: int) -> None:
        self.log.debug(
            "guard %s: concurrency limit %d -> %d",
            guard,
            old,
            new,
            extra={"event": "pgwarden.guard.limit", "guard": guard, "old": old, "new": new},
        )
