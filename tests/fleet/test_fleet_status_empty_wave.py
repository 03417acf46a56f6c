"""`fleet status` lists the waves that have targets, as the dry run and the rollout do:
a wave no target fell in was listed as `wave 2 eu: done (0 targets)`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.pg.cluster import Cluster
from tests.fleet.conftest import cli, export, fleet_toml, make_members, make_template

WAVES = """
[[fleet.f.waves]]
name = "canary"
count = 1
[[fleet.f.waves]]
name = "eu"
label = { region = "eu" }
[[fleet.f.waves]]
name = "rest"
percent = 100
"""


def test_status_leaves_empty_waves_out(
    pg_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_template(pg_cluster, "s1_empty_wave_tpl")
    members = make_members([pg_cluster], 3, "s1ew", template="s1_empty_wave_tpl")
    export(members, monkeypatch)
    toml = fleet_toml({"f": WAVES}, members, journal_dir=tmp_path / "journal")
    (tmp_path / "pgwarden.toml").write_text(toml)
    (tmp_path / "001.sql").write_text("ALTER TABLE accounts ADD COLUMN note text;\n")
    done = cli(tmp_path, "fleet", "apply", "001.sql", "--fleet", "f", "--env", "staging")
    assert done.returncode == 0, done.stdout + done.stderr
    status = cli(tmp_path, "fleet", "status", "--fleet", "f")
    assert status.returncode == 0, status.stdout + status.stderr
    waves = [x.strip() for x in status.stdout.splitlines() if x.strip().startswith("wave ")]
    assert waves == ["wave 1 canary: done (1 target)", "wave 3 rest: done (2 targets)"], (
        status.stdout
    )
