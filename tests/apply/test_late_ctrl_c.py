"""A second Ctrl-C that lands once the run is over (the first one's cancel was quick) does
not turn apply's exit code 3 into death by SIGINT."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import pytest

from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.errors import PgwardenError
from tests.apply.conftest import cli, plan_of, scalar, wait_until, write_sql

RUNNING = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgwarden-apply' "
    "AND query LIKE 'SELECT pg_sleep%')"
)


def test_ctrl_c_after_the_report_keeps_the_exit_code(shop: str, tmp_path: Path) -> None:
    path = write_sql(
        tmp_path, "ALTER TABLE invoices ADD COLUMN note text;\nSELECT pg_sleep(600);\n"
    )
    proc = subprocess.Popen(
        cli("apply", str(path), "--database-url", shop, "--env", "staging"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    try:
        wait_until(shop, RUNNING)
        proc.send_signal(signal.SIGINT)
        assert proc.stderr is not None
        for line in proc.stderr:  # the report's last line, then a second press at once
            lines.append(line)
            if line.startswith("  hint:"):
                proc.send_signal(signal.SIGINT)
                break
        lines.extend(proc.stderr)
        assert proc.wait(60) == 3, "".join(lines)
    finally:
        proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()
    text = "".join(lines)
    assert "pgwarden: error: cancelled at step 0" in text and "Traceback" not in text


def test_ctrl_c_before_the_run_starts_records_nothing(shop: str, tmp_path: Path) -> None:
    # A press while the plan is read or the traffic sampled (--rewrite): the run never began.
    path = write_sql(tmp_path, "CREATE INDEX ON invoices (created_at);\n")
    pressed = threading.Event()
    pressed.set()
    with pytest.raises(PgwardenError, match="interrupted before the run started") as err:
        apply_plan(
            plan_of(path),
            database_url=shop,
            policy=GuardPolicy(env="staging"),
            options=RunOptions(rewrite=True),
            cancel=pressed,
        )
    assert err.value.exit_code == 2
    assert scalar(shop, "SELECT to_regclass('pgwarden.runs')") is None  # no journal, no run


def test_the_report_of_a_failed_run_leaves_ctrl_c_ignored_while_the_process_exits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report of a failed run ends in sys.exit(3): Ctrl-C must stay ignored while that
    exit unwinds. `_finish` gave the old handler back on the way out, so a press landing
    then raised KeyboardInterrupt and the process exited 2, 'interrupted' (seen in a
    clean-clone CI run of test_ctrl_c_after_the_report_keeps_the_exit_code)."""
    import pgwarden.cli as cli_module
    from pgwarden.apply.executor import Outcome
    from pgwarden.apply.policy import ApplyResult
    from pgwarden.cli.apply import _finish

    monkeypatch.setattr(cli_module, "_process", True)  # as under `main`: this is the command
    monkeypatch.setattr(cli_module, "_exit_now", lambda code: None)
    before = signal.getsignal(signal.SIGINT)
    failed = ApplyResult(
        run_id="r1",
        state="cancelled",
        environment="staging",
        steps=(),
        rewrites=(),
        outcome=Outcome(state="cancelled", step=0, message="cancelled at step 0", hint="resume"),
    )
    try:
        with pytest.raises(SystemExit) as exited:
            _finish(failed, None)
        assert exited.value.code == 3
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
