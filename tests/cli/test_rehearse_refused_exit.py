"""`pgwarden rehearse` refusing a production server exits 1, as every guard's refusal does.

docs/rehearse.md said 2 for a refused target; the code raises `Refused` (exit 1,
README: "1 ... refused by a guard"). The server is marked production by the
`pgwarden.environment` setting of its database.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database
from tests.fixtures.run import pgwarden


def test_a_refused_rehearsal_target_exits_1(pg_cluster: Cluster, tmp_path: Path) -> None:
    dsn = new_database(pg_cluster)
    dbname = dict(p.split("=", 1) for p in dsn.split())["dbname"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {dbname} SET pgwarden.environment = 'production'")
    (tmp_path / "schema.sql").write_text("CREATE TABLE t (id int PRIMARY KEY);\n")
    (tmp_path / "001.sql").write_text("ALTER TABLE t ADD COLUMN note text;\n")
    env = {**os.environ, "COLUMNS": "200", "PGWARDEN_REHEARSALS": str(tmp_path / "records")}
    args = ["rehearse", "001.sql", "--schema", "schema.sql", "--database-url", dsn]
    r = pgwarden(*args, cwd=tmp_path, env=env)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "pgwarden: error: refusing to rehearse on" in r.stderr, r.stderr
    assert "'production' marks it as production" in r.stderr
    assert "Traceback" not in r.stderr
