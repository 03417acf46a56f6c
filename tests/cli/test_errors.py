"""Every error a user can cause: one clear message, the documented exit code, no traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(
    *args: str, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    for var in ("PGWARDEN_DATABASE_URL", "DATABASE_URL"):
        if not env or var not in env:
            full_env.pop(var, None)
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "pgwarden", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
        **kw,
    )


def assert_clean_error(r: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stderr.startswith("pgwarden: error:"), r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


def test_parse_error_in_file_has_position(tmp_path: Path):
    f = tmp_path / "001.sql"
    f.write_text("SELECT 1;\nALTER TABLE t ADD COLUMN;\n")
    r = run("lint", str(f))
    assert_clean_error(r, 2, f"{f}:2:25: syntax error: syntax error at or near", "hint:")


def test_parse_error_in_explain():
    r = run("explain", "SELEC 1")
    assert_clean_error(r, 2, "<sql>:1:1: syntax error")


def test_lint_reads_standard_input_but_does_not_fix_it(tmp_path: Path):
    r = run("lint", "-", "--format", "json", input="SELECT 1;\nCREATE INDEX i ON t (a);\n")
    assert r.returncode == 1, r.stderr
    finding = json.loads(r.stdout)["findings"][0]
    assert finding["code"] == "PW101"
    assert finding["location"] == {"path": "<stdin>", "line": 2, "column": 1}
    fix = run("lint", "--fix", "-", input="CREATE INDEX i ON t (a);\n")
    assert_clean_error(fix, 2, "standard input (-) has no file to rewrite")
    binary = run("lint", "-", input="SELECT 1;\0")
    assert_clean_error(binary, 2, "<stdin>: binary file")


def test_explain_reads_a_file_and_names_a_missing_one(tmp_path: Path):
    f = tmp_path / "001.sql"
    f.write_text("SELECT 1;\nALTER TABLE t SET TABLESPACE fast;\n")
    r = run("explain", str(f), "--format", "json")
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)["statements"][1]
    assert second["location"] == {"path": str(f), "line": 2, "column": 1}
    assert second["rewrites"] == ["t"] and second["locks"][0]["mode"] == "ACCESS EXCLUSIVE"
    assert_clean_error(run("explain", str(tmp_path / "nope.sql")), 2, "nope.sql: no such file")
    latin1 = subprocess.run(
        [sys.executable, "-m", "pgwarden", "explain", "-"],
        input="SELECT 'caf\xe9';".encode("latin-1"),
        capture_output=True,
        timeout=120,
    )
    assert latin1.returncode == 2
    assert latin1.stderr.decode().startswith("pgwarden: error: <stdin>:1: not valid UTF-8")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "no SQL statements"),
        (b"-- only a comment\n", "no SQL statements"),
        (b"\x00\x01binary", "binary file"),
        (b"SELECT '\xff';", "not valid UTF-8"),
    ],
    ids=["empty", "comments-only", "binary", "latin1"],
)
def test_bad_files(tmp_path: Path, content: bytes, needle: str):
    f = tmp_path / "m.sql"
    f.write_bytes(content)
    assert_clean_error(run("lint", str(f)), 2, needle)


def test_100_mb_file(tmp_path: Path):
    f = tmp_path / "huge.sql"
    with f.open("wb") as fh:
        fh.truncate(100 * 1024 * 1024)
    assert_clean_error(run("lint", str(f)), 2, "larger than")


def test_missing_path(tmp_path: Path):
    assert_clean_error(run("lint", str(tmp_path / "nope.sql")), 2, "no such file")


def test_unreadable_file(tmp_path: Path):
    f = tmp_path / "secret.sql"
    f.write_text("SELECT 1;")
    f.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that allow it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop DAC override")
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    r = subprocess.run(
        [*prefix, sys.executable, "-m", "pgwarden", "lint", str(f)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_clean_error(r, 2, "permission denied")


def test_missing_stats_file(tmp_path: Path):
    f = tmp_path / "m.sql"
    f.write_text("SELECT 1;")
    assert_clean_error(
        run("lint", str(f), "--stats", str(tmp_path / "stats.json")),
        2,
        "stats file not found",
        "pgwarden stats dump",
    )


def test_damaged_stats_file(tmp_path: Path):
    f = tmp_path / "m.sql"
    f.write_text("SELECT 1;")
    s = tmp_path / "stats.json"
    s.write_text('{"format": "something-else"}')
    assert_clean_error(run("lint", str(f), "--stats", str(s)), 2, "not a pgwarden stats file")


def test_malformed_dsn():
    assert_clean_error(
        run("explain", "SELECT 1", "--database-url", "host=x port=notaport dbname"),
        2,
        "invalid database URL",
    )


@pytest.mark.parametrize(
    ("dsn", "password"),
    [
        ("postgresql://u:S3cret%zzPW@h/db", "S3cret"),
        ("host=h password=Pa55 word", "Pa55"),
        ("host=h passwordS3cretWord", "S3cretWord"),
        ("postgresql://u:Hunter2@[::1/db", "Hunter2"),
    ],
)
@pytest.mark.parametrize("via", ["option", "env"])
def test_malformed_dsn_never_echoes_the_password(dsn: str, password: str, via: str):
    args = ["apply", "--dry-run", "-"] if via == "env" else ["explain", "SELECT 1"]
    env = {"PGWARDEN_DATABASE_URL": dsn} if via == "env" else {}
    if via == "option":
        args += ["--database-url", dsn]
    r = run(*args, env=env, input="SELECT 1;")
    assert r.returncode == 2, r.stderr
    assert "invalid database URL" in r.stderr
    assert password not in r.stdout + r.stderr


def test_unreachable_server():
    r = run("explain", "SELECT 1", "--database-url", "postgresql://u@127.0.0.1:1/db")
    assert_clean_error(
        r, 2, "cannot connect to u@127.0.0.1:1/db: Connection refused", "server is running"
    )
    assert "\t" not in r.stderr and "Is the server running" not in r.stderr  # the hint says it


def test_missing_database(pg_cluster):
    r = run("explain", "SELECT 1", "--database-url", pg_cluster.dsn("no_such_db"))
    assert_clean_error(r, 2, "cannot connect", "database name")
    assert 'database "no_such_db" does not exist' in r.stderr and "FATAL" not in r.stderr


def test_no_database_given_for_stats_dump(tmp_path: Path):
    assert_clean_error(run("stats", "dump", "-o", str(tmp_path / "s.json")), 2, "no database given")


def test_unsupported_pg_version():
    r = run("explain", "SELECT 1", "--pg-version", "9")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


def test_missing_server_binaries():
    r = run("demo", env={"PGWARDEN_PG_BINDIR": "/nonexistent/bin"})
    assert_clean_error(r, 2, "PGWARDEN_PG_BINDIR=/nonexistent/bin holds no usable", "hint:")


def test_ctrl_c_during_demo_exits_2_and_leaves_no_cluster():
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgwarden", "demo", "--rows", "20000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "1. Started a throwaway ..." once the cluster runs
    assert "Started" in line, line + (proc.stderr.read() if proc.stderr else "")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "pgwarden: error: interrupted" in err
    assert "Traceback" not in err
    owners = []  # clusters this demo process started and left behind
    for d in Path(tempfile.gettempdir()).glob("pgwarden-cluster-*"):
        try:
            owners.append(int((d / "owner.pid").read_text()))
        except (OSError, ValueError):
            continue
    assert proc.pid not in owners


def test_square_brackets_in_messages_are_printed(tmp_path: Path):
    f = tmp_path / "m.sql"
    f.write_text("SELECT ARRAY[1, 2;\n")
    r = run("lint", str(f))
    assert_clean_error(r, 2, "syntax error")
    r = run("lint")
    assert_clean_error(r, 2, "--alembic [alembic.ini]")
