"""The retry a `lint --fix` header asks for works as written, copied into a shell.

A DETACH PARTITION ... CONCURRENTLY that completed cannot run again in SQL: the
header says to retry with `pgwarden apply`, and spells the command out. On a
database psql ran the file on (data, no pgwarden stamp) that command needs
--restamp, as the header says; without it apply refuses and names it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import load_snapshot
from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from pgwarden.sample import create_sample_schema
from tests.fixtures.pg import new_database
from tests.fixtures.run import pgwarden

CASES = Path(__file__).resolve().parents[1] / "rules" / "cases"
DETACH = "ALTER TABLE events DETACH PARTITION events_2023;\n"
COMMAND = re.compile(r"in full: (pgwarden apply FILE [^(]*?) \(add (--restamp) when")


def _database(cluster: Cluster) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        create_sample_schema(c, invoices_rows=300, accounts_rows=50)
        c.execute(
            "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);"
            "CREATE TABLE events_2023 PARTITION OF events "
            "FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')"
        )
    return dsn


def _run(dsn: str, stmts: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for q in stmts:
            c.execute(q.encode())


def test_the_header_retry_command_works_as_written(pg_any: Cluster, tmp_path: Path) -> None:
    snap = load_snapshot(CASES / "demo-stats.json")
    f = tmp_path / "001.sql"
    f.write_text(DETACH)
    plan, result = lint([f], context=Context(snap, snap.catalog, pg_any.installation.major, "x"))
    write_fixes(fix_plan(plan, result, snap))
    text = f.read_text()
    found = COMMAND.search(text)
    assert found, text
    dsn = _database(pg_any)
    stmts = [s.text for s in parse(text)]
    _run(dsn, stmts)
    with pytest.raises(psycopg.errors.UndefinedTable, match="is not a partition of"):
        _run(dsn, stmts)  # the retry psql would make
    words = [
        {"FILE": str(f), "DSN": dsn, "NAME": "staging"}.get(w, w)
        for w in shlex.split(found.group(1))
    ]
    assert words[:2] == ["pgwarden", "apply"]
    # No terminal here: the undeclared environment is protected, --yes stands for the
    # confirmation a user types.
    refused = pgwarden(*words[1:], "--yes", cwd=tmp_path)
    assert refused.returncode == 1 and "--restamp" in refused.stderr, refused.stderr
    done = pgwarden(*words[1:], found.group(2), "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already done" in done.stdout + done.stderr, done.stdout + done.stderr
