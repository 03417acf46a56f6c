"""`pgwarden upgrade run | cancel | rollback | finish | status`: the blue/green upgrade."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from pgwarden.cli import err, handle_errors, out, print_json, styled
from pgwarden.cli.interaction import ctrl_c_cancels, event_printer
from pgwarden.cli.options import log_format_option, stacked, yes_option
from pgwarden.errors import Refused, UsageError
from pgwarden.events import Event, Observer, UpgradeCopy, UpgradeLag, fan_out
from pgwarden.notify import attach

_DEFAULT_JOURNAL = ".pgwarden/upgrade-journal.jsonl"


def _sides(
    database_url: str | None,
    target_url: str | None,
    source_conninfo: str | None = None,
    target_conninfo: str | None = None,
) -> Any:
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.upgrade.logical import Sides

    old = resolve_dsn(database_url)
    assert old is not None
    if not target_url:
        raise UsageError(
            "no target given", hint="pass --target-url postgresql://user@new-host/db (NEW)"
        )
    return Sides(old, target_url, source_conninfo or old, target_conninfo or target_url)


_common = [
    click.option(
        "--database-url",
        "database_url",
        metavar="DSN",
        default=None,
        help="OLD: the database upgraded (falls back to $PGWARDEN_DATABASE_URL, "
        "then $DATABASE_URL).",
    ),
    log_format_option,
]


@contextmanager
def _progress(fmt: str) -> Iterator[Observer]:
    """An observer: progress bars for the initial copy and the lag, lines for the rest."""
    printer = event_printer(fmt)
    if fmt == "json" or not err.is_terminal:
        last: dict[str, float] = {}

        def quiet(event: Event) -> None:
            if isinstance(event, UpgradeCopy | UpgradeLag) and fmt == "text":
                now = event.at
                if now - last.get(event.kind, 0.0) < 10:
                    return
                last[event.kind] = now
                if isinstance(event, UpgradeCopy):
                    err.print(f"  initial copy: {_copy_text(event)}")
                else:
                    err.print(f"  NEW trails OLD by {_event_lag(event)}")
                return
            printer(event)

        yield quiet
        return
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        console=err,
        transient=True,
    ) as bar:
        copy = bar.add_task("initial copy", total=1, detail="", visible=False)
        lag = bar.add_task("lag", total=None, detail="", visible=False)

        def show(event: Event) -> None:
            if isinstance(event, UpgradeCopy):
                bar.update(
                    copy,
                    visible=True,
                    total=max(event.rows_total, 1),
                    completed=event.rows_done,
                    detail=_copy_text(event),
                )
            elif isinstance(event, UpgradeLag):
                bar.update(lag, visible=True, detail=f"behind by {_event_lag(event)}")
            else:
                for line in __import__("pgwarden.report.events", fromlist=["render"]).render(event):
                    bar.console.print(line)

        yield show


def _copy_text(event: UpgradeCopy) -> str:
    """The initial copy's progress in words (`CopyProgress.describe`)."""
    from pgwarden.upgrade.logical import CopyProgress

    return CopyProgress(
        event.tables_ready, event.tables_total, event.rows_done, event.rows_total, event.copying
    ).describe()


def _copy_dict_text(p: dict[str, Any]) -> str:
    """`_copy`'s progress in words."""
    from pgwarden.upgrade.logical import CopyProgress

    return CopyProgress(
        p["tables_ready"], p["tables_total"], p["rows_done"], p["rows_total"], tuple(p["copying"])
    ).describe()


def _event_lag(event: UpgradeLag) -> str:
    """'N bytes, S s' of a lag event; the seconds said unknown when not measured."""
    from pgwarden.upgrade.logical import Lag

    return Lag(event.lag_bytes, event.lag_s).describe()


