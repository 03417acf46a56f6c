"""The lock model: what a statement locks, rewrites, scans, destroys and creates.

`analyse` dispatches on the statement's node type. Modes, relations and
rewrites are checked against live servers 15-18 by
tests/analysis/test_locks_live.py; see docs/lock-model.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.effects import Effects, LockMode
from pgwarden.analysis.inplan import InPlan
from pgwarden.analysis.locks_altertable import alter_table
from pgwarden.analysis.locks_core import (
    AE,
    AS,
    EX,
    NEWEST,
    OLDEST,
    RE,
    RS,
    SH,
    SRE,
    SUE,
    Ctx,
)
from pgwarden.analysis.nodes import (
    ColumnDef,
    CommonTableExpr,
    Constraint,
    DropStmt,
    InsertStmt,
    Node,
    RangeVar,
    SelectStmt,
    TableLikeClause,
    UpdateStmt,
    WithClause,
    defnames,
    option_on,
    quote,
    range_vars,
    role_names,
    strings,
    walk,
)
from pgwarden.analysis.plpgsql import body_statements, do_body

__all__ = ["analyse", "union_effects"]

Handler = Callable[[Ctx, Node], None]

_NO_EFFECTS = Effects()


def analyse(
    tree: Node,
    *,
    catalog: Catalog | None = None,
    server_version: int | None = None,
    timezone: str | None = None,
    inplan: InPlan | None = None,
) -> Effects:
    """Effects of one statement (a parse tree from `analysis.parse`).

    `timezone`: the session's TimeZone when an earlier statement set it (else the
    catalog's, else unknown).
    """
    kind = next(iter(tree))
    handler = _HANDLERS.get(kind)
    if handler is None:
        return _NO_EFFECTS
    ctx = Ctx(catalog, _version(server_version, catalog), inplan)
    ctx.session_timezone = timezone
    ctx.version_assumed = server_version is None and (
        catalog is None or catalog.server_version is None
    )
    body = cast("dict[str, object]", next(iter(tree.values())))
    if "withClause" not in body:  # most statements
        handler(ctx, tree)
        return ctx.effects()
    ctx.ctes = frozenset(
        str(cast("CommonTableExpr", value)["ctename"])
        for key, value in walk(body)
        if key == "CommonTableExpr"
    )
    handler(ctx, tree)
    _with_queries(ctx, kind, body)
    return ctx.effects()


_WRITES = ("InsertStmt", "UpdateStmt", "DeleteStmt")


def _with_queries(ctx: Ctx, kind: str, body: dict[str, object]) -> None:
    """The WITH queries of a SELECT/INSERT/UPDATE/DELETE: a data-modifying one locks and
    writes as the statement would alone; a query's reads are the outer statement's (a
    SELECT reads its whole tree already)."""
    if kind not in ("SelectStmt", "MergeStmt", *_WRITES):
        return
    with_ = cast("WithClause | None", body.get("withClause"))
    for cte in (with_ or {}).get("ctes") or ():
        query = cte.get("CommonTableExpr", {}).get("ctequery") or {}
        if len(query) != 1:
            continue
        ((inner, node),) = query.items()
        if inner in _WRITES:
            _HANDLERS[inner](ctx, query)
            _with_queries(ctx, inner, cast("dict[str, object]", node))
        elif kind != "SelectStmt":
            _query_relations(ctx, query, AS, True, "WITH query")


def union_effects(
    parts: Iterable[tuple[Effects, bool]],
    not_analysed: Iterable[str],
    where: str = "a PL/pgSQL body",
) -> Effects:
    """One statement's effects from those of the statements of its body, in order
    ((effects, runs only on a condition)), and the SQL of the body not analysed; `where`
    names the body ("the DO block at line 3", "the SQL passed to run_sql() at line 7")."""
    ctx = Ctx(None, NEWEST)
    for effects, conditional in parts:
        _merge(ctx, effects, conditional)
    for text in not_analysed:
        ctx.assume(_not_analysed(text, where))
    return ctx.effects()


def _not_analysed(text: str, where: str) -> str:
    return f"Not analysed: `{' '.join(text.split())[:60]}` in {where}."


def _merge(ctx: Ctx, sub: Effects, conditional: bool) -> None:
    """Add a body statement's effects: the body runs in one transaction, so each lock is
    held to its end. Statements in branches are assumed to run."""
    for lk in sub.locks:
        ctx.locks.setdefault((lk.relation, lk.mode), lk)
    for rel in sub.rewrites:
        ctx.rewrite(rel)
    for rel in sub.scans:
        ctx.scan(rel)
    for what in sub.destroys:
        ctx.destroy(what)
    for rel in sub.creates:
        ctx.create(rel)
    for text in sub.assumptions:
        ctx.assume(text)
    if conditional and sub.locks:
        ctx.assume("Statements in conditional branches of a PL/pgSQL body are assumed to run.")


def _merge_body(ctx: Ctx, body: str) -> None:
    """Every statement of the body, merged into one."""
    version = None if ctx.version_assumed else ctx.version
    for inner in body_statements(body):
        if inner.tree is None:
            ctx.assume(_not_analysed(inner.text, "a PL/pgSQL body"))
            continue
        sub = analyse(
            inner.tree,
            catalog=ctx.catalog,
            server_version=version,
            timezone=ctx.session_timezone,
            inplan=ctx.inplan,
        )
        _merge(ctx, sub, inner.condition is not None)


def _do(ctx: Ctx, tree: Node) -> None:
    """DO: the statements of its PL/pgSQL body, in one transaction."""
    body, language = do_body(tree["DoStmt"].get("args"))
    if body is None or language != "plpgsql":
        ctx.assume(f"A DO block in language {language} is not analysed.")
        return
    _merge_body(ctx, body)


def _version(server_version: int | None, catalog: Catalog | None) -> int:
    if server_version is None and catalog is not None:
        server_version = catalog.server_version
    if server_version is None:
        return NEWEST
    return max(OLDEST, min(NEWEST, server_version))


# -- indexes -----------------------------------------------------------------------------


def _index_columns(params: list[Node]) -> list[str]:
    cols = []
    for p in params:
        elem = p.get("IndexElem", {})
        cols.append(elem.get("name") or "expr")
    return cols


def _create_index(ctx: Ctx, tree: Node) -> None:
    body = tree["IndexStmt"]
    rv = body["relation"]
    table = ctx.rv(rv)
    name = body.get("idxname")
    if body.get("if_not_exists") and name and ctx.catalog is not None:
        schema = rv.get("schemaname")
        if ctx.catalog.resolve(schema, name) is not None:
            ctx.lock(table, SUE if body.get("concurrent") else SH, "CREATE INDEX IF NOT EXISTS")
            return
    cols = _index_columns(body.get("indexParams") or [])
    base = ctx.rel_base(table)
    suffix = "key" if body.get("primary") is False and body.get("isconstraint") else "idx"
    if body.get("concurrent"):
        ctx.transactional = False
        ctx.lock(table, SUE, "CREATE INDEX CONCURRENTLY")
        ctx.create(ctx.new_name(name or f"{base}_{'_'.join(cols)}_{suffix}", table))
        ctx.scan(table)
        return
    ctx.lock(table, SH, "CREATE INDEX")
    ctx.create(ctx.new_name(name or f"{base}_{'_'.join(cols)}_{suffix}", table))
    only = not rv.get("inh", False)
    if only and ctx.rel(table) is None:
        # ON ONLY is the first step of indexing a partitioned table without locking it long.
        ctx.assume(f"{table} (ON ONLY) is assumed partitioned: an invalid index, nothing built.")
    elif ctx.has_storage(table):
        ctx.scan(table)
    if rv.get("inh", False):
        for child in ctx.children(table):
            ctx.lock(child, SH, "CREATE INDEX on the partitioned table")
            ctx.create(ctx.new_name(f"{ctx.rel_base(child)}_{'_'.join(cols)}_{suffix}", child))
            if ctx.has_storage(child):
                ctx.scan(child)


def _reindex(ctx: Ctx, tree: Node) -> None:
    body = tree["ReindexStmt"]
    kind = body.get("kind", "")
    concurrent = option_on(body.get("params"), "concurrently")  # (CONCURRENTLY false) is not
    rel_node = body.get("relation")
    if concurrent:
        ctx.transactional = False
    if rel_node is None:
        # REINDEX SCHEMA / DATABASE / SYSTEM refuse to run inside a transaction block.
        ctx.transactional = False
        ctx.assume(f"{kind[15:]} REINDEX covers relations not named in the statement.")
        return
    target = ctx.rv(rel_node)
    if ctx.partitioned(target) or _partitioned_index(ctx, target):
        _reindex_partitions(ctx, target, concurrent)
        return
    if kind == "REINDEX_OBJECT_INDEX":
        rel = ctx.rel(target)
        table = rel.table if rel is not None else None
        indexes: tuple[str, ...] = (target,)
        if table is None:
            ctx.assume(f"The table of index {target} is not known (no catalog).")
    else:
        table = target
        indexes = ctx.indexes(table, "the lock on each index")
    _rebuild(ctx, table, indexes, concurrent, "REINDEX")


def _rebuild(
    ctx: Ctx, table: str | None, indexes: tuple[str, ...], concurrent: bool, why: str
) -> None:
    """REINDEX's work on one table: the table locked and read, each index rebuilt."""
    if table is not None:
        ctx.lock(table, SUE if concurrent else SH, why)
        ctx.scan(table)
    for ix in indexes:
        ctx.rewrite(ix)
        if concurrent:
            ctx.lock(ix, SUE, "REINDEX CONCURRENTLY", "index")
            ctx.lock(ix, RE, "REINDEX CONCURRENTLY: swap", "index")
            ctx.lock(ix, AE, "REINDEX CONCURRENTLY: the old copy dropped", "index")
        else:
            ctx.lock(ix, AE, "REINDEX", "index")


