"""Tables and panels piped to a file or a CI log are laid out at the width they need.

Without a terminal rich used to draw them 80 columns wide, so a statement or a lock
list was split into one- or two-word cells over several lines. Each command runs
in a subprocess with stdout a pipe (and, for the unchanged terminal case, a pty).
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pgwarden.demo import SCHEMA_SQL
from pgwarden.pg.cluster import Cluster
from tests.fixtures.run import pgwarden

ROOT = Path(__file__).resolve().parents[2]
INCIDENT = ROOT / "examples" / "incident" / "001_recreate_invoice_fk.sql"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(PGWARDEN_REHEARSALS=str(tmp_path / "records"), **extra)
    return env


def _pgwarden(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return pgwarden(*args, cwd=tmp_path, env=_env(tmp_path, **env), timeout=300)


@pytest.mark.parametrize("columns", [None, "400"], ids=["one-line-per-row", "table-as-wide"])
def test_rehearse_table_keeps_statement_and_locks_on_one_line(
    pg_cluster: Cluster, tmp_path: Path, columns: str | None
) -> None:
    schema = tmp_path / "schema.sql"
    schema.write_text(SCHEMA_SQL)
    done = _pgwarden(
        tmp_path,
        "rehearse",
        str(INCIDENT),
        "--database-url",
        pg_cluster.dsn(),
        "--schema",
        str(schema),
        "--rows-cap",
        "2000",
        **({"COLUMNS": columns} if columns else {}),
    )
    assert done.returncode == 1, done.stderr  # RH101: an error finding
    rows = [
        line
        for line in done.stdout.splitlines()
        if "ALTER TABLE invoices DROP CONSTRAINT invoices_payment_account_id_fkey" in line
    ]
    assert len(rows) == 1, done.stdout
    # the statement's label: one line, cut after a whole word (before: "..._fkey F")
    adds = [ln for ln in done.stdout.splitlines() if "ADD CONSTRAINT invoices_pay" in ln]
    assert len(adds) == 1 and "ADD CONSTRAINT invoices_payment_account_id_fkey…" in adds[0]
    row = rows[0]
    assert "ACCESS EXCLUSIVE invoices, ACCESS EXCLUSIVE payment_accounts" in row
    assert "invoices: reads" in row and "payment_accounts: reads" in row
    if columns:  # wide enough: the table, each row on one line
        assert row.startswith("│ 0 ")
    else:  # wider than 200 columns: one line per row, each field named
        assert row.startswith("#0 | statement: ALTER TABLE")
        assert "| locks held: ACCESS EXCLUSIVE invoices" in row


def test_explain_panel_keeps_title_and_rows_whole(tmp_path: Path) -> None:
    done = _pgwarden(tmp_path, "explain", str(INCIDENT), "--pg-version", "16")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(
        "ALTER TABLE invoices DROP CONSTRAINT invoices_payment_account_id_fkey" in ln
        for ln in lines
        if ln.startswith("╭")
    )
    assert any(
        "payment_accounts  table  SHARE ROW EXCLUSIVE  writes" in ln
        and "ADD FOREIGN KEY invoices_payment_account_id_fkey" in ln
        for ln in lines
    )
    assert max(len(ln) for ln in lines) <= 200
    # The panel is as wide as its content: the second one has no 200-column filler.
    assert len(next(ln for ln in lines if "scans invoices under lock" in ln)) < 200


def test_columns_bounds_the_piped_width(tmp_path: Path) -> None:
    done = _pgwarden(tmp_path, "explain", str(INCIDENT), "--pg-version", "16", COLUMNS="100")
    assert done.returncode == 0, done.stderr
    assert max(len(ln) for ln in done.stdout.splitlines()) == 100


def test_terminal_output_fills_the_terminal_width_as_before(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgwarden", "explain", str(INCIDENT), "--pg-version", "16"],
        env=_env(tmp_path, COLUMNS="80", TERM="xterm"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    lines = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode()).splitlines()
    borders = [ln for ln in lines if ln.startswith(("╭", "╰"))]
    assert borders and all(len(ln) == 80 for ln in borders), lines