@click.command("run")
@stacked(*_common)
@click.option(
    "--target-url",
    metavar="DSN",
    default=None,
    help="NEW: an empty database on a server of the target major.",
)
@click.option("--env", "env", required=True, help="The environment OLD belongs to.")
@click.option(
    "--to",
    "to_major",
    type=click.IntRange(10, 99),
    default=None,
    help="The target major; NEW must run it (default: whatever NEW runs).",
)
@click.option(
    "--switchover-timeout",
    type=click.FloatRange(1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds the whole switchover may take before it is "
    "rolled back and OLD takes writes again.",
)
@click.option(
    "--switch-cmd",
    default=None,
    help="Shell command that moves the application to NEW (PgBouncer, DNS); run "
    "with PGWARDEN_SWITCH_TO=new (and =old on a rollback).",
)
@click.option(
    "--no-write-check",
    is_flag=True,
    help="Do not wait for writes on NEW after the hook (a quiet application).",
)
@click.option("--no-verify", is_flag=True, help="Skip the row count / checksum comparison.")
@click.option(
    "--verify-pause",
    type=click.FloatRange(0.1, 30),
    default=1.0,
    show_default=True,
    help="Longest pause of writes to OLD while both snapshots are taken (seconds).",
)
@click.option(
    "--max-lag-bytes",
    type=click.IntRange(0),
    default=1 << 20,
    show_default=True,
    help="Switch over only once NEW trails OLD by less than this.",
)
@click.option(
    "--source-conninfo",
    default=None,
    help="How NEW's server reaches OLD (default: --database-url).",
)
@click.option(
    "--target-conninfo",
    default=None,
    help="How OLD's server reaches NEW for the reverse replication (default: --target-url).",
)
@click.option(
    "--journal-file", default=_DEFAULT_JOURNAL, show_default=True, help="Local JSON-lines journal."
)
@yes_option
@click.option(
    "--restamp",
    is_flag=True,
    help="Adopt an OLD that holds data but was never stamped by pgwarden (or carries "
    "another stamp) as --env first (as `pgwarden apply --restamp` does).",
)
@click.option("--config", default=None, help="pgwarden.toml or pyproject.toml to read.")
@handle_errors
def run(
    database_url: str | None,
    log_format: str,
    target_url: str | None,
    env: str,
    to_major: int | None,
    switchover_timeout: float,
    switch_cmd: str | None,
    no_write_check: bool,
    no_verify: bool,
    verify_pause: float,
    max_lag_bytes: int,
    source_conninfo: str | None,
    target_conninfo: str | None,
    journal_file: str,
    yes: bool,
    restamp: bool,
    config: str | None,
) -> None:
    """Upgrade OLD to NEW through logical replication, then switch over (blue/green)."""
    from pgwarden.cli.environment import adopt, check_environment
    from pgwarden.settings import load_settings
    from pgwarden.upgrade.run import RunOptions, run_upgrade

    sides = _sides(database_url, target_url, source_conninfo, target_conninfo)
    settings = load_settings(config)
    check_environment(
        sides.old,
        env,
        settings,
        yes=yes,
        lost_stamp_ok=True,
        unstamped_data_refused=True,
        restamp=restamp,
    )
    if restamp:
        adopt(sides.old, env, settings)
    options = RunOptions(
        environment=env,
        target_major=to_major,
        switchover_timeout_s=switchover_timeout,
        switch_cmd=switch_cmd,
        write_check=not no_write_check,
        max_lag_bytes=max_lag_bytes,
        verify=not no_verify,
        verify_pause_s=verify_pause,
        journal_file=journal_file,
    )
    cancel = threading.Event()
    with (
        ctrl_c_cancels(cancel),
        _progress(log_format) as show,
        attach(
            settings, command="upgrade run", env=env, database_url=sides.old_dsn, cancel=cancel
        ) as hook,
    ):
        record = run_upgrade(sides, options, fan_out([show, hook]), cancel)
    times = ", ".join(f"{k} {v:.1f} s" for k, v in _phase_times(record.info))
    out.print(
        styled(
            "[green]upgrade {} switched over[/]: NEW takes the writes (writes paused {} s); "
            "OLD is read-only and receives NEW's writes until `pgwarden upgrade finish`",
            record.id,
            f"{float(record.info.get('writes_paused_s', 0.0)):.2f}",
        )
    )
    out.print(f"phases: {times}")


@click.command("cancel")
@stacked(*_common)
@click.option("--target-url", metavar="DSN", default=None, help="NEW (to drop its subscription).")
@click.option(
    "--switch-cmd",
    default=None,
    help="If a killed run's switch hook had started: the command moving the application "
    "back (run with PGWARDEN_SWITCH_TO=old).",
)
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    help="How long to wait for a run in another process to stop.",
)
@handle_errors
def cancel_cmd(
    database_url: str | None,
    log_format: str,
    target_url: str | None,
    switch_cmd: str | None,
    wait_s: float,
) -> None:
    """Cancel an upgrade before its switchover: OLD exactly as it was."""
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.settings import load_settings
    from pgwarden.upgrade.cancel import cancel
    from pgwarden.upgrade.journal import find_active
    from pgwarden.upgrade.logical import Sides

    old_dsn = resolve_dsn(database_url)
    assert old_dsn is not None
    sides = Sides(old_dsn, target_url, old_dsn, target_url) if target_url else None
    with Sides(old_dsn, "", old_dsn, "").old() as old:
        active = find_active(old)
        with attach(
            load_settings(),
            command="upgrade cancel",
            env=active.environment if active else None,
            database_url=old_dsn,
        ) as hook:
            result = cancel(
                old,
                sides,
                fan_out([event_printer(log_format), hook]),
                wait_s=wait_s,
                switch_cmd=switch_cmd,
            )
            what = f"removed {', '.join(result.removed)}" if result.removed else "nothing to remove"
            hook.finish("cancelled", f"upgrade {result.record.id}: OLD as it was; {what}")
    by = " (by the run, which stopped)" if result.waited_for_run else ""
    out.print(
        styled("[green]upgrade {} cancelled[/]{}: {}", result.record.id, by, what)
        if result.removed
        else styled("[green]upgrade {} cancelled[/]: nothing was left to remove", result.record.id)
    )
    if sides is None and not result.waited_for_run:
        out.print(
            "NEW was not given (--target-url): its subscription, if any, was left; "
            "OLD's slot was dropped, so it cannot receive anything."
        )


