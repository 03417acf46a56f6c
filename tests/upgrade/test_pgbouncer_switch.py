"""The switch hook with a real PgBouncer: the application writes through it while the
hook moves its backend from OLD to NEW with PAUSE / RELOAD / RESUME (15 -> 18)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
import pytest

from pgwarden.upgrade.run import RunOptions, run_upgrade
from tests.fixtures.pgbouncer import PGBOUNCER, backend, pgbouncer
from tests.upgrade.run_support import Events, Writer, clean_cwd, ids_on, make_pair

__all__ = ["clean_cwd"]

PSQL = shutil.which("psql")
pytestmark = pytest.mark.skipif(
    PGBOUNCER is None or PSQL is None,
    reason="PgBouncer (Debian package pgbouncer) or psql is not installed; .ci/run installs it",
)


def test_pgbouncer_backend_moved_by_the_switch_hook(logical_clusters, tmp_path: Path) -> None:
    pair = make_pair(logical_clusters, 15, 18)
    with pgbouncer(pair.old_dsn) as bouncer:
        # the hook: what docs/upgrade.md tells a user to write
        hook = bouncer.home / "switch.sh"
        hook.write_text(
            "#!/bin/sh\nset -e\n"
            f"admin() {{ {PSQL} -X -q -h 127.0.0.1 -p {bouncer.port} -U postgres -d pgbouncer"
            ' -c "$1"; }\n'
            "admin 'PAUSE app'\n"
            f'if [ "$PGWARDEN_SWITCH_TO" = new ]; then to="{backend(pair.new_dsn)}"; '
            f'else to="{backend(pair.old_dsn)}"; fi\n'
            f'sed -i "s|^app = .*|app = $to user=postgres|" {bouncer.ini}\n'
            "admin 'RELOAD'\nadmin 'RESUME app'\necho moved app to $PGWARDEN_SWITCH_TO\n"
        )
        hook.chmod(0o755)
        bouncer.own(hook)
        through = bouncer.through
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
