"""Synthetic rows per column type and constraint, generated server-side.

Row `g` (1..N) of a table gets values that are functions of `g`: key and
unique columns are injective in `g` as far as their types allow (a `char(2)`
holds 1,296 values: a table whose unique key of NOT NULL columns holds fewer
than N gets that many rows, said in a note), foreign key columns take the referenced
row's key value for row `1 + (g * 7919) % N_parent` (valid by construction),
NOT NULL columns are always filled, generated columns are left to the server.
Each table is filled with `INSERT ... SELECT ... FROM generate_series` in
chunks, parents first, then sequences are moved past the inserted keys and
every table is analysed. Values per type come from `datagen_types`. A CHECK,
exclusion or unique index that rejects the values, or a type that cannot hold
them, makes the columns concerned fall back: to their default or NULL where
they allow it, else to another literal their type accepts, else an error
naming the column. A table whose real rows were copied (rehearse/copydata.py)
is not filled: row `g` of it is row `g` of the snapshot of its rows, so that
the foreign keys of the tables referencing it point at real rows.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.errors import InputError
from pgwarden.rehearse.datagen_types import Maker, Types

__all__ = [
    "Column",
    "Table",
    "TablePlan",
    "fill",
    "insert_one",
    "key_lookup",
    "read_tables",
]

Conn = psycopg.Connection[tuple[object, ...]]
Progress = Callable[[str, int, int], None]  # (table, rows done, rows total)

_COLUMNS = """
SELECT c.oid::regclass::text, a.attname, format_type(a.atttypid, a.atttypmod),
       b.typcategory::text, b.typtype::text, b.typname::text, format_type(b.oid, a.atttypmod),
       a.attnotnull, a.attidentity::text, a.attgenerated::text, a.atthasdef,
       CASE WHEN a.atttypmod > 4 AND b.typcategory = 'S' THEN a.atttypmod - 4 END,
       CASE WHEN b.typtype = 'e'
            THEN (SELECT count(*) FROM pg_enum e WHERE e.enumtypid = b.oid) END,
       pg_get_serial_sequence(c.oid::regclass::text, a.attname),
       a.atttypid::int8, a.atttypmod, a.attndims, t.typlen > 0
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden')
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY c.oid, a.attnum
"""

_UNIQUE = """
SELECT i.indrelid::regclass::text, i.indisprimary,
       array(SELECT a.attname FROM unnest(i.indkey) k JOIN pg_attribute a
             ON a.attrelid = i.indrelid AND a.attnum = k WHERE k > 0)