@click.command("rollback")
@stacked(*_common)
@click.option("--target-url", metavar="DSN", default=None, help="NEW.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds OLD may take to apply NEW's last writes.",
)
@click.option(
    "--switch-cmd",
    default=None,
    help="Shell command moving the application back (run with PGWARDEN_SWITCH_TO=old).",
)
@click.option(
    "--journal-file", default=_DEFAULT_JOURNAL, show_default=True, help="Local JSON-lines journal."
)
@handle_errors
def rollback_cmd(
    database_url: str | None,
    log_format: str,
    target_url: str | None,
    timeout_s: float,
    switch_cmd: str | None,
    journal_file: str,
) -> None:
    """After a switchover: back to OLD through the reverse replication, no write lost."""
    from pgwarden.apply.local_journal import LocalJournal
    from pgwarden.events import UpgradePhase
    from pgwarden.settings import load_settings
    from pgwarden.upgrade.journal import find_active
    from pgwarden.upgrade.logical import Names, published_tables
    from pgwarden.upgrade.rollback import refuse_if_reverse_broken, switch_back
    from pgwarden.upgrade.switchover import Deadline

    sides = _sides(database_url, target_url)
    with sides.old() as old:
        record = find_active(old)
        if record is None or record.state not in ("switched", "rolling_back"):
            what = "no upgrade" if record is None else f"upgrade {record.id} is {record.state}"
            raise Refused(
                f"nothing to roll back: {what}",
                hint="before the switchover, `pgwarden upgrade cancel` stops an upgrade",
            )
        with attach(
            load_settings(),
            command="upgrade rollback",
            env=record.environment,
            database_url=sides.old_dsn,
        ) as hook:
            if record.state == "switched":  # a rollback cut short is finished whatever
                with sides.new() as new:
                    refuse_if_reverse_broken(old, new, record)
            # the local journal first (a journal that cannot be written stops it here, with
            # nothing changed), so that `status` without OLD tells the rollback too
            emit = fan_out([LocalJournal(journal_file, record.id), event_printer(log_format), hook])
            emit(
                UpgradePhase(
                    upgrade_id=record.id,
                    phase="switchover",
                    status="started",
                    message="rolling back to OLD",
                )
            )
            paused = switch_back(
                sides,
                Names(record.id),
                published_tables(old),
                record,
                old,
                emit,
                switch_cmd,
                Deadline(timeout_s),
            )
    out.print(
        styled(
            "[green]upgrade {} rolled back[/]: OLD takes the writes again (writes "
            "paused {} s); NEW is read-only",
            record.id,
            f"{paused:.2f}",
        )
    )


