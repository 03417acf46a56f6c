"""Circuit breaker: closed → open → half-open (one probe at a time) → closed.

It opens on either of two signals, as in Envoy's outlier detection: `consecutive_failures`
failures in a row (a sudden lock or outage, even when the window is full of successes
from a healthy period before), or a failure rate over a rolling window (a partial,
intermittent failure). While half-open exactly one probe is in flight; the rest are shed.
A failed probe opens it again for twice as long as before, up to `max_open_ms`.

`CircuitOpen` says why: how many of the window's calls had failed when it opened (and
how many in a row), how many probes failed since, the last failure's kind (by SQLSTATE,
as the guard reports it: `record(..., failure=...)`), and when it probes again (or that a
probe is checking now, or that the next call is the probe: an open period that has run
out reads as half-open).

Thread-safe; the lock is held only for bookkeeping, never across I/O, so one breaker
serves threads and event loops alike.
"""

from __future__ import annotations

import enum
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pgwarden.guard.classify import Outcome
from pgwarden.guard.errors import CircuitOpen, GuardConfigError

__all__ = ["BreakerPolicy", "BreakerState", "BreakerTicket", "CircuitBreaker"]

Clock = Callable[[], int]
StateListener = Callable[["BreakerState", "BreakerState", float, int], None]


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def gauge(self) -> int:
        """0 closed, 1 half-open, 2 open (for a Prometheus gauge)."""
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When to open, how long to stay open, how many probes close it again."""

    window_ms: int = 5_000  # rolling window for the failure rate
    window_buckets: int = 10
    min_calls: int = 10  # no decision on fewer calls in the window
    failure_rate: float = 0.5  # open at or above this share of failures
    consecutive_failures: int = 5  # open after this many failures in a row (0: never)
    open_ms: int = 1_000  # fail immediately for this long, then probe
    max_open_ms: int | None = None  # a failed probe doubles the period, up to (2 x open_ms)
    half_open_probes: int = 1  # successful probes needed to close, one in flight at a time
    probe_lock_timeout_ms: int | None = 100  # lock_timeout of a probe (guarded pools)
    retry_after_jitter_s: int = 2  # Retry-After = remaining open time + 0..jitter s

    def __post_init__(self) -> None:
        if self.window_ms <= 0 or self.window_buckets <= 0 or self.window_ms < self.window_buckets:
            raise GuardConfigError("window_ms and window_buckets must be positive, ms >= buckets")
        if self.min_calls < 1 or self.half_open_probes < 1:
            raise GuardConfigError("min_calls and half_open_probes must be at least 1")
        if self.consecutive_failures < 0:
            raise GuardConfigError("consecutive_failures must not be negative (0 turns it off)")
        if self.probe_lock_timeout_ms is not None and self.probe_lock_timeout_ms <= 0:
            raise GuardConfigError("probe_lock_timeout_ms must be positive or None")
        if not 0.0 < self.failure_rate <= 1.0:
            raise GuardConfigError("failure_rate must be in (0, 1]")
        if self.open_ms < 0 or self.retry_after_jitter_s < 0:
            raise GuardConfigError("open_ms and retry_after_jitter_s must not be negative")
        if self.max_open_ms is not None and self.max_open_ms < self.open_ms:
            raise GuardConfigError("max_open_ms must be at least open_ms (or None: 2 x open_ms)")

    @property
    def longest_open_ms(self) -> int:
        """The longest open period: `max_open_ms`, by default twice `open_ms`."""
        return self.max_open_ms if self.max_open_ms is not None else 2 * self.open_ms


@dataclass(slots=True)
class BreakerTicket:
    """Admission through the breaker; give it back with `CircuitBreaker.record`."""

    generation: int
    probe: bool
    done: bool = False


class CircuitBreaker:
    """A circuit breaker keyed on database-unavailability outcomes (see `classify`)."""

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        *,
        name: str = "default",
        clock: Clock = time.monotonic_ns,
        on_change: StateListener | None = None,
    ) -> None:
        self.policy = policy or BreakerPolicy()
        self.name = name
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._opened_ns = 0
        self._probes_out = 0
        self._probe_successes = 0
        self._streak = 0  # consecutive failures while closed
        self._last_failure: str | None = None  # the kind of the last failure recorded
        self._opened_after = (0, 0, 0)  # (failures, calls, in a row) when it opened from closed
        self._failed_probes = 0  # probes failed since it opened from closed
        self._open_ns = self.policy.open_ms * 1_000_000  # this open period
        p = self.policy
        self._bucket_ns = p.window_ms * 1_000_000 // p.window_buckets
        self._epochs = [-1] * p.window_buckets
        self._calls = [0] * p.window_buckets
        self._failures = [0] * p.window_buckets

    # -- reading -------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """Current state (an elapsed open period reads as half-open)."""
        with self._lock:
            change = self._tick_locked(self._clock())
            state = self._state
        self._notify(change)
        return state

    def window(self) -> tuple[int, int]:
        """(calls, failures) in the rolling window."""
        with self._lock:
            return self._window_locked(self._clock())

    def why(self) -> str:
        """Why it opened, in `CircuitOpen`'s words: '5 of 105 calls in the last 5 s failed,
        the last 5 in a row; then 1 probe failed; last failure: lock timeout (SQLSTATE 55P03
        LockNotAvailable)' (kinds by SQLSTATE and class: no conninfo value)."""
        with self._lock:
            return self._why_locked()

    # -- admission -----------------------------------------------------------------

    def acquire(self) -> BreakerTicket:
        """Admit one call or raise `CircuitOpen` at once."""
        notify: tuple[BreakerState, BreakerState, float, int] | None = None
        with self._lock:
            now = self._clock()
            notify = self._tick_locked(now)
            if self._state is BreakerState.CLOSED:
                ticket = BreakerTicket(self._generation, probe=False)
            elif self._state is BreakerState.HALF_OPEN and self._probes_out == 0:
                self._probes_out += 1
                ticket = BreakerTicket(self._generation, probe=True)
            else:
                state = self._state
                remaining_ns = max(0, self._opened_ns + self._open_ns - now)
                probing = self._probes_out > 0
                ticket = None
        self._notify(notify)
        if ticket is None:
            raise self._refusal(state, remaining_ns, probing=probing)
        return ticket

    def refusal(self) -> CircuitOpen:
        """The `CircuitOpen` for work refused elsewhere (the queue, as the breaker opens),
        saying what `acquire` would do now: an open period that has run out reads as
        half-open with the next call its probe. A read: the state is moved (and the change
        told) by the next `acquire` or `state`, never from inside a change callback."""
        with self._lock:
            now = self._clock()
            state = self._state
            remaining_ns = max(0, self._opened_ns + self._open_ns - now)
            probing = self._probes_out > 0
            if state is BreakerState.OPEN and remaining_ns == 0:  # as `_tick_locked` sees it
                state, probing = BreakerState.HALF_OPEN, False
        return self._refusal(state, remaining_ns, probing=probing)

    def record(
        self, ticket: BreakerTicket, outcome: Outcome, *, failure: str | None = None
    ) -> None:
        """Report how an admitted call ended. Idempotent per ticket. `failure`: what the
        failure was (`classify.failure_kind`), named by `CircuitOpen` (no conninfo in it)."""
        notify: tuple[BreakerState, BreakerState, float, int] | None = None
        with self._lock:
            if ticket.done:
                return
            ticket.done = True
            now = self._clock()
            current = ticket.generation == self._generation
            if current and outcome is Outcome.FAILURE and failure is not None:
                self._last_failure = failure
            if ticket.probe:
                # A stale probe (from an earlier period) frees nothing and decides nothing.
                if current:
                    self._probes_out -= 1
                    if outcome is Outcome.FAILURE:
                        notify = self._open_locked(now, BreakerState.HALF_OPEN)
                    elif outcome is Outcome.SUCCESS:
                        self._probe_successes += 1
                        if self._probe_successes >= self.policy.half_open_probes:
                            notify = self._close_locked()
            elif current and self._state is BreakerState.CLOSED and outcome is not Outcome.IGNORE:
                failed = outcome is Outcome.FAILURE
                self._add_locked(now, failed)
                self._streak = self._streak + 1 if failed else 0
                if self._should_open_locked(now):
                    notify = self._open_locked(now, BreakerState.CLOSED)
        self._notify(notify)

    # -- internals -----------------------------------------------------------------

    def _should_open_locked(self, now: int) -> bool:
        p = self.policy
        if p.consecutive_failures and self._streak >= p.consecutive_failures:
            return True
        calls, failures = self._window_locked(now)
        return calls >= p.min_calls and failures / calls >= p.failure_rate

    def _refusal(self, state: BreakerState, remaining_ns: int, *, probing: bool) -> CircuitOpen:
        with self._lock:
            why = self._why_locked()
        if state is BreakerState.HALF_OPEN and probing:
            then = "a probe call is checking the database now"
        elif state is BreakerState.HALF_OPEN:
            then = "the next call goes through as a probe of the database"
        else:
            # rounded up: never 'in 0.0 s' while it is still open
            then = (
                f"probes the database again in {max(1, math.ceil(remaining_ns / 1e8)) / 10:.1f} s"
            )
        return CircuitOpen(
            f"database circuit {self.name!r} is {state.value}: {why}; {then}",
            retry_after_s=self._retry_after_s(remaining_ns),
            guard=self.name,
        )

    def _why_locked(self) -> str:
        """'5 of 105 calls in the last 5 s failed, the last 5 in a row; then 1 probe failed;
        last failure: lock timeout (SQLSTATE 55P03 LockNotAvailable)'."""
        failures, calls, streak = self._opened_after
        window = f"{self.policy.window_ms / 1000:g} s"
        why = f"{failures} of {calls} calls in the last {window} failed"
        if streak >= 2:
            why += f", the last {streak} in a row"
        if self._failed_probes:
            n = self._failed_probes
            why += f"; then {n} probe{'s' if n > 1 else ''} failed"
        if self._last_failure is not None:
            why += f"; last failure: {self._last_failure}"
        return why

    def _retry_after_s(self, remaining_ns: int) -> int:
        base = max(1, math.ceil(remaining_ns / 1e9))
        return base + random.randint(0, self.policy.retry_after_jitter_s)

    def _notify(self, change: tuple[BreakerState, BreakerState, float, int] | None) -> None:
        if change is not None and self._on_change is not None:
            self._on_change(*change)

    def _tick_locked(self, now: int) -> tuple[BreakerState, BreakerState, float, int] | None:
        if self._state is BreakerState.OPEN and now - self._opened_ns >= self._open_ns:
            self._state = BreakerState.HALF_OPEN
            self._generation += 1
            self._probes_out = 0
            self._probe_successes = 0
            return (BreakerState.OPEN, BreakerState.HALF_OPEN, 0.0, 0)
        return None

    def _open_locked(
        self, now: int, old: BreakerState
    ) -> tuple[BreakerState, BreakerState, float, int]:
        calls, failures = self._window_locked(now)
        p = self.policy
        if old is BreakerState.HALF_OPEN:  # the probe failed: back off (Envoy, resilience4j)
            self._open_ns = min(p.longest_open_ms * 1_000_000, self._open_ns * 2)
            self._failed_probes += 1
        else:
            self._open_ns = p.open_ms * 1_000_000
            self._opened_after = (failures, calls, self._streak)
            self._failed_probes = 0
        self._state = BreakerState.OPEN
        self._generation += 1
        self._opened_ns = now
        self._probes_out = 0
        self._probe_successes = 0
        self._streak = 0
        return (old, BreakerState.OPEN, failures / calls if calls else 1.0, calls)

    def _close_locked(self) -> tuple[BreakerState, BreakerState, float, int]:
        self._state = BreakerState.CLOSED
        self._generation += 1
        self._epochs = [-1] * self.policy.window_buckets
        self._streak = 0
        return (BreakerState.HALF_OPEN, BreakerState.CLOSED, 0.0, self._probe_successes)

    def _add_locked(self, now: int, failed: bool) -> None:
        epoch = now // self._bucket_ns
        i = epoch % self.policy.window_buckets
        if self._epochs[i] != epoch:
            self._epochs[i] = epoch
            self._calls[i] = 0
            self._failures[i] = 0
        self._calls[i] += 1
        self._failures[i] += int(failed)

    def _window_locked(self, now: int) -> tuple[int, int]:
        oldest = now // self._bucket_ns - self.policy.window_buckets + 1
        calls = failures = 0
        for i, epoch in enumerate(self._epochs):
            if epoch >= oldest:
                calls += self._calls[i]
                failures += self._failures[i]
        return calls, failures
