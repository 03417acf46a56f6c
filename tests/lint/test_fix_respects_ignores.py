"""`lint --fix` leaves a hazard the user ignored as it is.

Before, the rewrite linted the plan again with every rule, so a CREATE INDEX whose PW101
the configuration (`ignore = ["PW101"]`) or an inline `-- pgwarden: ignore PW101` set
aside was still rewritten into CREATE INDEX CONCURRENTLY outside the transaction.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Settings
from tests.fixtures.pg import new_database


@pytest.mark.parametrize(
    ("text", "settings"),
    [
        ("CREATE INDEX i ON orders (x);\n", Settings(ignore=("PW101",))),
        ("-- pgwarden: ignore PW101 a small lookup table\nCREATE INDEX i ON orders (x);\n", None),
    ],
    ids=["configuration", "inline"],
)
def test_an_ignored_hazard_is_not_rewritten(
    tmp_path: Path, text: str, settings: Settings | None
) -> None:
    f = tmp_path / "001.sql"
    f.write_text(text)
    plan, result = lint([f], context=Context(None, None, 18, "x"), settings=settings)
    assert "PW101" not in {x.code for x in result.findings}
    write_fixes(fix_plan(plan, result))
    fixed = f.read_text()
    assert "CONCURRENTLY" not in fixed and "CREATE INDEX" in fixed, fixed


IGNORED_FIRST = (
    "-- pgwarden: ignore PW101 settings has 40 rows\n"
    "CREATE INDEX a_idx ON settings (k);\n"
    "CREATE INDEX b_idx ON orders (x);\n"
)


def test_an_inline_ignore_of_the_first_build_does_not_block_the_fix_of_the_next(
    tmp_path: Path, pg_any: Cluster
) -> None:
    """The ignore above the first statement stays with that statement. Before, it went to
    the first statement written, the build of b_idx the fix moves before the transaction:
    the re-lint then found a_idx's PW101 and dropped the fix, and the file was written with
    both builds plain in one BEGIN ... COMMIT (PW101 on b_idx, a new PW121)."""
    major = pg_any.installation.major
    f = tmp_path / "001.sql"
    f.write_text(IGNORED_FIRST)
    ctx = Context(None, None, major, "x")
    plan, result = lint([f], context=ctx)
    before = {x.code for x in result.findings}
    fixes = fix_plan(plan, result)
    assert "PW101" in {x.code for x in fixes[0].fixed}
    write_fixes(fixes)
    fixed = f.read_text()
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS b_idx ON orders (x);" in fixed, fixed
    assert (
        "-- pgwarden: ignore PW101 settings has 40 rows\n"
        "CREATE INDEX IF NOT EXISTS a_idx ON settings (k);\n"
    ) in fixed, fixed
    _, after = lint([f], context=ctx)
    codes = {x.code for x in after.findings}
    assert "PW101" not in codes and codes <= before, (codes, fixed)

    dsn = new_database(pg_any)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE settings (k text); CREATE TABLE orders (x bigint)")
        for _ in range(2):  # the fixed file runs again as its header says
            for q in parse(fixed):
                c.execute(q.text.encode())
        rows = c.execute(
            "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
            "WHERE indrelid IN ('settings'::regclass, 'orders'::regclass) ORDER BY 1"
        ).fetchall()
    assert rows == [("a_idx", True), ("b_idx", True)]
