"""CLI: `pgwarden upgrade check` and `pgwarden upgrade rehearse`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import get_args

import click

from pgwarden.cli import EXIT_FINDINGS, dsn_option, err, handle_errors, out, print_json, styled
from pgwarden.cli.options import config_option, threshold_option
from pgwarden.events import Event, Phase, fan_out

_FORMAT = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
_TO = click.option(
    "--to",
    "target_major",
    type=click.IntRange(14, 18),
    required=True,
    metavar="MAJOR",
    help="The major version to upgrade to (its server binaries must be on this machine).",
)
_CATALOGUE = click.option(
    "--catalogue",
    default=None,
    metavar="DIR",
    help="Backup catalogue for --copy auto/backup (default: backup.catalogue in the config).",
)
_BACKUP = click.option(
    "--backup",
    "backup_id",
    default=None,
    metavar="ID",
    help="Restore this verified backup (an id or a unique prefix) as the copy.",
)
_JOBS = click.option(
    "--jobs", type=click.IntRange(1, 64), default=2, show_default=True, help="Parallel jobs."
)


def _show(event: Event) -> None:
    if isinstance(event, Phase):
        err.print(styled("[dim]· {}[/]", event.message))


def _catalogue(path: str | None, config: str | None, needed: bool) -> object:
    if not needed:
        return None
    from pgwarden.backup.api import open_catalogue
    from pgwarden.settings import load_settings

    return open_catalogue(path, settings=load_settings(config))


@click.command("check")
@dsn_option
@_TO
@click.option(
    "--route",
    type=click.Choice(["both", "pg_upgrade", "logical"]),
    default="both",
    show_default=True,
    help="Which upgrade route must be ready: pg_upgrade (in place) or logical "
    "(`upgrade run`, blue/green); exit 1 when it is blocked.",
)
@click.option(
    "--copy",
    type=click.Choice(["schema", "dump", "backup", "auto", "none"]),
    default="schema",
    show_default=True,
    help="What pg_upgrade --check runs on: a schema-only dump, a full dump, the newest "
    "verified backup (auto: that, else a schema dump), or nothing.",
)
@click.option(
    "--all-databases",
    is_flag=True,
    help="Also read the catalog of every other database of the server (pg_upgrade "
    "upgrades them all); pg_upgrade --check still runs on a copy of DSN's database.",
)
@_BACKUP
@_CATALOGUE
@_JOBS
@_FORMAT
@config_option
@handle_errors
def check(
    database_url: str | None,
    target_major: int,
    route: str,
    copy: str,
    all_databases: bool,
    backup_id: str | None,
    catalogue: str | None,
    jobs: int,
    fmt: str,
    config: str | None,
) -> None:
    """What would break an upgrade of this database to MAJOR (read-only).

    Reads the catalog (extensions and libraries against the target binaries,
    types pg_upgrade refuses, prepared transactions, logical-replication
    readiness, collations), then runs pg_upgrade --check on a copy restored
    into throwaway clusters. Exit 1 when the route asked about is blocked.
    """
    from pgwarden.backup.catalogue import Catalogue
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.upgrade.check import Route
    from pgwarden.upgrade.check_report import check_lines
    from pgwarden.upgrade.check_run import CheckOptions, check_upgrade

    dsn = resolve_dsn(database_url)
    assert dsn is not None
    routes: tuple[Route, ...] = (
        get_args(Route)
        if route == "both"
        else ((route,) if route == "logical" else ("pg_upgrade",))
    )
    cat = _catalogue(catalogue, config, copy in ("auto", "backup") or backup_id is not None)
    assert cat is None or isinstance(cat, Catalogue)
    report = check_upgrade(
        dsn,
        CheckOptions(
            target_major=target_major,
            copy="backup" if backup_id is not None else copy,
            catalogue=cat,
            backup_id=backup_id,
            jobs=jobs,
            routes=routes,
            all_databases=all_databases,
        ),
        observer=_show,
    )
    if fmt == "json":
        print_json(report.to_dict())
    else:
        for line in check_lines(report):
            out.print(line)
    if report.blocked:
        sys.exit(EXIT_FINDINGS)


@click.command("rehearse")
@dsn_option
@_TO
@click.option(
    "--mode",
    type=click.Choice(["copy", "link", "clone", "swap"]),
    default="copy",
    show_default=True,
    help="pg_upgrade's transfer mode (clone needs a reflink file system, swap PostgreSQL 18).",
)
@click.option(
    "--copy",
    type=click.Choice(["auto", "backup", "dump"]),
    default="auto",
    show_default=True,
    help="The copy to upgrade: the newest verified backup of this database (auto: that, "
    "else a fresh pg_dump), or a fresh pg_dump.",
)
@_BACKUP
@_CATALOGUE
@click.option(
    "--workload",
    "workload_file",
    default=None,
    metavar="FILE",
    help="Queries to time before and after (default: the stats snapshot's top queries, "
    "else the source's pg_stat_statements).",
)
@click.option(
    "--stats", "stats_file", default=None, metavar="FILE", help="Stats snapshot (top queries)."
)
@click.option(
    "--top", type=click.IntRange(1, 100), default=10, show_default=True, help="Top queries."
)
@threshold_option
@click.option(
    "--fail-on",
    type=click.Choice(["after-analyze", "right-after", "never"]),
    default="after-analyze",
    show_default=True,
    help="Exit 1 for regressions still there after ANALYZE, or already for those right "
    "after pg_upgrade (empty statistics before 18).",
)
@click.option("--report", "report_path", default=None, metavar="FILE", help="Write an HTML report.")
@_JOBS
@_FORMAT
@config_option
@handle_errors
def rehearse(
    database_url: str | None,
    target_major: int,
    mode: str,
    copy: str,
    backup_id: str | None,
    catalogue: str | None,
    workload_file: str | None,
    stats_file: str | None,
    top: int,
    threshold: float,
    fail_on: str,
    report_path: str | None,
    jobs: int,
    fmt: str,
    config: str | None,
) -> None:
    """The whole pg_upgrade to MAJOR on a copy: every phase timed, plans compared.

    Restores a copy into a throwaway cluster of the source major, runs the
    workload, pg_upgrade --check, pg_upgrade, the workload right after (empty
    statistics before 18), vacuumdb --analyze-in-stages, the workload again.
    """
    from pgwarden.backup.catalogue import Catalogue
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.upgrade.rehearse import RehearseUpgradeOptions, rehearse_upgrade
    from pgwarden.upgrade.rehearse_report import rehearsal_lines, write_report

    dsn = resolve_dsn(database_url)
    assert dsn is not None
    cat = _catalogue(catalogue, config, copy in ("auto", "backup") or backup_id is not None)
    assert cat is None or isinstance(cat, Catalogue)
    from pgwarden.notify import attach
    from pgwarden.settings import load_settings

    with attach(load_settings(config), command="upgrade rehearse", database_url=dsn) as hook:
        result = rehearse_upgrade(
            dsn,
            RehearseUpgradeOptions(
                target_major=target_major,
                mode=mode,
                copy=copy,
                catalogue=cat,
                backup_id=backup_id,
                workload_file=workload_file,
                stats_file=stats_file,
                top=top,
                threshold=threshold,
                jobs=jobs,
            ),
            observer=fan_out([_show, hook]),
        )
        if result.status != "completed":
            hook.finish("failed", f"upgrade rehearsal to {target_major}: {'; '.join(result.notes)}")
    if report_path:
        write_report(result, Path(report_path))
        err.print(styled("[dim]· report: {}[/]", report_path))
    if fmt == "json":
        print_json(result.to_dict())
    else:
        for line in rehearsal_lines(result):
            out.print(line)
    failing = {
        "after-analyze": ("after analyze",),
        "right-after": ("after analyze", "right after pg_upgrade"),
        "never": (),
    }[fail_on]
    # A slowdown with the same plan is reported, not failed on: timings on a copy vary.
    if result.status != "completed" or any(
        g.when in failing and g.changes for g in result.regressions
    ):
        sys.exit(EXIT_FINDINGS)


SUBCOMMANDS = (check, rehearse)
