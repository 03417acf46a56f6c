"""The SQL statements inside PL/pgSQL bodies (DO blocks, procedures), found by the server's parser.

libpg_query compiles a body into PL/pgSQL's own tree (`parse_plpgsql_json`): each
statement node has a line number relative to the body, and its SQL as text. This
module walks that tree and parses each SQL text with `analysis.parse`, so the lock
model and the rules see the statements of a block like top-level ones.

Statements under IF / CASE / loops / EXCEPTION handlers may run or not (`condition`
says when); `EXECUTE` of a constant string is parsed; any other `EXECUTE` builds its SQL
at run time and is reported as not analysable (`dynamic`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TypedDict, cast

import orjson
from pglast import parser as _parser

from pgwarden.analysis.nodes import DefElem, Node, range_vars, strings
from pgwarden.analysis.parse import parse
from pgwarden.errors import SqlParseError

__all__ = ["Inner", "body_statements", "do_body", "routine_body", "transaction_control"]

# The most of a condition's text a finding quotes.
_COND_CHARS = 80


class Expr(TypedDict, total=False):
    query: str
    parseMode: int


class ExprNode(TypedDict, total=False):
    PLpgSQL_expr: Expr


# One PL/pgSQL statement's fields: the union of the fields pgwarden reads.
class PlStmt(TypedDict, total=False):
    lineno: int
    sqlstmt: ExprNode
    query: ExprNode
    dynquery: ExprNode
    expr: ExprNode
    cond: ExprNode
    lower: ExprNode
    upper: ExprNode
    body: list[dict[str, PlStmt]]
    then_body: list[dict[str, PlStmt]]
    elsif_list: list[dict[str, PlStmt]]
    else_body: list[dict[str, PlStmt]]
    stmts: list[dict[str, PlStmt]]
    case_when_list: list[dict[str, PlStmt]]
    else_stmts: list[dict[str, PlStmt]]
    exceptions: dict[str, PlStmt]
    exc_list: list[dict[str, PlStmt]]
    action: list[dict[str, PlStmt]] | dict[str, PlStmt]


@dataclass(frozen=True, slots=True)
class Inner:
    """One SQL statement of a body, or one `EXECUTE` whose SQL is built at run time."""

    text: str  # the statement (or the EXECUTE expression)
    offset: int  # character offset in the body where it starts (best effort)
    tree: Node | None  # None: not analysable, see `dynamic`
    condition: str | None = None  # when it runs, in words; None: whenever the body runs
    dynamic: str | None = None  # why it is not analysable
    # COMMITs (or ROLLBACKs) the body runs before it, in text order: each starts a new
    # transaction (a batched backfill's `COMMIT` in its loop counts as one)
    commits: int = 0


def do_body(args: list[Node] | None) -> tuple[str | None, str]:
    """(body, language) of a DO statement's arguments (body None: not a string)."""
    body: str | None = None
    language = "plpgsql"
    for arg in args or ():
        elem: DefElem = arg.get("DefElem", {})
        value = elem.get("arg", {}).get("String", {}).get("sval")
        if elem.get("defname") == "as":
            body = value
        elif elem.get("defname") == "language" and value is not None:
            language = value.lower()
    return body, language


def routine_body(options: list[Node] | None) -> tuple[str | None, str]:
    """(body, language) of CREATE FUNCTION / PROCEDURE options (body None: not one string)."""
    body: str | None = None
    language = "sql"
    for opt in options or ():
        elem: DefElem = opt.get("DefElem", {})
        arg = elem.get("arg", {})
        if elem.get("defname") == "as":
            items = strings(arg.get("List", {}).get("items"))
            body = items[0] if len(items) == 1 else None
        elif elem.get("defname") == "language":
            language = (arg.get("String", {}).get("sval") or "sql").lower()
    return body, language


def _delimiter(body: str) -> str:
    tag = "$pgw$"
    n = 0
    while tag in body:
        n += 1
        tag = f"$pgw{n}$"
    return tag


