"""A `lint --fix` output whose statements change data in a way a second run repeats says so
in its header: nothing can skip them, so the whole-file retry the header otherwise allows
would scale a column twice (SET cents = cents * 100) or insert the rows again.

Run on a live server: a first run that stopped after the data change's COMMIT (at the
index build), then what the header says (the file from the statement that failed) leaves
what one run of the original does; the whole file again would not.
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

SETUP = """
CREATE TABLE prices (id bigint PRIMARY KEY, cents bigint NOT NULL, label text);
INSERT INTO prices SELECT g, g, 'p' || g FROM generate_series(1, 50) g;
CREATE TABLE tiers (name text);
"""
BUILD = "CREATE INDEX prices_label_idx ON prices (label);\n"
HEADER = "-- An INSERT, COPY FROM or UPDATE from a column's own value below changes data again"


def _fixed(tmp_path: Path, text: str, major: int) -> str:
    f = tmp_path / "001.sql"
    f.write_text(text)
    ctx = Context(None, None, major, "x")
    plan, result = lint([f], context=ctx)
    fixes = fix_plan(plan, result)
    assert fixes, text
    write_fixes(fixes)
    _, after = lint([f], context=ctx)
    assert not {x.code for x in after.findings} & {x.code for x in fixes[0].fixed}
    return f.read_text()


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("UPDATE prices SET cents = cents * 100;", True),
        ("UPDATE prices p SET cents = p.cents * 100 WHERE id > 10;", True),
        ("INSERT INTO tiers VALUES ('free');", True),
        (
            "INSERT INTO prices VALUES (99, 1) ON CONFLICT (id)\n"
            "    DO UPDATE SET cents = prices.cents + 1;",
            True,
        ),
        ("COPY tiers FROM STDIN;", True),
        ("UPDATE prices SET label = 'x' WHERE id = 1;", False),
        ("INSERT INTO prices VALUES (99, 1) ON CONFLICT DO NOTHING;", False),
        (
            "INSERT INTO prices VALUES (99, 1) ON CONFLICT (id)\n"
            "    DO UPDATE SET cents = EXCLUDED.cents;",
            False,
        ),
        ("DELETE FROM prices WHERE id > 40;", False),
    ],
)
def test_the_header_says_which_data_changes_run_again(sql: str, said: bool, tmp_path: Path) -> None:
    text = _fixed(tmp_path, f"BEGIN;\n{sql}\nCOMMIT;\n{BUILD}", 17)
    assert (HEADER in text) is said, text


def _prices(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT id, cents, label FROM prices UNION ALL SELECT NULL, NULL, name FROM tiers "
            "ORDER BY 1, 3"
        ).fetchall()


def _database(cluster: Cluster) -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SETUP.encode())
    return dsn


def test_after_a_failure_past_the_commit_the_file_from_the_failed_statement_runs(
    pg_any: Cluster, tmp_path: Path
) -> None:
    original = (
        "BEGIN;\nUPDATE prices SET cents = cents * 100;\n"
        f"INSERT INTO tiers VALUES ('free');\nCOMMIT;\n{BUILD}"
    )
    text = _fixed(tmp_path, original, pg_any.installation.major)
    assert HEADER in text
    plain = _database(pg_any)
    with psycopg.connect(plain, autocommit=True) as c:
        for s in parse(original):
            c.execute(s.text.encode())
    stmts = [s.text for s in parse(text)]
    build = next(i for i, q in enumerate(stmts) if "CREATE INDEX" in q)
    dsn = _database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as c:
        for q in stmts[:build]:  # the build timed out: the data change had committed
            c.execute(q.encode())
        for q in stmts[build:]:  # the file from the statement that failed
            c.execute(q.encode())
    assert _prices(dsn) == _prices(plain)
    with psycopg.connect(dsn, autocommit=True) as c:  # what the whole file again does
        for q in stmts:
            c.execute(q.encode())
    assert _prices(dsn) != _prices(plain)