@click.command("finish")
@stacked(*_common)
@click.option("--target-url", metavar="DSN", default=None, help="NEW.")
@handle_errors
def finish_cmd(database_url: str | None, log_format: str, target_url: str | None) -> None:
    """After a switchover: end the reverse replication (no rollback possible afterwards)."""
    from pgwarden.settings import load_settings
    from pgwarden.upgrade import logical
    from pgwarden.upgrade.journal import find_active, save
    from pgwarden.upgrade.logical import Names

    sides = _sides(database_url, target_url)
    with sides.old() as old, sides.new() as new:
        record = find_active(old)
        with attach(
            load_settings(),
            command="upgrade finish",
            env=record.environment if record else None,
            database_url=sides.old_dsn,
        ) as hook:
            if record is None or record.state != "switched":
                what = "no upgrade" if record is None else f"upgrade {record.id} is {record.state}"
                raise Refused(
                    f"nothing to finish: {what}",
                    hint="`pgwarden upgrade status` shows the upgrade's state",
                )
            names = Names(record.id)
            logical.drop_subscription(old, names.reverse)
            logical.drop_publication(new, names.reverse)
            logical.drop_slot(new, names.reverse)
            logical.drop_publication(old, names.forward)
            record.state = "finished"
            save(old, record)
            hook.finish("done", f"upgrade {record.id} finished: NEW stands alone")
    out.print(
        styled("[green]upgrade {} finished[/]: NEW stands alone; OLD stays read-only", record.id)
    )


