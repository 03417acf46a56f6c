"""Schema facts the lock model needs when the SQL alone cannot tell.

A `Catalog` is read from a live database with `read_catalog` (read-only
catalog queries) or loaded from a snapshot with `Catalog.from_dict`.
Relation names are spelled as `regclass::text` prints them in the session
that read the catalog: unqualified when on its search_path, else qualified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # psycopg loads only when a database is read (lint without one stays fast)
    import psycopg

__all__ = ["Catalog", "Column", "Constraint", "Index", "Relation", "Trigger", "read_catalog"]

RELKINDS: dict[str, str] = {
    "r": "table",
    "p": "partitioned table",
    "i": "index",
    "I": "partitioned index",
    "S": "sequence",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "c": "composite type",
    "t": "toast table",
}


@dataclass(frozen=True, slots=True)
class Column:
    """A table column."""

    name: str
    type: str  # format_type(atttypid, atttypmod): "character varying(20)"
    not_null: bool = False
    generated: str = ""  # "s" for GENERATED ALWAYS AS (...) STORED
    identity: str = ""  # "a" (ALWAYS) or "d" (BY DEFAULT)


@dataclass(frozen=True, slots=True)
class Index:
    """An index of a table."""

    name: str
    valid: bool = True
    unique: bool = False
    primary: bool = False
    columns: tuple[str, ...] = ()  # key and INCLUDE columns; "" for an expression


@dataclass(frozen=True, slots=True)
class Constraint:
    """A table constraint (contype p, u, f, c, x, n, t)."""

    name: str
    type: str
    validated: bool = True
    references: str | None = None  # referenced table of a foreign key
    definition: str = ""  # pg_get_constraintdef: "CHECK ((c IS NOT NULL))"
    columns: tuple[str, ...] = ()
    index: str | None = None  # the index that enforces it (p, u, x; f: the referenced one)
    ref_columns: tuple[str, ...] = ()  # referenced columns of a foreign key


@dataclass(frozen=True, slots=True)
class Trigger:
    """A user trigger and the function it calls (regproc text)."""

    name: str
    function: str


@dataclass(frozen=True, slots=True)
class Relation:
    """One relation with the facts the lock model uses."""

    name: str  # regclass::text
    schema: str
    relname: str
    relkind: str  # pg_class.relkind: r, p, i, I, S, v, m, f
    columns: tuple[Column, ...] = ()
    indexes: tuple[Index, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    parent: str | None = None  # the partitioned (or inheritance) parent
    partitions: tuple[str, ...] = ()  # children: partitions or inheritance children
    partition_bound: str | None = None  # "DEFAULT", "FOR VALUES ..."
    sequences: tuple[str, ...] = ()  # owned sequences (serial, identity)
    views: tuple[str, ...] = ()  # views and materialized views that reference it
    view_columns: tuple[tuple[str, str], ...] = ()  # (view, column of this table it uses)
    triggers: tuple[Trigger, ...] = ()  # user triggers (not the internal FK ones)
    table: str | None = None  # for an index: its table

    @property
    def kind(self) -> str:
        """Words for relkind: "table", "index", ..."""
        return RELKINDS.get(self.relkind, self.relkind)

    def column(self, name: str) -> Column | None:
        """The column called `name`, if any."""
        return next((c for c in self.columns if c.name == name), None)

    def nullable(self, name: str) -> bool | None:
        """Whether column `name` may hold NULL (not attnotnull); None: no such column."""
        col = self.column(name)
        return None if col is None else not col.not_null

    def constraint(self, name: str) -> Constraint | None:
        """The constraint called `name`, if any."""
        return next((c for c in self.constraints if c.name == name), None)

    def index_columns(self, name: str) -> list[str] | None:
        """The columns of index `name` of this table (None: no such index)."""
        return next((list(i.columns) for i in self.indexes if i.name == name), None)

    def has_not_null_check(self, column: str) -> bool:
        """A validated `CHECK (column IS NOT NULL)` exists."""
        pattern = _not_null_check(column)
        return any(
            c.type == "c" and c.validated and pattern.fullmatch(c.definition)
            for c in self.constraints
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "name": self.name,
            "schema": self.schema,
            "relname": self.relname,
            "relkind": self.relkind,
            "columns": [
                [c.name, c.type, c.not_null, c.generated, c.identity] for c in self.columns
            ],
            "indexes": [
                [i.name, i.valid, i.unique, i.primary, list(i.columns)] for i in self.indexes
            ],
            "constraints": [
                [
                    c.name,
                    c.type,
                    c.validated,
                    c.references,
                    c.definition,
                    list(c.columns),
                    c.index,
                    list(c.ref_columns),
                ]
                for c in self.constraints
            ],
            "parent": self.parent,
            "partitions": list(self.partitions),
            "partition_bound": self.partition_bound,
            "sequences": list(self.sequences),
            "views": list(self.views),
            "view_columns": [list(vc) for vc in self.view_columns],
            "triggers": [[t.name, t.function] for t in self.triggers],
            "table": self.table,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Relation:
        """Inverse of `to_dict`."""
        return cls(
            name=d["name"],
            schema=d["schema"],
            relname=d["relname"],
            relkind=d["relkind"],
            columns=tuple(Column(n, t, nn, g, i) for n, t, nn, g, i in d["columns"]),
            indexes=tuple(Index(n, v, u, p, tuple(c)) for n, v, u, p, c in d["indexes"]),
            constraints=tuple(_constraint(c) for c in d["constraints"]),
            parent=d["parent"],
            partitions=tuple(d["partitions"]),
            partition_bound=d["partition_bound"],
            sequences=tuple(d["sequences"]),
            views=tuple(d["views"]),
            view_columns=tuple((v, c) for v, c in d.get("view_columns", ())),
            triggers=tuple(_trigger(t) for t in d["triggers"]),
            table=d["table"],
        )


def _constraint(row: list[Any]) -> Constraint:
    """A constraint from its list form (older snapshots lack ref_columns)."""
    n, t, v, r, df, cols, ix, *rest = row
    return Constraint(n, t, v, r, df, tuple(cols), ix, tuple(rest[0]) if rest else ())


def _trigger(row: Any) -> Trigger:
    """A trigger from its list form (older snapshots hold only the name)."""
    if isinstance(row, str):
        return Trigger(row, "")
    return Trigger(str(row[0]), str(row[1]))


def _not_null_check(column: str) -> re.Pattern[str]:
    col = re.escape(column) if column.islower() else re.escape('"' + column + '"')
    return re.compile(rf"CHECK \(+{col} IS NOT NULL\)+( NOT VALID)?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Relations of one database, the reading session's search_path and TimeZone."""

    relations: tuple[Relation, ...] = ()
    search_path: tuple[str, ...] = ("public",)
    timezone: str = "UTC"
    server_version: int | None = None  # major, e.g. 16
    # Domains with a CHECK or NOT NULL, as (schema, name): a new column of one is checked
    # row by row (a rewrite), whatever its default.
    constrained_domains: tuple[tuple[str, str], ...] = ()
    # Every domain as (schema, name, its base type as format_type prints it): a column
    # changed from a domain to its base type (or a wider one) is relabelled, not rewritten.
    domain_bases: tuple[tuple[str, str, str], ...] = ()
    # Every enum type as (schema, name): nothing converts to one without USING.
    enums: tuple[tuple[str, str], ...] = ()
    _by_name: dict[str, Relation] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _by_key: dict[tuple[str, str], Relation] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _referencing: dict[str, tuple[tuple[Relation, Constraint], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        referencing: dict[str, list[tuple[Relation, Constraint]]] = {}
        for rel in self.relations:
            self._by_name[rel.name] = rel
            self._by_key[(rel.schema, rel.relname)] = rel
            for con in rel.constraints:
                if con.type == "f" and con.references is not None:
                    referencing.setdefault(con.references, []).append((rel, con))
        self._referencing.update({k: tuple(v) for k, v in referencing.items()})

    def get(self, name: str) -> Relation | None:
        """The relation whose regclass text is `name`."""
        return self._by_name.get(name)

    def resolve(self, schema: str | None, relname: str) -> Relation | None:
        """Find a relation as the server would: qualified, or by search_path."""
        if schema is not None:
            return self._by_key.get((schema, relname))
        for sch in self.search_path:
            rel = self._by_key.get((sch, relname))
            if rel is not None:
                return rel
        return None

    def referencing(self, table: str) -> tuple[tuple[Relation, Constraint], ...]:
        """(table, foreign key) pairs whose foreign key references `table`."""
        return self._referencing.get(table, ())

    def in_schema(self, schema: str) -> tuple[Relation, ...]:
        """All relations in `schema`."""
        return tuple(r for r in self.relations if r.schema == schema)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, for snapshot files."""
        return {
            "relations": [r.to_dict() for r in self.relations],
            "search_path": list(self.search_path),
            "timezone": self.timezone,
            "server_version": self.server_version,
            "constrained_domains": [list(d) for d in self.constrained_domains],
            "domain_bases": [list(d) for d in self.domain_bases],
            "enums": [list(e) for e in self.enums],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Catalog:
        """Inverse of `to_dict`."""
        return cls(
            relations=tuple(Relation.from_dict(r) for r in d.get("relations", ())),
            search_path=tuple(d.get("search_path", ("public",))),
            timezone=str(d.get("timezone", "UTC")),
            server_version=d.get("server_version"),
            constrained_domains=tuple(
                (str(a), str(b)) for a, b in d.get("constrained_domains", ())
            ),
            domain_bases=tuple((str(a), str(b), str(c)) for a, b, c in d.get("domain_bases", ())),
            enums=tuple((str(a), str(b)) for a, b in d.get("enums", ())),
        )

    def domain_base(self, type_text: str) -> str | None:
        """The base type (format_type text) of the domain `type_text` names, as a column's
        type prints it ("email_addr", "app.email"), or None when it is not a domain."""
        schema, _, name = type_text.rpartition(".")
        for sch, dom, base in self.domain_bases:
            if dom == name.strip('"') and (
                sch == schema.strip('"') if schema else sch in self.search_path
            ):
                return base
        return None

    def constrained_domain(self, names: list[str]) -> bool:
        """Whether the type named `names` (["email"] or ["app", "email"]) resolves to a
        domain with constraints."""
        if len(names) > 1:
            return (names[-2], names[-1]) in self.constrained_domains
        return any((sch, names[-1]) in self.constrained_domains for sch in self.search_path)


_USER = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    " AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'"
)

_RELATIONS = f"""
SELECT c.oid, c.oid::regclass::text, n.nspname, c.relname, c.relkind::text,
       (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1),
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER} AND c.relkind IN ('r', 'p', 'i', 'I', 'S', 'v', 'm', 'f')
ORDER BY 2
"""

_COLUMNS = f"""
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.attgenerated::text, a.attidentity::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER} AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY a.attrelid, a.attnum
"""

_INDEXES = f"""
SELECT x.indrelid, x.indexrelid::regclass::text, x.indisvalid, x.indisunique, x.indisprimary,
       ARRAY(SELECT coalesce(a.attname, '') FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(n, o)
             LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n
             ORDER BY k.o)
FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER}
ORDER BY x.indrelid, 2
"""

_CONSTRAINTS = f"""
SELECT k.conrelid, k.conname, k.contype::text, k.convalidated,
       CASE WHEN k.confrelid <> 0 THEN k.confrelid::regclass::text END,
       pg_get_constraintdef(k.oid),
       ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o),
       CASE WHEN k.conindid <> 0 THEN k.conindid::regclass::text END,
       ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER}
ORDER BY k.conrelid, k.conname
"""

_CHILDREN = f"""
SELECT i.inhparent, i.inhrelid::regclass::text
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER}
ORDER BY 1, 2
"""

_SEQUENCES = f"""
SELECT d.refobjid, d.objid::regclass::text
FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i') AND {_USER}
ORDER BY 1, 2
"""

_VIEWS = f"""
SELECT DISTINCT d.refobjid, r.ev_class::regclass::text,
       coalesce((SELECT a.attname FROM pg_attribute a
                 WHERE a.attrelid = d.refobjid AND a.attnum = d.refobjsubid), '')
FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
  AND r.ev_class <> d.refobjid AND {_USER}
ORDER BY 1, 2
"""

_TRIGGERS = f"""
SELECT t.tgrelid, t.tgname, t.tgfoid::regproc::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND {_USER}
ORDER BY 1, 2
"""

_DOMAINS = f"""
SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'd' AND {_USER}
  AND (t.typnotnull OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contypid = t.oid))
