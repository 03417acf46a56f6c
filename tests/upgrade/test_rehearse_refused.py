"""`upgrade rehearse` when pg_upgrade refuses the database: status failed, exit 1, the
reason from pg_upgrade itself, nothing upgraded, and a webhook told `failed`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import psycopg
import pytest

from pgwarden.pg.cluster import Cluster
from pgwarden.upgrade.pg_upgrade import UpgradeOutcome
from pgwarden.upgrade.rehearse import UpgradeRehearsal
from pgwarden.upgrade.rehearse_report import rehearsal_lines
from tests.fixtures.pg import new_database
from tests.notify.receiver import receiver


def test_a_refused_upgrade_fails_the_rehearsal_and_notifies(
    cluster_of: Callable[[int], Cluster], tmp_path: Path
) -> None:
    dsn = new_database(cluster_of(15))
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE jobs (id int PRIMARY KEY, fn regprocedure)")
    (tmp_path / "pgwarden.toml").write_text(
        '[[notify.webhooks]]\nurl_env = "HOOK_URL"\nformat = "json"\n'
    )
    with receiver() as rx:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pgwarden",
                "upgrade",
                "rehearse",
                "--database-url",
                dsn,
                "--to",
                "16",
                "--copy",
                "dump",
                "--format",
                "json",
                "--report",
                str(tmp_path / "r.html"),
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
            env={**os.environ, "HOOK_URL": rx.url},
            timeout=300,
            check=False,
        )
    assert proc.returncode == 1, proc.stderr
    data = orjson.loads(proc.stdout)
    assert data["status"] == "failed"
    assert data["pg_upgrade_check"]["ok"] is False
    assert data["pg_upgrade_check"]["reports"][0]["file"] == "tables_using_reg.txt"
    assert data["pg_upgrade"] is None  # the real pg_upgrade never ran
    assert [p["name"] for p in data["phases"]][-1] == "pg_upgrade --check"
    assert [r["notification"] for r in rx.requests] == ["started", "failed"]
    assert "reg* data types" in rx.requests[-1]["summary"]
    html = (tmp_path / "r.html").read_text()
    assert "pg_upgrade --check refused" in html and "public.jobs.fn" in html
    # the text report names the failed check and the objects, as the HTML does
    check = data["pg_upgrade_check"]
    refused = UpgradeRehearsal(
        status="failed",
        database=data["database"],
        source_version=data["source_version"],
        target_version=data["target_version"],
        mode="copy",
        copy=None,
        phases=(),
        check=UpgradeOutcome(
            ok=False,
            mode="copy",
            check_only=True,
            seconds=check["seconds"],
            failed_checks=tuple(check["failed_checks"]),
            reports=tuple((f["file"], f["content"]) for f in check["reports"]),
            message=check["message"],
        ),
    )
    text = "\n".join(rehearsal_lines(refused))
    assert "pg_upgrade --check refused:" in text
    assert "  failed check: Checking for reg* data types in user tables" in text
    assert "  tables_using_reg.txt:" in text and "public.jobs.fn" in text


def test_no_room_for_the_copy_is_refused_before_anything_starts(
    cluster_of: Callable[[int], Cluster], tmp_path: Path
) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a 4 MB tmpfs here (needs root)")
    try:
        dsn = new_database(cluster_of(15))  # an empty database is about 7 MB already
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pgwarden",
                "upgrade",
                "rehearse",
                "--database-url",
                dsn,
                "--to",
                "17",
                "--copy",
                "dump",
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(mnt)},
            timeout=300,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert f"{mnt} has" in proc.stderr and "free" in proc.stderr
        assert "--mode link" in proc.stderr and "Traceback" not in proc.stderr
        assert list(mnt.iterdir()) == []  # nothing was started there
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
