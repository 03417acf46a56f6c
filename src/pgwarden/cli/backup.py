"""CLI for backups: create, list, verify, restore, drill."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pgwarden.backup import api
from pgwarden.backup.catalogue import BackupInfo, Catalogue
from pgwarden.backup.manifest import Verification, format_duration, format_time
from pgwarden.cli import EXIT_FINDINGS, dsn_option, err, handle_errors, out, print_json, styled
from pgwarden.cli.interaction import stdin
from pgwarden.cli.options import config_option
from pgwarden.errors import Refused, UsageError
from pgwarden.events import BackupProgress, Event, Observer, fan_out
from pgwarden.notify import attach
from pgwarden.pg.connect import resolve_dsn
from pgwarden.settings import load_settings

catalogue_option = click.option(
    "--catalogue",
    default=None,
    metavar="DIR",
    help="Backup catalogue (default: backup.catalogue of the configuration, else backups/).",
)
jobs_option = click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=2, show_default=True, help="Parallel jobs."
)
format_option = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")

_PHASES = {
    "dump": "dumping",
    "checksum": "checksums",
    "files": "file checksums",
    "restore": "restoring",
    "check": "comparing",
}


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _local(t: datetime) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _catalogue(path: str | None, config: str | None) -> Catalogue:
    return api.open_catalogue(path, settings=load_settings(config))


@contextmanager
def _progress() -> Iterator[Observer | None]:
    """A progress bar on stderr when it is a terminal."""
    if not err.is_terminal:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description:<15}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[item]}"),
        console=err,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(event: Event) -> None:
        if not isinstance(event, BackupProgress):
            return
        step = event
        if step.phase not in tasks:
            tasks[step.phase] = bars.add_task(
                _PHASES.get(step.phase, step.phase), total=max(step.total, 1), item=""
            )
        bars.update(tasks[step.phase], completed=step.done, item=escape(step.item[-40:]))

    with bars:
        yield update


def backup_json(b: BackupInfo) -> dict[str, Any]:
    """The stable JSON form of a catalogue entry."""
    m, v = b.manifest, b.verification
    data: dict[str, Any] = {"id": b.id, "state": b.state, "problem": b.problem}
    if m is not None:
        data |= {
            "database": m.database,
            "system_identifier": str(m.system_identifier),
            "server_version": m.server_version,
            "snapshot_at": format_time(m.snapshot_at),
            "started_at": format_time(m.started_at),
            "ended_at": format_time(m.ended_at),
            "lsn": m.lsn,
            "size_bytes": m.size_bytes,
            "tables": len(m.tables),
            "rows": sum(t.rows for t in m.tables),
        }
    if v is not None:
        data["verification"] = verification_json(v)
    return data


def verification_json(v: Verification) -> dict[str, Any]:
    return {
        "ok": v.ok,
        "verified_at": format_time(v.verified_at),
        "restore_seconds": v.restore_seconds,
        "total_seconds": v.total_seconds,
        "restored_on": v.restored_on,
        "tables_checked": v.tables_checked,
        "first_mismatch": v.first_mismatch,
        "mismatches": list(v.mismatches),
    }


@click.group()
def backup() -> None:
    """Backups proven by restoring them; restores that cannot pick the wrong one."""


@backup.command("create")
@dsn_option
@jobs_option
@catalogue_option
@config_option
@format_option
@handle_errors
def create(
    database_url: str | None, jobs: int, catalogue: str | None, config: str | None, fmt: str
) -> None:
    """Take a consistent pg_dump with per-table checksums from the same snapshot."""
    dsn = resolve_dsn(database_url)
    assert dsn is not None
    cat = _catalogue(catalogue, config)
    with (
        _progress() as on_progress,
        attach(load_settings(config), command="backup create", database_url=dsn) as hook,
    ):
        m = api.create(dsn, catalogue=cat, jobs=jobs, observer=fan_out([on_progress, hook]))
    if fmt == "json":
        print_json(backup_json(cat.info(m.id)))
        return
    rows = sum(t.rows for t in m.tables)
    secs = (m.ended_at - m.started_at).total_seconds()
    out.print(f"created backup {m.id} in {cat.location}")
    out.print(
        f"  {m.database} on system {m.system_identifier} (PostgreSQL {m.server_version}), "
        f"snapshot {format_time(m.snapshot_at)} at LSN {m.lsn}"
    )
    out.print(
        f"  {len(m.tables)} tables, {rows} rows, {_size(m.size_bytes)} dump of "
        f"a {_size(m.database_size_bytes)} database, {format_duration(secs)}"
    )
    out.print(f"  not verified yet: run `pgwarden backup verify {m.id}`")


@backup.command("list")
@catalogue_option
@config_option
@format_option
@handle_errors
def list_(catalogue: str | None, config: str | None, fmt: str) -> None:
    """Show every backup, its end time in UTC and locally, and its verification."""
    cat = _catalogue(catalogue, config)
    entries = cat.entries()
    if fmt == "json":
        print_json({"catalogue": cat.location, "backups": [backup_json(b) for b in entries]})
        return
    if not entries:
        out.print(f"no backups in {cat.location}")
        return
    now = datetime.now(UTC)
    table = Table(box=None, pad_edge=False)
    # The id and the state are what people act on: never truncate them.
    table.add_column("id", no_wrap=True, min_width=max(len(b.id) for b in entries))
    for col in ("database", "system", "ended (UTC)", "ended (local)", "size"):
        table.add_column(col, no_wrap=True)
    table.add_column("state", no_wrap=True, min_width=len("verified"))
    # (the system identifier is shortened; `backup list --format json` has it whole)
    table.add_column("verified")
    for b in entries:
        m, v = b.manifest, b.verification
        if m is None:
            table.add_row(b.id, "?", "?", "?", "?", "?", Text("damaged", style="red"))
            continue
        style = {"verified": "green", "failed": "red", "damaged": "red"}.get(b.state, "yellow")
        verified = f"{format_duration((now - v.verified_at).total_seconds())} ago" if v else "never"
        table.add_row(
            b.id,
            m.database,
            str(m.system_identifier)[:10] + "…",
            format_time(m.ended_at),
            _local(m.ended_at),
            _size(m.size_bytes),
            Text(b.state, style=style),
            verified,
        )
    out.print(table)
    for b in entries:
        if b.problem and b.state in ("damaged", "failed"):
            out.print(styled("[red]{}[/]: {}", b.id, b.problem))


@backup.command("verify")
@click.argument("backup_id", required=False)
@click.option("--latest", is_flag=True, help="Verify the newest backup.")
@click.option("--pgbackrest", "stanza", default=None, metavar="STANZA", help="pgBackRest stanza.")
@click.option("--set", "set_label", default=None, metavar="LABEL", help="pgBackRest set label.")
@click.option("--pgbackrest-config", default=None, metavar="FILE", help="pgbackrest.conf path.")
@jobs_option
@catalogue_option
@config_option
@format_option
@handle_errors
def verify(
    backup_id: str | None,
    latest: bool,
    stanza: str | None,
    set_label: str | None,
    pgbackrest_config: str | None,
    jobs: int,
    catalogue: str | None,
    config: str | None,
    fmt: str,
) -> None:
    """Restore a backup into a throwaway cluster and compare it with its manifest."""
    cat = _catalogue(catalogue, config)
    if stanza is not None:
        _verify_pgbackrest(stanza, set_label, pgbackrest_config, cat, fmt)
        return
    if set_label is not None:
        raise UsageError("--set needs --pgbackrest STANZA")
    if (backup_id is None) == (not latest):
        raise UsageError("give a backup ID or --latest (not both)", hint="`pgwarden backup list`")
    with (
        _progress() as on_progress,
        attach(load_settings(config), command="backup verify") as hook,
    ):
        v = api.verify(backup_id, catalogue=cat, jobs=jobs, observer=fan_out([on_progress, hook]))
        if not v.ok:
            hook.finish("failed", f"backup {v.backup_id}: {v.message}")
    info = cat.info(v.backup_id)
    if fmt == "json":
        print_json(backup_json(info))
    elif v.ok:
        m = info.manifest
        size = f" the {_size(m.database_size_bytes)} database" if m else ""
        out.print(
            styled("[green]verified[/] backup {}: {} tables match", v.backup_id, v.tables_checked)
        )
        out.print(
            f"  restored{size} in {format_duration(v.restore_seconds)} on {v.restored_on} "
            f"(the achievable RTO for this size); whole check {format_duration(v.total_seconds)}"
        )
    else:
        out.print(styled("[red]FAILED[/] backup {}: {}", v.backup_id, v.message))
        for line in v.mismatches[:20]:
            out.print(f"  {line}")
    if not v.ok:
        sys.exit(EXIT_FINDINGS)


def _verify_pgbackrest(
    stanza: str, set_label: str | None, config: str | None, cat: Catalogue, fmt: str
) -> None:
    r = api.verify_pgbackrest(stanza, set_label, catalogue=cat, config=config)
    if fmt == "json":
        print_json(
            {
                "stanza": r.stanza,
                "set": r.set_label,
                "system_identifier": str(r.system_identifier),
                "stopped_at": format_time(r.stopped_at),
                "ok": r.ok,
                "restore_seconds": r.restore_seconds,
                "total_seconds": r.total_seconds,
                "tables": r.tables,
                "problems": list(r.problems),
            }
        )
    elif r.ok:
        out.print(
            styled(
                "[green]verified[/] pgBackRest set {} of stanza {}: restored and recovered in "
                "{}, {} tables read ({} rows), every index valid",
                r.set_label,
                r.stanza,
                format_duration(r.restore_seconds),
                len(r.tables),
                sum(r.tables.values()),
            )
        )
    else:
        out.print(styled("[red]FAILED[/] pgBackRest set {}: {}", r.set_label, r.problems[0]))
    if not r.ok:
        sys.exit(EXIT_FINDINGS)


@backup.command("restore")
@click.option("--at", "at", required=True, metavar="TIME", help="e.g. 2024-02-21T04:55:00+00:00")
@click.option("--target-url", required=True, metavar="DSN", help="Database to restore into.")
@click.option("--from-system", default=None, metavar="SYSID", help="Source system (prefix).")
@click.option("--database", default=None, metavar="NAME", help="Source database name.")
@click.option("--env", default=None, metavar="NAME", help="Environment the target is.")
@click.option("--clean", is_flag=True, help="Drop and recreate objects the backup contains.")
@click.option("--no-owner", is_flag=True, help="Skip ownership and grants.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@jobs_option
@catalogue_option
@config_option
@handle_errors
def restore(
    at: str,
    target_url: str,
    from_system: str | None,
    database: str | None,
    env: str | None,
    clean: bool,
    no_owner: bool,
    yes: bool,
    jobs: int,
    catalogue: str | None,
    config: str | None,
) -> None:
    """Restore the newest verified backup ended at or before TIME into the target."""
    settings = load_settings(config)
    plan = api.plan_restore(
        at,
        target_url,
        catalogue=api.open_catalogue(catalogue, settings=settings),
        from_system=from_system,
        database=database,
        env=env,
        settings=settings,
    )
    m = plan.manifest
    out.print(f"backup    {plan.backup.id}")
    out.print(
        f"  snapshot {format_time(m.snapshot_at)} (local {_local(m.snapshot_at)}), "
        f"dump ended {format_time(m.ended_at)}"
    )
    out.print(
        styled(
            "  [yellow]data written in the {} between the snapshot and {} is not in this backup[/]",
            format_duration(plan.gap.total_seconds()),
            format_time(plan.at),
        )
    )
    est = plan.estimated_restore_seconds
    out.print(f"  estimated restore time {format_duration(est) if est is not None else 'unknown'}")
    out.print(f"target    {plan.target.description}")
    for b in plan.damaged:  # not considered: their time and database are unknown
        out.print(styled("  [yellow]not considered, damaged:[/] {}", b.problem or b.id))
    if not yes:
        if not stdin().isatty():
            raise Refused("a restore needs confirmation", hint="run it in a terminal or pass --yes")
        name = plan.target.identity.database
        typed = click.prompt(f"type the target database name ({name}) to restore into it")
        if typed != name:
            raise Refused("confirmation did not match; nothing was restored")
    with (
        _progress() as on_progress,
        attach(settings, command="backup restore", env=env, database_url=target_url) as hook,
    ):
        r = api.restore(
            plan, jobs=jobs, clean=clean, no_owner=no_owner, observer=fan_out([on_progress, hook])
        )
        if not r.ok:
            hook.finish("failed", f"restored {m.id} with differences: {r.mismatches[0]}")
    if r.dropped:  # --clean: named like the backup's objects of another kind
        out.print(styled("dropped first (another kind in the backup): {}", ", ".join(r.dropped)))
    if r.ok:
        out.print(
            styled(
                "[green]restored[/] {} into {} in {}; {} tables match the manifest's checksums",
                m.id,
                r.target,
                format_duration(r.restore_seconds),
                len(m.tables),
            )
        )
        return
    out.print(styled("[red]restored with differences[/] into {}:", r.target))
    for line in r.mismatches[:20]:
        out.print(f"  {line}")
    sys.exit(EXIT_FINDINGS)


_AGE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")


def _parse_age(text: str) -> timedelta:
    m = _AGE_RE.match(text.strip())
    if m is None:
        raise UsageError(f"--max-age {text!r}: expected e.g. 90m, 26h or 7d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
    return timedelta(**{unit: float(m.group(1))})


@backup.command("drill")
@dsn_option
@click.option("--keep", type=click.IntRange(1, 10000), default=7, show_default=True)
@click.option("--max-age", default="26h", show_default=True, help="Policy: newest verified age.")
@jobs_option
@catalogue_option
@config_option
@handle_errors
def drill(
    database_url: str | None,
    keep: int,
    max_age: str,
    jobs: int,
    catalogue: str | None,
    config: str | None,
) -> None:
    """Create, verify and prune in one run (for cron/CI); prints a JSON summary."""
    dsn = resolve_dsn(database_url)
    assert dsn is not None
    policy = _parse_age(max_age)
    cat = _catalogue(catalogue, config)
    with attach(load_settings(config), command="backup drill", database_url=dsn) as hook:
        r = api.drill(dsn, catalogue=cat, jobs=jobs, keep=keep, max_age=policy, observer=hook)
        if not r.ok:
            v = r.verification
            hook.finish(
                "failed",
                f"backup {v.backup_id}: {v.message}"
                if not v.ok
                else f"the newest verified backup is older than {max_age}",
            )
    newest = r.newest_verified
    print_json(
        {
            "ok": r.ok,
            "created": backup_json(cat.info(r.created.id)),
            "pruned": list(r.pruned),
            "newest_verified": newest.id if newest else None,
            "newest_verified_age_seconds": (
                round(r.newest_verified_age.total_seconds(), 1) if r.newest_verified_age else None
            ),
            "max_age_seconds": policy.total_seconds(),
        }
    )
    if not r.ok:
        sys.exit(EXIT_FINDINGS)


COMMANDS = (backup,)
