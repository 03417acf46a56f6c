"""What execution emits: one frozen `Event` per thing that happened.

The executor never prints. The journal, the CLI renderer and tests consume
the same events through an `Observer` (any callable taking an `Event`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Blocker", "Event", "EventKind", "Observer", "fan_out"]

EventKind = Literal[
    "run_started",
    "step_skipped",
    "step_started",
    "lock_wait",
    "retry",
    "watchdog_cancel",
    "cleanup",
    "health_pause",
    "step_done",
    "step_failed",
    "cancelled",
    "run_finished",
    "backfill_batch",
    "reconnecting",
    "reconnected",
    "reconnect_failed",
]


@dataclass(frozen=True, slots=True)
class Blocker:
    """A session that holds or queues for a lock in our way, or that we block."""

    pid: int
    application: str
    state: str
    xact_age_s: float | None
    query: str
    wait_event_type: str | None = None
    relation: str | None = None
    mode: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "application": self.application,
            "state": self.state,
            "xact_age_s": None if self.xact_age_s is None else round(self.xact_age_s, 3),
            "query": self.query[:500],
            "wait_event_type": self.wait_event_type,
            "relation": self.relation,
            "mode": self.mode,
        }


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened during a run."""

    kind: EventKind
    step: int | None = None  # plan step index (first step of a transaction unit)
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # unix seconds

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "step": self.step, "at": self.at, **self.data}


Observer = Callable[[Event], None]


def fan_out(observers: Iterable[Observer | None]) -> Observer:
    """One observer calling each of `observers` in order."""
    targets = [o for o in observers if o is not None]

    def emit(event: Event) -> None:
        for target in targets:
            target(event)

    return emit