@lru_cache(maxsize=256)
def body_statements(body: str) -> tuple[Inner, ...]:
    """The statements of a PL/pgSQL body, in order, nested branches included.

    A body the PL/pgSQL parser rejects yields one not-analysable entry that says why.
    """
    tag = _delimiter(body)
    try:
        doc = orjson.loads(_parser.parse_plpgsql_json(f"DO {tag}{body}{tag}"))
    except _parser.ParseError as exc:
        return (Inner(body, 0, None, None, f"the PL/pgSQL parser rejected it: {exc.args[0]}"),)
    walker = _Walker(body)
    for fn in cast("list[dict[str, PlStmt]]", doc):
        action = fn.get("PLpgSQL_function", {}).get("action")
        if isinstance(action, dict):
            walker.stmts([action], None)
    if not walker.ends:
        return tuple(walker.out)
    return tuple(
        replace(inner, commits=sum(1 for end in walker.ends if end <= at))
        for at, inner in enumerate(walker.out)
    )


def sql_statements(sql: str) -> tuple[Inner, ...]:
    """The statements of SQL text that a function EXECUTEs (see `executes_argument`), as a
    body's: offsets in the text; SQL the parser rejects is one not-analysable entry."""
    try:
        return tuple(Inner(p.text, p.start, p.tree) for p in parse(sql))
    except SqlParseError as exc:
        return (Inner(sql, 0, None, None, f"its SQL does not parse: {exc}"),)


def executes_argument(body: str, first: str | None) -> bool:
    """Whether a PL/pgSQL function body only EXECUTEs its first argument (`$1`, or its
    name `first`): `begin execute $1; end`, the helper some projects run migrations
    through (`select run_sql($$ ... $$)`), so the SQL of the call's string is what runs."""
    parts = body_statements(body)
    if len(parts) != 1 or parts[0].tree is not None or parts[0].condition is not None:
        return False
    arg = parts[0].text.strip()
    return arg == "$1" or (first is not None and arg.lower() == first.lower())


def transaction_control(body: str) -> str | None:
    """`COMMIT` or `ROLLBACK` when the body ends transactions itself (a batched backfill
    does): the server refuses it inside a transaction block ("invalid transaction
    termination"), so the block runs outside one or fails. None: it does not."""
    if "commit" not in body.lower() and "rollback" not in body.lower():
        return None
    tag = _delimiter(body)
    try:
        text = _parser.parse_plpgsql_json(f"DO {tag}{body}{tag}")
    except _parser.ParseError:
        return None
    if '"PLpgSQL_stmt_commit"' in text:
        return "COMMIT"
    if '"PLpgSQL_stmt_rollback"' in text:
        return "ROLLBACK"
    return None


_LOOP = "once per loop iteration, if at all"


