"""`upgrade rehearse --copy auto` (the default) with no verified backup dumps the
database, so the room it asks of TMPDIR counts that dump, as `--copy dump` does
(real cluster, a tmpfs; needs root)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database


def test_auto_without_a_backup_counts_the_dump_in_the_room_it_needs(
    cluster_of: Callable[[int], Cluster], tmp_path: Path
) -> None:
    dsn = new_database(cluster_of(15))
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            "CREATE TABLE t AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 40000) g"
        )
        row = c.execute("SELECT pg_database_size(current_database())").fetchone()
    size = int(str(row[0])) if row else 0
    mnt = tmp_path / "small"
    mnt.mkdir()
    # room for the restored copy and pg_upgrade --copy's second copy, not for a dump too
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size * 5 // 2}", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pgwarden", "upgrade", "rehearse", "--database-url", dsn,
             "--to", "17", "--catalogue", str(tmp_path / "no-backups")],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, check=False,
            env={**os.environ, "TMPDIR": str(mnt)}, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{mnt} has" in proc.stderr and "needs about" in proc.stderr, proc.stderr
        assert list(mnt.iterdir()) == []  # refused before anything started there
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
