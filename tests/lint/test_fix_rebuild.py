"""`DROP INDEX i; CREATE UNIQUE INDEX i ON ...` (a rebuild: synapse's 81/01, immich):
the fix builds the new index first under another name, then drops the old one and
renames, so the table is never without the index or its uniqueness. Before, the fix
dropped the old index concurrently and then built the new one: no index, and no
uniqueness, for the whole build (the real-project sweep)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden import commands
from pgwarden.analysis.parse import parse
from pgwarden.lint.fix import fix_plan, write_fixes

SCHEMA = """
CREATE TABLE rel (event_id int, relates_to_id int, relation_type text);
INSERT INTO rel SELECT g, g, 'm' FROM generate_series(1, 200) g;
CREATE INDEX rel_id ON rel (event_id);
"""


def test_rebuild_builds_the_new_index_before_dropping_the_old(tmp_path: Path, db: str) -> None:
    path = tmp_path / "81_01.sql"
    path.write_text(
        "DROP INDEX rel_id;\n"
        "CREATE UNIQUE INDEX rel_id ON rel USING btree (event_id, relates_to_id, relation_type);\n"
    )
    plan, result = commands.lint([path])
    write_fixes(fix_plan(plan, result))
    stmts = [s.text for s in parse(path.read_text())]
    build = next(i for i, s in enumerate(stmts) if "INDEX CONCURRENTLY IF NOT EXISTS rel_id_" in s)
    drop = stmts.index("DROP INDEX CONCURRENTLY IF EXISTS rel_id")
    assert build < drop, stmts
    _, again = commands.lint([path])
    assert not {f.code for f in again.findings} & {"PW101", "PW207"}
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA.encode())
        for _ in range(2):  # run whole twice, statement by statement as psql does
            for s in stmts:
                c.execute(s.encode())
        row = c.execute(
            "SELECT i.indisunique, i.indisvalid, i.indnatts FROM pg_index i"
            " WHERE i.indexrelid = 'rel_id'::regclass"
        ).fetchone()
        assert row == (True, True, 3)
        assert c.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'rel'").fetchone() == (
            1,
        )
