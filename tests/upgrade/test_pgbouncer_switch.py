"""The switch hook with a real PgBouncer: the application writes through it while the
hook moves its backend from OLD to NEW with PAUSE / RELOAD / RESUME (15 -> 18)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from pgwarden.upgrade.run import RunOptions, run_upgrade
from tests.upgrade.run_support import Events, Writer, clean_cwd, ids_on, make_pair

__all__ = ["clean_cwd"]

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
)
PSQL = shutil.which("psql")
pytestmark = pytest.mark.skipif(
    PGBOUNCER is None or PSQL is None,
    reason="PgBouncer (Debian package pgbouncer) or psql is not installed; .ci/run installs it",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _backend(dsn: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    return f"host={params['host']} port={params['port']} dbname={params['dbname']}"


def test_pgbouncer_backend_moved_by_the_switch_hook(logical_clusters, tmp_path: Path) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    port = _free_port()
    # PgBouncer runs as the server user: a directory of its own it can reach (not under
    # pytest's private tmp_path)
    home = Path(tempfile.mkdtemp(prefix="pgwarden-bouncer-"))
    home.chmod(0o755)
    ini = home / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"app = {_backend(pair.old_dsn)} user=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {home / 'users.txt'}\n"
        "admin_users = postgres\npool_mode = transaction\n"
        f"logfile = {home / 'pgbouncer.log'}\npidfile = {home / 'pgbouncer.pid'}\n"
    )
    (home / "users.txt").write_text('"postgres" ""\n')
    # the hook: what docs/upgrade.md tells a user to write
    hook = home / "switch.sh"
    hook.write_text(
        "#!/bin/sh\nset -e\n"
        f'admin() {{ {PSQL} -X -q -h 127.0.0.1 -p {port} -U postgres -d pgbouncer -c "$1"; }}\n'
        "admin 'PAUSE app'\n"
        f'if [ "$PGWARDEN_SWITCH_TO" = new ]; then to="{_backend(pair.new_dsn)}"; '
        f'else to="{_backend(pair.old_dsn)}"; fi\n'
        f'sed -i "s|^app = .*|app = $to user=postgres|" {ini}\n'
        "admin 'RELOAD'\nadmin 'RESUME app'\necho moved app to $PGWARDEN_SWITCH_TO\n"
    )
    hook.chmod(0o755)
    run_as: tuple[int, int] | None = None
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        pw = pwd.getpwnam("postgres")
        run_as = (pw.pw_uid, pw.pw_gid)
        for path in (home, *home.iterdir()):
            os.chown(path, *run_as)
    stderr = (home / "stderr.txt").open("wb")
    assert PGBOUNCER is not None
    bouncer = subprocess.Popen(
        [PGBOUNCER, str(ini)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        user=run_as[0] if run_as else None,
        group=run_as[1] if run_as else None,
        extra_groups=[] if run_as else None,
    )
    through = f"host=127.0.0.1 port={port} dbname=app user=postgres"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(through, connect_timeout=1, prepare_threshold=None) as c:
                    c.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    pytest.fail("PgBouncer did not start: " + _log(home))
                time.sleep(0.1)
        events = Events()
        with Writer(through) as writer:
            while len(writer.acked) < 30:
                time.sleep(0.01)
            record = run_upgrade(
                pair.sides,
                RunOptions(
                    environment="test",
                    switch_cmd=str(hook),
                    journal_file=str(tmp_path / "j.jsonl"),
                    poll_s=0.1,
                ),
                events,
            )
            switched_at = len(writer.acked)
            while len(writer.acked) < switched_at + 30:
                time.sleep(0.01)
        assert record.state == "switched"
        acked = writer.ids()
        assert acked - ids_on(pair.new_dsn) == set()  # nothing acknowledged was lost
        # the writes after the switchover went through PgBouncer to NEW
        with psycopg.connect(through, prepare_threshold=None) as c:
            row = c.execute("SELECT current_setting('server_version_num')::int").fetchone()
        assert row is not None and int(str(row[0])) // 10000 == 18
        hook_out = [e for e in events.seen if e.kind == "upgrade_hook"]
        assert hook_out and "moved app to new" in hook_out[0].output  # type: ignore[attr-defined]
    finally:
        bouncer.terminate()
        bouncer.wait(10)
        stderr.close()
        shutil.rmtree(home, ignore_errors=True)


def _log(home: Path) -> str:
    try:
        return ((home / "pgbouncer.log").read_text() + (home / "stderr.txt").read_text())[-1500:]
    except OSError:
        return "(no log)"
