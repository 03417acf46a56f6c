"""Adaptive concurrency limit with a short queue, for database-bound work.

Two limit algorithms, after Netflix's concurrency-limits:
- `AimdPolicy`: additive increase while the limit is in use, multiplicative decrease on a
  drop (a database failure) or a sample slower than `latency_threshold_ms`.
- `GradientPolicy`: limit * clamp(tolerance * long-term RTT / short-term RTT, 0.5, 1) plus
  a little headroom, smoothed; a drop backs off multiplicatively.

`Limiter` admits while in-flight < limit, otherwise queues up to `queue_size` waiters for at
most `queue_timeout_ms`. When nothing has succeeded for a whole queue timeout (the database
is stuck: failures such as lock timeouts are not progress) new arrivals are shed at once
instead of queueing, and `refuse_queued` sheds the waiting ones at once (the guard calls it
when its breaker opens). Usable from threads and from event loops at the same time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from pgwarden.guard.classify import Outcome
from pgwarden.guard.errors import GuardConfigError, LimitReached, Shed

__all__ = [
    "Aimd",
    "AimdPolicy",
    "Gradient",
    "GradientPolicy",
    "LimitAlgorithm",
    "LimitPolicy",
    "Limiter",
    "Permit",
]

Clock = Callable[[], int]
LimitListener = Callable[[int, int], None]


class LimitAlgorithm(Protocol):
    """Turns samples into a concurrency limit."""

    @property
    def limit(self) -> int: ...

    def update(self, *, rtt_ns: int, inflight: int, dropped: bool) -> int:
        """Feed one finished call; return the new limit."""
        ...


def _check_bounds(initial: int, lo: int, hi: int) -> None:
    if not 1 <= lo <= initial <= hi:
        raise GuardConfigError("limits must satisfy 1 <= min_limit <= initial_limit <= max_limit")


@dataclass(frozen=True, slots=True)
class AimdPolicy:
    """Additive-increase / multiplicative-decrease limit."""

    initial_limit: int = 10
    min_limit: int = 2
    max_limit: int = 100
    backoff_ratio: float = 0.9
    latency_threshold_ms: int = 2_000  # a slower sample counts as a drop

    def __post_init__(self) -> None:
        _check_bounds(self.initial_limit, self.min_limit, self.max_limit)
        if not 0.5 <= self.backoff_ratio < 1.0:
            raise GuardConfigError("backoff_ratio must be in [0.5, 1)")

    def build(self) -> Aimd:
        return Aimd(self)


class Aimd:
    """State of an AIMD limit."""

    def __init__(self, policy: AimdPolicy) -> None:
        self.policy = policy
        self._limit = float(policy.initial_limit)

    @property
    def limit(self) -> int:
        return int(self._limit)

    def update(self, *, rtt_ns: int, inflight: int, dropped: bool) -> int:
        p = self.policy
        if dropped or rtt_ns > p.latency_threshold_ms * 1_000_000:
            self._limit = max(float(p.min_limit), math.floor(self._limit * p.backoff_ratio))
        elif inflight * 2 >= self._limit:
            self._limit = min(float(p.max_limit), self._limit + 1)
        return self.limit


@dataclass(frozen=True, slots=True)
class GradientPolicy:
    """Latency-gradient limit: shrinks when short-term RTT rises above the long-term RTT."""

    initial_limit: int = 10
    min_limit: int = 2
    max_limit: int = 100
    tolerance: float = 1.5  # short RTT may reach tolerance * long RTT before shrinking
    smoothing: float = 0.2
    headroom: int = 4  # added to limit * gradient so that growth is possible
    long_window_samples: int = 600
    short_window_samples: int = 10
    backoff_ratio: float = 0.9

    def __post_init__(self) -> None:
        _check_bounds(self.initial_limit, self.min_limit, self.max_limit)
        if self.tolerance < 1.0 or not 0.0 < self.smoothing <= 1.0:
            raise GuardConfigError("tolerance must be >= 1 and smoothing in (0, 1]")
        if self.long_window_samples < 1 or self.short_window_samples < 1:
            raise GuardConfigError("sample windows must be at least 1")

    def build(self) -> Gradient:
        return Gradient(self)


class Gradient:
    """State of a gradient limit."""

    def __init__(self, policy: GradientPolicy) -> None:
        self.policy = policy
        self._limit = float(policy.initial_limit)
        self._long_ns = 0.0
        self._short_ns = 0.0
        self._samples = 0

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def rtt_ns(self) -> tuple[float, float]:
        """(long-term, short-term) smoothed RTT in nanoseconds."""
        return self._long_ns, self._short_ns

    def update(self, *, rtt_ns: int, inflight: int, dropped: bool) -> int:
        p = self.policy
        if dropped:
            self._limit = max(float(p.min_limit), self._limit * p.backoff_ratio)
            return self.limit
        self._samples += 1
        if self._samples == 1:
            self._long_ns = self._short_ns = float(rtt_ns)
        else:
            long_a = 2.0 / (min(self._samples, p.long_window_samples) + 1)
            short_a = 2.0 / (p.short_window_samples + 1)
            self._long_ns += long_a * (rtt_ns - self._long_ns)
            self._short_ns += short_a * (rtt_ns - self._short_ns)
        if self._long_ns > 2 * self._short_ns:
            # Latency improved for good: let the baseline follow down.
            self._long_ns *= 0.95
        if inflight * 2 < self._limit:
            return self.limit  # app-limited: no evidence for a higher limit
        gradient = max(0.5, min(1.0, p.tolerance * self._long_ns / max(self._short_ns, 1.0)))
        target = self._limit * gradient + p.headroom
        new = self._limit * (1 - p.smoothing) + target * p.smoothing
        self._limit = max(float(p.min_limit), min(float(p.max_limit), new))
        return self.limit


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """The algorithm plus the queue in front of it."""

    algorithm: AimdPolicy | GradientPolicy = AimdPolicy()
    queue_size: int = 10
    queue_timeout_ms: int = 50
    retry_after_s: int = 1
    retry_after_jitter_s: int = 2

    def __post_init__(self) -> None:
        if self.queue_size < 0 or self.queue_timeout_ms < 0:
            raise GuardConfigError("queue_size and queue_timeout_ms must not be negative")
        if self.retry_after_s < 1 or self.retry_after_jitter_s < 0:
            raise GuardConfigError("retry_after_s must be >= 1 and the jitter >= 0")


class _Waiter:
    __slots__ = ("event", "future", "gone", "granted", "loop", "permit", "refusal")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[None] | None,
        event: threading.Event | None,
    ) -> None:
        self.loop = loop
        self.future = future
        self.event = event
        self.granted = False
        self.gone = False
        self.permit: Permit | None = None
        self.refusal: Shed | None = None

    def wake(self) -> None:
        if self.event is not None:
            self.event.set()
        elif self.loop is not None and self.future is not None:
            fut = self.future

            def _set() -> None:
                if not fut.done():
                    fut.set_result(None)

            # RuntimeError: the loop is closed, and the waiter with it.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(_set)


class Permit:
    """One admitted unit of work; `release` it exactly once (later calls are no-ops)."""

    __slots__ = ("_limiter", "_released", "inflight", "queued_ns", "start_ns")

    def __init__(self, limiter: Limiter, start_ns: int, inflight: int, queued_ns: int) -> None:
        self._limiter = limiter
        self.start_ns = start_ns
        self.inflight = inflight
        self.queued_ns = queued_ns
        self._released = False

    def release(self, outcome: Outcome) -> None:
        if self._released:
            return
        self._released = True
        self._limiter._release(self, outcome)


class Limiter:
    """Caps concurrent database-bound work with an adaptive limit and a short queue."""

    def __init__(
        self,
        policy: LimitPolicy | None = None,
        *,
        name: str = "default",
        clock: Clock = time.monotonic_ns,
        on_change: LimitListener | None = None,
    ) -> None:
        self.policy = policy or LimitPolicy()
        self.name = name
        self.algorithm: LimitAlgorithm = self.policy.algorithm.build()
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._inflight = 0
        self._queue: collections.deque[_Waiter] = collections.deque()
        self._last_progress_ns = clock()

    @property
    def limit(self) -> int:
        return self.algorithm.limit

    def cap(self, most: int) -> None:
        """Never let the limit exceed `most` (the connections the guard's pools hold): work
        admitted beyond them would only wait for a connection. Call it before traffic; the
        algorithm starts afresh within the new bounds."""
        algo = self.policy.algorithm
        bounded = replace(
            algo,
            max_limit=min(algo.max_limit, most),
            initial_limit=min(algo.initial_limit, most),
            min_limit=min(algo.min_limit, most),
        )
        with self._lock:
            self.algorithm = bounded.build()

    @property
    def inflight(self) -> int:
        return self._inflight

    @property
    def queue_depth(self) -> int:
        with self._lock:
            return len(self._queue)

    # -- admission -----------------------------------------------------------------

    def _shed(self, reason: str, why: str) -> LimitReached:
        p = self.policy
        return LimitReached(
            f"database concurrency limit {self.name!r} reached ({why})",
            retry_after_s=p.retry_after_s + random.randint(0, p.retry_after_jitter_s),
            guard=self.name,
            reason=reason,
        )

    def _admit_locked(self, now: int, queued_ns: int = 0) -> Permit:
        if self._inflight == 0:
            self._last_progress_ns = now
        self._inflight += 1
        return Permit(self, now, self._inflight, queued_ns)

    def _try_locked(self, now: int) -> Permit | None:
        """Admit now, or return None to queue, or raise LimitReached."""
        if self._inflight < self.algorithm.limit and not self._queue:
            return self._admit_locked(now)
        if self.policy.queue_size == 0 or self.policy.queue_timeout_ms == 0:
            raise self._shed("limit", f"{self._inflight} in flight, no queue")
        if len(self._queue) >= self.policy.queue_size:
            raise self._shed("limit", f"{self._inflight} in flight, queue full")
        if now - self._last_progress_ns > self.policy.queue_timeout_ms * 1_000_000:
            raise self._shed("stalled", "nothing succeeded within the queue timeout")
        return None

    def try_acquire(self) -> Permit:
        """Admit without waiting or raise `LimitReached`."""
        with self._lock:
            now = self._clock()
            if self._inflight < self.algorithm.limit and not self._queue:
                return self._admit_locked(now)
        raise self._shed("limit", "no free slot")

    def acquire(self) -> Permit:
        """Admit, waiting in the queue up to `queue_timeout_ms` (blocking)."""
        with self._lock:
            now = self._clock()
            permit = self._try_locked(now)
            if permit is not None:
                return permit
            waiter = _Waiter(None, None, threading.Event())
            self._queue.append(waiter)
        assert waiter.event is not None
        waiter.event.wait(self.policy.queue_timeout_ms / 1000)
        return self._granted(waiter, start=now)

    async def acquire_async(self) -> Permit:
        """Admit, waiting in the queue up to `queue_timeout_ms` (awaitable, cancel-safe)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            now = self._clock()
            permit = self._try_locked(now)
            if permit is not None:
                return permit
            fut: asyncio.Future[None] = loop.create_future()
            waiter = _Waiter(loop, fut, None)
            self._queue.append(waiter)
        try:
            async with asyncio.timeout(self.policy.queue_timeout_ms / 1000):
                await fut
        except TimeoutError:
            pass
        except BaseException:
            granted = self._after_wait(waiter, start=now)
            if granted is not None:
                granted.release(Outcome.IGNORE)
            raise
        return self._granted(waiter, start=now)

    def refuse_queued(self, refusal: Callable[[], Shed]) -> int:
        """Shed every queued waiter at once with `refusal()`; returns how many."""
        with self._lock:
            waiters = list(self._queue)
            self._queue.clear()
            for w in waiters:
                w.refusal = refusal()
        for w in waiters:
            w.wake()
        return len(waiters)

    def _granted(self, waiter: _Waiter, *, start: int) -> Permit:
        """The permit a queued waiter got, or the reason it was shed."""
        permit = self._after_wait(waiter, start=start)
        if permit is not None:
            return permit
        if waiter.refusal is not None:
            raise waiter.refusal
        raise self._shed("queue_timeout", "queue wait timed out")

    def _after_wait(self, waiter: _Waiter, *, start: int) -> Permit | None:
        """The waiter's permit if it was granted; else take it off the queue."""
        with self._lock:
            waiter.gone = True
            permit = waiter.permit
            if permit is None:
                with contextlib.suppress(ValueError):
                    self._queue.remove(waiter)
                return None
            permit.queued_ns = permit.start_ns - start
            return permit

    # -- release -------------------------------------------------------------------

    def _release(self, permit: Permit, outcome: Outcome) -> None:
        change: tuple[int, int] | None = None
        woken: list[_Waiter] = []
        with self._lock:
            now = self._clock()
            self._inflight -= 1
            if outcome is Outcome.SUCCESS:  # a failure (lock timeout) is no progress
                self._last_progress_ns = now
            if outcome is not Outcome.IGNORE:
                old = self.algorithm.limit
                new = self.algorithm.update(
                    rtt_ns=now - permit.start_ns,
                    inflight=permit.inflight,
                    dropped=outcome is Outcome.FAILURE,
                )
                if new != old:
                    change = (old, new)
            while self._queue and self._inflight < self.algorithm.limit:
                w = self._queue.popleft()
                w.granted = True
                w.permit = self._admit_locked(now)
                woken.append(w)
        for w in woken:
            w.wake()
        if change is not None and self._on_change is not None:
            self._on_change(*change)
