"""`Guard`: one breaker and one limiter in front of a database; scopes admit work.

A scope is one unit of database-bound work (a request, a task). Entering it passes the
breaker (fails at once when open) and the limiter (may queue briefly); leaving it reports
the outcome to both. Guarded pools used inside a scope report their failures to it, so an
application that catches the database error still trips the breaker.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

from pgwarden.guard.breaker import BreakerPolicy, BreakerState, BreakerTicket, CircuitBreaker
from pgwarden.guard.classify import Outcome, classify, failure_kind
from pgwarden.guard.errors import Shed
from pgwarden.guard.events import GuardObserver, LogObserver
from pgwarden.guard.limit import Limiter, LimitPolicy, Permit

__all__ = ["Guard", "GuardStats", "Scope", "current_scope", "report_exception"]

_active: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "pgwarden_guard_scope", default=None
)


@dataclass(frozen=True, slots=True)
class GuardStats:
    """A snapshot of a guard's state and counters."""

    name: str
    breaker_state: BreakerState
    limit: int
    in_flight: int
    queue_depth: int
    admitted_total: int
    shed_total: dict[str, int] = field(default_factory=dict)
    outcome_total: dict[str, int] = field(default_factory=dict)


class Scope:
    """Admitted work; `finish` it exactly once (later calls are no-ops)."""

    __slots__ = ("_done", "_permit", "_reset", "_ticket", "db_failure", "guard", "start_ns")

    def __init__(self, guard: Guard, ticket: BreakerTicket, permit: Permit) -> None:
        self.guard = guard
        self._ticket = ticket
        self._permit = permit
        self.start_ns = time.monotonic_ns()
        self.db_failure: BaseException | None = None
        self._done = False
        self._reset: contextvars.Token[Scope | None] | None = None

    @property
    def probe(self) -> bool:
        """This work is the half-open breaker's probe (guarded pools shorten its waits)."""
        return self._ticket.probe

    def note(self, exc: BaseException) -> None:
        """Record a database error seen inside the scope, even if the caller handles it."""
        if self.db_failure is None and classify(exc) is Outcome.FAILURE:
            self.db_failure = exc

    def finish(self, exc: BaseException | None = None) -> Outcome:
        """Report the outcome to the breaker and the limiter; deactivate the scope."""
        if self._done:
            return Outcome.IGNORE
        self._done = True
        if self._reset is not None:
            # ValueError: finished from another context (e.g. a WSGI body iterator).
            with contextlib.suppress(ValueError):
                _active.reset(self._reset)
            self._reset = None
        failure: str | None = None
        if self.db_failure is not None:
            outcome = Outcome.FAILURE
            failure = failure_kind(self.db_failure)
        elif exc is not None:
            outcome = classify(exc)
            if outcome is Outcome.FAILURE:
                failure = failure_kind(exc)
        else:
            outcome = Outcome.SUCCESS
        self.guard._finished(self, outcome, failure)
        return outcome

    def _activate(self) -> None:
        self._reset = _active.set(self)


def current_scope() -> Scope | None:
    """The scope active in this context, if any."""
    return _active.get()


def report_exception(exc: BaseException) -> None:
    """Tell the active scope about a database error the application has handled itself."""
    scope = _active.get()
    if scope is not None:
        scope.note(exc)


