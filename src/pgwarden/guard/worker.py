"""Guard background work (Celery-style tasks, ingestion loops) with the same breaker and limit.

    @guarded(guard)
    def ingest(batch): ...

raises `Shed` (with `retry_after_s`) instead of running when the database is failing or
the limit is reached; retry the task later instead of piling onto the database.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from pgwarden.guard.core import Guard

__all__ = ["guarded"]

P = ParamSpec("P")
R = TypeVar("R")


def guarded(guard: Guard) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a sync or async function so that each call runs in a guard scope."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(fn):
            afn: Callable[P, Awaitable[object]] = fn

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> object:
                async with guard.ascope():
                    return await afn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with guard.scope():
                return fn(*args, **kwargs)

        return run

    return decorate
