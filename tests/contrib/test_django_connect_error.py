"""`manage.py pgwarden lint|migrate|rehearse` against a database Django cannot connect to
prints one error naming the database and the cause, with the fix, exit 2; no traceback,
no password. Before, Django's OperationalError came out as a traceback (lint reads the
applied migrations even with --sql-only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.contrib.django_site import manage_multi

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_multi"
PASSWORD = "dj-Secret_9917"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("django") / "site"
    shutil.copytree(PROJECT, site)
    return site


@pytest.mark.parametrize(
    "args",
    [
        ("lint", "--sql-only"),
        ("lint", "--unapplied", "--format", "json"),
        ("migrate", "--env", "dev", "--yes"),
        ("rehearse",),
    ],
    ids=["lint", "lint-unapplied", "migrate", "rehearse"],
)
def test_a_server_that_is_down_is_one_error(project: Path, args: tuple[str, ...]) -> None:
    # port 1 on loopback: nothing listens there
    dsn = f"host=127.0.0.1 port=1 dbname=shop user=app password={PASSWORD}"
    r = manage_multi(project, dsn, "pgwarden", *args)
    said = r.stdout + r.stderr
    assert r.returncode == 2, said
    assert "Traceback" not in said, said
    assert "error: cannot connect to app@127.0.0.1:1/shop (Django database 'default')" in (
        r.stderr
    ), said
    assert "Connection refused" in r.stderr and "hint: check that the server is running" in (
        r.stderr
    ), said
    assert PASSWORD not in said
    assert r.stdout == "", said
