"""Wave planning, and the database signals of the gates read from a real server."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from psycopg import errors as pge

from pgwarden.errors import ConfigError
from pgwarden.fleet.config import FleetConfig, GateSpec, WaveSpec
from pgwarden.fleet.gates import GateResult, Reading, evaluate, gate_url, read_target
from pgwarden.fleet.targets import Redactor, Target
from pgwarden.fleet.waves import plan_waves

T = TypeVar("T")


def _t(name: str, **labels: str) -> Target:
    return Target(name, f"dbname={name}", tuple(sorted(labels.items())))


def test_waves_take_a_label_canary_then_cumulative_percentages_in_order() -> None:
    targets = [_t(f"db{i}", shard=str(i)) for i in (10, 9, 1, 2, 3, 4, 5, 6, 7, 8)]
    targets.append(_t("canary", shard="99", tier="canary"))
    targets.append(_t("nolabel"))
    cfg = FleetConfig(
        name="f",
        order="shard",
        parallel=3,
        bake_s=5,
        waves=(
            WaveSpec("canary", label=(("tier", "canary"),)),
            WaveSpec("two", count=2, parallel=1),
            WaveSpec("half", percent=50, bake_s=0),
            WaveSpec("rest", percent=100),
        ),
    )
    waves = plan_waves(cfg, targets)
    names = [[t.name for t in w.targets] for w in waves]
    # shard sorts as a number (db10 after db9), targets without it last
    assert names == [
        ["canary"],
        ["db1", "db2"],
        ["db3", "db4", "db5"],  # 6 of 12 in waves 1-3
        ["db6", "db7", "db8", "db9", "db10", "nolabel"],
    ]
    assert [(w.parallel, w.bake_s) for w in waves] == [(3, 5), (1, 5), (3, 0), (3, 5)]


def test_targets_left_out_of_every_wave_are_an_error() -> None:
    cfg = FleetConfig(name="f", waves=(WaveSpec("one", count=1), WaveSpec("half", percent=50)))
    with pytest.raises(ConfigError) as info:
        plan_waves(cfg, [_t(f"t{i}") for i in range(4)])
    assert "2 targets are in no wave (t2, t3)" in info.value.message
    assert "percent = 100" in str(info.value.hint)


def test_redactor_scrubs_dsns_and_passwords() -> None:
    t = Target("a", "host=h dbname=d password=pa55word-x")
    scrub = Redactor([t])
    assert scrub("failed: host=h dbname=d password=pa55word-x") == "failed: ***"
    assert scrub("auth for pa55word-x failed") == "auth for *** failed"
    assert "pa55word" not in repr(t)


def _gate(signal: str, scope: str = "wave", **params: object) -> GateSpec:
    return GateSpec(signal, signal, scope, params)


def _check(
    gates: list[GateSpec], windows: dict[str, tuple[Reading, Reading, Reading]]
) -> list[GateResult]:
    return evaluate(
        gates, wave=windows, fleet=windows, wave_targets=list(windows), resolve=gate_url
    )


def test_rollbacks_deadlocks_and_lock_waits_are_read_from_the_server(db: str) -> None:
    target = Target("t", db)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE r (id int PRIMARY KEY, v int); INSERT INTO r VALUES (1, 0), (2, 0)")
    before = read_target(target)
    start = read_target(target)
    with psycopg.connect(db) as c:  # 30 transactions rolled back, 10 committed
        for _ in range(30):
            c.execute("SELECT 1")
            c.rollback()
        for _ in range(10):
            c.execute("SELECT 1")
            c.commit()
    _deadlock(db)
    holder = psycopg.connect(db)
    holder.execute("LOCK TABLE r IN ACCESS EXCLUSIVE MODE")
    waiter_ready = threading.Event()
    waiter = threading.Thread(target=_wait_on_lock, args=(db, waiter_ready))
    waiter.start()
    try:
        assert waiter_ready.wait(10)
        end = _until(lambda: read_target(target), lambda r: r.lock_waits >= 1)
    finally:
        holder.rollback()
        holder.close()
        waiter.join(10)
    windows = {"t": (before, start, end)}
    rb, dl, lw = _check(
        [
            _gate("rollback_ratio", max=0.5, min_transactions=20),
            _gate("deadlocks", max=0),
            _gate("lock_waits", max=0),
        ],
        windows,
    )
    assert not rb.ok and rb.value is not None and rb.value > 0.5  # 30 of ~50, and ours
    assert "rolled back" in rb.reasons[0]
    assert not dl.ok and dl.reasons == ("t: 1 deadlocks during the bake time",)
    assert not lw.ok and lw.reasons == ("t: 1 sessions waiting on locks",)
    quiet = _check(
        [_gate("rollback_ratio", max=0.5), _gate("deadlocks", max=0)], {"t": (end, end, end)}
    )
    assert all(g.ok for g in quiet)


def test_a_target_that_cannot_be_read_fails_the_gate(db: str) -> None:
    ok = read_target(Target("ok", db))
    gone = read_target(Target("gone", db + "_missing password=s3cret-pw"))
    assert gone.error is not None and "s3cret" not in gone.error
    (result,) = _check(
        [_gate("deadlocks", "fleet", max=0)], {"ok": (ok, ok, ok), "gone": (gone, gone, gone)}
    )
    assert not result.ok
    assert result.reasons[0].startswith("gone: could not read its statistics")


def _wait_on_lock(dsn: str, ready: threading.Event) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET lock_timeout = '20s'")
        ready.set()
        with contextlib.suppress(pge.LockNotAvailable):
            c.execute("SELECT * FROM r")


def _deadlock(dsn: str) -> None:
    """Two sessions lock rows 1 and 2 in opposite orders: the server breaks the deadlock."""
    a, b = psycopg.connect(dsn), psycopg.connect(dsn)
    try:
        a.execute("UPDATE r SET v = 1 WHERE id = 1")
        b.execute("UPDATE r SET v = 1 WHERE id = 2")
        errors: list[BaseException] = []

        def second() -> None:
            try:
                b.execute("UPDATE r SET v = 2 WHERE id = 1")
            except pge.DeadlockDetected as exc:
                errors.append(exc)

        t = threading.Thread(target=second)
        t.start()
        _until(lambda: _waiting(dsn), bool)  # b waits for a's row
        try:
            a.execute("UPDATE r SET v = 2 WHERE id = 2")
        except pge.DeadlockDetected as exc:
            errors.append(exc)
        a.rollback()
        t.join(10)
        b.rollback()
        assert len(errors) == 1
    finally:
        a.close()
        b.close()


def _waiting(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ).fetchone()
        return bool(row and row[0])


def _until(read: Callable[[], T], ok: Callable[[T], bool]) -> T:
    """Read until `ok(value)` (statistics reach pg_stat_database within a moment)."""
    deadline = time.monotonic() + 15
    while True:
        value = read()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_the_documented_configuration_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every TOML block of docs/fleet.md, together, is a valid fleet `tenants`."""
    import re

    from pgwarden.fleet.config import fleet_config
    from pgwarden.settings import load_settings

    doc = (Path(__file__).parents[2] / "docs" / "fleet.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", doc, re.DOTALL)
    assert len(blocks) >= 2
    (tmp_path / "pyproject.toml").write_text("\n".join(blocks))
    monkeypatch.chdir(tmp_path)
    cfg = fleet_config(load_settings(), "tenants")
    assert [w.name for w in cfg.waves] == ["canary", "ten", "rest"]
    assert [g.signal for g in cfg.gates] == ["pg_stat_statements", "prometheus"]
    assert cfg.parallel == 4 and cfg.bake_s == 60 and len(cfg.targets) == 3


