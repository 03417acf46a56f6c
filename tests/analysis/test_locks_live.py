"""The lock model against live servers: every case on every PostgreSQL version found.

For each case: a fresh schema, the setup, the catalog read with `read_catalog`,
then the statement in a transaction (`pg_locks` of the own backend,
relfilenodes and `pg_stat_xact_user_tables` before and after, then ROLLBACK).
The model must match exactly: the relations locked and the strongest mode per
relation, the full set of (relation, mode) pairs, the relations rewritten, the
relations created, and the tables scanned.

Statements that cannot run in a transaction block are run in autocommit while
a blocker holds the weakest mode that conflicts with the predicted one: the
statement must queue for exactly the predicted mode; every lock seen while it
runs must be predicted; rewrites and created relations must match; and the
same statement inside BEGIN must fail with SQLSTATE 25001.

Cases newer than a server (SET EXPRESSION on 15/16) must fail there with a
syntax error instead.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pgwarden.analysis import observe as live
from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.effects import Effects, LockMode
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.parse import parse
from pgwarden.pg.cluster import Cluster
from tests.analysis.lock_cases import CASES, Case
from tests.fixtures.pg import new_database

# Reads by DML and SELECT depend on the plan, not on a lock being held; TRUNCATE's
# "scan" is the rebuild of its indexes over the new, empty file. Scans are not compared.
_PLAN_DEPENDENT_SCANS = frozenset(
    {
        "InsertStmt",
        "UpdateStmt",
        "DeleteStmt",
        "MergeStmt",
        "SelectStmt",
        "CopyStmt",
        "TruncateStmt",
    }
)

_databases: dict[int, str] = {}
_connections: dict[int, psycopg.Connection[Any]] = {}


@pytest.fixture
def lockdb(pg_any: Cluster) -> tuple[int, str, psycopg.Connection[Any]]:
    """(major, DSN, autocommit connection) of one database per server version."""
    major = pg_any.installation.major
    if major not in _databases or _connections[major].closed:
        _databases[major] = new_database(pg_any)
        _connections[major] = conn = psycopg.connect(_databases[major], autocommit=True)
        if conn.execute("SELECT 1 FROM pg_tablespace WHERE spcname = 'pgwarden_ts'").fetchone():
            return major, _databases[major], conn
        # An in-place tablespace (a directory under pg_tblspc) for SET TABLESPACE cases.
        conn.execute("SET allow_in_place_tablespaces = on")
        conn.execute("CREATE TABLESPACE pgwarden_ts LOCATION ''")
    return major, _databases[major], _connections[major]


def teardown_module() -> None:
    for conn in _connections.values():
        conn.close()


def model(
    sql: str, catalog: Catalog, major: int, conn: psycopg.Connection[Any] | None = None
) -> Effects:
    """Union of the model's effects over the statements of `sql`.

    Statement i is analysed with the catalog as it is after statements 0..i-1
    (run and rolled back on `conn`), as a migration tool tracking its own
    changes would see it.
    """
    stmts = parse(sql)
    parts = []
    for i, stmt in enumerate(stmts):
        cat = catalog if i == 0 or conn is None else live.catalog_after(conn, stmts[:i])
        parts.append(analyse(stmt.tree, catalog=cat, server_version=major))
    if len(parts) == 1:
        return parts[0]
    return Effects(
        locks=tuple(lk for p in parts for lk in p.locks),
        rewrites=tuple(dict.fromkeys(r for p in parts for r in p.rewrites)),
        scans=tuple(dict.fromkeys(r for p in parts for r in p.scans)),
        destroys=tuple(d for p in parts for d in p.destroys),
        creates=tuple(dict.fromkeys(r for p in parts for r in p.creates)),
        transactional=all(p.transactional for p in parts),
        assumptions=tuple(a for p in parts for a in p.assumptions),
    )


def pairs(effects: Effects) -> set[tuple[str, str]]:
    created = set(effects.creates)
    return {(lk.relation, lk.mode.pg_name) for lk in effects.locks if lk.relation not in created}


def strongest(effects: Effects) -> dict[str, str]:
    created = set(effects.creates)
    return {r: m.pg_name for r, m in effects.strongest().items() if r not in created}


def blocker_mode(mode: LockMode) -> str:
    """The weakest mode that conflicts with `mode`."""
    return next(m for m in LockMode if m.conflicts_with(mode)).title


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lock_model_matches_server(
    case: Case, lockdb: tuple[int, str, psycopg.Connection[Any]]
) -> None:
    major, dsn, conn = lockdb
    if (
        case.extension is not None
        and not conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = %s", (case.extension,)
        ).fetchone()
    ):
        pytest.skip(f"extension {case.extension} is not installed with PostgreSQL {major}")
    schema = f"c_{case.id}"
    sql = case.sql.replace("{s}", schema)
    try:
        catalog = live.fresh_schema(conn, schema, case.setup.replace("{s}", schema))
        if not case.min_version <= major <= case.max_version:
            with pytest.raises(psycopg.errors.SyntaxError):
                conn.execute(sql.encode())
            return
        predicted = model(sql, catalog, major, conn)
        kinds = {s.kind for s in parse(sql)}
        if case.blocked_on is None:
            assert predicted.transactional
            observed = live.observe_in_transaction(conn, [s.text for s in parse(sql)])
            assert strongest(predicted) == observed.strongest()
            assert pairs(predicted) == observed.locks
            if not kinds & _PLAN_DEPENDENT_SCANS:
                assert set(predicted.scans) == observed.scans
        else:
            _check_not_transactional(conn, sql, predicted)
            target = catalog.resolve(None, case.blocked_on)
            assert target is not None
            mode = predicted.strongest()[target.name]
            observed = live.observe_autocommit(dsn, schema, sql, target.name, blocker_mode(mode))
            assert observed.waited_for == (target.name, mode.pg_name)
            assert observed.locks <= pairs(predicted)
        assert set(predicted.rewrites) == observed.rewrites
        assert set(predicted.creates) == observed.created
        assert observed.new_locks <= {(r, m.pg_name) for r in observed.created for m in LockMode}
    finally:
        live.drop_schema(conn, schema)


def _check_not_transactional(conn: psycopg.Connection[Any], sql: str, predicted: Effects) -> None:
    assert predicted.transactional is False
    conn.execute("BEGIN")
    try:
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):
            conn.execute(sql.encode())
    finally:
        conn.execute("ROLLBACK")


def test_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 90
    assert len({c.id for c in CASES}) == len(CASES)