def _partitioned_index(ctx: Ctx, name: str) -> bool:
    rel = ctx.rel(name)
    return rel is not None and rel.relkind == "I"


def _reindex_partitions(ctx: Ctx, target: str, concurrent: bool) -> None:
    """REINDEX of a partitioned table or index: no transaction block; the parent under
    SHARE (SHARE UPDATE EXCLUSIVE concurrently) while the partitions are listed, then each
    partition's indexes rebuilt in a transaction of its own, as REINDEX of that partition
    would. Listing the partitions of a table takes SHARE on each in both forms: behind a
    writer of one partition, that partition's writers queue."""
    ctx.transactional = False
    index = _partitioned_index(ctx, target)
    listed = "REINDEX: the partitions listed"
    if index:  # the index's table first, then the index; its partitions' indexes listed
        parent = ctx.rel(target)
        if parent is not None and parent.table is not None:
            ctx.lock(parent.table, SUE if concurrent else SH, listed)
        ctx.lock(target, SUE if concurrent else AE, listed, "partitioned index")
    else:
        ctx.lock(target, SUE if concurrent else SH, listed)
    for child in ctx.children(target):
        rel = ctx.rel(child)
        if index:
            ctx.lock(child, SUE if concurrent else SH, listed, "index")
        else:
            ctx.lock(child, SH, listed)
        if not ctx.has_storage(child):
            continue
        if index:
            table = rel.table if rel is not None else None
            indexes: tuple[str, ...] = (child,)
        else:
            table, indexes = child, ctx.indexes(child, "the lock on each index")
        _rebuild(ctx, table, indexes, concurrent, "REINDEX of a partition")


# -- maintenance -------------------------------------------------------------------------


