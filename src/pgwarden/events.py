"""What pgwarden's long operations emit: one frozen dataclass per kind of event.

apply, resume, backfill, rehearse and backup (and the Alembic and Django
integrations, which call them) never print: they call an `Observer` (any
callable taking an `Event`). The journals, the terminal renderer
(`pgwarden.report.events`), `--log-format json` and the tests consume the same
events; a new consumer (a webhook notifier, say) is one more observer passed
through `fan_out`.

`event.to_dict()` is the stable JSON shape: `{"event": kind, "step", "at",
...fields}`; `event.data` is the fields alone, as the journal stores them.
Field names are the JSON keys, except where `_keys` renames one (a field
cannot be called `kind`: that is the event's own kind).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "BackfillBatch",
    "BackupProgress",
    "Blocker",
    "BreakGlass",
    "Cancelled",
    "Cleanup",
    "Event",
    "FillProgress",
    "FleetGate",
    "FleetHalted",
    "FleetTarget",
    "FleetWave",
    "HealthPause",
    "LockWait",
    "NoRolePolicy",
    "Observer",
    "Phase",
    "ReconnectFailed",
    "Reconnected",
    "Reconnecting",
    "RehearsalStep",
    "Retry",
    "RunFinished",
    "RunStarted",
    "StepDone",
    "StepFailed",
    "StepSkipped",
    "StepStarted",
    "UpgradeCopy",
    "UpgradeHook",
    "UpgradeLag",
    "UpgradePhase",
    "UpgradeSwitchover",
    "UpgradeVerified",
    "WatchdogCancel",
    "fan_out",
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


def _plain(value: object) -> object:
    """A field value as JSON-ready data (blockers as dicts, tuples as lists)."""
    if isinstance(value, Blocker):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One thing that happened. Subclasses add their fields and set `kind`."""

    kind: ClassVar[str] = "event"
    _keys: ClassVar[dict[str, str]] = {}  # field -> JSON key, where they differ
    _optional: ClassVar[frozenset[str]] = frozenset()  # fields left out when None

    step: int | None = None  # plan step index (first step of a transaction unit)
    at: float = field(default_factory=time.time)  # unix seconds

    @property
    def data(self) -> dict[str, Any]:
        """The event's own fields as JSON-ready data (what the journal stores)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in ("step", "at"):
                continue
            value = getattr(self, f.name)
            if value is None and f.name in self._optional:
                continue
            out[self._keys.get(f.name, f.name)] = _plain(value)
        return out

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


# -- apply, resume ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    _keys: ClassVar[dict[str, str]] = {"run_kind": "kind"}

    run_id: str
    run_kind: str  # apply, resume
    environment: str
    system_identifier: str
    database: str
    plan_fingerprint: str
    os_user: str
    host: str
    accept_data_loss: str | None
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepSkipped(Event):
    kind: ClassVar[str] = "step_skipped"

    steps: tuple[int, ...]
    reason: str  # guard (the guard owns the statement), applied (by an earlier run)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStarted(Event):
    kind: ClassVar[str] = "step_started"

    steps: tuple[int, ...]
    attempt: int
    lock_timeout_ms: int
    statement_timeout_ms: int
    sql: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LockWait(Event):
    kind: ClassVar[str] = "lock_wait"

    steps: tuple[int, ...]
    attempt: int
    # before (the step starts), building (an index build waits), terminated, waiting (the
    # running statement has waited 2 s for these sessions)
    phase: str
    blockers: tuple[Blocker, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchdogCancel(Event):
    kind: ClassVar[str] = "watchdog_cancel"

    steps: tuple[int, ...]
    attempt: int
    reason: str
    blocked: tuple[Blocker, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry(Event):
    kind: ClassVar[str] = "retry"

    steps: tuple[int, ...]
    attempt: int
    reason: str
    delay_ms: int
    sqlstate: str | None
    waited_on: tuple[Blocker, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cleanup(Event):
    kind: ClassVar[str] = "cleanup"

    steps: tuple[int, ...]
    dropped_invalid: tuple[str, ...]
    left: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthPause(Event):
    kind: ClassVar[str] = "health_pause"

    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepDone(Event):
    kind: ClassVar[str] = "step_done"
    _optional: ClassVar[frozenset[str]] = frozenset({"duration_s", "peak_blocked", "reconciled"})

    steps: tuple[int, ...]
    attempt: int
    duration_s: float | None = None
    peak_blocked: int | None = None
    reconciled: str | None = None  # found done by an earlier, interrupted attempt


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFailed(Event):
    kind: ClassVar[str] = "step_failed"
    _keys: ClassVar[dict[str, str]] = {"failure": "kind"}

    steps: tuple[int, ...]
    error: str
    attempt: int = 0
    sqlstate: str | None = None
    failure: str | None = None  # the failure class (lock_timeout, connection, ...)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancelled(Event):
    kind: ClassVar[str] = "cancelled"

    steps: tuple[int, ...]
    attempt: int
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"

    state: str  # done, failed, cancelled
    message: str | None
    done: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnecting(Event):
    kind: ClassVar[str] = "reconnecting"

    run: str | None
    timeout_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnected(Event):
    kind: ClassVar[str] = "reconnected"

    run: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectFailed(Event):
    kind: ClassVar[str] = "reconnect_failed"

    run: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillBatch(Event):
    kind: ClassVar[str] = "backfill_batch"

    rows: int
    total_rows: int
    last_pk: int | None
    max_pk: int | None
    batch_size: int
    batch_ms: float
    progress: float  # 0..1
    eta_s: float | None


# -- role policy (pgwarden.access.enforce) ----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakGlass(Event):
    """A declared break-glass role ran a command on a protected environment, and why."""

    kind: ClassVar[str] = "break_glass"

    environment: str
    reason: str
    session_user: str
    current_user: str
    os_user: str
    host: str
    expected: str | None  # the declared migration role


@dataclass(frozen=True, slots=True, kw_only=True)
class NoRolePolicy(Event):
    """A protected environment declares no role policy: any role was allowed to run."""

    kind: ClassVar[str] = "no_role_policy"

    environment: str
    current_user: str
    config: str | None = None  # the config file in use (Settings.source), for the message


# -- rehearse, backup --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase(Event):
    """A long operation moved on to its next phase ("generating synthetic rows")."""

    kind: ClassVar[str] = "phase"

    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FillProgress(Event):
    """Rehearse filled `done` of `total` synthetic rows of `table`."""

    kind: ClassVar[str] = "fill_progress"

    table: str
    done: int
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RehearsalStep(Event):
    """One plan step ran on the rehearsal cluster."""

    kind: ClassVar[str] = "rehearsal_step"

    status: str  # ok, failed, interrupted, skipped
    sql: str
    location: str
    duration_s: float
    acquire_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupProgress(Event):
    """A backup step: `done` of `total` in `phase` (bytes; rows when restoring)."""

    kind: ClassVar[str] = "backup_progress"

    phase: str
    done: int
    total: int
    item: str = ""


# -- fleet -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetWave(Event):
    """A wave of a fleet rollout moved on: started, applied (its bake time begins), done."""

    kind: ClassVar[str] = "fleet_wave"

    rollout: str
    wave: int
    name: str
    phase: str  # started, baking, done
    targets: tuple[str, ...]
    parallel: int
    bake_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetTarget(Event):
    """One target of a fleet rollout started, was held up, or ended: done, failed, refused,
    cancelled, unreachable (could not be connected to: nothing of the change ran there; the
    rollout exits 1, not 3, docs/fleet.md), or pending (never started: the wave halted or the
    rollout was cancelled while it waited its online turn)."""

    kind: ClassVar[str] = "fleet_target"
    _optional: ClassVar[frozenset[str]] = frozenset({"run_id", "message", "duration_s"})

    rollout: str
    wave: int
    target: str
    # running, waiting (held up: retry, lock, health), done, failed, refused, cancelled,
    # unreachable, pending
    state: str
    run_id: str | None = None
    message: str | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetGate(Event):
    """A health gate was evaluated after a wave."""

    kind: ClassVar[str] = "fleet_gate"

    rollout: str
    wave: int
    gate: str
    signal: str
    scope: str  # wave, fleet
    ok: bool
    reasons: tuple[str, ...]
    not_judged: tuple[str, ...] = ()  # targets whose window was too quiet to judge


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetHalted(Event):
    """The rollout stopped before its next wave (a failed target or gate, or a cancel)."""

    kind: ClassVar[str] = "fleet_halted"

    rollout: str
    wave: int
    reason: str  # target, gate, cancelled
    message: str


# -- upgrade run / cancel / rollback ------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradePhase(Event):
    """A blue/green upgrade entered (`started`) or left (`done`, `failed`) one of its phases."""

    kind: ClassVar[str] = "upgrade_phase"
    _optional: ClassVar[frozenset[str]] = frozenset({"duration_s"})

    upgrade_id: str
    phase: str  # guardrails, schema, replication, initial_copy, catch_up, verify, ...
    status: str  # started, done, failed, skipped
    message: str
    duration_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeCopy(Event):
    """Initial copy of the subscription: tables ready of all, rows copied of an estimate."""

    kind: ClassVar[str] = "upgrade_copy"

    upgrade_id: str
    tables_ready: int
    tables_total: int
    rows_done: int
    rows_total: int  # the planner's estimate on OLD
    copying: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeLag(Event):
    """How far the receiving side trails the sending side (WAL bytes, seconds)."""

    kind: ClassVar[str] = "upgrade_lag"
    _optional: ClassVar[frozenset[str]] = frozenset({"lag_s"})

    upgrade_id: str
    direction: str  # forward (OLD -> NEW), reverse (NEW -> OLD)
    lag_bytes: int
    lag_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeVerified(Event):
    """One table compared on both sides at the same LSN: rows and checksum."""

    kind: ClassVar[str] = "upgrade_verified"

    upgrade_id: str
    table: str
    lsn: str
    rows_old: int
    rows_new: int
    same: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeHook(Event):
    """The switch hook ran (output captured, secrets masked)."""

    kind: ClassVar[str] = "upgrade_hook"

    upgrade_id: str
    switch_to: str  # new, old
    exit_code: int | None  # None: killed at the deadline
    duration_s: float
    output: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeSwitchover(Event):
    """A switchover (or a switch back) ended: switched, rolled_back or failed."""

    kind: ClassVar[str] = "upgrade_switchover"

    upgrade_id: str
    direction: str  # to_new, to_old
    outcome: str  # switched, rolled_back, failed
    final_lsn: str | None
    writes_paused_s: float
    message: str
