"""The earlier statements of a plan that write rows a PW401 count reads.

A write is *folded* when its effect on one table can be written as a read-only query:
an UPDATE or DELETE of that table alone (no FROM / USING / WITH, no triggers or
generated columns on the table), TRUNCATE, ADD COLUMN (its default, its generated
expression, else NULL in every existing row) and ALTER COLUMN TYPE (the column as its
USING, else a cast, leaves it; no other column changes). The table as the write leaves
it is a derived table (a CTE) that the count then reads instead of the table. Every
other write is *opaque*: INSERT, MERGE, COPY FROM, a CALL or DO body pgwarden cannot
read, or code the plan does not show (a Django RunPython).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from pgwarden.analysis.nodes import RangeVar, relname
from pgwarden.location import SourceLocation
from pgwarden.plan import Step

__all__ = [
    "Sources",
    "Write",
    "added_columns",
    "plain_table",
    "step_writes",
    "table_key",
    "unfinished_backfills",
    "unread_body",
]


@dataclass(frozen=True, slots=True)
class Write:
    """One earlier write: where, on which table (None: any), and how to fold it."""

    location: SourceLocation | None  # None: not a statement of the plan (a backfill)
    what: str  # "UPDATE invoices", "RunPython fill_status"
    table: str | None
    kind: str = "opaque"  # update, delete, truncate, add (a column), retype, opaque
    alias: str = ""
    sets: tuple[tuple[str, str], ...] = ()  # (column, SQL of the new value)
    where: str | None = None  # SQL of the WHERE clause
    types: tuple[tuple[str, str], ...] = ()  # add, retype: (column, its SQL type after)

    @property
    def folds(self) -> bool:
        return self.kind != "opaque"


def table_key(rv: RangeVar) -> str:
    """The name writes and checks are matched by (`public.` dropped, as the plan's)."""
    return relname(rv).removeprefix("public.")


def plain_table(rv: RangeVar) -> sql.Composable:
    """The table a RangeVar names, quoted."""
    schema = rv.get("schemaname")
    name = sql.Identifier(rv["relname"])
    return sql.SQL("{}.{}").format(sql.Identifier(schema), name) if schema else name


def _deparse(node: Any) -> str:
    from pglast.stream import RawStream

    return str(RawStream()(node))


def _alias(raw: Any) -> str:
    return str(raw.relation.alias.aliasname if raw.relation.alias else raw.relation.relname)


def _cond(raw: Any) -> str | None:
    return _deparse(raw.whereClause) if raw.whereClause is not None else None


def _current_of(raw: Any) -> bool:
    return type(raw.whereClause).__name__ == "CurrentOfExpr"


def _update(step: Step, name: str) -> Write:
    import pglast

    raw: Any = pglast.parse_sql(step.sql)[0].stmt
    what = f"UPDATE {name}"
    if raw.fromClause or raw.withClause:
        return Write(step.location, what + " ... FROM", name)
    if _current_of(raw):
        return Write(step.location, what, name)
    sets: list[tuple[str, str]] = []
    for target in raw.targetList:
        if target.indirection or type(target.val).__name__ in ("MultiAssignRef", "SetToDefault"):
            return Write(step.location, what, name)
        sets.append((str(target.name), _deparse(target.val)))
    return Write(step.location, what, name, "update", _alias(raw), tuple(sets), _cond(raw))


def _delete(step: Step, name: str) -> Write:
    import pglast

    raw: Any = pglast.parse_sql(step.sql)[0].stmt
    what = f"DELETE FROM {name}"
    if raw.usingClause or raw.withClause or _current_of(raw):
        return Write(step.location, what, name)
    return Write(step.location, what, name, "delete", _alias(raw), (), _cond(raw))


_SERIAL = frozenset({"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"})


def _columns_changed(step: Step, name: str) -> Iterator[Write]:
    """ADD COLUMN and ALTER COLUMN TYPE of an ALTER TABLE, folded per column: what each
    leaves in the existing rows. A column filled from a sequence (identity, serial) is
    left out (its values are not NULL and not known)."""
    import pglast
    from pglast.enums import AlterTableType, ConstrType

    raw: Any = pglast.parse_sql(step.sql)[0].stmt
    alias = str(raw.relation.relname)
    for cmd in raw.cmds or ():
        if type(cmd).__name__ != "AlterTableCmd" or cmd.def_ is None:
            continue
        col = cmd.def_
        if cmd.subtype == AlterTableType.AT_AddColumn:
            typ = _deparse(col.typeName)
            kinds = {c.contype: c for c in col.constraints or ()}
            if ConstrType.CONSTR_IDENTITY in kinds or typ.lower() in _SERIAL:
                continue
            given = kinds.get(ConstrType.CONSTR_DEFAULT) or kinds.get(ConstrType.CONSTR_GENERATED)
            value = _deparse(given.raw_expr) if given is not None else "NULL"
            colname = str(col.colname)
            what = f"ALTER TABLE {name} ADD COLUMN {colname}"
            yield Write(
                step.location,
                what,
                name,
                "add",
                alias,
                ((colname, value),),
                None,
                ((colname, typ),),
            )
        elif cmd.subtype == AlterTableType.AT_AlterColumnType:
            colname = str(cmd.name)
            value = (
                _deparse(col.raw_default)
                if col.raw_default is not None
                else sql.Identifier(colname).as_string(None)
            )
            what = f"ALTER TABLE {name} ALTER COLUMN {colname} TYPE"
            typ = _deparse(col.typeName)
            yield Write(
                step.location,
                what,
                name,
                "retype",
                alias,
                ((colname, value),),
                None,
                ((colname, typ),),
            )


def _one(step: Step) -> Iterator[Write]:
    tree: Any = step.tree  # read by node kind below
    loc = step.location
    if "UpdateStmt" in tree:
        yield _update(step, table_key(tree["UpdateStmt"]["relation"]))
    elif "DeleteStmt" in tree:
        yield _delete(step, table_key(tree["DeleteStmt"]["relation"]))
    elif "TruncateStmt" in tree:
        for rel in tree["TruncateStmt"].get("relations", ()):
            name = table_key(rel["RangeVar"])
            yield Write(loc, f"TRUNCATE {name}", name, "truncate")
    elif "InsertStmt" in tree:
        name = table_key(tree["InsertStmt"]["relation"])
        yield Write(loc, f"INSERT INTO {name}", name)
    elif "MergeStmt" in tree:
        name = table_key(tree["MergeStmt"]["relation"])
        yield Write(loc, f"MERGE INTO {name}", name)
    elif "CopyStmt" in tree and tree["CopyStmt"].get("is_from"):
        name = table_key(tree["CopyStmt"]["relation"])
        yield Write(loc, f"COPY {name} FROM", name)
    elif "AlterTableStmt" in tree:
        body = tree["AlterTableStmt"]
        subtypes = {cmd.get("AlterTableCmd", {}).get("subtype") for cmd in body.get("cmds", ())}
        if subtypes & {"AT_AddColumn", "AT_AlterColumnType"}:
            yield from _columns_changed(step, table_key(body["relation"]))
    elif "CallStmt" in tree:
        yield Write(loc, "CALL", None)  # a procedure the plan does not create


def unread_body(step: Step) -> Write | None:
    """The write, to any table, of the part of a DO / CALL body pgwarden cannot read."""
    if not step.unanalysed:
        return None
    named = "DO" if step.kind == "DoStmt" else "CALL"
    return Write(step.location, f"{named} body (SQL pgwarden cannot read)", None)


def added_columns(step: Step) -> list[Write]:
    """The columns a step's own ALTER TABLE adds: its later sub-commands (SET NOT NULL,
    ADD CONSTRAINT on them) see them as the ADD COLUMN leaves them."""
    return [w for w in _one(step) if w.kind == "add"]


def step_writes(step: Step) -> Iterator[Write]:
    """The writes of one step: of its DO / CALL body's statements when pgwarden reads the
    body (opaque for any table when it cannot), else of the statement itself."""
    unread = unread_body(step)
    if unread is not None:
        yield unread
    if step.inner or step.unanalysed:
        for sub in step.inner:
            yield from _one(sub)
        return
    yield from _one(step)


_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> ''
FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_TRIGGERS = "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal"


class Sources:
    """The tables a step's checks read, as the plan's earlier writes leave them.

    `table(rv)` is what a check reads for `rv`: the table itself, or a CTE over it that
    folds the earlier writes; `prefix()` is the WITH clause those CTEs need. `folded`
    and `opaque` are the writes that apply to the tables read so far.
    """

    def __init__(self, writes: Iterable[Write], conn: Any) -> None:
        self._writes = tuple(writes)
        self._conn = conn
        self._ctes: list[sql.Composable] = []
        self._names: dict[str, sql.Composable] = {}
        self.folded: list[Write] = []
        self.opaque: list[Write] = []

    def table(self, rv: RangeVar) -> sql.Composable:
        key = table_key(rv)
        if key in self._names:
            return self._names[key]
        mine = [w for w in self._writes if w.table in (key, None)]
        source = plain_table(rv)
        if not mine:
            self._names[key] = source
            return source
        columns = self._columns(rv, mine) if all(w.folds for w in mine) else None
        if columns is None:
            # an added or retyped column changes no other column: not named as a cause
            self.opaque += [w for w in mine if w.kind not in ("add", "retype")]
            self._names[key] = source
            return source
        for w in mine:
            name = sql.Identifier(f"_pw_{len(self._ctes)}")
            self._ctes.append(sql.SQL("{} AS ({})").format(name, _derived(w, source, columns)))
            source = name
            columns = _after(w, columns)
        self.folded += mine
        self._names[key] = source
        return source

    def _columns(self, rv: RangeVar, mine: list[Write]) -> list[tuple[str, str]] | None:
        """(name, type) of the table's columns; None when a fold of a row write would be
        wrong: a trigger may change what an UPDATE writes, a generated column would go
        stale (ADD COLUMN and ALTER COLUMN TYPE fire no row trigger)."""
        reg = plain_table(rv).as_string(self._conn)
        rows = self._conn.execute(_COLUMNS, (reg,)).fetchall()
        if any(w.kind not in ("add", "retype") for w in mine):
            trig = self._conn.execute(_TRIGGERS, (reg,)).fetchone()
            if any(r[2] for r in rows) or (trig and trig[0]):
                return None
        return [(str(r[0]), str(r[1])) for r in rows]

    def prefix(self) -> sql.Composable:
        if not self._ctes:
            return sql.SQL("")
        return sql.SQL("WITH {} ").format(sql.SQL(", ").join(self._ctes))


def _after(w: Write, columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The table's (column, type) once `w` ran: an added column last, a retyped one's type."""
    types = dict(w.types)
    if w.kind == "add":
        return [*columns, *w.types]
    return [(c, types.get(c, t)) for c, t in columns]


def _derived(w: Write, source: sql.Composable, columns: list[tuple[str, str]]) -> sql.Composable:
    """The rows of `source` as the write `w` leaves them (same columns, same order; an
    added column last)."""
    alias = sql.Identifier(w.alias)
    if w.kind == "truncate":
        return sql.SQL("SELECT * FROM {} WHERE false").format(source)
    hit = sql.SQL("coalesce(({}), false)").format(sql.SQL(w.where)) if w.where else None
    if w.kind == "delete":
        keep = sql.SQL("NOT {}").format(hit) if hit is not None else sql.SQL("false")
        return sql.SQL("SELECT * FROM {} AS {} WHERE {}").format(source, alias, keep)
    sets = dict(w.sets)
    types = dict(w.types)
    items: list[sql.Composable] = []
    for col, typ in [*columns, *(w.types if w.kind == "add" else ())]:
        ident = sql.Identifier(col)
        old = sql.SQL("{}.{}").format(alias, ident)
        if col not in sets:
            items.append(old)
            continue
        # the statement's own SQL, evaluated read-only; cast as the assignment (or the new
        # column's type) casts it
        typ = types.get(col, typ)
        new = sql.SQL("CAST(({}) AS {})").format(sql.SQL(sets[col]), sql.SQL(typ))
        value = (
            sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(hit, new, old)
            if hit is not None
            else new
        )
        items.append(sql.SQL("{} AS {}").format(value, ident))
    return sql.SQL("SELECT {} FROM {} AS {}").format(sql.SQL(", ").join(items), source, alias)


_BACKFILLS = """
SELECT table_name, set_sql, where_sql, state, rows_done FROM pgwarden.backfills
WHERE state <> 'done' ORDER BY updated_at
"""


def unfinished_backfills(conn: Any) -> list[Write]:
    """`pgwarden backfill` jobs started and not finished: they may change rows before the
    plan runs, or not (opaque). Nothing when pgwarden's schema is absent or not readable."""
    import psycopg

    try:
        with conn.transaction():
            if conn.execute("SELECT to_regclass('pgwarden.backfills')").fetchone() == (None,):
                return []
            rows = conn.execute(_BACKFILLS).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return []
    out: list[Write] = []
    for table, set_sql, where_sql, state, done in rows:
        where = f" WHERE {where_sql}" if where_sql else ""
        what = f"pgwarden backfill SET {set_sql}{where} ({state}, {done:,} rows done)"
        out.append(Write(None, what, str(table).removeprefix("public.")))
    return out
