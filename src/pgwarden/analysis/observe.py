"""Run a statement on a live server and observe what it locks, rewrites and scans.

The evidence the lock model is checked against (tests/analysis/test_locks_live.py)
and the verdict bench (bench/verdict_check.py) is traced from.

Transactional statements: `BEGIN; <statement>;` then read `pg_locks` for the
own backend, relfilenodes and `pg_stat_xact_user_tables`, then `ROLLBACK`.

Statements that cannot run in a transaction block: a blocker session holds
ACCESS EXCLUSIVE on the target, the statement runs in autocommit from a
second session, and an observer polls `pg_locks` for that backend: the lock it
waits for, and every lock seen granted until it finishes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgwarden.analysis.catalog import Catalog, read_catalog

Conn = psycopg.Connection[Any]

RELATIONS_SQL = """
SELECT c.oid::int8, c.oid::regclass::text, c.relfilenode::int8, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid >= 16384 AND n.nspname NOT LIKE 'pg_toast%'
"""

LOCKS_SQL = """
SELECT relation::int8, mode, granted FROM pg_locks
WHERE pid = %s AND locktype = 'relation' AND relation::int8 >= 16384
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""

SCANS_SQL = """
SELECT relid::int8, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables
"""


@dataclass
class Observed:
    """What the server did."""

    locks: set[tuple[str, str]] = field(default_factory=set)  # (relation, pg mode)
    new_locks: set[tuple[str, str]] = field(default_factory=set)  # on relations created
    created: set[str] = field(default_factory=set)
    rewrites: set[str] = field(default_factory=set)
    scans: set[str] = field(default_factory=set)
    waited_for: tuple[str, str] | None = None  # non-transactional: the first blocked request

    def strongest(self) -> dict[str, str]:
        """Strongest pg mode per relation."""
        from pgwarden.analysis.effects import LockMode

        out: dict[str, LockMode] = {}
        for rel, mode in self.locks:
            m = LockMode.from_pg_name(mode)
            if m > out.get(rel, 0):
                out[rel] = m
        return {k: v.pg_name for k, v in out.items()}


def relations(conn: Conn) -> dict[int, tuple[str, int, str]]:
    """oid -> (regclass text, relfilenode, relkind) of every non-toast user relation."""
    return {int(r[0]): (str(r[1]), int(r[2]), str(r[3])) for r in conn.execute(RELATIONS_SQL)}


def rewrites_between(
    before: dict[int, tuple[str, int, str]], after: dict[int, tuple[str, int, str]]
) -> set[str]:
    out: set[str] = set()
    after_by_name = {name: node for name, node, _ in after.values()}
    for oid, (name, node, _kind) in before.items():
        if node == 0:
            continue
        if oid in after:
            if after[oid][1] != node:
                out.add(name)
        elif name in after_by_name and after_by_name[name] != node:
            out.add(name)  # dropped and rebuilt under the same name (ALTER TYPE indexes)
    return out


def name_locks(
    rows: list[tuple[Any, ...]],
    before: dict[int, tuple[str, int, str]],
    after: dict[int, tuple[str, int, str]],
    obs: Observed,
) -> None:
    old_names = {v[0] for v in before.values()}
    for oid, mode, _granted in rows:
        oid = int(oid)
        if oid in before:
            obs.locks.add((before[oid][0], mode))
        elif oid in after:
            name = after[oid][0]
            target = obs.locks if name in old_names else obs.new_locks
            target.add((name, mode))


def observe_in_transaction(conn: Conn, statements: list[str]) -> Observed:
    """Run `statements` in one transaction, observe, roll back."""
    before = relations(conn)
    obs = Observed()
    conn.execute("BEGIN")
    try:
        scans_before = scan_counts(conn)
        for stmt in statements:
            _run(conn, stmt)
        pid = conn.info.backend_pid
        rows = list(conn.execute(LOCKS_SQL, (pid,)))
        after = relations(conn)
        scans_after = scan_counts(conn)
    finally:
        conn.execute("ROLLBACK")
    name_locks(rows, before, after, obs)
    old_names = {v[0] for v in before.values()}
    obs.created = {name for oid, (name, _, _) in after.items() if oid not in before} - old_names
    obs.rewrites = rewrites_between(before, after)
    obs.scans = {
        before[oid][0]
        for oid, n in scans_after.items()
        if oid in before and n > scans_before.get(oid, 0)
    }
    return obs


def scan_counts(conn: Conn) -> dict[int, int]:
    """Sequential plus index scans per table, as this backend counts them so far."""
    return {int(r[0]): int(r[1]) for r in conn.execute(SCANS_SQL)}


def _run(conn: Conn, stmt: str) -> None:
    if stmt.lstrip().upper().startswith("COPY"):
        with conn.cursor().copy(stmt.encode()) as copy:
            if "FROM STDIN" in stmt.upper():
                copy.write_row((1000, 1000))
            else:
                for _ in copy:
                    pass
        return
    conn.execute(stmt.encode())


def observe_autocommit(
    dsn: str, search_path: str, statement: str, target: str, blocker_mode: str
) -> Observed:
    """Run a non-transactional statement while a blocker holds `blocker_mode` on `target`."""
    obs = Observed()
    with (
        psycopg.connect(dsn, autocommit=True) as blocker,
        psycopg.connect(dsn, autocommit=True) as runner,
        psycopg.connect(dsn, autocommit=True) as watcher,
    ):
        for c in (blocker, runner, watcher):
            c.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(search_path)))
        before = relations(watcher)
        blocker.execute("BEGIN")
        blocker.execute(
            sql.SQL("LOCK TABLE {} IN {} MODE").format(sql.SQL(target), sql.SQL(blocker_mode))
        )
        pid = runner.info.backend_pid
        error: list[BaseException] = []

        def run() -> None:
            try:
                runner.execute(statement.encode())
            except BaseException as exc:  # reported by the caller
                error.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        rows: list[tuple[Any, ...]] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = list(watcher.execute(LOCKS_SQL, (pid,)))
            rows += now
            waiting = [r for r in now if not r[2]]
            if waiting:
                oid = int(waiting[0][0])
                obs.waited_for = (before[oid][0] if oid in before else str(oid), waiting[0][1])
                break
            time.sleep(0.005)
        blocker.execute("ROLLBACK")
        while thread.is_alive():
            rows += list(watcher.execute(LOCKS_SQL, (pid,)))
            thread.join(0.002)
        thread.join()
        if error:
            raise error[0]
        after = relations(watcher)
    name_locks(rows, before, after, obs)
    old_names = {v[0] for v in before.values()}
    obs.created = {name for oid, (name, _, _) in after.items() if oid not in before} - old_names
    obs.rewrites = rewrites_between(before, after)
    return obs


def fresh_schema(conn: Conn, name: str, setup: str) -> Catalog:
    """Create schema `name`, put it first on search_path, run `setup`, read the catalog."""
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(name)))
    conn.execute("RESET TimeZone")
    if setup.strip():
        conn.execute(setup.encode())
    return read_catalog(conn)


def catalog_after(conn: Conn, statements: list[Any]) -> Catalog:
    """The catalog after `statements` (parsed), read in a transaction that is rolled back."""
    conn.execute("BEGIN")
    try:
        for stmt in statements:
            _run(conn, stmt.text)
        return read_catalog(conn)
    finally:
        conn.execute("ROLLBACK")


def drop_schema(conn: Conn, name: str) -> None:
    """Remove a case's schema (and anything else it created)."""
    conn.execute("RESET search_path")
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
