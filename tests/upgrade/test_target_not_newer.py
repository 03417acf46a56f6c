"""`--to` an older major is refused as not newer, before the target's binaries are looked
for: on a PostgreSQL 15 source, `--to 14` says so even where 14 is not installed."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database
from tests.fixtures.run import pgwarden


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return pgwarden("upgrade", *args)


@pytest.mark.parametrize("command", [("check", "--copy", "none"), ("rehearse", "--copy", "dump")])
def test_an_older_target_is_not_newer_even_without_its_binaries(
    cluster_of: Callable[[int], Cluster], command: tuple[str, ...]
) -> None:
    dsn = new_database(cluster_of(15))
    proc = _run(command[0], "--database-url", dsn, "--to", "14", *command[1:])
    assert proc.returncode == 2, proc.stderr
    assert "--to 14 is not newer than the source's PostgreSQL 15" in proc.stderr
    assert "not found" not in proc.stderr
