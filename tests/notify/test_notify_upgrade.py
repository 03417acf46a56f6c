"""`pgwarden upgrade run | rollback | finish | cancel` notify a real receiver: started, then
done (cancel: cancelled), each named with the upgrade's environment, so a webhook limited to
that environment hears them (PostgreSQL 16 -> 17 through logical replication, the upgrade
tests' clusters)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pgwarden.cli.upgrade import upgrade
from pgwarden.events import Event, UpgradePhase
from pgwarden.upgrade.run import Interrupted, RunOptions, run_upgrade
from tests.notify.receiver import Receiver, receiver
from tests.upgrade.run_support import Pair, logical_clusters, make_pair, run_args

__all__ = ["logical_clusters"]

# Only runs on `dev` reach it: the commands that take no --env must name the upgrade's.
_CONFIG = (
    "[environments.dev]\nprotected = false\n\n[[notify.webhooks]]\n"
    'url_env = "HOOK_URL"\nenvironments = ["dev"]\n'
)


def _run(pair: Pair, tmp_path: Path) -> list[str]:
    return run_args(
        pair, "--to", "17", "--no-write-check", "--journal-file", str(tmp_path / "j.jsonl")
    )


def _invoke(rx: Receiver, args: list[str]) -> tuple[Any, list[dict[str, Any]]]:
    """The command's result and the bodies the receiver got from it."""
    before = len(rx.requests)
    result = CliRunner().invoke(upgrade, args)
    assert result.exit_code == 0, result.output
    bodies = rx.requests[before:]
    assert rx.token not in result.output
    return result, bodies


def _kinds(bodies: list[dict[str, Any]], command: str) -> list[str]:
    assert {(b["command"], b["environment"]) for b in bodies} == {(command, "dev")}, bodies
    return [str(b["notification"]) for b in bodies]


@pytest.fixture
def hook_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pgwarden.toml").write_text(_CONFIG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("then", ["finish", "rollback"])
def test_upgrade_run_then_finish_or_rollback_notify_started_and_done(
    logical_clusters: object, hook_dir: Path, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    pair = make_pair(logical_clusters, 16, 17)  # type: ignore[arg-type]
    with receiver() as rx:
        monkeypatch.setenv("HOOK_URL", rx.url)
        _, bodies = _invoke(rx, _run(pair, hook_dir))
        kinds = _kinds(bodies, "upgrade run")
        assert kinds[0] == "started" and kinds[-1] == "done", kinds
        assert set(kinds) <= {"started", "progress", "done"}, kinds
        _, bodies = _invoke(
            rx, [then, "--database-url", pair.old_dsn, "--target-url", pair.new_dsn]
        )
    kinds = _kinds(bodies, f"upgrade {then}")
    assert kinds[0] == "started" and kinds[-1] == "done", kinds
    assert set(kinds) <= {"started", "progress", "done"}, kinds
    if then == "finish":
        assert "finished: NEW stands alone" in bodies[-1]["summary"]


def test_upgrade_cancel_notifies_cancelled(
    logical_clusters: object, hook_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = make_pair(logical_clusters, 16, 17)  # type: ignore[arg-type]
    stop = threading.Event()

    def ctrl_c_after_replication(event: Event) -> None:
        if isinstance(event, UpgradePhase) and (event.phase, event.status) == (
            "replication",
            "done",
        ):
            stop.set()

    options = RunOptions(environment="dev", journal_file=str(hook_dir / "j.jsonl"))
    with pytest.raises(Interrupted):
        run_upgrade(pair.sides, options, ctrl_c_after_replication, stop)
    with receiver() as rx:
        monkeypatch.setenv("HOOK_URL", rx.url)
        cancel = ["cancel", "--database-url", pair.old_dsn, "--target-url", pair.new_dsn]
        result, bodies = _invoke(rx, cancel)
        again = CliRunner().invoke(upgrade, ["cancel", "--database-url", pair.old_dsn])
    assert "cancelled" in result.output
    kinds = _kinds(bodies, "upgrade cancel")
    assert kinds[0] == "started" and kinds[-1] == "cancelled", kinds
    assert set(kinds) <= {"started", "progress", "cancelled"}, kinds
    assert "OLD as it was; removed subscription" in bodies[-1]["summary"], bodies[-1]
    # nothing left to cancel: refused (exit 1); no environment to name, so `dev` hears nothing
    assert again.exit_code == 1 and "no upgrade to cancel" in again.output
    assert len(rx.requests) == len(bodies)
