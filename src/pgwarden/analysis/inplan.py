"""The catalog as the earlier statements of a plan leave it.

`InPlan` is an overlay over the catalog (or over nothing, for SQL alone) that
`plan.build_plan` updates statement by statement: CREATE TABLE, ADD / DROP /
ALTER COLUMN, SET / DROP NOT NULL, ADD / VALIDATE / DROP CONSTRAINT, CREATE /
DROP INDEX, DROP TABLE and renames. The lock model reads it through
`Ctx.rel` (relations it knows whole: created in the plan, or in the catalog)
and `Ctx.known` (also what the plan said about a table the catalog does not
show: its columns' types, NOT NULLs, CHECKs and indexes).

A migration framework can say more than its SQL: an Alembic `alter_column`
names the column's `existing_type`, a Django `AlterField` has the old field.
`ColumnFact` carries that; `InPlan.assume` takes it where neither the catalog
nor the plan says anything about the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from pgwarden.analysis.catalog import Catalog, Column, Constraint, Index, Relation
from pgwarden.analysis.locks_core import NEWEST, Ctx
from pgwarden.analysis.nodes import (
    AlterTableCmd,
    AlterTableStmt,
    ColumnDef,
    CreateStmt,
    DropStmt,
    IndexStmt,
    Node,
    RangeVar,
    RenameStmt,
    TypeName,
    quote,
    strings,
    type_of,
)
from pgwarden.analysis.nodes import Constraint as ConNode
from pgwarden.analysis.parse import parse_one
from pgwarden.errors import SqlParseError

__all__ = ["ColumnFact", "Draft", "InPlan", "fact_type", "sql_type", "type_text"]

_SERIAL = {"serial": "int4", "serial4": "int4", "bigserial": "int8", "serial8": "int8"}
_SERIAL |= {"smallserial": "int2", "serial2": "int2"}
_INTERVAL_FULL_RANGE = 32767


def type_text(tn: TypeName) -> str:
    """A column type as `parse_format_type` reads it back: `varchar(20)`, `int4[]`."""
    base, mods, array = type_of(tn)
    base = _SERIAL.get(base, base)
    if base == "interval" and mods[:1] == [_INTERVAL_FULL_RANGE]:
        mods = mods[1:]
    if len(mods) != len(tn.get("typmods") or ()):
        return ""  # a typmod that is not a number (PostGIS): the current type is not known
    text = f"{base}({','.join(map(str, mods))})" if mods else base
    return text + "[]" if array else text


# How SQL writes the internal names `type_text` gives.
_SQL_NAMES = {
    "int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real",
    "float8": "double precision", "bool": "boolean", "bpchar": "char", "varbit": "bit varying",
}  # fmt: skip


def sql_type(spelled: str) -> str:
    """A `type_text` spelling as SQL writes it, for messages: int4 -> integer,
    bpchar(2) -> char(2), int8[] -> bigint[], varchar(10) stays."""
    base = re.split(r"[(\[]", spelled, maxsplit=1)[0]
    return _SQL_NAMES.get(base, base) + spelled[len(base) :]


def fact_type(text: str) -> str:
    """A type as a framework spells it ("VARCHAR(100)", "numeric(10, 2)", "timestamp with
    time zone") in `type_text` form ("varchar(100)", "numeric(10,2)", "timestamptz");
    "" when it does not parse as one type or its typmods are not numbers."""
    try:
        tree = parse_one(f"ALTER TABLE t ALTER COLUMN c TYPE {text}")
    except SqlParseError:
        return ""
    cmds = tree.get("AlterTableStmt", {}).get("cmds") or ()
    if len(cmds) != 1:
        return ""
    tn = cmds[0]["AlterTableCmd"].get("def", {}).get("ColumnDef", {}).get("typeName")
    return type_text(tn) if tn else ""


@dataclass(frozen=True, slots=True)
class ColumnFact:
    """What a migration framework says a column is, right before statement `before` (an
    index into its source's statements) runs: `type` in `type_text` form."""

    table: str  # as the migration names it, unquoted
    schema: str | None
    column: str
    type: str
    nullable: bool | None  # None: not said
    before: int


def _column_refs(expr: object, out: list[str]) -> list[str]:
    """Names of the columns an expression references (last name part), in order."""
    if isinstance(expr, dict):
        for key, value in expr.items():
            if key == "ColumnRef" and isinstance(value, dict):
                names = [
                    f["String"]["sval"]
                    for f in value.get("fields", ())
                    if isinstance(f, dict) and "String" in f
                ]
                if names and names[-1] not in out:
                    out.append(names[-1])
            else:
                _column_refs(value, out)
    elif isinstance(expr, list):
        for item in expr:
            _column_refs(item, out)
    return out


def _not_null_definition(expr: Node | None) -> str:
    """`CHECK ((c IS NOT NULL))` (as pg_get_constraintdef prints it) or `CHECK (...)`."""
    test = expr.get("NullTest") if expr is not None else None
    if test is not None and test.get("nulltesttype") == "IS_NOT_NULL":
        ref = strings(test.get("arg", {}).get("ColumnRef", {}).get("fields"))
        if len(ref) == 1:
            return f"CHECK (({quote(ref[0])} IS NOT NULL))"
    return "CHECK (...)"


_NN_CHECK = re.compile(r'CHECK \(+("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) IS NOT NULL\)+( NOT VALID)?')


def _nn_column(definition: str) -> str | None:
    """The column a `CHECK ((c IS NOT NULL))` definition proves NOT NULL."""
    m = _NN_CHECK.fullmatch(definition)
    if m is None:
        return None
    col = m[1]
    return col[1:-1].replace('""', '"') if col.startswith('"') else col


class Draft:
    """One table as the plan left it, kept in dicts so each change and look-up is O(1)."""

    __slots__ = ("_cache", "_checks", "columns", "constraints", "indexes", "start", "unsure")

    def __init__(self, rel: Relation) -> None:
        self.start = rel  # the fields the plan does not change (name, kind, partitions ...)
        self.columns = {c.name: c for c in rel.columns}
        self.indexes = {i.name: i for i in rel.indexes}
        self.constraints = {k.name: k for k in rel.constraints}
        # CHECK (c IS NOT NULL) constraints: name -> c
        self._checks = {
            k.name: c
            for k in rel.constraints
            if k.type == "c" and (c := _nn_column(k.definition)) is not None
        }
        self._cache: Relation | None = rel
        # Columns a framework typed without saying whether they are nullable.
        self.unsure: set[str] = set()

    def relation(self) -> Relation:
        """The table as a catalog `Relation` (built again only after a change)."""
        if self._cache is None:
            self._cache = replace(
                self.start,
                columns=tuple(self.columns.values()),
                indexes=tuple(self.indexes.values()),
                constraints=tuple(self.constraints.values()),
            )
        return self._cache

    def changed(self) -> None:
        self._cache = None

    # The look-ups the lock model makes (as Relation has them).

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)

    def nullable(self, name: str) -> bool | None:
        """Whether column `name` may hold NULL; None: not known."""
        col = self.columns.get(name)
        return None if col is None or name in self.unsure else not col.not_null

    def constraint(self, name: str) -> Constraint | None:
        return self.constraints.get(name)

    def has_not_null_check(self, column: str) -> bool:
        return any(
            c == column and self.constraints[n].validated
            for n, c in self._checks.items()
            if n in self.constraints
        )

    def index_columns(self, name: str) -> list[str] | None:
        ix = self.indexes.get(name)
        return None if ix is None else list(ix.columns)

    # Changes.

    def add_constraint(self, con: Constraint) -> None:
        self.constraints[con.name] = con
        if con.type == "c":
            col = _nn_column(con.definition)
            if col is not None:
                self._checks[con.name] = col
        self.changed()

    def set_not_null(self, cols: list[str], value: bool) -> None:
        """SET (or DROP) NOT NULL of `cols`; a column not known yet (a table the catalog
        does not show) is known from here on to be NOT NULL (or not), of a type not known."""
        for name in cols:
            col = self.columns.get(name) or Column(name, "")
            self.columns[name] = replace(col, not_null=value)
            self.unsure.discard(name)
        self.changed()


class InPlan:
    """Tables as earlier statements left them; the catalog (if any) for the rest."""

    __slots__ = ("base", "namer", "partial", "pending", "rels")

    def __init__(self, base: Catalog | None) -> None:
        self.base = base
        self.namer = Ctx(base, NEWEST)  # spells names as the lock model does
        # Tables the plan changed: None when dropped in the plan.
        self.rels: dict[str, Draft | None] = {}
        # Tables the catalog does not show and the plan did not create: only what the
        # plan said about them is known (never that a column or constraint is missing).
        self.partial: set[str] = set()
        # CREATE TABLEs not looked at since: read into a draft on first use (most tables a
        # plan creates are never altered in it; building each would cost every lint).
        self.pending: dict[str, CreateStmt] = {}

    # -- reading ---------------------------------------------------------------------

    def decides(self, name: str) -> bool:
        """Whether the plan knows `name` whole (created, changed from the catalog, dropped)."""
        return (name in self.rels or name in self.pending) and name not in self.partial

    def _read_pending(self, name: str) -> None:
        body = self.pending.pop(name, None)
        if body is not None:
            self._build(name, body)

    def get(self, name: str) -> Relation | None:
        """The relation as the plan left it (whole or partial), else the catalog's."""
        if name in self.pending:
            self._read_pending(name)
        if name in self.rels:
            draft = self.rels[name]
            return None if draft is None else draft.relation()
        return self.base.get(name) if self.base is not None else None

    def draft(self, name: str) -> Draft | Relation | None:
        """`get` without building a Relation: for look-ups by name."""
        if name in self.pending:
            self._read_pending(name)
        if name in self.rels:
            return self.rels[name]
        return self.base.get(name) if self.base is not None else None

    def index_table(self, index: str) -> str | None:
        """The table of an index the plan created (and has not dropped since)."""
        for name, draft in self.rels.items():
            if draft is not None and index in draft.indexes:
                return name
        return None

    # -- writing ---------------------------------------------------------------------

    def assume(self, fact: ColumnFact) -> None:
        """Take what a framework says of a column the catalog does not show and the plan has
        not typed (a catalog's table, or one the plan created or dropped, is known whole)."""
        if not fact.type:
            return
        rv: RangeVar = {"relname": fact.table}
        if fact.schema:
            rv["schemaname"] = fact.schema
        name = self.namer.rv(rv)
        if name in self.pending:
            self._read_pending(name)
        if name in self.rels:
            if name not in self.partial:
                return
        elif self.base is not None and self.base.get(name) is not None:
            return
        _, draft = self._table(rv)
        col = draft.columns.get(fact.column)
        if col is not None and col.type:
            return
        not_null = fact.nullable is False or (col is not None and col.not_null)
        draft.columns[fact.column] = Column(fact.column, fact.type, not_null)
        if fact.nullable is None and not not_null:
            draft.unsure.add(fact.column)
        draft.changed()

    def observe(self, tree: Node) -> None:
        """Update the overlay with what one statement did (statements that fail are not
        modelled: the plan stops there)."""
        if "AlterTableStmt" in tree:
            self._alter(tree["AlterTableStmt"])
        elif "CreateStmt" in tree:
            self._create(tree["CreateStmt"])
        elif "IndexStmt" in tree:
            self._index(tree["IndexStmt"])
        elif "DropStmt" in tree:
            self._drop(tree["DropStmt"])
        elif "RenameStmt" in tree:
            self._rename(tree["RenameStmt"])

    def _schema(self, rv: RangeVar) -> str:
        schema = rv.get("schemaname")
        if schema is not None:
            return schema
        return self.base.search_path[0] if self.base is not None else "public"

    def _table(self, rv: RangeVar) -> tuple[str, Draft]:
        """The draft to change for a table (from the catalog's relation, or partial)."""
        name = self.namer.rv(rv)
        if name in self.pending:
            self._read_pending(name)
        draft = self.rels.get(name)
        if draft is not None:
            return name, draft
        rel = self.base.get(name) if self.base is not None and name not in self.rels else None
        if rel is None:
            rel = Relation(name=name, schema=self._schema(rv), relname=rv["relname"], relkind="r")
            self.partial.add(name)
        draft = self.rels[name] = Draft(rel)
        return name, draft

    def _create(self, body: CreateStmt) -> None:
        rv = body["relation"]
        name = self.namer.rv(rv)
        if body.get("if_not_exists") and self.draft(name) is not None:
            return
        elts = body.get("tableElts") or ()
        whole = not (
            body.get("inhRelations")
            or "partbound" in body
            or "partspec" in body  # its partitions are other statements
            or any("TableLikeClause" in e for e in elts)
        )
        self.partial.discard(name)
        if not whole:
            self.partial.add(name)
        self.rels.pop(name, None)
        self.pending[name] = body

    def _build(self, name: str, body: CreateStmt) -> None:
        rv = body["relation"]
        relkind = "p" if "partspec" in body else "r"
        rel = Relation(name=name, schema=self._schema(rv), relname=rv["relname"], relkind=relkind)
        draft = self.rels[name] = Draft(rel)
        for elt in body.get("tableElts") or ():
            col = elt.get("ColumnDef")
            if col is not None:
                self._add_column(draft, col)
            con = elt.get("Constraint")
            if con is not None:
                self._add_constraint(draft, con, None)

    def _add_column(self, draft: Draft, col: ColumnDef) -> None:
        colname = col["colname"]
        tn = col.get("typeName", {})
        base = type_of(tn)[0]
        not_null = bool(col.get("is_not_null")) or base in _SERIAL
        cons = [c["Constraint"] for c in col.get("constraints") or () if "Constraint" in c]
        for con in cons:
            if con["contype"] in ("CONSTR_NOTNULL", "CONSTR_PRIMARY", "CONSTR_IDENTITY"):
                not_null = True
        draft.columns.pop(colname, None)
        draft.columns[colname] = Column(colname, type_text(tn), not_null)
        draft.unsure.discard(colname)
        draft.changed()
        for con in cons:
            if con["contype"] in (
                "CONSTR_PRIMARY",
                "CONSTR_UNIQUE",
                "CONSTR_CHECK",
                "CONSTR_FOREIGN",
            ):
                self._add_constraint(draft, con, colname)

    def _add_constraint(self, draft: Draft, con: ConNode, column: str | None) -> None:
        kind = con["contype"]
        cols = [column] if column is not None else strings(con.get("keys"))
        relname = draft.start.relname
        if kind == "CONSTR_NOTNULL":
            if not con.get("skip_validation"):
                draft.set_not_null(cols, True)
            return
        if kind == "CONSTR_CHECK":
            expr = con.get("raw_expr")
            refs = _column_refs(expr, [])
            name = con.get("conname") or f"{relname}_{(refs or [''])[0]}_check"
            valid = not con.get("skip_validation")
            draft.add_constraint(
                Constraint(name, "c", valid, None, _not_null_definition(expr), tuple(refs))
            )
            return
        if kind == "CONSTR_FOREIGN":
            fk_cols = strings(con.get("fk_attrs")) or cols
            draft.add_constraint(
                Constraint(
                    con.get("conname") or f"{relname}_{'_'.join(fk_cols)}_fkey",
                    "f",
                    not con.get("skip_validation"),
                    self.namer.rv(con["pktable"]),
                    columns=tuple(fk_cols),
                    ref_columns=tuple(strings(con.get("pk_attrs"))),
                )
            )
            return
        if kind not in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
            return
        primary = kind == "CONSTR_PRIMARY"
        using = con.get("indexname")
        table = draft.start.name
        if using:
            ix_name = self.namer.name(draft.start.schema if "." in table else None, using)
            found = draft.indexes.pop(ix_name, None)
            cols = list(found.columns) if found is not None else cols
        else:
            suffix = "pkey" if primary else f"{'_'.join(cols)}_key"
            ix_name = self.namer.new_name(con.get("conname") or f"{relname}_{suffix}", table)
        draft.indexes[ix_name] = Index(ix_name, True, True, primary, tuple(cols))
        name = con.get("conname") or ix_name.rsplit(".", 1)[-1]
        draft.add_constraint(
            Constraint(name, "p" if primary else "u", True, None, "", tuple(cols), ix_name)
        )
        if primary:
            draft.set_not_null(cols, True)

    def _alter(self, body: AlterTableStmt) -> None:
        if body.get("objtype", "OBJECT_TABLE") != "OBJECT_TABLE":
            return
        _, draft = self._table(body["relation"])
        for c in body.get("cmds", ()):
            self._alter_cmd(draft, c["AlterTableCmd"])

    def _alter_cmd(self, draft: Draft, cmd: AlterTableCmd) -> None:
        sub = cmd["subtype"]
        col = cmd.get("name", "")
        if sub == "AT_AddColumn":
            cdef = cmd["def"]["ColumnDef"]
            if not (cmd.get("missing_ok") and cdef["colname"] in draft.columns):
                self._add_column(draft, cdef)
        elif sub == "AT_AlterColumnType":
            tn = cmd["def"]["ColumnDef"]["typeName"]
            old = draft.columns.get(col) or Column(col, "")
            draft.columns[col] = replace(old, type=type_text(tn))
            draft.changed()
        elif sub in ("AT_SetNotNull", "AT_DropNotNull"):
            draft.set_not_null([col], sub == "AT_SetNotNull")
        elif sub == "AT_AddConstraint":
            self._add_constraint(draft, cmd["def"]["Constraint"], None)
        elif sub == "AT_ValidateConstraint":
            con = draft.constraints.get(col)
            if con is not None:
                draft.constraints[col] = replace(con, validated=True)
                draft.changed()
        elif sub == "AT_DropConstraint":
            gone = draft.constraints.pop(col, None)
            if gone is not None and gone.type in ("p", "u", "x") and gone.index is not None:
                draft.indexes.pop(gone.index, None)
            draft.changed()
        elif sub == "AT_DropColumn" and col in draft.columns:
            del draft.columns[col]
            for ix in [i.name for i in draft.indexes.values() if col in i.columns]:
                del draft.indexes[ix]
            for k in [k.name for k in draft.constraints.values() if col in k.columns]:
                del draft.constraints[k]
            draft.changed()

    def _index(self, body: IndexStmt) -> None:
        rv = body["relation"]
        name, draft = self._table(rv)
        cols = [p.get("IndexElem", {}).get("name") or "" for p in body.get("indexParams") or ()]
        idx = body.get("idxname")
        if idx:
            ix_name = self.namer.name(rv.get("schemaname"), idx)
        else:
            base = f"{draft.start.relname}_{'_'.join(c or 'expr' for c in cols)}_idx"
            ix_name = self.namer.new_name(base, name)
        if body.get("if_not_exists") and ix_name in draft.indexes:
            return
        draft.indexes[ix_name] = Index(ix_name, True, bool(body.get("unique")), False, tuple(cols))
        draft.changed()

    def _drop(self, body: DropStmt) -> None:
        kind = body.get("removeType")
        if kind not in ("OBJECT_TABLE", "OBJECT_INDEX"):
            return
        for obj in body.get("objects") or ():
            parts = strings(obj.get("List", {}).get("items"))
            if not parts:
                continue
            name = self.namer.name(parts[-2] if len(parts) > 1 else None, parts[-1])
            if kind == "OBJECT_TABLE":
                self.pending.pop(name, None)
                self.rels[name] = None
                self.partial.discard(name)
                continue
            for draft in self.rels.values():
                if draft is not None and draft.indexes.pop(name, None) is not None:
                    draft.changed()
                    break

    def _rename(self, body: RenameStmt) -> None:
        rv = body.get("relation")
        if rv is None:
            return
        kind = body.get("renameType")
        old, new = body.get("subname", ""), body.get("newname", "")
        if kind == "OBJECT_COLUMN":
            _, draft = self._table(rv)
            column = draft.columns.pop(old, None)
            if column is not None:
                draft.columns[new] = replace(column, name=new)

            def renamed(cols: tuple[str, ...]) -> tuple[str, ...]:
                return tuple(new if x == old else x for x in cols)

            for ix in draft.indexes.values():
                if old in ix.columns:
                    draft.indexes[ix.name] = replace(ix, columns=renamed(ix.columns))
            for k in draft.constraints.values():
                if old in k.columns:
                    draft.constraints[k.name] = replace(k, columns=renamed(k.columns))
            draft.changed()
        elif kind == "OBJECT_TABLE":
            old_name = self.namer.rv(rv)
            moved = self.get(old_name)
            partial = old_name in self.partial
            self.rels[old_name] = None
            self.partial.discard(old_name)
            new_name = self.namer.name(rv.get("schemaname"), new)
            if moved is None:
                self.rels.pop(new_name, None)  # not known: back to the catalog's word
                return
            self.rels[new_name] = Draft(replace(moved, name=new_name, relname=new))
            if partial:
                self.partial.add(new_name)
