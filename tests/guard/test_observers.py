"""Observers written against either breaker hook are called (no database needed)."""

import logging

import psycopg
import pytest

from pgwarden.guard import BreakerPolicy, BreakerState, Guard, LogObserver


def _trip(guard: Guard) -> None:
    for _ in range(2):
        with pytest.raises(psycopg.errors.LockNotAvailable), guard.scope():
            raise psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")


def _guard(observer: LogObserver) -> Guard:
    return Guard(
        "orders-db",
        breaker=BreakerPolicy(consecutive_failures=2, open_ms=30_000),
        observers=[observer],
    )


def test_a_log_observer_subclass_overriding_breaker_changed_is_called(caplog):
    """Code written before `breaker_transition` existed overrides `breaker_changed` on a
    LogObserver subclass; the guard still reaches it (and it replaces the log line)."""

    class Paging(LogObserver):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[BreakerState, BreakerState]] = []

        def breaker_changed(
            self, guard: str, old: BreakerState, new: BreakerState, failure_rate: float, calls: int
        ) -> None:
            self.seen.append((old, new))

    paging = Paging()
    with caplog.at_level(logging.INFO, logger="pgwarden.guard"):
        _trip(_guard(paging))
    assert paging.seen == [(BreakerState.CLOSED, BreakerState.OPEN)]
    assert not [r for r in caplog.records if getattr(r, "to_state", None) == "open"]


def test_a_subclass_calling_super_keeps_the_log_line(caplog):
    class Counting(LogObserver):
        calls = 0

        def breaker_changed(
            self, guard: str, old: BreakerState, new: BreakerState, failure_rate: float, calls: int
        ) -> None:
            Counting.calls += 1
            super().breaker_changed(guard, old, new, failure_rate, calls)

    with caplog.at_level(logging.INFO, logger="pgwarden.guard"):
        _trip(_guard(Counting()))
    assert Counting.calls == 1
    [opened] = [r for r in caplog.records if getattr(r, "to_state", None) == "open"]
    assert opened.levelname == "WARNING"


def test_the_plain_log_observer_says_why(caplog):
    with caplog.at_level(logging.INFO, logger="pgwarden.guard"):
        _trip(_guard(LogObserver()))
    [opened] = [r for r in caplog.records if getattr(r, "to_state", None) == "open"]
    assert "2 of 2 calls" in opened.getMessage() and opened.why
