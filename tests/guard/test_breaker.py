import pytest

from pgwarden.guard import BreakerPolicy, BreakerState, CircuitBreaker, CircuitOpen, Outcome
from pgwarden.guard.errors import GuardConfigError


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000_000

    def __call__(self) -> int:
        return self.ns

    def advance_ms(self, ms: int) -> None:
        self.ns += ms * 1_000_000


POLICY = BreakerPolicy(
    window_ms=1000,
    window_buckets=10,
    min_calls=4,
    failure_rate=0.5,
    open_ms=500,
    half_open_probes=2,
    retry_after_jitter_s=0,
)


def make() -> tuple[CircuitBreaker, Clock, list[tuple[BreakerState, BreakerState]]]:
    clock = Clock()
    changes: list[tuple[BreakerState, BreakerState]] = []
    breaker = CircuitBreaker(
        POLICY,
        name="t",
        clock=clock,
        on_change=lambda old, new, rate, calls: changes.append((old, new)),
    )
    return breaker, clock, changes


def state(breaker: CircuitBreaker) -> BreakerState:
    """Read the state afresh (keeps mypy from narrowing a property across calls)."""
    return breaker.state


def run(breaker: CircuitBreaker, outcome: Outcome) -> None:
    breaker.record(breaker.acquire(), outcome)


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(4):
        run(breaker, Outcome.FAILURE)


def test_stays_closed_below_min_calls_and_below_the_rate():
    breaker, _, changes = make()
    for _ in range(3):
        run(breaker, Outcome.FAILURE)
    assert state(breaker) is BreakerState.CLOSED  # 3 calls < min_calls
    breaker, _, changes = make()
    for _ in range(4):
        run(breaker, Outcome.SUCCESS)
    for _ in range(3):
        run(breaker, Outcome.FAILURE)
    assert state(breaker) is BreakerState.CLOSED  # 3 of 7 < 0.5
    run(breaker, Outcome.FAILURE)  # 4 failures of 8 calls = 0.5 -> opens
    assert state(breaker) is BreakerState.OPEN
    assert changes == [(BreakerState.CLOSED, BreakerState.OPEN)]


def test_successes_keep_it_closed():
    breaker, _, _ = make()
    for _ in range(10):
        run(breaker, Outcome.SUCCESS)
    run(breaker, Outcome.FAILURE)
    run(breaker, Outcome.IGNORE)
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.window() == (11, 1)


def test_old_failures_leave_the_window():
    breaker, clock, _ = make()
    for _ in range(3):
        run(breaker, Outcome.FAILURE)
    clock.advance_ms(1500)
    assert breaker.window() == (0, 0)
    run(breaker, Outcome.FAILURE)
    assert state(breaker) is BreakerState.CLOSED


def test_open_fails_immediately_with_retry_after():
    breaker, _, _ = make()
    trip(breaker)
    with pytest.raises(CircuitOpen) as info:
        breaker.acquire()
    assert info.value.retry_after_s == 1
    assert info.value.reason == "circuit_open"


def test_half_open_admits_one_probe_at_a_time_then_closes():
    breaker, clock, changes = make()
    trip(breaker)
    clock.advance_ms(500)
    assert state(breaker) is BreakerState.HALF_OPEN
    p1 = breaker.acquire()
    assert p1.probe
    with pytest.raises(CircuitOpen):
        breaker.acquire()  # one probe in flight: the rest are shed
    breaker.record(p1, Outcome.SUCCESS)
    assert state(breaker) is BreakerState.HALF_OPEN  # POLICY needs two successful probes
    p2 = breaker.acquire()
    assert p2.probe
    breaker.record(p2, Outcome.SUCCESS)
    assert state(breaker) is BreakerState.CLOSED
    assert changes == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    assert breaker.window() == (0, 0)


def test_a_failed_probe_reopens():
    breaker, clock, changes = make()
    trip(breaker)
    clock.advance_ms(600)
    probe = breaker.acquire()
    breaker.record(probe, Outcome.FAILURE)
    assert state(breaker) is BreakerState.OPEN
    assert changes[-1] == (BreakerState.HALF_OPEN, BreakerState.OPEN)


def test_ignored_probe_frees_its_slot():
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance_ms(500)
    a = breaker.acquire()
    breaker.record(a, Outcome.IGNORE)
    b = breaker.acquire()
    assert b.probe
    breaker.record(b, Outcome.SUCCESS)
    c = breaker.acquire()
    breaker.record(c, Outcome.SUCCESS)
    assert state(breaker) is BreakerState.CLOSED


def test_results_from_before_opening_are_ignored():
    breaker, clock, _ = make()
    slow = breaker.acquire()
    trip(breaker)
    clock.advance_ms(500)
    assert state(breaker) is BreakerState.HALF_OPEN
    breaker.record(slow, Outcome.FAILURE)  # admitted while closed: says nothing now
    assert state(breaker) is BreakerState.HALF_OPEN
    breaker.record(slow, Outcome.FAILURE)  # idempotent


def test_invalid_policy_is_refused():
    with pytest.raises(GuardConfigError):
        BreakerPolicy(failure_rate=0)
    with pytest.raises(GuardConfigError):
        BreakerPolicy(half_open_probes=0)


def test_the_refusal_reads_the_state_as_of_now():
    """`refusal()` (work shed elsewhere: the queue when the breaker opens) says what
    `acquire` would do now: once the open period has run out the next call is the probe,
    not 'probes again in 0.0 s' of a state nothing has moved yet."""
    breaker, clock, changes = make()
    trip(breaker)
    assert "probes the database again in 0.5 s" in str(breaker.refusal())
    clock.advance_ms(500)  # the open period has run out; nothing has read the state since
    text = str(breaker.refusal())
    assert "in 0.0 s" not in text
    assert "is half_open: " in text and "; the next call goes through as a probe" in text
    assert changes == [(BreakerState.CLOSED, BreakerState.OPEN)]  # a read moves nothing
    probe = breaker.acquire()  # as the refusal said
    assert probe.probe
    assert "; a probe call is checking the database now" in str(breaker.refusal())
    breaker.record(probe, Outcome.SUCCESS)  # POLICY needs two: half-open, no probe out
    text = str(breaker.refusal())
    assert "is half_open: " in text and "; the next call goes through as a probe" in text
    assert breaker.acquire().probe


def test_the_refusal_never_says_it_probes_again_in_0_0_s():
    """With under 50 ms of the open period left, the wait is rounded up, never to 0.0 s."""
    breaker, clock, _ = make()
    trip(breaker)
    clock.advance_ms(470)
    with pytest.raises(CircuitOpen) as info:
        breaker.acquire()
    assert "probes the database again in 0.1 s" in str(info.value)
    clock.advance_ms(29)  # 1 ms left
    assert "probes the database again in 0.1 s" in str(breaker.refusal())


def test_the_refusal_of_queued_work_as_the_breaker_opens_with_no_open_period():
    """The guard sheds queued work with `refusal()` from the breaker's change callback;
    with `open_ms=0` the open period is over as it starts."""
    said: list[str] = []

    def opened(old: BreakerState, new: BreakerState, rate: float, calls: int) -> None:
        if new is BreakerState.OPEN:
            said.append(str(breaker.refusal()))

    breaker = CircuitBreaker(
        BreakerPolicy(open_ms=0, consecutive_failures=2), clock=Clock(), on_change=opened
    )
    run(breaker, Outcome.FAILURE)
    run(breaker, Outcome.FAILURE)
    assert len(said) == 1 and "in 0.0 s" not in said[0]
    assert "the next call goes through as a probe" in said[0]
