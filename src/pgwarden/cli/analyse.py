"""CLI commands that analyse SQL: explain, lint, stats dump, demo."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import click

from pgwarden import commands
from pgwarden.cli import (
    EXIT_FINDINGS,
    dsn_option,
    err,
    err_markup,
    handle_errors,
    out,
    out_markup,
    pg_version_option,
    print_json,
    skip_teardown,
)
from pgwarden.cli.options import alembic_option
from pgwarden.errors import SqlParseError, UsageError

if TYPE_CHECKING:
    from pgwarden.lint.engine import LintResult
    from pgwarden.plan import Plan


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("sql")
@dsn_option
@click.option("--stats", "stats_file", default=None, metavar="FILE", help="Stats snapshot file.")
@pg_version_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@handle_errors
def explain(
    sql: str, database_url: str | None, stats_file: str | None, pg_version: int | None, fmt: str
) -> None:
    """Show what SQL locks, rewrites, scans and destroys, per relation.

    SQL is the statement text, a .sql file, or - to read it from standard input.
    """
    from pathlib import Path

    from pgwarden.cli.interaction import require_stdin, stdin
    from pgwarden.report.explain import explain_json, render_explain
    from pgwarden.sources.sql_files import STDIN, decode_sql, read_sql_file

    path = "<sql>"
    if sql == "-":
        require_stdin([sql], "explain")
        path, sql = STDIN, decode_sql(stdin().read(), STDIN)
    elif sql.strip() and not any(c.isspace() for c in sql.strip()):
        if Path(sql).is_file():
            path, sql = sql, read_sql_file(Path(sql))
        elif sql.lower().endswith(".sql"):
            raise UsageError(f"{sql}: no such file", hint="check the path, or pass the SQL text")
    ctx = commands.load_context(
        database_url=database_url, stats_file=stats_file, pg_version=pg_version
    )
    plan = commands.explain(sql, context=ctx, path=path)
    if fmt == "json":
        print_json(explain_json(plan, ctx.snapshot))
    else:
        render_explain(out, plan, ctx.snapshot)


def alembic_options(fn: Any) -> Any:
    """`--alembic [alembic.ini]`, `--range`, `--unapplied` (lint, rehearse, apply)."""
    fn = click.option(
        "--unapplied",
        is_flag=True,
        help="With --alembic: only revisions after the database's alembic_version.",
    )(fn)
    fn = click.option(
        "--range",
        "revision_range",
        default=None,
        metavar="BASE:HEAD",
        help="With --alembic: the revisions to take (default base:heads).",
    )(fn)
    return alembic_option(
        "Take the migration from Alembic revisions (offline SQL) instead of files."
    )(fn)


def alembic_sources(
    paths: tuple[str, ...],
    alembic_ini: str | None,
    revision_range: str | None,
    unapplied: bool,
    database_url: str | None,
    *,
    snapshot: Any = None,
    strict: bool = False,
) -> Any:
    """The AlembicSources of the options, or None for SQL files (checks the combination).

    Revisions the database already ran (its alembic_version, from `snapshot` or
    `database_url`) are left out and named on stderr; `strict` (apply) refuses a
    range that includes them, or a revision that cannot render offline.
    """
    if alembic_ini is None:
        if revision_range or unapplied:
            raise UsageError("--range and --unapplied need --alembic")
        if not paths:
            raise UsageError(
                "no SQL files given", hint="pass .sql files or folders, or --alembic [alembic.ini]"
            )
        return None
    if paths:
        raise UsageError("give either SQL files or --alembic, not both")
    from pgwarden.pg.connect import resolve_dsn
    from pgwarden.sources.alembic import read_alembic_sources

    migrations = snapshot.migrations if snapshot is not None else None
    applied = migrations.alembic_version if migrations is not None else None
    where = "database" if database_url else "snapshot"
    dsn = resolve_dsn(database_url, required=applied is None) if unapplied else database_url
    sources = read_alembic_sources(
        alembic_ini,
        revision_range=revision_range,
        unapplied=unapplied,
        database_url=dsn if unapplied or strict else None,
        sqlalchemy_url=dsn,
        applied=applied,
        applied_from=f"the {where}'s alembic_version",
        strict=strict,
    )
    for note in sources.notes():
        err.print(f"warning: {note}", markup=False, highlight=False)
    return sources


@click.command()
@click.argument("paths", nargs=-1, required=False)
@dsn_option
@click.option("--stats", "stats_file", default=None, metavar="FILE", help="Stats snapshot file.")
@pg_version_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github", "gitlab"]),
    default="text",
    help="text for people; json (docs/json-output.md); sarif (code scanning); github "
    "(workflow annotations); gitlab (Code Quality report).",
)
@alembic_options
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "note", "never"]),
    default=None,
    help="Lowest severity that makes the exit code 1; never: always 0 "
    "(default: config, else error).",
)
@click.option(
    "--no-file-transaction",
    is_flag=True,
    help="Files do not run inside one transaction each (runner without transactions).",
)
@click.option(
    "--fix",
    "apply_fixes",
    is_flag=True,
    help="Rewrite files into their safe form where a mechanical fix exists; print the diff.",
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
    apply_fixes: bool,
    config: str | None,
    alembic_ini: str | None,
    revision_range: str | None,
    unapplied: bool,
) -> None:
    """Report what each statement locks, scans, rewrites or destroys, sized by table stats.

    PATHS are .sql files or folders (- reads standard input); or --alembic [alembic.ini]
    lints Alembic revisions.
    """
    from pgwarden.findings import Severity
    from pgwarden.settings import load_settings

    skip_teardown()  # what lint opens it closes itself (files, a read-only connection)
    settings = load_settings(config)
    if alembic_ini is not None and apply_fixes:
        raise UsageError("--fix rewrites SQL files; it does not edit Alembic revisions")
    if apply_fixes and "-" in paths:
        raise UsageError(
            "--fix rewrites SQL files in place; standard input (-) has no file to rewrite",
            hint="save the SQL to a file and run --fix on it",
        )
    if "-" in paths:
        from pgwarden.cli.interaction import require_stdin

        require_stdin(paths, "lint")
    ctx = commands.load_context(
        database_url=database_url,
        stats_file=stats_file,
        pg_version=pg_version or settings.pg_version,
    )
    try:
        sources = alembic_sources(
            paths, alembic_ini, revision_range, unapplied, database_url, snapshot=ctx.snapshot
        )
    except SqlParseError as exc:  # an op.execute the grammar rejects
        _syntax_error_report(fmt, exc)
        raise

    preflight_dsn = None
    if database_url:
        from pgwarden.pg.connect import resolve_dsn  # loads psycopg: only with a database

        preflight_dsn = resolve_dsn(database_url, required=False)

    unparsed: list[SqlParseError] = []  # files the grammar rejects: the others are linted

    def run() -> tuple[Plan, LintResult]:
        unparsed.clear()
        plan, result = commands.lint(
            list(paths),
            context=ctx,
            settings=settings,
            file_transaction=False if no_file_transaction else None,
            preflight_dsn=preflight_dsn,
            sources=sources,
            unparsed=unparsed,
        )
        if sources is not None:  # revisions lint could not see are in the report too
            from pgwarden.lint.engine import not_rendered_finding

            unseen = tuple(
                not_rendered_finding(s.path, s.detail)
                for s in sources.skipped
                if s.why == "offline"
            )
            result = replace(result, findings=unseen + result.findings)
        return plan, result

    try:
        plan, result = run()
    except SqlParseError as exc:
        _syntax_error_report(fmt, exc)
        raise
    if apply_fixes:
        from pgwarden.lint.fix import fix_plan, left_as_written, write_fixes

        fixes = fix_plan(plan, result, ctx.snapshot)
        write_fixes(fixes)
        for fx in fixes:
            err.print(fx.diff(), highlight=False, end="")
        err.print(f"fixed {sum(len(fx.fixed) for fx in fixes)} finding(s) in {len(fixes)} file(s)")
        for text in plan.texts:
            why = left_as_written(text)
            if why is not None and any(
                f.fix is not None and plan.steps[f.step].location.path == text.path
                for f in result.findings
                if f.step is not None
            ):
                err.print(f"not rewritten: {text.path} {why}", highlight=False)
        plan, result = run()  # what is left after the fixes
    _print_lint_report(fmt, plan, result)
    skip_teardown(plan, result)  # freed with the process, not one object at a time
    if unparsed:  # a syntax error's exit code and message, after the others' report
        first = unparsed[0]
        more = f" (and in {len(unparsed) - 1} more file(s))" if len(unparsed) > 1 else ""
        fix = (
            f"fix the SQL at that position{more}"
            if type(first) is SqlParseError
            else f"{first.hint}{more}"
        )
        first.hint = (
            f"the other {len(plan.texts)} file(s) were linted and reported; {fix} (PW901 in "
            "the report)"
        )
        raise first
    threshold = fail_on or settings.fail_on
    if threshold != "never" and result.failed(Severity(threshold)):
        sys.exit(EXIT_FINDINGS)


def _syntax_error_report(fmt: str, exc: SqlParseError) -> None:
    """The PW901 report of `exc` on stdout in the formats CI uploads (it must be one);
    text and github say it on stderr only, as the caller's error."""
    if fmt in ("json", "sarif", "gitlab"):
        from pgwarden.lint.engine import syntax_error_result
        from pgwarden.plan import Plan

        _print_lint_report(fmt, Plan(()), syntax_error_result(exc))


