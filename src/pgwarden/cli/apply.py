"""CLI commands that change a database: apply, status, cancel, resume, backfill."""

from __future__ import annotations

import threading
from typing import Any

import click
from rich.markup import escape
from rich.text import Text

from pgwarden.cli import (
    EXIT_APPLY,
    _fail,
    dsn_option,
    err,
    handle_errors,
    late_ctrl_c_ignored,
    out,
    print_json,
    skip_teardown,
    styled,
)
from pgwarden.cli.analyse import alembic_options
from pgwarden.cli.interaction import (
    confirm_prompt,
    ctrl_c_cancels,
    require_stdin,
    run_observer,
)
from pgwarden.cli.options import (
    accept_data_loss_option,
    config_option,
    log_format_option,
    stacked,
    yes_option,
)
from pgwarden.events import BackfillBatch, Event, HealthPause, fan_out
from pgwarden.notify import attach
from pgwarden.report.events import render
from pgwarden.sources.labels import statement_label

_DEFAULT_JOURNAL = ".pgwarden/journal.jsonl"


def _policy(kw: dict[str, Any], *, restamp: bool) -> Any:
    """The guard policy of the command line's --env, --yes, --accept-data-loss."""
    from pgwarden.apply.api import GuardPolicy

    return GuardPolicy(
        env=kw["env"],
        yes=kw["yes"],
        accept_data_loss=kw["accept_data_loss"],
        restamp=restamp,
        confirm=confirm_prompt(),
        break_glass=kw["break_glass"],
    )


def _limits(**kw: Any) -> Any:
    from pgwarden.apply.api import Limits
    from pgwarden.apply.health import HealthPolicy

    return Limits(
        lock_timeout_ms=kw["lock_timeout_ms"],
        statement_timeout_ms=kw["statement_timeout_ms"],
        lock_budget_s=kw["lock_budget_s"],
        max_blocked_sessions=kw["max_blocked_sessions"],
        max_block_ms=kw["max_block_ms"],
        terminate_idle_blockers_after_s=kw["terminate_blockers_after"],
        health=None if kw["no_health_gate"] else HealthPolicy(deadline_s=kw["health_deadline_s"]),
        reconnect_s=kw["reconnect_s"],
        log_blocker_queries=kw["log_blocker_queries"],
    )


_break_glass_option = click.option(
    "--break-glass",
    "break_glass",
    default=None,
    metavar="REASON",
    help="Run as a declared break-glass role instead of the migration role on a protected "
    "env (recorded with who, when and REASON; docs/audit.md).",
)


_guard_options = stacked(
    click.option(
        "--env",
        "env",
        default=None,
        help="Target environment: declared in the config, or the one the database's stamp records.",
    ),
    yes_option,
    accept_data_loss_option,
    _break_glass_option,
    click.option(
        "--lock-timeout-ms",
        type=click.IntRange(1),
        default=None,
        help="lock_timeout of each attempt (default: 500 ms on a busy or unknown table, "
        "1000-2000 ms on quiet ones, from --stats).",
    ),
    click.option(
        "--statement-timeout-ms",
        type=click.IntRange(1),
        default=None,
        help="statement_timeout of each step (default: 10x the estimated work, at least "
        "60 s, from --stats; 1 h without).",
    ),
    click.option(
        "--lock-budget-s",
        type=click.FloatRange(0.1),
        default=None,
        help="Give up a step after retrying its lock this long in all (default: 600).",
    ),
    click.option(
        "--max-blocked-sessions",
        type=click.IntRange(0),
        default=None,
        help="Watchdog: cancel our statement when more sessions than this queue behind "
        "it (default: 2).",
    ),
    click.option(
        "--max-block-ms",
        type=click.IntRange(0),
        default=None,
        help="Watchdog: how long those sessions may queue before it cancels (default: 100).",
    ),
    click.option(
        "--terminate-blockers-after",
        type=click.FloatRange(0),
        default=None,
        metavar="SECONDS",
        help="Terminate blockers idle in a transaction for this long.",
    ),
    click.option("--no-health-gate", is_flag=True, help="Do not pause on an unhealthy db."),
    click.option(
        "--health-deadline-s",
        type=click.FloatRange(0),
        default=300.0,
        show_default=True,
        help="Stop (resumable) when the database stays unhealthy this long before a step.",
    ),
    click.option(
        "--reconnect-s",
        type=click.FloatRange(0),
        default=60.0,
        show_default=True,
        help="After a lost connection, wait this long for the server and continue the "
        "run (0: stop with exit 3).",
    ),
    click.option(
        "--journal-file",
        default=_DEFAULT_JOURNAL,
        show_default=True,
        help="Local JSON-lines journal.",
    ),
    log_format_option,
    click.option(
        "--log-blocker-queries",
        is_flag=True,
        help="Store and print blocking sessions' queries whole (default: a fingerprint "
        "with every literal replaced, at most 200 characters).",
    ),
    config_option,
    dsn_option,
)


