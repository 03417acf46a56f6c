"""`lint --fix` leaves statements PostgreSQL refuses in a transaction block outside the
BEGIN ... COMMIT it writes: ALTER SYSTEM, CREATE / DROP TABLESPACE, DISCARD ALL, a CREATE
SUBSCRIPTION that creates its slot, DROP SUBSCRIPTION.

Before, the lock model took them as transactional, so the fix wrapped them with the file's
other statements and the fixed file failed on its first run ('ALTER SYSTEM cannot run
inside a transaction block'), where the original ran under psql.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

ORIGINAL = (
    "ALTER SYSTEM RESET work_mem;\n"
    "CREATE INDEX customers_email_idx ON customers (email);\n"
    "DROP TABLESPACE IF EXISTS old_space;\n"
    "ALTER TABLE customers ADD COLUMN note text;\n"
)


def _fix(path: Path, major: int) -> tuple[set[str], set[str], str]:
    ctx = Context(None, None, major, "x")
    plan, result = lint([path], context=ctx)
    fixes = fix_plan(plan, result)
    write_fixes(fixes)
    _, after = lint([path], context=ctx)
    return {x.code for x in result.findings}, {x.code for x in after.findings}, path.read_text()


def _outside(text: str, head: str) -> bool:
    """The statement holding `head` runs outside every BEGIN ... COMMIT."""
    open_tx = False
    for stmt in parse(text):
        word = stmt.text.split()[0].upper()
        if word in ("BEGIN", "COMMIT"):
            open_tx = word == "BEGIN"
        elif head in stmt.text:  # or in the block the fix wraps it in
            return not open_tx
    raise AssertionError(f"{head} not in {text}")


def test_fixed_file_runs_them_outside_its_transactions(pg_any: Cluster, tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(ORIGINAL)
    before, after, fixed = _fix(f, pg_any.installation.major)
    assert "PW101" in before and "PW101" not in after and after <= before, (after, fixed)
    assert _outside(fixed, "ALTER SYSTEM") and _outside(fixed, "DROP TABLESPACE"), fixed
    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE customers (id bigint, email text)")
        for _ in range(2):  # and again, as the header says
            for stmt in parse(fixed):
                c.execute(stmt.text.encode())
        assert c.execute("SELECT to_regclass('customers_email_idx')").fetchone() != (None,)


@pytest.mark.parametrize(
    ("statement", "outside"),
    [
        ("CREATE SUBSCRIPTION sub CONNECTION 'dbname=app' PUBLICATION pub", True),
        (
            "CREATE SUBSCRIPTION sub CONNECTION 'dbname=app' PUBLICATION pub "
            "WITH (connect = false)",
            False,
        ),
        ("DROP SUBSCRIPTION sub", True),
        ("DISCARD ALL", True),
    ],
)
def test_subscriptions_and_discard(statement: str, outside: bool, tmp_path: Path) -> None:
    """Not run here: a subscription that connects needs a publisher."""
    f = tmp_path / "001.sql"
    f.write_text(
        f"BEGIN;\nALTER TABLE customers ADD COLUMN note text;\n{statement};\n"
        "CREATE INDEX customers_email_idx ON customers (email);\nCOMMIT;\n"
    )
    _, _, fixed = _fix(f, 17)
    assert _outside(fixed, statement.split()[0] + " " + statement.split()[1]) is outside, fixed


SUBSCRIPTION_HEADER = "-- A CREATE SUBSCRIPTION below creates its replication slot"


def test_a_subscription_that_creates_its_slot_is_told_and_run_from_after_it(
    pg_any: Cluster, tmp_path: Path
) -> None:
    """It cannot run in a transaction block or a DO block, so nothing can skip it once it
    has run: run again, the file stops there having changed nothing ("already exists"),
    as its header says, and the file from the statement after it completes. Against a
    publisher of the same version (wal_level = logical): the subscription connects and
    creates its slot there."""
    publisher = Cluster.start(pg_any.installation, settings={"wal_level": "logical"})
    try:
        with psycopg.connect(publisher.dsn(), autocommit=True) as c:
            c.execute("CREATE TABLE customers (id bigint PRIMARY KEY, email text)")
            c.execute("CREATE PUBLICATION customers_pub FOR TABLE customers")
        conninfo = publisher.dsn().replace("'", "''")
        statement = (
            f"CREATE SUBSCRIPTION customers_sub CONNECTION '{conninfo}' PUBLICATION customers_pub"
        )
        f = tmp_path / "001.sql"
        f.write_text(f"ALTER TABLE customers ADD COLUMN tier text;\n{statement};\n{ORIGINAL}")
        before, after, fixed = _fix(f, pg_any.installation.major)
        assert "PW101" in before and "PW101" not in after and after <= before, (after, fixed)
        assert SUBSCRIPTION_HEADER in fixed and _outside(fixed, "CREATE SUBSCRIPTION"), fixed
        stmts = [s.text for s in parse(fixed)]
        at = next(i for i, q in enumerate(stmts) if "CREATE SUBSCRIPTION" in q)
        dsn = new_database(pg_any)
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE customers (id bigint PRIMARY KEY, email text)")
            try:
                for q in stmts:  # the first run
                    c.execute(q.encode())
                for q in stmts[:at]:  # run again: the file stops at the subscription
                    c.execute(q.encode())
                with pytest.raises(psycopg.errors.DuplicateObject, match="already exists"):
                    c.execute(stmts[at].encode())
                for q in stmts[at + 1 :]:  # the file from the statement after it
                    c.execute(q.encode())
                subs = c.execute(  # pg_subscription is the cluster's: this database's
                    "SELECT subname::text FROM pg_subscription WHERE subdbid = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ).fetchall()
                assert subs == [("customers_sub",)]
            finally:
                c.execute("ALTER SUBSCRIPTION customers_sub DISABLE")
                c.execute("DROP SUBSCRIPTION customers_sub")  # and its slot on the publisher
    finally:
        publisher.stop()


def test_a_subscription_without_a_slot_needs_no_header_line(tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(
        "CREATE SUBSCRIPTION sub CONNECTION 'dbname=app' PUBLICATION pub "
        f"WITH (connect = false);\n{ORIGINAL}"
    )
    _, _, fixed = _fix(f, 17)
    assert SUBSCRIPTION_HEADER not in fixed