class _Walker:
    __slots__ = ("body", "ends", "line_starts", "out")

    def __init__(self, body: str) -> None:
        self.body = body
        self.line_starts = [0]
        for i, ch in enumerate(body):
            if ch == "\n":
                self.line_starts.append(i + 1)
        self.out: list[Inner] = []
        # len(out) at each COMMIT or ROLLBACK that runs whenever the body (or its loop) does
        self.ends: list[int] = []

    def stmts(self, items: list[dict[str, PlStmt]] | None, cond: str | None) -> None:
        for item in items or ():
            for kind, stmt in item.items():
                self.stmt(kind, stmt, cond)

    def stmt(self, kind: str, s: PlStmt, cond: str | None) -> None:
        line = s.get("lineno", 1)
        if kind in ("PLpgSQL_stmt_commit", "PLpgSQL_stmt_rollback") and cond in (None, _LOOP):
            self.ends.append(len(self.out))
        if kind in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors"):
            self.dynamic(s.get("query", {}).get("PLpgSQL_expr", {}), line, cond)
        elif kind == "PLpgSQL_stmt_return_query" and "dynquery" in s:
            self.dynamic(s.get("dynquery", {}).get("PLpgSQL_expr", {}), line, cond)
        else:
            for key in ("sqlstmt", "query", "expr", "cond", "lower", "upper"):
                expr = s.get(key)
                if isinstance(expr, dict) and "PLpgSQL_expr" in expr:
                    self.expr(expr["PLpgSQL_expr"], line, cond)
        if kind == "PLpgSQL_stmt_if":
            test = _words(s.get("cond", {}).get("PLpgSQL_expr", {}).get("query", ""))
            self.stmts(s.get("then_body"), _join(cond, f"when `{test}` holds"))
            for alt in s.get("elsif_list", ()):
                branch = alt.get("PLpgSQL_if_elsif", {})
                other = _words(branch.get("cond", {}).get("PLpgSQL_expr", {}).get("query", ""))
                self.expr(branch.get("cond", {}).get("PLpgSQL_expr", {}), line, cond)
                self.stmts(
                    branch.get("stmts"),
                    _join(cond, f"when `{other}` holds (ELSIF, after `{test}` did not)"),
                )
            self.stmts(s.get("else_body"), _join(cond, f"when `{test}` does not hold (ELSE)"))
        elif kind == "PLpgSQL_stmt_case":
            for alt in s.get("case_when_list", ()):
                self.stmts(
                    alt.get("PLpgSQL_case_when", {}).get("stmts"),
                    _join(cond, "in one branch of a CASE"),
                )
            self.stmts(s.get("else_stmts"), _join(cond, "in one branch of a CASE"))
        elif kind == "PLpgSQL_stmt_block":
            self.stmts(s.get("body"), cond)
            handlers = s.get("exceptions", {}).get("PLpgSQL_exception_block", {})
            for exc in handlers.get("exc_list", ()):
                action = exc.get("PLpgSQL_exception", {}).get("action")
                self.stmts(
                    action if isinstance(action, list) else None,
                    _join(cond, "after an error, in an EXCEPTION handler"),
                )
        elif "body" in s:  # loops
            self.stmts(s.get("body"), _join(cond, _LOOP))

    def expr(self, expr: Expr, line: int, cond: str | None) -> None:
        query = expr.get("query")
        if not query:
            return
        mode = expr.get("parseMode", 0)
        if mode == 0:
            sql = query
        elif mode == 2:
            sql = f"SELECT {query}"
        elif mode == 3 and ":=" in query:
            sql = f"SELECT {query.split(':=', 1)[1]}"
        else:
            return
        try:
            trees = [p.tree for p in parse(sql)]
        except SqlParseError as exc:
            self.out.append(
                Inner(query, self.find(query, line), None, cond, f"it does not parse: {exc}")
            )
            return
        for tree in trees:
            if mode != 0 and not range_vars(tree, []):
                continue  # an expression reading no table: nothing to lock
            self.out.append(Inner(sql if mode else query, self.find(query, line), tree, cond))

    def dynamic(self, expr: Expr, line: int, cond: str | None) -> None:
        query = expr.get("query", "")
        text = _constant(query)
        at = self.find(query, line)
        if text is None:
            self.out.append(
                Inner(
                    query,
                    at,
                    None,
                    cond,
                    "its SQL is built at run time (EXECUTE of an "
                    "expression that is not a constant string)",
                )
            )
            return
        try:
            trees = [p.tree for p in parse(text)]
        except SqlParseError as exc:
            self.out.append(Inner(query, at, None, cond, f"its SQL does not parse: {exc}"))
            return
        self.out.extend(Inner(text, at, tree, cond) for tree in trees)

    def find(self, text: str, line: int) -> int:
        """Offset of `text` in the body, searched from the start of `line`."""
        start = self.line_starts[min(max(line, 1), len(self.line_starts)) - 1]
        end = self.body.find("\n", start)
        for probe in (text, text.split("  ", 1)[0], text.split(None, 1)[0] if text else ""):
            if probe:
                at = self.body.find(probe, start)
                if at >= 0 and (end < 0 or at < end):  # a statement starts on its line
                    return at
        stripped = self.body[start : end if end >= 0 else len(self.body)]
        return start + len(stripped) - len(stripped.lstrip())


def _constant(expr: str) -> str | None:
    """The value of a constant string expression (`'...'`, `$q$...$q$`), else None."""
    try:
        stmts = parse(f"SELECT {expr}")
    except SqlParseError:
        return None
    if len(stmts) != 1:
        return None
    targets = stmts[0].tree.get("SelectStmt", {}).get("targetList", [])
    if len(targets) != 1:
        return None
    val = targets[0].get("ResTarget", {}).get("val", {})
    return val.get("A_Const", {}).get("sval", {}).get("sval")


def _words(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _COND_CHARS else flat[: _COND_CHARS - 1] + "…"


def _join(outer: str | None, inner: str) -> str:
    return inner if outer is None else f"{outer}, and {inner}"