class Guard:
    """A circuit breaker and an adaptive concurrency limit for one database."""

    def __init__(
        self,
        name: str = "default",
        *,
        breaker: BreakerPolicy | None = None,
        limit: LimitPolicy | None = None,
        observers: Sequence[GuardObserver] | None = None,
    ) -> None:
        self.name = name
        self.observers: list[GuardObserver] = (
            list(observers) if observers is not None else [LogObserver()]
        )
        self.breaker = CircuitBreaker(breaker, name=name, on_change=self._breaker_changed)
        self.limiter = Limiter(limit, name=name, on_change=self._limit_changed)
        self._pool_connections = 0
        self._lock = threading.Lock()
        self._admitted = 0
        self._shed: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()

    # -- admission -----------------------------------------------------------------

    def enter(self) -> Scope:
        """Admit work (blocking up to the queue timeout) and activate its scope."""
        ticket = self._ticket()
        try:
            permit = self.limiter.acquire()
        except BaseException as exc:
            self._not_admitted(ticket, exc)
            raise
        return self._admit(ticket, permit)

    def _not_admitted(self, ticket: BreakerTicket, exc: BaseException) -> None:
        """Work that never got a permit neither counts for nor against the breaker."""
        self.breaker.record(ticket, Outcome.IGNORE)
        if isinstance(exc, Shed):
            self._count_shed(exc.reason)

    async def enter_async(self) -> Scope:
        """Admit work (awaiting up to the queue timeout) and activate its scope."""
        ticket = self._ticket()
        try:
            permit = await self.limiter.acquire_async()
        except BaseException as exc:
            self._not_admitted(ticket, exc)
            raise
        return self._admit(ticket, permit)

    @contextlib.contextmanager
    def scope(self) -> Iterator[Scope]:
        """`with guard.scope():` around database-bound work (threads, workers)."""
        existing = _active.get()
        if existing is not None and existing.guard is self:
            yield existing
            return
        s = self.enter()
        try:
            yield s
        except BaseException as exc:
            s.finish(exc)
            raise
        s.finish()

    @contextlib.asynccontextmanager
    async def ascope(self) -> AsyncIterator[Scope]:
        """`async with guard.ascope():` around database-bound work."""
        existing = _active.get()
        if existing is not None and existing.guard is self:
            yield existing
            return
        s = await self.enter_async()
        try:
            yield s
        except BaseException as exc:
            s.finish(exc)
            raise
        s.finish()

    # -- reading -------------------------------------------------------------------

    def stats(self) -> GuardStats:
        with self._lock:
            return GuardStats(
                name=self.name,
                breaker_state=self.breaker.state,
                limit=self.limiter.limit,
                in_flight=self.limiter.inflight,
                queue_depth=self.limiter.queue_depth,
                admitted_total=self._admitted,
                shed_total=dict(self._shed),
                outcome_total=dict(self._outcomes),
            )

    def add_pool(self, max_size: int) -> None:
        """A guarded pool of `max_size` connections serves this guard: the concurrency
        limit never exceeds the connections of all its pools together."""
        with self._lock:
            self._pool_connections += max_size
            total = self._pool_connections
        self.limiter.cap(total)

    def count_shed(self, reason: str) -> None:
        """Count work refused outside `enter` (e.g. a pool timeout turned into a 503)."""
        self._count_shed(reason)

    # -- internals -----------------------------------------------------------------

    def _ticket(self) -> BreakerTicket:
        try:
            return self.breaker.acquire()
        except Shed as exc:
            self._count_shed(exc.reason)
            raise

    def _admit(self, ticket: BreakerTicket, permit: Permit) -> Scope:
        s = Scope(self, ticket, permit)
        s._activate()
        with self._lock:
            self._admitted += 1
        for o in self.observers:
            o.admitted(self.name, permit.queued_ns / 1e9)
        return s

    def _finished(self, scope: Scope, outcome: Outcome, failure: str | None = None) -> None:
        self.breaker.record(scope._ticket, outcome, failure=failure)
        scope._permit.release(outcome)
        with self._lock:
            self._outcomes[outcome.value] += 1
        duration_s = (time.monotonic_ns() - scope.start_ns) / 1e9
        for o in self.observers:
            o.finished(self.name, outcome.value, duration_s)

    def _count_shed(self, reason: str) -> None:
        with self._lock:
            self._shed[reason] += 1
        for o in self.observers:
            o.shed(self.name, reason)

    def _breaker_changed(
        self, old: BreakerState, new: BreakerState, failure_rate: float, calls: int
    ) -> None:
        why: str | None = None
        if new is BreakerState.OPEN:
            # Work queued for a slot would only reach a database known to be failing.
            self.limiter.refuse_queued(self.breaker.refusal)
            why = self.breaker.why()
        for o in self.observers:
            o.breaker_transition(self.name, old, new, failure_rate, calls, why=why)

    def _limit_changed(self, old: int, new: int) -> None:
        for o in self.observers:
            o.limit_changed(self.name, old, new)
