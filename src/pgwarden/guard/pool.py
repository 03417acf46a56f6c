"""Bounded connection pools over psycopg_pool that fail fast and report to a `Guard`.

There is deliberately no way to open a connection outside the pool: `connection()` waits
at most `acquire_timeout_ms` for one of at most `max_size` connections, then raises
`DatabaseUnavailable`. Every connection carries `statement_timeout`, `lock_timeout` and
`idle_in_transaction_session_timeout` from the start (libpq `options`), so a locked table
costs a bounded wait, not a pile-up. The half-open breaker's probe waits only
`BreakerPolicy.probe_lock_timeout_ms` for locks (see `probe`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Self

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from pgwarden.guard.classify import attempt_kind, failure_kind
from pgwarden.guard.core import Guard, Scope, current_scope
from pgwarden.guard.errors import DatabaseUnavailable, GuardConfigError
from pgwarden.guard.probe import checkout, checkout_async, probe_lock_timeout_ms
from pgwarden.pg.connect import connect_hint, describe_dsn, libpq_reason

__all__ = ["AsyncGuardedPool", "GuardedPool", "PoolLimits", "PoolStats", "SessionTimeouts"]


@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    """Server-side timeouts set on every pooled connection (None leaves the server default)."""

    statement_timeout_ms: int | None = 5_000
    lock_timeout_ms: int | None = 1_000
    idle_in_transaction_session_timeout_ms: int | None = 10_000

    def __post_init__(self) -> None:
        for name in (
            "statement_timeout_ms",
            "lock_timeout_ms",
            "idle_in_transaction_session_timeout_ms",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise GuardConfigError(f"{name} must be positive or None")

    def settings(self) -> dict[str, str]:
        """The server settings, e.g. {"lock_timeout": "1000"} (milliseconds)."""
        pairs = {
            "statement_timeout": self.statement_timeout_ms,
            "lock_timeout": self.lock_timeout_ms,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_session_timeout_ms,
        }
        return {k: str(v) for k, v in pairs.items() if v is not None}

    def libpq_options(self) -> str:
        """The libpq `options` string, e.g. "-c statement_timeout=5000 -c lock_timeout=1000"."""
        return " ".join(f"-c {k}={v}" for k, v in self.settings().items())


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """Size and waiting limits of a guarded pool."""

    max_size: int = 10
    min_size: int = 1
    acquire_timeout_ms: int = 500  # well under any client's request timeout
    connect_timeout_s: int = 2  # libpq connect_timeout (seconds, at least 2)
    max_waiting: int = 50  # callers waiting for a connection before refusing at once
    max_idle_s: int = 600
    max_lifetime_s: int = 3_600
    reconnect_timeout_s: int = 300

    def __post_init__(self) -> None:
        if not 0 <= self.min_size <= self.max_size or self.max_size < 1:
            raise GuardConfigError("pool sizes must satisfy 0 <= min_size <= max_size, max >= 1")
        if self.acquire_timeout_ms <= 0 or self.connect_timeout_s < 2:
            raise GuardConfigError("acquire_timeout_ms must be > 0 and connect_timeout_s >= 2")
        if self.max_waiting < 0:
            raise GuardConfigError("max_waiting must not be negative")


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Pool occupancy: total connections, idle ones, callers waiting, the hard maximum."""

    size: int
    available: int
    waiting: int
    max_size: int

    @property
    def in_use(self) -> int:
        return self.size - self.available


def _pool_options(
    conninfo: str, lim: PoolLimits, timeouts: SessionTimeouts, guard: Guard
) -> dict[str, Any]:
    """psycopg_pool options shared by the sync and async pools (opened by the caller)."""
    return {
        "kwargs": _connect_kwargs(conninfo, lim, timeouts),
        "min_size": lim.min_size,
        "max_size": lim.max_size,
        "open": False,
        "timeout": lim.acquire_timeout_ms / 1000,
        "max_waiting": lim.max_waiting,
        "max_idle": lim.max_idle_s,
        "max_lifetime": lim.max_lifetime_s,
        "reconnect_timeout": lim.reconnect_timeout_s,
        "name": guard.name,
    }


