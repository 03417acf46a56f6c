"""Command line: parse arguments, call `commands`, render, map errors to exit codes.

Exit codes (the contract):
  0  ok
  1  findings at or above the failure threshold, or refused by a guard
  2  usage, input or environment error; interrupted before anything changed
  3  the database misbehaved during apply (cancelled, timed out); the journal tells the state
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from functools import wraps
from types import FrameType
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
import orjson
from rich.console import Console

from pgwarden import commands
from pgwarden.errors import ApplyFailed, PgwardenError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_APPLY = 0, 1, 2, 3

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)


def _fail(message: str, hint: str | None, code: int) -> NoReturn:
    err.print(f"[bold red]pgwarden: error:[/] {message}", markup=True, highlight=False)
    if hint:
        err.print(f"  [dim]hint:[/] {hint}", markup=True, highlight=False)
    sys.exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn pgwarden errors and Ctrl-C into one message and the documented exit code."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PgwardenError as exc:
            _fail(exc.message, exc.hint, exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", "nothing was left running; run the command again", EXIT_INPUT)
        except BrokenPipeError:
            sys.exit(EXIT_OK)

    return wrapper


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


dsn_option = click.option(
    "--database-url",
    "database_url",
    default=None,
    metavar="DSN",
    help="Target database (falls back to $PGWARDEN_DATABASE_URL, then $DATABASE_URL).",
)
pg_version_option = click.option(
    "--pg-version", type=click.IntRange(13, 18), default=None, help="Server major to model."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pgwarden")
def cli() -> None:
    """pgwarden: know what each schema change locks, rehearse it, apply it safely."""


@cli.command()
@click.argument("sql")
@dsn_option
@click.option("--stats", "stats_file", default=None, metavar="FILE", help="Stats snapshot file.")
@pg_version_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@handle_errors
def explain(
    sql: str, database_url: str | None, stats_file: str | None, pg_version: int | None, fmt: str
) -> None:
    """Show what SQL locks, rewrites, scans and destroys, per relation."""
    from pgwarden.report.explain import explain_json, render_explain

    ctx = commands.load_context(
        database_url=database_url, stats_file=stats_file, pg_version=pg_version
    )
    plan = commands.explain(sql, context=ctx)
    if fmt == "json":
        _json(explain_json(plan, ctx.snapshot))
    else:
        render_explain(out, plan, ctx.snapshot)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@dsn_option
@click.option("--stats", "stats_file", default=None, metavar="FILE", help="Stats snapshot file.")
@pg_version_option
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]), default="text"
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "note"]),
    default=None,
    help="Lowest severity that makes the exit code 1 (default: config, else error).",
)
@click.option(
    "--no-file-transaction",
    is_flag=True,
    help="Files do not run inside one transaction each (runner without transactions).",
)
@click.option(
    "--config", "config", default=None, metavar="FILE", help="pgwarden.toml or pyproject.toml."
)
@handle_errors
def lint(
    paths: tuple[str, ...],
    database_url: str | None,
    stats_file: str | None,
    pg_version: int | None,
    fmt: str,
    fail_on: str | None,
    no_file_transaction: bool,
    config: str | None,
) -> None:
    """Report what each statement locks, scans, rewrites or destroys, sized by table stats."""
    from pgwarden.findings import Severity
    from pgwarden.report.lint_json import lint_json
    from pgwarden.report.lint_text import render_lint
    from pgwarden.settings import load_settings

    settings = load_settings(config)
    ctx = commands.load_context(
        database_url=database_url,
        stats_file=stats_file,
        pg_version=pg_version or settings.pg_version,
    )
    plan, result = commands.lint(
        list(paths),
        context=ctx,
        settings=settings,
        file_transaction=False if no_file_transaction else None,
    )
    if fmt == "json":
        _json(lint_json(plan, result))
    elif fmt == "sarif":
        from pgwarden.report.lint_ci import sarif

        _json(sarif(result))
    elif fmt == "github":
        from pgwarden.report.lint_ci import github_annotations

        sys.stdout.write(github_annotations(result))
    else:
        render_lint(out, plan, result)
    if result.failed(Severity(fail_on or settings.fail_on)):
        sys.exit(EXIT_FINDINGS)


@cli.group()
def stats() -> None:
    """Table statistics snapshots (sizes, traffic, schema facts)."""


@stats.command("dump")
@dsn_option
@click.option("-o", "--output", required=True, metavar="FILE", help="Where to write the JSON.")
@click.option(
    "--sample-seconds",
    type=click.FloatRange(0, 600),
    default=2.0,
    show_default=True,
    help="Interval between the two samples that give traffic rates (0: sizes only).",
)
@handle_errors
def stats_dump(database_url: str | None, output: str, sample_seconds: float) -> None:
    """Write a stats snapshot (read-only; point it at a replica)."""
    from pgwarden.pg.connect import resolve_dsn

    dsn = resolve_dsn(database_url)
    assert dsn is not None
    snap = commands.stats_dump(dsn, output, sample_s=sample_seconds)
    err.print(
        f"wrote {output}: {len(snap.stats.tables)} tables, {len(snap.stats.indexes)} indexes "
        f"of {snap.stats.database} (PostgreSQL {snap.server_major})"
    )


@cli.command()
@click.option(
    "--rows",
    type=click.IntRange(1000, 100_000_000),
    default=1_000_000,
    show_default=True,
    help="Rows in the demo's invoices table.",
)
@handle_errors
def demo(rows: int) -> None:
    """Run the main job on an embedded PostgreSQL: build, snapshot, lint examples/."""
    from pgwarden.demo import run_demo

    run_demo(out, err, invoices_rows=rows)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the `pgwarden` command."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = cli.main(args=argv, prog_name="pgwarden", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", "nothing was left running", EXIT_INPUT)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_INPUT)
    except ApplyFailed as exc:  # pragma: no cover - handled inside commands
        _fail(exc.message, exc.hint, EXIT_APPLY)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
