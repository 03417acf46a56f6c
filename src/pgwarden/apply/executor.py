"""Executor: runs units of a plan under the lock guard and the watchdog, emitting events.

A unit is one transaction block of the plan, or one statement on its own.
Transactional units run inside a transaction pgwarden opens, with
`SET LOCAL lock_timeout / statement_timeout` and the history record in the
same transaction, so a unit is either applied and recorded or neither.
Statements that cannot run in a transaction (CONCURRENTLY) run alone and are
recorded right after; a failed concurrent index build is cleaned up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, NoReturn

import psycopg

from pgwarden.analysis.effects import LockMode
from pgwarden.apply.events import (
    Blocker,
    Cancelled,
    Cleanup,
    LockWait,
    Observer,
    Retry,
    StepDone,
    StepFailed,
    StepSkipped,
    StepStarted,
    WatchdogCancel,
)
from pgwarden.apply.guards import (
    Failure,
    LockPolicy,
    backoff_ms,
    check_client,
    classify,
    client_check_supported,
    find_blockers,
    set_timeouts,
    terminate_idle_blockers,
)
from pgwarden.apply.health import HealthPolicy, wait_until_healthy
from pgwarden.apply.indexes import (
    builds_index,
    built_by_step,
    drop_invalid,
    existing_builds,
    invalid_indexes,
    reindex_leftovers,
    table_of,
)
from pgwarden.apply.journal import Journal
from pgwarden.apply.partitions import Detach, detach_of, detach_state, finalize
from pgwarden.apply.watchdog import Watch, Watchdog, WatchdogPolicy
from pgwarden.errors import UsageError
from pgwarden.plan import Plan, Step

__all__ = ["ExecOptions", "Outcome", "Unit", "build_units", "execute", "guard_owned"]

_TIMEOUT_SETTINGS = {"lock_timeout", "statement_timeout"}


def guard_owned(step: Step) -> bool:
    """SET/RESET of lock_timeout or statement_timeout: the guard owns those."""
    if step.kind != "VariableSetStmt":
        return False
    name = str(step.body.get("name", ""))
    return name in _TIMEOUT_SETTINGS or step.body.get("kind") == "VAR_RESET_ALL"


# Runs a step in its SQL's place, inside the unit's transaction, on the run's connection
# (an Alembic revision that only runs online); raises psycopg.Error on failure.
Runner = Callable[[psycopg.Connection[tuple[object, ...]]], None]


@dataclass(frozen=True, slots=True)
class Unit:
    """Steps that run and are recorded together."""

    steps: tuple[Step, ...]
    keys: tuple[str, ...]
    transactional: bool
    run: Runner | None = None  # runs instead of the steps' SQL (one step, transactional)

    @property
    def index(self) -> int:
        return self.steps[0].index

    @property
    def indexes(self) -> list[int]:
        return [s.index for s in self.steps]

    @property
    def point_of_no_return(self) -> bool:
        return any(s.destructive for s in self.steps)

    def wanted_locks(self) -> dict[str, LockMode]:
        out: dict[str, LockMode] = {}
        for s in self.steps:
            for rel, mode in s.effects.strongest().items():
                out[rel] = max(mode, out.get(rel, mode))
        return out


def build_units(
    plan: Plan, keys: Sequence[str], runners: Mapping[str, Runner] | None = None
) -> list[Unit]:
    """Group the plan's executable steps into units; transaction control is ours.

    A step whose SQL is a key of `runners` is a unit of its own, run by that callable.
    """
    units: list[Unit] = []
    block: list[Step] = []
    block_tx: int | None = None

    def flush() -> None:
        nonlocal block, block_tx
        if block:
            bad = [s for s in block if not s.effects.transactional]
            if bad:
                s = bad[0]
                raise UsageError(
                    f"{s.location}: this statement cannot run inside a transaction block, "
                    "and the plan puts it in one",
                    hint="apply with --rewrite (moves CONCURRENTLY out of transactions), or "
                    "--no-file-transaction when files are not meant to run in one transaction",
                )
            units.append(Unit(tuple(block), tuple(keys[s.index] for s in block), True))
        block, block_tx = [], None

    for step in plan.steps:
        if step.is_transaction_control or guard_owned(step):
            continue
        if runners and step.sql in runners:
            flush()
            units.append(Unit((step,), (keys[step.index],), True, runners[step.sql]))
            continue
        if step.transaction is None:
            flush()
            units.append(Unit((step,), (keys[step.index],), step.effects.transactional))
            continue
        if step.transaction != block_tx:
            flush()
            block_tx = step.transaction
        block.append(step)
    flush()
    return units


@dataclass(frozen=True, slots=True)
class ExecOptions:
    """Policies for one run."""

    lock: LockPolicy = field(default_factory=LockPolicy)
    watchdog: WatchdogPolicy = field(default_factory=WatchdogPolicy)
    health: HealthPolicy | None = field(default_factory=HealthPolicy)
    terminate_idle_blockers_after_s: float | None = None
    holding_cancels_allowed: int = 1  # retries after the watchdog cancels a lock holder
    unit_lock: dict[int, LockPolicy] = field(default_factory=dict)  # by unit index


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended."""

    state: Literal["done", "failed", "cancelled"]
    done: tuple[int, ...] = ()
    skipped: tuple[int, ...] = ()
    step: int | None = None  # the step that failed or was cancelled
    message: str | None = None
    hint: str | None = None
    sqlstate: str | None = None
    failure: str | None = None  # guards.Failure value of a failed run: "connection", ...


