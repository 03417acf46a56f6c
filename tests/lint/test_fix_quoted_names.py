"""Fix SQL quotes every name it writes as PostgreSQL needs (case, keywords).

Before, PW103's fix wrote `CHECK (Total IS NOT NULL)` for column "Total", PW102's
`VALIDATE CONSTRAINT Acc_FK` on table Acc, and a column named "order" made the
generated SQL a syntax error.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

SCHEMA = """\
CREATE TABLE "Other" ("Id" int PRIMARY KEY);
CREATE TABLE "Acc" ("Id" int PRIMARY KEY, "Total" int, "order" int, "Ref" int);
INSERT INTO "Other" VALUES (1);
INSERT INTO "Acc" VALUES (1, 5, 2, 1);
"""
MIGRATION = """\
ALTER TABLE "Acc" ALTER COLUMN "Total" SET NOT NULL;
ALTER TABLE "Acc" ALTER COLUMN "order" SET NOT NULL;
ALTER TABLE "Acc" ADD CONSTRAINT "Acc_FK" FOREIGN KEY ("Ref") REFERENCES "Other"("Id");
ALTER TABLE "Acc" ADD FOREIGN KEY ("Id") REFERENCES "Other"("Id");
ALTER TABLE "Acc" ADD CONSTRAINT "Acc_order" UNIQUE ("order");
"""
STATE = """\
SELECT array(SELECT attname || ':' || attnotnull FROM pg_attribute
             WHERE attrelid = '"Acc"'::regclass AND attnum > 0 ORDER BY attnum),
       array(SELECT conname || ':' || convalidated FROM pg_constraint
             WHERE conrelid = '"Acc"'::regclass AND contype IN ('f', 'u') ORDER BY 1)
"""


def _run(cluster: Cluster, text: str) -> tuple[object, ...]:
    """Catalog state of "Acc" after SCHEMA then `text`, statement by statement."""
    with psycopg.connect(new_database(cluster), autocommit=True) as c:
        for sql in (SCHEMA, *(s.text for s in parse(text))):
            c.execute(sql.encode())
        row = c.execute(STATE.encode()).fetchone()
    assert row is not None
    return tuple(row)


def test_fix_of_quoted_names_runs(pg_any: Cluster, tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(MIGRATION)
    plan, result = lint([f], context=Context(None, None, pg_any.installation.major, "none"))
    write_fixes(fix_plan(plan, result, None))
    fixed = f.read_text()
    assert fixed != MIGRATION
    assert _run(pg_any, fixed) == _run(pg_any, MIGRATION), fixed
