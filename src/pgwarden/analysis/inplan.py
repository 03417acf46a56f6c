"""The catalog as the earlier statements of a plan leave it.

`InPlan` is an overlay over the catalog (or over nothing, for SQL alone) that
`plan.build_plan` updates statement by statement: CREATE TABLE, ADD / DROP /
ALTER COLUMN, SET / DROP NOT NULL, ADD / VALIDATE / DROP CONSTRAINT, CREATE /
DROP INDEX, DROP TABLE and renames. The lock model reads it through
`Ctx.rel` (relations it knows whole: created in the plan, or in the catalog)
and `Ctx.known` (also what the plan said about a table the catalog does not
show: its columns' types, NOT NULLs, CHECKs and indexes).
"""

from __future__ import annotations

from dataclasses import replace

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

__all__ = ["InPlan", "type_text"]

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


class InPlan:
    """Relations as earlier statements left them; the catalog (if any) for the rest."""

    __slots__ = ("base", "namer", "partial", "rels")

    def __init__(self, base: Catalog | None) -> None:
        self.base = base
        self.namer = Ctx(base, NEWEST)  # spells names as the lock model does
        # Relations the plan changed: None when dropped in the plan.
        self.rels: dict[str, Relation | None] = {}
        # Tables the catalog does not show and the plan did not create: only what the
        # plan said about them is known (never that a column or constraint is missing).
        self.partial: set[str] = set()

    # -- reading ---------------------------------------------------------------------

    def decides(self, name: str) -> bool:
        """Whether the plan knows `name` whole (created, changed from the catalog, dropped)."""
        return name in self.rels and name not in self.partial

    def get(self, name: str) -> Relation | None:
        """The relation as the plan left it (whole or partial), else the catalog's."""
        if name in self.rels:
            return self.rels[name]
        return self.base.get(name) if self.base is not None else None

    # -- writing ---------------------------------------------------------------------

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

    def _table(self, rv: RangeVar) -> tuple[str, Relation]:
        """The overlay entry to change for a table (copied from the catalog, or partial)."""
        name = self.namer.rv(rv)
        rel = self.get(name)
        if rel is None:
            schema = rv.get("schemaname") or (
                self.base.search_path[0] if self.base is not None else "public"
            )
            rel = Relation(name=name, schema=schema, relname=rv["relname"], relkind="r")
            self.partial.add(name)
        return name, rel

    def _put(self, name: str, rel: Relation) -> None:
        self.rels[name] = rel

    def _create(self, body: CreateStmt) -> None:
        rv = body["relation"]
        name = self.namer.rv(rv)
        if body.get("if_not_exists") and self.get(name) is not None:
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
        relkind = "p" if "partspec" in body else "r"
        schema = rv.get("schemaname") or (
            self.base.search_path[0] if self.base is not None else "public"
        )
        rel = Relation(name=name, schema=schema, relname=rv["relname"], relkind=relkind)
        for elt in elts:
            col = elt.get("ColumnDef")
            if col is not None:
                rel = self._add_column(rel, col)
            con = elt.get("Constraint")
            if con is not None:
                rel = self._add_constraint(rel, con, None)
        self._put(name, rel)

    def _add_column(self, rel: Relation, col: ColumnDef) -> Relation:
        colname = col["colname"]
        tn = col.get("typeName", {})
        base = type_of(tn)[0]
        not_null = bool(col.get("is_not_null")) or base in _SERIAL
        cons = [c["Constraint"] for c in col.get("constraints") or () if "Constraint" in c]
        for con in cons:
            if con["contype"] in ("CONSTR_NOTNULL", "CONSTR_PRIMARY", "CONSTR_IDENTITY"):
                not_null = True
        columns = tuple(c for c in rel.columns if c.name != colname)
        rel = replace(rel, columns=(*columns, Column(colname, type_text(tn), not_null)))
        for con in cons:
            if con["contype"] in ("CONSTR_PRIMARY", "CONSTR_UNIQUE", "CONSTR_CHECK"):
                rel = self._add_constraint(rel, con, colname)
        return rel

    def _add_constraint(self, rel: Relation, con: ConNode, column: str | None) -> Relation:
        kind = con["contype"]
        cols = [column] if column is not None else strings(con.get("keys"))
        if kind == "CONSTR_NOTNULL":
            if con.get("skip_validation"):
                return rel
            return self._set_not_null(rel, cols, True)
        if kind == "CONSTR_CHECK":
            expr = con.get("raw_expr")
            refs = _column_refs(expr, [])
            name = con.get("conname") or f"{rel.relname}_{(refs or [''])[0]}_check"
            valid = not con.get("skip_validation")
            new = Constraint(name, "c", valid, None, _not_null_definition(expr), tuple(refs))
            return replace(rel, constraints=(*rel.constraints, new))
        if kind == "CONSTR_FOREIGN":
            fk = Constraint(
                con.get("conname")
                or f"{rel.relname}_{'_'.join(strings(con.get('fk_attrs')))}_fkey",
                "f",
                not con.get("skip_validation"),
                self.namer.rv(con["pktable"]),
                columns=tuple(strings(con.get("fk_attrs")) or cols),
                ref_columns=tuple(strings(con.get("pk_attrs"))),
            )
            return replace(rel, constraints=(*rel.constraints, fk))
        if kind not in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
            return rel
        primary = kind == "CONSTR_PRIMARY"
        using = con.get("indexname")
        if using:
            ix_name = self.namer.name(rel.schema if "." in rel.name else None, using)
            index = next((i for i in rel.indexes if i.name == ix_name), None)
            cols = list(index.columns) if index is not None else cols
            others = tuple(i for i in rel.indexes if i.name != ix_name)
        else:
            suffix = "pkey" if primary else f"{'_'.join(cols)}_key"
            ix_name = self.namer.new_name(con.get("conname") or f"{rel.relname}_{suffix}", rel.name)
            others = rel.indexes
        index = Index(ix_name, True, True, primary, tuple(cols))
        ctype = "p" if primary else "u"
        name = con.get("conname") or ix_name.rsplit(".", 1)[-1]
        new = Constraint(name, ctype, True, None, "", tuple(cols), ix_name)
        rel = replace(rel, indexes=(*others, index), constraints=(*rel.constraints, new))
        return self._set_not_null(rel, cols, True) if primary else rel

    @staticmethod
    def _set_not_null(rel: Relation, cols: list[str], value: bool) -> Relation:
        return replace(
            rel,
            columns=tuple(replace(c, not_null=value) if c.name in cols else c for c in rel.columns),
        )

    def _alter(self, body: AlterTableStmt) -> None:
        if body.get("objtype", "OBJECT_TABLE") != "OBJECT_TABLE":
            return
        name, rel = self._table(body["relation"])
        for c in body.get("cmds", ()):
            rel = self._alter_cmd(rel, c["AlterTableCmd"])
        self._put(name, rel)

    def _alter_cmd(self, rel: Relation, cmd: AlterTableCmd) -> Relation:
        sub = cmd["subtype"]
        col = cmd.get("name", "")
        if sub == "AT_AddColumn":
            cdef = cmd["def"]["ColumnDef"]
            if cmd.get("missing_ok") and rel.column(cdef["colname"]) is not None:
                return rel
            return self._add_column(rel, cdef)
        if sub == "AT_AlterColumnType":
            tn = cmd["def"]["ColumnDef"]["typeName"]
            old = rel.column(col) or Column(col, "")
            columns = tuple(c for c in rel.columns if c.name != col)
            return replace(rel, columns=(*columns, replace(old, type=type_text(tn))))
        if sub in ("AT_SetNotNull", "AT_DropNotNull"):
            return self._set_not_null(rel, [col], sub == "AT_SetNotNull")
        if sub == "AT_AddConstraint":
            return self._add_constraint(rel, cmd["def"]["Constraint"], None)
        if sub == "AT_ValidateConstraint":
            return replace(
                rel,
                constraints=tuple(
                    replace(k, validated=True) if k.name == col else k for k in rel.constraints
                ),
            )
        if sub == "AT_DropConstraint":
            gone = rel.constraint(col)
            return replace(
                rel,
                constraints=tuple(k for k in rel.constraints if k.name != col),
                indexes=tuple(
                    i
                    for i in rel.indexes
                    if gone is None or gone.type not in ("p", "u", "x") or i.name != gone.index
                ),
            )
        if sub == "AT_DropColumn":
            return replace(
                rel,
                columns=tuple(c for c in rel.columns if c.name != col),
                indexes=tuple(i for i in rel.indexes if col not in i.columns),
                constraints=tuple(k for k in rel.constraints if col not in k.columns),
            )
        return rel

    def _index(self, body: IndexStmt) -> None:
        rv = body["relation"]
        name, rel = self._table(rv)
        cols = [p.get("IndexElem", {}).get("name") or "" for p in body.get("indexParams") or ()]
        base = f"{rel.relname}_{'_'.join(c or 'expr' for c in cols)}_idx"
        idx = body.get("idxname")
        ix_name = (
            self.namer.name(rv.get("schemaname"), idx) if idx else self.namer.new_name(base, name)
        )
        if body.get("if_not_exists") and any(i.name == ix_name for i in rel.indexes):
            return
        index = Index(ix_name, True, bool(body.get("unique")), False, tuple(cols))
        self._put(name, replace(rel, indexes=(*rel.indexes, index)))

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
                self.rels[name] = None
                self.partial.discard(name)
                continue
            for tname in list(self.rels):
                rel = self.rels[tname]
                if rel is not None and any(i.name == name for i in rel.indexes):
                    self.rels[tname] = replace(
                        rel, indexes=tuple(i for i in rel.indexes if i.name != name)
                    )

    def _rename(self, body: RenameStmt) -> None:
        rv = body.get("relation")
        if rv is None:
            return
        kind = body.get("renameType")
        if kind == "OBJECT_COLUMN":
            name, rel = self._table(rv)
            old, new = body.get("subname", ""), body.get("newname", "")
            self._put(
                name,
                replace(
                    rel,
                    columns=tuple(
                        replace(c, name=new) if c.name == old else c for c in rel.columns
                    ),
                    indexes=tuple(
                        replace(i, columns=tuple(new if x == old else x for x in i.columns))
                        for i in rel.indexes
                    ),
                    constraints=tuple(
                        replace(k, columns=tuple(new if x == old else x for x in k.columns))
                        for k in rel.constraints
                    ),
                ),
            )
        elif kind == "OBJECT_TABLE":
            old_name = self.namer.rv(rv)
            moved = self.get(old_name)
            partial = old_name in self.partial
            self.rels[old_name] = None
            self.partial.discard(old_name)
            new_name = self.namer.name(rv.get("schemaname"), body.get("newname", ""))
            if moved is None:
                self.rels.pop(new_name, None)  # not known: back to the catalog's word
                return
            self.rels[new_name] = replace(moved, name=new_name, relname=body.get("newname", ""))
            if partial:
                self.partial.add(new_name)
