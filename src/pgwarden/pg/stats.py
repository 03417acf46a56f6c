"""Table and index statistics: sizes, row counts and traffic rates.

Rates come from sampling `pg_stat_user_tables` twice over a short interval.
Column statistics (from `pg_stats`) are kept small: only for tables of at least
`COLUMN_STATS_MIN_ROWS` rows, a few most common values and histogram bounds per
column, values of at most `MAX_VALUE_CHARS` characters; and no values that could
be private (see `_values_kept`).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ColumnStats",
    "IndexStats",
    "MigrationState",
    "Stats",
    "TableStats",
    "read_column_stats",
    "read_migration_state",
    "read_stats",
    "read_top_queries",
]

COLUMN_STATS_MIN_ROWS = 10_000
MAX_MCV = 10
MAX_BOUNDS = 11
MAX_VALUE_CHARS = 40


@dataclass(frozen=True, slots=True)
class ColumnStats:
    """What the planner knows of one column's values (pg_stats), shortened."""

    null_frac: float
    n_distinct: float  # > 0: distinct values; < 0: minus the share of rows that are distinct
    mcv: tuple[str, ...] = ()  # most common values, as text
    mcf: tuple[float, ...] = ()  # their frequencies
    bounds: tuple[str, ...] = ()  # histogram bounds (of the values not in mcv), as text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnStats:
        return cls(
            null_frac=float(data.get("null_frac", 0.0)),
            n_distinct=float(data.get("n_distinct", 0.0)),
            mcv=tuple(str(v) for v in data.get("mcv", ())),
            mcf=tuple(float(f) for f in data.get("mcf", ())),
            bounds=tuple(str(v) for v in data.get("bounds", ())),
        )


@dataclass(frozen=True, slots=True)
class TableStats:
    """One table's size and activity."""

    name: str  # as regclass prints it
    rows: int
    total_bytes: int
    table_bytes: int
    index_bytes: int
    seq_scan: int = 0
    idx_scan: int = 0
    n_tup_ins: int = 0
    n_tup_upd: int = 0
    n_tup_del: int = 0
    writes_per_s: float | None = None  # inserted+updated+deleted rows per second
    reads_per_s: float | None = None  # seq + index scans started per second


