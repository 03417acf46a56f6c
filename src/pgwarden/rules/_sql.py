"""Small helpers rules share for reading statement trees and wording findings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.nodes import (
    AlterTableCmd,
    AlterTableStmt,
    DeleteStmt,
    Node,
    TypeName,
    TypeOf,
    UpdateStmt,
    WithClause,
    dotted,
    func_calls,
    ident,
    option_on,
    quote,
    regclass,
    relname,
    strings,
    type_of,
)
from pgwarden.plan import SourceText, Step, TxMode

if TYPE_CHECKING:
    from pgwarden.analysis.catalog import Catalog, Relation
    from pgwarden.findings import Severity
    from pgwarden.rules.base import LintContext

__all__ = [
    "TABLE_KINDS",
    "alter_cmds",
    "alter_table_cmds",
    "catalog_relation",
    "column_added_earlier",
    "column_defs",
    "column_types",
    "dml_parts",
    "dotted",
    "func_names",
    "how_long",
    "ident",
    "in_file_where",
    "make_object_name",
    "object_name",
    "option_on",
    "qualified",
    "quote",
    "regclass",
    "relname",
    "size_words",
    "strings",
    "strongest_on",
    "table_of",
    "tx_words",
    "type_of",
    "type_text",
]

TABLE_KINDS = ("table", "partitioned table", "materialized view", "foreign table")


_NAME_BYTES = 63  # NAMEDATALEN - 1: what the server keeps of a name


def make_object_name(name1: str, name2: str | None, label: str) -> str:
    """The name the server makes for an object (makeObjectName): name1_name2_label (or
    name1_label), with name1 and name2 cut, the longer one byte by byte first, so that
    it fits 63 bytes, each on a character boundary (pg_mbcliplen)."""
    raw1, raw2 = name1.encode(), (name2 or "").encode()
    room = _NAME_BYTES - len(label.encode()) - (2 if name2 is not None else 1)
    n1, n2 = len(raw1), len(raw2)
    while n1 + n2 > room:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    cut1 = raw1[:n1].decode("utf-8", errors="ignore")  # a character cut in two goes
    cut2 = raw2[:n2].decode("utf-8", errors="ignore")
    return f"{cut1}_{cut2}_{label}" if name2 is not None else f"{cut1}_{label}"


def qualified(relation: str) -> str:
    """Strip `public.`: how regclass prints a table on the default search_path."""
    return relation.removeprefix("public.")


def object_name(obj: Node) -> str:
    """The name of one DROP object (List, TypeName, ObjectWithArgs or String)."""
    if "List" in obj:
        return dotted(obj["List"].get("items"))
    if "TypeName" in obj:
        return dotted(obj["TypeName"].get("names"))
    if "ObjectWithArgs" in obj:
        return dotted(obj["ObjectWithArgs"].get("objname"))
    if "String" in obj:
        return quote(obj["String"]["sval"])
    return "?"


def alter_table_cmds(body: AlterTableStmt) -> Iterator[tuple[str, AlterTableCmd]]:
    """(subtype, fields) of each ALTER TABLE sub-command."""
    for cmd in body.get("cmds", ()):
        fields = cmd.get("AlterTableCmd", {})
        yield fields.get("subtype", ""), fields


Cmds = tuple[tuple[str, AlterTableCmd], ...]


def alter_cmds(step: Step) -> Cmds:
    """`alter_table_cmds` of an ALTER TABLE step (else empty), computed once per step."""
    if step.kind != "AlterTableStmt":
        return ()
    cmds = step.derived.get("cmds")
    if cmds is None:
        cmds = step.derived["cmds"] = tuple(alter_table_cmds(step.tree["AlterTableStmt"]))
    return cmds


def dml_parts(step: Step) -> list[tuple[str, UpdateStmt | DeleteStmt]]:
    """The UPDATEs and DELETEs a statement runs: itself, and those of its data-modifying
    WITH queries (`WITH moved AS (DELETE ... RETURNING *) INSERT ...`), nested ones too,
    as (kind, body), the statement's own first."""
    derived = step.derived
    if "dml_parts" not in derived:
        parts: list[tuple[str, UpdateStmt | DeleteStmt]] = []
        _dml_parts(step.tree, parts)
        derived["dml_parts"] = parts
    return derived["dml_parts"]


