"""Bad input and faults: each detected, reported clearly, nothing half-written marked good."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from pgwarden.backup import api
from pgwarden.backup.manifest import format_time
from pgwarden.errors import EnvironmentProblem, UsageError
from pgwarden.pg.cluster import Cluster
from tests.backup.conftest import assert_clean_error, make_shop, run_cli
from tests.fixtures.pg import new_database


@pytest.fixture(scope="module")
def verified(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A source DSN and a catalogue holding one verified backup of it."""
    src = make_shop(pg_cluster)
    cat = tmp_path_factory.mktemp("verified") / "catalogue"
    m = api.create(src, catalogue=cat)
    assert api.verify(m.id, catalogue=cat).ok
    return src, cat


def _copy(cat: Path, tmp_path: Path) -> tuple[Path, str]:
    dest = tmp_path / "catalogue"
    shutil.copytree(cat, dest)
    (backup_id,) = [p.name for p in dest.iterdir()]
    return dest, backup_id


def _data_file(cat: Path, backup_id: str, table: str) -> Path:
    manifest = json.loads((cat / backup_id / "manifest.json").read_text())
    (entry,) = [f for f in manifest["files"] if f["table"] == table]
    return cat / backup_id / "dump" / str(entry["path"])


def test_truncated_dump_file_fails_verify_naming_the_table(verified, tmp_path):
    cat, backup_id = _copy(verified[1], tmp_path)
    path = _data_file(cat, backup_id, "public.orders")
    path.write_bytes(path.read_bytes()[:100])
    r = run_cli("backup", "verify", backup_id, "--catalogue", str(cat))
    assert r.returncode == 1, r.stderr
    assert "public.orders" in r.stdout and "truncated" in r.stdout
    (info,) = api.list_backups(cat)
    assert info.state == "failed"
    assert info.verification is not None
    assert info.verification.first_mismatch == "public.orders"


def test_edited_dump_file_fails_verify_and_is_never_restored(verified, tmp_path, pg_cluster):
    cat, backup_id = _copy(verified[1], tmp_path)
    path = _data_file(cat, backup_id, "public.customers")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    v = api.verify(backup_id, catalogue=cat)
    assert not v.ok
    assert v.first_mismatch == "public.customers"
    assert "edited" in v.mismatches[0]
    r = run_cli(
        "backup",
        "restore",
        "--at",
        "2999-01-01T00:00:00Z",
        "--target-url",
        new_database(pg_cluster),
        "--database",
        _dbname(verified[0]),
        "--catalogue",
        str(cat),
        "--yes",
    )
    assert_clean_error(r, 1, "no verified backup", backup_id, "failed")


def test_tampered_manifest_is_detected(verified, tmp_path):
    cat, backup_id = _copy(verified[1], tmp_path)
    path = cat / backup_id / "manifest.json"
    path.write_text(path.read_text().replace('"rows": 20000', '"rows": 19999'))
    r = run_cli("backup", "verify", backup_id, "--catalogue", str(cat))
    assert_clean_error(r, 1, "manifest.json: checksum does not match", "edited or damaged")
    (info,) = api.list_backups(cat)
    assert info.state == "damaged"
    r = run_cli("backup", "list", "--catalogue", str(cat))
    assert r.returncode == 0 and "damaged" in r.stdout
    assert api.verified_backup_since(cat, 0, datetime(2000, 1, 1, tzinfo=UTC)) is None


def test_naive_timestamp_is_refused_with_an_example(verified, pg_cluster):
    r = run_cli(
        "backup",
        "restore",
        "--at",
        "2024-02-21 04:55:00",
        "--target-url",
        new_database(pg_cluster),
        "--catalogue",
        str(verified[1]),
        "--yes",
    )
    assert_clean_error(r, 2, "has no UTC offset", "2024-02-21T04:55:00+00:00")
    with pytest.raises(UsageError, match="no UTC offset"):
        api.verified_backup_since(verified[1], 1, datetime(2024, 2, 21))


def test_time_before_every_verified_backup_lists_the_nearest(verified, pg_cluster):
    (info,) = api.list_backups(verified[1])
    assert info.manifest is not None
    early = format_time(info.manifest.ended_at - timedelta(hours=3))
    r = run_cli(
        "backup",
        "restore",
        "--at",
        early,
        "--target-url",
        new_database(pg_cluster),
        "--database",
        _dbname(verified[0]),
        "--catalogue",
        str(verified[1]),
        "--yes",
    )
    assert_clean_error(r, 1, "no verified backup", "nearest backups", info.id, "after TIME")


