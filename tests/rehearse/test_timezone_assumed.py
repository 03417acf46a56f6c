"""When nothing says production's session TimeZone, the rehearsal says which it assumed.

`ALTER COLUMN ... TYPE timestamptz` from `timestamp` is in place only in UTC. A
rehearsal with the schema from SQL (an Alembic range without --schema-from, SQL
files) and no snapshot ran in the copy's UTC silently; a snapshot written before
snapshots recorded the TimeZone loaded as UTC silently. Now both say the TimeZone
the steps ran with, that it is assumed, what it changes here, and how to give the
real one: --timezone NAME, rehearse.timezone, --schema-from or a new snapshot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from pgwarden.analysis.context import save_snapshot, take_snapshot
from tests.rehearse.conftest import write

SCHEMA = "CREATE TABLE t (id bigint PRIMARY KEY, ts timestamp NOT NULL);\n"
STEP = "ALTER TABLE t ALTER COLUMN ts TYPE timestamptz;\n"
HOW = (
    "give production's with --timezone NAME (or rehearse.timezone in the configuration; "
    "`SHOW TimeZone` in a migration session there prints it), --schema-from DSN, or a stats "
    "snapshot from `pgwarden stats dump`, which records it"
)


def test_nothing_says_it_the_note_says_utc_was_assumed(run: Any, tmp_path: Path) -> None:
    step = write(tmp_path, "001_aware.sql", STEP)
    result = run([step], schema_sql=SCHEMA, default_rows=100)
    assert result.status == "completed", result.steps
    assert (
        "the steps ran with TimeZone 'UTC', the rehearsal database's default, since nothing "
        "said what production's is: a timestamp <-> timestamptz change is done in place only "
        "in UTC and rewrites the table under ACCESS EXCLUSIVE elsewhere (here: step 0 (ALTER "
        f"TABLE t ALTER COLUMN ts TYPE timestamptz) in place; production's TimeZone decides); "
        f"{HOW}"
    ) in result.notes, result.notes
    doc = result.to_dict()
    assert doc["timezone"] == {
        "name": "UTC",
        "source": "the rehearsal database's default",
        "assumed": "nothing said what production's is",
    }


def test_an_old_snapshot_is_said_to_have_no_timezone(run: Any, db: str, tmp_path: Path) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET TimeZone = 'Europe/Paris'")
    path = tmp_path / "stats.json"
    save_snapshot(take_snapshot(db, sample_s=0.05), path)
    recorded = run([write(tmp_path, "001.sql", STEP)], schema_sql=SCHEMA, stats_file=path)
    (alter,) = [s for s in recorded.steps if "ALTER TABLE" in s.sql]
    assert alter.rewrites  # the snapshot's Europe/Paris: rewritten, as in production
    assert recorded.to_dict()["timezone"]["assumed"] is None
    # the same snapshot as an older pgwarden wrote it: no TimeZone in its catalog
    data = orjson.loads(path.read_bytes())
    del data["catalog"]["timezone"]
    path.write_bytes(orjson.dumps(data))
    old = run([write(tmp_path, "001.sql", STEP)], schema_sql=SCHEMA, stats_file=path)
    said = [n for n in old.notes if "TimeZone" in n]
    assert said == [
        "the steps ran with TimeZone 'UTC', the rehearsal database's default, since stats.json "
        "does not record the session TimeZone (written by an older pgwarden; regenerate it "
        "with `pgwarden stats dump`): a timestamp <-> timestamptz change is done in place only "
        "in UTC and rewrites the table under ACCESS EXCLUSIVE elsewhere (here: step 0 (ALTER "
        f"TABLE t ALTER COLUMN ts TYPE timestamptz) in place; production's TimeZone decides); "
        f"{HOW}"
    ], old.notes


def _cli(tmp_path: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "schema.sql").write_text(SCHEMA)
    write(tmp_path, "001.sql", STEP)
    env = dict(os.environ, PGWARDEN_REHEARSALS=str(tmp_path / "records"), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", "rehearse", "001.sql", "--schema", "schema.sql",
         "--database-url", dsn, "--rows-cap", "100", "--format", "json", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize("how", ["option", "config"])
def test_production_timezone_given_on_the_command_line_or_config(
    pg_cluster: Any, tmp_path: Path, how: str
) -> None:
    if how == "option":
        out = _cli(tmp_path, pg_cluster.dsn(), "--timezone", "Europe/Paris")
        origin = "--timezone"
    else:
        (tmp_path / "pgwarden.toml").write_text('[rehearse]\ntimezone = "Europe/Paris"\n')
        out = _cli(tmp_path, pg_cluster.dsn())
        origin = "rehearse.timezone in "
    assert out.returncode in (0, 1), out.stderr
    doc = json.loads(out.stdout)
    (alter,) = [s for s in doc["steps"] if "ALTER TABLE" in s["sql"]]
    assert alter["rewrites"] == ["t"]  # rewritten under Paris time, as production would
    assert doc["timezone"]["name"] == "Europe/Paris" and doc["timezone"]["assumed"] is None
    assert doc["timezone"]["source"].startswith(origin), doc["timezone"]
    assert not any("assumed" in n or "default, since" in n for n in doc["notes"]), doc["notes"]


def test_a_timezone_the_server_does_not_know_is_a_usage_error(
    pg_cluster: Any, tmp_path: Path
) -> None:
    out = _cli(tmp_path, pg_cluster.dsn(), "--timezone", "Mars/Olympus")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "TimeZone 'Mars/Olympus' (--timezone): the rehearsal server does not know it" in (
        out.stderr
    )
    assert "Traceback" not in out.stderr
