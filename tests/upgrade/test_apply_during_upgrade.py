"""No migration on either side of a major-version upgrade in progress: `apply`, `resume`
and `backfill` refuse OLD before the switchover and NEW after it (logical replication
does not carry DDL; pgwarden.applied is replicated), naming the upgrade, before any
change; once the upgrade is finished (or cancelled) they run (real clusters, 15 -> 16)."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from pgwarden.cli.upgrade import upgrade
from pgwarden.events import Event, UpgradePhase
from pgwarden.upgrade.journal import ACTIVE
from pgwarden.upgrade.logical import STATE_SCHEMA, Names
from pgwarden.upgrade.run import Interrupted, RunOptions, run_upgrade
from tests.upgrade.run_support import Pair, clean_cwd, make_pair, run_args

__all__ = ["clean_cwd"]

ADD_COLUMN = "ALTER TABLE orders ADD COLUMN coupon text;\n"


def _pgwarden(*args: str) -> Result:
    from pgwarden.cli.apply import COMMANDS

    command = next(c for c in COMMANDS if c.name == args[0])
    return CliRunner().invoke(command, list(args[1:]))


def _apply(dsn: str, migration: Path, *extra: str) -> Result:
    return _pgwarden(
        "apply", str(migration), "--database-url", dsn, "--env", "dev", "--yes", *extra
    )


def _migration(tmp_path: Path) -> Path:
    path = tmp_path / "001_coupon.sql"
    path.write_text(ADD_COLUMN)
    return path


def _columns(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as c:
        rows = c.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'orders'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ).fetchall()
    return [str(r[0]) for r in rows]


def _runs(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        if c.execute("SELECT to_regclass('pgwarden.runs')").fetchone() == (None,):
            return 0
        row = c.execute("SELECT count(*) FROM pgwarden.runs").fetchone()
    assert row is not None
    return int(str(row[0]))


def _upgrade_id(pair: Pair) -> str:
    with psycopg.connect(pair.old_dsn) as c:
        row = c.execute(f"SELECT id FROM {STATE_SCHEMA}.runs").fetchone()
    assert row is not None
    return str(row[0])


def _refused(result: Result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    for word in ("is not replicated", *words):
        assert word in text, text


def test_names_match_the_upgrade_modules() -> None:
    from pgwarden.apply import upgrade_guard

    assert upgrade_guard.STATE_SCHEMA == STATE_SCHEMA
    assert upgrade_guard.ACTIVE == ACTIVE
    assert Names("x").forward == upgrade_guard.PREFIX + "x"
    assert Names("x").reverse == upgrade_guard.PREFIX + "x" + upgrade_guard.REVERSE


def test_before_the_switchover_old_and_new_refuse_until_cancelled(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 16)
    cancel = threading.Event()

    def ctrl_c_after_replication(event: Event) -> None:
        if isinstance(event, UpgradePhase) and event.phase == "replication":
            cancel.set() if event.status == "done" else None

    with pytest.raises(Interrupted):
        run_upgrade(
            pair.sides,
            RunOptions(environment="dev", poll_s=0.1, journal_file=str(tmp_path / "j.jsonl")),
            ctrl_c_after_replication,
            cancel,
        )
    uid = _upgrade_id(pair)
    migration = _migration(tmp_path)
    runs_before = _runs(pair.old_dsn)

    on_old = _apply(pair.old_dsn, migration)
    _refused(on_old, f"upgrade {uid}", "interrupted", "OLD", "upgrade cancel")
    on_new = _apply(pair.new_dsn, migration)
    _refused(on_new, f"upgrade {uid}", "NEW", f"pgwarden_up_{uid}", "upgrade cancel")
    rewrite = _apply(pair.old_dsn, migration, "--rewrite")
    _refused(rewrite, f"upgrade {uid}")
    resumed = _pgwarden("resume", "--database-url", pair.old_dsn, "--env", "dev", "--yes")
    _refused(resumed, f"upgrade {uid}")
    fill = _pgwarden(
        "backfill", "--database-url", pair.old_dsn, "--env", "dev", "--yes",
        "--table", "orders", "--set", "note = note",
    )  # fmt: skip
    _refused(fill, f"upgrade {uid}")
    dry = _apply(pair.old_dsn, migration, "--dry-run")  # a dry run says what a real run would do
    assert dry.exit_code == 0, dry.output
    assert f"upgrade {uid}" in " ".join(dry.output.split()), dry.output
    assert "coupon" not in _columns(pair.old_dsn) and "coupon" not in _columns(pair.new_dsn)
    assert _runs(pair.old_dsn) == runs_before  # nothing recorded: nothing ran

    # a role that may not read OLD's record still finds the upgrade (its publication)
    from pgwarden.apply.upgrade_guard import upgrade_in_progress

    with psycopg.connect(pair.old_dsn, autocommit=True) as c:
        c.execute("CREATE ROLE h7_app LOGIN")  # the cluster is shared: dropped below
    try:
        with psycopg.connect(psycopg.conninfo.make_conninfo(pair.old_dsn, user="h7_app")) as c:
            found = upgrade_in_progress(c)
    finally:
        with psycopg.connect(pair.old_dsn, autocommit=True) as c:
            c.execute("DROP ROLE h7_app")
    assert found is not None, "not found by a role that cannot read the record"
    assert f"OLD of upgrade {uid}" in found.message and "publication" in found.message

    cancelled = CliRunner().invoke(
        upgrade, ["cancel", "--database-url", pair.old_dsn, "--target-url", pair.new_dsn]
    )
    assert cancelled.exit_code == 0, cancelled.output
    done = _apply(pair.old_dsn, migration)
    assert done.exit_code == 0, done.output
    assert "coupon" in _columns(pair.old_dsn)


def test_after_the_switchover_new_and_old_refuse_until_finished(
    logical_clusters, tmp_path: Path
) -> None:
    pair = make_pair(logical_clusters, 15, 16)
    ran = CliRunner().invoke(
        upgrade, run_args(pair, "--no-write-check", "--journal-file", str(tmp_path / "j.jsonl"))
    )
    assert ran.exit_code == 0, ran.output
    uid = _upgrade_id(pair)
    migration = _migration(tmp_path)
    runs_before = _runs(pair.new_dsn)

    on_new = _apply(pair.new_dsn, migration)
    _refused(on_new, f"upgrade {uid}", "NEW", "switched", "upgrade finish", "rollback")
    on_old = _apply(pair.old_dsn, migration)  # read-only, but the upgrade is the reason
    _refused(on_old, f"upgrade {uid}", "OLD", "switched", "upgrade finish", "rollback")
    assert "read-only for this session" not in on_old.output
    assert "coupon" not in _columns(pair.new_dsn) and "coupon" not in _columns(pair.old_dsn)
    assert _runs(pair.new_dsn) == runs_before

    finished = CliRunner().invoke(
        upgrade, ["finish", "--database-url", pair.old_dsn, "--target-url", pair.new_dsn]
    )
    assert finished.exit_code == 0, finished.output
    done = _apply(pair.new_dsn, migration)
    assert done.exit_code == 0, done.output
    assert "coupon" in _columns(pair.new_dsn)
