"""Make a statement safe to run again after a run that stopped half-way (`lint --fix`).

`lint --fix` writes files whose transactions commit one by one, and its header
says to retry the file when a statement times out. So every statement must
survive a second run: CREATE TABLE / CREATE INDEX / ADD COLUMN / ADD VALUE get
IF NOT EXISTS, DROP gets IF EXISTS, a named ADD CONSTRAINT runs only when the
constraint is not there yet (a DO block: PostgreSQL has no IF NOT EXISTS for
constraints), and a concurrent index build whose original statement had no
IF NOT EXISTS first drops an index of that name (concurrently): the original
would have failed on an existing one, so such an index is what an earlier run
of this file left, typically INVALID after a timeout (IF NOT EXISTS alone
would keep the invalid index).

The user's text is kept: a keyword is inserted where it belongs and the result
is checked against the parse tree with the flag set; when the two differ (an
unusual spelling) the statement is deparsed instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pglast
from pglast.enums import AlterTableType
from pglast.stream import RawStream

__all__ = ["rerunnable"]

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


def rerunnable(sql: str, *, drop_leftover: bool) -> list[str]:
    """`sql` (one statement, no `;`) as statements that may run again.

    `drop_leftover`: a concurrent build may drop an index of its name first (the
    caller knows no other index of that name can exist).
    """
    try:
        parsed = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return [sql]
    if len(parsed) != 1:
        return [sql]
    node: Any = parsed[0].stmt
    kind = type(node).__name__
    if kind == "IndexStmt" and node.idxname and not node.if_not_exists:
        node.if_not_exists = True
        text = _text(sql, node, lambda s: _INDEX.sub(r"INDEX \1IF NOT EXISTS ", s, count=1))
        if node.concurrent and drop_leftover:
            schema = node.relation.schemaname
            name = f"{schema}.{node.idxname}" if schema else node.idxname
            drop = pglast.parse_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {_ident(name)}")
            return [_deparse(drop[0].stmt), text]
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
    if kind == "AlterTableStmt":
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


def _alter_edit(sql: str) -> str:
    sql = _ADD_COLUMN.sub("ADD COLUMN IF NOT EXISTS ", sql)
    return _DROP_MEMBER.sub(lambda m: f"DROP {m.group(1) or 'COLUMN '}IF EXISTS ", sql)


def _ident(dotted: str) -> str:
    from psycopg import sql as psql

    return ".".join(psql.Identifier(p).as_string(None) for p in dotted.split("."))
