"""Typed events in, notifications out: started, progress, stuck, failed, cancelled, done.

`Tracker` follows one command's events and the clock. Progress events (a step
done, a batch, a phase, rows copied) reset the stuck timer and become at most
one `progress` notification per `progress_every_s`; waits (lock waits, retries,
health pauses, reconnects) do not count as progress and are named in the
`stuck` notification. A step is also stuck past `stuck_factor` times the
duration its rehearsal recorded. It is not thread-safe: its owner locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pgwarden.events import (
    BackfillBatch,
    BackupProgress,
    Event,
    FillProgress,
    FleetGate,
    FleetHalted,
    FleetTarget,
    FleetWave,
    HealthPause,
    LockWait,
    Phase,
    ReconnectFailed,
    Reconnecting,
    RehearsalStep,
    Retry,
    RunFinished,
    RunStarted,
    StepDone,
    StepFailed,
    StepSkipped,
    StepStarted,
    UpgradeCopy,
    UpgradeHook,
    UpgradeLag,
    UpgradePhase,
    UpgradeSwitchover,
    UpgradeVerified,
    WatchdogCancel,
)
from pgwarden.report.events import render
from pgwarden.sources.labels import shorten, statement_label

__all__ = ["MIN_STEP_STUCK_S", "Notification", "Tracker", "event_text"]

# A step is never called stuck by the factor rule before it ran this long.
MIN_STEP_STUCK_S = 1.0

_PROGRESS = (
    StepDone,
    StepSkipped,
    BackfillBatch,
    FillProgress,
    BackupProgress,
    RehearsalStep,
    Phase,
    UpgradePhase,
    UpgradeCopy,
    UpgradeVerified,
    UpgradeHook,
    UpgradeSwitchover,
    FleetWave,
    FleetTarget,
    FleetGate,
)
_WAITS = (LockWait, Retry, WatchdogCancel, HealthPause, Reconnecting, ReconnectFailed, StepFailed)


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for the webhooks: its kind, a line of text, the event behind it."""

    kind: str  # started, progress, stuck, failed, cancelled, done
    summary: str
    at: float = field(default_factory=time.time)  # unix seconds
    event: Event | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def event_text(event: Event) -> str:
    """One line describing `event`, for summaries (progress-bar events get their own)."""
    if isinstance(event, BackfillBatch):
        eta = f", about {event.eta_s:.0f} s left" if event.eta_s is not None else ""
        return f"backfill {event.progress:.0%}: {event.total_rows:,} rows{eta}"
    if isinstance(event, FillProgress):
        return f"filling {event.table}: {event.done:,} of {event.total:,} rows"
    if isinstance(event, BackupProgress):
        share = f"{event.done / event.total:.0%}" if event.total else f"{event.done:,}"
        return f"backup {event.phase} {share}" + (f" ({event.item})" if event.item else "")
    if isinstance(event, UpgradeCopy):
        rows = (
            f"{event.rows_done:,} of about {event.rows_total:,} rows"
            if event.rows_total
            else "no rows to copy (by OLD's statistics)"
        )
        return f"initial copy: {event.tables_ready} of {event.tables_total} tables ready, {rows}"
    if isinstance(event, UpgradeLag):
        secs = f", {event.lag_s:.1f} s" if event.lag_s is not None else ""
        return f"{event.direction} replication lag {event.lag_bytes:,} bytes{secs}"
    if isinstance(event, StepDone):
        took = f" in {event.duration_s:.2f} s" if event.duration_s is not None else ""
        return f"step {', '.join(map(str, event.steps))} done{took}"
    if isinstance(event, StepStarted):
        sql = event.sql[0] if event.sql else ""
        return f"step {event.step} started (attempt {event.attempt}): {statement_label(sql, 120)}"
    lines = [line.plain for line in render(event)]
    text = shorten(" ".join(lines), 300) if lines else event.kind
    # The terminal's leading marks (▶, ✓, ·) mean nothing in a message.
    while text and not (text[0].isalnum() or text[0] in "([\"'"):
        text = text[1:]
    return text or event.kind


