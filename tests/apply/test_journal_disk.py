"""The local journal on a full disk: no torn line, and a committed step is never "nothing ran"."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.apply.conftest import cli, scalar, wait_until, write_sql

STEPS = 20
WAITING = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgwarden-apply' "
    "AND wait_event_type = 'Lock')"
)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 kB tmpfs (needs root and mount)."""
    where = tmp_path / "disk"
    where.mkdir()
    p = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> None:
    """Use every free block of `disk`."""
    with contextlib.suppress(OSError), (disk / "filler").open("ab", buffering=0) as f:
        while True:
            f.write(b"x" * 512)


def test_disk_full_mid_run_keeps_every_line_whole_and_says_what_committed(
    shop: str, holder, tiny_disk: Path, tmp_path: Path
) -> None:
    sql = "".join(f"ALTER TABLE settings ADD COLUMN c{i:02d} text;\n" for i in range(STEPS))
    path = write_sql(tmp_path, sql)
    journal = tiny_disk / "journal.jsonl"
    hold = holder("BEGIN; SELECT count(*) FROM settings")  # step 0 waits for this
    proc = subprocess.Popen(
        cli(
            "apply",
            str(path),
            "--database-url",
            shop,
            "--env",
            "staging",
            "--no-file-transaction",
            "--lock-timeout-ms",
            "60000",
            "--journal-file",
            str(journal),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        wait_until(shop, WAITING)  # the run has started and its first lines are written
        fill(tiny_disk)
        hold.commit()
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    assert "Traceback" not in err and "internal error" not in err
    assert "No space left on device" in err, err
    committed = ", ".join(str(i) for i in range(STEPS))
    assert f"steps committed in this run: {committed}" in err, err
    assert "pgwarden status" in err
    # every step committed and the database journal says done
    cols = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'settings'"
    assert scalar(shop, cols + " AND column_name LIKE 'c__'") == STEPS
    assert scalar(shop, "SELECT state FROM pgwarden.runs") == "done"
    # the local journal: whole lines only, the first is run_started, it is private
    raw = journal.read_bytes()
    assert raw.endswith(b"\n")
    lines = [orjson.loads(line) for line in raw.splitlines()]
    assert lines[0]["event"] == "run_started"
    assert len(lines) < 2 * STEPS  # it really ran out of space
    assert os.stat(journal).st_mode & 0o777 == 0o600


def test_a_short_write_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that stops half-way (ENOSPC after some bytes) leaves the file as it was."""
    from pgwarden.apply.local_journal import append_line

    path = tmp_path / "j" / "journal.jsonl"
    append_line(path, b'{"a":1}\n')
    real_write = os.write

    def half(fd: int, data: bytes) -> int:
        return real_write(fd, bytes(data)[: len(data) // 2])

    monkeypatch.setattr(os, "write", half)
    with pytest.raises(OSError) as exc:
        append_line(path, b'{"b":2, "long": "' + b"x" * 100 + b'"}\n')
    monkeypatch.undo()
    assert exc.value.errno == errno.ENOSPC
    assert path.read_bytes() == b'{"a":1}\n'
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