def _finish(result: Any, dsn: str | None) -> None:
    """Report how the run ended, and exit with its code. The run is over: a late Ctrl-C (a
    second press landing as the first one's cancel finished) is ignored here instead of
    ending the process by SIGINT (exit 130) after the report; nothing is left to clean up
    (connections closed, notifications sent), so the process ends as soon as it is
    printed, without the interpreter's teardown (where such a press landed too)."""
    skip_teardown(result)
    with late_ctrl_c_ignored():
        _report(result, dsn)


def _report(result: Any, dsn: str | None) -> None:
    from pgwarden.apply.api import ApplyResult

    assert isinstance(result, ApplyResult)
    if result.journal_problem:
        err.print(
            styled(
                "[yellow]warning:[/] the journal in the database could not be written ({}); "
                "the local journal has every event",
                result.journal_problem,
            )
        )
    o = result.outcome
    if result.local_journal_problem:
        # What committed is in the database journal; say so instead of "nothing ran".
        done = ", ".join(map(str, o.done)) if o and o.done else "none"
        state = "done" if result.state == "done" else f"{result.state}: {o.message if o else ''}"
        _fail(
            f"run {result.run_id} {state}; steps committed in this run: {done}; "
            f"{result.local_journal_problem}",
            "`pgwarden status` shows every event from the database journal; free disk space "
            "or pass --journal-file elsewhere"
            + ("" if result.state == "done" else ", then resume"),
            EXIT_APPLY,
        )
    if result.state == "done":
        n = len(o.done) if o else 0
        out.print(
            f"run {result.run_id}: done ({n} steps applied, {len(o.skipped) if o else 0} skipped)"
        )
        return
    assert o is not None
    message = o.message or result.state
    if o.failure == "connection" and dsn is not None and result.run_id is not None:
        # Check, on a new connection, what the server did with the step: it may still run it.
        from pgwarden.apply.cancel import end_lost_run

        left = end_lost_run(dsn, result.run_id)
        if left:
            message = f"{message}; {left}"
    _fail(message, o.hint, EXIT_APPLY)


_LISTED_FINDINGS = 100  # a plan of thousands of hazardous statements: the count says the rest


def _render_preview(result: Any) -> None:
    from pgwarden.apply.api import ApplyResult

    assert isinstance(result, ApplyResult)
    lines: list[Text] = []  # printed at once: one print per row cost 80 % of a large dry run
    for rw in result.rewrites:
        lines.append(
            styled(
                "[bold]rewrite[/] step {} ({}): {}",
                rw.step,
                rw.code,
                " ".join(rw.original.split())[:100],
            )
        )
        lines.extend(Text("    → " + " ".join(r.split())) for r in rw.replacement)
    found: dict[int | None, list[Any]] = {}
    for f in result.findings[:_LISTED_FINDINGS]:  # the rest are counted below
        found.setdefault(f.step, []).append(f)
    tx: int | None = None
    numbers: dict[int, int] = {}  # numbered in the order they run (a rewrite splits some)
    for n, s in enumerate(result.steps):
        if s.transaction != tx or (n == 0 and s.transaction is None):
            if s.transaction is not None:
                number = numbers.setdefault(s.transaction, len(numbers))
                lines.append(styled("[dim]-- transaction {}[/]", number))
            else:  # after a transaction, or first: say these run each on its own
                lines.append(styled("[dim]-- each statement on its own[/]"))
            tx = s.transaction
        mark = {
            "applied": "[dim]applied[/]",
            "skipped": "[dim]skipped[/]",
            "unknown": "[yellow]unknown[/]",
        }.get(s.state, "pending")
        pnr = " [bold red]POINT OF NO RETURN[/]" if s.point_of_no_return else ""
        details = [*s.locks]
        if s.lock_timeout_ms:
            details.append(f"lock_timeout {s.lock_timeout_ms} ms")
        extra = " [dim]({})[/]" if details else "{}"
        lines.append(
            styled(
                "{:>3} " + mark + " {}" + extra + pnr,
                s.index,
                statement_label(s.sql, 110),
                "; ".join(details),
            )
        )
        for f in found.get(s.index, ()):
            color = "red" if f.severity.value == "error" else "yellow"
            lines.append(
                styled(
                    "      [" + color + "]{} {} {}[/]: {}",
                    f.severity.value,
                    f.code,
                    f.name,
                    statement_label(f.message, 160),
                )
            )
    if lines:
        out.print(Text("\n").join(lines))
    env = f" against {result.environment}" if result.environment else ""
    for warning in result.warnings:
        err.print(styled("[bold yellow]warning:[/] {}", warning))
    if result.findings:
        errors = sum(f.severity.value == "error" for f in result.findings)
        warns = len(result.findings) - errors
        unlisted = len(result.findings) - _LISTED_FINDINGS
        out.print(
            f"lint: {errors} error{'s' * (errors != 1)}, {warns} warning{'s' * (warns != 1)} "
            "on the steps to run"
            + (f", the first {_LISTED_FINDINGS} listed" if unlisted > 0 else "")
            + " (`pgwarden lint` on these files explains them"
            + ("" if result.rewrites else "; --rewrite fixes those it can")
            + ")"
        )
    out.print(f"dry run{env}: nothing was executed")