"""

_DOMAIN_BASES = f"""
SELECT n.nspname, t.typname, format_type(t.typbasetype, t.typtypmod)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'd' AND {_USER}
"""

_ENUMS = f"""
SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND {_USER}
"""

_SESSION = (
    "SELECT current_setting('TimeZone'), current_schemas(false),"
    " current_setting('server_version_num')::int / 10000"
)


def _grouped(conn: psycopg.Connection[Any], sql: str) -> dict[int, list[tuple[Any, ...]]]:
    out: dict[int, list[tuple[Any, ...]]] = {}
    for row in conn.execute(sql):
        out.setdefault(int(row[0]), []).append(tuple(row[1:]))
    return out


def read_catalog(conn: psycopg.Connection[Any]) -> Catalog:
    """Read the schema facts of `conn`'s database (read-only catalog queries)."""
    columns = _grouped(conn, _COLUMNS)
    indexes = _grouped(conn, _INDEXES)
    constraints = _grouped(conn, _CONSTRAINTS)
    children = _grouped(conn, _CHILDREN)
    sequences = _grouped(conn, _SEQUENCES)
    views = _grouped(conn, _VIEWS)
    triggers = _grouped(conn, _TRIGGERS)
    index_table: dict[str, str] = {}
    rows = list(conn.execute(_RELATIONS))
    names = {int(r[0]): str(r[1]) for r in rows}
    for oid, ixs in indexes.items():
        for ix in ixs:
            index_table[str(ix[0])] = names.get(oid, "")
    relations = tuple(
        Relation(
            name=name,
            schema=schema,
            relname=relname,
            relkind=relkind,
            columns=tuple(Column(*c) for c in columns.get(oid, ())),
            indexes=tuple(
                Index(n, v, u, p, tuple(cols)) for n, v, u, p, cols in indexes.get(oid, ())
            ),
            constraints=tuple(
                Constraint(n, t, v, r, d, tuple(cols), ix, tuple(rc))
                for n, t, v, r, d, cols, ix, rc in constraints.get(oid, ())
            ),
            parent=parent,
            partitions=tuple(c[0] for c in children.get(oid, ())),
            partition_bound=bound,
            sequences=tuple(s[0] for s in sequences.get(oid, ())),
            views=tuple(dict.fromkeys(v[0] for v in views.get(oid, ()))),
            view_columns=tuple((v[0], v[1]) for v in views.get(oid, ()) if v[1]),
            triggers=tuple(Trigger(t[0], t[1]) for t in triggers.get(oid, ())),
            table=index_table.get(name),
        )
        for oid, name, schema, relname, relkind, parent, bound in rows
    )
    row = conn.execute(_SESSION).fetchone()
    assert row is not None
    timezone, path, version = row
    return Catalog(
        relations=relations,
        search_path=tuple(path),
        timezone=str(timezone),
        server_version=int(version),
        constrained_domains=tuple((str(a), str(b)) for a, b in conn.execute(_DOMAINS)),
        domain_bases=tuple((str(a), str(b), str(c)) for a, b, c in conn.execute(_DOMAIN_BASES)),
        enums=tuple((str(a), str(b)) for a, b in conn.execute(_ENUMS)),
    )