def _vacuum(ctx: Ctx, tree: Node) -> None:
    body = tree["VacuumStmt"]
    opts = {name for _, name in defnames(body.get("options"))}
    rels = [r["VacuumRelation"]["relation"] for r in body.get("rels") or ()]
    if not rels:
        ctx.assume("VACUUM/ANALYZE without a table name processes every table of the database.")
    if not body.get("is_vacuumcmd"):
        for rv in rels:
            table = ctx.rv(rv)
            ctx.lock(table, SUE, "ANALYZE")
            ctx.planner_indexes(table, AS, "ANALYZE reads index statistics")
        return
    ctx.transactional = False
    for rv in rels:
        table = ctx.rv(rv)
        ctx.lock(table, AS, "VACUUM: finding partitions")
        if "full" in opts:
            ctx.lock(table, AE, "VACUUM FULL")
            ctx.rewrite_table(table, "VACUUM FULL")
            continue
        ctx.lock(table, SUE, "VACUUM")
        ctx.planner_indexes(table, RE, "VACUUM cleans each index")
        if "analyze" in opts:
            ctx.planner_indexes(table, AS, "ANALYZE reads index statistics")


def _cluster(ctx: Ctx, tree: Node) -> None:
    rv = tree["ClusterStmt"].get("relation")
    if rv is None:
        ctx.transactional = False
        ctx.assume("CLUSTER without a table name re-clusters every clustered table.")
        return
    table = ctx.rv(rv)
    ctx.lock(table, AE, "CLUSTER")
    ctx.rewrite_table(table, "CLUSTER")
    ctx.planner_indexes(table, AS, "CLUSTER: index checked")


def _truncate(ctx: Ctx, tree: Node) -> None:
    body = tree["TruncateStmt"]
    tables = [ctx.rv(r["RangeVar"]) for r in body.get("relations") or ()]
    if body.get("behavior") == "DROP_CASCADE":
        if ctx.catalog is None:
            ctx.assume(
                "Tables referencing the truncated ones (CASCADE) are not known (no catalog)."
            )
        else:
            todo = list(tables)
            while todo:
                for other, _fk in ctx.catalog.referencing(todo.pop()):
                    if other.name not in tables:
                        tables.append(other.name)
                        todo.append(other.name)
    for table in list(tables):
        if ctx.partitioned(table) or ctx.children(table):
            tables.extend(c for c in ctx.children(table) if c not in tables)
    for table in tables:
        ctx.lock(table, AE, "TRUNCATE")
        ctx.destroy(f"all rows of {table}")
        if not ctx.has_storage(table):
            continue
        ctx.lock(table, SH, "TRUNCATE: indexes rebuilt empty")
        ctx.rewrite(table)
        for ix in ctx.indexes(table, "the new, empty file of each index"):
            ctx.lock(ix, AE, "TRUNCATE", "index")
            ctx.rewrite(ix)
        if body.get("restart_seqs"):
            _restart_owned_sequences(ctx, table)


def _restart_owned_sequences(ctx: Ctx, table: str) -> None:
    rel = ctx.rel(table)
    if rel is None:
        ctx.assume(f"The sequences owned by {table} are not known (no catalog).")
        return
    for seq in rel.sequences:
        ctx.lock(seq, AE, "RESTART IDENTITY", "sequence")
        ctx.lock(seq, RE, "RESTART IDENTITY", "sequence")
        ctx.rewrite(seq)


def _lock(ctx: Ctx, tree: Node) -> None:
    body = tree["LockStmt"]
    mode = LockMode(body.get("mode", 8))
    for node in body.get("relations") or ():
        rv = node["RangeVar"]
        table = ctx.rv(rv)
        ctx.lock(table, mode, "LOCK TABLE")
        if rv.get("inh", False):
            for child in ctx.children(table):
                ctx.lock(child, mode, "LOCK TABLE: child")


# -- DROP --------------------------------------------------------------------------------

# What DROP names, by kind: the relkind locked when the catalog cannot say.
_DROP_RELATION = {
    "OBJECT_TABLE": "table",
    "OBJECT_VIEW": "view",
    "OBJECT_MATVIEW": "materialized view",
    "OBJECT_SEQUENCE": "sequence",
    "OBJECT_FOREIGN_TABLE": "foreign table",
}


# Objects that belong to a table: dropping or renaming one locks the table ACCESS EXCLUSIVE.
_ON_TABLE = {"OBJECT_TRIGGER": "TRIGGER", "OBJECT_POLICY": "POLICY", "OBJECT_RULE": "RULE"}


def _drop(ctx: Ctx, tree: Node) -> None:
    body = tree["DropStmt"]
    kind = body.get("removeType", "")
    cascade = body.get("behavior") == "DROP_CASCADE"
    missing_ok = bool(body.get("missing_ok"))
    for obj in body.get("objects") or ():
        items = obj.get("List", {}).get("items")
        if kind in _DROP_RELATION and items:
            name = ctx.qualified(items)
            if missing_ok and ctx.catalog is not None and ctx.rel(name) is None:
                continue
            ctx.drop_relation(
                name, cascade, f"DROP {kind[7:].replace('_', ' ')}", _DROP_RELATION[kind]
            )
            if ctx.rel(name) is None:
                ctx.destroy(f"{kind[7:].lower().replace('_', ' ')} {name}")
        elif kind == "OBJECT_INDEX" and items:
            _drop_index(ctx, ctx.qualified(items), body, missing_ok)
        elif kind == "OBJECT_SCHEMA":
            _drop_schema(ctx, obj["String"]["sval"], cascade, missing_ok)
        elif kind in _ON_TABLE and items:
            table = ctx.qualified(items[:-1])
            what = _ON_TABLE[kind]
            ctx.lock(table, AE, f"DROP {what}")
            ctx.lock(table, AS, f"DROP {what}: dependency check")
        elif kind == "OBJECT_FUNCTION" and cascade:
            _drop_function_cascade(ctx, obj)
        elif kind == "OBJECT_TYPE" and cascade:
            ctx.assume(
                "DROP TYPE ... CASCADE drops columns of that type; their tables are not named."
            )


