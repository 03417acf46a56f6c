"""PW102 sizes a foreign key's quoted, mixed-case table ("Acc") from a stats snapshot,
as PW103 does, and names both tables as regclass does. Before, it looked the table up
as written (Acc) while the snapshot keys it "Acc", and said its size was unknown."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.context import save_snapshot, take_snapshot
from pgwarden.commands import lint, load_context

SCHEMA = """
CREATE TABLE "Other" ("Id" int PRIMARY KEY);
INSERT INTO "Other" SELECT g FROM generate_series(1, 3000) g;
CREATE TABLE "Acc" (id bigint PRIMARY KEY, "Ref" int, x int);
INSERT INTO "Acc" SELECT g, 1, g FROM generate_series(1, 2000) g;
ANALYZE;
"""


@pytest.fixture
def accounts(db: str) -> str:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    return db


def test_foreign_key_on_a_quoted_table_is_sized_from_the_snapshot(
    accounts: str, tmp_path: Path
) -> None:
    snap = tmp_path / "stats.json"
    save_snapshot(take_snapshot(accounts, sample_s=0), snap)
    f = tmp_path / "001.sql"
    f.write_text(
        'ALTER TABLE "Acc" ALTER COLUMN x SET NOT NULL;\n'
        'ALTER TABLE "Acc" ADD FOREIGN KEY ("Ref") REFERENCES "Other" ("Id");\n'
    )
    _, result = lint([f], context=load_context(stats_file=snap))
    found = {(x.location.line, x.code): x for x in result.findings}
    assert "2k rows" in found[1, "PW103"].message  # the snapshot has "Acc"
    fk = found[2, "PW102"]
    assert "size unknown" not in fk.message and '"Acc": 2k rows' in fk.message, fk.message
    # ACCESS EXCLUSIVE from line 1 is still held on "Acc": the FK's lock says so.
    assert 'ACCESS EXCLUSIVE on "Acc"' in fk.message and "line 1" in fk.message, fk.message
    assert 'on "Other"' in fk.message, fk.message
    assert fk.fix is not None
    assert 'CONSTRAINT "Acc_Ref_fkey"' in fk.fix.sql, fk.fix.sql  # the server's name for it
