"""The rehearsal runs with the session TimeZone production's migration sessions get.

`ALTER COLUMN ... TYPE timestamptz` from `timestamp` is in place only under UTC; the
source's sessions default to Europe/Paris (ALTER DATABASE ... SET TimeZone), so the
change rewrites the table there, and the rehearsal must see that rewrite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgwarden.analysis.context import take_snapshot
from tests.rehearse.conftest import write

SOURCE = "CREATE TABLE t (id bigint PRIMARY KEY, ts timestamp NOT NULL);"
STEP = "ALTER TABLE t ALTER COLUMN ts TYPE timestamptz;\n"


def _source(dsn: str, tz: str | None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SOURCE)
        if tz is not None:
            row = conn.execute("SELECT current_database()").fetchone()
            assert row is not None
            conn.execute(f"ALTER DATABASE {row[0]} SET TimeZone = '{tz}'")


@pytest.mark.parametrize(("tz", "rewritten"), [("Europe/Paris", True), ("UTC", False)])
def test_the_steps_run_in_the_sources_timezone(
    run: Any, db: str, tmp_path: Path, tz: str, rewritten: bool
) -> None:
    _source(db, tz)
    step = write(tmp_path, "001_aware.sql", STEP)
    result = run([step], schema_sql=None, schema_from=db, default_rows=200)
    assert result.status == "completed", result.steps
    (alter,) = [s for s in result.steps if "ALTER TABLE" in s.sql]
    # Paris: rewritten, as production runs it (was: in place, the copy's sessions were UTC)
    assert bool(alter.rewrites) is rewritten, alter
    said = [n for n in result.notes if "TimeZone" in n]
    assert bool(said) is rewritten, result.notes
    if rewritten:
        assert "'Europe/Paris'" in said[0]
        # the static model, re-run on the copy, sees the rewrite too (its advice says so)
        assert [f.help.split(":")[0] for f in result.findings if f.code == "RH101"] == [
            "avoid the rewrite"
        ]


def test_a_reset_in_the_steps_gets_the_sources_too(run: Any, db: str, tmp_path: Path) -> None:
    """RESET TimeZone in a step goes back to the copy's default: the source's, as in production."""
    _source(db, "Europe/Paris")
    step = write(
        tmp_path,
        "001_check.sql",
        "RESET TimeZone;\nDO $$ BEGIN IF current_setting('TimeZone') <> 'Europe/Paris' THEN "
        "RAISE EXCEPTION 'TimeZone %', current_setting('TimeZone'); END IF; END $$;\n",
    )
    result = run([step], schema_sql=None, schema_from=db, default_rows=50)
    assert result.status == "completed", [(s.sql, s.error) for s in result.steps]


def test_without_a_source_the_snapshots_timezone(run: Any, db: str, tmp_path: Path) -> None:
    """Schema from SQL, sizes from a snapshot: the snapshot's catalog TimeZone is production's."""
    _source(db, "Europe/Paris")
    snapshot = take_snapshot(db, sample_s=0.05)
    step = write(tmp_path, "001_aware.sql", STEP)
    result = run([step], schema_sql=SOURCE, snapshot=snapshot)
    (alter,) = [s for s in result.steps if "ALTER TABLE" in s.sql]
    assert alter.rewrites, alter
    assert any("stats snapshot" in n and "'Europe/Paris'" in n for n in result.notes), result.notes