def _drop_index(ctx: Ctx, index: str, body: DropStmt, missing_ok: bool) -> None:
    rel = ctx.rel(index)
    table = rel.table if rel is not None else None
    if table is None and ctx.inplan is not None:
        table = ctx.inplan.index_table(index)  # one the plan created
    if rel is None and table is None and ctx.catalog is not None and missing_ok:
        return
    concurrent = bool(body.get("concurrent"))
    if table is None:
        ctx.assume(f"The table of index {index} is not known (no catalog); it is locked too.")
    if concurrent:
        ctx.transactional = False
        if table is not None:
            ctx.lock(table, SUE, "DROP INDEX CONCURRENTLY")
        ctx.lock(index, SUE, "DROP INDEX CONCURRENTLY", "index")
        ctx.lock(index, AE, "DROP INDEX CONCURRENTLY: final drop", "index")
        return
    if table is not None:
        ctx.lock(table, AE, "DROP INDEX")
    ctx.lock(index, AE, "DROP INDEX", "index")


def _drop_schema(ctx: Ctx, schema: str, cascade: bool, missing_ok: bool) -> None:
    ctx.destroy(f"schema {quote(schema)}")
    if ctx.catalog is None:
        ctx.assume(f"The relations in schema {schema} are not known (no catalog); each is dropped.")
        return
    rels = ctx.catalog.in_schema(schema)
    if not cascade and rels:
        return
    for rel in rels:
        if rel.relkind in ("r", "p", "v", "m", "f") and not (
            rel.parent is not None and rel.partition_bound is not None
        ):
            ctx.drop_relation(rel.name, True, f"DROP SCHEMA {schema} CASCADE")
        elif rel.relkind == "S":
            ctx.lock(rel.name, AE, f"DROP SCHEMA {schema} CASCADE", "sequence")


def _drop_function_cascade(ctx: Ctx, obj: Node) -> None:
    owa = obj.get("ObjectWithArgs", {})
    fname = strings(owa.get("objname"))[-1:]
    if ctx.catalog is None:
        ctx.assume("DROP FUNCTION ... CASCADE drops triggers using it; their tables are not known.")
        return
    for rel in ctx.catalog.relations:
        for trg in rel.triggers:
            if fname and trg.function.rsplit(".", 1)[-1] == fname[0]:
                ctx.lock(rel.name, AE, f"trigger {trg.name} dropped (CASCADE)")


# -- CREATE ------------------------------------------------------------------------------


def _create_table(ctx: Ctx, tree: Node) -> None:
    body = tree["CreateStmt"]
    rv = body["relation"]
    table = ctx.rv(rv)
    if body.get("if_not_exists") and ctx.rel(table) is not None:
        return
    base = rv["relname"]
    ctx.create(table)
    for elt in body.get("tableElts") or ():
        if "ColumnDef" in elt:
            _create_column(ctx, table, base, elt["ColumnDef"])
        elif "Constraint" in elt:
            _create_constraint(
                ctx, table, base, elt["Constraint"], strings(elt["Constraint"].get("keys"))
            )
        elif "TableLikeClause" in elt:
            _create_like(ctx, table, base, elt["TableLikeClause"])
    parents = [ctx.rv(p["RangeVar"]) for p in body.get("inhRelations") or ()]
    if body.get("partbound") is not None and parents:
        parent = parents[0]
        ctx.lock(parent, AE, "CREATE TABLE PARTITION OF")
        prel = ctx.rel(parent)
        for child in prel.partitions if prel is not None else ():
            crel = ctx.rel(child)
            if crel is not None and crel.partition_bound == "DEFAULT":
                ctx.lock(child, AE, "CREATE TABLE PARTITION OF: default partition re-checked")
                ctx.scan(child)
        if prel is None:
            ctx.assume(f"A DEFAULT partition of {parent}, if any, is locked and scanned too.")
        if prel is not None:
            for ix in prel.indexes:
                ctx.create(ctx.new_name(f"{base}_{'_'.join(ix.columns)}_idx", table))
    else:
        for parent in parents:
            ctx.lock(parent, SUE, "CREATE TABLE INHERITS")


def _create_column(ctx: Ctx, table: str, base: str, col: ColumnDef) -> None:
    name = col["colname"]
    typ = strings(col.get("typeName", {}).get("names"))[-1:]
    if typ and typ[0] in ("serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"):
        ctx.create(ctx.new_name(f"{base}_{name}_seq", table))
    for c in col.get("constraints") or ():
        _create_constraint(ctx, table, base, c["Constraint"], [name])


def _create_constraint(ctx: Ctx, table: str, base: str, con: Constraint, cols: list[str]) -> None:
    kind = con["contype"]
    if kind == "CONSTR_PRIMARY":
        ctx.create(ctx.new_name(con.get("conname") or f"{base}_pkey", table))
    elif kind == "CONSTR_UNIQUE":
        ctx.create(ctx.new_name(con.get("conname") or f"{base}_{'_'.join(cols)}_key", table))
    elif kind == "CONSTR_EXCLUSION":
        ctx.create(ctx.new_name(con.get("conname") or f"{base}_excl", table))
    elif kind == "CONSTR_IDENTITY":
        ctx.create(ctx.new_name(f"{base}_{cols[0]}_seq", table))
    elif kind == "CONSTR_FOREIGN":
        pk = ctx.rv(con["pktable"])
        if pk != table:
            ctx.add_foreign_key(table, pk, strings(con.get("pk_attrs")), False, "REFERENCES")
            ctx.locks.pop((table, SRE), None)
            ctx.locks.pop((table, AS), None)


def _create_like(ctx: Ctx, table: str, base: str, like: TableLikeClause) -> None:
    src = ctx.rv(like["relation"])
    ctx.lock(src, AS, "CREATE TABLE LIKE")
    rel = ctx.rel(src)
    if rel is None or not like.get("options", 0):
        return
    for ix in rel.indexes:
        name = f"{base}_pkey" if ix.primary else f"{base}_{'_'.join(ix.columns)}_idx"
        ctx.create(ctx.new_name(name, table))


