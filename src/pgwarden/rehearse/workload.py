"""Workload queries, run with EXPLAIN (ANALYZE, BUFFERS) before and after the migration.

A workload file is SQL; comment lines just before a statement set options:

    -- name: invoices_of_account
    -- weight: 20
    -- params: [42]
    SELECT id FROM invoices WHERE payment_account_id = $1 ORDER BY id DESC LIMIT 20;

`$n` placeholders are replaced by the JSON params as SQL literals (not inside
string literals). Each query runs `repeat` times after one warm-up; the
median execution time counts. Data-changing queries run in a transaction that
is rolled back. A query that errors is reported and the rest go on.
Top queries from a stats snapshot (`top_queries`: [{"query", "calls"}]) join
the workload when they need no parameters.
"""

from __future__ import annotations

import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from pgwarden.analysis.parse import parse
from pgwarden.errors import InputError
from pgwarden.location import line_col
from pgwarden.rehearse.model import QueryRun, WorkloadComparison

__all__ = ["Query", "compare", "load_workload", "run_queries", "snapshot_queries"]

_OPTION = re.compile(r"^\s*--\s*(name|weight|params)\s*:\s*(.+?)\s*$", re.MULTILINE)
_PARAM = re.compile(r"\$(\d+)")
_STRING = re.compile(r"'(?:[^']|'')*'")


@dataclass(frozen=True, slots=True)
class Query:
    """One workload query with its options."""

    name: str
    sql: str
    location: str
    weight: float = 1.0


def _bind(text: str, params: list[Any]) -> str:
    """Replace `$n` outside string literals by params[n-1] as SQL literals."""
    out: list[str] = []
    pos = 0
    for m in _STRING.finditer(text):
        out.append(_PARAM.sub(lambda p: _literal(params, int(p.group(1))), text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_PARAM.sub(lambda p: _literal(params, int(p.group(1))), text[pos:]))
    return "".join(out)


def _literal(params: list[Any], n: int) -> str:
    if n < 1 or n > len(params):
        raise IndexError(n)
    return sql.Literal(params[n - 1]).as_string()


def load_workload(path: str | os.PathLike[str]) -> list[Query]:
    """Queries from a workload file, with their name, weight and bound parameters."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputError(f"{p}: cannot read workload: {exc.strerror}", path=str(p)) from None
    queries: list[Query] = []
    prev = 0
    for i, stmt in enumerate(parse(text, str(p))):
        opts = dict(_OPTION.findall(text[prev : stmt.start]))
        prev = stmt.end
        line, col = line_col(text, stmt.start)
        where = f"{p}:{line}:{col}"
        body = stmt.text
        try:
            params = orjson.loads(opts["params"]) if "params" in opts else []
            weight = float(opts.get("weight", 1.0))
            if not isinstance(params, list):
                raise ValueError("params must be a JSON array")
            body = _bind(body, params)
        except (ValueError, orjson.JSONDecodeError, IndexError) as exc:
            raise InputError(
                f"{where}: bad workload options ({exc})",
                hint='use `-- weight: 5` and `-- params: [42, "open"]` lines above the query',
                path=str(p),
            ) from None
        queries.append(Query(opts.get("name", f"q{i + 1}"), body, where, weight))
    return queries


def snapshot_queries(path: str | os.PathLike[str], *, limit: int = 10) -> list[Query]:
    """Parameterless top queries recorded in a stats snapshot file, if any."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    top = data.get("top_queries") if isinstance(data, dict) else None
    out: list[Query] = []
    for i, q in enumerate(top or []):
        text = str(q.get("query", "")) if isinstance(q, dict) else ""
        if not text or _PARAM.search(text) or len(out) >= limit:
            continue
        calls = float(q.get("calls", 1) or 1)
        out.append(Query(f"top{i + 1}", text, f"{path}:top_queries[{i}]", calls))
    return out


def _walk(node: dict[str, Any], found: dict[str, set[str]]) -> None:
    kind = str(node.get("Node Type", ""))
    if "Index Name" in node:
        found["indexes"].add(str(node["Index Name"]))
    if kind == "Seq Scan" and "Relation Name" in node:
        found["seq"].add(str(node["Relation Name"]))
    for child in node.get("Plans", []) or []:
        _walk(child, found)


def _explain_once(conn: psycopg.Connection[tuple[object, ...]], text: str) -> dict[str, Any]:
    with conn.transaction(force_rollback=True):
        row = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + text.encode()).fetchone()
    assert row is not None
    doc = row[0]
    data = orjson.loads(doc) if isinstance(doc, str | bytes) else doc
    assert isinstance(data, list)
    first = data[0]
    assert isinstance(first, dict)
    return first


def run_query(
    conn: psycopg.Connection[tuple[object, ...]], q: Query, *, repeat: int = 5
) -> QueryRun:
    """Median execution time and plan facts of `q` (an error becomes `QueryRun.error`)."""
    times: list[float] = []
    doc: dict[str, Any] = {}
    try:
        for i in range(repeat + 1):
            doc = _explain_once(conn, q.sql)
            if i > 0:
                times.append(float(doc.get("Execution Time", 0.0)))
    except psycopg.Error as exc:
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return QueryRun(None, error=f"{exc.sqlstate or ''} {msg}".strip())
    found: dict[str, set[str]] = {"indexes": set(), "seq": set()}
    plan = doc.get("Plan", {})
    _walk(plan, found)
    triggers = tuple(
        (
            str(t.get("Constraint Name") or t.get("Trigger Name")),
            float(t.get("Time", 0.0)) / max(1, int(t.get("Calls", 1))),
        )
        for t in doc.get("Triggers", []) or []
    )
    return QueryRun(
        statistics.median(times),
        indexes=tuple(sorted(found["indexes"])),
        seq_scans=tuple(sorted(found["seq"])),
        triggers=triggers,
        shared_hit=int(plan.get("Shared Hit Blocks", 0)),
        shared_read=int(plan.get("Shared Read Blocks", 0)),
    )


def run_queries(
    conn: psycopg.Connection[tuple[object, ...]], queries: list[Query], *, repeat: int = 5
) -> list[QueryRun]:
    """`run_query` for each query, in order."""
    conn.execute("ANALYZE")
    return [run_query(conn, q, repeat=repeat) for q in queries]


def compare(
    queries: list[Query], before: list[QueryRun], after: list[QueryRun]
) -> list[WorkloadComparison]:
    """Before/after pairs with the plan changes in words."""
    out = []
    for q, b, a in zip(queries, before, after, strict=True):
        changes: list[str] = []
        for idx in sorted(set(b.indexes) - set(a.indexes)):
            changes.append(f"index {idx} no longer used")
        for rel in sorted(set(a.seq_scans) - set(b.seq_scans)):
            changes.append(f"sequential scan on {rel} appears")
        before_trig = dict(b.triggers)
        for name, ms in a.triggers:
            if name not in before_trig:
                changes.append(f"trigger {name} added ({ms:.3f} ms per row)")
        if a.error and not b.error:
            changes.append(f"fails after the migration: {a.error}")
        out.append(WorkloadComparison(q.name, q.sql, q.location, q.weight, b, a, tuple(changes)))
    return out
