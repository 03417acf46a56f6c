"""Adopting a fleet of databases that hold data but were never stamped by pgwarden."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pgwarden.pg.cluster import Cluster
from tests.fleet.conftest import cli, has_column


def test_restamp_adopts_unstamped_targets_holding_data(
    pg_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --restamp the canary is refused (as `pgwarden apply` refuses one such
    database) and nothing changes; `fleet resume --restamp` adopts and applies them all."""
    dsns = [pg_cluster.create_database(f"adopt_{tmp_path.name[-8:]}_{i}") for i in (1, 2, 3)]
    for i, dsn in enumerate(dsns):
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE accounts (id int PRIMARY KEY, bal int)")
            c.execute("INSERT INTO accounts SELECT g, %s FROM generate_series(1, 10) g", (i,))
        monkeypatch.setenv(f"ADOPT_DSN_{i}", dsn)
    targets = ", ".join(f'{{ name = "t{i}", dsn_env = "ADOPT_DSN_{i}" }}' for i in range(3))
    (tmp_path / "pgwarden.toml").write_text(
        "[environments.dev]\nprotected = false\n[fleet.tenants]\n"
        f'journal_dir = "{tmp_path / "j"}"\ntargets = [{targets}]\n'
        '[[fleet.tenants.waves]]\nname = "canary"\ncount = 1\n'
        '[[fleet.tenants.waves]]\nname = "rest"\npercent = 100\n'
    )
    (tmp_path / "001.sql").write_text("ALTER TABLE accounts ADD COLUMN note text;\n")

    refused = cli(tmp_path, "fleet", "apply", "001.sql", "--fleet", "tenants", "--env", "dev")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "no pgwarden stamp" in refused.stdout + refused.stderr
    assert not any(has_column(dsn, "note") for dsn in dsns)
    status = cli(tmp_path, "fleet", "status", "--fleet", "tenants")
    assert "wave 1 canary: halted while applying (1 target)" in status.stdout, status.stdout

    adopted = cli(tmp_path, "fleet", "resume", "--fleet", "tenants", "--env", "dev", "--restamp")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert all(has_column(dsn, "note") for dsn in dsns)
    for dsn in dsns:
        with psycopg.connect(dsn) as c:
            row = c.execute("SELECT environment FROM pgwarden.target").fetchone()
            assert row == ("dev",)
