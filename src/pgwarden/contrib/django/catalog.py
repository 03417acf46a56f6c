"""The constraints and indexes each table has after the SQL collected so far.

Django's schema editor asks the database for constraint names
(`introspection.get_constraints`) even when it only collects SQL: to drop a
`unique_together`, to drop and re-add a foreign key around an `AlterField`, ...
Collected against the old database, a pending migration sees the constraints of
the state before *all* pending migrations, so Django generates other SQL than
`migrate`, which runs them one after another. `ConstraintCatalog` answers those
questions instead: from the database as it is (or nothing, from zero), plus the
effect of every statement collected before, in the same shape as Django's
PostgreSQL introspection.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from pgwarden.analysis.parse import parse
from pgwarden.errors import SqlParseError

__all__ = ["ConstraintCatalog"]

Info = dict[str, Any]
Reader = Callable[[str], dict[str, Info]]

_NAMEDATALEN = 63


def _object_name(name1: str, name2: str | None, label: str) -> str:
    """PostgreSQL's makeObjectName: name1_name2_label, truncated to fit 63 bytes."""
    overhead = len(label) + 1 + (len(name2) + 1 if name2 else 0)
    avail = _NAMEDATALEN - overhead
    n1, n2 = len(name1), len(name2 or "")
    while n1 + n2 > avail:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    parts = [name1[:n1]] + ([name2[:n2]] if name2 else []) + [label]
    return "_".join(parts)


def _strings(items: list[Any] | None) -> list[str]:
    return [str(i["String"]["sval"]) for i in items or [] if "String" in i]


def _constraint(
    columns: list[str], *, pk: bool = False, unique: bool = False, check: bool = False
) -> Info:
    return {
        "columns": columns,
        "primary_key": pk,
        "unique": unique or pk,
        "foreign_key": None,
        "check": check,
        "index": False,
        "definition": None,
        "options": None,
    }


