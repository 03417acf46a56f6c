"""What `backup create`, `verify` and `restore` print, read as sentences."""

from __future__ import annotations

import re
from pathlib import Path

from pgwarden.pg.cluster import Cluster
from tests.backup.conftest import run_cli
from tests.fixtures.pg import new_database


def test_create_and_verify_say_what_was_dumped_and_restored(
    pg_cluster: Cluster, catalogue: Path
) -> None:
    src = new_database(pg_cluster)
    r = run_cli("backup", "create", "--database-url", src, "--catalogue", str(catalogue))
    assert r.returncode == 0, r.stderr
    assert re.search(r"B dump of a [\d.]+ [kMGT]?B database, ", r.stdout), r.stdout
    r = run_cli("backup", "verify", "--latest", "--catalogue", str(catalogue))
    assert r.returncode == 0, r.stderr
    restored = next(line for line in r.stdout.splitlines() if "restored" in line)
    assert "restored of" not in restored
    assert re.search(r"restored the [\d.]+ [kMGT]?B database in ", restored), restored


def test_restore_into_another_database_of_the_system_hints_at_database(
    pg_cluster: Cluster, catalogue: Path
) -> None:
    src = new_database(pg_cluster)
    name = dict(p.split("=", 1) for p in src.split())["dbname"]
    r = run_cli("backup", "create", "--database-url", src, "--catalogue", str(catalogue))
    assert r.returncode == 0, r.stderr
    assert run_cli("backup", "verify", "--latest", "--catalogue", str(catalogue)).returncode == 0
    target = new_database(pg_cluster)
    restore = ("backup", "restore", "--at", "2999-01-01T00:00:00Z", "--target-url", target)
    r = run_cli(*restore, "--catalogue", str(catalogue), "--yes")
    assert r.returncode == 1, r.stderr
    assert f"pass --database {name}" in r.stderr, r.stderr
    assert "--from-system" not in r.stderr
    # What the hint says is enough.
    r = run_cli(*restore, "--database", name, "--catalogue", str(catalogue), "--yes")
    assert r.returncode == 0, r.stderr
