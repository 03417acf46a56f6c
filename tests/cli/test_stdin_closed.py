"""A closed standard input (`<&-`, as some CI runners start jobs).

With file descriptor 0 closed Python sets `sys.stdin` to None; reading SQL from `-`
or asking "is this a terminal?" then ended in exit 2, "internal error:
AttributeError: 'NoneType' object has no attribute ...". A command that only asks
"is this a terminal?" runs twice, with fd 0 closed and on /dev/null: the same exit
code and the same message. SQL read from `-` says that stdin is closed (or open for
writing only) and how to give the SQL; it said "the file is empty", or, write-only,
"internal error: OSError".
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from pgwarden.backup import api
from pgwarden.backup.manifest import format_time
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

Case = Callable[[Path, Callable[[], Cluster]], tuple[list[str], dict[str, str]]]


def _closed_fd0() -> None:
    os.close(0)


def _write_only_fd0() -> None:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 0)


def _run(
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    *,
    closed: bool,
    fd0: Callable[[], None] = _closed_fd0,
) -> tuple[int, str]:
    """`args` with fd 0 closed (or as `fd0` leaves it), or on /dev/null; (exit code,
    stderr)."""
    full = {**os.environ, "COLUMNS": "200", **env}
    for var in ("PGWARDEN_DATABASE_URL", "DATABASE_URL"):
        if var not in env:
            full.pop(var, None)
    r = subprocess.run(
        args,
        cwd=cwd,
        env=full,
        stdin=None if closed else subprocess.DEVNULL,
        preexec_fn=fd0 if closed else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return r.returncode, r.stderr


def _pgwarden(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgwarden", *args]


def test_the_child_really_has_no_stdin(tmp_path: Path) -> None:
    code, _ = _run(
        [sys.executable, "-c", "import sys; sys.exit(sys.stdin is None)"],
        tmp_path,
        {},
        closed=True,
    )
    assert code == 1


def _apply(tmp: Path, cluster: Callable[[], Cluster]) -> tuple[list[str], dict[str, str]]:
    """A protected environment (undeclared: no config here), no --yes."""
    sql = tmp / "003.sql"
    sql.write_text("CREATE TABLE invoices (id int PRIMARY KEY);\n")
    url = new_database(cluster())
    return _pgwarden("apply", str(sql), "--database-url", url, "--env", "production"), {}


def _fleet(tmp: Path, cluster: Callable[[], Cluster]) -> tuple[list[str], dict[str, str]]:
    (tmp / "m").mkdir()
    (tmp / "m" / "001.sql").write_text("CREATE TABLE invoices (id int PRIMARY KEY);\n")
    (tmp / "pgwarden.toml").write_text(
        "[environments.production]\nprotected = true\n\n"
        f'[fleet.tenants]\njournal_dir = "{tmp / "journal"}"\n'
        'targets = [{ name = "a", dsn_env = "STDIN_CLOSED_TENANT_A" }]\n'
    )
    env = {"STDIN_CLOSED_TENANT_A": new_database(cluster())}
    return _pgwarden("fleet", "apply", "m/", "--fleet", "tenants", "--env", "production"), env


def _restore(tmp: Path, cluster: Callable[[], Cluster]) -> tuple[list[str], dict[str, str]]:
    src = new_database(cluster())
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
    cat = tmp / "catalogue"
    m = api.create(src, catalogue=cat)
    assert api.verify(m.id, catalogue=cat).ok  # restore takes verified backups only
    at = format_time(m.ended_at + timedelta(minutes=1))
    dbname = dict(p.split("=", 1) for p in src.split())["dbname"]
    args = ["backup", "restore", "--at", at, "--target-url", new_database(cluster())]
    return _pgwarden(*args, "--database", dbname, "--catalogue", str(cat)), {}


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        (_apply, 1, "is protected (it is not declared in a configuration"),
        (_fleet, 1, "'production' is protected and there is no terminal to confirm the rollout"),
        (_restore, 1, "a restore needs confirmation"),
    ],
    ids=["apply", "fleet-apply", "backup-restore"],
)
def test_closed_stdin_behaves_as_dev_null(
    case: Case, code: int, message: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    args, env = case(tmp_path, lambda: request.getfixturevalue("pg_cluster"))  # started if used
    on_dev_null = _run(args, tmp_path, env, closed=False)
    closed = _run(args, tmp_path, env, closed=True)
    assert on_dev_null[0] == code, on_dev_null
    assert message in on_dev_null[1], on_dev_null
    assert closed == on_dev_null


@pytest.mark.parametrize("fd0", [_closed_fd0, _write_only_fd0], ids=["closed", "write-only"])
@pytest.mark.parametrize("command", ["explain", "lint", "rehearse", "apply"])
def test_sql_from_an_unreadable_stdin_says_so(
    command: str, fd0: Callable[[], None], db: str, tmp_path: Path
) -> None:
    args = _pgwarden(command, "-")
    if command == "apply":
        args += ["--database-url", db, "--env", "dev", "--yes"]
    code, text = _run(args, tmp_path, {}, closed=True, fd0=fd0)
    why = "closed" if fd0 is _closed_fd0 else "open for writing only"
    assert code == 2, text
    assert text.splitlines() == [
        f"pgwarden: error: standard input is {why}: there is no SQL to read from -",
        f"  hint: give the SQL as a file path (pgwarden {command} migration.sql), "
        f"or pipe it in (pgwarden {command} - < migration.sql)",
    ]
    with psycopg.connect(db) as c:  # apply read nothing and ran nothing
        assert c.execute("SELECT to_regnamespace('pgwarden')").fetchone() == (None,)
