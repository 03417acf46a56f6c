"""`fleet status` with one target's URL variable unset reads the others and names the
missing variable for that target (exit 1 with --check); apply still refuses before any
target is touched (real cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pgwarden.pg.cluster import Cluster
from tests.fleet.conftest import Member, cli, export, fleet_toml, make_members, make_template

WAVES = """
[[fleet.unset.waves]]
name = "all"
percent = 100
"""


@pytest.fixture(scope="module")
def fleet(
    pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[Member]]]:
    make_template(pg_cluster, "fleet_unset_tpl")
    members = make_members([pg_cluster], 3, "funset", template="fleet_unset_tpl")
    home = tmp_path_factory.mktemp("fleet-unset")
    (home / "pgwarden.toml").write_text(
        fleet_toml({"unset": WAVES}, members, journal_dir=home / "journal")
    )
    (home / "change").mkdir()
    (home / "change" / "001.sql").write_text("ALTER TABLE accounts ADD COLUMN unset_a int;\n")
    with pytest.MonkeyPatch.context() as mp:
        export(members, mp)
        mp.chdir(home)
        yield home, members


def test_status_reads_the_others_when_one_url_variable_is_unset(
    fleet: tuple[Path, list[Member]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, members = fleet
    done = cli(home, "fleet", "apply", "change", "--fleet", "unset", "--env", "staging")
    assert done.returncode == 0, done.stdout + done.stderr
    gone = members[1]
    monkeypatch.delenv(gone.env_var)
    status = cli(home, "fleet", "status", "--fleet", "unset", "--check")
    out = status.stdout + status.stderr
    assert status.returncode == 1, out
    for m in (members[0], members[2]):
        assert f"{m.name}: wave 1 done; change applied" in status.stdout, out
    assert (
        f"{gone.name}: cannot read: the environment variable {gone.env_var} is not set"
        in status.stdout
    ), out
    # a change is still refused before any target is touched
    again = cli(home, "fleet", "apply", "change", "--fleet", "unset", "--env", "staging")
    assert again.returncode == 2, again.stdout + again.stderr
    assert f"the environment variable {gone.env_var} is not set" in again.stderr