def _print_lint_report(fmt: str, plan: Plan, result: LintResult) -> None:
    """`result` on stdout in `fmt`."""
    if fmt == "json":
        from pgwarden.report.lint_json import lint_json

        print_json(lint_json(plan, result))
    elif fmt == "sarif":
        from pgwarden.report.lint_ci import sarif

        print_json(sarif(result))
    elif fmt == "github":
        from pgwarden.report.lint_ci import github_annotations

        sys.stdout.write(github_annotations(result))
    elif fmt == "gitlab":
        from pgwarden.report.lint_gitlab import gitlab_code_quality

        print_json(gitlab_code_quality(plan, result))
    else:
        from pgwarden.report.lint_text import render_lint  # rich.syntax, pygments

        render_lint(out, plan, result)


@click.group()
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


@click.command()
@click.option(
    "--rows",
    type=click.IntRange(1000, 100_000_000),
    default=1_000_000,
    show_default=True,
    help="Rows in the demo's invoices table.",
)
@click.option("--no-replay", is_flag=True, help="Skip applying the incident migration under load.")
@handle_errors
def demo(rows: int, no_replay: bool) -> None:
    """Run the main job on an embedded PostgreSQL: build, snapshot, lint, apply under load."""
    from pgwarden.demo import run_demo

    run_demo(out_markup, err_markup, invoices_rows=rows, replay=not no_replay)


COMMANDS = (explain, lint, stats, demo)
