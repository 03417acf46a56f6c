"""Ctrl-C at the typed confirmation prompt ends the command at once: nothing has run.

The prompt ran under the run's escalating handler: the first Ctrl-C printed
"cancelling the running step" and left the prompt waiting; under
`manage.py pgwarden migrate` the second ended in a click `Abort` traceback. Each
command runs on a pseudo-terminal (the prompt needs one), against a protected
environment.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.contrib.django_site import SRC
from tests.contrib.test_django_ctrl_c_twice import _project

PROTECTED = "[tool.pgwarden.environments.prod]\nprotected = true\n"


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run `args` on a pty, press Ctrl-C once at the prompt; (exit code, what it printed)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    seen = b""

    def read(until: bytes | None, seconds: float) -> None:
        nonlocal seen
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until in seen):
            if select.select([leader], [], [], 0.1)[0]:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the command closed the terminal
                    return
                if not chunk:
                    return
                seen += chunk

    try:
        read(b"to confirm: ", 60)
        assert b"to confirm: " in seen, seen.decode(errors="replace")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)  # once is enough: no second Ctrl-C
        read(None, 1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return code, re.sub(r"\x1b\[[0-9;]*m", "", seen.decode(errors="replace"))


def test_pgwarden_apply(db: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PROTECTED)
    (tmp_path / "001.sql").write_text("CREATE TABLE t (id int);\n")
    args = [sys.executable, "-m", "pgwarden", "apply", "001.sql", "--database-url", db,
            "--env", "prod", "--journal-file", str(tmp_path / "j.jsonl")]  # fmt: skip
    code, text = _on_a_terminal(args, tmp_path, dict(os.environ, TERM="xterm"))
    assert code == 2, text
    assert "pgwarden: error: interrupted" in text and "cancelling" not in text
    with psycopg.connect(db) as c:
        assert c.execute("SELECT to_regclass('t')").fetchone() == (None,)


def test_manage_py_pgwarden_migrate(db: str, tmp_path: Path) -> None:
    pytest.importorskip("django")
    _project(tmp_path)
    (tmp_path / "pyproject.toml").write_text(PROTECTED)
    env = dict(
        os.environ,
        TERM="xterm",
        PGWARDEN_DJANGO_DSN=db,
        DJANGO_SETTINGS_MODULE="proj.settings",
        SLOW_STARTED=str(tmp_path / "started"),
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(SRC)]),
    )
    args = [sys.executable, "-m", "django", "pgwarden", "migrate", "--env", "prod",
            "--journal-file", str(tmp_path / "j.jsonl")]  # fmt: skip
    code, text = _on_a_terminal(args, tmp_path, env)
    assert code == 2, text
    assert "Traceback" not in text and "Abort" not in text and "cancelling" not in text
    assert "error: not confirmed (interrupted at the prompt): nothing applied" in text
    with psycopg.connect(db) as c:
        assert c.execute("SELECT to_regclass('slow_item')").fetchone() == (None,)


def test_the_typed_name_confirms_and_an_empty_line_asks_again(db: str, tmp_path: Path) -> None:
    """The prompt reads the terminal itself (so that Ctrl-C is never lost): an empty line
    asks again, the database's name confirms and the change is applied."""
    (tmp_path / "pyproject.toml").write_text(PROTECTED)
    (tmp_path / "001.sql").write_text("CREATE TABLE typed (id int);\n")
    dbname = psycopg.conninfo.conninfo_to_dict(db)["dbname"]
    args = [sys.executable, "-m", "pgwarden", "apply", "001.sql", "--database-url", db,
            "--env", "prod", "--journal-file", str(tmp_path / "j.jsonl")]  # fmt: skip
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=dict(os.environ, TERM="xterm"), stdin=follower,
        stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    try:
        for answer in (b"\n", f"{dbname}\n".encode()):
            end = time.monotonic() + 60
            asked = seen.count(b"to confirm: ")
            while seen.count(b"to confirm: ") == asked and time.monotonic() < end:
                if select.select([leader], [], [], 0.1)[0]:
                    seen += os.read(leader, 4096)
            os.write(leader, answer)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    assert code == 0, seen.decode(errors="replace")
    assert seen.count(b"to confirm: ") == 2
    with psycopg.connect(db) as c:
        assert c.execute("SELECT to_regclass('typed')").fetchone() == ("typed",)