def _query_relations(ctx: Ctx, query: object, mode: LockMode, planned: bool, reason: str) -> None:
    """Lock what a query reads: each relation, views' base tables, and (planned) indexes."""
    for rv in range_vars(query, []):
        if not rv.get("schemaname") and rv["relname"] in ctx.ctes:
            continue  # a WITH query's name
        name = ctx.name(rv.get("schemaname"), rv["relname"])
        rel = ctx.rel(name)
        if ctx.catalog is not None and rel is None:
            continue  # a CTE or a function's name
        ctx.lock(name, mode, reason)
        for base in _view_bases(ctx, name):
            ctx.lock(base, AS, f"{reason}: table under view {name}")
            if planned:
                ctx.planner_indexes(base, AS, f"{reason}: planned")
        if planned and (rel is None or rel.relkind in ("r", "p", "m")):
            ctx.planner_indexes(name, mode, f"{reason}: planned")


def _view_bases(ctx: Ctx, view: str) -> list[str]:
    rel = ctx.rel(view)
    if rel is None or rel.relkind != "v" or ctx.catalog is None:
        return []
    return [r.name for r in ctx.catalog.relations if view in r.views]


def _create_table_as(ctx: Ctx, tree: Node) -> None:
    body = tree["CreateTableAsStmt"]
    target = ctx.rv(body["into"]["rel"])
    if body.get("if_not_exists") and ctx.rel(target) is not None:
        return
    ctx.create(target)
    _query_relations(ctx, body.get("query"), AS, True, "CREATE TABLE AS / MATERIALIZED VIEW")
    for rv in range_vars(body.get("query"), []):
        name = ctx.name(rv.get("schemaname"), rv["relname"])
        if ctx.has_storage(name) and (ctx.catalog is None or ctx.rel(name) is not None):
            ctx.scan(name)


def _create_view(ctx: Ctx, tree: Node) -> None:
    body = tree["ViewStmt"]
    view = ctx.rv(body["view"])
    if body.get("replace") and ctx.rel(view) is not None:
        ctx.lock(view, AE, "CREATE OR REPLACE VIEW", "view")
    else:
        ctx.create(view)
        if body.get("replace"):
            ctx.no_catalog(
                f"Assuming view {view} does not exist yet (else ACCESS EXCLUSIVE on it)."
            )
    _query_relations(ctx, body.get("query"), AS, False, "view definition")


def _refresh(ctx: Ctx, tree: Node) -> None:
    body = tree["RefreshMatViewStmt"]
    mv = ctx.rv(body["relation"])
    sources = [r.name for r in ctx.catalog.relations if mv in r.views] if ctx.catalog else []
    if ctx.catalog is None:
        ctx.assume(
            f"The tables {mv} reads are not known (no catalog); each is read under ACCESS SHARE."
        )
    for src in sources:
        ctx.lock(src, AS, "REFRESH MATERIALIZED VIEW: query")
        ctx.planner_indexes(src, AS, "REFRESH MATERIALIZED VIEW: query planned")
        ctx.scan(src)
    ctx.scan(mv)
    ctx.lock(mv, EX, "REFRESH MATERIALIZED VIEW", "materialized view")
    if body.get("concurrent"):
        ctx.lock(mv, AS, "REFRESH CONCURRENTLY: diff query", "materialized view")
        ctx.lock(mv, RE, "REFRESH CONCURRENTLY: applying the diff", "materialized view")
        for ix in ctx.indexes(mv, "the locks on each index"):
            ctx.lock(ix, AS, "REFRESH CONCURRENTLY: diff query", "index")
            ctx.lock(ix, RE, "REFRESH CONCURRENTLY: applying the diff", "index")
        return
    ctx.lock(mv, AE, "REFRESH MATERIALIZED VIEW", "materialized view")
    if not ctx.at_least(16):
        ctx.lock(mv, AS, "REFRESH MATERIALIZED VIEW", "materialized view")
    ctx.rewrite_table(mv, "REFRESH MATERIALIZED VIEW")


def _create_trigger(ctx: Ctx, tree: Node) -> None:
    ctx.lock(ctx.rv(tree["CreateTrigStmt"]["relation"]), SRE, "CREATE TRIGGER")


def _create_policy(ctx: Ctx, tree: Node) -> None:
    ctx.lock(ctx.rv(tree["CreatePolicyStmt"]["table"]), AE, "CREATE POLICY")


def _alter_policy(ctx: Ctx, tree: Node) -> None:
    ctx.lock(ctx.rv(tree["AlterPolicyStmt"]["table"]), AE, "ALTER POLICY")


def _create_rule(ctx: Ctx, tree: Node) -> None:
    ctx.lock(ctx.rv(tree["RuleStmt"]["relation"]), AE, "CREATE RULE")


def _create_statistics(ctx: Ctx, tree: Node) -> None:
    for node in tree["CreateStatsStmt"].get("relations") or ():
        rv = node.get("RangeVar")
        if rv is not None:
            ctx.lock(ctx.rv(rv), SUE, "CREATE STATISTICS")


def _publication(ctx: Ctx, tree: Node) -> None:
    """CREATE/ALTER PUBLICATION ... TABLE t: SHARE UPDATE EXCLUSIVE on each table named."""
    body = tree.get("CreatePublicationStmt") or tree.get("AlterPublicationStmt") or {}
    for node in body.get("pubobjects") or ():
        spec = node.get("PublicationObjSpec", {})
        rv = spec.get("pubtable", {}).get("relation")
        if rv is not None:
            ctx.lock(ctx.rv(rv), SUE, "PUBLICATION ... TABLE")


