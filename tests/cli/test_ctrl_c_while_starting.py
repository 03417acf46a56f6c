"""Ctrl-C while the `pgwarden` command is still importing its modules.

It printed a Python traceback (KeyboardInterrupt in an import) instead of the one-line
message and exit code 2 of an interrupt before anything changed. The press is made
to land inside a given import, every time: a `sitecustomize` in the child holds that
import until the signal arrives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

# Holds the import of $HOLD_IMPORT: says so on stderr, then waits for the signal.
SITECUSTOMIZE = """
import os, sys, time

class _Hold:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["HOLD_IMPORT"]:
            sys.meta_path.remove(self)
            os.write(2, b"importing\\n")
            time.sleep(120)
        return None

sys.meta_path.insert(0, _Hold())
"""

PGWARDEN = str(Path(sys.executable).with_name("pgwarden"))  # the installed console script


def _pressed_while_importing(args: list[str], module: str, tmp_path: Path) -> tuple[int, str]:
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "HOLD_IMPORT": module}
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    try:
        assert proc.stderr.readline() == "importing\n"
        proc.send_signal(signal.SIGINT)
        text = proc.stderr.read()
        return proc.wait(60), text
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


@pytest.mark.parametrize("module", ["pgwarden.errors", "click"])
@pytest.mark.parametrize("how", ["script", "-m"])
def test_lint(module: str, how: str, tmp_path: Path) -> None:
    (tmp_path / "x.sql").write_text("SELECT 1;\n")
    start = [PGWARDEN] if how == "script" else [sys.executable, "-m", "pgwarden"]
    code, text = _pressed_while_importing([*start, "lint", "x.sql"], module, tmp_path)
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert text.startswith("pgwarden: error: interrupted\n"), text
    assert code == 2, text


def test_apply_changes_nothing(db: str, tmp_path: Path) -> None:
    (tmp_path / "001.sql").write_text("CREATE TABLE t (id int);\n")
    args = [PGWARDEN, "apply", "001.sql", "--database-url", db, "--env", "dev", "--yes"]
    code, text = _pressed_while_importing(args, "click", tmp_path)
    assert (code, text.splitlines()[0]) == (2, "pgwarden: error: interrupted"), text
    with psycopg.connect(db) as c:
        assert c.execute("SELECT to_regclass('t')").fetchone() == (None,)


def test_a_program_importing_pgwarden_keeps_its_ctrl_c(tmp_path: Path) -> None:
    """As a library (here the guard, in a program of its own), Ctrl-C is not taken."""
    code = (
        "import signal, pgwarden.guard\n"
        "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
