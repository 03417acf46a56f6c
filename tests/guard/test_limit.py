import asyncio
import threading

import pytest

from pgwarden.guard import AimdPolicy, GradientPolicy, LimitPolicy, LimitReached, Outcome
from pgwarden.guard.errors import GuardConfigError
from pgwarden.guard.limit import Aimd, Gradient, Limiter

MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.ns = 10**12

    def __call__(self) -> int:
        return self.ns


def test_aimd_grows_when_used_and_backs_off_on_drops_and_slow_samples():
    a = Aimd(AimdPolicy(initial_limit=10, min_limit=2, max_limit=12, latency_threshold_ms=100))
    assert a.update(rtt_ns=5 * MS, inflight=10, dropped=False) == 11
    assert a.update(rtt_ns=5 * MS, inflight=10, dropped=False) == 12
    assert a.update(rtt_ns=5 * MS, inflight=12, dropped=False) == 12  # max
    assert a.update(rtt_ns=5 * MS, inflight=1, dropped=False) == 12  # app-limited: no change
    assert a.update(rtt_ns=5 * MS, inflight=12, dropped=True) == 10
    assert a.update(rtt_ns=500 * MS, inflight=10, dropped=False) == 9
    for _ in range(50):
        a.update(rtt_ns=5 * MS, inflight=1, dropped=True)
    assert a.limit == 2


def test_gradient_shrinks_when_latency_rises_and_recovers():
    g = Gradient(GradientPolicy(initial_limit=20, min_limit=2, max_limit=50))
    for _ in range(100):
        g.update(rtt_ns=10 * MS, inflight=20, dropped=False)
    steady = g.limit
    assert steady >= 20
    for _ in range(30):
        g.update(rtt_ns=200 * MS, inflight=g.limit, dropped=False)
    shrunk = g.limit
    assert shrunk < steady
    for _ in range(200):
        g.update(rtt_ns=10 * MS, inflight=g.limit, dropped=False)
    assert g.limit > shrunk


def test_gradient_backs_off_on_drops_to_the_minimum():
    g = Gradient(GradientPolicy(initial_limit=10, min_limit=3))
    for _ in range(100):
        g.update(rtt_ns=1, inflight=1, dropped=True)
    assert g.limit == 3


def fixed(limit: int, queue: int = 2, timeout_ms: int = 50) -> LimitPolicy:
    return LimitPolicy(
        algorithm=AimdPolicy(initial_limit=limit, min_limit=limit, max_limit=limit),
        queue_size=queue,
        queue_timeout_ms=timeout_ms,
        retry_after_jitter_s=0,
    )


def test_admits_up_to_the_limit_then_sheds_without_a_queue():
    lim = Limiter(fixed(2, queue=0))
    a, b = lim.acquire(), lim.acquire()
    with pytest.raises(LimitReached) as info:
        lim.acquire()
    assert info.value.reason == "limit"
    assert info.value.retry_after_s == 1
    a.release(Outcome.SUCCESS)
    c = lim.acquire()
    b.release(Outcome.SUCCESS)
    c.release(Outcome.IGNORE)
    c.release(Outcome.IGNORE)  # idempotent
    assert lim.inflight == 0


def test_queue_timeout_sheds():
    lim = Limiter(fixed(1, queue=1, timeout_ms=20))
    held = lim.acquire()
    with pytest.raises(LimitReached) as info:
        lim.acquire()
    assert info.value.reason == "queue_timeout"
    assert lim.queue_depth == 0
    held.release(Outcome.SUCCESS)


def test_stalled_limiter_sheds_at_once():
    clock = Clock()
    lim = Limiter(fixed(1, queue=5, timeout_ms=50), clock=clock)
    held = lim.acquire()
    clock.ns += 51 * MS  # nothing completed for longer than the queue timeout
    with pytest.raises(LimitReached) as info:
        lim.acquire()
    assert info.value.reason == "stalled"
    held.release(Outcome.SUCCESS)


def test_queue_full_sheds_and_release_hands_over_in_order():
    lim = Limiter(fixed(1, queue=2, timeout_ms=10_000))
    held = lim.acquire()
    order: list[int] = []
    done = threading.Barrier(3)

    def wait(i: int) -> None:
        p = lim.acquire()
        order.append(i)
        p.release(Outcome.SUCCESS)
        done.wait(10)

    t1 = threading.Thread(target=wait, args=(1,))
    t1.start()
    _wait_for(lambda: lim.queue_depth == 1)
    t2 = threading.Thread(target=wait, args=(2,))
    t2.start()
    _wait_for(lambda: lim.queue_depth == 2)
    with pytest.raises(LimitReached):
        lim.acquire()
    held.release(Outcome.SUCCESS)
    done.wait(10)
    t1.join(10)
    t2.join(10)
    assert order == [1, 2]
    assert lim.inflight == 0


def _wait_for(check, timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_async_waiter_cancelled_while_queued_leaks_no_slot():
    async def main() -> None:
        lim = Limiter(fixed(1, queue=2, timeout_ms=10_000))
        held = await lim.acquire_async()
        task = asyncio.ensure_future(lim.acquire_async())
        while lim.queue_depth == 0:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert lim.queue_depth == 0
        held.release(Outcome.SUCCESS)
        assert lim.inflight == 0
        again = await lim.acquire_async()
        again.release(Outcome.SUCCESS)
        assert lim.inflight == 0

    asyncio.run(main())


def test_async_waiter_gets_the_released_slot():
    async def main() -> None:
        lim = Limiter(fixed(1, queue=2, timeout_ms=10_000))
        held = await lim.acquire_async()
        task = asyncio.ensure_future(lim.acquire_async())
        while lim.queue_depth == 0:
            await asyncio.sleep(0.001)
        held.release(Outcome.SUCCESS)
        permit = await task
        assert lim.inflight == 1
        permit.release(Outcome.SUCCESS)
        assert lim.inflight == 0

    asyncio.run(main())


def test_invalid_policies_are_refused():
    with pytest.raises(GuardConfigError):
        AimdPolicy(initial_limit=1, min_limit=2)
    with pytest.raises(GuardConfigError):
        LimitPolicy(queue_size=-1)
