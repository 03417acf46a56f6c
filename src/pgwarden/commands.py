"""Plain typed command functions: they take arguments and return results.

They never print or exit; `cli.py` renders their results and maps errors to
exit codes. Tests and library users call the same functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.context import Snapshot, load_snapshot, save_snapshot, take_snapshot
from pgwarden.errors import InputError, SqlParseError, UsageError
from pgwarden.lint.engine import LintResult, lint_plan, syntax_error_finding
from pgwarden.plan import Plan, SourceText, build_plan
from pgwarden.rules.base import DmlLimits
from pgwarden.settings import Settings
from pgwarden.sources.sql_files import read_source, read_sources

if TYPE_CHECKING:
    from pgwarden.analysis.parse import ParsedStatement
    from pgwarden.lint.preflight_writes import Write
    from pgwarden.sources.alembic import AlembicSources

    Sources = Sequence[tuple[SourceText, Sequence[ParsedStatement]]] | AlembicSources

__all__ = [
    "Context",
    "explain",
    "lint",
    "lint_built_plan",
    "load_context",
    "load_plan",
    "stats_dump",
]

SUPPORTED_MAJORS = range(13, 19)


@dataclass(frozen=True, slots=True)
class Context:
    """What is known about the target: snapshot (stats + catalog) and server major."""

    snapshot: Snapshot | None
    catalog: Catalog | None
    server_version: int | None
    source: str  # "database", "snapshot" or "none"


def _check_version(v: int | None) -> int | None:
    if v is not None and v not in SUPPORTED_MAJORS:
        raise UsageError(
            f"PostgreSQL {v} is not supported", hint="pgwarden models PostgreSQL 13 to 18"
        )
    return v


def load_context(
    *,
    database_url: str | None = None,
    stats_file: str | os.PathLike[str] | None = None,
    pg_version: int | None = None,
    sample_s: float = 0.0,
) -> Context:
    """Context from a live database (read-only), a snapshot file, or nothing."""
    _check_version(pg_version)
    if database_url and stats_file:
        raise UsageError("give either --database-url or --stats, not both")
    if stats_file:
        snap = load_snapshot(stats_file)
        return Context(snap, snap.catalog, pg_version or snap.server_major, "snapshot")
    if database_url:
        snap = take_snapshot(database_url, sample_s=sample_s)
        return Context(snap, snap.catalog, pg_version or snap.server_major, "database")
    return Context(None, None, pg_version, "none")


def load_plan(
    paths: Sequence[str | os.PathLike[str]],
    *,
    context: Context | None = None,
    file_transaction: bool = False,
    sources: Sources | None = None,
    up_sql_runner: str | None = None,
) -> Plan:
    """A Plan from .sql files and folders (folders in name order), or from `sources`.

    `sources` are already parsed (SourceText, statements) pairs, e.g. Alembic
    revisions (`pgwarden.sources.alembic.read_alembic_sources`); Alembic's
    sources carry their own transactions, so `file_transaction` does not apply.
    """
    ctx = context or Context(None, None, None, "none")
    if sources is not None and not isinstance(sources, Sequence):
        from pgwarden.sources.alembic import build_alembic_plan

        return build_alembic_plan(
            sources.sources, catalog=ctx.catalog, server_version=ctx.server_version
        )
    return build_plan(
        sources if sources is not None else read_sources(paths, up_sql_runner=up_sql_runner),
        catalog=ctx.catalog,
        server_version=ctx.server_version,
        file_transaction=file_transaction,
    )


def explain(sql: str, *, context: Context | None = None, path: str = "<sql>") -> Plan:
    """The plan of a SQL string (the text of the file `path`, if one), one step per
    statement, with effects; read as lint reads a file (a goose or dbmate file's up half,
    placeholders and psql variables, its tool's transactions)."""
    try:
        source = read_source(path, sql)
    except SqlParseError:
        raise
    except InputError:  # no statement in it
        raise InputError(
            "no SQL statement given", hint='pass SQL, e.g. pgwarden explain "DROP TABLE t"'
        ) from None
    ctx = context or Context(None, None, None, "none")
    return build_plan(
        [source],
        catalog=ctx.catalog,
        server_version=ctx.server_version,
    )


def stats_dump(
    database_url: str, output: str | os.PathLike[str], *, sample_s: float = 1.0
) -> Snapshot:
    """Take a snapshot of `database_url` (read-only) and write it to `output`."""
    out = Path(output)
    if out.parent and not out.parent.exists():
        raise UsageError(f"{out.parent}: directory does not exist", hint="create it first")
    snap = take_snapshot(database_url, sample_s=sample_s)
    save_snapshot(snap, out)
    return snap


def catalog_of(database_url: str) -> Catalog:
    """The catalog of a live database (read-only)."""
    from pgwarden.analysis.catalog import read_catalog
    from pgwarden.pg.connect import connect

    with connect(database_url) as conn:
        return read_catalog(conn)


def lint(
    paths: Sequence[str | os.PathLike[str]],
    *,
    context: Context | None = None,
    settings: Settings | None = None,
    file_transaction: bool | None = None,
    preflight_dsn: str | None = None,
    sources: Sources | None = None,
    unparsed: list[SqlParseError] | None = None,
) -> tuple[Plan, LintResult]:
    """Lint SQL files (or parsed `sources`) in order, each one migration; returns the plan
    and its findings. Without a snapshot, what an earlier file created is not new.

    With `preflight_dsn`, also count existing rows the new constraints would reject.
    With `unparsed`, SQL files the grammar rejects are left out, each a PW901 finding and
    its error added there, and the others linted (the first error is raised when no file
    parses); without, the first error is raised.
    """
    cfg = settings or Settings()
    ctx = context or Context(None, None, cfg.pg_version, "none")
    wrap = cfg.file_transaction if file_transaction is None else file_transaction
    if sources is None and unparsed is not None:
        sources = read_sources(paths, unparsed=unparsed, up_sql_runner=cfg.up_sql_runner)
        if not sources:
            raise unparsed[0]
    plan = load_plan(
        paths,
        context=ctx,
        file_transaction=wrap,
        sources=sources,
        up_sql_runner=cfg.up_sql_runner,
    )
    own: set[int] = set()
    if sources is not None and not isinstance(sources, Sequence):
        own = {s.index for s in plan.steps if sources.is_bookkeeping(s)}
    result = lint_built_plan(plan, ctx, cfg, preflight_dsn=preflight_dsn, bookkeeping=own)
    from pgwarden.lint.ignore_sources import apply_source_ignores, source_ignores

    config = cfg.source or "configuration"  # [[ignore_sources]]: migrations you do not own
    result = apply_source_ignores(result, source_ignores(cfg), config=config)
    if unparsed:
        skipped = tuple(syntax_error_finding(e, "this file was not linted") for e in unparsed)
        result = replace(result, findings=skipped + result.findings)
    return plan, result


def lint_built_plan(
    plan: Plan,
    context: Context,
    settings: Settings,
    *,
    preflight_dsn: str | None = None,
    bookkeeping: set[int] | frozenset[int] = frozenset(),
    hidden_writes: Sequence[tuple[int, Write]] = (),
) -> LintResult:
    """Lint a plan already built (SQL files, Alembic, Django) with the settings' limits.

    With `preflight_dsn` (read-only), DML sizes come from the planner and the rows a new
    constraint would reject are counted (PW401), as the plan's earlier statements and
    `hidden_writes` (code the plan does not show: Django's RunPython, as (index of the
    step it runs before, write)) leave them. Findings on `bookkeeping` steps (a
    framework's own version table) are dropped.
    """
    cfg = settings
    dml = DmlLimits(cfg.dml_max_rows, cfg.dml_max_share)
    if preflight_dsn and "PW142" not in cfg.ignore:
        from pgwarden.lint.preflight import planner_rows

        dml = replace(dml, planner_rows=planner_rows(plan, preflight_dsn))
    result = lint_plan(
        plan,
        snapshot=context.snapshot,
        ignore=cfg.ignore,
        dml=dml,
        unknown_type_change=cfg.unknown_type_change,
    )
    if bookkeeping:
        kept = tuple(f for f in result.findings if f.step not in bookkeeping)
        result = replace(result, findings=kept)  # Alembic's version table is not the user's
    if preflight_dsn and "PW401" not in cfg.ignore:
        from pgwarden.lint.preflight import preflight

        extra = preflight(plan, preflight_dsn, opaque=hidden_writes)
        merged = sorted([*result.findings, *extra], key=lambda f: (f.step or -1, f.code))
        result = replace(result, findings=tuple(merged))
    return result
