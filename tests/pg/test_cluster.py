import psycopg

from pgwarden.pg.cluster import Cluster


def test_session_cluster_serves_queries(conn):
    assert conn.execute("select 1").fetchone() == (1,)


def test_every_version_starts(pg_any: Cluster):
    with psycopg.connect(pg_any.dsn()) as c:
        row = c.execute("show server_version_num").fetchone()
    assert row is not None
    v = row[0]
    assert int(str(v)) // 10000 == pg_any.installation.major
