"""Probe INSERTs respect the unique keys the synthetic rows were capped by.

A `char(2)` key holds 1,296 values, a boolean 2, an enum its labels: the rows
loaded take some or all of them, and a probe INSERT that repeats one fails with
23505, which counted as an error, not as traffic that a lock could block. The
writer now takes the keys still free (and a 1:1 child's rows the parent still
has), updates rows instead when none is left, and says so.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import psycopg

from pgwarden.rehearse.datagen import TablePlan, fill, read_tables
from pgwarden.rehearse.probes import ProbeSet
from tests.rehearse.conftest import write

SCHEMA = """
CREATE TYPE size AS ENUM ('s', 'm', 'l');
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
CREATE TABLE currencies (code varchar(3) UNIQUE NOT NULL, name text NOT NULL);
CREATE TABLE levels (n smallint UNIQUE NOT NULL);
CREATE TABLE variants (big boolean NOT NULL, size size NOT NULL, PRIMARY KEY (big, size));
CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL);
CREATE TABLE profiles (user_id bigint PRIMARY KEY REFERENCES users, bio text);
CREATE TABLE tags (id serial PRIMARY KEY, code varchar(2) UNIQUE);
CREATE TABLE teams (id bigserial PRIMARY KEY, name varchar(200) UNIQUE NOT NULL);
CREATE TABLE members (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users,
    team_id bigint NOT NULL REFERENCES teams, UNIQUE (user_id, team_id));
"""


def test_probe_inserts_take_free_keys_only(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(SCHEMA)
        tables = read_tables(conn)
        rows = {"countries": 1_250, "levels": 31_990, "profiles": 1_990, "tags": 1_200}
        fill(conn, tables, [TablePlan(n, rows.get(n, 2_000)) for n in tables])
    probes = ProbeSet(db, tables, list(tables), time.perf_counter(), pause_s=0.0)
    probes.start()
    try:  # until the small domains are used up (a few dozen keys each), at most 20 s
        deadline = time.monotonic() + 20
        small = ("countries", "levels", "variants", "tags")
        while time.monotonic() < deadline and any(
            p.kind == "write" and p.no_key_since is None and p.table in small for p in probes.probes
        ):
            time.sleep(0.1)
    finally:
        probes.stop()
    failed = {(p.table, p.kind): p.failures for p in probes.probes if p.failures}
    assert failed == {}  # was: 23505 on countries, levels, variants, tags; 23503 on profiles
    writers = {p.table: p for p in probes.probes if p.kind == "write"}
    inserted = {name: len(p.inserted) for name, p in writers.items()}
    # every key left was inserted, then none: 1,296 - 1,250, 32,000 - 31,990, 6 - 6,
    # the 10 users rows no profile had, then the rows the users writer added
    assert inserted["countries"] == 46 and inserted["levels"] == 10
    assert inserted["variants"] == 0 and inserted["tags"] == 96
    assert inserted["profiles"] >= 10 and inserted["currencies"] > 0 and inserted["users"] > 0
    # a key of two foreign keys: rows both parents' writers inserted (was: 23503, or rows
    # numbered after a long varchar key's "period" of 10^200, right where the sequence goes)
    assert inserted["members"] > 0 and inserted["teams"] > 0
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM countries").fetchone() == (1_296,)
        assert conn.execute("SELECT count(*) FROM variants").fetchone() == (6,)
        team = conn.execute("SELECT min(id) FROM teams WHERE id > 2000").fetchone()
        assert team is not None and int(str(team[0])) >= 1_000_000
        id_seq = conn.execute("SELECT nextval('tags_id_seq')").fetchone()
        assert id_seq == (1_201,)  # the probe's ids are far above what the sequence gives
        assert conn.execute("SELECT count(*) FROM tags WHERE id > 1200").fetchone() == (96,)
        low = conn.execute("SELECT min(id) FROM tags WHERE id > 1200").fetchone()
        assert low is not None and int(str(low[0])) >= 1_000_000
    notes = probes.notes(lambda t: "now")
    assert (
        "probe traffic on variants: no INSERT, since no key was left for a new row (its "
        "unique key (big boolean, size size) holds 6 values); its writer updated existing "
        "rows instead"
    ) in notes
    assert any(
        n.startswith("probe traffic on countries: 46 INSERTs, then no key was left for a new "
                     "row (its unique key (code character(2)) holds 1,296 values)")
        for n in notes
    ), notes  # fmt: skip
    assert not any("profiles" in n or "members" in n for n in notes)  # they follow parents


def test_a_parent_the_plan_does_not_touch_is_fed(db: str) -> None:
    """Probes only on `profiles` (1:1 with users): an INSERT-only feeder adds users rows, so
    that the profiles writer can insert (was: every INSERT failed, 23503)."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(SCHEMA)
        tables = read_tables(conn)
        fill(conn, tables, [TablePlan(n, 300) for n in tables])
    probes = ProbeSet(db, tables, ["profiles"], time.perf_counter(), pause_s=0.0)
    probes.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(probes.probes[1].inserted) < 20:
            time.sleep(0.05)
    finally:
        probes.stop()
    writer = probes.probes[1]
    assert writer.kind == "write" and len(writer.inserted) >= 20 and not writer.failures
    assert [f.table for f in probes.feeders] == ["users"]
    assert probes.notes(lambda t: "now") == []
    assert {p.table for p in probes.probes} == {"profiles"}  # the feeder is not measured


def test_rehearsal_says_what_probes_could_not_do(run: Any, tmp_path: Path) -> None:
    plan = write(
        tmp_path,
        "001.sql",
        # the application's INSERTs (without z) fail from step 1 on: said, with the step
        "ALTER TABLE countries ADD COLUMN z int NOT NULL DEFAULT 0;\n"
        "ALTER TABLE countries ALTER COLUMN z DROP DEFAULT;\n"
        "ALTER TABLE variants ADD COLUMN note text;\n",
    )
    result = run(
        [plan],
        file_transaction=False,
        schema_sql="CREATE TYPE size AS ENUM ('s', 'm', 'l');\n"
        "CREATE TABLE countries (code varchar(3) PRIMARY KEY, name text NOT NULL);\n"
        "CREATE TABLE variants (big boolean NOT NULL, size size NOT NULL, "
        "PRIMARY KEY (big, size));\n",
        default_rows=500,
    )
    assert result.status == "completed", result.steps
    notes = "\n".join(result.notes)
    assert (
        "probe traffic on variants: no INSERT, since no key was left for a new row (its unique "
        "key (big boolean, size size) holds 6 values); its writer updated existing rows instead"
    ) in notes
    said = re.search(
        r"probe traffic on countries: INSERT failed [\d,]+ time\(s\) with SQLSTATE 23502 "
        r'\(null value in column "z" of relation "countries" violates not-null constraint\), '
        r"the first (during|after) step [12]; the probes write as the application did before "
        r"the migration",
        notes,
    )
    assert said is not None, notes
    assert "probe traffic on variants: INSERT failed" not in notes
    # no timestamp <-> timestamptz step: the TimeZone assumed is said in short
    assert (
        "the steps ran with TimeZone 'UTC', the rehearsal database's default, since nothing "
        "said what production's is (no step here changes a column between timestamp and "
        "timestamptz, whose rewrite depends on it); give production's with --timezone NAME"
    ) in result.notes
    assert "23505" not in notes
