"""Share of a table's rows a WHERE clause selects, from a snapshot's column statistics.

A small version of the planner's estimator: `col = const`, `col <> const`,
`col IN (...)`, `col IS [NOT] NULL`, `col < | <= | > | >= const`, combined with
AND, OR and NOT (independent columns assumed, as the planner does). The current
time (`now()`, `CURRENT_TIMESTAMP`, `CURRENT_DATE`, ..., optionally plus or minus
an interval or a number of days) counts as a constant: the time the snapshot was
taken. Anything else is not estimated (None).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pgwarden.analysis.nodes import A_Const, A_Expr, Node, ident, strings

if TYPE_CHECKING:  # a snapshot's types: pg.stats is loaded with a snapshot
    from pgwarden.pg.stats import ColumnStats

__all__ = ["literal", "nearly_every_row", "selectivity"]

# The planner's default selectivity for an equality it knows nothing about.
_DEFAULT_EQ = 0.005


def selectivity(
    where: Node,
    columns: Mapping[str, ColumnStats],
    rows: int,
    now: datetime | None = None,
    joined: frozenset[str] | None = None,
) -> float | None:
    """Estimated share (0..1) of `rows` rows that `where` selects; None when unknown.

    `now`: what the current time is for the statement (the snapshot's time); without
    it a comparison with the current time is not estimated. `joined`: the statement
    joins other tables (UPDATE ... FROM, DELETE ... USING) and these are the names its
    target goes by; a join condition `target.col = other.col` then keeps every target
    row whose `col` is set (each has its match, as through a foreign key).
    """
    s = _sel(where, columns, rows, now, joined)
    return None if s is None else min(1.0, max(0.0, s))


def _sel(
    node: Node,
    columns: Mapping[str, ColumnStats],
    rows: int,
    now: datetime | None,
    joined: frozenset[str] | None = None,
) -> float | None:
    boolean = node.get("BoolExpr")
    if boolean is not None:
        parts = [_sel(a, columns, rows, now, joined) for a in boolean.get("args", ())]
        if any(p is None for p in parts):
            return None
        known = [p for p in parts if p is not None]
        op = boolean.get("boolop")
        if op == "AND_EXPR":
            out = 1.0
            for p in known:
                out *= p
            return out
        if op == "OR_EXPR":
            miss = 1.0
            for p in known:
                miss *= 1.0 - p
            return 1.0 - miss
        if not known:
            return None
        # NOT of a comparison: rows where it is NULL are not selected either (the planner
        # turns NOT (a = b) into a <> b).
        args = boolean.get("args", [])
        inner = args[0].get("A_Expr") if args else None
        col = _column(inner.get("lexpr", {}), columns) if inner is not None else None
        return 1.0 - known[0] - (col.null_frac if col is not None else 0.0)
    null_test = node.get("NullTest")
    if null_test is not None:
        col = _column(null_test.get("arg", {}), columns)
        if col is None:
            return None
        is_null = null_test.get("nulltesttype") == "IS_NULL"
        return col.null_frac if is_null else 1.0 - col.null_frac
    expr = node.get("A_Expr")
    if expr is not None:
        return _expr(expr, columns, rows, now, joined)
    return None


def _expr(
    expr: A_Expr,
    columns: Mapping[str, ColumnStats],
    rows: int,
    now: datetime | None,
    joined: frozenset[str] | None = None,
) -> float | None:
    ops = strings(expr.get("name"))
    if len(ops) != 1:
        return None
    op = ops[0]
    left, right = expr.get("lexpr", {}), expr.get("rexpr", {})
    kind = expr.get("kind")
    if kind == "AEXPR_IN":
        col = _column(left, columns)
        items = right.get("List", {}).get("items", [])
        values = [_const(i, now) for i in items]
        if col is None or any(v is None for v in values):
            return None
        hit = sum(_eq(col, v, rows) for v in values if v is not None)
        return hit if op == "=" else 1.0 - col.null_frac - hit
    if kind != "AEXPR_OP":
        return None
    if joined is not None and op == "=":
        share = _join(left, right, columns, joined)
        if share is not None:
            return share
    col, value = _column(left, columns), _const(right, now)
    if col is None:  # const op column: flip the comparison
        col, value = _column(right, columns), _const(left, now)
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
    if col is None or value is None:
        return None
    if op == "=":
        return _eq(col, value, rows)
    if op in ("<>", "!="):
        return 1.0 - col.null_frac - _eq(col, value, rows)
    if op in ("<", "<=", ">", ">="):
        return _range(col, value, op)
    return None


def _sql(names: list[str]) -> str:
    """`a.b` of a column reference for a message, each name quoted as quote_ident() does."""
    return ".".join(ident(n) for n in names)


def _ref(node: Node) -> list[str] | None:
    cast = node.get("TypeCast")
    if cast is not None:
        node = cast.get("arg", {})
    ref = node.get("ColumnRef")
    return strings(ref.get("fields")) if ref is not None else None


def _join(
    left: Node, right: Node, columns: Mapping[str, ColumnStats], target: frozenset[str]
) -> float | None:
    """`a.x = b.y` joining the target to another table: the target rows whose column is set."""
    a, b = _ref(left), _ref(right)
    if not a or not b:
        return None
    mine = [r for r in (a, b) if len(r) > 1 and r[-2] in target]
    if not mine:  # unqualified: the side that names a column of the target
        mine = [r for r in (a, b) if len(r) == 1 and r[0] in columns]
    if len(mine) != 1:
        return None
    col = columns.get(mine[0][-1])
    return None if col is None else 1.0 - col.null_frac


def _column(node: Node, columns: Mapping[str, ColumnStats]) -> ColumnStats | None:
    cast = node.get("TypeCast")
    if cast is not None:
        node = cast.get("arg", {})
    ref = node.get("ColumnRef")
    if ref is None:
        return None
    names = strings(ref.get("fields"))
    return columns.get(names[-1]) if names else None


_NOW_FUNCS = {"now", "transaction_timestamp", "statement_timestamp", "clock_timestamp"}
_NOW_SVF = {
    "SVFOP_CURRENT_TIMESTAMP",
    "SVFOP_CURRENT_TIMESTAMP_N",
    "SVFOP_LOCALTIMESTAMP",
    "SVFOP_LOCALTIMESTAMP_N",
    "SVFOP_CURRENT_DATE",
}
_UNITS = {
    "second": 1,
    "sec": 1,
    "minute": 60,
    "min": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "mon": 30 * 86400,
    "year": 365 * 86400,
}
_INTERVAL_PART = re.compile(r"(-?\d+(?:\.\d+)?)\s*([a-z]+)")


def _is_now(node: Node) -> bool:
    call = node.get("FuncCall")
    if call is not None:
        names = strings(call.get("funcname"))
        return not call.get("args") and bool(names) and names[-1] in _NOW_FUNCS
    svf = node.get("SQLValueFunction")
    return isinstance(svf, dict) and svf.get("op") in _NOW_SVF


def _seconds(node: Node) -> float | None:
    """An interval literal ('30 days', '1 hour 30 minutes') or a number of days, in seconds."""
    cast = node.get("TypeCast")
    if cast is not None:
        node = cast.get("arg", {})
    const = node.get("A_Const")
    if const is None:
        return None
    if "ival" in const:
        return float(const["ival"].get("ival", 0)) * 86400  # date +/- integer: days
    text = str(const.get("sval", {}).get("sval", "")).lower()
    parts = _INTERVAL_PART.findall(text)
    total = 0.0
    for number, unit in parts:
        size = _UNITS.get(unit.rstrip("s")) or _UNITS.get(unit)
        if size is None:
            return None
        total += float(number) * size
    return total if parts else None


def _time(node: Node, now: datetime | None) -> datetime | None:
    """The moment a current-time expression stands for (None: not one)."""
    if now is None:
        return None
    if _is_now(node):
        return now
    expr = node.get("A_Expr")
    if expr is None or expr.get("kind") != "AEXPR_OP":
        return None
    op = strings(expr.get("name"))
    base = _time(expr.get("lexpr", {}), now)
    delta = _seconds(expr.get("rexpr", {}))
    if base is None or delta is None or op not in (["+"], ["-"]):
        return None
    return base + timedelta(seconds=delta if op == ["+"] else -delta)


def _const(node: Node, now: datetime | None = None) -> str | None:
    moment = _time(node, now)
    if moment is not None:  # compares as the statistics print times: 'YYYY-MM-DD HH:MM:SS'
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    cast = node.get("TypeCast")
    if cast is not None:
        node = cast.get("arg", {})
    const: A_Const | None = node.get("A_Const")
    if const is None or const.get("isnull"):
        return None
    if "ival" in const:
        return str(const["ival"].get("ival", 0))
    if "fval" in const:
        return const["fval"].get("fval", "0")
    if "sval" in const:
        return const["sval"].get("sval", "")
    if "boolval" in const:
        return "true" if const["boolval"].get("boolval") else "false"
    return None


def _shown(node: Node) -> str:
    """A constant as SQL writes it: a string quoted, so that '' does not vanish."""
    inner = node.get("TypeCast", {}).get("arg", node)
    text = _const(node) or ""
    if "sval" in inner.get("A_Const", {}):
        return "'" + text.replace("'", "''") + "'"
    return text


def _distinct(col: ColumnStats, rows: int) -> float:
    return col.n_distinct if col.n_distinct > 0 else -col.n_distinct * rows


def _same(a: str, b: str) -> bool:
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return x == y
    if {a.lower(), b.lower()} <= {"t", "true", "f", "false"}:
        return a.lower()[0] == b.lower()[0]
    return a == b


def _eq(col: ColumnStats, value: str, rows: int) -> float:
    for v, f in zip(col.mcv, col.mcf, strict=False):
        if _same(v, value):
            return f
    rest = 1.0 - col.null_frac - sum(col.mcf)
    others = _distinct(col, rows) - len(col.mcv)
    if others >= 1:
        return max(0.0, rest) / others
    return _DEFAULT_EQ if not col.mcv else 0.0


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _position(text: str) -> float | None:
    """Where a value lies on a line, for interpolating within a histogram bucket: a
    number, or a date/time as seconds (no offset: read as UTC)."""
    number = _number(text)
    if number is not None:
        return number
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _below(a: str, b: str) -> bool:
    x, y = _number(a), _number(b)
    return x < y if x is not None and y is not None else a < b


def _range(col: ColumnStats, value: str, op: str) -> float:
    """Share of rows with `col op value`: MCVs that match plus the histogram's part."""
    less = op in ("<", "<=")
    mcv_part = sum(
        f
        for v, f in zip(col.mcv, col.mcf, strict=False)
        if (_below(v, value) if less else _below(value, v)) or ("=" in op and _same(v, value))
    )
    rest = max(0.0, 1.0 - col.null_frac - sum(col.mcf))
    bounds = col.bounds
    if len(bounds) < 2:
        return mcv_part + rest / 3  # the planner's default for an inequality
    below = _fraction_below(bounds, value)
    return mcv_part + rest * (below if less else 1.0 - below)


def _fraction_below(bounds: tuple[str, ...], value: str) -> float:
    """Share of the histogram below `value` (linear within a bucket for numbers, dates
    and times)."""
    if not _below(bounds[0], value):
        return 0.0
    if not _below(value, bounds[-1]):
        return 1.0
    buckets = len(bounds) - 1
    for i in range(buckets):
        lo, hi = bounds[i], bounds[i + 1]
        if _below(value, hi):
            x, a, b = _position(value), _position(lo), _position(hi)
            inside = 0.5
            if x is not None and a is not None and b is not None and b > a:
                inside = min(1.0, max(0.0, (x - a) / (b - a)))
            return (i + inside) / buckets
    return 1.0


# Far enough ahead (or back) that no real row's timestamp lies beyond it.
_FUTURE_YEAR = 2100
_PAST_YEAR = 1900
_YEAR = re.compile(r"^\s*(-?\d{4,})-\d{1,2}-\d{1,2}")


def literal(node: Node) -> str | None:
    """The value of a constant (`'x'`, `42`, `false`, `'x'::text`) as text; None otherwise."""
    return _const(node)


def nearly_every_row(
    where: Node,
    target: frozenset[str],
    *,
    nulls: frozenset[str] = frozenset(),
    defaults: Mapping[str, str] | None = None,
) -> str | None:
    """Why `where` holds for (nearly) every row of the table without any statistics, or
    None: each AND-ed condition is one that real rows meet: a time column before the
    current time (not one named for instants to come: expires_at, valid_until, ...) or a
    date in 2100+, a key (`id`, `*_id`) `> 0`, `>= 1` or `IS NOT NULL`,
    or a join of the target to another table (`target.col = other.col`, UPDATE ... FROM or
    DELETE ... USING). `target`: the names the statement's table goes by. `nulls`: columns
    the plan added without a default (NULL in every existing row: `IS NULL` holds);
    `defaults`: columns it added with a constant default (`= it` and `IS NOT NULL` hold)."""
    known = defaults or {}
    boolean = where.get("BoolExpr")
    if boolean is not None:
        if boolean.get("boolop") != "AND_EXPR":
            return None
        reasons = [
            nearly_every_row(arg, target, nulls=nulls, defaults=known)
            for arg in boolean.get("args", ())
        ]
        if not reasons or any(r is None for r in reasons):
            return None
        return " and ".join(r for r in reasons if r is not None)
    null_test = where.get("NullTest")
    if null_test is not None:
        col = _ref(null_test.get("arg", {}))
        is_null = null_test.get("nulltesttype") == "IS_NULL"
        if col and is_null and col[-1] in nulls:
            return (
                f"{_sql(col)} IS NULL holds for every existing row (the plan added "
                f"{_sql(col[-1:])} without a default)"
            )
        if col and not is_null and col[-1] in known:
            return (
                f"{_sql(col)} IS NOT NULL holds for every existing row (the plan added "
                f"{_sql(col[-1:])} with a default)"
            )
        if not is_null and col and _key_like(col[-1]):
            return f"{_sql(col)} IS NOT NULL holds for every row with a key"
        return None
    expr = where.get("A_Expr")
    if expr is None or expr.get("kind") != "AEXPR_OP" or len(strings(expr.get("name"))) != 1:
        return None
    op = strings(expr.get("name"))[0]
    left, right = expr.get("lexpr", {}), expr.get("rexpr", {})
    if op == "=":
        for col, value in ((_ref(left), right), (_ref(right), left)):
            if col and col[-1] in known and _const(value) == known[col[-1]]:
                return (
                    f"{_sql(col)} = {_shown(value)} holds for every existing row (the "
                    f"plan added {_sql(col[-1:])} with that default)"
                )
        return _joins(left, right, target)
    if _ref(left) is None:  # const op column: flip the comparison
        left, right = right, left
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
    col = _ref(left)
    if col is None or op not in ("<", "<=", ">", ">="):
        return None
    name = _sql(col)
    if op in ("<", "<=") and _not_before_now(right) and not _holds_future(col[-1]):
        return f"{name} {op} the current time holds for every row dated in the past"
    year = _year(right)
    if year is not None and (
        (op in ("<", "<=") and year >= _FUTURE_YEAR) or (op in (">", ">=") and year < _PAST_YEAR)
    ):
        return f"{name} {op} a date in {year} holds for every row with a real date"
    number = _const(right)
    if _key_like(col[-1]) and number is not None and number.lstrip("-").isdigit():
        bound = int(number)
        if (op == ">" and bound <= 0) or (op == ">=" and bound <= 1):
            return f"{name} {op} {bound} holds for every generated key"
    return None


# Words of a time column that holds instants to come (expires_at, valid_until,
# scheduled_for, "deadlineAt"): `< now()` there selects the ones passed, not every row.
_FUTURE_WORDS = (
    "expir",
    "until",
    "deadline",
    "due",
    "valid",
    "end",
    "schedul",
    "next",
    "retry",
    "lease",
    "ttl",
    "remind",
    "purge",
    "lock",
)


def _holds_future(column: str) -> bool:
    words = re.findall(r"[a-z]+|[A-Z][a-z]*", column)
    return any(w.lower().startswith(_FUTURE_WORDS) for w in words)


def _key_like(column: str) -> bool:
    low = column.lower()
    return low == "id" or low.endswith("_id") or (column.endswith("Id") and len(column) > 2)


def _not_before_now(node: Node) -> bool:
    """The current time, or the current time plus a positive interval."""
    if _is_now(node):
        return True
    expr = node.get("A_Expr")
    if expr is None or strings(expr.get("name")) != ["+"]:
        return False
    delta = _seconds(expr.get("rexpr", {}))
    return _is_now(expr.get("lexpr", {})) and delta is not None and delta >= 0


def _year(node: Node) -> int | None:
    """The year of a date or timestamp literal ('2100-01-01', 'infinity': 9999)."""
    text = _const(node)
    if text is None:
        return None
    if text.strip().lower() in ("infinity", "+infinity"):
        return 9999
    if text.strip().lower() == "-infinity":
        return -9999
    match = _YEAR.match(text)
    return int(match.group(1)) if match else None


def _joins(left: Node, right: Node, target: frozenset[str]) -> str | None:
    """`target.col = other.col`: every target row whose column has its match."""
    a, b = _ref(left), _ref(right)
    if not a or not b or len(a) < 2 or len(b) < 2:
        return None
    mine = [r for r in (a, b) if r[-2] in target]
    if len(mine) != 1:
        return None
    other = b if mine[0] is a else a
    return (
        f"the join {_sql(a)} = {_sql(b)} keeps every row of the table with a"
        f" matching {_sql(other[-2:-1])} row"
    )
