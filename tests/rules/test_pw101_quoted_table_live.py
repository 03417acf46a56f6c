"""PW101 sizes a table created with a quoted, mixed-case name ("Acc") from a stats
snapshot, as PW103 does. Before, PW101 looked the table up as written (Acc) while
the snapshot keys tables as regclass prints them ("Acc"), and said its size was
unknown."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import save_snapshot, take_snapshot
from pgwarden.commands import lint, load_context

SCHEMA = """
CREATE TABLE "Acc" (id bigint PRIMARY KEY, x int);
INSERT INTO "Acc" SELECT g, g % 7 FROM generate_series(1, 2000) g;
CREATE SCHEMA "Books";
CREATE TABLE "Books"."Ledger" (id bigint PRIMARY KEY, x int);
INSERT INTO "Books"."Ledger" SELECT g, g % 7 FROM generate_series(1, 3000) g;
ANALYZE;
"""


@pytest.fixture
def accounts(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    return db


def test_index_on_a_quoted_table_is_sized_from_the_snapshot(accounts: str, tmp_path: Path) -> None:
    snap = tmp_path / "stats.json"
    save_snapshot(take_snapshot(accounts, sample_s=0), snap)
    f = tmp_path / "001.sql"
    f.write_text(
        'CREATE INDEX ON "Acc" (x);\n'
        'ALTER TABLE "Acc" ALTER COLUMN x SET NOT NULL;\n'
        'CREATE INDEX ON "Books"."Ledger" (x);\n'
    )
    _, result = lint([f], context=load_context(stats_file=snap))
    found = {(x.location.line, x.code): x.message for x in result.findings}
    assert "2k rows" in found[2, "PW103"], found  # PW103 finds it: the snapshot has it
    assert "size unknown" not in found[1, "PW101"], found[1, "PW101"]
    assert "2k rows" in found[1, "PW101"], found[1, "PW101"]
    assert '"Acc"' in found[1, "PW101"], found[1, "PW101"]
    assert "3k rows" in found[3, "PW101"], found[3, "PW101"]