def _connect_kwargs(conninfo: str, limits: PoolLimits, timeouts: SessionTimeouts) -> dict[str, Any]:
    existing = str(conninfo_to_dict(conninfo).get("options") or "")
    options = " ".join(part for part in (existing, timeouts.libpq_options()) if part)
    kwargs: dict[str, Any] = {"connect_timeout": limits.connect_timeout_s}
    if options:
        kwargs["options"] = options
    return kwargs


def _stats(raw: dict[str, int], max_size: int) -> PoolStats:
    return PoolStats(
        size=raw.get("pool_size", 0),
        available=raw.get("pool_available", 0),
        waiting=raw.get("requests_waiting", 0),
        max_size=max_size,
    )


class _ConnectFailures:
    """The pool's last failed connection attempt, until an attempt succeeds: what a
    request that got no connection in time is told (the pool connects in the background,
    and psycopg_pool only logs why it could not)."""

    __slots__ = ("last", "target")

    def __init__(self, conninfo: str) -> None:
        self.last: psycopg.OperationalError | None = None
        self.target = describe_dsn(conninfo)  # user@host:port/dbname, no password

    def sync_class(self) -> type[psycopg.Connection[TupleRow]]:
        failures = self

        class _Recorded(psycopg.Connection[TupleRow]):
            @classmethod
            def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
                try:
                    conn = super().connect(conninfo, **kwargs)
                except psycopg.OperationalError as exc:
                    failures.last = exc
                    raise
                failures.last = None
                return conn

        return _Recorded

    def async_class(self) -> type[psycopg.AsyncConnection[TupleRow]]:
        failures = self

        class _Recorded(psycopg.AsyncConnection[TupleRow]):
            @classmethod
            async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
                try:
                    conn = await super().connect(conninfo, **kwargs)
                except psycopg.OperationalError as exc:
                    failures.last = exc
                    raise
                failures.last = None
                return conn

        return _Recorded


def _unavailable(
    guard: Guard, exc: BaseException, acquire_timeout_ms: int, failures: _ConnectFailures
) -> DatabaseUnavailable:
    guard.count_shed(DatabaseUnavailable.reason)
    message = f"no database connection within {acquire_timeout_ms} ms ({type(exc).__name__})"
    failed = failures.last
    if failed is None:  # a full pool, or an attempt still under way
        full = DatabaseUnavailable(message, retry_after_s=1, guard=guard.name)
        full.failure = failure_kind(exc)
        return full
    # libpq's reason names the user and the database, never the password
    reason = libpq_reason(str(failed)) or type(failed).__name__
    shed = DatabaseUnavailable(
        f"{message}: the pool's last connection attempt to {failures.target} failed: {reason}",
        retry_after_s=1,
        guard=guard.name,
    )
    fix = connect_hint(failed, where="the pool's conninfo")
    shed.hint = f"{fix}; retry after 1 s"
    # by class and the hint's advice (which names no value of the conninfo), for CircuitOpen
    shed.failure = (
        f"{failure_kind(exc)}; the pool's last connection attempt failed: "
        f"{attempt_kind(failed)}: {fix}"
    )
    return shed


def _lock_timeout_for(scope: Scope, timeouts: SessionTimeouts) -> int | None:
    """A probe's own lock_timeout, or None for ordinary work (the connection's own)."""
    if not scope.probe:
        return None
    return probe_lock_timeout_ms(
        scope.guard.breaker.policy.probe_lock_timeout_ms, timeouts.lock_timeout_ms
    )


def _pool_failure(pool: _Pool, scope: Scope, exc: BaseException, acquired: bool) -> BaseException:
    """What to raise for `exc` out of a pooled connection: a full pool before the connection
    was handed out is `DatabaseUnavailable` (shed, fail fast); anything else stays itself.
    The scope sees every failure (its breaker counts them)."""
    full = isinstance(exc, (psycopg_pool.PoolTimeout, psycopg_pool.TooManyRequests))
    if full and not acquired:
        shed = _unavailable(pool.guard, exc, pool.limits.acquire_timeout_ms, pool.failures)
        scope.note(shed)  # a failure as `exc` is, naming the last connection attempt too
        return shed
    scope.note(exc)
    return exc


