"""Reference tables whose real rows a rehearsal copies from the source database.

Data migrations look rows up by value (Django's content types and permissions,
lookup and enum tables): synthetic rows cannot stand for them. The tables listed
in `[tool.pgwarden.rehearse] copy_data` get the source database's rows instead.
`plan_copy` reads, before anything starts, which tables that is: the listed ones
plus every table their foreign keys reference (so that the copied rows stay
consistent), parents first, each counted and refused above `copy_max_rows`.
`copy_rows` then reads them from the source in one read-only REPEATABLE READ
transaction (`COPY (SELECT ...) TO STDOUT`) and writes them into the copy
(`COPY ... FROM STDIN`). Each copied table also gets a numbered snapshot of its
rows in the `pgwarden` schema of the copy: the synthetic rows of tables that
reference it take their keys from there (see `datagen.value`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.errors import ConfigError, UsageError
from pgwarden.pg.connect import connect, describe_dsn
from pgwarden.rehearse.datagen import Table
from pgwarden.settings import Settings, config_table

__all__ = [
    "DEFAULT_MAX_ROWS",
    "CopySettings",
    "CopyTable",
    "copy_rows",
    "copy_settings",
    "plan_copy",
]

DEFAULT_MAX_ROWS = 100_000
LOOKUP_SCHEMA = "pgwarden"
ROW_NUMBER = "pgwarden_n"  # the column numbering a copied table's rows in its snapshot

_PARENTS = """
SELECT DISTINCT c.confrelid::regclass::text FROM pg_constraint c
WHERE c.contype = 'f' AND c.conrelid = %s::regclass AND c.confrelid <> c.conrelid
"""


@dataclass(frozen=True, slots=True)
class CopySettings:
    """`[tool.pgwarden.rehearse]`: the tables to copy (None: not configured), the row limit."""

    tables: tuple[str, ...] | None = None
    max_rows: int = DEFAULT_MAX_ROWS


def copy_settings(settings: Settings) -> CopySettings:
    """`copy_data` and `copy_max_rows` of `[tool.pgwarden.rehearse]`, checked."""
    table = settings.raw.get("rehearse", {})
    where = settings.source or "configuration"
    tables = table.get("copy_data")
    if tables is not None and not (
        isinstance(tables, list) and all(isinstance(t, str) and t for t in tables)
    ):
        raise ConfigError(f"{where}: rehearse.copy_data must be a list of table names")
    max_rows = table.get("copy_max_rows", DEFAULT_MAX_ROWS)
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0:
        raise ConfigError(f"{where}: rehearse.copy_max_rows must be a whole number, 0 or more")
    return CopySettings(None if tables is None else tuple(tables), max_rows)


@dataclass(frozen=True, slots=True)
class CopyTable:
    """A table whose rows are copied: its name (as the catalog prints it), its rows, and
    the listed table that references it ("" when it is listed itself)."""

    name: str
    rows: int
    referenced_by: str = ""

    def said(self) -> str:
        """`copied 123 rows of django_content_type from the database (...)`."""
        why = f" (referenced by {self.referenced_by})" if self.referenced_by else ""
        return f"copied {self.rows:,} rows of {self.name} from the database{why}"


def _too_big(
    name: str, rows: int, about: bool, max_rows: int, by: str, config: str | None
) -> UsageError:
    what = f"{name} (referenced by {by}, listed in copy_data)" if by else name
    table = config_table("rehearse", config)
    return UsageError(
        f"rehearse.copy_data: table {what} has {'about ' if about else ''}{rows:,} rows, more "
        f"than rehearse.copy_max_rows ({max_rows:,}); no rows were copied and nothing started",
        hint=f"list only small reference tables in copy_data under {table} (the others get "
        "synthetic rows), or raise copy_max_rows",
    )


def plan_copy(
    source_dsn: str, names: Sequence[str], max_rows: int, *, config: str | None = None
) -> list[CopyTable]:
    """The tables to copy from `source_dsn`, parents first, counted (read-only).

    A name the source does not have, or a table above `max_rows`, is a `UsageError`;
    `config` is the config file that lists them (`Settings.source`), named in hints.
    """
    out: dict[str, CopyTable] = {}
    with connect(source_dsn, application_name="pgwarden-rehearse-copy") as conn:
        conn.execute("SET default_transaction_read_only = on")

        def visit(name: str, by: str, stack: frozenset[str]) -> None:
            if name in out or name in stack:
                return
            for (parent,) in conn.execute(_PARENTS, (name,)).fetchall():
                visit(str(parent), by or name, stack | {name})
            est = conn.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", (name,)
            ).fetchone()
            estimate = int(str(est[0])) if est is not None else -1
            if estimate > 2 * max_rows:  # do not count a big table just to refuse it
                raise _too_big(name, estimate, True, max_rows, by, config)
            counted = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(name))
            ).fetchone()
            rows = int(str(counted[0])) if counted is not None else 0
            if rows > max_rows:
                raise _too_big(name, rows, False, max_rows, by, config)
            out[name] = CopyTable(name, rows, by)

        for raw in names:
            found = conn.execute("SELECT to_regclass(%s)::text", (raw,)).fetchone()
            if found is None or found[0] is None:
                raise UsageError(
                    f"rehearse.copy_data: no table {raw} in {describe_dsn(source_dsn)}",
                    hint="name the tables as the database does (schema.table outside the "
                    "search path), or remove it from copy_data under "
                    + config_table("rehearse", config),
                )
            visit(str(found[0]), "", frozenset())
    return list(out.values())


def _order_by(t: Table) -> sql.Composable:
    if t.keys:
        return sql.SQL(", ").join(sql.Identifier(c) for c in t.keys[0])
    return sql.SQL("ctid")


def copy_rows(
    source_dsn: str,
    conn: psycopg.Connection[tuple[object, ...]],
    plan: Sequence[CopyTable],
    tables: Mapping[str, Table],
) -> list[CopyTable]:
    """Copy `plan`'s rows from `source_dsn` into the copy `conn` (autocommit), parents
    first, in one snapshot; mark those tables copied (rows, snapshot) in `tables`.
    What was copied, with the rows actually copied."""
    done: list[CopyTable] = []
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(connect(source_dsn, application_name="pgwarden-rehearse-copy"))
        src.autocommit = False
        src.read_only = True
        src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        stack.enter_context(src.transaction())
        with contextlib.suppress(pge.InsufficientPrivilege):
            conn.execute("SET session_replication_role = replica")  # no triggers, no FK checks
        stack.callback(conn.execute, "RESET session_replication_role")
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(LOOKUP_SCHEMA))
        )
        for n, spec in enumerate(plan, 1):
            t = tables.get(spec.name)
            if t is None:  # the source has it, the copy's schema does not
                raise UsageError(
                    f"rehearse.copy_data: table {spec.name} is not in the rehearsal's schema",
                    hint="the schema comes from the source database: check it has the table",
                )
            cols = sql.SQL(", ").join(sql.Identifier(c.name) for c in t.columns if not c.generated)
            rows = 0
            with (
                src.cursor().copy(
                    sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(cols, sql.SQL(t.name))
                ) as out,
                conn.cursor().copy(
                    sql.SQL("COPY {} ({}) FROM STDIN").format(sql.SQL(t.name), cols)
                ) as into,
            ):
                for data in out:
                    into.write(data)
            lookup = sql.Identifier(LOOKUP_SCHEMA, f"rehearse_rows_{n}")
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {lk} AS SELECT row_number() OVER (ORDER BY {o}) AS {n}, t.* "
                    "FROM {t} AS t"
                ).format(lk=lookup, o=_order_by(t), n=sql.Identifier(ROW_NUMBER), t=sql.SQL(t.name))
            )
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                    lookup, sql.Identifier(ROW_NUMBER)
                )
            )
            conn.execute(sql.SQL("ANALYZE {}").format(lookup))
            got = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(lookup)).fetchone()
            rows = int(str(got[0])) if got is not None else 0
            t.rows = rows
            t.copied = lookup.as_string(conn)
            done.append(CopyTable(spec.name, rows, spec.referenced_by))
    return done