def test_backup_of_another_system_is_never_chosen(verified, tmp_path):
    src, cat = verified
    (info,) = api.list_backups(cat)
    assert info.manifest is not None
    with Cluster.start() as other:
        target = other.create_database(_dbname(src))
        later = format_time(info.manifest.ended_at + timedelta(hours=1))
        r = run_cli(
            "backup",
            "restore",
            "--at",
            later,
            "--target-url",
            target,
            "--catalogue",
            str(cat),
            "--yes",
        )
        assert_clean_error(r, 1, "no verified backup", "also holds backups", "--from-system")
        # Naming the source system explicitly is the way to restore onto a new server.
        sysid = str(info.manifest.system_identifier)
        plan = api.plan_restore(later, target, catalogue=cat, from_system=sysid[:8])
        assert plan.backup.id == info.id
    since = info.manifest.snapshot_at - timedelta(minutes=1)
    assert api.verified_backup_since(cat, info.manifest.system_identifier, since) == info
    assert api.verified_backup_since(cat, info.manifest.system_identifier + 1, since) is None
    assert (
        api.verified_backup_since(cat, info.manifest.system_identifier, info.manifest.snapshot_at)
        is None
    )


def test_protected_target_needs_env(verified, pg_cluster):
    from pgwarden.errors import Refused
    from pgwarden.settings import Environment, Settings

    target = new_database(pg_cluster)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(
            "CREATE SCHEMA pgwarden; CREATE TABLE pgwarden.target"
            " (environment text, system_identifier bigint)"
        )
        conn.execute("INSERT INTO pgwarden.target VALUES ('production', 1)")
    settings = Settings(environments={"production": Environment("production", protected=True)})
    later = datetime.now(UTC) + timedelta(days=1)
    kw = {"catalogue": verified[1], "database": _dbname(verified[0]), "settings": settings}
    with pytest.raises(Refused, match="stamped as environment 'production'"):
        api.plan_restore(later, target, **kw)
    with pytest.raises(Refused, match="not 'staging'"):
        api.plan_restore(later, target, env="staging", **kw)
    plan = api.plan_restore(later, target, env="production", **kw)
    assert api.restore(plan).ok


def _dbname(dsn: str) -> str:
    return dict(p.split("=", 1) for p in dsn.split())["dbname"]


def test_disk_full_during_create_records_nothing(pg_cluster, tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a 1 MB tmpfs here (needs root)")
    try:
        src = new_database(pg_cluster)
        with psycopg.connect(src, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE blob AS SELECT g, gen_random_uuid()::text || md5(random()"
                "::text) AS junk FROM generate_series(1, 100000) g"
            )
        with pytest.raises(EnvironmentProblem, match="disk full"):
            api.create(src, catalogue=mnt / "catalogue")
        assert os.listdir(mnt / "catalogue") == []
        r = run_cli(
            "backup", "create", "--database-url", src, "--catalogue", str(mnt / "catalogue")
        )
        assert_clean_error(r, 2, "disk full", "nothing was recorded")
        assert api.list_backups(mnt / "catalogue") == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _processes(*needles: str) -> list[int]:
    """Pids of the processes whose command line holds every needle."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if all(n.encode() in cmd for n in needles):
                found.append(int(pid))
    return found


def _descendants_running(pattern: str) -> list[str]:
    """The processes whose command line holds `pattern`, described (pid, state, command)."""
    out = []
    for pid in _processes(pattern):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
        out.append(f"{pid} {state} {cmd[:200]}")
    return out


def test_ctrl_c_during_verify_leaves_nothing_behind(pg_cluster, tmp_path):
    src = new_database(pg_cluster)
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute(  # enough for the restore to be seen running (a few tenths of a second;
            # it is frozen then, so it need not outlast anything else)
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a, md5((g+1)::text) AS b"
            " FROM generate_series(1, 100000) g"
        )
        conn.execute("ALTER TABLE big ADD PRIMARY KEY (id)")
    cat = tmp_path / "catalogue"
    m = api.create(src, catalogue=cat)
    private_tmp = Path(tempfile.mkdtemp(prefix="pgwarden-test-tmp-"))
    private_tmp.chmod(0o755)
    restore_group: int | None = None
    try:
        env = {**os.environ, "TMPDIR": str(private_tmp)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgwarden", "backup", "verify", m.id, "--catalogue", str(cat)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not (restores := _processes(str(cat / m.id / "dump"), "--dbname=")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "pg_restore never started"
            time.sleep(0.01)
        # Freeze the restore where it is (pg_restore and its --jobs workers: its process
        # group), so the Ctrl-C lands during it however fast the machine restores.
        try:
            restore_group = os.getpgid(restores[0])
            os.killpg(restore_group, signal.SIGSTOP)
        except ProcessLookupError:
            pytest.fail("pg_restore ended before it could be frozen: restore more rows")
        assert _descendants_running(str(cat / m.id / "dump"))
        assert [p for p in private_tmp.iterdir() if p.name.startswith("pgwarden-cluster-")]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 2, (stdout, stderr)
        assert "interrupted" in stderr and "Traceback" not in stderr
        assert not (left := _descendants_running(str(private_tmp))), left
        assert not (left := _descendants_running(str(cat / m.id / "dump"))), left
        assert [p.name for p in private_tmp.iterdir()] == []
        assert not (cat / m.id / "verification.json").exists()
        (info,) = api.list_backups(cat)
        assert info.state == "unverified"
    finally:
        if restore_group is not None:  # verify killed it; if not, do not leave it stopped
            with contextlib.suppress(ProcessLookupError):
                os.killpg(restore_group, signal.SIGKILL)
        shutil.rmtree(private_tmp, ignore_errors=True)
