"""A target that cannot be connected to is `unreachable`, not `failed`: nothing of the change
ran there. It is counted apart, still halts its wave (on_error = halt), exits 1 (nothing
failed during a change), and every connection message names the environment variable
its URL comes from (real cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from pgwarden.pg.cluster import Cluster
from tests.fleet.conftest import (
    Member,
    cli,
    export,
    fleet_toml,
    has_column,
    make_members,
    make_template,
)

WAVES = """
[[fleet.down.waves]]
name = "canary"
count = 1
[[fleet.down.waves]]
name = "rest"
percent = 100
"""


@pytest.fixture(scope="module")
def fleet(
    pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[Member]]]:
    make_template(pg_cluster, "fleet_down_tpl")
    members = make_members([pg_cluster], 3, "fdown", template="fleet_down_tpl")
    home = tmp_path_factory.mktemp("fleet-down")
    text = fleet_toml({"down": WAVES}, members, journal_dir=home / "journal")
    (home / "pgwarden.toml").write_text(text)
    (home / "change").mkdir()
    (home / "change" / "001.sql").write_text("ALTER TABLE accounts ADD COLUMN down_a int;\n")
    with pytest.MonkeyPatch.context() as mp:
        export(members, mp)
        mp.chdir(home)
        yield home, members


def test_an_unreachable_target_is_counted_apart_and_named_by_its_variable(
    fleet: tuple[Path, list[Member]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, members = fleet
    down = members[1]  # wave 2
    monkeypatch.setenv(down.env_var, "postgresql://postgres@127.0.0.1:1/nowhere")
    args = ("--fleet", "down", "--env", "staging")
    first = cli(home, "fleet", "apply", "change", *args)
    assert first.returncode == 1, first.stdout + first.stderr
    out = first.stdout + first.stderr
    assert "1 target has the change, 0 failed, 1 unreachable, 1 never touched" in out, out
    assert f"wave 2: 1 target unreachable ({down.name}); {down.name}: cannot connect" in out
    assert f"its URL comes from ${down.env_var}" in out, out
    journal = orjson.loads((home / "journal" / "down.json").read_bytes())
    assert journal["targets"][down.name]["state"] == "unreachable"
    assert not has_column(down.dsn, "down_a") and not has_column(members[2].dsn, "down_a")
    status = cli(home, "fleet", "status", "--fleet", "down")
    assert f"{down.name}: cannot read: cannot connect" in status.stdout, status.stdout
    assert f"its URL comes from ${down.env_var}" in status.stdout
    monkeypatch.setenv(down.env_var, down.dsn)  # the server is back
    resumed = cli(home, "fleet", "resume", *args)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "3 targets have the change, 0 failed, 0 never touched" in resumed.stdout
    assert all(has_column(m.dsn, "down_a") for m in members)