def _drop_owned(ctx: Ctx, tree: Node) -> None:
    roles = ", ".join(role_names(tree["DropOwnedStmt"].get("roles")))
    ctx.destroy(f"every object owned by {roles} in this database")
    ctx.assume(
        f"DROP OWNED BY {roles} drops each table, view, sequence, function and type {roles}"
        " owns in this database (ACCESS EXCLUSIVE on each): which ones is not known here."
    )


def _create_seq(ctx: Ctx, tree: Node) -> None:
    body = tree["CreateSeqStmt"]
    seq = ctx.rv(body["sequence"])
    if not (body.get("if_not_exists") and ctx.rel(seq) is not None):
        ctx.create(seq)


def _alter_seq(ctx: Ctx, tree: Node) -> None:
    body = tree["AlterSeqStmt"]
    seq = ctx.rv(body["sequence"])
    ctx.lock(seq, RE, "ALTER SEQUENCE", "sequence")
    ctx.lock(seq, SRE, "ALTER SEQUENCE", "sequence")
    opts = body.get("options") or []
    if any(name != "owned_by" for _, name in defnames(opts)):
        ctx.rewrite(seq)
    for opt in opts:
        d = opt.get("DefElem", {})
        if d.get("defname") == "owned_by":
            parts = strings(d.get("arg", {}).get("List", {}).get("items"))
            if len(parts) >= 2:
                ctx.lock(ctx.name(parts[-3] if len(parts) > 2 else None, parts[-2]), AS, "OWNED BY")


# -- renames, comments, grants -----------------------------------------------------------

_REL_OBJECTS = _DROP_RELATION.keys() | {"OBJECT_INDEX", "OBJECT_COLUMN", "OBJECT_TABCONSTRAINT"}


def _rename(ctx: Ctx, tree: Node) -> None:
    body = tree["RenameStmt"]
    kind = body.get("renameType", "")
    rv = body.get("relation")
    if kind in _ON_TABLE and rv is not None:
        ctx.lock(ctx.rv(rv), AE, f"ALTER {_ON_TABLE[kind]} ... RENAME")
        return
    if kind not in _REL_OBJECTS or rv is None:
        return
    rel = ctx.rv(rv)
    if kind == "OBJECT_INDEX":
        ctx.lock(rel, SUE, "ALTER INDEX RENAME", "index")
        return
    ctx.lock(rel, AE, f"RENAME ({kind[7:].lower()})")
    if kind == "OBJECT_COLUMN" and rv.get("inh", False):
        for child in ctx.children(rel):
            ctx.lock(child, AE, "RENAME COLUMN: child")
    if kind == "OBJECT_TABCONSTRAINT":
        info = ctx.rel(rel)
        con = info.constraint(body.get("subname", "")) if info is not None else None
        if con is not None and con.index is not None and con.type in ("p", "u", "x"):
            ctx.lock(con.index, SUE, "RENAME CONSTRAINT: its index renamed", "index")
        elif info is None:
            ctx.assume(
                "If the renamed constraint has an index, the index is renamed too"
                " (SHARE UPDATE EXCLUSIVE on it)."
            )


def _set_schema(ctx: Ctx, tree: Node) -> None:
    body = tree["AlterObjectSchemaStmt"]
    rv = body.get("relation")
    if body.get("objectType") in _REL_OBJECTS and rv is not None:
        ctx.lock(ctx.rv(rv), AE, "SET SCHEMA")


def _comment(ctx: Ctx, tree: Node) -> None:
    body = tree["CommentStmt"]
    kind = body.get("objtype", "")
    if kind not in _REL_OBJECTS:
        return
    items = body.get("object", {}).get("List", {}).get("items") or []
    if kind in ("OBJECT_COLUMN", "OBJECT_TABCONSTRAINT"):
        items = items[:-1]
    if items:
        ctx.lock(ctx.qualified(items), SUE, "COMMENT ON")


def _grant(ctx: Ctx, tree: Node) -> None:
    body = tree["GrantStmt"]
    if body.get("objtype") != "OBJECT_TABLE" or body.get("targtype") != "ACL_TARGET_OBJECT":
        return
    if ctx.at_least(18):
        for node in body.get("objects") or ():
            ctx.lock(ctx.rv(node["RangeVar"]), AS, "GRANT/REVOKE (PostgreSQL 18)")


# How an assumption about ALTER DOMAIN without a catalog starts (rules match on it).
DOMAIN_USERS_UNKNOWN = "Without a catalog the tables using domain"


def _domain_users(ctx: Ctx, names: list[str]) -> list[str] | None:
    """Relations with a column of domain `names` (None without a catalog)."""
    if ctx.catalog is None:
        return None
    domain = names[-1]
    schema = names[-2] if len(names) > 1 else None
    accepted = {f"{quote(schema)}.{quote(domain)}"} if schema else {quote(domain), domain}
    if schema in ctx.catalog.search_path or schema is None:
        accepted |= {quote(domain), domain}
    return [
        rel.name
        for rel in ctx.catalog.relations
        if rel.relkind in ("r", "m") and any(c.type in accepted for c in rel.columns)
    ]


def _alter_domain(ctx: Ctx, tree: Node) -> None:
    """ADD CONSTRAINT / SET NOT NULL / VALIDATE check every stored value of the domain.

    The server locks each table with a column of the domain SHARE (VALIDATE too,
    unlike VALIDATE of a table constraint; checked on 15 to 18) and scans it.
    """
    body = tree["AlterDomainStmt"]
    sub = body.get("subtype")
    con = body.get("def", {}).get("Constraint", {})
    if sub == "C" and con.get("contype") in ("CONSTR_CHECK", "CONSTR_NOTNULL"):
        if con.get("skip_validation"):
            return
        mode, what = SH, "ADD CONSTRAINT"
    elif sub == "O":
        mode, what = SH, "SET NOT NULL"
    elif sub == "V":
        mode, what = SH, "VALIDATE CONSTRAINT"
    else:
        return
    names = strings(body.get("typeName"))
    users = _domain_users(ctx, names)
    if users is None:
        ctx.assume(
            f"{DOMAIN_USERS_UNKNOWN} {'.'.join(names)} are not known: each "
            f"is locked {mode.title} and read in full to check its values."
        )
        return
    for rel in users:
        ctx.lock(rel, mode, f"ALTER DOMAIN ... {what}: values checked")
        if ctx.has_storage(rel):
            ctx.scan(rel)