FROM pg_index i WHERE i.indisunique AND i.indrelid::regclass::text = ANY(%s)
ORDER BY i.indisprimary DESC, i.indexrelid
"""

_FKS = """
SELECT c.conrelid::regclass::text, c.confrelid::regclass::text,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s)
"""


@dataclass(slots=True)
class Column:
    """A column and what it takes to fill it."""

    name: str
    type: str  # format_type, e.g. "character varying(20)"
    category: str  # pg_type.typcategory of the base type
    typtype: str
    base: str  # base type name, e.g. "int4"
    base_type: str  # base type with typmod, for casts
    not_null: bool
    identity: str
    generated: str
    has_default: bool
    max_length: int | None
    enum_size: int | None
    sequence: str | None
    type_oid: int = 0
    typmod: int = -1
    ndims: int = 1
    fixed_width: bool = False  # its values have one size (int, uuid, ...; not text)
    unique: bool = False
    nullable: bool = True  # neither the column nor a domain on the way says NOT NULL
    domains: frozenset[str] = frozenset()  # domains whose checks its values pass
    options: list[Maker] = field(default_factory=list)  # generators, best first
    level: int = 0  # the option in use; past the last, the column is left out
    tried_candidates: bool = False
    refused: str = ""  # the server's objection to the values tried, if any
    omit: bool = False  # left to its default or NULL (its values were rejected)
    repeats: dict[Maker, int] = field(default_factory=dict)  # option -> rows until it repeats

    def period(self) -> int | None:
        """After how many rows the values in use repeat (None: they do not)."""
        if self.level >= len(self.options):
            return None
        return self.repeats.get(self.options[self.level])


@dataclass(slots=True)
class Table:
    """A table to fill: columns, unique keys, foreign keys."""

    name: str
    columns: list[Column] = field(default_factory=list)
    keys: list[tuple[str, ...]] = field(default_factory=list)  # primary first, then uniques
    fks: dict[str, tuple[str, str]] = field(default_factory=dict)  # col -> (table, col)
    rows: int = 0
    asked: int = 0  # the rows planned, before its unique keys capped them
    copied: str = ""  # the snapshot of its rows copied from the source (copydata.py), if any

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True, slots=True)
class TablePlan:
    """How many rows a table gets."""

    table: str
    rows: int


def read_tables(conn: Conn) -> dict[str, Table]:
    """The user tables of the database, with columns, keys and foreign keys."""
    tables: dict[str, Table] = {}
    for r in conn.execute(_COLUMNS):
        t = tables.setdefault(str(r[0]), Table(str(r[0])))
        t.columns.append(
            Column(
                name=str(r[1]),
                type=str(r[2]),
                category=str(r[3]),
                typtype=str(r[4]),
                base=str(r[5]),
                base_type=str(r[6]),
                not_null=bool(r[7]),
                identity=str(r[8] or ""),
                generated=str(r[9] or ""),
                has_default=bool(r[10]),
                max_length=int(str(r[11])) if r[11] is not None else None,
                enum_size=int(str(r[12])) if r[12] is not None else None,
                sequence=str(r[13]) if r[13] is not None else None,
                type_oid=int(str(r[14])),
                typmod=int(str(r[15])),
                ndims=max(int(str(r[16])), 1),
                fixed_width=bool(r[17]),
            )
        )
    names = list(tables)
    for r in conn.execute(_UNIQUE, (names,)):
        cols = tuple(str(c) for c in r[2])  # type: ignore[attr-defined]
        if cols:
            t = tables[str(r[0])]
            t.keys.append(cols)
            for c in cols:
                t.column(c).unique = True
    for r in conn.execute(_FKS, (names,)):
        child, parent = str(r[0]), str(r[1])
        for c, p in zip(r[2], r[3], strict=True):  # type: ignore[call-overload]
            if parent in tables:
                tables[child].fks[str(c)] = (parent, str(p))
    _plan_values(Types(conn), tables)
    return tables


def _plan_values(types: Types, tables: Mapping[str, Table]) -> None:
    """Each column's generator: by type, else a text literal its type accepts, else none."""
    types.load({c.type_oid for t in tables.values() for c in t.columns})
    why = types.why
    for t in tables.values():
        for c in t.columns:
            c.nullable = not c.not_null and not types.not_null(c.type_oid)
            c.has_default = c.has_default or types.has_default(c.type_oid)
            c.domains = frozenset(types.domains(c.type_oid))
            if c.generated or c.name in t.fks:
                continue
            made = types.maker(c.type_oid, c.typmod, c.unique, c.ndims)
            if made is None and not c.has_default:  # no generator: the default comes first
                made = types.candidate(c.type_oid, c.typmod, c.unique)
            if made is None and c.unique:  # fewer distinct values (an enum's): enough for few rows
                made = types.maker(c.type_oid, c.typmod, True, c.ndims, distinct=False)
            c.options = [made] if made is not None else []
            if made is not None and c.unique and (n := types.distinct(c.type_oid, c.typmod)):
                c.repeats[made] = n
            if c.unique and (letters := types.letters(c.type_oid, c.typmod)) is not None:
                c.options.append(letters[0])  # for a CHECK that wants letters only
                c.repeats[letters[0]] = letters[1]
            c.refused = why.get(c.type, "")


def _big(g: int) -> sql.Composable:
    return sql.SQL("({}::bigint)").format(sql.Literal(g))


def _g(g: sql.Composable, mod: int) -> sql.Composable:
    """A row number in 1..mod derived from `g` (spread by a prime)."""
    return sql.SQL("(1 + (({} * 7919) % {}))").format(g, sql.Literal(max(mod, 1)))


_SHORT_ARRAY = 2_000  # rows of a copied table whose values are looked up in one array


