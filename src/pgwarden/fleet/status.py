"""`pgwarden fleet status`: what each database's own pgwarden history says, and drift.

Per target: its stamp's environment, the plans it has applied (the
fingerprints of its done runs, from `pgwarden.runs`), whether it has the
rollout's plan (`applied`, `partial`: some of its statements, or `none`), its
runs in progress as apply's liveness check sees them (`running`, `orphaned`:
the client is gone, `interrupted`: no backend), and its catalog fingerprint.
Drift: targets whose histories hold the same statements (`pgwarden.applied`:
whatever plans brought them there, and a plan half-applied counts for what it
applied) are compared object by object
(tables with their columns, constraints, indexes, views, functions, triggers,
sequences, enum types, schemas; pgwarden's own schema and extension members
left out); an object whose definition on a target differs from the one most of
its peers have, or that only it has or lacks, is listed for that target.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.apply.liveness import HEARTBEAT_S, life_of
from pgwarden.errors import ConnectionFailed, PgwardenError
from pgwarden.fleet.alembic import start_key
from pgwarden.fleet.targets import Redactor, Target
from pgwarden.pg.connect import connect
from pgwarden.pg.journal_access import check_journal_readable

__all__ = ["DriftItem", "FleetStatus", "TargetStatus", "catalog_objects", "fleet_status"]

_USER = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)


def _ext(classid: str, oid: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{classid}'::regclass "
        f"AND d.objid = {oid} AND d.deptype = 'e')"
    )


# (kind, identity, definition) for every user object
_OBJECTS = sql.SQL(
    f"""
    SELECT 'schema', n.nspname, '' FROM pg_namespace n
     WHERE {_USER} AND n.nspname <> 'public' AND {_ext("pg_namespace", "n.oid")}
    UNION ALL
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
             WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
             WHEN 'f' THEN 'foreign table' END,
           n.nspname || '.' || c.relname,
           c.relkind::text || coalesce((SELECT string_agg(a.attname || ' ' ||
               format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null'
               ELSE '' END || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), ''),
               ', ' ORDER BY a.attnum)
             FROM pg_attribute a LEFT JOIN pg_attrdef ad
               ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
           || CASE WHEN c.relkind IN ('v', 'm') THEN ' AS ' || pg_get_viewdef(c.oid) ELSE '' END
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_USER}
       AND {_ext("pg_class", "c.oid")}
    UNION ALL
    SELECT 'index', n.nspname || '.' || i.relname,
           pg_get_indexdef(i.oid) || CASE WHEN x.indisvalid THEN '' ELSE ' INVALID' END
      FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
      JOIN pg_namespace n ON n.oid = i.relnamespace
     WHERE {_USER} AND {_ext("pg_class", "x.indrelid")}
    UNION ALL
    SELECT 'constraint', n.nspname || '.' || r.relname || '.' || k.conname,
           pg_get_constraintdef(k.oid) || CASE WHEN k.convalidated THEN '' ELSE ' NOT VALID' END
      FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid
      JOIN pg_namespace n ON n.oid = r.relnamespace
     WHERE {_USER} AND {_ext("pg_class", "r.oid")}
       AND k.contype::text <> 'n'  -- 18 lists NOT NULL here; the column says it already
    UNION ALL
    SELECT 'trigger', n.nspname || '.' || r.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
      FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = r.relnamespace
     WHERE NOT t.tgisinternal AND {_USER}
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
           n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
           md5(pg_get_functiondef(p.oid))
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.prokind IN ('f', 'p') AND {_USER} AND {_ext("pg_proc", "p.oid")}
    UNION ALL
    SELECT 'type', n.nspname || '.' || t.typname,
           (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e
             WHERE e.enumtypid = t.oid)
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typtype = 'e' AND {_USER} AND {_ext("pg_type", "t.oid")}
    """
)


def catalog_objects(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    """'kind name' -> a digest of its definition, for every user object of the database."""
    out = {}
    for kind, name, definition in conn.execute(_OBJECTS):
        digest = hashlib.sha256(str(definition or "").encode()).hexdigest()[:16]
        out[f"{kind} {name}"] = digest
    return out


@dataclass(frozen=True, slots=True)
class RunInProgress:
    run_id: str
    state: str  # running, orphaned, interrupted
    started_at: datetime
    plan_fingerprint: str


@dataclass(frozen=True, slots=True)
class DriftItem:
    object: str  # "table public.x"
    how: str  # extra (only here), missing (peers have it), differs


@dataclass(frozen=True, slots=True)
class TargetStatus:
    name: str
    labels: tuple[tuple[str, str], ...]
    environment: str | None = None
    plans: tuple[str, ...] = ()  # fingerprints of its done runs, oldest first
    change: str = "none"  # the rollout's plan here: applied, partial, none
    last_failure: str | None = None  # the latest failed or cancelled run of the rollout's plan
    in_progress: tuple[RunInProgress, ...] = ()
    fingerprint: str | None = None  # of the catalog
    drift: tuple[DriftItem, ...] = ()
    peers: int = 0  # targets at the same plans it was compared with
    rollout_state: str | None = None  # what the local rollout journal says
    wave: int | None = None
    error: str | None = None  # could not be read
    catalog_note: str | None = None  # why its catalog was not compared
    statements_applied: int = 0  # partial: how many of the plan's statements its history has
    # a digest of every statement its pgwarden history holds: its drift peers have the same
    history: str | None = None
    # Alembic rollouts: alembic_version when the rollout planned it, and now
    alembic_before: tuple[str, ...] | None = None
    alembic_version: tuple[str, ...] | None = None
    objects: dict[str, str] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "labels": dict(self.labels),
            "environment": self.environment,
            "plans": list(self.plans),
            "change": self.change,
            "last_failure": self.last_failure,
            "in_progress": [
                {
                    "run_id": r.run_id,
                    "state": r.state,
                    "started_at": r.started_at.isoformat(),
                    "plan_fingerprint": r.plan_fingerprint,
                }
                for r in self.in_progress
            ],
            "fingerprint": self.fingerprint,
            "drift": [{"object": d.object, "how": d.how} for d in self.drift],
            "peers": self.peers,
            "rollout_state": self.rollout_state,
            "wave": self.wave,
            "error": self.error,
            "catalog_note": self.catalog_note,
            "statements_applied": self.statements_applied,
            "alembic_before": _opt_list(self.alembic_before),
            "alembic_version": _opt_list(self.alembic_version),
        }


def _opt_list(v: tuple[str, ...] | None) -> list[str] | None:
    return None if v is None else list(v)


@dataclass(frozen=True, slots=True)
class Expected:
    """What one target should have from the rollout, per the local journal."""

    plan_fp: str | None = None  # the plan's fingerprint (its Alembic plan's, per target)
    keys: tuple[str, ...] = ()  # its statements' history keys
    run_id: str | None = None  # the target's latest run of the rollout (a --rewrite plan)
    alembic_before: tuple[str, ...] | None = None
    alembic_heads: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class FleetStatus:
    fleet: str
    rollout: dict[str, Any] | None  # the local journal's summary, when there is one
    targets: tuple[TargetStatus, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "fleet": self.fleet,
            "rollout": self.rollout,
            "targets": [t.to_json() for t in self.targets],
        }


def _alembic_version(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[str, ...]:
    row = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return ()
    rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return tuple(sorted(str(r[0]) for r in rows))


def _read(
    target: Target, want: Expected, redact: Redactor, client_gone_s: float = HEARTBEAT_S
) -> TargetStatus:
    plan_fp, keys = want.plan_fp, want.keys
    base = TargetStatus(target.name, target.labels)
    if target.unset:  # never connect with an empty conninfo: libpq's defaults are elsewhere
        return TargetStatus(
            base.name,
            base.labels,
            error=f"the environment variable {target.dsn_env} is not set (it holds the "
            "database URL)",
        )
    try:
        with connect(target.dsn, application_name="pgwarden-fleet-status") as conn:
            # never queue behind a migration's lock for long: a status must answer
            conn.execute("SET statement_timeout = '30s'")
            conn.execute("SET lock_timeout = '2s'")
            env = None
            check_journal_readable(conn)  # its role may not read pgwarden's schema: say so
            row = conn.execute(
                sql.SQL(
                    "SELECT to_regclass('pgwarden.runs') IS NOT NULL, "
                    "to_regclass('pgwarden.target') IS NOT NULL"
                )
            ).fetchone()
            has_runs, has_target = bool(row and row[0]), bool(row and row[1])
            if has_target:
                r = conn.execute(sql.SQL("SELECT environment FROM pgwarden.target")).fetchone()
                env = None if r is None else str(r[0])
            plans: list[str] = []
            running: list[RunInProgress] = []
            change, failure = "none", None
            statements = 0  # of the rollout's statements in its history, when partial
            history = _history(conn) if has_runs else _history_of([])
            if has_runs:
                rows = conn.execute(
                    sql.SQL(
                        "SELECT r.id, r.state, r.plan_fingerprint, r.started_at, r.backend_pid, "
                        "r.message, EXISTS (SELECT 1 FROM pgwarden.runs l WHERE l.resumes = r.id) "
                        "FROM pgwarden.runs r WHERE r.kind <> 'backfill' ORDER BY r.started_at"
                    )
                ).fetchall()
                # with --rewrite the target ran its own rewrite of the plan: the run named
                # by the rollout journal says which fingerprint that is
                plan_fps = {plan_fp} | {str(r[2]) for r in rows if str(r[0]) == want.run_id}
                for rid, state, fp, started, pid, message, resumed in rows:
                    if state == "done" and fp not in plans:
                        plans.append(str(fp))
                    if state == "running":
                        assert isinstance(started, datetime)
                        life, _b = life_of(
                            conn, str(rid), int(str(pid)), started, client_gone_s=client_gone_s
                        )
                        if not (resumed and life == "interrupted"):  # a later run went on
                            running.append(RunInProgress(str(rid), life, started, str(fp)))
                    if fp in plan_fps and state in ("failed", "cancelled"):
                        failure = f"run {rid} {state}: {message}"
                    elif fp in plan_fps and state == "done":
                        failure = None
                if plan_fps & set(plans):
                    change = "applied"
                elif keys:
                    r = conn.execute(
                        sql.SQL("SELECT count(*) FROM pgwarden.applied WHERE key = ANY({})").format(
                            sql.Literal(list(keys))
                        )
                    ).fetchone()
                    found = int(str(r[0])) if r is not None else 0
                    if found > 0:
                        change, statements = "partial", found
            version = None
            if want.alembic_heads is not None:  # the truth of an Alembic rollout
                version = _alembic_version(conn)
                if version == want.alembic_heads:
                    change = "applied"
                elif change == "applied" or version != want.alembic_before:
                    change = "partial"
            objects: dict[str, str] | None
            note: str | None = None
            try:
                objects = catalog_objects(conn)
            except (pge.LockNotAvailable, pge.QueryCanceled):
                # a table under ACCESS EXCLUSIVE (a running migration): its definitions
                # cannot be read now; this target is left out of the drift comparison
                objects, note = None, "catalog not read: a table is locked (a change running?)"
            digest = (
                None
                if objects is None
                else hashlib.sha256(
                    "\n".join(f"{k}={v}" for k, v in sorted(objects.items())).encode()
                ).hexdigest()[:16]
            )
            return TargetStatus(
                target.name,
                target.labels,
                env,
                tuple(plans),
                change,
                None if change == "applied" else failure,
                tuple(running),
                digest,
                catalog_note=note,
                statements_applied=statements,
                history=history,
                alembic_before=want.alembic_before,
                alembic_version=version,
                objects=objects or {},
            )
    except ConnectionFailed as exc:
        return TargetStatus(base.name, base.labels, error=redact(target.cannot_connect(exc)))
    except (PgwardenError, psycopg.Error) as exc:
        text = exc.message if isinstance(exc, PgwardenError) else str(exc).strip()
        return TargetStatus(
            base.name, base.labels, error=redact(text.splitlines()[0] if text else "error")
        )


def _history_of(keys: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def _history(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    """A digest of the statements this database's pgwarden history holds."""
    if conn.execute("SELECT to_regclass('pgwarden.applied') IS NULL").fetchone() == (True,):
        return _history_of([])
    return _history_of([str(r[0]) for r in conn.execute("SELECT key FROM pgwarden.applied")])


