"""What in a restore target would collide with a backup: the "target is empty" check.

Every user object counts, not only tables: relations of every kind (tables,
partitioned tables, views, materialized views, sequences, foreign tables;
indexes go with their table) anywhere but pgwarden's own schema, and types,
domains and functions in the schemas the backup restores. Extension members are
the extension's business and never count.

`pg_restore --clean` drops the backup's objects by their kind (`DROP TABLE IF
EXISTS public.orders`), which fails when the target holds the name as another
kind (a view `public.orders`); `kind_clashes` finds those so the restore can drop
them first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgwarden.backup.manifest import Manifest

__all__ = ["TargetObject", "clash_drops", "conflicts", "kind_clashes", "list_objects"]

Conn = psycopg.Connection[tuple[object, ...]]

_USER_NS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
)


def _not_extension_member(catalog: str, oid: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass"
        f" AND d.objid = {oid} AND d.deptype = 'e')"
    )


_OBJECTS_SQL = f"""
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
         WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
         WHEN 'f' THEN 'foreign table' WHEN 'c' THEN 'type' ELSE 'index' END,
       n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c', 'i', 'I') AND c.relpersistence <> 't'
  AND {_USER_NS} AND {_not_extension_member("pg_class", "coalesce(i.indrelid, c.oid)")}
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END,
       n.nspname, t.typname, quote_ident(n.nspname) || '.' || quote_ident(t.typname)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd', 'r') AND {_USER_NS} AND {_not_extension_member("pg_type", "t.oid")}
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       n.nspname, p.proname, quote_ident(n.nspname) || '.' || quote_ident(p.proname)
       || '(' || pg_get_function_identity_arguments(p.oid) || ')'
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {_USER_NS} AND {_not_extension_member("pg_proc", "p.oid")}
ORDER BY 4, 1
"""

_RELATIONS = (
    "table",
    "partitioned table",
    "view",
    "materialized view",
    "sequence",
    "foreign table",
)
# Kinds whose name is taken in pg_type too (a table's row type; a type itself).
_TYPE_NAMESPACE = {"table", "partitioned table", "view", "materialized view", "foreign table"}
_TYPES = {"type", "domain"}
# The fingerprint lines of the manifest (content.schema_fingerprint) that name a relation or type.
_FINGERPRINT_KINDS = sorted((*_RELATIONS, "type"), key=len, reverse=True)
_DROP = {
    "table": "TABLE",
    "partitioned table": "TABLE",
    "view": "VIEW",
    "materialized view": "MATERIALIZED VIEW",
    "sequence": "SEQUENCE",
    "foreign table": "FOREIGN TABLE",
    "index": "INDEX",
    "type": "TYPE",
    "domain": "DOMAIN",
}


@dataclass(frozen=True, slots=True)
class TargetObject:
    """One user object in the restore target."""

    kind: str
    schema: str
    name: str
    qualified: str  # quoted like the manifest's schema fingerprint; functions with arguments

    def __str__(self) -> str:
        return f"{self.kind} {self.qualified}"


def list_objects(conn: Conn) -> tuple[TargetObject, ...]:
    """Every user object of the connection's database that a restore could collide with."""
    rows = conn.execute(_OBJECTS_SQL).fetchall()
    return tuple(TargetObject(str(k), str(s), str(n), str(q)) for k, s, n, q in rows)


def _restored_schemas(m: Manifest) -> set[str]:
    """Names (unquoted, as the fingerprint writes them) of the schemas `m` holds."""
    return {line.removeprefix("schema ") for line in m.schema if line.startswith("schema ")}


def conflicts(objects: Sequence[TargetObject], m: Manifest) -> tuple[TargetObject, ...]:
    """Objects that make the target not empty for a restore of `m`: any relation outside
    pgwarden's own schema, and types and functions in the schemas `m` restores."""
    schemas = _restored_schemas(m)
    found = []
    for o in objects:
        if o.schema == "pgwarden" or o.kind == "index":
            continue
        if o.kind in _RELATIONS or o.schema in schemas:
            found.append(o)
    return tuple(found)


def _backup_kinds(m: Manifest) -> dict[str, str]:
    """Qualified name -> kind of every relation and type the backup creates."""
    kinds: dict[str, str] = {}
    for line in m.schema:
        for kind in _FINGERPRINT_KINDS:
            if line.startswith(kind + " "):
                kinds[line[len(kind) + 1 :]] = kind
                break
    return kinds


def _clash(have: str, want: str) -> bool:
    if have == want or (have in _TYPES and want in _TYPES):
        return False
    relation = {have, want} <= {*_RELATIONS, "index"}
    row_type = all(k in _TYPE_NAMESPACE or k in _TYPES for k in (have, want))
    return relation or row_type


def kind_clashes(objects: Sequence[TargetObject], m: Manifest) -> tuple[TargetObject, ...]:
    """Target objects named like an object of the backup but of another kind, which
    `pg_restore --clean` cannot drop (its DROP names the backup's kind)."""
    wanted = _backup_kinds(m)
    return tuple(
        o
        for o in objects
        if o.schema != "pgwarden" and o.qualified in wanted and _clash(o.kind, wanted[o.qualified])
    )


def clash_drops(clashes: Sequence[TargetObject]) -> list[sql.Composed]:
    """DROP statements (no CASCADE) for `clashes`."""
    return [
        sql.SQL("DROP {} {}").format(sql.SQL(_DROP[o.kind]), sql.Identifier(o.schema, o.name))
        for o in clashes
    ]