def value(tables: Mapping[str, Table], table: str, col: str, g: sql.Composable) -> sql.Composable:
    """The value of column `col` of row `g` of `table`: for a table whose rows were copied
    (`copied`), row `g` of its snapshot for g in 1..rows, a synthetic value beyond."""
    t = tables[table]
    c = t.column(col)
    made = _synthetic(tables, t, c, g)
    if not t.copied:
        return made
    # The column's values as one array, read once per statement (an InitPlan), subscripted
    # per row; an element of a long array of variable-size values (text) is found by
    # walking it, so those are looked up by row number instead.
    copied = (
        "((SELECT array_agg({c} ORDER BY pgwarden_n) FROM {lk}))[{g}]"
        if c.fixed_width or t.rows <= _SHORT_ARRAY
        else "(SELECT {c} FROM {lk} WHERE pgwarden_n = {g})"
    )
    return sql.SQL(
        "CASE WHEN {g} BETWEEN 1 AND {n} THEN " + copied + " ELSE ({made})::{type} END"
    ).format(
        g=g,
        n=sql.Literal(t.rows),
        c=sql.Identifier(col),
        lk=sql.SQL(t.copied),
        made=made,
        type=sql.SQL(c.type),
    )


def _synthetic(
    tables: Mapping[str, Table], t: Table, c: Column, g: sql.Composable
) -> sql.Composable:
    col, table = c.name, t.name
    if col in t.fks:
        parent, pcol = t.fks[col]
        if tables[parent].copied and tables[parent].rows == 0:  # no row to point at
            return sql.SQL("NULL")
        if parent == table:
            return sql.SQL("NULL") if not c.not_null else value(tables, parent, pcol, _big(1))
        mapped = g if c.unique else _g(g, tables[parent].rows)
        return value(tables, parent, pcol, mapped)
    if c.omit or c.level >= len(c.options):
        return sql.SQL("NULL")
    return c.options[c.level](g)


def _filled(t: Table) -> list[Column]:
    """Columns that get generated values (the rest take their defaults, or NULL)."""
    return [
        c
        for c in t.columns
        if not c.generated and not c.omit and (c.name in t.fks or c.level < len(c.options))
    ]


def _unfillable(t: Table) -> Column | None:
    """A column left out that can take neither a default nor NULL."""
    filled = {c.name for c in _filled(t)}
    for c in t.columns:
        if not (c.generated or c.has_default or c.nullable or c.name in filled):
            return c
    return None


def _cannot(t: Table, c: Column, why: str) -> InputError:
    return InputError(
        f"cannot generate values for NOT NULL column {c.name} of {t.name} (type {c.type}): {why}",
        hint="give the column (or its domain) a DEFAULT that passes its checks: the synthetic "
        "rows then leave the column to it",
    )


def _insert(tables: Mapping[str, Table], t: Table, g: sql.Composable) -> sql.Composed:
    cols = _filled(t)
    overriding = any(c.identity == "a" for c in cols)
    return sql.SQL("INSERT INTO {t} ({cols}) {ov}SELECT {vals}").format(
        t=sql.SQL(t.name),
        cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in cols),
        ov=sql.SQL("OVERRIDING SYSTEM VALUE ") if overriding else sql.SQL(""),
        vals=sql.SQL(", ").join(value(tables, t.name, c.name, g) for c in cols),
    )


def insert_one(tables: Mapping[str, Table], table: str, g: int) -> sql.Composed:
    """INSERT of row `g` of `table` (for probes: pass g beyond the loaded rows)."""
    return _insert(tables, tables[table], _big(g))


def key_lookup(tables: Mapping[str, Table], table: str, g: int) -> sql.Composable:
    """A WHERE condition matching row `g` of `table` by its first key, else `ctid`."""
    t = tables[table]
    if t.keys:
        cols = t.keys[0]
        return sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), value(tables, table, c, _big(g)))
            for c in cols
        )
    return sql.SQL("ctid = (SELECT ctid FROM {} LIMIT 1)").format(sql.SQL(table))


def _order(tables: Mapping[str, Table]) -> list[str]:
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, stack: frozenset[str]) -> None:
        if name in seen or name in stack:
            return
        for parent, _ in tables[name].fks.values():
            visit(parent, stack | {name})
        seen.add(name)
        done.append(name)

    for name in tables:
        visit(name, frozenset())
    return done