@click.command()
@click.argument("paths", nargs=-1, required=False)
@click.option("--rewrite", is_flag=True, help="Apply the lint fixes (lock-friendly statements).")
@click.option("--dry-run", is_flag=True, help="Show the plan; execute nothing.")
@click.option("--restamp", is_flag=True, help="Re-bind this database to --env.")
@click.option("--stats", "stats_file", default=None, metavar="FILE", help="Stats snapshot file.")
@click.option(
    "--no-file-transaction", is_flag=True, help="Files do not run inside one transaction each."
)
@_guard_options
@alembic_options
@handle_errors
def apply(
    paths: tuple[str, ...],
    rewrite: bool,
    dry_run: bool,
    restamp: bool,
    stats_file: str | None,
    no_file_transaction: bool,
    alembic_ini: str | None,
    revision_range: str | None,
    unapplied: bool,
    **kw: Any,
) -> None:
    """Apply SQL migrations under lock guard, watchdog, identity guard and journal.

    PATHS are .sql files or folders; or --alembic [alembic.ini] applies Alembic revisions
    (their offline SQL, alembic_version updates included; use --unapplied).
    """
    from pgwarden import commands
    from pgwarden.apply.api import RunOptions, apply_plan
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.settings import load_settings

    settings = load_settings(kw["config"])
    dsn = resolve_dsn(kw["database_url"], required=not dry_run)
    ctx = commands.load_context(stats_file=stats_file) if stats_file else None
    wrap = settings.file_transaction and not no_file_transaction
    from pgwarden.cli.analyse import alembic_sources

    sources = alembic_sources(paths, alembic_ini, revision_range, unapplied, dsn, strict=True)
    require_stdin(paths, "apply")
    plan = commands.load_plan(paths, context=ctx, file_transaction=wrap, sources=sources)
    cancel = threading.Event()
    with (
        ctrl_c_cancels(cancel, dsn, kw["journal_file"]) as interrupts,
        attach(settings, command="apply", env=kw["env"], database_url=dsn, cancel=cancel) as hook,
    ):
        result = apply_plan(
            plan,
            database_url=dsn,
            policy=_policy(kw, restamp=restamp),
            options=RunOptions(
                rewrite=rewrite,
                dry_run=dry_run,
                limits=_limits(**kw),
                snapshot=ctx.snapshot if ctx else None,
                journal_file=kw["journal_file"],
                runners=sources.runners if sources is not None else {},
            ),
            settings=settings,
            observer=fan_out([run_observer(interrupts, kw["log_format"]), hook]),
            cancel=cancel,
        )
    if dry_run:
        _render_preview(result)
        return
    _finish(result, dsn)


