"""What a run may do: the guard policy, the run options, limits, lock policies, and the
per-step preview of an apply run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pgwarden.analysis.context import Snapshot, estimate_seconds
from pgwarden.analysis.effects import LockMode
from pgwarden.apply.executor import Outcome, Runner, Unit, build_units, guard_owned
from pgwarden.apply.guards import LockPolicy
from pgwarden.apply.health import HealthPolicy
from pgwarden.apply.identity import BackupCheck
from pgwarden.apply.indexes import builds_index
from pgwarden.apply.watchdog import WatchdogPolicy
from pgwarden.errors import UsageError
from pgwarden.findings import Finding
from pgwarden.lint.rewrite import Rewrite
from pgwarden.pg.stats import TableStats
from pgwarden.plan import Plan, Step, destroys_existing


@dataclass(frozen=True, slots=True)
class Limits:
    """User overrides; None derives the value from the table's traffic."""

    lock_timeout_ms: int | None = None
    statement_timeout_ms: int | None = None
    lock_budget_s: float | None = None
    max_blocked_sessions: int | None = None
    max_block_ms: int | None = None
    terminate_idle_blockers_after_s: float | None = None
    health: HealthPolicy | None = field(default_factory=HealthPolicy)
    # After a lost connection: wait up to this long for the server, then continue the
    # run from its journal (as `pgwarden resume`); 0 stops with exit 3 instead.
    reconnect_s: float = 60.0
    reconnects: int = 3  # at most this many in one run
    log_blocker_queries: bool = False  # other sessions' queries whole in events, not fingerprints
    # The watchdog's read timeout; None: the setting watchdog.unreachable_s (apply_plan).
    unreachable_s: float | None = None


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """Which target a run may change, and who said so (docs/apply.md "Target checks")."""

    env: str | None = None  # the environment the user means (--env)
    yes: bool = False  # skip the typed confirmation of a protected target
    accept_data_loss: str | None = None  # the reason destructive steps may run without a backup
    restamp: bool = False  # bind the database to `env` anew
    confirm: Callable[[str], str] | None = None  # asks for the database name; None: no prompt
    backup_check: BackupCheck | None = None  # None: the configured backup catalogue
    # --break-glass: the reason a declared break-glass role runs instead of the migration
    # role on a protected environment (pgwarden.access.enforce; recorded with the run)
    break_glass: str | None = None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a run executes."""

    rewrite: bool = False  # apply the lint fixes (lock-friendly statements)
    dry_run: bool = False  # read only: preview the steps and what a real run would refuse
    limits: Limits = field(default_factory=Limits)
    snapshot: Snapshot | None = None  # table traffic and sizes; None: taken when rewriting
    journal_file: str | Path | None = None  # the local JSON-lines journal
    kind: str = "apply"  # apply, resume (what the journal records)
    resumes: str | None = None  # the run this one continues
    # Steps run by a callable instead of their SQL, by the step's SQL (Alembic revisions
    # that only run online: pgwarden.sources.alembic_online)
    runners: Mapping[str, Runner] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepPreview:
    """One step as `--dry-run` shows it."""

    index: int
    sql: str
    location: str
    transaction: int | None
    # pending, applied, skipped (guard-owned timeout / transaction control), unknown (the
    # history could not be read)
    state: str
    point_of_no_return: bool
    locks: tuple[str, ...]
    lock_timeout_ms: int | None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What an apply (or dry run) did."""

    run_id: str | None
    state: str  # done, failed, cancelled, dry-run
    environment: str | None
    steps: tuple[StepPreview, ...]
    rewrites: tuple[Rewrite, ...]
    outcome: Outcome | None = None
    journal_problem: str | None = None
    backup: str | None = None
    local_journal_problem: str | None = None  # the local journal failed after the start
    warnings: tuple[str, ...] = ()  # dry run: what a real run would refuse, and why
    # dry run: lint's errors and warnings on the steps still to run (the guard's own
    # timeouts, PW120/PW122, left out)
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state in ("done", "dry-run")


