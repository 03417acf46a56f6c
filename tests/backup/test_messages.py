"""What `backup verify` and `backup restore` print, read as sentences."""

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
