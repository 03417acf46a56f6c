"""What pg_upgrade --check reports without refusing, on real binaries: its warning
becomes a named `upgrade check` issue with the objects of the file it wrote.

The rehearsal's side (the notices of the real run, the post-upgrade steps) is tested
in test_rehearse_upgrade.py, on the rehearsals that test runs anyway."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import orjson
import psycopg

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database
from tests.fixtures.run import pgwarden


def _pgwarden(*args: str) -> subprocess.CompletedProcess[str]:
    return pgwarden("upgrade", *args, timeout=300)


def test_check_17_to_18_names_the_relations_of_the_unicode_warning(
    cluster_of: Callable[[int], Cluster],
) -> None:
    """pg_upgrade 18 --check passes a 17 cluster whose index uses lower() under the builtin
    C.UTF-8 collation with `warning` (Unicode 15.1 -> 16.0) and lists the index in
    pg_upgrade_output.d/.../unicode_dependent_rels.txt, which a successful --check deletes
    unless --retain."""
    dsn = new_database(cluster_of(17))
    db = dsn.split("dbname=")[1].split()[0]
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE COLLATION uni (provider = builtin, locale = 'C.UTF-8')")
        c.execute("CREATE TABLE people (id int PRIMARY KEY, name text)")
        c.execute("CREATE INDEX people_lower ON people (lower(name COLLATE uni))")
    proc = _pgwarden(
        "check", "--database-url", dsn, "--to", "18", "--route", "pg_upgrade", "--format", "json"
    )
    assert proc.returncode == 0, proc.stderr  # a warning, not a blocker
    data: dict[str, Any] = orjson.loads(proc.stdout)
    assert data["pg_upgrade_check"]["ok"] is True
    issues = {i["code"]: i for i in data["issues"]}
    unicode = issues["pg-upgrade-objects-affected-by-unicode-update"]
    assert unicode["severity"] == "warning" and unicode["routes"] == ["pg_upgrade"]
    assert "new version of Unicode" in unicode["message"]
    assert unicode["objects"] == [f"{db}: public.people_lower"]
    assert "REINDEX" in unicode["hint"]
    (finding,) = data["pg_upgrade_check"]["findings"]
    assert finding["files"][0]["file"] == "unicode_dependent_rels.txt"