def _dml_parts(tree: Node, out: list[tuple[str, UpdateStmt | DeleteStmt]]) -> None:
    ((kind, body),) = tree.items()
    if kind in ("UpdateStmt", "DeleteStmt"):
        out.append((kind, cast("UpdateStmt | DeleteStmt", body)))
    if kind not in ("SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
        return
    with_ = cast("WithClause | None", cast("dict[str, object]", body).get("withClause"))
    if not with_:
        return
    for cte in with_.get("ctes") or ():
        query = cte.get("CommonTableExpr", {}).get("ctequery") or {}
        if len(query) == 1:
            _dml_parts(query, out)


def table_of(step: Step) -> str | None:
    """The table an ALTER TABLE step changes (regclass spelling), else None."""
    if step.kind != "AlterTableStmt":
        return None
    derived = step.derived
    if "table_of" not in derived:
        stmt = step.tree["AlterTableStmt"]
        derived["table_of"] = (
            regclass(stmt.get("relation"))
            if stmt.get("objtype", "OBJECT_TABLE") == "OBJECT_TABLE"
            else None
        )
    return derived["table_of"]


_SPELLING = {
    "int8": "bigint",
    "int4": "integer",
    "int2": "smallint",
    "bpchar": "char",
    "float8": "double precision",
    "float4": "real",
    "bool": "boolean",
}


def type_text(type_name: TypeName) -> str:
    """A TypeName as a person writes it: `bigint`, `varchar(20)`, `text[]`, a quoted name
    (`"InvoiceStatus"`) as written, not folded to lower case."""
    base, mods, array = type_of(type_name)
    mod = f"({', '.join(map(str, mods))})" if mods else ""
    raw = (strings(type_name.get("names")) or [""])[-1]
    shown = quote(raw) if raw != raw.lower() else _SPELLING.get(base, base)
    return shown + mod + ("[]" if array else "")


ColumnDefs = tuple[tuple[str, str, TypeName, str], ...]


def column_defs(step: Step) -> ColumnDefs:
    """(table, column, TypeName, where) of every column type a step writes down.

    `where` is "CREATE TABLE", "ADD COLUMN" or "ALTER COLUMN TYPE". Computed once per step.
    """
    if step.kind != "CreateStmt" and step.kind != "AlterTableStmt":
        return ()
    defs = step.derived.get("column_defs")
    if defs is None:
        defs = step.derived["column_defs"] = tuple(_column_defs(step))
    return defs


ColumnTypes = tuple[tuple[str, str, str, TypeOf], ...]


def column_types(step: Step) -> ColumnTypes:
    """(table, column, where, `type_of` the TypeName) of each `column_defs` entry, computed once."""
    types = step.derived.get("column_types")
    if types is None:
        types = step.derived["column_types"] = tuple(
            (table, column, where, type_of(type_name))
            for table, column, type_name, where in column_defs(step)
        )
    return types


def _column_defs(step: Step) -> Iterator[tuple[str, str, TypeName, str]]:
    create = step.tree.get("CreateStmt")
    if create is not None and create.get("relation", {}).get("relpersistence") != "t":
        # (a temporary table's column types do not outlive the session: not judged)
        table = regclass(create.get("relation"))
        for elt in create.get("tableElts") or ():
            col = elt.get("ColumnDef")
            if col and col.get("typeName"):
                yield table, col.get("colname", "?"), col["typeName"], "CREATE TABLE"
    alter = step.tree.get("AlterTableStmt")
    if alter is not None:
        table = regclass(alter.get("relation"))
        for subtype, cmd in alter_cmds(step):
            col = cmd.get("def", {}).get("ColumnDef")
            if not col or not col.get("typeName"):
                continue
            if subtype == "AT_AddColumn":
                yield table, col.get("colname", "?"), col["typeName"], "ADD COLUMN"
            elif subtype == "AT_AlterColumnType":
                yield table, cmd.get("name", "?"), col["typeName"], "ALTER COLUMN TYPE"


def func_names(expr: object) -> Iterator[str]:
    """Names of the functions an expression calls, outermost first."""
    for call in func_calls(expr, []):
        yield ".".join(strings(call.get("funcname")))


def strongest_on(step: Step, relation: str) -> LockMode | None:
    """The strongest lock `step` takes on `relation`."""
    return step.effects.strongest().get(relation)


def how_long(seconds: float | None, *, unknown: str = "duration grows with the table") -> str:
    """`~4.2 s estimated`, or words saying the duration is not known."""
    if seconds is None:
        return unknown
    return f"~{seconds:.1f} s estimated" if seconds >= 0.05 else "under 0.1 s estimated"


def tx_words(step: Step, ctx: LintContext) -> str:
    """How `step` came to be inside a transaction block."""
    if step.tx_mode is TxMode.EXPLICIT and step.location.path.endswith(".py"):
        # An Alembic revision: its BEGIN ... COMMIT are Alembic's (the offline SQL's),
        # one per revision with transaction_per_migration, else one for the upgrade.
        return "inside the transaction Alembic runs the migration in"
    if step.tx_mode is TxMode.EXPLICIT:
        return "inside the BEGIN ... COMMIT written in the file"
    if step.tx_mode is TxMode.BODY and "commits as it goes" in step.note:
        return "inside the transaction its DO block or procedure call holds until its next COMMIT"
    if step.tx_mode is TxMode.BODY:  # a DO block or CALL outside any transaction block
        return "inside the one transaction its DO block or procedure call runs as"
    if step.tx_mode is TxMode.FILE:
        key = "tx_words.tools"
        tools = cast("dict[str, str] | None", ctx.state.get(key))
        if tools is None:
            tools = ctx.state[key] = {
                t.path: "" if t.one_query or t.query_parts else t.wrapped_by
                for t in ctx.plan.texts
                if t.one_query or t.query_parts or t.wrapped_by
            }
        tool = tools.get(step.location.path)
        if tool == "":
            return (
                "inside the one transaction a query of several statements runs as (the tool "
                "sends this file to the server as one query)"
            )
        if tool is not None:
            return f"inside the transaction {tool} runs the migration in"
    return "inside the one transaction the migration runner wraps each file in"


def size_words(ctx: LintContext, relation: str) -> str:
    """`; invoices: 5.0M rows, 470 MB, 169 writes/s` when the snapshot knows the table."""
    if ctx.snapshot is None or ctx.snapshot.table(relation) is None:
        return ""
    return f"; {relation}: {ctx.judge(relation).size}"


def column_added_earlier(ctx: LintContext, step: Step, table: str, column: str) -> bool:
    """Whether an earlier step of the plan added `column` to `table` (no code uses it yet)."""
    return (table, column) in ctx.added_columns


def catalog_relation(catalog: Catalog, relation: str) -> Relation | None:
    """`relation` (regclass spelling, schema-qualified or not) in `catalog`."""
    parts = relation.split(".")
    return catalog.resolve(parts[0] if len(parts) > 1 else None, parts[-1].strip('"'))


def known_missing(ctx: LintContext, relation: str, column: str | None = None) -> bool:
    """Whether the snapshot's catalog shows that `relation` (or its `column`) does not
    exist: a DROP ... IF EXISTS of it does nothing."""
    catalog = ctx.snapshot.catalog if ctx.snapshot is not None else None
    if catalog is None:
        return False
    rel = catalog_relation(catalog, relation)
    if rel is None:
        return True
    return column is not None and rel.column(column) is None


def existing_columns(
    step: Step, ctx: LintContext, subtype: str
) -> Iterator[tuple[str, str, AlterTableCmd]]:
    """(table, column, sub-command) of each `subtype` sub-command on a column that running
    code may use: not on a table created, nor a column added, earlier in the plan."""
    table = table_of(step)
    if table is None or qualified(table) in ctx.created:
        return
    for sub, cmd in alter_cmds(step):
        column = str(cmd.get("name"))
        if sub != subtype or column_added_earlier(ctx, step, table, column):
            continue
        if cmd.get("missing_ok") and known_missing(ctx, table, column):
            continue  # DROP COLUMN IF EXISTS of a column that is not there
        yield table, column, cmd


def judged_rewrites(
    step: Step, ctx: LintContext, tables: list[str]
) -> Iterator[tuple[str, float | None, str, Severity, LockMode]]:
    """(table, estimated seconds, size words, severity, lock mode) per existing table rewritten."""
    kinds = {lk.relation: lk.relkind for lk in step.effects.locks}
    strongest = step.effects.strongest()
    for table in tables:
        if kinds.get(table, "table") not in TABLE_KINDS:
            continue
        est = ctx.duration(table, rewrite=True)
        judged = ctx.judge(table, lock_s=est)
        if judged.severity is not None:
            mode = strongest.get(table, LockMode.ACCESS_EXCLUSIVE)
            yield table, est, judged.size, judged.severity, mode


def first_step_naming(
    ctx: LintContext, key: str, name_of: Callable[[Step], str | None]
) -> dict[str, int]:
    """name -> index of the first plan step `name_of` names (e.g. the CREATE SCHEMA of each
    schema), built once per lint and kept in `ctx.state[key]`."""
    found = ctx.state.get(key)
    if found is None:
        index: dict[str, int] = {}
        for s in ctx.plan.steps:
            name = name_of(s)
            if name is not None:
                index.setdefault(name, s.index)
        ctx.state[key] = found = index
    return cast("dict[str, int]", found)


def in_file_where(
    step: Step, ctx: LintContext, key: str, holds: Callable[[SourceText], bool]
) -> bool:
    """Whether the step's file is one of the plan's texts that `holds`, the set of them
    worked out once per lint under `key` (a plan may hold thousands of files)."""
    paths = cast("frozenset[str] | None", ctx.state.get(key))
    if paths is None:
        paths = frozenset(t.path for t in ctx.plan.texts if holds(t))
        ctx.state[key] = paths
    return step.location.path in paths
