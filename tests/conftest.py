from __future__ import annotations

import compileall
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-snapshots", action="store_true", help="rewrite .expected files from the output"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Byte-compile pgwarden once before the tests start `pgwarden` processes.

    An editable install ships no .pyc files, and with PYTHONDONTWRITEBYTECODE set (CI
    runners often set it) every one of the suite's hundreds of `pgwarden` subprocesses
    would compile all of its modules again. compileall writes them regardless; once
    there, they are read whatever that variable says.
    """
    if not hasattr(session.config, "workerinput"):  # the controller (or the only process)
        compileall.compile_dir(SRC, quiet=1)
