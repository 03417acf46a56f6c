"""CLI: `pgwarden rehearse` — run the change on a throwaway copy under synthetic traffic."""

from __future__ import annotations

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from pgwarden.cli import EXIT_FINDINGS, EXIT_INPUT, err, handle_errors, out, print_json


@click.command()
@click.argument("paths", nargs=-1, required=True)
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
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--threshold",
    type=float,
    default=1.5,
    show_default=True,
    help="Latency ratio that makes a regression.",
)
@click.option(
    "--no-file-transaction", is_flag=True, help="Files do not run inside one transaction each."
)
@click.option(
    "--config", "config", default=None, metavar="FILE", help="pgwarden.toml or pyproject.toml."
)
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
    fmt: str,
    threshold: float,
    no_file_transaction: bool,
    config: str | None,
) -> None:
    """Run the migration on a throwaway copy under synthetic traffic and measure the impact."""
    import sys

    from pgwarden.rehearse.api import DEFAULT_ROWS_CAP, RehearsalInterrupted
    from pgwarden.rehearse.api import rehearse as run
    from pgwarden.settings import load_settings

    settings = load_settings(config)
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

    def on_progress(table: str, rows_done: int, total: int) -> None:
        if table not in tasks:
            tasks[table] = int(progress.add_task(f"filling {table}", total=total))
            done[table] = 0
        progress.advance(tasks[table], rows_done - done[table])  # type: ignore[arg-type]
        done[table] = rows_done

    try:
        with progress:
            result = run(
                list(paths),
                database_url=database_url,
                schema_file=schema_file,
                schema_from=schema_from,
                stats_file=stats_file,
                rows_cap=rows_cap or DEFAULT_ROWS_CAP,
                workload_file=workload_file,
                report_path=report_path,
                file_transaction=not no_file_transaction and settings.file_transaction,
                environments=settings.environments,
                threshold=threshold,
                on_progress=on_progress,
                on_phase=lambda msg: progress.console.print(f"[dim]· {msg}[/]"),
            )
    except RehearsalInterrupted as exc:
        where = exc.result.report_path if exc.result is not None else None
        err.print("[bold red]pgwarden: error:[/] interrupted; the rehearsal cluster was removed")
        if where:
            err.print(f"  partial report: {where}")
        sys.exit(EXIT_INPUT)
    if fmt == "json":
        print_json(result.to_dict())
    else:
        from pgwarden.rehearse.report_text import render_text

        render_text(out, result)
    if result.status != "completed" or any(f.severity.value == "error" for f in result.findings):
        sys.exit(EXIT_FINDINGS)


COMMANDS = (rehearse,)