# -- DML ---------------------------------------------------------------------------------


def _fk_checks(ctx: Ctx, table: str, columns: set[str] | None, inbound: bool) -> None:
    """Foreign-key checks by RI triggers: SELECT ... FOR KEY SHARE on the other table."""
    rel = ctx.rel(table)
    if rel is None or ctx.catalog is None:
        ctx.assume(
            f"Foreign keys of {table} are not known (no catalog); each check takes ROW SHARE"
            " on the other table and its indexes."
        )
        return
    if not inbound:
        for con in rel.constraints:
            if (
                con.type == "f"
                and con.references
                and (columns is None or columns & set(con.columns))
            ):
                ctx.lock(con.references, RS, f"foreign key {con.name} checked")
                ctx.planner_indexes(con.references, RS, f"foreign key {con.name} checked")
        return
    for other, con in ctx.catalog.referencing(table):
        if columns is None or columns & set(con.ref_columns):
            ctx.lock(other.name, RS, f"foreign key {con.name} checked")
            ctx.planner_indexes(other.name, RS, f"foreign key {con.name} checked")
            ctx.lock(table, RS, f"foreign key {con.name}: replacement key looked up")
            ctx.planner_indexes(table, RS, f"foreign key {con.name}: replacement key looked up")


def _insert(ctx: Ctx, tree: Node) -> None:
    body = tree["InsertStmt"]
    table = ctx.rv(body["relation"])
    ctx.lock(table, RE, "INSERT")
    if body.get("onConflictClause", {}).get("infer"):
        # ON CONFLICT (target): the planner opens every index to infer the arbiter
        ctx.planner_indexes(table, RE, "INSERT ... ON CONFLICT: arbiter inference")
    sel = body.get("selectStmt", {}).get("SelectStmt", {})
    if sel and not sel.get("valuesLists"):
        _query_relations(ctx, sel, AS, True, "INSERT ... SELECT")
    _fk_checks(ctx, table, None, inbound=False)
    _defaulted_sequences(ctx, table, body)


def _defaulted_sequences(ctx: Ctx, table: str, body: InsertStmt) -> None:
    """nextval() of a serial/identity column the INSERT leaves to its default (not in the
    column list; without one, DEFAULT or past the end of a VALUES row): ROW EXCLUSIVE on
    its sequence. The column is known by the sequence's default name, <table>_<column>_seq."""
    rel = ctx.rel(table)
    if rel is None or not rel.sequences:
        return
    listed = body.get("cols")
    names = (
        [str(t["ResTarget"]["name"]) for t in listed if "ResTarget" in t]
        if listed
        else [c.name for c in rel.columns]
    )
    given = set(names) if body.get("selectStmt") else set()  # DEFAULT VALUES: none given
    rows = body.get("selectStmt", {}).get("SelectStmt", {}).get("valuesLists") or []
    for row in rows:
        items = row.get("List", {}).get("items") or []
        given -= set(names[len(items) :])
        given -= {n for n, v in zip(names, items, strict=False) if "SetToDefault" in v}
    for seq in rel.sequences:
        base = ctx.rel_base(seq)
        col = next((c.name for c in rel.columns if base == f"{rel.relname}_{c.name}_seq"), None)
        if col is not None and col not in given:
            ctx.lock(seq, RE, f"INSERT: nextval() of {col}'s default", "sequence")


def _set_columns(body: UpdateStmt) -> set[str]:
    return {t["ResTarget"]["name"] for t in body.get("targetList") or () if "ResTarget" in t}


def _write_rows(ctx: Ctx, rv: RangeVar, verb: str, joined: list[Node] | None, join: str) -> str:
    """UPDATE / DELETE: ROW EXCLUSIVE on the table and its indexes, joined relations read."""
    table = ctx.rv(rv)
    ctx.lock(table, RE, verb)
    ctx.planner_indexes(table, RE, f"{verb}: planned")
    if joined:
        _query_relations(ctx, joined, AS, True, f"{verb} ... {join}")
    return table


def _update(ctx: Ctx, tree: Node) -> None:
    body = tree["UpdateStmt"]
    table = _write_rows(ctx, body["relation"], "UPDATE", body.get("fromClause"), "FROM")
    cols = _set_columns(body)
    _fk_checks(ctx, table, cols, inbound=False)
    _fk_checks(ctx, table, cols, inbound=True)
    if body.get("whereClause") is None:
        ctx.destroy(f"every row of {table} overwritten (UPDATE without WHERE)")


def _delete(ctx: Ctx, tree: Node) -> None:
    body = tree["DeleteStmt"]
    table = _write_rows(ctx, body["relation"], "DELETE", body.get("usingClause"), "USING")
    _fk_checks(ctx, table, None, inbound=True)
    if body.get("whereClause") is None:
        ctx.destroy(f"all rows of {table} (DELETE without WHERE)")


def _merge_into(ctx: Ctx, tree: Node) -> None:
    """MERGE: ROW EXCLUSIVE on the target and its indexes, the source read; each action's
    foreign-key checks as its INSERT/UPDATE/DELETE would run them."""
    body = tree["MergeStmt"]
    source = [body["sourceRelation"]] if "sourceRelation" in body else []
    table = _write_rows(ctx, body["relation"], "MERGE", source, "USING")
    for clause in body.get("mergeWhenClauses") or ():
        when = clause.get("MergeWhenClause", {})
        command = when.get("commandType")
        if command == "CMD_INSERT":
            _fk_checks(ctx, table, None, inbound=False)
        elif command == "CMD_UPDATE":
            targets = when.get("targetList") or ()
            cols = {t["ResTarget"]["name"] for t in targets if "ResTarget" in t}
            _fk_checks(ctx, table, cols, inbound=False)
            _fk_checks(ctx, table, cols, inbound=True)
        elif command == "CMD_DELETE":
            _fk_checks(ctx, table, None, inbound=True)