@dataclass(frozen=True, slots=True)
class IndexStats:
    """One index's size and use."""

    name: str
    table: str
    bytes: int
    idx_scan: int
    scans_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    """Statistics of one database at one time."""

    taken_at: str
    server_version_num: int
    database: str
    sample_s: float
    tables: dict[str, TableStats] = field(default_factory=dict)
    indexes: dict[str, IndexStats] = field(default_factory=dict)
    # table (as regclass prints it) -> column -> statistics; only tables of some size
    columns: dict[str, dict[str, ColumnStats]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        return cls(
            taken_at=str(data["taken_at"]),
            server_version_num=int(data["server_version_num"]),
            database=str(data["database"]),
            sample_s=float(data.get("sample_s", 0.0)),
            tables={k: TableStats(**v) for k, v in data.get("tables", {}).items()},
            indexes={k: IndexStats(**v) for k, v in data.get("indexes", {}).items()},
            columns={
                t: {c: ColumnStats.from_dict(v) for c, v in cols.items()}
                for t, cols in (data.get("columns") or {}).items()
            },
        )


_TABLES = """
SELECT c.oid::regclass::text,
       greatest(c.reltuples, coalesce(s.n_live_tup, 0))::bigint,
       pg_total_relation_size(c.oid), pg_table_size(c.oid), pg_indexes_size(c.oid),
       coalesce(s.seq_scan, 0), coalesce(s.idx_scan, 0),
       coalesce(s.n_tup_ins, 0), coalesce(s.n_tup_upd, 0), coalesce(s.n_tup_del, 0)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
"""

_INDEXES = """
SELECT s.indexrelid::regclass::text, s.relid::regclass::text,
       pg_relation_size(s.indexrelid), coalesce(s.idx_scan, 0)
FROM pg_stat_user_indexes s
WHERE s.schemaname <> 'pgwarden'
"""


def _read(conn: psycopg.Connection[Any]) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    tables = {r[0]: list(r) for r in conn.execute(_TABLES).fetchall()}
    indexes = {r[0]: list(r) for r in conn.execute(_INDEXES).fetchall()}
    return tables, indexes


def read_stats(conn: psycopg.Connection[Any], *, sample_s: float = 1.0) -> Stats:
    """Sizes now, and rates from two samples `sample_s` apart (0 disables rates)."""
    from datetime import UTC, datetime

    conn.execute("SELECT pg_stat_clear_snapshot()")
    t1, i1 = _read(conn)
    rates = sample_s > 0
    if rates:
        time.sleep(sample_s)
        conn.execute("SELECT pg_stat_clear_snapshot()")
        t2, i2 = _read(conn)
    else:
        t2, i2 = t1, i1
    tables: dict[str, TableStats] = {}
    for name, r in t2.items():
        before = t1.get(name, r)
        writes = reads = None
        if rates:
            writes = max(0, (r[7] + r[8] + r[9]) - (before[7] + before[8] + before[9])) / sample_s
            reads = max(0, (r[5] + r[6]) - (before[5] + before[6])) / sample_s
        tables[name] = TableStats(
            name=name,
            rows=int(r[1]),
            total_bytes=int(r[2]),
            table_bytes=int(r[3]),
            index_bytes=int(r[4]),
            seq_scan=int(r[5]),
            idx_scan=int(r[6]),
            n_tup_ins=int(r[7]),
            n_tup_upd=int(r[8]),
            n_tup_del=int(r[9]),
            writes_per_s=writes,
            reads_per_s=reads,
        )
    indexes: dict[str, IndexStats] = {}
    for name, r in i2.items():
        before = i1.get(name, r)
        indexes[name] = IndexStats(
            name=name,
            table=str(r[1]),
            bytes=int(r[2]),
            idx_scan=int(r[3]),
            scans_per_s=(max(0, r[3] - before[3]) / sample_s) if rates else None,
        )
    row = conn.execute(
        "SELECT current_setting('server_version_num')::int, current_database()"
    ).fetchone()
    assert row is not None
    big = [n for n, t in tables.items() if t.rows >= COLUMN_STATS_MIN_ROWS]
    return Stats(
        taken_at=datetime.now(UTC).isoformat(timespec="seconds"),
        server_version_num=int(row[0]),
        database=str(row[1]),
        sample_s=sample_s if rates else 0.0,
        tables=tables,
        indexes=indexes,
        columns=read_column_stats(conn, big),
    )


_COLUMNS = """
SELECT c.oid::regclass::text, s.attname, s.null_frac, s.n_distinct,
       s.most_common_vals::text::text[], s.most_common_freqs,
       s.histogram_bounds::text::text[], t.typcategory::text
FROM pg_stats s
JOIN pg_namespace n ON n.nspname = s.schemaname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname
JOIN pg_type t ON t.oid = a.atttypid
WHERE c.oid::regclass::text = ANY (%s) AND NOT s.inherited
"""

# Values leave the database only where they are not data someone would keep secret:
# numbers, dates and times, booleans and enum labels; strings only for a column with
# few distinct values (a status, a currency) and a name that does not look secret.
_PLAIN_TYPES = frozenset("NDBE")  # pg_type.typcategory: numeric, date/time, boolean, enum
MAX_TEXT_DISTINCT = 100
_SECRET = re.compile(r"pass|secret|token|key|hash|salt|mail|phone|ssn|card|iban|name|addr", re.I)


def _values_kept(column: str, category: str, n_distinct: float) -> tuple[bool, bool]:
    """Whether the MCVs and the histogram bounds of a column may go into the snapshot."""
    if _SECRET.search(column):
        return False, False
    if category in _PLAIN_TYPES:
        return True, True
    return 0 < n_distinct <= MAX_TEXT_DISTINCT, False


def _short(values: list[Any] | None, keep: int) -> tuple[str, ...] | None:
    """`keep` values spread over `values` (first and last kept); None if one is too long."""
    if not values:
        return ()
    if any(v is None or len(str(v)) > MAX_VALUE_CHARS for v in values):
        return None
    if len(values) <= keep:
        return tuple(str(v) for v in values)
    step = (len(values) - 1) / (keep - 1)
    return tuple(str(values[round(i * step)]) for i in range(keep))


def read_column_stats(
    conn: psycopg.Connection[Any], tables: list[str]
) -> dict[str, dict[str, ColumnStats]]:
    """Shortened pg_stats of `tables` (regclass names): what PW142 estimates rows from."""
    out: dict[str, dict[str, ColumnStats]] = {}
    if not tables:
        return out
    for name, col, null_frac, n_distinct, mcv, mcf, bounds, category in conn.execute(
        _COLUMNS, (tables,)
    ).fetchall():
        keep_mcv, keep_bounds = _values_kept(str(col), str(category), float(n_distinct or 0.0))
        common = _short(list(mcv or ())[:MAX_MCV], MAX_MCV) if keep_mcv else None
        freqs = tuple(float(f) for f in list(mcf or ())[:MAX_MCV])
        if common is None:
            common, freqs = (), ()
        if not keep_bounds:
            bounds = None
        out.setdefault(str(name), {})[str(col)] = ColumnStats(
            null_frac=float(null_frac or 0.0),
            n_distinct=float(n_distinct or 0.0),
            mcv=common,
            mcf=freqs,
            bounds=_short(list(bounds or ()), MAX_BOUNDS) or (),
        )
    return out


_TOP_QUERIES = """
SELECT s.query, s.calls, s.total_exec_time, s.mean_exec_time
FROM {schema}.pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.query !~* '^\\s*(BEGIN|COMMIT|ROLLBACK|SET|SHOW|RESET)\\M'
ORDER BY s.total_exec_time DESC
LIMIT {limit}
"""


def read_top_queries(
    conn: psycopg.Connection[Any], *, limit: int = 20
) -> tuple[dict[str, Any], ...]:
    """The heaviest statements by total time from pg_stat_statements; () when not available."""
    import psycopg as pg
    from psycopg import sql

    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_stat_statements'"
    ).fetchone()
    if row is None:
        return ()
    query = sql.SQL(_TOP_QUERIES).format(
        schema=sql.Identifier(str(row[0])), limit=sql.Literal(limit)
    )
    try:
        with conn.transaction():
            rows = conn.execute(query).fetchall()
    except pg.Error:  # not in shared_preload_libraries, or no privilege: leave it out
        return ()
    return tuple(
        {
            "query": str(r[0]),
            "calls": int(r[1]),
            "total_ms": round(float(r[2]), 3),
            "mean_ms": round(float(r[3]), 3),
        }
        for r in rows
    )


