"""`pgwarden upgrade run` notifies a real receiver: started, then done once switched over
(PostgreSQL 16 -> 17 through logical replication, the upgrade tests' clusters)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pgwarden.cli.upgrade import upgrade
from tests.notify.receiver import receiver
from tests.upgrade.run_support import logical_clusters, make_pair

__all__ = ["logical_clusters"]


def test_upgrade_run_notifies_started_and_done(
    logical_clusters: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = make_pair(logical_clusters, 16, 17)  # type: ignore[arg-type]
    (tmp_path / "pgwarden.toml").write_text(
        '[environments.dev]\nprotected = false\n\n[[notify.webhooks]]\nurl_env = "HOOK_URL"\n'
    )
    monkeypatch.chdir(tmp_path)
    with receiver() as rx:
        monkeypatch.setenv("HOOK_URL", rx.url)
        result = CliRunner().invoke(
            upgrade,
            [
                "run",
                "--database-url",
                pair.old_dsn,
                "--target-url",
                pair.new_dsn,
                "--env",
                "dev",
                "--to",
                "17",
                "--no-write-check",
                "--journal-file",
                str(tmp_path / "j.jsonl"),
                "--yes",
            ],
        )
    assert result.exit_code == 0, result.output
    kinds = [r["notification"] for r in rx.requests]
    assert kinds[0] == "started" and kinds[-1] == "done", kinds
    assert set(kinds) <= {"started", "progress", "done"}, kinds
    assert {(r["command"], r["environment"]) for r in rx.requests} == {("upgrade run", "dev")}
    assert rx.token not in result.output
