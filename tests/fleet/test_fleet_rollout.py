"""Done-when of issue 18: 51 databases on three real clusters (two PostgreSQL 15, one of
another version), rolled out in waves.

In order (one fleet shared by the module, each step building on the last):
1. a plan failing on one target of wave 3 (rows violating a new CHECK) halts there:
   waves 1-2 have it, the failing target is as it was, later waves are untouched,
   `fleet status` (the CLI, reading every database) says exactly that; `fleet resume`
   after the data is fixed finishes the rollout;
2. a pg_stat_statements gate fed by a planted regression (a query on wave 2's
   targets made slower during the bake) halts after wave 2, nothing later is
   touched; after the fix, resume re-checks the gate and finishes;
3. a table created by hand on one target shows as drift in `fleet status`.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import psycopg
import pytest

from pgwarden import commands
from pgwarden.errors import PostgresNotFound
from pgwarden.events import Event, FleetTarget, FleetWave
from pgwarden.fleet.config import fleet_config
from pgwarden.fleet.journal import RolloutJournal, journal_path
from pgwarden.fleet.rollout import RolloutOptions, resume_rollout, run_rollout
from pgwarden.fleet.status import fleet_status
from pgwarden.fleet.targets import load_targets, server_of
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import load_settings
from tests.fleet.conftest import (
    FAST,
    SLOW,
    Member,
    cli,
    export,
    fleet_toml,
    has_column,
    make_members,
    make_template,
    memory_tablespace,
    preload_settings,
    runs_of,
)

FLEET_SIZE = 51
BAD = 10  # n of the target whose rows violate the new constraint: in wave 3

WAVES = """
parallel = 4
max_connections = 30
max_per_server = 3
[[fleet.{name}.waves]]
name = "canary"
count = 1
[[fleet.{name}.waves]]
name = "early"
count = 5
[[fleet.{name}.waves]]
name = "half"
percent = 50
[[fleet.{name}.waves]]
name = "rest"
percent = 100
parallel = 8
"""
GATES = """
[[fleet.{name}.gates]]
name = "query-latency"
signal = "pg_stat_statements"
top = 5
max_ratio = 5.0
min_calls = 5
min_mean_ms = 5.0
"""


@pytest.fixture(scope="module")
def clusters() -> Iterator[list[Cluster]]:
    installs = []
    for major in (15, 15, 18):
        try:
            installs.append(find_installation(major))
        except PostgresNotFound:
            installs.append(find_installation(17))
    spaces: list[Path] = []
    started: list[Cluster] = []
    try:
        for inst in installs:
            started.append(Cluster.start(inst, settings=preload_settings()))
        for c in started:
            space = memory_tablespace(c)
            if space is not None:
                spaces.append(space)
            make_template(c)
        yield started
    finally:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda c: c.stop(), started))
        for space in spaces:
            shutil.rmtree(space, ignore_errors=True)


@pytest.fixture(scope="module")
def fleet(
    clusters: list[Cluster], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[Member]]]:
    members = make_members(clusters, FLEET_SIZE, "fl")
    home = tmp_path_factory.mktemp("fleet")
    (home / "pgwarden.toml").write_text(
        fleet_toml(
            {
                "roll": WAVES.format(name="roll"),
                "gated": WAVES.format(name="gated") + GATES.format(name="gated"),
            },
            members,
            journal_dir=home / "journal",
        )
    )
    (home / "m1").mkdir()
    (home / "m1" / "001_note.sql").write_text(
        "ALTER TABLE accounts ADD COLUMN note text;\n"
        "ALTER TABLE accounts ADD CONSTRAINT balance_nonneg CHECK (balance >= 0);\n"
    )
    (home / "m2").mkdir()
    (home / "m2" / "002_index.sql").write_text(
        "CREATE INDEX accounts_balance_idx ON accounts (balance);\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        export(members, mp)
        mp.chdir(home)
        yield home, members


def _status(home: Path, fleet: str, *, via_cli: bool = False) -> dict[str, dict[str, object]]:
    """`fleet status --format json` by name: through the CLI, or the function it calls."""
    if via_cli:
        done = cli(home, "fleet", "status", "--fleet", fleet, "--format", "json")
        assert done.returncode == 0, done.stderr
        report = orjson.loads(done.stdout)
    else:
        cfg = fleet_config(load_settings(), fleet)
        journal = RolloutJournal.load(journal_path(cfg.journal_dir, fleet, {})).data
        report = fleet_status(fleet, load_targets(cfg), journal=journal).to_json()
    return {t["name"]: t for t in report["targets"]} | {"": report["rollout"]}


class Concurrency:
    """Largest number of targets applied at once, overall and per server (from events)."""

    def __init__(self, servers: dict[str, str]) -> None:
        self.servers = servers
        self.now: dict[str, int] = {}
        self.total = 0
        self.peak = 0
        self.peak_server = 0
        self.waves: list[FleetWave] = []
        self.hooks: list[object] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, FleetTarget) and event.state != "waiting":
            s = self.servers[event.target]
            step = 1 if event.state == "running" else -1
            self.now[s] = self.now.get(s, 0) + step
            self.total += step
            self.peak = max(self.peak, self.total)
            self.peak_server = max(self.peak_server, self.now[s])
        if isinstance(event, FleetWave):
            self.waves.append(event)
            for hook in self.hooks:
                hook(event)  # type: ignore[operator]


def _run(fleet_name: str, plan_dir: Path, observer: Concurrency) -> object:
    settings = load_settings()
    cfg = fleet_config(settings, fleet_name)
    plan = commands.load_plan([plan_dir], file_transaction=True)
    return run_rollout(
        plan,
        cfg,
        load_targets(cfg),
        RolloutOptions(env="staging"),
        settings=settings,
        observer=observer,
        sources=[str(plan_dir)],
    )


def test_failed_target_halts_wave_3_and_resume_finishes(
    fleet: tuple[Path, list[Member]],
) -> None:
    home, members = fleet
    by_n = {m.n: m for m in members}
    assert len({m.cluster.installation.major for m in members}) >= 2
    with psycopg.connect(by_n[BAD].dsn, autocommit=True) as c:
        c.execute("UPDATE accounts SET balance = -5 WHERE id = 7")
    cfg = fleet_config(load_settings(), "roll")
    servers = {t.name: server_of(t) for t in load_targets(cfg)}
    seen = Concurrency(servers)
    threads_before = threading.active_count()

    result = _run("roll", home / "m1", seen)

    assert threading.active_count() == threads_before  # every pool and watchdog is gone
    assert result.state == "halted" and result.halted_wave == 3 and result.reason == "target"  # type: ignore[attr-defined]
    assert seen.peak <= 4 and seen.peak_server <= 3  # parallel 4, max_per_server 3
    waves = {1: range(1, 2), 2: range(2, 7), 3: range(7, 27), 4: range(27, 52)}
    for n in (*waves[1], *waves[2]):
        assert has_column(by_n[n].dsn, "note"), n
    assert not has_column(by_n[BAD].dsn, "note")  # rolled back: as it was
    assert [s for s, _f in runs_of(by_n[BAD].dsn)] == ["failed"]
    for n in waves[4]:
        assert runs_of(by_n[n].dsn) == [], n  # never touched
    wave3_done = [n for n in waves[3] if n != BAD and has_column(by_n[n].dsn, "note")]
    for n in waves[3]:
        if n != BAD and n not in wave3_done:
            assert runs_of(by_n[n].dsn) == [], n  # not started after the failure

    status = _status(home, "roll", via_cli=True)
    assert status[""]["state"] == "halted" and status[""]["halted_wave"] == 3
    for n in (*waves[1], *waves[2], *wave3_done):
        t = status[by_n[n].name]
        assert (t["change"], t["rollout_state"]) == ("applied", "done"), n
    bad = status[by_n[BAD].name]
    assert (bad["change"], bad["rollout_state"]) == ("none", "failed")
    assert "balance_nonneg" in str(bad["last_failure"])
    for n in waves[4]:
        t = status[by_n[n].name]
        assert (t["change"], t["rollout_state"], t["plans"]) == ("none", "pending", []), n

    with psycopg.connect(by_n[BAD].dsn, autocommit=True) as c:
        c.execute("UPDATE accounts SET balance = 70 WHERE id = 7")
    done = cli(home, "fleet", "resume", "--fleet", "roll", "--env", "staging")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "51 targets have the change, 0 failed, 0 never touched" in done.stdout
    status = _status(home, "roll")
    assert status[""]["state"] == "done"
    for m in members:
        assert status[m.name]["change"] == "applied", m.name
        assert has_column(m.dsn, "note"), m.name


def _workload(dsns: list[str], calls: int = 6) -> None:
    for dsn in dsns:
        with psycopg.connect(dsn, autocommit=True) as c:
            for i in range(calls):
                c.execute("SELECT lookup(%s)", (i,))


def test_gate_halts_on_a_planted_regression_and_resume_finishes(
    fleet: tuple[Path, list[Member]],
) -> None:
    home, members = fleet
    by_name = {m.name: m for m in members}
    _workload([m.dsn for m in members])  # what "before the wave" looks like
    planted: list[str] = []

    def during_bake(event: FleetWave) -> None:
        if event.phase != "baking":
            return
        dsns = [by_name[n].dsn for n in event.targets]
        if event.wave == 2 and not planted:
            for dsn in dsns:  # the change "interacts" with the app: its query slows down
                with psycopg.connect(dsn, autocommit=True) as c:
                    c.execute(SLOW)
            planted.extend(event.targets)
        _workload(dsns)

    cfg = fleet_config(load_settings(), "gated")
    seen = Concurrency({t.name: server_of(t) for t in load_targets(cfg)})
    seen.hooks.append(during_bake)
    result = _run("gated", home / "m2", seen)

    assert (result.state, result.halted_wave, result.reason) == ("halted", 2, "gate")  # type: ignore[attr-defined]
    assert "lookup" in str(result.message)  # type: ignore[attr-defined]
    status = _status(home, "gated")
    for name in planted:
        assert status[name]["change"] == "applied"
    later = [m for m in members if m.n > 6]
    for m in later:
        assert status[m.name]["change"] == "none", m.name  # the next wave never started
        assert status[m.name]["rollout_state"] == "pending"

    for name in planted:
        with psycopg.connect(by_name[name].dsn, autocommit=True) as c:
            c.execute(FAST)
    settings = load_settings()
    cfg = fleet_config(settings, "gated")
    again = resume_rollout(
        cfg, load_targets(cfg), RolloutOptions(env="staging"), settings=settings, observer=seen
    )
    assert again.state == "done", again.message
    assert result.failed_gates()[0][0] == 2  # type: ignore[attr-defined]
    assert again.failed_gates() == []  # the resumed wave's gate passed: only that counts
    gate_waves = [w for w, g in again.gates if g.ok]
    assert 2 in gate_waves and 4 in gate_waves
    status = _status(home, "gated")
    assert all(status[m.name]["change"] == "applied" for m in members)


def test_a_table_created_by_hand_shows_as_drift(fleet: tuple[Path, list[Member]]) -> None:
    home, members = fleet
    odd = members[17]
    with psycopg.connect(odd.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE handmade (id int)")
    try:
        status = _status(home, "roll")
        assert status[odd.name]["drift"] == [{"object": "table public.handmade", "how": "extra"}]
        assert status[odd.name]["peers"] == len(members) - 1
        others = {m.name: status[m.name]["drift"] for m in members if m is not odd}
        assert {n: d for n, d in others.items() if d} == {}
        text = cli(home, "fleet", "status", "--fleet", "roll", "--check")
        assert "drift: table public.handmade (extra)" in text.stdout
        assert text.returncode == 1  # --check: drift found
    finally:
        with psycopg.connect(odd.dsn, autocommit=True) as c:
            c.execute("DROP TABLE handmade")
    assert cli(home, "fleet", "status", "--fleet", "roll", "--check").returncode == 0