class _Stop(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


@dataclass
class _Run:
    conn: psycopg.Connection[tuple[object, ...]]
    run_id: str
    options: ExecOptions
    emit: Observer
    cancel: threading.Event
    watchdog: Watchdog
    our_pids: list[int]
    done: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    running: int = 0  # position in the unit of the statement last sent (named on failure)
    client_check: bool = False  # the server may check that this client is still there


def execute(
    conn: psycopg.Connection[tuple[object, ...]],
    units: Sequence[Unit],
    *,
    run_id: str,
    applied: set[str],
    options: ExecOptions,
    emit: Observer,
    cancel: threading.Event,
    watchdog: Watchdog,
    our_pids: Sequence[int] = (),
) -> Outcome:
    """Run `units` in order, skipping those already applied; never raises for the database."""
    r = _Run(conn, run_id, options, emit, cancel, watchdog, [conn.info.backend_pid, *our_pids])
    try:
        r.client_check = client_check_supported(conn)
    except psycopg.Error:
        r.client_check = False
    try:
        for unit in units:
            if all(k in applied for k in unit.keys):
                r.skipped.extend(unit.indexes)
                emit(StepSkipped(step=unit.index, steps=tuple(unit.indexes), reason="applied"))
                continue
            _gate(r, unit)
            _run_unit(r, unit)
            r.done.extend(unit.indexes)
    except _Stop as stop:
        o = stop.outcome
        return replace(o, done=tuple(r.done), skipped=tuple(r.skipped))
    return Outcome("done", tuple(r.done), tuple(r.skipped))


def _gate(r: _Run, unit: Unit) -> None:
    if r.cancel.is_set():
        _cancelled(r, unit, 0, "cancelled before the step started")
    if r.options.health is None:
        return
    try:
        health = wait_until_healthy(
            r.conn,
            r.options.health,
            cancel=r.cancel,
            emit=r.emit,
            step=unit.index,
            our_pids=r.our_pids,
        )
    except psycopg.Error as exc:
        _failed(r, unit, 0, exc)
    if r.cancel.is_set():
        _cancelled(r, unit, 0, "cancelled while waiting for the database to be healthy")
    if not health.ok:
        msg = "the database stayed unhealthy: " + "; ".join(health.reasons)
        r.emit(StepFailed(step=unit.index, steps=tuple(unit.indexes), error=msg))
        raise _Stop(
            Outcome(
                "failed",
                step=unit.index,
                message=msg,
                hint="nothing of this step ran; run `pgwarden resume` when the load is lower",
            )
        )


def _run_unit(r: _Run, unit: Unit) -> None:
    policy = r.options.unit_lock.get(unit.index, r.options.lock)
    started = time.monotonic()
    holding_cancels = 0
    attempt = 0
    while True:
        attempt += 1
        if r.cancel.is_set():
            _cancelled(r, unit, attempt - 1, "cancelled between attempts")
        invalid_before = _prepare(r, unit, policy)
        if invalid_before is None:  # reconciled: a previous run finished the build
            return
        _announce_blockers(r, unit, attempt)
        r.emit(
            StepStarted(
                step=unit.index,
                steps=tuple(unit.indexes),
                attempt=attempt,
                lock_timeout_ms=policy.lock_timeout_ms,
                statement_timeout_ms=policy.statement_timeout_ms,
                sql=tuple(s.sql for s in unit.steps),
            )
        )
        t0 = time.monotonic()
        error, watch = _attempt(r, unit, policy, attempt)
        if error is None:
            if not unit.transactional:
                _record(r, unit, attempt)
            r.emit(
                StepDone(
                    step=unit.index,
                    steps=tuple(unit.indexes),
                    attempt=attempt,
                    duration_s=round(time.monotonic() - t0, 3),
                    peak_blocked=watch.peak_blocked,
                )
            )
            return
        kind = classify(error)
        if watch.cancelled is not None and watch.cancelled != "user":
            r.emit(
                WatchdogCancel(
                    step=unit.index,
                    steps=tuple(unit.indexes),
                    attempt=attempt,
                    reason=watch.cancelled,
                    blocked=tuple(watch.blocked),
                )
            )
        if kind is Failure.CONNECTION:
            _failed(r, unit, attempt, error)
        _cleanup(r, unit, policy, invalid_before)
        if watch.cancelled == "user" or (kind is Failure.CANCELED and r.cancel.is_set()):
            _cancelled(r, unit, attempt, "cancelled while running; rolled back")
        reason = _retry_reason(kind, watch)
        if reason == "blocking-while-holding":
            holding_cancels += 1
            if holding_cancels > r.options.holding_cancels_allowed:
                _failed(
                    r,
                    unit,
                    attempt,
                    error,
                    message=f"step {unit.index} holds locks that block traffic for longer than "
                    f"allowed ({r.options.watchdog.max_blocked_sessions} sessions, "
                    f"{r.options.watchdog.max_block_ms} ms); cancelled {holding_cancels} times",
                    hint="apply with --rewrite to use lock-friendly statements, or run it in a "
                    "quieter window; nothing of this step is applied",
                )
        if reason is None:
            _failed(r, unit, attempt, error)
        delay = backoff_ms(policy, attempt)
        elapsed_ms = (time.monotonic() - started) * 1000
        if attempt >= policy.max_attempts or elapsed_ms + delay > policy.total_budget_ms:
            _failed(
                r,
                unit,
                attempt,
                error,
                message=f"step {unit.index}: lock not acquired after {attempt} attempts in "
                f"{elapsed_ms / 1000:.1f} s (budget {policy.total_budget_ms / 1000:g} s)",
                hint="see the blockers above; run `pgwarden resume` later, or raise "
                "--lock-budget-s; nothing of this step is applied",
            )
        r.emit(
            Retry(
                step=unit.index,
                steps=tuple(unit.indexes),
                attempt=attempt,
                reason=reason,
                delay_ms=delay,
                sqlstate=getattr(error, "sqlstate", None),
                waited_on=tuple(watch.waited_on),
            )
        )
        if r.cancel.wait(delay / 1000):
            _cancelled(r, unit, attempt, "cancelled while waiting to retry")


def _retry_reason(kind: Failure, watch: Watch) -> str | None:
    if kind is Failure.LOCK:
        return "lock_timeout"
    if kind is Failure.CANCELED and watch.cancelled in (
        "blocking-while-waiting",
        "blocking-while-holding",
    ):
        return watch.cancelled
    return None


def _attempt(
    r: _Run, unit: Unit, policy: LockPolicy, attempt: int
) -> tuple[psycopg.Error | None, Watch]:
    conn = r.conn
    r.running = 0

    def waiting(blockers: list[Blocker]) -> None:  # from the watchdog's thread
        r.emit(
            LockWait(
                step=unit.index,
                steps=tuple(unit.indexes),
                attempt=attempt,
                phase="waiting",
                blockers=tuple(blockers),
            )
        )

    with r.watchdog.watch(conn.info.backend_pid, on_wait=waiting) as watch:
        try:
            if unit.transactional:
                with conn.transaction():
                    set_timeouts(
                        conn,
                        lock_timeout_ms=policy.lock_timeout_ms,
                        statement_timeout_ms=policy.statement_timeout_ms,
                        local=True,
                    )
                    if r.client_check:  # not for a concurrent build: it may finish orphaned
                        check_client(conn)
                    if unit.run is not None:
                        unit.run(conn)
                    for i, step in enumerate(unit.steps if unit.run is None else ()):
                        r.running = i
                        conn.execute(step.sql.encode())
                    r.running = 0
                    for step, key in zip(unit.steps, unit.keys, strict=True):
                        Journal.record_applied(conn, r.run_id, step, key)
            else:
                set_timeouts(
                    conn,
                    lock_timeout_ms=policy.lock_timeout_ms,
                    statement_timeout_ms=policy.statement_timeout_ms,
                    local=False,
                )
                conn.execute(unit.steps[0].sql.encode())
        except psycopg.Error as exc:
            return exc, watch
    return None, watch


def _record(r: _Run, unit: Unit, attempt: int) -> None:
    try:
        for step, key in zip(unit.steps, unit.keys, strict=True):
            Journal.record_applied(r.conn, r.run_id, step, key)
    except psycopg.Error as exc:
        _failed(
            r,
            unit,
            attempt,
            exc,
            message=f"step {unit.index} ran but could not be recorded: {exc}",
            hint="`pgwarden resume` checks the step's result before running it again",
        )


def _prepare(r: _Run, unit: Unit, policy: LockPolicy) -> dict[int, tuple[str, str]] | None:
    """Before a concurrent index build: reconcile with what an earlier attempt left.

    The step's index (by name, or by definition when unnamed) may be valid (the build
    finished after its client died: recorded as done, when an earlier attempt of this
    step was journalled before the index was created; an index that was there before is
    someone else's, and the statement runs as written), INVALID (a dead build: dropped,
    then built again) or still being built by another session (waited for within the
    lock budget). A REINDEX ... CONCURRENTLY: the INVALID
    copies an earlier run of it left are dropped. A DETACH ... CONCURRENTLY: see
    `_prepare_detach`.
    """
    step = unit.steps[0]
    detach = None if unit.transactional else detach_of(step)
    if detach is not None:
        return _prepare_detach(r, unit, policy, detach)
    if unit.transactional or not builds_index(step):
        return {}
    table = table_of(step)
    deadline = time.monotonic() + policy.total_budget_ms / 1000
    announced: set[int] = set()
    try:
        while True:
            found = existing_builds(
                r.conn, step, exclude_pids=r.our_pids, lock_timeout_ms=policy.lock_timeout_ms
            )
            building = [e.builder for e in found if e.builder is not None]
            if not building:
                break
            new = [b for b in building if b.pid not in announced]
            announced.update(b.pid for b in new)
            if new:
                r.emit(
                    LockWait(
                        step=unit.index,
                        steps=tuple(unit.indexes),
                        attempt=0,
                        phase="building",
                        blockers=tuple(new),
                    )
                )
            if time.monotonic() > deadline:
                b = building[0]
                _failed(
                    r,
                    unit,
                    0,
                    None,
                    message=f"step {unit.index}: session {b.pid} ({b.application or '-'}) is "
                    f"still building {b.relation}, the index this step builds",
                    hint=f"let it finish, or stop it with SELECT pg_cancel_backend({b.pid}); "
                    "then `pgwarden resume` records a finished build or rebuilds a dead one",
                )
            if r.cancel.wait(0.5):
                _cancelled(r, unit, 0, "cancelled while another session built this index")
        valid = built_by_step(r.conn, unit.keys[0], [e for e in found if e.valid])
        if valid:
            _reconciled(r, unit, f"index {valid[0].name} already valid")
            return None
        copies = reindex_leftovers(r.conn, step, exclude_pids=r.our_pids)
        dead = [(e.schema, e.name) for e in found if not e.valid]
        left = _drop(r, unit, policy, dead + copies)
        if left:
            names = ", ".join(".".join(n) for n in left)
            _failed(
                r,
                unit,
                0,
                None,
                message=f"an INVALID index {names} from an earlier run could not be dropped",
                hint=f"DROP INDEX CONCURRENTLY {names}; then `pgwarden resume`",
            )
        return invalid_indexes(r.conn, table) if table is not None else {}
    except psycopg.Error as exc:
        _failed(r, unit, 0, exc)


def _prepare_detach(
    r: _Run, unit: Unit, policy: LockPolicy, d: Detach
) -> dict[int, tuple[str, str]] | None:
    """Before a DETACH PARTITION ... CONCURRENTLY: a detach an earlier attempt (or run)
    completed is recorded as done; one it left pending is finished with FINALIZE, then
    recorded. Running the statement again would fail in both cases."""
    state = None
    try:
        state = detach_state(r.conn, d)
        if state == "pending":
            finalize(
                r.conn,
                d,
                lock_timeout_ms=policy.lock_timeout_ms,
                statement_timeout_ms=policy.statement_timeout_ms,
            )
    except psycopg.Error as exc:
        if state != "pending":
            _failed(r, unit, 0, exc)
        _failed(
            r,
            unit,
            0,
            exc,
            message=f"step {unit.index}: the detach of {d.partition} from {d.parent} an "
            f"earlier attempt left pending could not be finished: {str(exc).strip()}",
            hint=f"`pgwarden resume` finishes it, or ALTER TABLE {d.parent} DETACH PARTITION "
            f"{d.partition} FINALIZE",
        )
    if state in ("attached", "unknown"):
        return {}
    done = "finished its pending detach (FINALIZE)" if state == "pending" else "already done"
    _reconciled(r, unit, f"{d.partition} detached from {d.parent}: {done}")
    return None


def _reconciled(r: _Run, unit: Unit, why: str) -> None:
    """Record `unit` as done without running it: what it does is already there."""
    _record(r, unit, 0)
    r.emit(StepDone(step=unit.index, steps=tuple(unit.indexes), attempt=0, reconciled=why))


def _cleanup(
    r: _Run, unit: Unit, policy: LockPolicy, invalid_before: dict[int, tuple[str, str]]
) -> None:
    step = unit.steps[0]
    table = table_of(step)
    if unit.transactional or not builds_index(step) or table is None:
        return
    try:
        now = invalid_indexes(r.conn, table)
    except psycopg.Error as exc:
        _failed(r, unit, 0, exc)
    new = [name for oid, name in now.items() if oid not in invalid_before]
    if not new:
        return
    left = _drop(r, unit, policy, new)
    if left:
        names = ", ".join(".".join(n) for n in left)
        _failed(
            r,
            unit,
            0,
            None,
            message=f"the failed index build left INVALID {names}, which could not be dropped",
            hint="`pgwarden resume` drops it before building again",
        )


def _drop(
    r: _Run, unit: Unit, policy: LockPolicy, names: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    if not names:
        return []
    left = drop_invalid(r.conn, names, lock_timeout_ms=policy.lock_timeout_ms)
    r.emit(
        Cleanup(
            step=unit.index,
            steps=tuple(unit.indexes),
            dropped_invalid=tuple(".".join(n) for n in names if n not in left),
            left=tuple(".".join(n) for n in left),
        )
    )
    return left


def _announce_blockers(r: _Run, unit: Unit, attempt: int) -> None:
    from pgwarden.apply.redact import redact_blocker

    try:
        blockers = find_blockers(r.conn, unit.wanted_locks(), r.our_pids)
    except psycopg.Error as exc:
        _failed(r, unit, attempt, exc)
    if not blockers:
        return
    full = r.watchdog.policy.log_blocker_queries  # else other sessions' queries as fingerprints
    r.emit(
        LockWait(
            step=unit.index,
            steps=tuple(unit.indexes),
            attempt=attempt,
            phase="before",
            blockers=tuple(redact_blocker(b, full_query=full) for b in blockers),
        )
    )
    after = r.options.terminate_idle_blockers_after_s
    if after is not None:
        try:
            gone = terminate_idle_blockers(r.conn, blockers, after)
        except psycopg.Error as exc:
            _failed(r, unit, attempt, exc)
        if gone:
            r.emit(
                LockWait(
                    step=unit.index,
                    steps=tuple(unit.indexes),
                    attempt=attempt,
                    phase="terminated",
                    blockers=tuple(redact_blocker(b, full_query=full) for b in gone),
                )
            )


def _failed(
    r: _Run,
    unit: Unit,
    attempt: int,
    error: psycopg.Error | None,
    *,
    message: str | None = None,
    hint: str | None = None,
) -> NoReturn:
    kind = classify(error) if error is not None else Failure.STATEMENT
    text = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""
    detail = getattr(getattr(error, "diag", None), "message_detail", None)
    if text and detail:  # which key is duplicated, which row breaks the constraint
        text = f"{text} ({' '.join(str(detail).split())})"
    sqlstate = getattr(error, "sqlstate", None)
    # in a transaction of several statements, the one that failed (not the first)
    at = min(r.running, len(unit.steps) - 1)
    where, index = unit.steps[at].location, unit.indexes[at]
    if message is None:
        message = {
            Failure.CONNECTION: f"step {index} ({where}): lost the connection to the "
            f"database ({text or type(error).__name__})",
            Failure.PERMISSION: f"step {index} ({where}): permission denied: {text}",
            Failure.CANCELED: f"step {index} ({where}): ran longer than statement_timeout "
            f"and was cancelled: {text}",
        }.get(kind, f"step {index} ({where}) failed: {text}")
    if hint is None:
        hint = {
            Failure.CONNECTION: "when the server is back, `pgwarden status` shows what is "
            "applied and `pgwarden resume` continues",
            Failure.PERMISSION: "grant the privilege to the role in the URL, then "
            "`pgwarden resume`",
        }.get(
            kind,
            (
                "transactional steps were rolled back; fix the statement and run the apply "
                "again (applied steps are skipped)"
                if unit.transactional
                else "it ran outside a transaction, so nothing rolled back: an INVALID index "
                "it left is dropped (above), a pending detach is finished by the next attempt; "
                "fix the statement or the data and run the apply again (applied steps are "
                "skipped)"
            )
            if unit.run is None
            else "nothing of this Alembic revision was applied (its transaction rolled back, "
            "alembic_version with it): fix the revision file or the data it needs, then run "
            "`pgwarden apply --alembic` again; it continues after alembic_version",
        )
    r.emit(
        StepFailed(
            step=unit.index,
            steps=tuple(unit.indexes),
            attempt=attempt,
            error=message,
            sqlstate=sqlstate,
            failure=kind.value,
        )
    )
    raise _Stop(
        Outcome(
            "failed",
            step=unit.index,
            message=message,
            hint=hint,
            sqlstate=sqlstate,
            failure=kind.value,
        )
    )


def _cancelled(r: _Run, unit: Unit, attempt: int, why: str) -> NoReturn:
    r.emit(Cancelled(step=unit.index, steps=tuple(unit.indexes), attempt=attempt, why=why))
    raise _Stop(
        Outcome(
            "cancelled",
            step=unit.index,
            message=f"cancelled at step {unit.index} ({unit.steps[0].location}): {why}",
            hint="`pgwarden status` shows what is applied; `pgwarden resume` continues",
        )
    )
