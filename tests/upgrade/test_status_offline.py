"""`upgrade status` when OLD cannot be reached: the local journal's last events, exit 2
(the state itself was not read); without a journal, one message naming both causes."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
from click.testing import CliRunner

from pgwarden.apply.local_journal import LocalJournal
from pgwarden.cli.upgrade import upgrade
from pgwarden.events import UpgradePhase, UpgradeVerified


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unreachable() -> str:
    return f"postgresql://app:s3cret@127.0.0.1:{_closed_port()}/shop"


def test_no_journal_is_an_environment_error_naming_both(tmp_path: Path) -> None:
    journal = tmp_path / "none.jsonl"
    result = CliRunner().invoke(
        upgrade, ["status", "--database-url", _unreachable(), "--journal-file", str(journal)]
    )
    assert result.exit_code == 2, result.output  # was 1 ("refused")
    assert "OLD (--database-url): cannot connect to app@127.0.0.1" in result.output
    assert f"there is no local journal at {journal}" in result.output
    assert "--journal-file" in result.output
    assert result.output.count("hint:") == 1  # one hint, not one inside the message
    assert "s3cret" not in result.output


def test_the_journal_tells_the_last_events(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = LocalJournal(path, "4f2a9c1e")
    journal(UpgradePhase(upgrade_id="4f2a9c1e", phase="verify", status="started", message="x"))
    journal(
        UpgradeVerified(
            upgrade_id="4f2a9c1e",
            table="public.orders",
            lsn="0/1",
            rows_old=2000,
            rows_new=2000,
            same=True,
        )
    )
    journal(
        UpgradePhase(
            upgrade_id="4f2a9c1e", phase="switchover", status="started", message="switchover"
        )
    )
    runner = CliRunner()
    args = ["status", "--database-url", _unreachable(), "--journal-file", str(path)]
    text = runner.invoke(upgrade, args)
    assert text.exit_code == 2, text.output
    assert "upgrade 4f2a9c1e: its last 3 events" in text.output
    assert "verified public.orders: 2000 / 2000 rows, same checksum" in text.output
    assert "phase switchover started switchover" in text.output
    assert "s3cret" not in text.output
    js = runner.invoke(upgrade, [*args, "--format", "json"])
    assert js.exit_code == 2
    data = orjson.loads(js.stdout)
    assert data["id"] == "4f2a9c1e" and len(data["events"]) == 3
    assert "cannot connect" in data["error"] and "s3cret" not in js.stdout
    other = runner.invoke(upgrade, [*args, "--id", "deadbeef"])
    assert other.exit_code == 2 and "no events of upgrade deadbeef" in other.output


def test_commands_name_the_side_they_cannot_reach(tmp_path: Path) -> None:
    runner = CliRunner()
    for command in ("cancel", "rollback", "finish"):
        extra = [] if command == "cancel" else ["--target-url", _unreachable()]
        result = runner.invoke(upgrade, [command, "--database-url", _unreachable(), *extra])
        assert result.exit_code == 2, result.output
        assert "OLD (--database-url): cannot connect to app@127.0.0.1" in result.output
        assert "s3cret" not in result.output
