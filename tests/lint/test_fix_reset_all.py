"""A fixed file's lock_timeout survives the file's own RESET ALL / DISCARD ALL.

Before, `SET lock_timeout = '2s'; RESET ALL; ALTER TABLE ...` was fixed into a file
whose bound came first and was reset by the RESET ALL before the ALTER: the fixed file
still reported PW120, and on a server its ALTER waited without a bound.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from tests.fixtures.pg import new_database

FILES = {
    "reset_all": "SET lock_timeout = '2s';\nRESET ALL;\nALTER TABLE orders ADD COLUMN note text;\n",
    "discard_all": "DISCARD ALL;\nALTER TABLE orders ADD COLUMN note text;\n",
}


def _run(c: psycopg.Connection[tuple[object, ...]], text: str) -> None:
    for stmt in parse(text):
        c.execute(stmt.text)


@pytest.mark.parametrize("shape", sorted(FILES))
def test_the_bound_is_set_again_after_a_reset(pg_cluster, tmp_path: Path, shape: str) -> None:
    f = tmp_path / "001.sql"
    f.write_text(FILES[shape])
    ctx = Context(None, None, pg_cluster.installation.major, "x")
    plan, result = lint([f], context=ctx)
    assert "PW120" in {x.code for x in result.findings}
    write_fixes(fix_plan(plan, result))
    fixed = f.read_text()
    _, again = lint([f], context=ctx)
    assert "PW120" not in {x.code for x in again.findings}, fixed
    dsn = new_database(pg_cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE orders (id int)")
        # What RESET ALL goes back to: unbounded, the ALTER fails with QueryCanceled.
        c.execute(f"ALTER DATABASE {c.info.dbname} SET statement_timeout = '15s'")
    with psycopg.connect(dsn) as blocker:
        blocker.execute("SELECT * FROM orders")  # holds ACCESS SHARE until rollback
        with (
            psycopg.connect(dsn, autocommit=True) as c,
            pytest.raises(psycopg.errors.LockNotAvailable),
        ):
            _run(c, fixed)
        blocker.rollback()
