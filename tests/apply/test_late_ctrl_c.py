"""A second Ctrl-C that lands once the run is over (the first one's cancel was quick) does
not turn apply's exit code 3 into death by SIGINT."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.apply.conftest import cli, wait_until, write_sql

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