@dataclass(frozen=True, slots=True)
class MigrationState:
    """Which migrations the database has run, as its migration tools recorded them.

    None for a tool whose table does not exist; () for an existing, empty table.
    """

    alembic_version: tuple[str, ...] | None = None  # public.alembic_version heads
    django_migrations: tuple[str, ...] | None = None  # applied "app.name", in apply order

    def to_dict(self) -> dict[str, Any]:
        return {
            "alembic_version": _listed(self.alembic_version),
            "django_migrations": _listed(self.django_migrations),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MigrationState:
        alembic, django = data.get("alembic_version"), data.get("django_migrations")
        return cls(
            tuple(str(v) for v in alembic) if alembic is not None else None,
            tuple(str(v) for v in django) if django is not None else None,
        )


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return list(values) if values is not None else None


def read_migration_state(conn: psycopg.Connection[Any]) -> MigrationState:
    """The alembic_version heads and django_migrations applied set (read-only)."""
    found = conn.execute(
        "SELECT to_regclass('alembic_version') IS NOT NULL,"
        " to_regclass('django_migrations') IS NOT NULL"
    ).fetchone()
    assert found is not None
    alembic = django = None
    if found[0]:
        rows = _rows_or_none(conn, "SELECT version_num FROM alembic_version")
        alembic = None if rows is None else tuple(sorted(str(r[0]) for r in rows))
    if found[1]:
        rows = _rows_or_none(conn, "SELECT app, name FROM django_migrations ORDER BY id")
        django = None if rows is None else tuple(f"{r[0]}.{r[1]}" for r in rows)
    return MigrationState(alembic, django)


def _rows_or_none(conn: psycopg.Connection[Any], query: str) -> list[Any] | None:
    """The rows, or None when the role may not read the table (the state is then unknown)."""
    import psycopg as pg

    try:
        with conn.transaction():
            return list(conn.execute(query).fetchall())
    except pg.errors.InsufficientPrivilege:
        return None