def _chunk(conn: Conn, tables: Mapping[str, Table], t: Table, lo: int, hi: int) -> None:
    g = sql.SQL("g")
    cols = _filled(t)
    overriding = any(c.identity == "a" for c in cols)
    conn.execute(
        sql.SQL(
            "INSERT INTO {t} ({cols}) {ov}SELECT {vals} FROM generate_series({lo}::bigint, "
            "{hi}::bigint) AS s(g)"
        ).format(
            t=sql.SQL(t.name),
            cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in cols),
            ov=sql.SQL("OVERRIDING SYSTEM VALUE ") if overriding else sql.SQL(""),
            vals=sql.SQL(", ").join(value(tables, t.name, c.name, g) for c in cols),
            lo=sql.Literal(lo),
            hi=sql.Literal(hi),
        )
    )


def _check_columns(conn: Conn, table: str, constraint: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
        "AND a.attnum = ANY(c.conkey) WHERE c.conrelid = %s::regclass AND c.conname = %s",
        (table, constraint),
    ).fetchall()
    return [str(r[0]) for r in rows]


_INDEX_COLUMNS = """
SELECT a.attname FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = %s::regclass AND x.relname = %s
"""


def _rejected(
    conn: Conn, tables: Mapping[str, Table], t: Table, exc: psycopg.Error, rows: tuple[int, int]
) -> list[Column]:
    """The columns whose values a CHECK, an exclusion, a unique index, a domain's NOT NULL
    or the type itself (out of range, too long) rejected."""
    d = exc.diag
    if isinstance(exc, pge.DataError):  # no column named: the ones that fail on their own
        return [c for c in _filled(t) if not _evaluates(conn, tables, t, c, rows)]
    if d.datatype_name:  # a domain's constraint: every column going through that domain
        return [c for c in t.columns if d.datatype_name in c.domains]
    if d.column_name:
        return [c for c in t.columns if c.name == d.column_name]
    if isinstance(exc, pge.UniqueViolation):
        found = conn.execute(_INDEX_COLUMNS, (t.name, d.constraint_name or "")).fetchall()
        return [t.column(str(r[0])) for r in found]
    names = _check_columns(conn, t.name, d.constraint_name or "")
    return [t.column(n) for n in names]


def _evaluates(
    conn: Conn, tables: Mapping[str, Table], t: Table, c: Column, rows: tuple[int, int]
) -> bool:
    """The column's values for rows lo..hi can be computed."""
    q = sql.SQL("SELECT count({}) FROM generate_series({}::bigint, {}::bigint) AS s(g)").format(
        value(tables, t.name, c.name, sql.SQL("g")), sql.Literal(rows[0]), sql.Literal(rows[1])
    )
    try:
        with conn.transaction():
            conn.execute(q)
    except psycopg.Error:
        return False
    return True


def _fall_back(conn: Conn, t: Table, c: Column, why: str) -> None:
    """The next generator of `c`: a text literal its type accepts, then its default or NULL."""
    c.level += 1
    if c.level < len(c.options):
        return
    if not c.tried_candidates and c.name not in t.fks:
        c.tried_candidates = True
        types = Types(conn)
        types.load({c.type_oid})
        c.options += types.candidates(c.type_oid, c.typmod, c.unique)
        if c.level < len(c.options):
            return
    if c.nullable or c.has_default:
        c.omit = True
        return
    raise _cannot(t, c, why)


