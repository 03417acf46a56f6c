"""`upgrade status` after a switchover shows the reverse replication NEW -> OLD: how far
OLD trails, and when it is broken or missing, since when a rollback would lose writes
(real clusters, one switched-over pair)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner

from pgwarden.cli.upgrade import upgrade
from pgwarden.upgrade.journal import find_latest
from tests.upgrade.run_support import clean_cwd, make_pair, run_args

__all__ = ["clean_cwd"]


def _status(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(upgrade, ["status", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _reverse(runner: CliRunner, *args: str) -> dict[str, Any]:
    data = json.loads(_status(runner, *args, "--format", "json"))
    assert data["state"] == "switched"
    reverse: dict[str, Any] = data["reverse"]
    return reverse


def test_status_shows_the_reverse_replication_and_when_it_breaks(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    runner = CliRunner()
    result = runner.invoke(
        upgrade,
        run_args(
            pair, "--no-verify", "--no-write-check", "--journal-file", str(tmp_path / "j.jsonl")
        ),
    )
    assert result.exit_code == 0, result.output
    old_args = ("--database-url", pair.old_dsn)
    both = (*old_args, "--target-url", pair.new_dsn)
    with psycopg.connect(pair.old_dsn) as c:
        record = find_latest(c, None)
    assert record is not None and record.info.get("switched_at")
    name = f"pgwarden_up_{record.id}_rev"

    # Healthy: OLD applies NEW's writes; NEW's slot says how far OLD trails.
    with psycopg.connect(pair.new_dsn, autocommit=True) as c:
        c.execute("INSERT INTO orders (note) VALUES ('on new')")
    deadline = time.monotonic() + 30
    while True:
        reverse = _reverse(runner, *both)
        with psycopg.connect(pair.old_dsn) as c:
            arrived = c.execute("SELECT count(*) FROM orders WHERE note = 'on new'").fetchone()
        if (reverse["ok"] and arrived == (1,)) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert reverse["ok"], reverse
    assert arrived == (1,)  # the write made on NEW reached OLD
    assert reverse["subscription"] == name and reverse["worker_running"]
    assert reverse["slot_present"] and reverse["slot_active"]
    assert isinstance(reverse["lag_bytes"], int) and reverse["writes_at_risk_since"] is None
    text = _status(runner, *both)
    assert f"reverse replication NEW -> OLD ({name}): streaming" in text
    assert "OLD trails NEW by" in text and "BROKEN" not in text
    assert "pass --target-url NEW" in _status(runner, *old_args)  # OLD's side alone
    unreachable = _status(runner, *old_args, "--target-url", "postgresql://postgres@127.0.0.1:1/x")
    assert "streaming" in unreachable and "NEW not read: cannot connect" in unreachable

    # Broken: the subscription on OLD disabled (as after a failed apply with
    # disable_on_error, or by hand): writes on NEW no longer reach OLD.
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("SET default_transaction_read_only = off")  # OLD is read-only now
        c.execute(f"ALTER SUBSCRIPTION {name} DISABLE")
    reverse = _reverse(runner, *both)
    assert not reverse["ok"] and "disabled" in reverse["problem"]
    assert reverse["writes_at_risk_since"] is not None
    text = _status(runner, *old_args)
    assert "BROKEN: the reverse subscription" in text and "is disabled" in text
    assert "rollback would lose the writes made on NEW since 20" in text
    # A rollback cannot succeed: refused at once, NEW untouched (was: NEW frozen, its
    # sessions ended, for the whole --timeout, then exit 3)
    with psycopg.connect(pair.new_dsn, autocommit=True) as client:
        refused = runner.invoke(upgrade, ["rollback", *both, "--timeout", "20"])
        assert refused.exit_code == 1, refused.output
        assert "is disabled" in refused.output and f"ALTER SUBSCRIPTION {name} ENABLE" in (
            refused.output
        )
        client.execute("INSERT INTO orders (note) VALUES ('still on new')")  # not ended
    assert _reverse(runner, *both)["problem"] is not None  # still switched

    # Missing: the subscription dropped on OLD (its slot on NEW kept).
    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("SET default_transaction_read_only = off")
        c.execute(f"ALTER SUBSCRIPTION {name} SET (slot_name = NONE)")
        c.execute(f"DROP SUBSCRIPTION {name}")
    reverse = _reverse(runner, *both)
    assert not reverse["ok"] and "missing on OLD" in reverse["problem"]
    assert reverse["slot_present"] and not reverse["slot_active"]
    assert reverse["writes_at_risk_since"] == record.info["switched_at"].replace("Z", "+00:00")
    text = _status(runner, *both)
    assert "rollback would lose the writes made on NEW since" in text
    assert "NEW's WAL not confirmed by OLD: " in text and "OLD trails NEW" not in text

    done = runner.invoke(upgrade, ["finish", *both])
    assert done.exit_code == 0, done.output
