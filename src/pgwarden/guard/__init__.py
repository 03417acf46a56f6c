"""pgwarden.guard: keep an application failing fast, not piling up, while its database is
briefly unavailable.

    guard = Guard("main")
    pool = AsyncGuardedPool(DATABASE_URL, guard)
    app = GuardMiddleware(app, guard, exempt_paths=["/healthz"])

Never imports the SQL parser; needs only psycopg and psycopg_pool. Metrics live in
`pgwarden.guard.metrics` (needs prometheus-client).
"""

from __future__ import annotations

from pgwarden.guard.asgi import GuardMiddleware
from pgwarden.guard.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from pgwarden.guard.classify import Outcome, classify
from pgwarden.guard.core import Guard, GuardStats, Scope, current_scope, report_exception
from pgwarden.guard.errors import (
    CircuitOpen,
    DatabaseUnavailable,
    GuardConfigError,
    GuardError,
    LimitReached,
    Shed,
)
from pgwarden.guard.events import GuardObserver, LogObserver
from pgwarden.guard.limit import AimdPolicy, GradientPolicy, Limiter, LimitPolicy
from pgwarden.guard.pool import (
    AsyncGuardedPool,
    GuardedPool,
    PoolLimits,
    PoolStats,
    SessionTimeouts,
)
from pgwarden.guard.worker import guarded
from pgwarden.guard.wsgi import GuardWSGIMiddleware

__all__ = [
    "AimdPolicy",
    "AsyncGuardedPool",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "DatabaseUnavailable",
    "GradientPolicy",
    "Guard",
    "GuardConfigError",
    "GuardError",
    "GuardMiddleware",
    "GuardObserver",
    "GuardStats",
    "GuardWSGIMiddleware",
    "GuardedPool",
    "LimitPolicy",
    "LimitReached",
    "Limiter",
    "LogObserver",
    "Outcome",
    "PoolLimits",
    "PoolStats",
    "Scope",
    "SessionTimeouts",
    "Shed",
    "classify",
    "current_scope",
    "guarded",
    "report_exception",
]
