"""`apply_plan` and `resume_run`: one guarded run of a plan against a database."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, replace

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.access.enforce import RoleCheck, adopt_journal, check_role
from pgwarden.analysis.context import Snapshot, take_snapshot
from pgwarden.apply.events import (
    Event,
    Observer,
    Reconnected,
    ReconnectFailed,
    Reconnecting,
    RunFinished,
    RunStarted,
    StepSkipped,
    fan_out,
)
from pgwarden.apply.executor import ExecOptions, Unit, build_units, execute, guard_owned
from pgwarden.apply.guards import LockPolicy, set_timeouts
from pgwarden.apply.identity import (
    BackupCheck,
    Identity,
    Stamp,
    catalogue_backup_check,
    check_target,
    check_writable,
    read_identity,
    read_stamp,
    user_tables,
    write_stamp,
)
from pgwarden.apply.journal import (
    Journal,
    RunInfo,
    applied_keys,
    has_history,
    plan_to_records,
    rewritten_keys,
    step_keys,
    stored_keys,
)
from pgwarden.apply.local_journal import LocalJournal
from pgwarden.apply.policy import (
    ApplyResult,
    GuardPolicy,
    Limits,
    RunOptions,
    StepPreview,
    derive_lock_policy,
    preview,
    watchdog_policy,
)
from pgwarden.apply.upgrade_guard import upgrade_in_progress
from pgwarden.apply.watchdog import Watchdog
from pgwarden.errors import DatabaseError, InputError, PgwardenError, Refused, UsageError
from pgwarden.findings import Finding, Severity
from pgwarden.lint.engine import lint_plan
from pgwarden.lint.rewrite import Rewrite, rewrite_plan
from pgwarden.pg.connect import connect
from pgwarden.pg.journal_access import check_journal_readable
from pgwarden.plan import Plan, destroys_existing
from pgwarden.rules.base import DmlLimits
from pgwarden.settings import Environment, Settings, check_env_name, is_protected
from pgwarden.sources.placeholders import refuse_placeholders

_ADVISORY_KEY = 0x70677764  # "pgwd": one apply at a time per database


@dataclass(frozen=True, slots=True)
class _Decision:
    """What the target is and what of the plan is still to run, as read at one moment."""

    stamp: Stamp | None
    applied: set[str]
    destructive: list[str]
    environment: Environment
    backup: str | None
    refusals: list[Refused]


def _lock(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Take the one-apply-per-database advisory lock (session level), or refuse."""
    row = conn.execute(
        sql.SQL("SELECT pg_try_advisory_lock({})").format(sql.Literal(_ADVISORY_KEY))
    ).fetchone()
    if not (row and row[0]):
        raise Refused(
            "another pgwarden apply is running against this database",
            hint="`pgwarden status` shows it; `pgwarden cancel` stops it",
        )


