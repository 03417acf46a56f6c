"""Health gates between waves: signals read from every target, HTTP checks, Prometheus.

A `Reading` of a target is taken before its wave is applied (`before`), once
the wave is applied (`start` of the observation window) and after the bake
time (`end`). From PostgreSQL itself: rollback share and deadlocks (deltas of
`pg_stat_database` over the window), sessions waiting on locks and replication
lag (at the end), and the mean time of the top `pg_stat_statements` queries in
the window against their mean before the wave (when the extension is installed
in that database). Optional: an HTTP health endpoint, and a Prometheus instant
query whose every sample must stay within a threshold. A gate that cannot read
its signal fails: a rollout never continues on a health it could not check.
"""

from __future__ import annotations

import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg import sql

from pgwarden.errors import ConnectionFailed, PgwardenError, UsageError
from pgwarden.fleet.config import GateSpec
from pgwarden.fleet.targets import Redactor, Target
from pgwarden.pg.connect import connect

__all__ = ["GateResult", "Reading", "check_gate_urls", "evaluate", "gate_url", "read_target"]

# pgwarden's own queries and the catalog's are not the application's
_OWN = ("pgwarden", "pg_stat_", "pg_catalog", "pg_advisory", "pg_try_advisory", "set_config")


@dataclass(frozen=True, slots=True)
class Reading:
    """What one target said at one moment (`error` when it could not be read)."""

    commits: int = 0
    rollbacks: int = 0
    deadlocks: int = 0
    lock_waits: int = 0
    replication_lag: int | None = None
    statements: Mapping[str, tuple[int, float, str]] = field(default_factory=dict)
    has_statements: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "commits": self.commits,
            "rollbacks": self.rollbacks,
            "deadlocks": self.deadlocks,
            "lock_waits": self.lock_waits,
            "replication_lag": self.replication_lag,
            "statements": {k: list(v) for k, v in self.statements.items()},
            "has_statements": self.has_statements,
            "error": self.error,
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Reading:
        return Reading(
            int(d.get("commits", 0)),
            int(d.get("rollbacks", 0)),
            int(d.get("deadlocks", 0)),
            int(d.get("lock_waits", 0)),
            d.get("replication_lag"),
            {k: (int(v[0]), float(v[1]), str(v[2])) for k, v in d.get("statements", {}).items()},
            bool(d.get("has_statements", False)),
            d.get("error"),
        )


_DB = sql.SQL(
    "SELECT xact_commit, xact_rollback, deadlocks, "
    "(SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
    "AND datname = current_database()), "
    "(SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::bigint "
    "FROM pg_stat_replication), "
    "(SELECT to_regclass('pg_stat_statements') IS NOT NULL) "
    "FROM pg_stat_database WHERE datname = current_database()"
)
_PGSS = sql.SQL(
    "SELECT queryid::text, calls, total_exec_time, left(query, 120) FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND toplevel AND queryid IS NOT NULL ORDER BY calls DESC LIMIT {}"
)
_PGSS_OLD = sql.SQL(  # PostgreSQL 13 has no `toplevel`
    "SELECT queryid::text, calls, total_exec_time, left(query, 120) FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND queryid IS NOT NULL ORDER BY calls DESC LIMIT {}"
)


def read_target(
    target: Target, *, statements: int = 200, redact: Redactor | None = None
) -> Reading:
    """One reading of `target` (one short connection, read-only)."""
    scrub = redact or Redactor([target])
    try:
        with connect(target.dsn, application_name="pgwarden-fleet-gate", connect_timeout_s=5) as c:
            c.execute("SET statement_timeout = '10s'")
            row = c.execute(_DB).fetchone()
            assert row is not None
            stmts: dict[str, tuple[int, float, str]] = {}
            has = bool(row[5])
            if has:
                q = _PGSS if c.info.server_version >= 140000 else _PGSS_OLD
                try:
                    for qid, calls, total, text in c.execute(q.format(sql.Literal(statements))):
                        t = str(text)
                        if any(o in t for o in _OWN):
                            continue
                        stmts[str(qid)] = (int(str(calls)), float(str(total)), " ".join(t.split()))
                except psycopg.Error:
                    has = False  # installed but not preloaded: no signal
            return Reading(
                int(str(row[0])),
                int(str(row[1])),
                int(str(row[2])),
                int(str(row[3])),
                None if row[4] is None else int(str(row[4])),
                stmts,
                has,
            )
    except ConnectionFailed as exc:
        return Reading(error=scrub(target.cannot_connect(exc)))
    except (PgwardenError, psycopg.Error) as exc:
        text = exc.message if isinstance(exc, PgwardenError) else str(exc).strip()
        return Reading(error=scrub(text.splitlines()[0] if text else type(exc).__name__))


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: str
    signal: str
    scope: str
    ok: bool
    reasons: tuple[str, ...]  # what is over its threshold (or could not be read)
    value: float | None = None  # the worst value seen, for reports
    # targets whose window was too quiet to judge (an ok gate that judged nothing is not
    # a green light: the user is told)
    not_judged: tuple[str, ...] = ()

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> GateResult:
        return GateResult(
            str(d["gate"]),
            str(d["signal"]),
            str(d["scope"]),
            bool(d["ok"]),
            tuple(str(r) for r in d["reasons"]),
            d.get("value"),
            tuple(str(r) for r in d.get("not_judged", ())),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "signal": self.signal,
            "scope": self.scope,
            "ok": self.ok,
            "reasons": list(self.reasons),
            "value": self.value,
            "not_judged": list(self.not_judged),
        }


