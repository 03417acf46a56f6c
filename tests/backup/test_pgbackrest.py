"""`backup verify --pgbackrest`: a real stanza on a throwaway cluster, restored and read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from pgwarden.backup import api
from pgwarden.errors import PostgresNotFound
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from tests.backup.conftest import run_cli

pytestmark = pytest.mark.skipif(
    shutil.which("pgbackrest") is None, reason="pgbackrest not installed"
)


def _as_owner(path: Path) -> dict[str, object]:
    st = path.stat()
    if os.geteuid() != 0:
        return {}
    return {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}


@pytest.fixture
def stanza():
    try:
        inst = find_installation(15)
    except PostgresNotFound:
        pytest.skip("PostgreSQL 15 (supported by this pgbackrest) not installed")
    work = Path(tempfile.mkdtemp(prefix="pgwarden-pgbackrest-"))
    work.chmod(0o755)
    conf = work / "pgbackrest.conf"
    try:
        with Cluster.start(
            inst,
            settings={
                "wal_level": "replica",
                "archive_mode": "on",
                "archive_command": f"pgbackrest --config={conf} --stanza=demo archive-push %p",
            },
        ) as cluster:
            owner = _as_owner(cluster.root)
            (work / "repo").mkdir()
            (work / "lock").mkdir()
            if owner:
                for d in ("repo", "lock"):
                    os.chown(work / d, owner["user"], owner["group"])  # type: ignore[arg-type]
            conf.write_text(
                "[global]\n"
                f"repo1-path={work / 'repo'}\nlock-path={work / 'lock'}\n"
                "log-level-file=off\nstart-fast=y\narchive-check=y\n"
                "[demo]\n"
                f"pg1-path={cluster.root / 'data'}\npg1-socket-path={cluster.root}\n"
                f"pg1-port={cluster.port}\npg1-user=postgres\n"
            )
            conf.chmod(0o644)
            with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
                conn.execute(
                    "CREATE TABLE accounts AS SELECT g AS id, md5(g::text) AS h"
                    " FROM generate_series(1, 5000) g"
                )
                conn.execute("CREATE INDEX ON accounts (id)")
            for cmd in ("stanza-create", "backup"):
                r = subprocess.run(
                    ["pgbackrest", f"--config={conf}", "--stanza=demo", cmd],
                    capture_output=True,
                    text=True,
                    check=False,
                    **owner,
                )  # type: ignore[call-overload]
                assert r.returncode == 0, r.stdout + r.stderr
            yield str(conf)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_pgbackrest_set_is_restored_and_read(stanza, tmp_path):
    result = api.verify_pgbackrest("demo", None, catalogue=tmp_path, config=stanza)
    assert result.ok, result.problems
    assert result.tables["postgres.public.accounts"] == 5000
    r = run_cli(
        "backup",
        "verify",
        "--pgbackrest",
        "demo",
        "--set",
        result.set_label,
        "--pgbackrest-config",
        stanza,
        "--format",
        "json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    r = run_cli(
        "backup", "verify", "--pgbackrest", "demo", "--set", "nope", "--pgbackrest-config", stanza
    )
    assert r.returncode == 2 and "has no set 'nope'" in r.stderr