def _elapsed(seconds: float) -> str:
    s = int(seconds)
    if s < 10:
        return f"{seconds:.1f} s"
    if s < 120:
        return f"{seconds:.0f} s"
    if s < 7200:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Tracker:
    """The notification state machine of one command (see the module docstring)."""

    def __init__(
        self,
        command: str,
        *,
        stuck_after_s: float,
        stuck_factor: float,
        progress_every_s: float,
        announce_on: type[Event] | None = None,
        expected: Callable[[str], Mapping[int, float]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.command = command
        self.stuck_after_s = stuck_after_s
        self.stuck_factor = stuck_factor
        self.progress_every_s = progress_every_s
        self.announce_on = announce_on  # None: `started` is sent on entry
        self._expected_of = expected
        self._clock = clock
        self.run_id: str | None = None
        self.environment: str | None = None
        self.database: str | None = None
        self.running = False
        self.ended = False
        self._t0 = clock()
        self._last_progress = self._t0
        self._last_sent = self._t0
        self._pending: Event | None = None
        self._stalled = False  # a no-progress `stuck` was sent and nothing moved since
        self._last_wait: Event | None = None
        self._step: tuple[int, ...] | None = None
        self._step_t0 = 0.0
        self._step_flagged = False
        self._expected: Mapping[int, float] = {}
        self._lag: dict[str, int] = {}
        self._failed_step: str | None = None
        self._quiet_until = 0.0
        self._copied = (-1, -1)  # the initial copy's (tables ready, rows) so far
        self._last_lock: LockWait | None = None  # the latest wait that names who is in the way
        self._last_other: Event | None = None  # the latest other wait: a retry, a pause

    # -- notifications ---------------------------------------------------------------

    def _details(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"elapsed_s": round(self._clock() - self._t0, 3)}
        if self.run_id is not None:
            out["run_id"] = self.run_id
        out.update({k: v for k, v in extra.items() if v is not None})
        return out

    def start(self) -> list[Notification]:
        """The `started` notification when it is sent on entry (else none yet)."""
        if self.announce_on is not None or self.running:
            return []
        self.running = True
        return [Notification("started", f"{self.command} started", details=self._details())]

    def observe(self, event: Event) -> list[Notification]:
        """Notifications caused by `event` (often none)."""
        if self.ended:
            return []
        now = self._clock()
        out: list[Notification] = []
        own_run = self.announce_on is RunStarted  # apply, resume (not a fleet's targets)
        if isinstance(event, RunStarted) and own_run:
            self.run_id, self.environment = event.run_id, event.environment
            self.database = event.database
            if self._expected_of is not None:
                self._expected = self._expected_of(event.plan_fingerprint)
        announce = self.announce_on
        if announce is not None and isinstance(event, announce) and not self.running:
            self.running = True
            self._last_progress = self._last_sent = now
            n = len(event.statements) if isinstance(event, RunStarted) else None
            what = f"{self.command} started" + (f" (run {self.run_id})" if self.run_id else "")
            return [Notification("started", what, event=event, details=self._details(statements=n))]
        if isinstance(event, RunFinished) and own_run:
            message = event.message or ""
            if event.state == "done":
                n = len(event.done)
                return self._end("done", f"{n} step{'' if n == 1 else 's'} applied", event)
            return self._end(
                event.state if event.state == "cancelled" else "failed", message, event
            )
        if isinstance(event, FleetHalted):
            kind = "cancelled" if event.reason == "cancelled" else "failed"
            return self._end(kind, event.message, event)
        if isinstance(event, RehearsalStep) and event.status == "failed":
            self._failed_step = f"a step failed on the copy: {statement_label(event.sql, 120)}"
        if isinstance(event, StepStarted):
            if event.steps != self._step:  # a new step (a retry of it is a wait)
                self._step, self._step_t0, self._step_flagged = event.steps, now, False
                return out + self._moved(event, now)
            return out
        if isinstance(event, StepDone | StepSkipped):
            self._step = None
        if isinstance(event, FleetWave) and event.phase == "baking":
            # a bake is a wait the rollout chose: not stuck before it ends
            self._quiet_until = now + event.bake_s
        if isinstance(event, UpgradeCopy):  # polled: progress only when it moved
            moved = (event.tables_ready, event.rows_done) > self._copied
            self._copied = max(self._copied, (event.tables_ready, event.rows_done))
            return out + self._moved(event, now) if moved else out
        if isinstance(event, UpgradeLag):
            before = self._lag.get(event.direction)
            self._lag[event.direction] = event.lag_bytes
            if before is None or event.lag_bytes < before:
                return out + self._moved(event, now)
            return out
        if isinstance(event, _PROGRESS):
            return out + self._moved(event, now)
        if isinstance(event, _WAITS):
            self._last_wait = event
            if isinstance(event, LockWait) and event.blockers:
                self._last_lock = event
            else:
                self._last_other = event
        return out

    def _moved(self, event: Event, now: float) -> list[Notification]:
        """A progress event: reset the stuck timer; a `progress` notification if due."""
        self._last_progress = now
        self._last_wait = self._last_lock = self._last_other = None
        if not self.running:
            return []
        if self._stalled:  # moving again: say so at once
            self._stalled = False
            self._last_sent, self._pending = now, None
            text = f"moving again: {event_text(event)}"
            return [Notification("progress", text, event=event, details=self._details())]
        if now - self._last_sent >= self.progress_every_s:
            self._last_sent, self._pending = now, None
            return [
                Notification("progress", event_text(event), event=event, details=self._details())
            ]
        self._pending = event  # the newest one goes out when the interval has passed
        return []

    def tick(self) -> list[Notification]:
        """Notifications due by the clock alone: a pending progress, stuck."""
        if not self.running or self.ended:
            return []
        now = self._clock()
        out: list[Notification] = []
        if self._pending is not None and now - self._last_sent >= self.progress_every_s:
            event, self._pending, self._last_sent = self._pending, None, now
            out.append(
                Notification("progress", event_text(event), event=event, details=self._details())
            )
        idle = now - max(self._last_progress, self._quiet_until)
        if not self._stalled and idle >= self.stuck_after_s:
            self._stalled = True
            wait = self._last_wait
            doing = self._waiting()
            out.append(
                Notification(
                    "stuck",
                    f"no progress for {_elapsed(idle)}{doing}",
                    event=wait,
                    details=self._details(reason="no_progress", stalled_s=round(idle, 3)),
                )
            )
        if self._step is not None and not self._step_flagged:
            known = [self._expected.get(i) for i in self._step]
            if known and all(v is not None for v in known):
                expected = sum(v for v in known if v is not None)
                ran = now - self._step_t0
                if ran > max(self.stuck_factor * expected, MIN_STEP_STUCK_S):
                    self._step_flagged = True
                    wait = self._last_wait
                    doing = self._waiting()
                    steps = ", ".join(map(str, self._step))
                    out.append(
                        Notification(
                            "stuck",
                            f"step {steps} has run {_elapsed(ran)}, past {self.stuck_factor:g}x "
                            f"its rehearsed {expected:.2f} s{doing}",
                            event=wait,
                            details=self._details(
                                reason="past_expected",
                                step=self._step[0],
                                running_s=round(ran, 3),
                                expected_s=round(expected, 6),
                            ),
                        )
                    )
        return out

    def _waiting(self) -> str:
        """What the command waits for: who is in the way, and the last other wait (a retry,
        a pause), also when a lock wait came after it, as one comes before each attempt."""
        parts = []
        if self._last_lock is not None:
            parts.append(event_text(self._last_lock))
        if self._last_other is not None:
            parts.append(f"last: {event_text(self._last_other)}")
        return "".join(f"; {p}" for p in parts)

    def _end(self, kind: str, message: str, event: Event | None) -> list[Notification]:
        if self.ended:
            return []
        self.ended = True
        self.running = False
        took = _elapsed(self._clock() - self._t0)
        text = {
            "done": f"{self.command} done in {took}",
            "failed": f"{self.command} failed after {took}",
            "cancelled": f"{self.command} cancelled after {took}",
        }[kind]
        if message:
            text += f": {shorten(message, 300)}"
        return [Notification(kind, text, event=event, details=self._details())]

    def finish(self, kind: str | None, message: str = "") -> list[Notification]:
        """The end of the command: `kind` (None: done, unless events said otherwise)."""
        if self.ended:
            return []
        if kind is None:
            kind, message = ("failed", self._failed_step) if self._failed_step else ("done", "")
        if kind == "done" and not self.running:
            return []  # announced by an event that never came (a dry run): nothing ran
        return self._end(kind, message, None)