def _unlock(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    if not conn.closed and not conn.broken:
        with contextlib.suppress(psycopg.Error):
            conn.execute(
                sql.SQL("SELECT pg_advisory_unlock({})").format(sql.Literal(_ADVISORY_KEY))
            )


def _refuse_client_copy(plan: Plan) -> None:
    """`InputError` for COPY ... FROM STDIN / TO STDOUT: their data travels through the
    client, which apply is not (it runs statements only)."""
    for s in plan.steps:
        if s.kind != "CopyStmt" or s.body.get("filename"):
            continue
        if s.body.get("is_from"):
            what = "COPY ... FROM STDIN reads its rows from the client, and apply cannot feed it"
        else:
            what = "COPY ... TO STDOUT sends its rows to the client, and apply cannot take them"
        raise InputError(
            f"{s.location}: {what} (it runs the migration's statements only)",
            hint="load data from a file on the database server (COPY ... FROM '/path'), or "
            "with psql's \\copy outside the migration; nothing was applied",
            path=s.location.path,
        )


def _not_interrupted(stop: threading.Event) -> None:
    """Exit 2 when the run was cancelled (Ctrl-C, SIGTERM) before it started: nothing is
    recorded in the journal and nothing ran, so there is nothing to resume."""
    if stop.is_set():
        raise PgwardenError(
            "interrupted before the run started: nothing was changed",
            hint="run the command again when you are ready",
        )


def _new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _server_back(dsn: str, timeout_s: float, stop: threading.Event) -> bool:
    """Wait until the server accepts a connection again (False: timed out or cancelled)."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set():
        try:
            with connect(dsn, application_name="pgwarden-status", connect_timeout_s=2):
                return True
        except PgwardenError:
            pass
        if time.monotonic() >= deadline or stop.wait(1.0):
            return False
    return False


def apply_plan(
    plan: Plan,
    *,
    database_url: str | None,
    policy: GuardPolicy | None = None,
    options: RunOptions | None = None,
    settings: Settings | None = None,
    observer: Observer | None = None,
    cancel: threading.Event | None = None,
) -> ApplyResult:
    """Apply `plan` to `database_url` under the guards; a dry run only reads.

    `policy` says which target may be changed (default: unprotected environments
    only, no confirmation); `options` how the run executes. A lost connection
    (server restart, a proxy or `pg_terminate_backend` dropping the session) does
    not end the run: it waits up to `limits.reconnect_s` for the server and
    continues from the journal, like `pgwarden resume`.
    """
    cfg = settings or Settings()
    guard = policy or GuardPolicy()
    opts = options or RunOptions()
    if opts.limits.unreachable_s is None:
        limits = replace(opts.limits, unreachable_s=cfg.watchdog_unreachable_s)
        opts = replace(opts, limits=limits)
    lim, snapshot, dry_run, restamp = opts.limits, opts.snapshot, opts.dry_run, guard.restamp
    stop = cancel or threading.Event()
    _refuse_client_copy(plan)
    if not dry_run:  # the SQL runs as written: Flyway/Liquibase placeholders would not
        refuse_placeholders(((t.path, t.placeholders) for t in plan.texts), "apply")
    if cfg.require_rehearsed and not dry_run:
        from pgwarden.rehearse.record import was_rehearsed

        if was_rehearsed(plan) is None:
            raise Refused(
                f"this plan (fingerprint {plan.fingerprint()[:12]}) was never rehearsed, and the "
                "configuration sets require_rehearsed = true",
                hint="run `pgwarden rehearse` on exactly these files first (it records the "
                "fingerprint in .pgwarden/rehearsals/)",
            )
    if database_url is None:
        if not dry_run:
            raise UsageError(
                "no database given", hint="pass --database-url or set PGWARDEN_DATABASE_URL"
            )
        return _offline_preview(plan, opts.rewrite, snapshot, cfg)

    conn = connect(database_url, application_name="pgwarden-apply")
    try:
        set_timeouts(conn, lock_timeout_ms=2000, statement_timeout_ms=60_000, local=False)
        # OLD or NEW of an upgrade in progress: DDL is not replicated (upgrade_guard)
        upgrading = upgrade_in_progress(conn)
        if upgrading is not None and not dry_run:
            raise upgrading
        if not dry_run:  # a wrong role is refused before the confirmation prompt, and
            early_role_check(conn, cfg, guard)  # before anything reads pgwarden's schema
        if snapshot is None and opts.rewrite:
            snapshot = take_snapshot(database_url, sample_s=1.0)
        rewrites: tuple[Rewrite, ...] = ()
        also: list[tuple[str, ...]] | None = None
        keys = stored_keys(conn, opts.resumes) if opts.resumes else None
        if opts.rewrite:
            original = plan
            plan, rewrites = rewrite_plan(
                plan, snapshot=snapshot, findings=_reported(plan, snapshot, cfg)
            )
            if keys is None and rewrites:  # the history is the files' statements'
                keys, also = rewritten_keys(original, plan)
        keys = keys or step_keys(plan)
        units = build_units(plan, keys, opts.runners)
        ident = read_identity(conn)
        if not dry_run:
            check_writable(conn, ident)
        elif (unreadable := _journal_unreadable(conn)) is not None:
            return _blind_preview(
                conn, plan, keys, units, snapshot, lim, rewrites, guard, cfg, unreadable
            )

        def decide(interactive: bool) -> _Decision:
            stamp = read_stamp(conn, lost_ok=restamp)
            applied = applied_keys(conn, plan, keys, also)
            unstamped = stamp is None and not restamp
            pending = [u for u in units if not all(k in applied for k in u.keys)]
            # a table the run itself creates holds only rows the run wrote: no data loss
            destructive = [
                f"step {s.index} ({s.location}) destroys {d}"
                for s, d in destroys_existing(s for u in pending for s in u.steps)
            ]
            refusals: list[Refused] = []
            environment, backup = check_target(
                env_name=guard.env,
                environments=cfg.environments,
                ident=ident,
                stamp=stamp,
                destructive=destructive,
                accept_data_loss=guard.accept_data_loss,
                yes=guard.yes or not interactive,
                confirm=guard.confirm if interactive else None,
                backup_check=guard.backup_check
                or catalogue_backup_check(cfg.backup_catalogue, cfg.backup_max_age_hours),
                warn=refusals.append if dry_run else None,
                restamp=restamp,
                tables=user_tables(conn) if unstamped else 0,
                history=has_history(conn) if unstamped else False,
                config=cfg.source,
            )
            return _Decision(stamp, applied, destructive, environment, backup, refusals)

        first = decide(interactive=True)
        environment = first.environment
        roles = _check_roles(conn, environment, cfg, guard, first.refusals if dry_run else None)
        policies = {u.index: derive_lock_policy(u, snapshot, lim) for u in units}
        if dry_run:
            refused = [upgrading, *first.refusals] if upgrading else first.refusals
            warnings = tuple(
                f"a real run would be refused: {r.message} (hint: {r.hint})" for r in refused
            )
            steps = preview(plan, keys, first.applied, policies, units=units)
            return ApplyResult(
                None,
                "dry-run",
                environment.name,
                steps,
                rewrites,
                backup=first.backup,
                warnings=warnings,
                findings=_findings_ahead(plan, snapshot, cfg, steps),
            )
        _not_interrupted(stop)
        _lock(conn)
        try:
            # Another run may have applied steps or stamped the database while this one
            # was being confirmed: what runs is decided again, under the lock.
            now = decide(interactive=False)
            if now.environment.protected and not (first.environment.protected or guard.yes):
                raise Refused(
                    f"{now.environment.name!r} became protected while this run was starting "
                    "(another run stamped the database)",
                    hint="run the apply again to confirm, or pass --yes",
                )
            if now.environment.protected and not first.environment.protected:
                roles = _check_roles(conn, now.environment, cfg, guard, None)
            setup = _RunSetup(
                dsn=database_url,
                plan=plan,
                keys=keys,
                units=units,
                ident=ident,
                decision=now,
                restamp=restamp,
                # What the stamp records: the environment's own protection (a run leaving
                # a protected stamp is confirmed as protected, the new stamp is not).
                stamp_environment=Environment(
                    now.environment.name,
                    is_protected(
                        now.environment.name,
                        cfg.environments,
                        None if now.stamp is None or restamp else now.stamp.protected,
                    ),
                ),
                policies=policies,
                options=opts,
                accept_data_loss=guard.accept_data_loss if now.destructive else None,
                steps=preview(plan, keys, now.applied, policies, units=units),
                rewrites=rewrites,
                role_events=() if roles is None else roles.events,
                journal_owner=None if roles is None else roles.journal_owner,
            )
            _not_interrupted(stop)  # the last moment before anything is recorded or run
            result = _run(conn, setup, stop, observer)
        finally:
            _unlock(conn)
    finally:
        conn.close()
    return _after_lost_connection(
        result,
        database_url=database_url,
        backup_check=guard.backup_check,
        break_glass=guard.break_glass,
        options=replace(opts, snapshot=snapshot),
        settings=settings,
        observer=observer,
        cancel=stop,
    )


def _after_lost_connection(
    result: ApplyResult,
    *,
    database_url: str,
    backup_check: BackupCheck | None,
    break_glass: str | None,
    options: RunOptions,
    settings: Settings | None,
    observer: Observer | None,
    cancel: threading.Event,
) -> ApplyResult:
    """`result`, or, when its connection was lost, the run resumed once the server is back
    (each resume may do the same, `limits.reconnects` times in all)."""
    outcome = result.outcome
    if outcome is None or outcome.failure != "connection":
        return result
    limits = options.limits
    if limits.reconnect_s <= 0 or limits.reconnects <= 0 or cancel.is_set():
        return result
    emit = observer or (lambda _e: None)
    emit(Reconnecting(run=result.run_id, timeout_s=limits.reconnect_s))
    if not _server_back(database_url, limits.reconnect_s, cancel):
        emit(ReconnectFailed(run=result.run_id))
        return result
    emit(Reconnected(run=result.run_id))
    from pgwarden.apply.resume import resume_run  # resume runs apply_plan again

    return resume_run(
        database_url=database_url,
        run_id=result.run_id,
        # this run was confirmed already
        policy=GuardPolicy(
            env=result.environment, yes=True, backup_check=backup_check, break_glass=break_glass
        ),
        options=RunOptions(
            limits=replace(limits, reconnects=limits.reconnects - 1),
            snapshot=options.snapshot,
            journal_file=options.journal_file,
            runners=options.runners,  # Alembic revisions that run online
        ),
        settings=settings,
        observer=observer,
        cancel=cancel,
    )


def _journal_unreadable(conn: psycopg.Connection[tuple[object, ...]]) -> DatabaseError | None:
    """Why this role may not read pgwarden's schema (stamp, history), or None."""
    try:
        check_journal_readable(conn)
    except DatabaseError as exc:
        return exc
    return None


def _blind_preview(
    conn: psycopg.Connection[tuple[object, ...]],
    plan: Plan,
    keys: list[str],
    units: list[Unit],
    snapshot: Snapshot | None,
    lim: Limits,
    rewrites: tuple[Rewrite, ...],
    guard: GuardPolicy,
    cfg: Settings,
    unreadable: DatabaseError,
) -> ApplyResult:
    """A dry run by a role that may not read pgwarden's schema: the plan, its locks and
    timeouts, each step's state `unknown` (the history is unread), and what could not be
    checked, instead of stopping at the first read of the stamp."""
    warnings = [
        f"{unreadable.message}: which steps are already applied and what the stamp records "
        "(environment, protection, identity) are unknown, so every step is shown as unknown and "
        "the target is not checked; a real run as this role stops before changing "
        f"anything (hint: {unreadable.hint})"
    ]
    name = guard.env
    if name is not None:
        check_env_name(name)
        refusals: list[Refused] = []
        protected = is_protected(name, cfg.environments, None)
        _check_roles(conn, Environment(name, protected), cfg, guard, refusals)
        warnings += [f"a real run would be refused: {r.message} (hint: {r.hint})" for r in refusals]
    policies = {u.index: derive_lock_policy(u, snapshot, lim) for u in units}
    steps = preview(plan, keys, set(), policies, unknown=True, units=units)
    findings = _findings_ahead(plan, snapshot, cfg, steps)
    return ApplyResult(
        None, "dry-run", name, steps, rewrites, warnings=tuple(warnings), findings=findings
    )


_GUARD_OWNED_RULES = frozenset({"PW120", "PW122"})  # lock_timeout: apply sets its own


def _findings_ahead(
    plan: Plan, snapshot: Snapshot | None, cfg: Settings, steps: tuple[StepPreview, ...]
) -> tuple[Finding, ...]:
    """Lint's errors and warnings on the steps a run would still execute (pending, or
    unknown when the history is unread), as `pgwarden lint` judges them with the same
    configuration; the timeouts the guard sets itself are left out."""
    ahead = {s.index for s in steps if s.state in ("pending", "unknown")}
    if not ahead:
        return ()
    result = lint_plan(
        plan,
        snapshot=snapshot,
        ignore=cfg.ignore,
        dml=DmlLimits(cfg.dml_max_rows, cfg.dml_max_share),
        unknown_type_change=cfg.unknown_type_change,
    )
    return tuple(
        f
        for f in result.findings
        if f.step in ahead and f.severity is not Severity.NOTE and f.code not in _GUARD_OWNED_RULES
    )


def _reported(plan: Plan, snapshot: Snapshot | None, cfg: Settings) -> tuple[Finding, ...]:
    """The plan's findings as `pgwarden lint` reports them with these settings: what the
    configuration ignores (and inline ignores) is not rewritten."""
    from pgwarden.lint.engine import lint_plan

    found = lint_plan(
        plan, snapshot=snapshot, ignore=cfg.ignore, unknown_type_change=cfg.unknown_type_change
    )
    return tuple(found.findings)


def _offline_preview(
    plan: Plan, rewrite: bool, snapshot: Snapshot | None, cfg: Settings
) -> ApplyResult:
    rewrites: tuple[Rewrite, ...] = ()
    if rewrite:
        plan, rewrites = rewrite_plan(
            plan, snapshot=snapshot, findings=_reported(plan, snapshot, cfg)
        )
    keys = step_keys(plan)
    lim = Limits()
    try:
        units: list[Unit] | None = build_units(plan, keys)
    except UsageError:
        units = None
    policies = {u.index: derive_lock_policy(u, snapshot, lim) for u in units or ()}
    steps = preview(plan, keys, set(), policies, units=units)
    findings = _findings_ahead(plan, snapshot, cfg, steps)
    return ApplyResult(None, "dry-run", None, steps, rewrites, findings=findings)


@dataclass(frozen=True, slots=True)
class _RunSetup:
    """Everything a confirmed run needs, as decided under the apply lock."""

    dsn: str
    plan: Plan
    keys: list[str]
    units: list[Unit]
    ident: Identity
    decision: _Decision
    restamp: bool
    stamp_environment: Environment  # what the stamp records
    policies: dict[int, LockPolicy]
    options: RunOptions
    accept_data_loss: str | None  # recorded only when the run destroys something
    steps: tuple[StepPreview, ...]
    rewrites: tuple[Rewrite, ...]
    role_events: tuple[Event, ...] = ()  # the role check's (break glass, no policy)
    journal_owner: str | None = None  # break glass: the pgwarden schema goes to this role


def early_role_check(
    conn: psycopg.Connection[tuple[object, ...]], cfg: Settings, guard: GuardPolicy
) -> None:
    """The role check on what the configuration, --env and the stamp say now, before the
    target checks ask for a confirmation; `_check_roles` decides again on the confirmed
    environment. An --env the configuration declares protected with a role policy is
    checked before the stamp is read: another role may not be able to read it."""
    declared = None if guard.env is None else cfg.environments.get(guard.env)
    if declared is not None and declared.protected and declared.roles is not None:
        _check_roles(conn, Environment(declared.name, True), cfg, guard, None)
        return
    stamp = read_stamp(conn, lost_ok=True)
    name = guard.env or (stamp.environment if stamp is not None else None)
    if name is None:
        return
    stamped = stamp.protected if stamp is not None and stamp.environment == name else None
    if is_protected(name, cfg.environments, stamped):
        declared = cfg.environments.get(name)
        if declared is not None and declared.roles is not None:
            _check_roles(conn, Environment(name, True), cfg, guard, None)


def _check_roles(
    conn: psycopg.Connection[tuple[object, ...]],
    environment: Environment,
    cfg: Settings,
    guard: GuardPolicy,
    warn: list[Refused] | None,
) -> RoleCheck | None:
    """The role policy's check of this session (pgwarden.access.enforce); with `warn` (a dry
    run) a refusal is reported there instead of raised."""
    declared = cfg.environments.get(environment.name)
    try:
        return check_role(
            conn,
            environment=environment.name,
            protected=environment.protected,
            policy=None if declared is None else declared.roles,
            break_glass=guard.break_glass,
            config=cfg.source,
        )
    except Refused as exc:
        if warn is None:
            raise
        warn.append(exc)
        return None


def _run(
    conn: psycopg.Connection[tuple[object, ...]],
    setup: _RunSetup,
    stop: threading.Event,
    observer: Observer | None,
) -> ApplyResult:
    dsn, plan, keys, ident = setup.dsn, setup.plan, setup.keys, setup.ident
    lim, journal_file = setup.options.limits, setup.options.journal_file
    stamp, environment = setup.decision.stamp, setup.stamp_environment
    env = environment.name
    user, host = RunInfo.who()
    run_id = _new_run_id()
    info = RunInfo(
        run_id=run_id,
        kind=setup.options.kind,
        environment=env,
        system_identifier=ident.system_identifier,
        plan_fingerprint=plan.fingerprint(),
        plan=plan_to_records(plan, keys),
        accept_data_loss=setup.accept_data_loss,
        resumes=setup.options.resumes,
        os_user=user,
        host=host,
    )
    local = LocalJournal(journal_file, run_id) if journal_file else None
    if local is not None:  # fail before anything changes if the local journal cannot be written
        local(_started(info, ident))
    try:
        Journal.ensure_schema(conn)
        if stamp is None or setup.restamp or not stamp.complete:
            write_stamp(conn, env, ident, f"{user}@{host}", protected=environment.protected)
        if setup.journal_owner is not None:
            adopt_journal(conn, setup.journal_owner)
    except pge.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"cannot create or write the pgwarden schema: {str(exc).strip()}",
            hint="grant CREATE on the database to this role once, or create the schema as "
            "the owner with a first `pgwarden apply`",
            sqlstate=exc.sqlstate,
        ) from None
    jconn = connect(dsn, application_name="pgwarden-journal")
    journal = Journal(jconn, run_id)
    try:
        journal.start(
            info,
            conn.info.backend_pid,
            [(p.index, keys[p.index], p.point_of_no_return) for p in setup.steps],
        )
        for s in plan.steps:
            if s.is_transaction_control or guard_owned(s):
                journal(StepSkipped(step=s.index, steps=(s.index,), reason="guard"))
        emit = fan_out([observer, journal, local])
        started = _started(info, ident)
        if observer is not None:
            observer(started)
        journal(started)
        for event in setup.role_events:
            emit(event)
        options = ExecOptions(
            lock=LockPolicy(),
            watchdog=watchdog_policy(lim),
            health=lim.health,
            terminate_idle_blockers_after_s=lim.terminate_idle_blockers_after_s,
            unit_lock=setup.policies,
        )
        watchdog = Watchdog(
            dsn,
            options.watchdog,
            stop,
            cancel_requested=lambda c: Journal.cancel_requested(c, run_id),
            run_id=run_id,
            guarded=[conn, jconn],
        )
        watchdog.start()
        try:
            outcome = execute(
                conn,
                setup.units,
                run_id=run_id,
                applied=setup.decision.applied,
                options=options,
                emit=emit,
                cancel=stop,
                watchdog=watchdog,
                our_pids=[jconn.info.backend_pid],
            )
        finally:
            watchdog.stop()
        emit(RunFinished(state=outcome.state, message=outcome.message, done=tuple(outcome.done)))
    except PgwardenError as exc:
        journal.finish("failed", exc.message)
        raise
    except KeyboardInterrupt:
        journal.finish("cancelled", "interrupted")
        raise
    finally:
        jconn.close()
    return ApplyResult(
        run_id,
        outcome.state,
        env,
        setup.steps,
        setup.rewrites,
        outcome,
        journal_problem=journal.broken,
        backup=setup.decision.backup,
        local_journal_problem=local.broken if local is not None else None,
    )


def _started(info: RunInfo, ident: Identity) -> RunStarted:
    return RunStarted(
        run_id=info.run_id,
        run_kind=info.kind,
        environment=info.environment,
        system_identifier=ident.system_identifier,
        database=ident.database_name,
        plan_fingerprint=info.plan_fingerprint,
        os_user=info.os_user,
        host=info.host,
        accept_data_loss=info.accept_data_loss,
        statements=tuple(str(r["sql"]) for r in info.plan),
    )
