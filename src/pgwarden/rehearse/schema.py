"""The schema a rehearsal starts from: a file, a live database's dump, or earlier migrations.

`pg_dump --schema-only --no-owner --no-privileges` runs from the installation
whose major matches the source server (or the nearest newer one, which can
dump older servers). psql meta-commands in the dump (`\\restrict`, `\\connect`)
are dropped before the text is run over psycopg.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from pgwarden.errors import DatabaseError, EnvironmentProblem, InputError
from pgwarden.pg.binaries import find_installations
from pgwarden.pg.connect import connect, describe_dsn
from pgwarden.pg.tool_conninfo import tool_connection
from pgwarden.sources.sql_files import (
    collect_sql_files,
    is_sql_file,
    migration_order,
    read_sql_file,
)
from pgwarden.sources.updown import is_down_file, split_halves

__all__ = ["SchemaSource", "apply_schema", "dump_schema", "earlier_migrations", "resolve_schema"]


@dataclass(frozen=True, slots=True)
class SchemaSource:
    """Schema SQL and where it came from, in words."""

    sql: str
    origin: str


def dump_schema(dsn: str, *, timeout_s: float = 300.0) -> str:
    """`pg_dump --schema-only` of `dsn` with a pg_dump able to read that server."""
    with connect(dsn) as conn:
        major = conn.info.server_version // 10000
    tools = sorted(
        (i for i in find_installations() if i.major >= major and i.tool("pg_dump").exists()),
        key=lambda i: i.major,
    )
    if not tools:
        raise EnvironmentProblem(
            f"no pg_dump for PostgreSQL {major} or newer found",
            hint="install the postgresql client package of that version, or pass --schema FILE",
        )
    pg_dump = tools[0].tool("pg_dump")
    target = tool_connection(dsn)  # the password goes in the environment, never in argv
    try:
        done = subprocess.run(
            [
                str(pg_dump),
                "--schema-only",
                "--no-owner",
                "--no-privileges",
                f"--dbname={target.conninfo}",
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=target.env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise DatabaseError(
            f"pg_dump of {describe_dsn(dsn)} did not finish within {timeout_s:.0f} s",
            hint="check the server's load, or dump the schema yourself and pass --schema FILE",
        ) from None
    if done.returncode != 0:
        raise DatabaseError(
            f"pg_dump of {describe_dsn(dsn)} failed: {target.redact(done.stderr.strip()[-1000:])}",
            hint="check the role can read the schema, or pass --schema FILE",
        )
    return done.stdout


def _up_sql(path: Path) -> str:
    """A migration file's SQL as its tool runs it forward (no goose/dbmate down half)."""
    return split_halves(read_sql_file(path)).up


def earlier_migrations(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The migrations that run before the first given file (the history), in the order
    `pgwarden lint <folder>` reads them (`collect_sql_files`, down halves left out).

    The folder is the first file's, climbed while the folder above holds migrations named
    as it is (Flyway `V<version>__`/`R__` files, or names starting with a number), so a
    file in a sub-folder has the migrations above it; sub-folders are read as `lint`
    reads them (Flyway versions across sub-folders). A file not named as a migration has
    the `.sql` files of its own folder that sort before it."""
    found = _history(paths)
    return [] if found is None else [found[0] / f for f in found[1]]


def _history(paths: Sequence[str | os.PathLike[str]]) -> tuple[Path, list[Path]] | None:
    """The folder of the history and its files relative to it (None: no history)."""
    files = [Path(p) for p in paths if Path(p).is_file()]
    if not files or len(files) != len(paths):
        return None
    first = min(files, key=migration_order)
    given = {f.resolve() for f in files}
    # not SQL (an Alembic revision): no .sql history; not named as a migration: its own
    # folder only, as it always was
    kind = _naming(first.name) if is_sql_file(first) else None
    root = Path(os.path.abspath(first.parent))  # lexical: climbing never leaves a symlink
    if kind is None:
        every = [f for f in root.iterdir() if is_sql_file(f)]
        every = [f for f in every if not is_down_file(f, every)]
    else:
        while root.parent != root and _holds(root.parent, kind):
            root = root.parent
        every = collect_sql_files([root])
    here = migration_order(Path(os.path.abspath(first)).relative_to(root))
    history = [
        f.relative_to(root)
        for f in every
        if f.resolve() not in given and migration_order(f.relative_to(root)) < here
    ]
    base = first.parent if root == Path(os.path.abspath(first.parent)) else root
    return base, sorted(history, key=migration_order)


def _holds(folder: Path, kind: str) -> bool:
    """Whether `folder` itself holds a migration named as `kind` (unreadable: no)."""
    try:
        return any(_naming(f.name) == kind for f in folder.iterdir() if is_sql_file(f))
    except OSError:
        return False


def _naming(name: str) -> str | None:
    """How a migration file is named: "flyway" (`V<version>__`, `R__`), "numbered" (a
    leading number: `0001_x`, `20240101_x`) or None (`schema.sql`, `fix.sql`)."""
    if migration_order(Path(name))[0] != 1:
        return "flyway"
    return "numbered" if name[:1].isdigit() else None


def resolve_schema(
    paths: Sequence[str | os.PathLike[str]],
    *,
    schema_file: str | os.PathLike[str] | None = None,
    schema_from: str | None = None,
    schema_sql: str | None = None,
    schema_label: str | None = None,
) -> SchemaSource:
    """The schema to start from; with none given, the migrations folder's earlier files
    (`schema_label`: what `schema_sql` is, for the output)."""
    given = [x for x in (schema_file, schema_from, schema_sql) if x is not None]
    if len(given) > 1:
        from pgwarden.errors import UsageError

        raise UsageError("give one of --schema and --schema-from, not both")
    if schema_sql is not None:
        return SchemaSource(schema_sql, schema_label or "given SQL")
    if schema_file is not None:
        files = collect_sql_files([schema_file])
        return SchemaSource("\n".join(_up_sql(f) for f in files), f"schema file {schema_file}")
    if schema_from is not None:
        return SchemaSource(dump_schema(schema_from), f"pg_dump of {describe_dsn(schema_from)}")
    found = _history(paths)
    if found is not None and found[1]:
        base, history = found
        return SchemaSource(
            "\n".join(_up_sql(base / f) for f in history),
            "earlier migrations: " + ", ".join(f.as_posix() for f in history),
        )
    return SchemaSource("", "none (the plan starts from an empty database)")


def _strip_meta(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("\\"))


def apply_schema(dsn: str, source: SchemaSource) -> None:
    """Run the schema SQL in the rehearsal database (one connection, autocommit)."""
    text = _strip_meta(source.sql)
    if not text.strip():
        return
    with connect(dsn) as conn:
        try:
            conn.execute(text.encode())
        except psycopg.Error as exc:
            raise InputError(
                f"the schema ({source.origin}) failed to load: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}",
                hint="the schema must run on an empty database; check the file or the dump",
            ) from None
