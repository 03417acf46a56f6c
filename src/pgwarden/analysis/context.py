"""Table context: a snapshot of sizes, traffic and schema facts, and estimates from it.

A snapshot file (`pgwarden stats dump`) lets CI judge severity without
production credentials:

    {"format": "pgwarden-snapshot/1", "stats": {...}, "catalog": {...}}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pgwarden.analysis.catalog import Catalog, read_catalog
from pgwarden.analysis.snapshot_shape import snapshot_problem
from pgwarden.errors import InputError

if TYPE_CHECKING:  # loaded with a snapshot (read or taken): lint without one never needs it
    from pgwarden.pg.stats import MigrationState, Stats, TableStats

__all__ = [
    "BYTES_PER_S",
    "Snapshot",
    "estimate_seconds",
    "load_snapshot",
    "save_snapshot",
    "take_snapshot",
]

FORMAT = "pgwarden-snapshot/1"
# A relation whose schema is a Flyway/Liquibase placeholder, a psql variable or a Go template
# action, as the plan spells it ("${schema}".orders, ":schema".orders, "{{ .Schema }}".orders:
# sources.placeholders reads each one as a quoted identifier).
_PLACEHOLDER_SCHEMA = re.compile(
    r'^"(\$\{[^}"]+\}|:[A-Za-z_][A-Za-z0-9_]*|\{\{(?:[^"]|"")*?\}\})"\.(.+)$'
)
# A qualified regclass name: schema (quoted or not) and the rest.
_QUALIFIED = re.compile(r'^((?:"(?:[^"]|"")*"|[^".]+))\.(.+)$')
_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")  # an identifier spelled without quotes
# Throughput per kind of work, measured on the reference 2-core machine with the
# table cached (5M-row invoices, 341 MB heap, 492 MB with indexes): SET NOT NULL
# scan 0.37 s, FK validation 1.19 s, CREATE INDEX 1.52 s, ALTER COLUMN TYPE
# rewrite 10.4 s. Heap bytes for scans and index builds, total bytes for
# rewrites (indexes are rebuilt). SET TABLESPACE copies files block by block:
# measured 7.5x the rewrite's rate in the same run (1M invoices: heap 68 MB
# copied at 669 MB/s, the type-change rewrite of the table at 89 MB/s of total
# bytes), scaled to the reference rewrite rate; heap (or index) bytes. Cold
# caches and busy servers are slower; every estimate says it is one.
BYTES_PER_S: dict[str, float] = {
    "scan": 900e6,
    "fk": 290e6,
    "index": 225e6,
    "rewrite": 48e6,
    "copy": 360e6,
}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Statistics plus schema facts of one database."""

    stats: Stats
    catalog: Catalog | None
    # The heaviest statements from pg_stat_statements, when installed: query, calls, ms.
    top_queries: tuple[dict[str, Any], ...] = ()
    # What the database's migration tools recorded as run (None: not recorded).
    migrations: MigrationState | None = None

    # The stats' tables by their name without schema, spelled as regclass spells it:
    # [(schema, key)], filled when a placeholder-qualified name is first looked up.
    _by_relname: dict[str, list[tuple[str, str]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def table(self, name: str) -> TableStats | None:
        """Stats of a table by regclass name (unqualified names also match `public.`); a
        name whose schema is a Flyway/Liquibase placeholder ("${schema}".orders), the
        only table of that name the stats have (`placeholder_schemas`)."""
        t = self.stats.tables.get(name)
        if t is None and "." not in name:
            t = self.stats.tables.get(f"public.{name}")
        if t is None and name.startswith("public."):
            t = self.stats.tables.get(name.removeprefix("public."))
        if t is None and name.startswith(('"${', '":', '"{{')):
            found = self._placeholder_keys(name)
            if found is not None and len(found[1]) == 1:
                t = self.stats.tables.get(found[1][0][1])
        return t

    def placeholder_schemas(self, name: str) -> tuple[str, tuple[str, ...]] | None:
        """For a table whose schema is a placeholder ("${schema}".orders, as
        sources.placeholders reads `${schema}.orders`): the placeholder and the schemas
        of the stats' tables of that name (`table` takes the table when there is one);
        None for any other name."""
        found = self._placeholder_keys(name)
        if found is None:
            return None
        return found[0], tuple(schema for schema, _ in found[1])

    def _placeholder_keys(self, name: str) -> tuple[str, list[tuple[str, str]]] | None:
        m = _PLACEHOLDER_SCHEMA.match(name)
        if m is None:
            return None
        if not self._by_relname:
            catalog = self.catalog
            for key in self.stats.tables:
                q = _QUALIFIED.match(key)
                if q is not None:
                    schema, rel = q.group(1), q.group(2)
                else:  # on the reading session's search_path
                    known = catalog.get(key) if catalog is not None else None
                    raw = known.schema if known is not None else "public"
                    schema = raw if _PLAIN.match(raw) else '"' + raw.replace('"', '""') + '"'
                    rel = key
                self._by_relname.setdefault(rel, []).append((schema, key))
        shown = m.group(1).replace('""', '"')  # a Go template's own quotes, undoubled
        return shown, sorted(self._by_relname.get(m.group(2), []))

    @property
    def server_major(self) -> int:
        return self.stats.server_version_num // 10000

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "stats": self.stats.to_dict(),
            "catalog": self.catalog.to_dict() if self.catalog is not None else None,
            "top_queries": list(self.top_queries),
            "migrations": self.migrations.to_dict() if self.migrations is not None else None,
        }


def estimate_seconds(table: TableStats, *, rewrite: bool = False, kind: str | None = None) -> float:
    """Rough seconds for `kind` of work on `table`: scan, fk, index or rewrite."""
    work = kind or ("rewrite" if rewrite else "scan")
    size = table.total_bytes if work == "rewrite" else table.table_bytes
    return size / BYTES_PER_S[work]


def take_snapshot(dsn: str, *, sample_s: float = 1.0) -> Snapshot:
    """Read stats (sampling rates over `sample_s`) and the catalog, read-only."""
    from pgwarden.pg.connect import connect
    from pgwarden.pg.stats import read_migration_state, read_stats, read_top_queries

    with connect(dsn) as conn:
        conn.execute("SET default_transaction_read_only = on")
        stats = read_stats(conn, sample_s=sample_s)
        catalog = read_catalog(conn)
        top = read_top_queries(conn)
        migrations = read_migration_state(conn)
    return Snapshot(stats, catalog, top, migrations)


def save_snapshot(snapshot: Snapshot, path: str | os.PathLike[str]) -> None:
    """Write the snapshot as JSON (atomically: temp name, then rename)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_bytes(orjson.dumps(snapshot.to_dict(), option=orjson.OPT_INDENT_2))
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{target}: cannot write: {exc.strerror}", path=str(target)) from None


def load_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Read a snapshot file written by `pgwarden stats dump`."""
    from pgwarden.pg.stats import MigrationState, Stats

    p = Path(path)
    try:
        data = orjson.loads(p.read_bytes())
    except FileNotFoundError:
        raise InputError(
            f"{p}: stats file not found",
            hint="create it with `pgwarden stats dump --database-url DSN -o stats.json`",
            path=str(p),
        ) from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read: {exc.strerror}", path=str(p)) from None
    except orjson.JSONDecodeError as exc:
        raise InputError(
            f"{p}: not a pgwarden stats file (invalid JSON: {exc})",
            hint="regenerate it with `pgwarden stats dump`",
            path=str(p),
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(
            f"{p}: not a pgwarden stats file (expected format {FORMAT!r})",
            hint="regenerate it with `pgwarden stats dump`",
            path=str(p),
        )
    problem = snapshot_problem(data)
    if problem is not None:
        raise InputError(
            f"{p}: stats file is damaged: {problem}",
            hint="correct that value, or regenerate the file with"
            " `pgwarden stats dump --database-url DSN -o FILE`",
            path=str(p),
        )
    try:
        stats = Stats.from_dict(data["stats"])
        catalog = Catalog.from_dict(data["catalog"]) if data.get("catalog") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{p}: stats file is damaged ({type(exc).__name__}: {exc})",
            hint="regenerate it with `pgwarden stats dump`",
            path=str(p),
        ) from None
    top = data.get("top_queries") or []
    if not isinstance(top, list):
        raise InputError(f"{p}: stats file is damaged (top_queries is not a list)", path=str(p))
    migrations = data.get("migrations")
    if migrations is not None and not isinstance(migrations, dict):
        raise InputError(f"{p}: stats file is damaged (migrations is not an object)", path=str(p))
    return Snapshot(
        stats,
        catalog,
        tuple(q for q in top if isinstance(q, dict)),
        MigrationState.from_dict(migrations) if migrations is not None else None,
    )
