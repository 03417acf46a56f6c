"""The journal: history and run records in the target's `pgwarden` schema, plus local JSON lines.

`pgwarden.applied` is the history: one row per applied step key, written in
the same transaction as the step when the step is transactional, so a re-run
skips exactly what is done. A key names the statement in its migration, not
its place in the plan: the source file's name, the statement's text and its
occurrence in that file (see `step_keys`); other files, their order and the
folder the plan was read from do not change it. `pgwarden.runs`, `.steps` and
`.events` record who ran what, where, when, each step's outcome, retries,
cancels and who was blocked.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from pgwarden.apply.events import Event
from pgwarden.pg.journal_access import check_journal_readable
from pgwarden.plan import Plan, Step

__all__ = [
    "KEY_PREFIX",
    "SCHEMA",
    "Journal",
    "RunInfo",
    "applied_keys",
    "checksum",
    "has_history",
    "rewritten_keys",
    "schema_exists",
    "source_name",
    "step_keys",
    "stored_keys",
]

SCHEMA = "pgwarden"

_TARGET_DDL = sql.SQL(
    """
    CREATE SCHEMA IF NOT EXISTS pgwarden;
    CREATE TABLE IF NOT EXISTS pgwarden.target (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        environment text NOT NULL,
        system_identifier text NOT NULL,
        database_oid bigint NOT NULL,
        database_name text NOT NULL,
        stamped_at timestamptz NOT NULL DEFAULT now(),
        stamped_by text NOT NULL,
        protected boolean,
        data_directory text,
        port integer
    );
    """
)
_DDL = sql.SQL(
    """
    CREATE TABLE IF NOT EXISTS pgwarden.runs (
        id text PRIMARY KEY,
        kind text NOT NULL,
        state text NOT NULL,
        resumes text,
        started_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        os_user text NOT NULL,
        host text NOT NULL,
        client_pid integer NOT NULL,
        backend_pid integer NOT NULL,
        environment text NOT NULL,
        system_identifier text NOT NULL,
        plan_fingerprint text NOT NULL,
        plan jsonb NOT NULL,
        accept_data_loss text,
        cancel_requested boolean NOT NULL DEFAULT false,
        message text
    );
    CREATE TABLE IF NOT EXISTS pgwarden.steps (
        run_id text NOT NULL REFERENCES pgwarden.runs (id),
        idx integer NOT NULL,
        key text NOT NULL,
        state text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        point_of_no_return boolean NOT NULL DEFAULT false,
        started_at timestamptz,
        finished_at timestamptz,
        error text,
        sqlstate text,
        PRIMARY KEY (run_id, idx)
    );
    CREATE TABLE IF NOT EXISTS pgwarden.applied (
        key text PRIMARY KEY,
        checksum text NOT NULL,
        sql text NOT NULL,
        path text,
        line integer,
        run_id text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS pgwarden.events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id text NOT NULL,
        at timestamptz NOT NULL,
        kind text NOT NULL,
        step integer,
        data jsonb NOT NULL
    );
    CREATE TABLE IF NOT EXISTS pgwarden.break_glass (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id text,
        at timestamptz NOT NULL,
        environment text NOT NULL,
        command text NOT NULL,
        session_user_name text NOT NULL,
        current_user_name text NOT NULL,
        os_user text NOT NULL,
        host text NOT NULL,
        reason text NOT NULL
    );
    CREATE TABLE IF NOT EXISTS pgwarden.backfills (
        key text PRIMARY KEY,
        table_name text NOT NULL,
        set_sql text NOT NULL,
        where_sql text,
        last_pk bigint,
        rows_done bigint NOT NULL DEFAULT 0,
        state text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """
)
# Columns added to a schema an earlier version created (nullable: old stamps lack them).
_UPGRADE = sql.SQL(
    "ALTER TABLE pgwarden.target ADD COLUMN IF NOT EXISTS protected boolean, "
    "ADD COLUMN IF NOT EXISTS data_directory text, ADD COLUMN IF NOT EXISTS port integer"
)
_TABLES = ("target", "runs", "steps", "applied", "events", "backfills", "break_glass")
_COMPLETE = sql.SQL(
    "SELECT count(*) = {} AND bool_or(c.relname = 'target' AND EXISTS (SELECT 1 "
    "FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'port' "
    "AND NOT a.attisdropped)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'pgwarden' AND c.relname = ANY ({})"
).format(sql.Literal(len(_TABLES)), sql.Literal(list(_TABLES)))


def _norm(text: str) -> str:
    return " ".join(text.split()).rstrip(";")


def checksum(text: str) -> str:
    """sha256 of the statement text with whitespace normalized."""
    return hashlib.sha256(_norm(text).encode()).hexdigest()


KEY_PREFIX = "2:"  # history keys of this scheme; older rows are recognised by `_legacy`


def source_name(path: str) -> str:
    """The name a source is known by in the history: its file name (`<stdin>` for `-`)."""
    return PurePath(path).name or path


def step_keys(plan: Plan) -> list[str]:
    """One history key per step, in one pass over the plan.

    A key hashes the source's file name (`source_name`), the statement's text
    (`checksum`) and how many identical statements come before it in that file.
    So a copy of an applied file under another name is a new migration, a file
    inserted earlier in sort order shifts nothing, the same file applied from
    another folder is the same migration, and after a failed run the fixed
    statement runs while the file's applied statements stay applied.
    """
    seen: dict[tuple[str, str], int] = {}
    keys = []
    for step in plan.steps:
        ident = (source_name(step.location.path), checksum(step.sql))
        n = seen.get(ident, 0)
        seen[ident] = n + 1
        raw = f"{ident[0]}\0{ident[1]}\0{n}".encode()
        keys.append(KEY_PREFIX + hashlib.sha256(raw).hexdigest()[:32])
    return keys


def schema_exists(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether the journal is there; `DatabaseError` when this role may not read it."""
    check_journal_readable(conn)
    row = conn.execute(
        sql.SQL("SELECT to_regclass({}) IS NOT NULL").format(sql.Literal(f"{SCHEMA}.runs"))
    ).fetchone()
    return bool(row and row[0])


def has_history(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether any step was ever recorded as applied to this database."""
    if not schema_exists(conn):
        return False
    row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM pgwarden.applied)")).fetchone()
    return bool(row and row[0])


PART = "/"  # a rewritten statement's part: "<the original statement's key>/<j>.<n>"


def rewritten_keys(original: Plan, rewritten: Plan) -> tuple[list[str], list[tuple[str, ...]]]:
    """History keys of `rewritten` (`apply --rewrite` of `original`), and per step the
    other keys that also count as it being applied.

    A statement the rewrite left as written keeps the key of the statement in its file;
    the j-th of the n statements replacing one (`CREATE INDEX CONCURRENTLY` for a
    `CREATE INDEX`; `... NOT VALID` and `VALIDATE` for an `ADD FOREIGN KEY`) gets
    `<its key>/<j>.<n>`, so the history of a file is the same with or without
    --rewrite (`applied_keys`). A replacement also counts as applied under the key
    earlier versions gave it (`step_keys` of the rewritten plan)."""
    base = step_keys(original)
    by_location: dict[object, tuple[Step, str] | None] = {}
    for step, key in zip(original.steps, base, strict=True):
        loc = step.location
        by_location[loc] = None if loc in by_location else (step, key)  # None: ambiguous
    earlier = step_keys(rewritten)
    keys = list(earlier)
    parts: dict[str, list[int]] = {}
    origin: dict[str, Step] = {}
    for step in rewritten.steps:
        found = by_location.get(step.location)
        if found is not None:
            parts.setdefault(found[1], []).append(step.index)
            origin[found[1]] = found[0]
    also: list[tuple[str, ...]] = [() for _ in rewritten.steps]
    for key, idxs in parts.items():
        if len(idxs) == 1 and rewritten.steps[idxs[0]].sql == origin[key].sql:
            keys[idxs[0]] = key
        else:
            for j, i in enumerate(idxs):
                keys[i] = f"{key}{PART}{j}.{len(idxs)}"
        for i in idxs:
            if earlier[i] != keys[i]:
                also[i] = (earlier[i],)
    return keys, also


def applied_keys(
    conn: psycopg.Connection[tuple[object, ...]],
    plan: Plan,
    keys: Sequence[str],
    also: Sequence[Sequence[str]] | None = None,
) -> set[str]:
    """The keys of `plan`'s steps that are already applied to this database.

    A step counts as applied when its key is recorded, or one of its `also` keys
    (`rewritten_keys`); a part of a rewritten statement (`<key>/<j>.<n>`) when
    the statement it replaces was applied as written; a statement when all the
    parts of its rewrite were applied. Rows written before the current key scheme
    (keys without `KEY_PREFIX`) count for the step with the same file name, line
    and statement text (`_legacy`).
    """
    if not schema_exists(conn):
        return set()
    stored: set[str] = set()
    legacy: set[tuple[str, int, str]] = set()
    split: dict[tuple[str, str], set[str]] = {}  # (original key, n) -> the parts j applied
    rows = conn.execute(sql.SQL("SELECT key, path, line, checksum FROM pgwarden.applied"))
    for key, path, line, digest in rows:
        k = str(key)
        stored.add(k)
        if not k.startswith(KEY_PREFIX) and path is not None and line is not None:
            legacy.add((source_name(str(path)), int(str(line)), str(digest)))
        elif PART in k:
            whole, _, part = k.rpartition(PART)
            j, _, n = part.partition(".")
            split.setdefault((whole, n), set()).add(j)
    for (whole, n), js in split.items():
        if n.isdigit() and len(js) == int(n):
            stored.add(whole)  # every part of its rewrite is applied
    out = set()
    for i, (s, k) in enumerate(zip(plan.steps, keys, strict=True)):
        if (
            k in stored
            or (PART in k and k.rpartition(PART)[0] in stored)
            or (also is not None and any(a in stored for a in also[i]))
            or _legacy(s, legacy)
        ):
            out.add(k)
    return out


def _legacy(step: Step, rows: set[tuple[str, int, str]]) -> bool:
    if not rows:
        return False
    loc = step.location
    return (source_name(loc.path), loc.line, checksum(step.sql)) in rows


def stored_keys(conn: psycopg.Connection[tuple[object, ...]], run_id: str) -> list[str] | None:
    """The step keys a recorded run was started with (what `resume` continues)."""
    row = conn.execute(
        sql.SQL("SELECT plan FROM pgwarden.runs WHERE id = {}").format(sql.Literal(run_id))
    ).fetchone()
    if row is None or not isinstance(row[0], list):
        return None
    return [str(r["key"]) for r in row[0]]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Who runs what, where."""

    run_id: str
    kind: str  # apply, resume, backfill
    environment: str
    system_identifier: str
    plan_fingerprint: str
    plan: list[dict[str, Any]]
    accept_data_loss: str | None = None
    resumes: str | None = None
    os_user: str = ""
    host: str = ""

    @staticmethod
    def who() -> tuple[str, str]:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):
            user = str(os.getuid())
        return user, socket.gethostname()


class Journal:
    """Writes run, step and event records on its own autocommit connection."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], run_id: str) -> None:
        self.conn = conn
        self.run_id = run_id
        self.broken: str | None = None  # why the journal stopped writing, if it did

    @staticmethod
    def ensure_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Create the `pgwarden` schema, tables and columns that are missing (one transaction);
        `DatabaseError` when the schema is there but this role may not read it."""
        check_journal_readable(conn)
        row = conn.execute(_COMPLETE).fetchone()
        if row is not None and row[0]:
            return  # all there; CREATE ... IF NOT EXISTS would still need CREATE rights
        with conn.transaction():
            conn.execute(
                sql.SQL("SELECT set_config('lock_timeout', '2s', true)"),
            )
            conn.execute(_TARGET_DDL)
            conn.execute(_DDL)
            conn.execute(_UPGRADE)

    @staticmethod
    def ensure_target(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Create the `pgwarden` schema and its stamp table if missing (not the journal)."""
        with conn.transaction():
            conn.execute(sql.SQL("SELECT set_config('lock_timeout', '2s', true)"))
            conn.execute(_TARGET_DDL)
            conn.execute(_UPGRADE)

    def start(
        self, info: RunInfo, backend_pid: int, steps: Sequence[tuple[int, str, bool]]
    ) -> None:
        """Insert the run and its steps (index, key, point of no return) as pending."""
        with self.conn.transaction():
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO pgwarden.runs (id, kind, state, resumes, os_user, host, "
                    "client_pid, backend_pid, environment, system_identifier, plan_fingerprint, "
                    "plan, accept_data_loss) VALUES ({})"
                ).format(
                    sql.SQL(", ").join(
                        sql.Literal(v)
                        for v in (
                            info.run_id,
                            info.kind,
                            "running",
                            info.resumes,
                            info.os_user,
                            info.host,
                            os.getpid(),
                            backend_pid,
                            info.environment,
                            info.system_identifier,
                            info.plan_fingerprint,
                            Jsonb(info.plan),
                            info.accept_data_loss,
                        )
                    )
                )
            )
            for idx, key, pnr in steps:
                self.conn.execute(
                    sql.SQL(
                        "INSERT INTO pgwarden.steps (run_id, idx, key, state, point_of_no_return) "
                        "VALUES ({}, {}, {}, 'pending', {})"
                    ).format(
                        sql.Literal(self.run_id),
                        sql.Literal(idx),
                        sql.Literal(key),
                        sql.Literal(pnr),
                    )
                )

    def __call__(self, event: Event) -> None:
        """Record an event; step events also move the step's state."""
        if self.broken is not None:
            return
        try:
            self._write(event)
        except psycopg.Error as exc:
            self.broken = f"{type(exc).__name__}: {str(exc).strip()}"

    def _write(self, event: Event) -> None:
        data = orjson.loads(orjson.dumps(event.data, default=str))
        self.conn.execute(
            sql.SQL(
                "INSERT INTO pgwarden.events (run_id, at, kind, step, data) "
                "VALUES ({}, to_timestamp({}), {}, {}, {})"
            ).format(
                sql.Literal(self.run_id),
                sql.Literal(event.at),
                sql.Literal(event.kind),
                sql.Literal(event.step),
                sql.Literal(Jsonb(data)),
            )
        )
        if event.kind == "break_glass":
            Journal.record_break_glass(self.conn, self.run_id, event, "apply")
        steps = event.data.get("steps")
        state = _STEP_STATE.get(event.kind)
        if state is None or not isinstance(steps, list):
            if event.kind == "run_finished":
                self.finish(str(event.data.get("state")), event.data.get("message"))
            return
        stamp = {"running": "started_at = coalesce(started_at, now()), "}.get(state, "")
        if state in ("done", "failed", "cancelled", "skipped"):
            stamp = "finished_at = now(), "
        self.conn.execute(
            sql.SQL(
                "UPDATE pgwarden.steps SET state = {}, "
                + stamp
                + "attempts = greatest(attempts, {}), "
                "error = coalesce({}, error), sqlstate = coalesce({}, sqlstate) "
                "WHERE run_id = {} AND idx = ANY ({})"
            ).format(
                sql.Literal(state),
                sql.Literal(int(event.data.get("attempt", 0))),
                sql.Literal(event.data.get("error")),
                sql.Literal(event.data.get("sqlstate")),
                sql.Literal(self.run_id),
                sql.Literal([int(s) for s in steps]),
            )
        )

    def finish(self, state: str, message: object) -> None:
        self.conn.execute(
            sql.SQL(
                "UPDATE pgwarden.runs SET state = {}, finished_at = now(), message = {} "
                "WHERE id = {}"
            ).format(
                sql.Literal(state),
                sql.Literal(None if message is None else str(message)),
                sql.Literal(self.run_id),
            )
        )

    @staticmethod
    def record_applied(
        conn: psycopg.Connection[tuple[object, ...]], run_id: str, step: Step, key: str
    ) -> None:
        """Add `step` to the history (inside the step's own transaction when it has one)."""
        conn.execute(
            sql.SQL(
                "INSERT INTO pgwarden.applied (key, checksum, sql, path, line, run_id) "
                "VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT (key) DO NOTHING"
            ).format(
                sql.Literal(key),
                sql.Literal(checksum(step.sql)),
                sql.Literal(step.sql),
                sql.Literal(step.location.path),
                sql.Literal(step.location.line),
                sql.Literal(run_id),
            )
        )

    @staticmethod
    def record_break_glass(
        conn: psycopg.Connection[tuple[object, ...]],
        run_id: str | None,
        event: Event,
        command: str,
    ) -> None:
        """Record a break-glass run (who, when, why) in `pgwarden.break_glass`."""
        d = event.data
        conn.execute(
            sql.SQL(
                "INSERT INTO pgwarden.break_glass (run_id, at, environment, command, "
                "session_user_name, current_user_name, os_user, host, reason) "
                "VALUES ({}, to_timestamp({}), {})"
            ).format(
                sql.Literal(run_id),
                sql.Literal(event.at),
                sql.SQL(", ").join(
                    sql.Literal(str(v))
                    for v in (
                        d["environment"],
                        command,
                        d["session_user"],
                        d["current_user"],
                        d["os_user"],
                        d["host"],
                        d["reason"],
                    )
                ),
            )
        )

    @staticmethod
    def cancel_requested(conn: psycopg.Connection[tuple[object, ...]], run_id: str) -> bool:
        row = conn.execute(
            sql.SQL("SELECT cancel_requested FROM pgwarden.runs WHERE id = {}").format(
                sql.Literal(run_id)
            )
        ).fetchone()
        return bool(row and row[0])


_STEP_STATE = {
    "step_started": "running",
    "step_done": "done",
    "step_failed": "failed",
    "step_skipped": "skipped",
    "cancelled": "cancelled",
}


def plan_to_records(plan: Plan, keys: Sequence[str]) -> list[dict[str, Any]]:
    """The plan as stored in `pgwarden.runs.plan`, enough for `resume` to rebuild it."""
    return [
        {
            "index": s.index,
            "key": k,
            "sql": s.sql,
            "path": s.location.path,
            "line": s.location.line,
            "column": s.location.column,
            "transaction": s.transaction,
            "tx_mode": s.tx_mode.value,
            "destroys": list(s.effects.destroys),
        }
        for s, k in zip(plan.steps, keys, strict=True)
    ]


def plan_from_records(records: Sequence[dict[str, Any]], server_version: int | None) -> Plan:
    """Rebuild a stored plan (statements are parsed and analysed again)."""
    from pgwarden.analysis.locks import analyse
    from pgwarden.analysis.parse import parse
    from pgwarden.location import SourceLocation
    from pgwarden.plan import TxMode

    steps = []
    for i, r in enumerate(records):
        stmts = parse(str(r["sql"]), str(r["path"]))
        tree = stmts[0].tree
        steps.append(
            Step(
                index=i,
                sql=str(r["sql"]),
                location=SourceLocation(str(r["path"]), int(r["line"]), int(r["column"])),
                tree=tree,
                tx_mode=TxMode(str(r["tx_mode"])),
                transaction=None if r["transaction"] is None else int(r["transaction"]),
                effects=analyse(tree, server_version=server_version),
            )
        )
    return Plan(tuple(steps), tuple(dict.fromkeys(str(r["path"]) for r in records)), server_version)