def _drift(statuses: list[TargetStatus]) -> list[TargetStatus]:
    """Each target with the objects where it differs from most targets whose history holds
    the same statements (in an Alembic rollout: at the same alembic_version, whatever plans
    brought it there).

    Not the same plans: a target that applied 001 then 001+002 has the schema of one that
    applied 001+002 at once, and one that applied a plan half-way (a failed step outside
    the plan's transaction) has not the schema of one that applied none of it: that is a
    change in progress (`partial`), not drift."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, s in enumerate(statuses):
        if s.error is None and s.fingerprint is not None:
            key = ("history", s.history) if s.history is not None else tuple(sorted(s.plans))
            if s.alembic_version is not None:
                key = ("alembic_version", *s.alembic_version)
            groups.setdefault(key, []).append(i)
    out = list(statuses)
    for members in groups.values():
        if len(members) < 2:
            continue
        names = set().union(*(statuses[i].objects for i in members))
        majority: dict[str, str | None] = {}
        for obj in names:
            votes = Counter(statuses[i].objects.get(obj) for i in members)
            top = votes.most_common(2)
            # a tie has no majority: everyone differing is listed
            majority[obj] = top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else "<tie>"
        for i in members:
            s = statuses[i]
            items = []
            for obj in sorted(names):
                want, have = majority[obj], s.objects.get(obj)
                if have == want:
                    continue
                how = "extra" if want is None else "missing" if have is None else "differs"
                items.append(DriftItem(obj, how))
            out[i] = replace(s, drift=tuple(items), peers=len(members) - 1)
    return out


def expected(journal: dict[str, Any] | None, name: str) -> Expected:
    """What target `name` should have, per the rollout journal (nothing without one)."""
    if journal is None:
        return Expected()
    entry = journal.get("targets", {}).get(name) or {}
    run_id = entry.get("run_id")
    alembic = journal.get("alembic")
    if not alembic:
        keys = tuple(str(r["key"]) for r in journal.get("plan", []))
        return Expected(journal.get("plan_fingerprint"), keys, run_id)
    before = alembic["before"].get(name)
    if before is None:  # not in this rollout (another --label slice)
        return Expected(alembic_heads=tuple(alembic["heads"]))
    stored = alembic["plans"][start_key(before)]
    return Expected(
        str(stored["fingerprint"]),
        tuple(str(r["key"]) for r in stored["plan"]),
        run_id,
        tuple(before),
        tuple(alembic["heads"]),
    )


def fleet_status(
    fleet: str,
    targets: Sequence[Target],
    *,
    journal: dict[str, Any] | None = None,
    max_connections: int = 8,
    client_gone_s: float = HEARTBEAT_S,
) -> FleetStatus:
    """Read every target (bounded, in parallel) and compare their catalogs; a run whose
    watchdog has been silent for `client_gone_s` is orphaned (setting watchdog.client_gone_s)."""
    keys = [] if journal is None else [str(r["key"]) for r in journal.get("plan", [])]
    redact = Redactor(targets)
    workers = max(1, min(max_connections, len(targets) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pgwarden-status") as pool:
        statuses = list(
            pool.map(lambda t: _read(t, expected(journal, t.name), redact, client_gone_s), targets)
        )
    statuses = _drift(statuses)
    jt = (journal or {}).get("targets", {})
    gone = (journal or {}).get("state") == "interrupted"  # the runner was killed
    final = []
    for s in statuses:
        entry = jt.get(s.name)
        state = None if entry is None else str(entry["state"])
        if gone and state == "running":
            state = "interrupted"  # nobody is applying it now (`fleet resume` will)
        final.append(
            replace(
                s,
                rollout_state=state,
                wave=None if entry is None else int(entry["wave"]),
            )
        )
    summary = None
    if journal is not None:
        summary = {
            k: journal.get(k)
            for k in (
                "rollout",
                "environment",
                "state",
                "halted_wave",
                "reason",
                "message",
                "plan_fingerprint",
                "sources",
                "by",
            )
        }
        summary["statements"] = len(keys)
        alembic = journal.get("alembic")
        summary["alembic_heads"] = alembic["heads"] if alembic else None
        summary["rewrite"] = bool(journal.get("rewrite"))
        summary["waves"] = [
            {
                "index": w["index"],
                "name": w["name"],
                "state": w["state"],
                "targets": len(w["targets"]),
            }
            for w in journal.get("waves", [])
        ]
    return FleetStatus(fleet, summary, tuple(final))