Windows = Mapping[str, tuple[Reading, Reading, Reading]]  # target -> (before, start, end)


def _db_signal(gate: GateSpec, windows: Windows) -> GateResult:
    reasons: list[str] = []
    quiet: list[str] = []
    worst: float | None = None
    for name, (before, start, end) in sorted(windows.items()):
        bad = next((r.error for r in (before, start, end) if r.error), None)
        if bad:
            reasons.append(f"{name}: could not read its statistics: {bad}")
            continue
        value: float | None = None
        if gate.signal == "rollback_ratio":
            rb = end.rollbacks - start.rollbacks
            xacts = rb + end.commits - start.commits
            least = int(gate.number("min_transactions", 20) or 0)
            if xacts < least or xacts <= 0:
                quiet.append(
                    f"{name}: {xacts} transactions in the window (min_transactions {least})"
                )
            else:
                value = rb / xacts
                limit = gate.number("max") or 0.0
                if value > limit:
                    reasons.append(
                        f"{name}: {rb} of {xacts} transactions rolled back ({value:.1%} > "
                        f"{limit:.1%})"
                    )
        elif gate.signal == "deadlocks":
            value = float(end.deadlocks - start.deadlocks)
            if value > (gate.number("max") or 0.0):
                reasons.append(f"{name}: {value:.0f} deadlocks during the bake time")
        elif gate.signal == "lock_waits":
            value = float(end.lock_waits)
            if value > (gate.number("max") or 0.0):
                reasons.append(f"{name}: {end.lock_waits} sessions waiting on locks")
        elif gate.signal == "replication_lag":
            value = None if end.replication_lag is None else float(end.replication_lag)
            if value is not None and value > (gate.number("max_bytes") or 0.0):
                reasons.append(f"{name}: replication lag {value / 1048576:.1f} MB")
        elif gate.signal == "pg_stat_statements":
            value = _statements(gate, name, before, start, end, reasons, quiet)
        if value is not None:
            worst = value if worst is None else max(worst, value)
    return GateResult(
        gate.name, gate.signal, gate.scope, not reasons, tuple(reasons), worst, tuple(quiet)
    )


def _statements(
    gate: GateSpec,
    name: str,
    before: Reading,
    start: Reading,
    end: Reading,
    reasons: list[str],
    quiet: list[str],
) -> float | None:
    """The worst ratio of a top query's mean time in the window to its mean before the wave."""
    if not end.has_statements:  # the extension is not there: nothing to compare
        quiet.append(f"{name}: pg_stat_statements is not installed or not preloaded there")
        return None
    top = int(gate.number("top", 10) or 10)
    min_calls = int(gate.number("min_calls", 5) or 1)
    max_ratio = gate.number("max_ratio", 3.0) or 3.0
    min_mean = gate.number("min_mean_ms", 1.0) or 0.0
    max_mean = gate.number("max_mean_ms")
    window = []
    for qid, (calls, total, text) in end.statements.items():
        c0, t0, _ = start.statements.get(qid, (0, 0.0, text))
        if calls - c0 >= min_calls:
            window.append((calls - c0, (total - t0) / (calls - c0), qid, text))
    window.sort(reverse=True)
    worst: float | None = None
    compared = 0
    for _calls, mean, qid, text in window[:top]:
        if max_mean is not None and mean > max_mean:
            reasons.append(f"{name}: {text!r} takes {mean:.1f} ms on average (> {max_mean} ms)")
        old = before.statements.get(qid)
        if old is None or old[0] < min_calls:
            continue
        compared += 1
        mean_before = old[1] / old[0]
        ratio = mean / max(mean_before, 0.001)
        worst = ratio if worst is None else max(worst, ratio)
        if ratio > max_ratio and mean >= min_mean:
            reasons.append(
                f"{name}: {text!r} takes {mean:.1f} ms on average, {ratio:.1f}x its "
                f"{mean_before:.2f} ms before the wave (limit {max_ratio}x)"
            )
    if not compared and not (max_mean is not None and window):
        quiet.append(
            f"{name}: no query ran {min_calls} times both before the wave and in the window"
        )
    return worst