def test_replication_lag_of_a_paused_hot_standby_fails_the_gate(tmp_path: Path) -> None:
    """A real streaming replica whose replay is paused falls behind the primary by what
    the primary writes; the gate reads that from pg_stat_replication."""
    from pgwarden.pg.cluster import Cluster
    from tests.apply.test_protection_identity import _physical_copy

    with Cluster.start() as primary:
        dsn = primary.create_database("lagged")
        with _physical_copy(primary, standby=True) as standby:
            target = Target("p", dsn)
            connected = _until(lambda: read_target(target), lambda r: r.replication_lag is not None)
            assert connected.replication_lag is not None, "the standby never connected"
            with psycopg.connect(standby.dsn(), autocommit=True) as s:
                s.execute("SELECT pg_wal_replay_pause()")
                start = read_target(target)
                with psycopg.connect(dsn, autocommit=True) as c:
                    c.execute("CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad "
                              "FROM generate_series(1, 20000) g")  # fmt: skip
                end = _until(
                    lambda: read_target(target),
                    lambda r: (r.replication_lag or 0) > 2_000_000,
                )
                s.execute("SELECT pg_wal_replay_resume()")
    (lag,) = _check([_gate("replication_lag", max_bytes=1_000_000)], {"p": (start, start, end)})
    assert not lag.ok and lag.value is not None and lag.value > 2_000_000
    assert "replication lag" in lag.reasons[0]
    (fine,) = _check([_gate("replication_lag", max_bytes=1_000_000)], {"p": (start, start, start)})
    assert fine.ok