@click.command()
@click.option("--run", "run_id", default=None, help="Run id (default: the latest unfinished).")
@_guard_options
@handle_errors
def resume(run_id: str | None, **kw: Any) -> None:
    """Continue an interrupted, failed or cancelled apply from the journal."""
    from pgwarden.apply.api import RunOptions, resume_run
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.settings import load_settings

    dsn = resolve_dsn(kw["database_url"])
    assert dsn is not None
    settings = load_settings(kw["config"])
    cancel = threading.Event()
    with (
        ctrl_c_cancels(cancel, dsn, kw["journal_file"]) as interrupts,
        attach(settings, command="resume", env=kw["env"], database_url=dsn, cancel=cancel) as hook,
    ):
        result = resume_run(
            database_url=dsn,
            run_id=run_id,
            # without --accept-data-loss, the run's own reason holds
            policy=_policy(kw, restamp=False),
            options=RunOptions(limits=_limits(**kw), journal_file=kw["journal_file"]),
            settings=settings,
            observer=fan_out([run_observer(interrupts, kw["log_format"]), hook]),
            cancel=cancel,
        )
    _finish(result, dsn)


@click.command()
@dsn_option
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format."
)
@config_option
@handle_errors
def status(database_url: str | None, fmt: str, config: str | None) -> None:
    """Show the target's stamp and the latest runs, with live progress."""
    from dataclasses import asdict

    from pgwarden.apply.api import status as read_status
    from pgwarden.cli.status_view import render_break_glass, render_steps
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.settings import load_settings

    dsn = resolve_dsn(database_url)
    assert dsn is not None
    settings = load_settings(config)
    report = read_status(dsn, client_gone_s=settings.watchdog_client_gone_s)
    if fmt == "json":
        print_json(asdict(report))
        return
    if report.stamp is None:
        out.print("not stamped: no pgwarden apply has run against this database")
    else:
        st = report.stamp
        out.print(
            styled(
                "stamped [bold]{}[/] (system {}, database {} oid {}) since {}",
                st.environment,
                st.system_identifier,
                st.database_name,
                st.database_oid,
                f"{st.stamped_at:%Y-%m-%d %H:%M}",
            )
        )
    render_break_glass(report.break_glass)
    for r in report.runs:
        out.print(
            styled(
                "\nrun {} \\[{}] [bold]{}[/] started {} by {} on {}{}",
                r.run_id,
                r.kind,
                r.state,
                f"{r.started_at:%Y-%m-%d %H:%M:%S}",
                r.who,
                r.environment,
                f": {r.message}" if r.message else "",
            )
        )
        if r.backend:
            out.print(f"  {r.backend}")
        if r.state == "orphaned":
            out.print(
                f"  its client is gone: `pgwarden cancel --run {r.run_id}` stops it; "
                "`pgwarden resume` continues once it is idle"
            )
        elif r.state == "interrupted":
            out.print("  no backend left: `pgwarden resume` continues it")
        if r.resumed_by:
            out.print(f"  continued by run {r.resumed_by}")
        render_steps(r.steps)
        if r.progress:
            p = r.progress
            out.print(
                f"  progress: {p.get('command')} {p.get('phase', '')} "
                f"blocks {p.get('blocks_done', '?')}/{p.get('blocks_total', '?')} "
                f"tuples {p.get('tuples_done', '?')}/{p.get('tuples_total', '?')}"
            )
        if r.waiting_on:
            out.print(f"  waiting for a lock held by pid {', '.join(map(str, r.waiting_on))}")
        for e in reversed(r.events[:5]):  # the latest five, oldest first
            out.print(
                styled("  [dim]{} {} step {}{}[/]", e["at"][11:23], e["kind"], e["step"], _said(e))
            )


def _said(event: dict[str, Any]) -> str:
    """What a journalled event says, in a few words (`status`)."""
    said = [str(event[k]) for k in ("reason", "why", "error") if event.get(k)]
    if event.get("dropped_invalid"):
        said.append("dropped INVALID " + ", ".join(map(str, event["dropped_invalid"])))
    if event.get("reasons"):
        said.append(", ".join(map(str, event["reasons"])))
    text = statement_label("; ".join(said), 120)
    return f": {text}" if text else ""


@click.command()
@dsn_option
@click.option("--run", "run_id", default=None, help="Run id (default: the running one).")
@config_option
@handle_errors
def cancel(database_url: str | None, run_id: str | None, config: str | None) -> None:
    """Cancel a running apply from another terminal (the step rolls back cleanly)."""
    from pgwarden.apply.api import cancel_run
    from pgwarden.errors import UsageError
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.settings import load_settings

    dsn = resolve_dsn(database_url)
    assert dsn is not None
    settings = load_settings(config)
    result = cancel_run(dsn, run_id=run_id, client_gone_s=settings.watchdog_client_gone_s)
    if result.state == "not-running":  # nothing to cancel: exit 2, as nothing to resume
        raise UsageError(
            result.message,
            hint="`pgwarden status` lists the runs with their ids and states",
        )
    out.print(result.message)