class ConstraintCatalog:
    """Constraints and indexes per table, as the collected statements leave them."""

    def __init__(self, read: Reader | None) -> None:
        self._read = read  # the database's own answer; None: start from an empty database
        self._tables: dict[str, dict[str, Info]] = {}
        # indexes dropped or renamed by name before their table was read
        self._dropped_indexes: set[str] = set()
        self._renamed_indexes: dict[str, str] = {}

    def get_constraints(self, cursor: Any, table: str) -> dict[str, Info]:
        """Django's `introspection.get_constraints(cursor, table)`, from the catalog."""
        return copy.deepcopy(self._table(table))

    def _table(self, table: str) -> dict[str, Info]:
        if table not in self._tables:
            found: dict[str, Info] = {}
            if self._read is not None:
                for name, info in self._read(table).items():
                    if name in self._dropped_indexes and info["index"]:
                        continue
                    found[self._renamed_indexes.get(name, name)] = info
            self._tables[table] = found
        return self._tables[table]

    def feed(self, sql: str) -> None:
        """Apply the effect of `sql` (one or more statements Django generated)."""
        try:
            stmts = parse(sql)
        except SqlParseError:
            return
        for stmt in stmts:
            kind = stmt.kind
            body: dict[str, Any] = stmt.body
            if kind == "CreateStmt":
                self._create(body)
            elif kind == "AlterTableStmt":
                table = str(body["relation"]["relname"])
                for cmd in body.get("cmds", []):
                    self._alter(table, cmd["AlterTableCmd"])
            elif kind == "IndexStmt":
                self._index(body)
            elif kind == "DropStmt":
                self._drop(body)
            elif kind == "RenameStmt":
                self._rename(body)

    def _create(self, body: dict[str, Any]) -> None:
        table = str(body["relation"]["relname"])
        entry: dict[str, Info] = {}
        self._tables[table] = entry
        for elt in body.get("tableElts", []):
            if "ColumnDef" in elt:
                col = elt["ColumnDef"]
                for con in col.get("constraints", []):
                    self._add(table, entry, con["Constraint"], [str(col["colname"])])
            elif "Constraint" in elt:
                self._add(table, entry, elt["Constraint"], None)

    def _add(
        self, table: str, entry: dict[str, Info], con: dict[str, Any], col: list[str] | None
    ) -> None:
        contype = con.get("contype")
        keys = col if col is not None else _strings(con.get("keys"))
        name = con.get("conname")
        if contype == "CONSTR_PRIMARY":
            entry[name or _object_name(table, None, "pkey")] = _constraint(keys, pk=True)
        elif contype == "CONSTR_UNIQUE":
            default = _object_name(table, "_".join(keys), "key")
            entry[name or default] = _constraint(keys, unique=True)
        elif contype == "CONSTR_CHECK":
            default = _object_name(table, col[0] if col else None, "check")
            entry[name or default] = _constraint(col or [], check=True)
        elif contype == "CONSTR_FOREIGN":
            fk_cols = col if col is not None else _strings(con.get("fk_attrs"))
            ref = str(con["pktable"]["relname"])
            ref_cols = _strings(con.get("pk_attrs")) or ["id"]
            info = _constraint(fk_cols)
            info["foreign_key"] = (ref, ref_cols[0])
            entry[name or _object_name(table, "_".join(fk_cols), "fkey")] = info

    def _alter(self, table: str, cmd: dict[str, Any]) -> None:
        sub = cmd.get("subtype")
        if sub == "AT_AddColumn":
            entry = self._table(table)
            col = cmd["def"]["ColumnDef"]
            for con in col.get("constraints", []):
                self._add(table, entry, con["Constraint"], [str(col["colname"])])
        elif sub == "AT_AddConstraint":
            self._add(table, self._table(table), cmd["def"]["Constraint"], None)
        elif sub == "AT_DropConstraint":
            self._table(table).pop(str(cmd.get("name")), None)
        elif sub == "AT_DropColumn":
            entry = self._table(table)
            column = str(cmd.get("name"))
            for name in [n for n, info in entry.items() if column in info["columns"]]:
                del entry[name]

    def _index(self, body: dict[str, Any]) -> None:
        table = str(body["relation"]["relname"])
        entry = self._table(table)
        columns: list[str] = []
        orders: list[str] = []
        for param in body.get("indexParams", []):
            elem = param["IndexElem"]
            columns.append(str(elem["name"]) if "name" in elem else "")
            orders.append("DESC" if elem.get("ordering") == "SORTBY_DESC" else "ASC")
        method = str(body.get("accessMethod", "btree"))
        name = str(body.get("idxname") or _object_name(table, "_".join(columns), "idx"))
        basic = method == "btree" and not name.endswith("_btree") and not body.get("options")
        expressions = any(c == "" for c in columns)
        entry[name] = {
            "columns": [] if expressions else columns,
            "orders": orders,
            "primary_key": False,
            "unique": bool(body.get("unique")),
            "foreign_key": None,
            "check": False,
            "index": True,
            "type": "idx" if basic else method,
            "definition": "expression" if expressions else None,
            "options": None,
        }

    def _drop(self, body: dict[str, Any]) -> None:
        kind = body.get("removeType")
        for obj in body.get("objects", []):
            names = _strings(obj.get("List", {}).get("items"))
            if not names:
                continue
            name = names[-1]
            if kind == "OBJECT_TABLE":
                self._tables[name] = {}
                for entry in self._tables.values():  # CASCADE drops the FKs pointing at it
                    for con in [
                        n for n, i in entry.items() if (i["foreign_key"] or ("",))[0] == name
                    ]:
                        del entry[con]
            elif kind == "OBJECT_INDEX":
                self._dropped_indexes.add(name)
                for entry in self._tables.values():
                    entry.pop(name, None)

    def _rename(self, body: dict[str, Any]) -> None:
        kind = body.get("renameType")
        relname = str(body.get("relation", {}).get("relname", ""))
        new = str(body.get("newname"))
        if kind == "OBJECT_TABLE":
            self._tables[new] = self._table(relname)
            self._tables[relname] = {}
            for entry in self._tables.values():
                for info in entry.values():
                    fk = info["foreign_key"]
                    if fk and fk[0] == relname:
                        info["foreign_key"] = (new, fk[1])
        elif kind == "OBJECT_COLUMN":
            old = str(body.get("subname"))
            for info in self._table(relname).values():
                info["columns"] = [new if c == old else c for c in info["columns"]]
            for entry in self._tables.values():
                for info in entry.values():
                    fk = info["foreign_key"]
                    if fk and fk[0] == relname and fk[1] == old:
                        info["foreign_key"] = (relname, new)
        elif kind == "OBJECT_TABCONSTRAINT":
            entry = self._table(relname)
            old = str(body.get("subname"))
            if old in entry:
                entry[new] = entry.pop(old)
        elif kind == "OBJECT_INDEX":
            self._renamed_indexes[relname] = new
            for entry in self._tables.values():
                if relname in entry:
                    entry[new] = entry.pop(relname)
