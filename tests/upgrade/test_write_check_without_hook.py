"""A switchover without --switch-cmd whose write check sees no write says that no hook ran,
not 'did the hook move the application?' (real clusters, 15 -> 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.upgrade.run import RunOptions, UpgradeFailed, run_upgrade
from tests.upgrade.run_support import Events, can_write, clean_cwd, make_pair

__all__ = ["clean_cwd"]


def test_no_write_on_new_without_a_hook_names_the_missing_switch_cmd(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    with pytest.raises(UpgradeFailed, match="switchover rolled back") as failed:
        run_upgrade(
            pair.sides,
            RunOptions(
                environment="test",
                switch_cmd=None,
                write_check=True,
                verify=False,
                poll_s=0.1,
                switchover_timeout_s=2.0,
                journal_file=str(tmp_path / "j.jsonl"),
            ),
            Events(),
        )
    message = str(failed.value)
    assert "no --switch-cmd was given" in message, message
    assert "did the hook move" not in message
    assert "--no-write-check" in message and "--switch-cmd" in message
    assert can_write(pair.old_dsn)  # undone: OLD takes writes again