@click.command()
@click.option("--table", required=True, help="Table to update (schema.name).")
@click.option("--set", "set_sql", required=True, help="SET list, e.g. \"status = 'open'\".")
@click.option("--where", "where_sql", default=None, help="Only rows matching this condition.")
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Rows in the first batch, one short transaction each.",
)
@click.option(
    "--target-batch-ms",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Batches grow or shrink to take about this long.",
)
@click.option("--env", "env", default=None, help="Target environment (from the config).")
@yes_option
@click.option("--no-health-gate", is_flag=True, help="Do not pause on an unhealthy db.")
@click.option("--again", is_flag=True, help="Run a finished backfill again, from the first row.")
@click.option(
    "--restamp",
    is_flag=True,
    help="Adopt a database that holds data but was never stamped by pgwarden, as --env "
    "(as `pgwarden apply --restamp`).",
)
@_break_glass_option
@config_option
@dsn_option
@handle_errors
def backfill(
    table: str,
    set_sql: str,
    where_sql: str | None,
    batch_size: int,
    target_batch_ms: int,
    env: str | None,
    yes: bool,
    no_health_gate: bool,
    again: bool,
    restamp: bool,
    break_glass: str | None,
    config: str | None,
    database_url: str | None,
) -> None:
    """Batched, throttled, resumable UPDATE in primary-key order."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from pgwarden.apply.backfill import BackfillSpec, check_backfill, run_backfill
    from pgwarden.apply.health import HealthPolicy
    from pgwarden.cli.environment import adopt, check_environment
    from pgwarden.pg.connect import connect, resolve_dsn
    from pgwarden.settings import Environment, load_settings

    dsn = resolve_dsn(database_url)
    assert dsn is not None
    settings = load_settings(config)
    from pgwarden.apply.role_gate import gate_command

    def loud(event: Event) -> None:
        for line in render(event):
            err.print(line)

    declared = None if env is None else settings.environments.get(env)
    early = declared is not None and declared.protected and declared.roles is not None

    def gate(environment: Environment) -> None:
        gate_command(
            dsn, environment, settings, break_glass=break_glass, command="backfill", observer=loud
        )

    from pgwarden.apply.upgrade_guard import refuse_during_upgrade

    with connect(dsn) as conn:  # OLD or NEW of an upgrade in progress: before any prompt
        refuse_during_upgrade(conn)
    if early and declared is not None:
        gate(declared)  # the role first: another role may not be able to read pgwarden's stamp
    # as apply: a database holding data but never stamped is refused, whatever --env says
    target = check_environment(
        lambda: connect(dsn),
        env,
        settings,
        yes=yes,
        unstamped_data_refused=True,
        restamp=restamp,
    )
    if not early:
        gate(target)
    spec = BackfillSpec(
        table, set_sql, where_sql, batch_size=batch_size, target_batch_ms=target_batch_ms
    )
    check_backfill(dsn, spec)  # a bad --set/--where is said before any progress output
    if restamp:
        adopt(lambda: connect(dsn), target.name, settings)
    cancel = threading.Event()
    with (
        ctrl_c_cancels(cancel),
        attach(settings, command="backfill", env=env, database_url=dsn, cancel=cancel) as hook,
        Progress(
            TextColumn(f"backfill {escape(table)}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%  {task.fields[rows]:,} rows"),
            TimeRemainingColumn(),
            console=err,
        ) as bar,
    ):
        task = bar.add_task("backfill", total=1.0, rows=0)

        def show(event: Event) -> None:
            if isinstance(event, BackfillBatch):
                bar.update(task, completed=event.progress, rows=event.total_rows)
            elif isinstance(event, HealthPause):
                for line in render(event):
                    err.print(line)

        result = run_backfill(
            dsn,
            spec,
            observer=fan_out([show, hook]),
            cancel=cancel,
            health=None if no_health_gate else HealthPolicy(),
            again=again,
        )
    if result.state == "cancelled":
        _fail(
            f"backfill cancelled after {result.rows:,} rows (last primary key {result.last_pk})",
            "run the same command again to resume",
            EXIT_APPLY,
        )
    start = f" (resumed after pk {result.resumed_from})" if result.resumed_from else ""
    out.print(
        f"backfill {table}: {result.rows:,} rows in {result.batches} batches, "
        f"{result.seconds:.1f} s{start}"
    )


COMMANDS = (apply, status, cancel, resume, backfill)