def derive_lock_policy(unit: Unit, snapshot: Snapshot | None, limits: Limits) -> LockPolicy:
    """Short waits on busy tables; statement_timeout from the estimated work."""
    rate: float | None = None
    work_s = 0.0
    tables: dict[str, TableStats] = {}
    for rel in unit.wanted_locks():
        t = snapshot.table(rel) if snapshot is not None else None
        if t is None:
            continue
        tables[rel] = t
        r = (t.writes_per_s or 0.0) + (t.reads_per_s or 0.0)
        rate = r if rate is None else max(rate, r)
    # One pass over the steps (a whole file is one unit): the work on each known table.
    for s in unit.steps if tables else ():
        for rel in set(s.effects.rewrites):
            if rel in tables:
                work_s += estimate_seconds(tables[rel], rewrite=True)
        kind = "index" if s.kind == "IndexStmt" else "fk"
        for rel in set(s.effects.scans):
            if rel in tables and rel not in s.effects.rewrites:
                work_s += estimate_seconds(tables[rel], kind=kind)
    budget_ms = (
        LockPolicy().total_budget_ms
        if limits.lock_budget_s is None
        else int(limits.lock_budget_s * 1000)
    )
    # A concurrent index build's waits (for SHARE UPDATE EXCLUSIVE, then for the
    # transactions that predate each phase) hold up no reads or writes, and a lock timeout
    # in the later ones throws the whole build away: the next attempt builds it again.
    # It waits within the lock budget instead (the watchdog still cancels it when
    # sessions queue behind it).
    concurrent = not unit.transactional and any(builds_index(s) for s in unit.steps)
    if limits.lock_timeout_ms is not None:
        lock_ms = limits.lock_timeout_ms
    elif concurrent:
        lock_ms = budget_ms
    elif rate is None or rate >= 10:
        lock_ms = 500  # unknown traffic is assumed busy
    elif rate >= 1:
        lock_ms = 1000
    else:
        lock_ms = 2000
    if limits.statement_timeout_ms is not None:
        stmt_ms = limits.statement_timeout_ms
    elif snapshot is None:
        stmt_ms = 3_600_000
    else:
        stmt_ms = int(max(60.0, 10 * work_s) * 1000)
        if concurrent and limits.lock_timeout_ms is None:
            stmt_ms += lock_ms  # its waits count against statement_timeout too
    base = LockPolicy(lock_timeout_ms=lock_ms, statement_timeout_ms=stmt_ms)
    if limits.lock_budget_s is not None:
        base = replace(base, total_budget_ms=budget_ms)
    return base


def watchdog_policy(limits: Limits) -> WatchdogPolicy:
    d = WatchdogPolicy()
    return WatchdogPolicy(
        max_blocked_sessions=d.max_blocked_sessions
        if limits.max_blocked_sessions is None
        else limits.max_blocked_sessions,
        max_block_ms=d.max_block_ms if limits.max_block_ms is None else limits.max_block_ms,
        log_blocker_queries=limits.log_blocker_queries,
        unreachable_s=d.unreachable_s if limits.unreachable_s is None else limits.unreachable_s,
    )


_TITLES = {m: m.title for m in LockMode}  # a DML step on a table with many foreign keys
# lists hundreds of locks: their titles are looked up, not rebuilt each time


def preview(
    plan: Plan,
    keys: Sequence[str],
    applied: set[str],
    policies: dict[int, LockPolicy] | None = None,
    *,
    unknown: bool = False,
    units: Sequence[Unit] | None = None,
) -> tuple[StepPreview, ...]:
    """Each step with its state, its locks and whether it is a point of no return (it
    destroys data that exists before the run); `unknown`: the history could not be read,
    so no step is pending or applied."""
    unit_of: dict[int, int] = {}
    try:
        for u in units if units is not None else build_units(plan, keys):
            for s in u.steps:
                unit_of[s.index] = u.index
    except UsageError:
        pass
    title = _TITLES
    states = [_state(s, k, applied, unknown=unknown) for s, k in zip(plan.steps, keys, strict=True)]
    ahead = (s for s, state in zip(plan.steps, states, strict=True) if state != "applied")
    # what this run destroys, as the data-loss guard judges it: not a table an earlier step
    # of the run creates (its rows are only those the run wrote), nor what an applied step did
    destroying = {s.index for s, _ in destroys_existing(ahead)}
    out = []
    for s, state in zip(plan.steps, states, strict=True):
        pol = (policies or {}).get(unit_of.get(s.index, -1))
        out.append(
            StepPreview(
                index=s.index,
                sql=s.sql,
                location=str(s.location),
                transaction=s.transaction,
                state=state,
                point_of_no_return=s.index in destroying,
                locks=tuple(f"{title[m]} on {rel}" for rel, m in s.effects.strongest().items()),
                lock_timeout_ms=pol.lock_timeout_ms if pol else None,
            )
        )
    return tuple(out)


def _state(step: Step, key: str, applied: set[str], *, unknown: bool) -> str:
    """A step's state in the preview: skipped, unknown, applied or pending."""
    if step.is_transaction_control or guard_owned(step):
        return "skipped"
    if unknown:
        return "unknown"
    return "applied" if key in applied else "pending"
