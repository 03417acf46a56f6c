"""Prometheus metrics for guards and their pools (needs the `guard` extra: prometheus-client).

    from pgwarden.guard.metrics import instrument
    instrument(guard, pools=[pool])          # registers on the default registry

Gauges are read live at scrape time; counters and the queue-wait histogram are fed by
a `GuardObserver` attached to the guard.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pgwarden.guard.breaker import BreakerState
from pgwarden.guard.core import Guard
from pgwarden.guard.events import GuardObserver
from pgwarden.guard.pool import PoolStats

__all__ = ["GuardMetrics", "instrument"]


class _HasStats(Protocol):
    guard: Guard

    def stats(self) -> PoolStats: ...


class _StateCollector(Collector):
    def __init__(self, guards: Sequence[Guard], pools: Sequence[_HasStats], prefix: str) -> None:
        self.guards = guards
        self.pools = pools
        self.prefix = prefix

    def collect(self) -> Iterator[Metric]:
        p = self.prefix
        in_flight = GaugeMetricFamily(
            f"{p}_in_flight", "Admitted database-bound work in flight", labels=["guard"]
        )
        limit = GaugeMetricFamily(f"{p}_limit", "Adaptive concurrency limit", labels=["guard"])
        queue = GaugeMetricFamily(f"{p}_queue_depth", "Work waiting for a slot", labels=["guard"])
        state = GaugeMetricFamily(
            f"{p}_breaker_state", "Circuit state: 0 closed, 1 half-open, 2 open", labels=["guard"]
        )
        for g in self.guards:
            s = g.stats()
            in_flight.add_metric([g.name], s.in_flight)
            limit.add_metric([g.name], s.limit)
            queue.add_metric([g.name], s.queue_depth)
            state.add_metric([g.name], s.breaker_state.gauge)
        size = GaugeMetricFamily(f"{p}_pool_size", "Open pooled connections", labels=["guard"])
        used = GaugeMetricFamily(f"{p}_pool_in_use", "Pooled connections in use", labels=["guard"])
        wait = GaugeMetricFamily(
            f"{p}_pool_waiting", "Callers waiting for a connection", labels=["guard"]
        )
        cap = GaugeMetricFamily(f"{p}_pool_max_size", "Hard connection maximum", labels=["guard"])
        for pool in self.pools:
            ps = pool.stats()
            size.add_metric([pool.guard.name], ps.size)
            used.add_metric([pool.guard.name], ps.in_use)
            wait.add_metric([pool.guard.name], ps.waiting)
            cap.add_metric([pool.guard.name], ps.max_size)
        yield from (in_flight, limit, queue, state, size, used, wait, cap)


class GuardMetrics(GuardObserver):
    """Counters and histograms fed by guard events, plus a live-state collector."""

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        *,
        prefix: str = "pgwarden_guard",
    ) -> None:
        self.prefix = prefix
        self.guards: list[Guard] = []
        self.pools: list[_HasStats] = []
        self.shed_total = Counter(
            f"{prefix}_shed", "Work refused by the guard", ["guard", "reason"], registry=registry
        )
        self.finished_total = Counter(
            f"{prefix}_finished",
            "Admitted work by outcome",
            ["guard", "outcome"],
            registry=registry,
        )
        self.breaker_transitions = Counter(
            f"{prefix}_breaker_transitions",
            "Circuit state changes",
            ["guard", "to_state"],
            registry=registry,
        )
        self.queue_wait = Histogram(
            f"{prefix}_queue_wait_seconds",
            "Time admitted work waited for a slot",
            ["guard"],
            buckets=(0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=registry,
        )
        self.duration = Histogram(
            f"{prefix}_duration_seconds",
            "Duration of admitted work",
            ["guard"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.collector = _StateCollector(self.guards, self.pools, prefix)
        if registry is not None:
            registry.register(self.collector)

    def add(self, guard: Guard, pools: Iterable[_HasStats] = ()) -> None:
        """Observe `guard` (and report `pools`)."""
        if guard not in self.guards:
            self.guards.append(guard)
            guard.observers.append(self)
        self.pools.extend(p for p in pools if p not in self.pools)

    def breaker_changed(
        self, guard: str, old: BreakerState, new: BreakerState, failure_rate: float, calls: int
    ) -> None:
        self.breaker_transitions.labels(guard, new.value).inc()

    def admitted(self, guard: str, queued_s: float) -> None:
        self.queue_wait.labels(guard).observe(queued_s)

    def shed(self, guard: str, reason: str) -> None:
        self.shed_total.labels(guard, reason).inc()

    def finished(self, guard: str, outcome: str, duration_s: float) -> None:
        self.finished_total.labels(guard, outcome).inc()
        self.duration.labels(guard).observe(duration_s)


def instrument(
    guard: Guard,
    *,
    pools: Iterable[_HasStats] = (),
    registry: CollectorRegistry | None = REGISTRY,
    prefix: str = "pgwarden_guard",
) -> GuardMetrics:
    """Export `guard` (and `pools`) to Prometheus; returns the `GuardMetrics` to add more."""
    metrics = GuardMetrics(registry, prefix=prefix)
    metrics.add(guard, pools)
    return metrics
