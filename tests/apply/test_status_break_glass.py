"""`pgwarden status` lists the break-glass runs (pgwarden.break_glass): who, when, why, run.

An auditor or the on-call engineer asks "did anyone break the glass here?": the
answer was only in the table, never in `status`. The runs are made as a user
makes them, `pgwarden apply --break-glass "reason"` on a protected environment.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import psycopg
from click.testing import CliRunner, Result

CONFIG = """
[tool.pgwarden.environments.production]
protected = true

[tool.pgwarden.environments.production.roles]
migration = "h6_status_migrator"
break_glass = ["postgres"]
superusers = ["postgres"]
"""


def _pgwarden(tmp_path: Path, *args: str) -> Result:
    """The command in-process (click's runner: stdout is not a terminal)."""
    from pgwarden.cli.apply import COMMANDS

    command = next(c for c in COMMANDS if c.name == args[0])
    return CliRunner().invoke(command, list(args[1:]))


def test_status_lists_break_glass_runs_in_text_and_json(db: str, tmp_path: Path) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text(CONFIG)
    run_ids = []
    for i, reason in enumerate(["INC-7 hotfix", "INC-9: [bold] not markup"]):
        path = tmp_path / f"00{i}.sql"
        path.write_text(f"CREATE TABLE t{i} (id int);\n")
        done = _pgwarden(
            tmp_path, "apply", str(path), "--database-url", db, "--env", "production",
            "--yes", "--config", str(config), "--break-glass", reason,
            "--journal-file", str(tmp_path / "journal.jsonl"),
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        with psycopg.connect(db) as c:
            row = c.execute("SELECT id FROM pgwarden.runs ORDER BY started_at DESC").fetchone()
        assert row is not None
        run_ids.append(str(row[0]))

    text = _pgwarden(tmp_path, "status", "--database-url", db)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    start = lines.index("break glass (pgwarden.break_glass, latest first):")
    latest, first = lines[start + 1], lines[start + 2]
    assert f"apply run {run_ids[1]} on production by " in latest
    assert latest.endswith(" as postgres: INC-9: [bold] not markup")
    assert f"apply run {run_ids[0]} on production by " in first
    assert first.endswith(" as postgres: INC-7 hotfix")

    js = _pgwarden(tmp_path, "status", "--database-url", db, "--format", "json")
    assert js.exit_code == 0, js.output
    records = orjson.loads(js.stdout)["break_glass"]
    assert [(r["run_id"], r["reason"], r["command"]) for r in records] == [
        (run_ids[1], "INC-9: [bold] not markup", "apply"),
        (run_ids[0], "INC-7 hotfix", "apply"),
    ]
    assert {r["current_user"] for r in records} == {"postgres"}
    assert all(r["os_user"] and r["host"] and r["at"] for r in records)


def test_status_without_break_glass_says_nothing_of_it(db: str, tmp_path: Path) -> None:
    path = tmp_path / "001.sql"
    path.write_text("CREATE TABLE t (id int);\n")
    done = _pgwarden(
        tmp_path, "apply", str(path), "--database-url", db, "--env", "staging", "--yes",
        "--journal-file", str(tmp_path / "journal.jsonl"),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    text = _pgwarden(tmp_path, "status", "--database-url", db)
    assert "break glass" not in text.stdout
    js = _pgwarden(tmp_path, "status", "--database-url", db, "--format", "json")
    assert orjson.loads(js.stdout)["break_glass"] == []