def _first_line(exc: psycopg.Error) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _fill_table(
    conn: Conn,
    tables: Mapping[str, Table],
    t: Table,
    chunk: int,
    progress: Progress | None,
    notes: dict[str, str],
) -> None:
    missing = _unfillable(t)
    if missing is not None:
        why = f"the server refused every value tried ({missing.refused})"
        raise _cannot(t, missing, why if missing.refused else "no generator for its type")
    done = 0
    retries = 0
    while done < t.rows:
        hi = min(t.rows, done + chunk)
        try:
            with conn.transaction():
                _chunk(conn, tables, t, done + 1, hi)
        except (pge.IntegrityError, pge.DataError) as exc:
            what = exc.diag.constraint_name or (
                "NOT NULL" if isinstance(exc, pge.NotNullViolation) else _first_line(exc)
            )
            if exc.diag.datatype_name:
                what = f"{what} of domain {exc.diag.datatype_name}"
            cols = [c for c in _rejected(conn, tables, t, exc, (done + 1, hi)) if not c.omit]
            if retries > 40 or not cols:
                raise InputError(
                    f"synthetic rows for {t.name} violate {what}",
                    hint="give the checked columns defaults that pass the check, or rehearse "
                    "with --schema on a schema without it",
                ) from None
            for c in cols:
                if c.nullable or c.has_default:  # NULL (or the default) first, as before
                    c.omit = True
                else:
                    _fall_back(conn, t, c, f"every value tried violates {what}")
            # the values that replace them may repeat sooner (letters only: 676 for char(2))
            if done == 0 and (note := _cap(t)) is not None:
                notes[t.name] = note
            retries += 1
            continue
        done = hi
        if progress is not None:
            progress(t.name, done, t.rows)


def _key_room(t: Table, key: tuple[str, ...]) -> int | None:
    """How many rows get distinct values of `key`: its columns' values repeat with periods
    (`Column.period`), so the rows repeat the whole key after their least common multiple;
    None if a column never repeats (a foreign key column's parent caps it instead) or can
    be NULL (its values fall back to NULL where they repeat, see `_fill_table`)."""
    room = 1
    for name in key:
        c = t.column(name)
        n = c.period()
        if n is None or c.name in t.fks or c.generated or c.omit or c.nullable:
            return None
        room = math.lcm(room, n)
    return room


def _cap(t: Table) -> str | None:
    """Cap `t`'s rows to what its unique keys hold; the note saying so, if it was capped."""
    rooms = [(r, k) for k in t.keys if (r := _key_room(t, k)) is not None]
    if t.copied or not rooms:
        return None
    room, key = min(rooms)
    if t.rows <= room:
        return None
    t.rows = room
    cols = ", ".join(f"{k} {t.column(k).type}" for k in key)
    return f"{t.name}: {t.asked:,} rows asked, {room:,} fit its unique key ({cols})"


def _fk_cap(tables: Mapping[str, Table], t: Table) -> None:
    """FK columns that are unique (1:1) map row g to parent row g: cap to the parent;
    so does a NOT NULL FK to a copied table that has no rows."""
    for col, (parent, _) in t.fks.items():
        if t.copied or parent == t.name:
            continue
        empty = tables[parent].copied and tables[parent].rows == 0
        if t.column(col).unique or (empty and t.column(col).not_null):
            t.rows = min(t.rows, tables[parent].rows)


def fill(
    conn: Conn,
    tables: Mapping[str, Table],
    plan: list[TablePlan],
    *,
    chunk: int = 50_000,
    progress: Progress | None = None,
) -> list[str]:
    """Fill the planned tables (parents first), fix sequences, analyse. Returns notes on
    tables that got fewer rows than planned since their unique keys hold no more."""
    for p in plan:
        tables[p.table].rows = tables[p.table].asked = p.rows
    notes: dict[str, str] = {}  # table -> why it has fewer rows than asked
    for name in _order(tables):  # parents first: their children point at the rows they keep
        t = tables[name]
        if (note := _cap(t)) is not None:
            notes[name] = note
        _fk_cap(tables, t)
    with contextlib.suppress(pge.InsufficientPrivilege):
        conn.execute("SET session_replication_role = replica")  # skip FK checks, triggers
    try:
        for name in _order(tables):
            t = tables[name]
            _fk_cap(tables, t)  # a parent may have kept fewer rows while it was filled
            if t.rows > 0 and not t.copied:
                _fill_table(conn, tables, t, chunk, progress, notes)
    finally:
        conn.execute("RESET session_replication_role")
    for t in tables.values():
        for c in t.columns:
            if c.sequence and t.rows > 0:
                conn.execute(
                    sql.SQL(
                        "SELECT setval({}, (SELECT coalesce(max({}), 0) + 1 FROM {}), false)"
                    ).format(sql.Literal(c.sequence), sql.Identifier(c.name), sql.SQL(t.name))
                )
    conn.execute(
        sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(sql.SQL(n) for n in tables))
        if tables
        else sql.SQL("SELECT 1")
    )
    return list(notes.values())
