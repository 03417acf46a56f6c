"""CLI: `pgwarden rehearse` — run the change on a throwaway copy under synthetic traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from pgwarden.cli import (
    EXIT_FINDINGS,
    EXIT_INPUT,
    err,
    handle_errors,
    out_markup,
    print_json,
    styled,
)
from pgwarden.cli.analyse import alembic_options, alembic_sources
from pgwarden.cli.options import config_option, threshold_option

if TYPE_CHECKING:
    from pgwarden.rehearse.model import RehearsalResult


def _range_start(
    revision_range: str | None, unapplied: bool, version_dsn: str | None
) -> str | None:
    """The revision the rehearsed range starts after (None: base)."""
    if unapplied:
        from pgwarden.sources.alembic import current_revisions

        assert version_dsn is not None
        current = current_revisions(version_dsn)
        return current[0] if current else None
    if not revision_range or ":" not in revision_range:
        return None
    start = revision_range.split(":", 1)[0].strip()
    return None if start in ("", "base") else start


def alembic_schema_before(alembic_ini: str, start: str | None) -> tuple[str, str] | None:
    """The offline SQL of the revisions up to `start` (base:start) and its origin label.

    `pgwarden rehearse --alembic` starts the scratch database from these
    revisions (untraced) when no --schema/--schema-from is given, so that the
    rehearsed range finds the tables it changes.
    """
    if start is None:
        return None
    from pgwarden.sources.alembic import read_alembic_sources

    before = read_alembic_sources(alembic_ini, revision_range=f"base:{start}")
    sql = "".join(st.text.rstrip().rstrip(";") + ";\n" for _, sts in before.sources for st in sts)
    return sql, f"Alembic revisions base:{start} (not traced)"


@click.command()
@click.argument("paths", nargs=-1, required=False)
@click.option(
    "--database-url",
    "database_url",
    default=None,
    metavar="DSN",
    help="A staging server to rehearse on (in a scratch database). Default: an embedded "
    "throwaway cluster. Refused when it looks like production.",
)
@click.option(
    "--schema", "schema_file", default=None, metavar="FILE", help="Schema SQL to start from."
)
@click.option(
    "--schema-from",
    "schema_from",
    default=None,
    metavar="DSN",
    help="Copy the schema of this database (pg_dump --schema-only, read-only).",
)
@click.option(
    "--stats",
    "stats_file",
    default=None,
    metavar="FILE",
    help="Stats snapshot: table sizes to mimic and extrapolate to.",
)
@click.option(
    "--rows-cap",
    type=click.IntRange(1),
    default=None,
    help="Most rows per table (default 200,000).",
)
@click.option(
    "--workload",
    "workload_file",
    default=None,
    metavar="FILE",
    help="Queries to compare before and after.",
)
@click.option(
    "--report",
    "report_path",
    default=None,
    metavar="FILE",
    help="Write a self-contained HTML report.",
)
@click.option(
    "--timezone",
    "timezone",
    default=None,
    metavar="NAME",
    help="Production's session TimeZone (as `SHOW TimeZone` prints it there): the steps run "
    "with it, since a timestamp -> timestamptz change is in place only in UTC. Default: "
    "rehearse.timezone in the configuration, else --schema-from's, else the --stats "
    "snapshot's, else the rehearsal database's own (said to be assumed).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@threshold_option
@click.option(
    "--no-file-transaction", is_flag=True, help="Files do not run inside one transaction each."
)
@config_option
@alembic_options
@handle_errors
def rehearse(
    paths: tuple[str, ...],
    database_url: str | None,
    schema_file: str | None,
    schema_from: str | None,
    stats_file: str | None,
    rows_cap: int | None,
    workload_file: str | None,
    report_path: str | None,
    timezone: str | None,
    fmt: str,
    threshold: float,
    no_file_transaction: bool,
    config: str | None,
    alembic_ini: str | None,
    revision_range: str | None,
    unapplied: bool,
) -> None:
    """Run the migration on a throwaway copy under synthetic traffic and measure the impact.

    PATHS are .sql files or folders; or --alembic [alembic.ini] rehearses Alembic
    revisions (--range, or --unapplied after the alembic_version of --schema-from,
    else of --database-url). Without --schema/--schema-from, the revisions before
    the range build the starting schema.
    """
    import sys

    from pgwarden import commands
    from pgwarden.errors import UsageError
    from pgwarden.events import Event, FillProgress, Phase, fan_out
    from pgwarden.notify import attach
    from pgwarden.rehearse.api import DEFAULT_ROWS_CAP, RehearsalInterrupted, RehearseOptions
    from pgwarden.rehearse.api import rehearse as run
    from pgwarden.rehearse.copydata import copy_settings
    from pgwarden.rehearse.timezone import timezone_setting
    from pgwarden.report.events import render
    from pgwarden.settings import load_settings
    from pgwarden.sources.alembic import AlembicSources

    settings = load_settings(config)
    copy = copy_settings(settings)  # [tool.pgwarden.rehearse] copy_data, copy_max_rows
    zone = timezone or timezone_setting(settings)
    zone_origin = (
        "--timezone"
        if timezone
        else f"rehearse.timezone in {settings.source or 'the configuration'}"
    )
    version_dsn = schema_from or database_url
    sources = alembic_sources(paths, alembic_ini, revision_range, unapplied, version_dsn)
    alembic = sources if isinstance(sources, AlembicSources) else None
    if alembic is not None and not alembic.revisions:
        raise UsageError("no Alembic revisions to rehearse", hint="the range is empty")
    from pgwarden.cli.interaction import require_stdin

    require_stdin(paths, "rehearse")
    plan = commands.load_plan(
        list(paths),
        file_transaction=not no_file_transaction and settings.file_transaction,
        sources=sources,
    )
    schema_sql: str | None = None
    schema_label: str | None = None
    if alembic_ini is not None and schema_file is None and schema_from is None:
        from pgwarden.pg.connect import resolve_dsn

        dsn = resolve_dsn(version_dsn, required=True) if unapplied else None
        before = alembic_schema_before(alembic_ini, _range_start(revision_range, unapplied, dsn))
        if before is not None:
            schema_sql, schema_label = before
            err.print(styled("[dim]· schema: {}[/]", before[1]))
    progress = Progress(
        TextColumn("  {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} rows"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, int] = {}
    done: dict[str, int] = {}

    def show(event: Event) -> None:
        if isinstance(event, FillProgress):
            table = event.table
            if table not in tasks:
                tasks[table] = int(progress.add_task(f"filling {escape(table)}", total=event.total))
                done[table] = 0
            progress.advance(tasks[table], event.done - done[table])  # type: ignore[arg-type]
            done[table] = event.done
        elif isinstance(event, Phase):  # the steps are summed up at the end
            for line in render(event):
                progress.console.print(line)

    try:
        with progress, attach(settings, command="rehearse", database_url=database_url) as hook:
            result = run(
                plan,
                RehearseOptions(
                    database_url=database_url,
                    schema_file=schema_file,
                    schema_from=schema_from,
                    schema_sql=schema_sql,
                    schema_label=schema_label,
                    stats_file=stats_file,
                    rows_cap=rows_cap or DEFAULT_ROWS_CAP,
                    workload_file=workload_file,
                    report_path=report_path,
                    environments=settings.environments,
                    threshold=threshold,
                    version_table=alembic.version_table if alembic is not None else None,
                    copy_data=copy.tables or (),
                    copy_max_rows=copy.max_rows,
                    config=settings.source,
                    timezone=zone,
                    timezone_origin=zone_origin,
                ),
                observer=fan_out([show, hook]),
            )
    except RehearsalInterrupted as exc:
        where = exc.result.report_path if exc.result is not None else None
        if database_url is None:
            gone = "the rehearsal cluster was removed"
        elif exc.result is not None and exc.result.target:  # scratch database NAME on ...
            gone = f"the {exc.result.target} was dropped"
        else:
            from pgwarden.pg.connect import describe_dsn

            gone = f"the scratch database on {describe_dsn(database_url)} was dropped"
        err.print(styled("[bold red]pgwarden: error:[/] interrupted; {}", gone))
        if where:
            err.print(f"  partial report: {where}")
        sys.exit(EXIT_INPUT)
    if fmt == "json":
        print_json(result.to_dict())
    else:
        from pgwarden.rehearse.report_text import render_text

        render_text(out_markup, result)  # it escapes what it prints
    if code := exit_code(result):
        sys.exit(code)


def exit_code(result: RehearsalResult) -> int:
    """The exit code of a rehearsal that ran (`pgwarden rehearse`, `manage.py pgwarden
    rehearse`): 1 when a step failed or a finding is an error, else 0."""
    errors = any(f.severity.value == "error" for f in result.findings)
    return EXIT_FINDINGS if result.status != "completed" or errors else 0


COMMANDS = (rehearse,)