def _select(ctx: Ctx, tree: Node) -> None:
    body: SelectStmt = tree["SelectStmt"]
    into = body.get("intoClause")
    if into:
        ctx.create(ctx.rv(into["rel"]))
    mode = RS if body.get("lockingClause") else AS
    _query_relations(ctx, body, mode, True, "SELECT FOR UPDATE/SHARE" if mode == RS else "SELECT")


def _copy(ctx: Ctx, tree: Node) -> None:
    body = tree["CopyStmt"]
    rv = body.get("relation")
    if rv is None:
        _query_relations(ctx, body.get("query"), AS, True, "COPY (query)")
        return
    table = ctx.rv(rv)
    ctx.lock(
        table, RE if body.get("is_from") else AS, "COPY FROM" if body.get("is_from") else "COPY TO"
    )


def _explain(ctx: Ctx, tree: Node) -> None:
    body = tree["ExplainStmt"]
    inner = analyse(body["query"], catalog=ctx.catalog, server_version=ctx.version)
    for lk in inner.locks:
        ctx.lock(lk.relation, lk.mode, f"EXPLAIN: {lk.reason}", lk.relkind)
    if any(name == "analyze" for _, name in defnames(body.get("options"))):
        for d in inner.destroys:
            ctx.destroy(d)


def _create_database(ctx: Ctx, tree: Node) -> None:
    """CREATE DATABASE: no table locks, never inside a transaction block."""
    del tree
    ctx.transactional = False


def _drop_database(ctx: Ctx, tree: Node) -> None:
    """DROP DATABASE: destroys it; never inside a transaction block."""
    ctx.transactional = False
    ctx.destroy(f"database {tree['DropdbStmt']['dbname']}")


def _outside_transactions(ctx: Ctx, tree: Node) -> None:
    """ALTER SYSTEM, CREATE / DROP TABLESPACE, DROP SUBSCRIPTION: no table locks, never
    inside a transaction block (DROP SUBSCRIPTION drops its replication slot, unless its
    slot_name is NONE, which the statement does not say)."""
    del tree
    ctx.transactional = False


def _discard(ctx: Ctx, tree: Node) -> None:
    """DISCARD ALL never runs inside a transaction block (PLANS, SEQUENCES, TEMP may)."""
    if tree["DiscardStmt"].get("target") == "DISCARD_ALL":
        ctx.transactional = False


def _create_subscription(ctx: Ctx, tree: Node) -> None:
    """CREATE SUBSCRIPTION that creates its replication slot (by default; not with
    connect = false or create_slot = false) never runs inside a transaction block."""
    options = tree["CreateSubscriptionStmt"].get("options")
    given = {name for _, name in defnames(options)}
    if "create_slot" in given:
        slot = option_on(options, "create_slot")
    else:  # connect = false makes create_slot false by default
        slot = "connect" not in given or option_on(options, "connect")
    if slot:
        ctx.transactional = False


def _nothing(ctx: Ctx, tree: Node) -> None:
    """Statements that lock no relation (types, functions, extensions, schemas, ...)."""
    del ctx, tree


_HANDLERS: dict[str, Handler] = {
    "AlterTableStmt": alter_table,
    "IndexStmt": _create_index,
    "ReindexStmt": _reindex,
    "VacuumStmt": _vacuum,
    "ClusterStmt": _cluster,
    "TruncateStmt": _truncate,
    "LockStmt": _lock,
    "DropStmt": _drop,
    "CreateStmt": _create_table,
    "CreateTableAsStmt": _create_table_as,
    "ViewStmt": _create_view,
    "RefreshMatViewStmt": _refresh,
    "CreateTrigStmt": _create_trigger,
    "CreatePolicyStmt": _create_policy,
    "AlterPolicyStmt": _alter_policy,
    "RuleStmt": _create_rule,
    "CreateStatsStmt": _create_statistics,
    "DropOwnedStmt": _drop_owned,
    "CreatePublicationStmt": _publication,
    "AlterPublicationStmt": _publication,
    "CreateSeqStmt": _create_seq,
    "AlterSeqStmt": _alter_seq,
    "RenameStmt": _rename,
    "AlterObjectSchemaStmt": _set_schema,
    "CommentStmt": _comment,
    "GrantStmt": _grant,
    "InsertStmt": _insert,
    "UpdateStmt": _update,
    "DeleteStmt": _delete,
    "MergeStmt": _merge_into,
    "SelectStmt": _select,
    "CopyStmt": _copy,
    "ExplainStmt": _explain,
    "CreatedbStmt": _create_database,
    "DropdbStmt": _drop_database,
    "AlterSystemStmt": _outside_transactions,
    "CreateTableSpaceStmt": _outside_transactions,
    "DropTableSpaceStmt": _outside_transactions,
    "DropSubscriptionStmt": _outside_transactions,
    "CreateSubscriptionStmt": _create_subscription,
    "DiscardStmt": _discard,
    "AlterDomainStmt": _alter_domain,
    "AlterEnumStmt": _nothing,
    "CreateEnumStmt": _nothing,
    "CompositeTypeStmt": _nothing,
    "DefineStmt": _nothing,
    "CreateFunctionStmt": _nothing,
    "DoStmt": _do,
    "CallStmt": _nothing,  # the procedure's body: plan.py, when the plan creates it
    "CreateExtensionStmt": _nothing,
    "CreateSchemaStmt": _nothing,
    "TransactionStmt": _nothing,
    "VariableSetStmt": _nothing,
}
