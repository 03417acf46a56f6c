"""`fleet apply --dry-run` lists the waves that have targets, each with the number it
applies at once (never more than its targets), and connects to none of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fleet.conftest import cli

TOML = """
[environments.staging]
protected = false

[fleet.f]
parallel = 4
targets = [
  { name = "a", dsn_env = "R3_DRY_A" },
  { name = "b", dsn_env = "R3_DRY_B" },
  { name = "c", dsn_env = "R3_DRY_C" },
]
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


def test_the_dry_run_drops_empty_waves_and_says_how_many_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pgwarden.toml").write_text(TOML)
    (tmp_path / "001.sql").write_text("ALTER TABLE accounts ADD COLUMN note text;\n")
    for var in ("R3_DRY_A", "R3_DRY_B", "R3_DRY_C"):  # nothing listens there
        monkeypatch.setenv(var, "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    r = cli(tmp_path, "fleet", "apply", "001.sql", "--fleet", "f", "--env", "staging", "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:4] == [
        "wave 1 canary: 1 target, 1 at a time, bake 0 s",
        "  a",
        "wave 3 rest: 2 targets, 2 at a time, bake 0 s",
        "  b, c",
    ], r.stdout
    assert "eu" not in r.stdout and all(line.strip() for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["001.sql", "pgwarden.toml"]
