"""PW111 on a partitioned table, with a live catalog: one finding for the statement (not
one per partition and none for the parent, which has no storage), and the statement is
known to refuse a transaction block, as the server says."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.commands import lint, load_context

SCHEMA = """
CREATE TABLE m (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (1000);
CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (1000) TO (2000);
CREATE INDEX m_k_idx ON m (k);
INSERT INTO m SELECT g, g FROM generate_series(0, 1999) g;
ANALYZE;
"""


@pytest.mark.parametrize("sql", ["REINDEX TABLE m", "REINDEX INDEX m_k_idx"])
def test_one_finding_for_a_partitioned_reindex(db: str, tmp_path: Path, sql: str) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
        with pytest.raises(psycopg.errors.ActiveSqlTransaction), c.transaction():
            c.execute(sql.encode())
    f = tmp_path / "001.sql"
    f.write_text(sql + ";\n")
    plan, result = lint([f], context=load_context(database_url=db))
    assert plan.steps[0].effects.transactional is False
    found = [x for x in result.findings if x.code == "PW111"]
    assert len(found) == 1, [x.message for x in found]
    assert "2 partition(s) of" in found[0].message
    assert found[0].fix is not None