@click.command("status")
@stacked(*_common[:1])
@click.option(
    "--target-url",
    metavar="DSN",
    default=None,
    help="NEW: after the switchover, read how far the reverse replication trails there.",
)
@click.option("--id", "upgrade_id", default=None, help="An upgrade id (default: the latest).")
@click.option(
    "--journal-file",
    default=_DEFAULT_JOURNAL,
    show_default=True,
    help="Local journal, read when OLD cannot be reached.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@handle_errors
def status_cmd(
    database_url: str | None,
    target_url: str | None,
    upgrade_id: str | None,
    journal_file: str,
    fmt: str,
) -> None:
    """The state of the latest upgrade of OLD (or --id), and what to do next."""
    from pgwarden.errors import ConnectionFailed
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.upgrade.journal import find_latest, run_is_live
    from pgwarden.upgrade.logical import Names, Sides, is_read_only, lag

    dsn = resolve_dsn(database_url)
    assert dsn is not None
    try:
        old = Sides(dsn, "", dsn, "").old()
    except ConnectionFailed as exc:
        _status_from_journal(journal_file, upgrade_id, fmt, exc)
        return
    with old:
        record = find_latest(old, upgrade_id)
        if record is None:
            raise Refused(
                "no upgrade recorded on this database", hint="`pgwarden upgrade run` starts one"
            )
        live = run_is_live(old)
        names = Names(record.id)
        behind = lag(old, names.forward)
        read_only = is_read_only(old)
        reverse = (
            _reverse(old, target_url, names.reverse, record.info.get("switched_at"))
            if record.state in ("switched", "rolling_back")
            else None
        )
        copying = (
            _copy(old, target_url, names.forward)
            if record.phase in ("replication", "initial_copy")
            and record.state in ("running", "interrupted")
            else None
        )
    data = record.to_dict()
    data.update(
        live=live,
        old_read_only=read_only,
        lag_bytes=None if behind is None else behind.bytes,
        lag_s=None if behind is None else behind.seconds,
        lag_unknown=None if behind is None else behind.unknown,
        reverse=None if reverse is None else reverse.to_dict(),
        initial_copy=copying,
        serving=_serving(record.state),
        next=_next_step(record.state, live, record.info),
    )
    if fmt == "json":
        print_json(data)
        return
    out.print(
        styled(
            "upgrade [bold]{}[/] of {} to {} (PostgreSQL {}): [bold]{}[/], phase {}",
            record.id,
            record.database,
            record.target,
            str(record.target_major),
            record.state,
            record.phase,
        )
    )
    out.print(
        f"  process: {'running' if live else 'not running'} (last: {record.host} pid "
        f"{record.pid}); updated {data['updated_at']}"
    )
    if record.state == "rolled_back":
        out.print(_rolled_back_line(record.info))
    if behind is not None:
        in_copy = record.phase in ("replication", "initial_copy") and record.state != "cancelled"
        out.print(
            f"  NEW trails OLD by {behind.describe()}"
            + (" (rows of the initial copy not counted)" if in_copy else "")
        )
    if copying is not None:
        if copying.get("error"):
            out.print(f"  initial copy: NEW not read: {copying['error']}")
        else:
            out.print(
                f"  initial copy: {_copy_dict_text(copying)}"
                + (f" (copying {', '.join(copying['copying'])})" if copying["copying"] else "")
            )
    elif record.phase in ("replication", "initial_copy") and record.state in (
        "running",
        "interrupted",
    ):
        out.print("  initial copy: pass --target-url NEW for its progress")
    if reverse is not None:
        for line in _reverse_lines(reverse):
            out.print(line)
    out.print(f"  OLD read-only: {'yes' if read_only else 'no'}")
    for k, v in _phase_times(record.info):
        out.print(f"  {k}: {v:.1f} s")
    out.print(styled("  [dim]next:[/] {}", data["next"]))


def _copy(old: Any, target_url: str | None, name: str) -> dict[str, Any] | None:
    """The initial copy's progress read on NEW (None without --target-url)."""
    from pgwarden.errors import ConnectionFailed
    from pgwarden.pg.connect import connect
    from pgwarden.upgrade.logical import copy_progress, published_tables

    if not target_url:
        return None
    try:
        new = connect(target_url, application_name="pgwarden-upgrade")
    except ConnectionFailed as exc:
        return {"error": exc.message}
    estimates = {t.qualified: t.estimate for t in published_tables(old)}
    with new:
        p = copy_progress(new, name, estimates)
    return {
        "tables_ready": p.tables_ready,
        "tables_total": p.tables_total,
        "rows_done": p.rows_done,
        "rows_total": p.rows_total,
        "copying": list(p.copying),
        "error": None,
    }


def _reverse(old: Any, target_url: str | None, name: str, switched_at: object) -> Any:
    """The reverse replication's state from OLD and, with --target-url, NEW."""
    from pgwarden.errors import ConnectionFailed
    from pgwarden.pg.connect import connect
    from pgwarden.upgrade.reverse import reverse_state

    when = switched_at if isinstance(switched_at, str) else None
    if not target_url:
        return reverse_state(old, None, name, when)
    try:
        new = connect(target_url, application_name="pgwarden-upgrade")
    except ConnectionFailed as exc:
        return reverse_state(old, None, name, when, new_error=exc.message)
    with new:
        return reverse_state(old, new, name, when)


def _reverse_lines(r: Any) -> list[Any]:
    """Text lines for the reverse replication (a `ReverseState`)."""
    from pgwarden.upgrade.logical import Lag

    head = f"  reverse replication NEW -> OLD ({r.name}):"
    if r.problem is not None:
        since = (
            "every write made on NEW"
            if r.at_risk_since is None
            else f"the writes made on NEW since {r.at_risk_since:%Y-%m-%d %H:%M:%S %Z}".rstrip()
        )
        lines: list[Any] = [
            styled("{} [bold red]BROKEN[/]: {}", head, r.problem),
            f"    rollback would lose {since}",
        ]
    else:
        lines = [f"{head} streaming"]
    if r.lag_bytes is not None and r.problem is None:
        lines.append(f"    OLD trails NEW by {Lag(r.lag_bytes, r.lag_s, r.lag_unknown).describe()}")
    elif r.lag_bytes is not None:  # the slot's last confirmed position: what is not on OLD
        lines.append(f"    NEW's WAL not confirmed by OLD: {r.lag_bytes:,} bytes")
    if r.last_contact is not None:
        lines.append(f"    last message from NEW: {r.last_contact:%Y-%m-%d %H:%M:%S %Z}".rstrip())
    if r.new_error is not None:
        lines.append(f"    NEW not read: {r.new_error}")
    elif not r.new_read:
        lines.append("    pass --target-url NEW for how far OLD trails (bytes, seconds)")
    return lines


def _serving(state: str) -> str | None:
    """Which side takes the application's writes in `state` (None: not known for sure)."""
    if state in ("switched", "finished"):
        return "new"
    if state in ("running", "interrupted", "cancelled", "rolled_back"):
        return "old"
    return None


def _rolled_back_line(info: dict[str, Any]) -> str:
    """When the rollback ended and how long it took, and which side serves since."""
    done = info.get("rollback")
    serving = "OLD serves the writes again; NEW is read-only and receives nothing"
    if not isinstance(done, dict):
        return f"  rolled back (its time was not recorded): {serving}"
    return (
        f"  rolled back at {_utc(done.get('at'))}, in "
        f"{float(done.get('seconds', 0.0)):.2f} s (NEW refused writes for "
        f"{float(done.get('writes_paused_s', 0.0)):.2f} s): {serving}"
    )


def _utc(at: object) -> str:
    """An ISO time of the record (UTC) as 'YYYY-MM-DD HH:MM:SS UTC'."""
    return str(at).replace("T", " ").removesuffix("+00:00") + " UTC"


def _phase_times(info: dict[str, Any]) -> list[tuple[str, float]]:
    """The phases' times in the order they run (the record's JSON keeps no order)."""
    from pgwarden.upgrade.journal import PHASES

    times = info.get("phase_s", {})
    return [(name, float(times[name])) for name in PHASES if name in times]


def _next_step(state: str, live: bool, info: dict[str, Any]) -> str:
    from pgwarden.upgrade import hook_process

    if live:
        return "the upgrade is running; `pgwarden upgrade cancel` stops it before the switchover"
    if state == "switching" and info.get("hook_started"):
        still = hook_process.running(info.get("hook_process"))
        hook = {
            True: "its switch hook is still running here and is ended first",
            None: f"its switch hook may still be running on {info['hook_process'].get('host')}"
            if isinstance(info.get("hook_process"), dict)
            else "",
            False: "its switch hook had started",
        }[still]
        return (
            f"stopped inside its switchover; {hook} (the application may be on NEW): "
            "`pgwarden upgrade cancel --target-url NEW --switch-cmd CMD` runs the hook back "
            "(PGWARDEN_SWITCH_TO=old) and makes OLD writable again, or `pgwarden upgrade run` "
            "(same arguments) undoes and retries it"
        )
    return {
        "running": "its process is gone: `pgwarden upgrade run` (same arguments) continues it, "
        "`pgwarden upgrade cancel` removes it",
        "interrupted": "`pgwarden upgrade run` (same arguments) continues it, "
        "`pgwarden upgrade cancel` removes it",
        "switching": "stopped inside its switchover: `pgwarden upgrade cancel --target-url NEW` "
        "makes OLD writable again, or `pgwarden upgrade run` undoes and retries it",
        "switched": "`pgwarden upgrade rollback` goes back to OLD; `pgwarden upgrade finish` "
        "ends the reverse replication",
        "rolling_back": "`pgwarden upgrade rollback` again",
        "cancelled": "nothing: OLD is as it was",
        "rolled_back": "nothing: OLD takes the writes",
        "finished": "nothing: NEW stands alone",
    }.get(state, "`pgwarden upgrade status` again")


def _status_from_journal(path: str, upgrade_id: str | None, fmt: str, failed: Any) -> None:
    """Status from the local journal when OLD cannot be reached (`failed`: ConnectionFailed);
    without a journal, that failure itself (exit 2) with both fixes in its hint."""
    import orjson

    from pgwarden.errors import ConnectionFailed

    why = failed.message
    try:
        raw = Path(path).read_bytes()
        lines = [orjson.loads(x) for x in raw.splitlines() if x.strip()]
    except (OSError, orjson.JSONDecodeError) as exc:
        reason = (
            "there is no local journal at"
            if isinstance(exc, FileNotFoundError)
            else ("cannot read the local journal")
        )
        raise ConnectionFailed(
            f"{why}; and {reason} {path}: nothing to show",
            hint=f"{failed.hint}; or pass --journal-file with the journal of the run",
        ) from None
    if upgrade_id is None and lines:
        upgrade_id = str(lines[-1].get("run"))
    mine = [x for x in lines if x.get("run") == upgrade_id]
    if not mine:
        raise ConnectionFailed(
            f"{why}; and the local journal {path} has no events of "
            f"{'upgrade ' + upgrade_id if upgrade_id else 'any upgrade'}",
            hint=f"{failed.hint}; or pass the run's --journal-file (and --id)",
        )
    if fmt == "json":
        print_json(
            {"id": upgrade_id, "source": "local journal", "error": why, "events": mine[-20:]}
        )
        sys.exit(2)
    err.print(f"{why}; from the local journal {path}:")
    out.print(f"upgrade {upgrade_id}: its last {min(len(mine), 10)} events (OLD has the truth)")
    for event in mine[-10:]:
        out.print("  " + _journal_line(event))
    out.print(
        styled(
            "  [dim]next:[/] reach OLD, then `pgwarden upgrade status` tells the state "
            "and what to run"
        )
    )
    sys.exit(2)  # the state itself was not read: an environment problem


def _switch_outcome(event: dict[str, Any]) -> str:
    """A switchover event's outcome, saying which side serves the writes after it."""
    outcome, direction = event.get("outcome"), event.get("direction")
    if outcome == "switched":
        return "done, NEW serves the writes"
    if outcome == "rolled_back":
        what = "rolled back" if direction == "to_old" else "switchover to NEW undone"
        return f"{what}, OLD serves the writes again"
    return f"{direction} {outcome}"


def _journal_line(event: dict[str, Any]) -> str:
    """One journal event as a line: its time (UTC), kind and what it says."""
    from datetime import UTC, datetime

    at = event.get("at")
    when = (
        datetime.fromtimestamp(float(at), UTC).strftime("%H:%M:%S")
        if isinstance(at, int | float)
        else "--:--:--"
    )
    kind = str(event.get("event", "?")).removeprefix("upgrade_")
    if kind == "verified":
        same = "same checksum" if event.get("same") else "DIFFERENT"
        what = (
            f"{event.get('table')}: {event.get('rows_old')} / {event.get('rows_new')} rows, {same}"
        )
    elif kind == "lag":
        secs = event.get("lag_s")
        what = f"{event.get('direction')} {event.get('lag_bytes')} bytes" + (
            "" if secs is None else f", {float(secs):.3f} s"
        )
    elif kind == "hook":
        what = f"to {event.get('switch_to')}: exit {event.get('exit_code')}"
    elif kind == "switchover":
        what = f"{_switch_outcome(event)}: {event.get('message', '')}"
    else:
        what = " ".join(
            str(event[k]) for k in ("phase", "status", "message") if event.get(k) is not None
        )
    return f"{when} {kind} {what}".rstrip()


SUBCOMMANDS = (run, cancel_cmd, rollback_cmd, finish_cmd, status_cmd)
