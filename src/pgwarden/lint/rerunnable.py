"""Make a statement safe to run again after a run that stopped half-way (`lint --fix`).

`lint --fix` writes files whose transactions commit one by one, and its header
says to retry the file when a statement times out. So every statement must
survive a second run: CREATE TABLE / CREATE INDEX / ADD COLUMN / ADD VALUE get
IF NOT EXISTS, DROP gets IF EXISTS, a named ADD CONSTRAINT runs only when the
constraint is not there yet (a DO block: PostgreSQL has no IF NOT EXISTS for
constraints), a RENAME runs unless it is done already (the old name gone, the new
one there), and a named concurrent index build first drops an INVALID index of
that name: what an earlier run of this file left when the build failed or timed
out half-way (IF NOT EXISTS alone would keep the invalid index, and an ADD
CONSTRAINT ... USING INDEX would fail on it). A valid index of that name is kept:
the build ran to its end. A block sets the invalid index aside under a name of
its own (ALTER INDEX RENAME: SHARE UPDATE EXCLUSIVE on the index only), which
`DROP INDEX CONCURRENTLY IF EXISTS` then drops (a block cannot drop
concurrently); an index another session is building is left alone.

`REINDEX ... CONCURRENTLY` that is cancelled leaves its work behind: an INVALID
`<index>_ccnew` (stopped before the swap) or `<index>_ccold` (stopped after it),
which every write still maintains and a second run skips or adds to. So the
rebuild first drops those two names (concurrently) for each index it names, or
for each index of the table the catalog lists (REINDEX TABLE; without a
catalog `lint.fix` writes in the header to retry with `pgwarden apply`, which
drops them); the names are the server's (the index name cut to fit 63 bytes,
then `_ccnew` / `_ccold`).
A REINDEX TABLE also leaves a copy of its TOAST table's index, named after the
table's OID: a block finds the INVALID indexes of the table's TOAST table
(reltoastrelid; only a cancelled rebuild makes one), and of its partitions'
TOAST tables when it is partitioned (pg_partition_tree: REINDEX rebuilds each
partition's indexes; the partitions' own copies are named from the catalog by
`lint.fix`), and drops them under a short lock_timeout. A block cannot drop
concurrently: the plain DROP takes ACCESS EXCLUSIVE on the TOAST table only (not
the table), which waits for and blocks only the statements that read, write or
delete out-of-line (TOASTed) values, at most the lock_timeout (other columns'
reads and updates go on). Naming a pg_toast object needs USAGE on that schema
(superusers have it): without it (or without owning the table) the block warns
with the DROP for a superuser to run, and the rebuild skips the copy with a
warning of its own.

`DETACH PARTITION ... CONCURRENTLY` that is cancelled after its first
transaction leaves the partition "detach pending", and running it again fails
("already pending detach"): it is preceded by a block that finishes such a
detach with `DETACH PARTITION ... FINALIZE` (allowed in a transaction). A
detach that completed cannot be skipped in SQL (it cannot run in a block):
psql running the file again stops there with "is not a partition", having
changed nothing; `pgwarden apply` records it as done (`detached`), so the
file's header says to retry with it.

The user's text is kept: a keyword is inserted where it belongs and the result
is checked against the parse tree with the flag set; when the two differ (an
unusual spelling) the statement is deparsed instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import pglast
from pglast import ast
from pglast.enums import AlterTableType, ObjectType
from pglast.stream import RawStream

__all__ = ["detaches_concurrently", "rerunnable"]

_ADD_COLUMN = re.compile(
    r"\bADD\s+(?:COLUMN\s+)?(?!IF\b|CONSTRAINT\b|PRIMARY\b|UNIQUE\b|CHECK\b|FOREIGN\b|EXCLUDE\b"
    r"|VALUE\b)",
    re.I,
)
_DROP_MEMBER = re.compile(
    r"\bDROP\s+(COLUMN\s+|CONSTRAINT\s+)?(?!IF\b|NOT\b|DEFAULT\b|IDENTITY\b|EXPRESSION\b)", re.I
)
_INDEX = re.compile(r"\bINDEX\s+(CONCURRENTLY\s+)?", re.I)
_TABLE = re.compile(r"\bTABLE\s+", re.I)
_DROP = re.compile(
    r"^(\s*DROP\s+(?:MATERIALIZED\s+VIEW|FOREIGN\s+TABLE|INDEX\s+CONCURRENTLY|[A-Z]+))\s+", re.I
)
_VALUE = re.compile(r"\bADD\s+VALUE\s+", re.I)


def _deparse(node: Any) -> str:
    return str(RawStream()(node))


def _text(sql: str, node: Any, edit: Callable[[str], str]) -> str:
    """`edit(sql)` when it parses to `node`, else `node` deparsed."""
    want = _deparse(node)
    candidate = edit(sql)
    try:
        got = pglast.parse_sql(candidate)
    except pglast.parser.ParseError:
        return want
    return candidate if len(got) == 1 and _deparse(got[0].stmt) == want else want


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _guarded_constraint(sql: str, node: Any) -> str | None:
    """A named ADD CONSTRAINT that runs only when the table has no constraint of that name."""
    cmds: list[Any] = list(node.cmds or ())
    if len(cmds) != 1 or cmds[0].subtype != AlterTableType.AT_AddConstraint:
        return None
    con = cmds[0].def_
    if con is None or not con.conname:
        return None
    table = _deparse(node.relation)
    return (
        "DO $pgwarden$ BEGIN\n"
        "  IF NOT EXISTS (SELECT FROM pg_constraint\n"
        f"                 WHERE conrelid = {_literal(table)}::regclass\n"
        f"                   AND conname = {_literal(con.conname)}) THEN\n"
        f"    {sql.strip().rstrip(';')};\n"
        "  END IF;\n"
        "END $pgwarden$"
    )


_RENAMED_RELATIONS = frozenset(
    {
        ObjectType.OBJECT_TABLE,
        ObjectType.OBJECT_INDEX,
        ObjectType.OBJECT_SEQUENCE,
        ObjectType.OBJECT_VIEW,
        ObjectType.OBJECT_MATVIEW,
        ObjectType.OBJECT_FOREIGN_TABLE,
    }
)


def _guarded_rename(sql: str, node: Any) -> str | None:
    """A RENAME of a relation, column or constraint that runs unless it is done already
    (the old name gone, the new one there); otherwise it runs, and fails as it would."""
    rel = node.relation
    if rel is None:
        return None
    table = _relation(rel.schemaname, rel.relname)
    kind = node.renameType
    if kind == ObjectType.OBJECT_COLUMN:
        old, new = _has_column(table, node.subname), _has_column(table, node.newname)
    elif kind == ObjectType.OBJECT_TABCONSTRAINT:
        old, new = _has_constraint(table, node.subname), _has_constraint(table, node.newname)
    elif kind in _RENAMED_RELATIONS:
        old = f"to_regclass({_literal(table)}) IS NOT NULL"
        new = f"to_regclass({_literal(_relation(rel.schemaname, node.newname))}) IS NOT NULL"
    else:
        return None
    return (
        "DO $pgwarden$ BEGIN\n"
        f"  IF {old}\n"
        f"     OR NOT {new} THEN\n"
        f"    {sql.strip().rstrip(';')};\n"
        "  END IF;\n"
        "END $pgwarden$"
    )


def _has_column(table: str, column: str) -> str:
    return (
        "EXISTS (SELECT FROM pg_attribute\n"
        f"             WHERE attrelid = to_regclass({_literal(table)})\n"
        f"               AND attname = {_literal(column)} AND attnum > 0 AND NOT attisdropped)"
    )


def _has_constraint(table: str, name: str) -> str:
    return (
        "EXISTS (SELECT FROM pg_constraint\n"
        f"             WHERE conrelid = to_regclass({_literal(table)})\n"
        f"               AND conname = {_literal(name)})"
    )


def rerunnable(sql: str, *, indexes: Sequence[str] = (), lock_timeout_ms: int = 1000) -> list[str]:
    """`sql` (one statement, no `;`) as statements that may run again.

    `indexes`: the indexes a REINDEX TABLE rebuilds, when the catalog knows them
    (their leftovers are dropped first). `lock_timeout_ms`: the bound of a block's
    lock wait.
    """
    try:
        parsed = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return [sql]
    if len(parsed) != 1:
        return [sql]
    node: Any = parsed[0].stmt
    kind = type(node).__name__
    if kind == "IndexStmt" and node.idxname:
        text = sql
        if not node.if_not_exists:
            node.if_not_exists = True
            text = _text(sql, node, lambda s: _INDEX.sub(r"INDEX \1IF NOT EXISTS ", s, count=1))
        if node.concurrent:
            return [*_invalid_index_cleanup(node.relation.schemaname, node.idxname), text]
        return [text]
    if kind == "CreateStmt" and not node.if_not_exists and not node.partbound:
        node.if_not_exists = True
        return [_text(sql, node, lambda s: _TABLE.sub("TABLE IF NOT EXISTS ", s, count=1))]
    if kind == "DropStmt" and not node.missing_ok:
        node.missing_ok = True
        return [_text(sql, node, lambda s: _DROP.sub(r"\1 IF EXISTS ", s, count=1))]
    if kind == "AlterEnumStmt" and node.newVal and not node.oldVal and not node.skipIfNewValExists:
        node.skipIfNewValExists = True
        return [_text(sql, node, lambda s: _VALUE.sub("ADD VALUE IF NOT EXISTS ", s, count=1))]
    if kind == "ReindexStmt" and _concurrent(node):
        toast = _toast_leftovers(node, lock_timeout_ms)
        return [*_reindex_leftovers(node, indexes), *toast, sql]
    if kind == "RenameStmt":
        renamed = _guarded_rename(sql, node)
        return [renamed] if renamed is not None else [sql]
    if kind == "AlterTableStmt":
        finalize = _finalize_pending_detach(node)
        if finalize is not None:
            return [finalize, sql]
        guarded = _guarded_constraint(sql, node)
        if guarded is not None:
            return [guarded]
        changed = False
        for cmd in node.cmds or ():
            if (
                cmd.subtype
                in (
                    AlterTableType.AT_AddColumn,
                    AlterTableType.AT_DropColumn,
                    AlterTableType.AT_DropConstraint,
                )
                and not cmd.missing_ok
            ):
                cmd.missing_ok = changed = True
        if changed:
            return [_text(sql, node, _alter_edit)]
    return [sql]


_ASIDE = "pgwarden_invalid"


def _invalid_index_cleanup(schema: str | None, index: str) -> list[str]:
    """A block setting an INVALID index named `index` aside (renamed, unless another
    session is building it), then the concurrent drop of what it set aside."""
    name = _relation(schema, index)
    aside = _leftover_name(index, _ASIDE)
    return [
        "DO $pgwarden$ BEGIN\n"
        "  IF EXISTS (SELECT FROM pg_index\n"
        f"             WHERE indexrelid = to_regclass({_literal(name)})\n"
        "               AND NOT indisvalid)\n"
        "     AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index\n"
        f"                     WHERE index_relid = to_regclass({_literal(name)})) THEN\n"
        f"    ALTER INDEX {name} RENAME TO {_relation(None, aside)};\n"
        "  END IF;\n"
        "END $pgwarden$",
        f"DROP INDEX CONCURRENTLY IF EXISTS {_relation(schema, aside)}",
    ]


def _relation(schema: str | None, name: str) -> str:
    """`schema.name` as SQL, quoted where it must be."""
    return _deparse(ast.RangeVar(schemaname=schema, relname=name, inh=True, relpersistence="p"))


def _alter_edit(sql: str) -> str:
    sql = _ADD_COLUMN.sub("ADD COLUMN IF NOT EXISTS ", sql)
    return _DROP_MEMBER.sub(lambda m: f"DROP {m.group(1) or 'COLUMN '}IF EXISTS ", sql)


_NAMEDATALEN = 64


def _concurrent(node: Any) -> bool:
    return any(
        getattr(p, "defname", None) == "concurrently" and (p.arg is None or _true(p.arg))
        for p in node.params or ()
    )


def _true(arg: Any) -> bool:
    """A DefElem value read as a boolean option (true, on, 1, or a boolean constant)."""
    value = getattr(arg, "boolval", getattr(arg, "ival", getattr(arg, "sval", True)))
    return str(value).lower() not in ("false", "off", "0", "no")


def _leftover_name(index: str, label: str) -> str:
    """The name PostgreSQL gives a REINDEX CONCURRENTLY copy (makeObjectName)."""
    room = _NAMEDATALEN - 1 - len(label) - 1
    raw = index.encode("utf-8")
    if len(raw) > room:  # cut on a character boundary, as pg_mbcliplen does
        raw = raw[:room]
        while raw and (raw[-1] & 0xC0) == 0x80:
            raw = raw[:-1]
        if raw and raw[-1] >= 0xC0:
            raw = raw[:-1]
    return f"{raw.decode('utf-8')}_{label}"


def _reindex_leftovers(node: Any, indexes: Sequence[str]) -> list[str]:
    """DROP INDEX CONCURRENTLY IF EXISTS of the `_ccnew` / `_ccold` copies a cancelled
    REINDEX ... CONCURRENTLY of the same indexes left."""
    kind = node.kind.name.rsplit("_", 1)[-1].lower()
    if kind == "index" and node.relation is not None:
        names = [(node.relation.schemaname, node.relation.relname)]
    elif kind == "table":
        schema = node.relation.schemaname if node.relation is not None else None
        names = [
            (i.rsplit(".", 1)[0], i.rsplit(".", 1)[1]) if "." in i else (schema, i) for i in indexes
        ]
    else:
        return []
    from psycopg import sql as psql

    out = []
    for schema, name in names:
        for label in ("ccnew", "ccold"):
            parts = [p for p in (schema, _leftover_name(name, label)) if p]
            ident = ".".join(psql.Identifier(p).as_string(None) for p in parts)
            out.append(f"DROP INDEX CONCURRENTLY IF EXISTS {ident}")
    return out


_TOAST_REASON = "drops the INVALID copies of the TOAST index a cancelled rebuild left"


def _toast_leftovers(node: Any, lock_timeout_ms: int) -> list[str]:
    """For REINDEX TABLE: a block dropping the INVALID copies of the table's TOAST index
    a cancelled rebuild left (named after the table's OID); a partitioned table's: of
    its partitions' TOAST indexes, every level (REINDEX rebuilds each partition's)."""
    if node.kind.name.rsplit("_", 1)[-1].lower() != "table" or node.relation is None:
        return []
    table = _deparse(node.relation)
    return [
        f"-- pgwarden: ignore PW133 {_TOAST_REASON}\n"
        "DO $pgwarden$ DECLARE leftover regclass; BEGIN\n"
        f"  SET LOCAL lock_timeout = '{lock_timeout_ms}ms';\n"
        "  FOR leftover IN SELECT i.indexrelid::regclass FROM pg_index i\n"
        "                  JOIN pg_class t ON t.reltoastrelid = i.indrelid\n"
        f"                  WHERE t.oid IN (SELECT to_regclass({_literal(table)}) UNION\n"
        "                                  SELECT relid FROM pg_partition_tree(\n"
        f"                                    to_regclass({_literal(table)})))\n"
        "                    AND NOT i.indisvalid\n"
        "  LOOP\n"
        "    BEGIN\n"
        "      EXECUTE format('DROP INDEX %s', leftover);\n"
        "    EXCEPTION WHEN insufficient_privilege THEN\n"
        "      RAISE WARNING 'INVALID index % left by a cancelled REINDEX CONCURRENTLY: %',\n"
        "        leftover, SQLERRM USING HINT = format('a superuser can drop it: "
        "DROP INDEX CONCURRENTLY %s', leftover);\n"
        "    END;\n"
        "  END LOOP;\n"
        "END $pgwarden$"
    ]


def detaches_concurrently(sql: str) -> bool:
    """`sql` is one ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY."""
    try:
        parsed = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return False
    node: Any = parsed[0].stmt if len(parsed) == 1 else None
    if type(node).__name__ != "AlterTableStmt":
        return False
    cmds: list[Any] = list(node.cmds or ())
    return (
        len(cmds) == 1
        and cmds[0].subtype == AlterTableType.AT_DetachPartition
        and cmds[0].def_ is not None
        and bool(cmds[0].def_.concurrent)
    )


def _finalize_pending_detach(node: Any) -> str | None:
    """A block finishing an interrupted DETACH PARTITION ... CONCURRENTLY of the same
    partition (one left "detach pending"), before the statement runs again."""
    cmds: list[Any] = list(node.cmds or ())
    if len(cmds) != 1 or cmds[0].subtype != AlterTableType.AT_DetachPartition:
        return None
    pcmd = cmds[0].def_
    if pcmd is None or not pcmd.concurrent or pcmd.name is None:
        return None
    parent, part = _deparse(node.relation), _deparse(pcmd.name)
    return (
        "DO $pgwarden$ BEGIN\n"
        "  IF EXISTS (SELECT FROM pg_inherits\n"
        f"             WHERE inhrelid = to_regclass({_literal(part)})\n"
        f"               AND inhparent = to_regclass({_literal(parent)})\n"
        "               AND inhdetachpending) THEN\n"
        f"    ALTER TABLE {parent} DETACH PARTITION {part} FINALIZE;\n"
        "  END IF;\n"
        "END $pgwarden$"
    )