class _Pool:
    """What the sync and async pools share: their guard, limits and session timeouts, and
    their connections counted in the guard's budget."""

    def __init__(
        self,
        conninfo: str,
        guard: Guard,
        limits: PoolLimits | None,
        timeouts: SessionTimeouts | None,
    ) -> None:
        self.guard = guard
        self.limits = limits or PoolLimits()
        self.timeouts = timeouts or SessionTimeouts()
        self.failures = _ConnectFailures(conninfo)
        guard.add_pool(self.limits.max_size)

    def _options(self, conninfo: str) -> dict[str, Any]:
        return _pool_options(conninfo, self.limits, self.timeouts, self.guard)


class GuardedPool(_Pool):
    """A bounded, fail-fast psycopg pool tied to a `Guard` (threads, WSGI, workers)."""

    def __init__(
        self,
        conninfo: str,
        guard: Guard,
        *,
        limits: PoolLimits | None = None,
        timeouts: SessionTimeouts | None = None,
        open: bool = True,
    ) -> None:
        super().__init__(conninfo, guard, limits, timeouts)
        self.pool: psycopg_pool.ConnectionPool[psycopg.Connection[TupleRow]] = (
            psycopg_pool.ConnectionPool(
                conninfo, connection_class=self.failures.sync_class(), **self._options(conninfo)
            )
        )
        if open:
            self.open()

    def open(self) -> None:
        """Start the pool without waiting for the database (it may be down right now)."""
        self.pool.open(wait=False)

    def close(self, timeout_s: float = 5.0) -> None:
        self.pool.close(timeout=timeout_s)

    def __enter__(self) -> GuardedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> PoolStats:
        return _stats(self.pool.get_stats(), self.limits.max_size)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A pooled connection inside the guard's scope (a new scope when none is active)."""
        scope = current_scope()
        if scope is not None and scope.guard is self.guard:
            with self._use(scope) as conn:
                yield conn
            return
        with self.guard.scope() as s, self._use(s) as conn:
            yield conn

    @contextlib.contextmanager
    def _use(self, scope: Scope) -> Iterator[psycopg.Connection[TupleRow]]:
        acquired = False
        try:
            with checkout(self.pool, _lock_timeout_for(scope, self.timeouts)) as conn:
                acquired = True
                yield conn
        except BaseException as exc:
            mapped = _pool_failure(self, scope, exc, acquired)
            if mapped is exc:
                raise
            raise mapped from exc


class AsyncGuardedPool(_Pool):
    """A bounded, fail-fast async psycopg pool tied to a `Guard` (ASGI apps, async workers)."""

    def __init__(
        self,
        conninfo: str,
        guard: Guard,
        *,
        limits: PoolLimits | None = None,
        timeouts: SessionTimeouts | None = None,
    ) -> None:
        super().__init__(conninfo, guard, limits, timeouts)
        self.pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = (
            psycopg_pool.AsyncConnectionPool(
                conninfo, connection_class=self.failures.async_class(), **self._options(conninfo)
            )
        )

    async def open(self) -> None:
        """Start the pool without waiting for the database (it may be down right now)."""
        await self.pool.open(wait=False)

    async def close(self, timeout_s: float = 5.0) -> None:
        await self.pool.close(timeout=timeout_s)

    async def __aenter__(self) -> AsyncGuardedPool:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def stats(self) -> PoolStats:
        return _stats(self.pool.get_stats(), self.limits.max_size)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        """A pooled connection inside the guard's scope (a new scope when none is active)."""
        scope = current_scope()
        if scope is not None and scope.guard is self.guard:
            async with self._use(scope) as conn:
                yield conn
            return
        async with self.guard.ascope() as s, self._use(s) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _use(self, scope: Scope) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        acquired = False
        try:
            async with checkout_async(self.pool, _lock_timeout_for(scope, self.timeouts)) as conn:
                acquired = True
                yield conn
        except BaseException as exc:
            mapped = _pool_failure(self, scope, exc, acquired)
            if mapped is exc:
                raise
            raise mapped from exc