def _get(url: str, timeout_s: float) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"User-Agent": "pgwarden-fleet"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return int(resp.status), resp.read(1_000_000)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(10_000) if exc.fp else b""


def _http(gate: GateSpec, url: str, shown: str) -> GateResult:
    want = int(gate.number("expect_status", 200) or 200)
    try:
        status, _ = _get(url, gate.number("timeout_s", 5.0) or 5.0)
    except (OSError, ValueError) as exc:
        why = getattr(exc, "reason", exc)
        return GateResult(
            gate.name, gate.signal, gate.scope, False, (f"{shown} could not be reached: {why}",)
        )
    ok = status == want
    reasons = () if ok else (f"{shown} answered {status} (expected {want})",)
    return GateResult(gate.name, gate.signal, gate.scope, ok, reasons, float(status))


def _prometheus(gate: GateSpec, base: str, shown: str, targets: Sequence[str]) -> GateResult:
    regex = "|".join(t.replace(".", "\\\\.") for t in targets)
    query = str(gate.params["query"]).replace("{targets}", regex)
    url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})

    def fail(why: str) -> GateResult:
        return GateResult(gate.name, gate.signal, gate.scope, False, (why,))

    try:
        status, body = _get(url, gate.number("timeout_s", 10.0) or 10.0)
    except (OSError, ValueError) as exc:
        return fail(f"Prometheus at {shown} could not be reached: {getattr(exc, 'reason', exc)}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return fail(f"Prometheus at {shown} answered {status} without JSON")
    if status != 200 or doc.get("status") != "success":
        return fail(f"Prometheus rejected the query ({status}): {doc.get('error', '?')}")
    data = doc.get("data", {})
    kind, result = data.get("resultType"), data.get("result", [])
    samples: list[tuple[str, float]] = []
    if kind == "vector":
        for s in result:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.get("metric", {}).items()))
            samples.append((labels or "{}", float(s["value"][1])))
    elif kind == "scalar":
        samples.append(("scalar", float(result[1])))
    else:
        return fail(f"the query gives a {kind}, not an instant vector or scalar")
    if not samples:
        ok = gate.params.get("on_empty", "fail") == "pass"
        return GateResult(
            gate.name, gate.signal, gate.scope, ok, () if ok else ("the query returned no sample",)
        )
    hi, lo = gate.number("max"), gate.number("min")
    reasons = []
    for labels, v in samples:
        if math.isnan(v) or (hi is not None and v > hi) or (lo is not None and v < lo):
            limit = f"> {hi}" if hi is not None and v > hi else f"< {lo}"
            reasons.append(f"{labels}: {v:g} ({limit})")
    worst = max(v for _l, v in samples)
    return GateResult(gate.name, gate.signal, gate.scope, not reasons, tuple(reasons), worst)


def evaluate(
    gates: Sequence[GateSpec],
    *,
    wave: Windows,
    fleet: Windows,
    wave_targets: Sequence[str],
    resolve: Callable[[GateSpec], tuple[str, str]],
) -> list[GateResult]:
    """Every gate over its scope's windows. `resolve` gives a URL gate its (url, shown name):
    a URL read from the environment is a secret and is shown by the variable's name."""
    out = []
    for g in gates:
        if g.signal == "http":
            url, shown = resolve(g)
            out.append(_http(g, url, shown))
        elif g.signal == "prometheus":
            url, shown = resolve(g)
            out.append(_prometheus(g, url, shown, wave_targets))
        else:
            out.append(_db_signal(g, wave if g.scope == "wave" else fleet))
    return out


def check_gate_urls(gates: Sequence[GateSpec]) -> None:
    """A gate's URL variable missing is a usage error before anything is applied."""
    for gate in gates:
        if gate.signal in ("http", "prometheus"):
            gate_url(gate)


def gate_url(gate: GateSpec) -> tuple[str, str]:
    """The gate's URL and how messages name it (a URL from the environment is a secret)."""
    if "url_env" in gate.params:
        var = str(gate.params["url_env"])
        url = os.environ.get(var)
        if not url:
            raise UsageError(
                f"gate {gate.name}: the environment variable {var} is not set",
                hint=f"export {var}=https://... (the URL is treated as a secret)",
            )
        return url, f"${var}"
    url = str(gate.params["url"])
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return (
        url,
        f"{parts.scheme}://{parts.hostname}{port}{parts.path}",
    )
