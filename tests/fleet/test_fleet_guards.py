"""A small fleet on the session's cluster: two runners on one target, cancel, on_error =
continue, secrets, and the three sources of targets."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgwarden import commands
from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
from pgwarden.errors import ConfigError, EnvironmentProblem, UsageError
from pgwarden.events import Event, FleetTarget
from pgwarden.fleet.config import fleet_config
from pgwarden.fleet.control import cancel_rollout
from pgwarden.fleet.journal import RolloutJournal, journal_path
from pgwarden.fleet.rollout import RolloutOptions, run_rollout
from pgwarden.fleet.status import fleet_status
from pgwarden.fleet.targets import load_targets
from pgwarden.pg.cluster import Cluster
from pgwarden.plan import Plan
from pgwarden.settings import load_settings
from tests.fleet.conftest import (
    Member,
    cli,
    export,
    fleet_toml,
    has_column,
    make_members,
    make_template,
    runs_of,
)

SECRET = "hunter2-fleet-secret"
CANARY_THEN_REST = """
parallel = 2
[[fleet.{name}.waves]]
name = "canary"
count = 1
[[fleet.{name}.waves]]
name = "rest"
percent = 100
"""


@pytest.fixture(scope="module")
def small(
    pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[Member]]]:
    make_template(pg_cluster, "fleet_small_tpl")
    members = make_members([pg_cluster], 5, "fs", template="fleet_small_tpl")
    home = tmp_path_factory.mktemp("fleet-small")
    (home / "pgwarden.toml").write_text(
        fleet_toml(
            {
                "small": CANARY_THEN_REST.format(name="small"),
                "lenient": 'on_error = "continue"\n' + CANARY_THEN_REST.format(name="lenient"),
                "pair": 'on_error = "continue"\n' + CANARY_THEN_REST.format(name="pair"),
            },
            members,
            journal_dir=home / "journal",
        )
    )
    with pytest.MonkeyPatch.context() as mp:
        export(members, mp)
        mp.chdir(home)
        yield home, members


def _plan(home: Path, name: str, sql_text: str) -> tuple[Path, Plan]:
    folder = home / name
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.sql").write_text(sql_text)
    return folder, commands.load_plan([folder], file_transaction=True)


class _Seen:
    def __init__(self) -> None:
        self.running = threading.Event()
        self.waiting = threading.Event()
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, FleetTarget) and event.state == "waiting":
            self.waiting.set()
        if event.kind in ("retry", "lock_wait") or (
            isinstance(event, FleetTarget) and event.state == "running"
        ):
            self.running.set()


def test_two_runners_never_change_the_same_target(small: tuple[Path, list[Member]]) -> None:
    """Runner A (a plain apply) holds fs001's apply lock while it waits for a table lock;
    runner B (a fleet rollout over fs001 and fs002) is refused on fs001, applies fs002."""
    home, members = small
    first, second = members[0], members[1]
    _folder, plan = _plan(home, "two_runners", "ALTER TABLE accounts ADD COLUMN a1 int;\n")
    holder = psycopg.connect(first.dsn)
    holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
    seen = _Seen()
    results: list[object] = []
    runner_a = threading.Thread(
        target=lambda: results.append(
            apply_plan(
                plan,
                database_url=first.dsn,
                policy=GuardPolicy(env="staging"),
                options=RunOptions(limits=Limits(lock_budget_s=60.0, health=None)),
                observer=seen,
            )
        )
    )
    runner_a.start()
    try:
        assert seen.running.wait(30), "runner A never started waiting"
        settings = load_settings()
        cfg = fleet_config(settings, "pair")
        targets = [t for t in load_targets(cfg) if t.name in (first.name, second.name)]
        result = run_rollout(plan, cfg, targets, RolloutOptions(env="staging"), settings=settings)
    finally:
        holder.rollback()
        holder.close()
        runner_a.join(60)
    outcome = {t.name: (t.state, t.message or "") for t in result.targets}
    assert outcome[first.name][0] == "refused"
    assert "another pgwarden apply is running" in outcome[first.name][1]
    assert outcome[second.name][0] == "done"
    assert getattr(results[0], "state", None) == "done"  # runner A finished on its own
    fp = plan.fingerprint()
    assert [s for s, f in runs_of(first.dsn) if f == fp] == ["done"]  # applied once, by A
    assert has_column(first.dsn, "a1") and has_column(second.dsn, "a1")


def test_fleet_cancel_stops_the_rollout_and_its_running_apply(
    small: tuple[Path, list[Member]],
) -> None:
    home, members = small
    canary = members[0]
    _folder, plan = _plan(home, "cancelled", "ALTER TABLE accounts ADD COLUMN c1 int;\n")
    holder = psycopg.connect(canary.dsn)
    holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
    settings = load_settings()
    cfg = fleet_config(settings, "small")
    targets = load_targets(cfg)
    seen = _Seen()
    results: list[object] = []
    opts = RolloutOptions(env="staging", limits=Limits(lock_budget_s=120.0, health=None))
    runner = threading.Thread(
        target=lambda: results.append(
            run_rollout(plan, cfg, targets, opts, settings=settings, observer=seen)
        )
    )
    runner.start()
    try:
        assert seen.running.wait(30)
        assert seen.waiting.wait(30)  # the canary's apply says why it is held up
        held = [e for e in seen.events if isinstance(e, FleetTarget) and e.state == "waiting"]
        assert held[0].target == canary.name
        assert "retry in" in str(held[0].message) or "waiting for pid" in str(held[0].message)
        path = journal_path(cfg.journal_dir, cfg.name, {})
        deadline = time.monotonic() + 30
        while True:  # until the canary's apply has recorded its run
            live = fleet_status(cfg.name, targets, journal=RolloutJournal.load(path).data)
            busy = {t.name: t.in_progress for t in live.targets if t.in_progress}
            if busy or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert list(busy) == [canary.name]
        locked = {t.name: t for t in live.targets}[canary.name]
        assert locked.catalog_note is not None and "locked" in locked.catalog_note
        assert [r.state for r in busy[canary.name]] == ["running"]
        assert live.rollout is not None and live.rollout["state"] == "running"
        answer = cancel_rollout(RolloutJournal.load(path), targets)
        runner.join(60)
    finally:
        holder.rollback()
        holder.close()
    assert not runner.is_alive()
    assert answer.state == "cancelled", answer.lines
    result = results[0]
    assert getattr(result, "state", None) == "cancelled"
    states = {t.name: t.state for t in getattr(result, "targets", ())}
    assert states[canary.name] == "cancelled"
    # apply's own hint (`pgwarden resume` on that one database) is not the way on in a fleet
    said = {t.name: t.message or "" for t in getattr(result, "targets", ())}[canary.name]
    assert "cancelled" in said and "pgwarden resume" not in said, said
    assert all(states[m.name] == "pending" for m in members[1:])  # never touched
    assert not has_column(canary.dsn, "c1")
    assert [s for s, f in runs_of(canary.dsn) if f == plan.fingerprint()] == ["cancelled"]
    status = fleet_status(cfg.name, targets, journal=RolloutJournal.load(path).data)
    by = {t.name: t for t in status.targets}
    assert by[canary.name].change == "none" and by[canary.name].rollout_state == "cancelled"


def test_on_error_continue_records_the_failure_and_finishes(
    small: tuple[Path, list[Member]],
) -> None:
    home, members = small
    bad = members[0]  # the canary
    with psycopg.connect(bad.dsn, autocommit=True) as c:
        c.execute("UPDATE accounts SET balance = -1 WHERE id = 1")
    folder, _ = _plan(
        home, "lenient_check", "ALTER TABLE accounts ADD CONSTRAINT pos CHECK (balance >= 0);\n"
    )
    try:
        done = cli(home, "fleet", "apply", str(folder), "--fleet", "lenient", "--env", "staging")
    finally:
        with psycopg.connect(bad.dsn, autocommit=True) as c:
            c.execute("UPDATE accounts SET balance = 10 WHERE id = 1")
    assert done.returncode == 3, done.stdout + done.stderr  # a target failed
    assert "4 targets have the change, 1 failed, 0 never touched" in done.stdout
    assert f"{bad.name} (wave 1) failed" in done.stdout


def test_secrets_stay_in_memory(small: tuple[Path, list[Member]], tmp_path: Path) -> None:
    """A password in the targets' DSNs is in no output, journal or file; one in the
    configuration file is refused without being shown."""
    _home, members = small
    toml = fleet_toml(
        {"sec": CANARY_THEN_REST.format(name="sec")}, members, journal_dir=tmp_path / "j"
    )
    (tmp_path / "pgwarden.toml").write_text(toml)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001.sql").write_text("ALTER TABLE accounts ADD COLUMN s1 int;\n")
    with pytest.MonkeyPatch.context() as mp:
        for m in members:
            mp.setenv(m.env_var, f"{m.dsn} password={SECRET}")
        mp.setenv(members[2].env_var, f"{members[2].dsn}_missing password={SECRET}")
        runs = [
            cli(tmp_path, "fleet", "apply", str(folder), "--fleet", "sec", "--env", "staging"),
            cli(tmp_path, "fleet", "status", "--fleet", "sec", "--format", "json"),
        ]
    # trust authentication ignores the password: it is there only to be leaked
    assert runs[0].returncode == 1, runs[0].stderr  # the missing database: unreachable
    assert f"{members[2].name} (wave 2) unreachable" in runs[0].stdout, runs[0].stdout
    for r in runs:
        assert SECRET not in r.stdout + r.stderr
    files = [p for p in (tmp_path / "j").rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert SECRET not in p.read_text(errors="replace"), p
    (tmp_path / "pgwarden.toml").write_text(
        toml.replace(
            f'dsn_env = "{members[0].env_var}"', f'dsn = "{members[0].dsn} password={SECRET}"'
        )
    )
    bad = cli(tmp_path, "fleet", "status", "--fleet", "sec")
    assert bad.returncode == 2
    assert "holds a password" in bad.stderr and SECRET not in bad.stderr + bad.stdout


def test_targets_from_a_registry_query_and_from_a_command(
    small: tuple[Path, list[Member]],
    pg_cluster: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _home, members = small
    registry = pg_cluster.create_database("fleet_registry")
    with psycopg.connect(registry, autocommit=True) as c:
        c.execute("CREATE TABLE tenants (name text, dsn text, labels jsonb)")
        for m in members:
            c.execute(
                "INSERT INTO tenants VALUES (%s, %s, jsonb_build_object('tier', %s::text))",
                (m.name, m.dsn, "gold" if m.n == 1 else "std"),
            )
    monkeypatch.setenv("FLEET_REGISTRY", registry)
    script = tmp_path / "list_targets.py"
    script.write_text(
        "import json, sys\n"
        + "".join(
            f"print(json.dumps({{'name': '{m.name}', 'dsn_env': '{m.env_var}', "
            f"'labels': {{'n': '{m.n}'}}}}))\n"
            for m in members
        )
    )
    monkeypatch.chdir(tmp_path)
    for m in members:
        monkeypatch.setenv(m.env_var, m.dsn)
    (tmp_path / "pgwarden.toml").write_text(
        '[fleet.reg]\nregistry = { dsn_env = "FLEET_REGISTRY", '
        'query = "SELECT name, dsn, labels FROM tenants" }\n'
        '[[fleet.reg.waves]]\nlabel = { tier = "gold" }\n[[fleet.reg.waves]]\npercent = 100\n'
        f'[fleet.cmd]\ncommand = ["{sys.executable}", "{script}"]\norder = "n"\n'
        '[fleet.broken]\ncommand = ["/bin/sh", "-c", "echo postgresql://u:pw@h/db; exit 3"]\n'
        '[fleet.nodsn]\nregistry = { dsn_env = "FLEET_REGISTRY", '
        'query = "SELECT name, labels FROM tenants" }\n'
    )
    from pgwarden.fleet.waves import plan_waves

    settings = load_settings()
    reg = fleet_config(settings, "reg")
    found = load_targets(reg)
    assert sorted(t.name for t in found) == [m.name for m in members]
    waves = plan_waves(reg, found)
    assert [t.name for t in waves[0].targets] == [members[0].name]  # the label canary
    cmd = fleet_config(settings, "cmd")
    assert [t.label("n") for t in load_targets(cmd)] == [str(m.n) for m in members]
    with pytest.raises(EnvironmentProblem) as info:
        load_targets(fleet_config(settings, "broken"))
    assert "status 3" in info.value.message and "pw" not in info.value.message
    with pytest.raises(UsageError) as missing:  # the column it lacks, named
        load_targets(fleet_config(settings, "nodsn"))
    assert "returns no column dsn (it returns name, labels)" in missing.value.message


def test_config_errors_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    one = '[fleet.a]\ntargets = [{ name = "x", dsn_env = "X" }]\n'
    cases = {
        "[fleet.a]\ntargets = []\nparralel = 2\n": "fleet.a.parallel",
        one + "[[fleet.a.waves]]\npercent = 150\n": "percent",
        one + '[[fleet.a.waves]]\ncount = 1\nlabel = { a = "b" }\n': "exactly one of",
        "[fleet.a]\nparallel = 2\n": "exactly one source",
        one + '[[fleet.a.gates]]\nsignal = "latency"\n': "signal",
        one + "[[fleet.a.waves]]\ncount = 1\nbake = 3\n": "waves[0].bake",
        '[fleet.a]\non_error = "ignore"\ntargets = [{ name = "x", dsn_env = "X" }]\n': "on_error",
    }
    for text, expected in cases.items():
        (tmp_path / "pgwarden.toml").write_text(text)
        with pytest.raises(ConfigError) as info:
            fleet_config(load_settings(), "a")
        shown = info.value.message + str(info.value.hint)
        assert expected in shown, (text, shown)
    (tmp_path / "pgwarden.toml").write_text(
        '[fleet.a]\ntargets = [{ name = "x", dsn_env = "X" }]\n'
    )
    with pytest.raises(ConfigError, match="no fleet 'b'"):
        fleet_config(load_settings(), "b")


def test_a_label_selects_a_slice_with_its_own_journal(small: tuple[Path, list[Member]]) -> None:
    """One CI job per label: only the slice is touched, and its journal is its own."""
    home, members = small
    _folder, plan = _plan(home, "slice", "ALTER TABLE accounts ADD COLUMN sl int;\n")
    settings = load_settings()
    cfg = fleet_config(settings, "small")
    result = run_rollout(
        plan,
        cfg,
        load_targets(cfg),
        RolloutOptions(env="staging", selector=(("n", "2"),)),
        settings=settings,
    )
    assert result.state == "done"
    assert [t.name for t in result.targets] == [members[1].name]
    assert Path(result.journal).name == "small--n=2.json"
    assert [has_column(m.dsn, "sl") for m in members] == [False, True, False, False, False]
    dry = cli(home, "fleet", "apply", "slice", "--fleet", "small", "--env", "staging",
              "--label", "n=4", "--dry-run")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "wave 1 canary: 1 target," in dry.stdout and members[3].name in dry.stdout
    assert "wave 2" not in dry.stdout  # the rest: no target of n=4 left, not listed


def test_a_target_stamped_protected_needs_the_fleet_confirmed(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configuration says staging is not protected, but this database's own stamp
    says it is (the stamp wins): without --yes (or the typed confirmation) the fleet's
    apply is refused there, as `pgwarden apply` would refuse it."""
    from pgwarden.apply.identity import stamp_database

    with psycopg.connect(db, autocommit=True) as c:
        stamp_database(c, "staging", protected=True, by="tests")
        c.execute("CREATE TABLE t (id int)")
    monkeypatch.setenv("GUARDED_DB", db)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pgwarden.toml").write_text(
        "[environments.staging]\nprotected = false\n[fleet.p]\n"
        f'journal_dir = "{tmp_path / "j"}"\ntargets = [{{ name = "a", dsn_env = "GUARDED_DB" }}]\n'
    )
    (tmp_path / "001.sql").write_text("ALTER TABLE t ADD COLUMN x int;\n")
    refused = cli(tmp_path, "fleet", "apply", "001.sql", "--fleet", "p", "--env", "staging")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "a (wave 1) refused" in refused.stdout and "protected" in refused.stdout
    done = cli(tmp_path, "fleet", "resume", "--fleet", "p", "--env", "staging", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr


def test_status_tells_a_killed_runner(db: str, tmp_path: Path) -> None:
    """A runner killed mid-rollout (SIGKILL: no cleanup at all) shows as interrupted,
    with the command that continues it; its target's run is still in progress there."""
    import os
    import signal
    import subprocess

    from pgwarden.apply.identity import stamp_database

    with psycopg.connect(db, autocommit=True) as c:
        stamp_database(c, "staging", protected=False, by="tests")
        c.execute("CREATE TABLE k (id int)")
    (tmp_path / "pgwarden.toml").write_text(
        "[environments.staging]\nprotected = false\n[fleet.k]\n"
        f'journal_dir = "{tmp_path / "j"}"\ntargets = [{{ name = "a", dsn_env = "KILLED_DB" }}]\n'
    )
    (tmp_path / "001.sql").write_text("ALTER TABLE k ADD COLUMN x int;\n")
    env = {**os.environ, "KILLED_DB": db}
    holder = psycopg.connect(db)
    holder.execute("LOCK TABLE k IN ACCESS EXCLUSIVE MODE")
    runner = subprocess.Popen(
        [sys.executable, "-m", "pgwarden", "fleet", "apply", "001.sql", "--fleet", "k",
         "--env", "staging"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        journal = tmp_path / "j" / "k.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (
                journal.exists()
                and b'"state": "running"' in journal.read_bytes().split(b'"targets"')[-1]
            ):
                break
            time.sleep(0.1)
        with psycopg.connect(db, autocommit=True) as c:  # and its run is recorded there
            while time.monotonic() < deadline:
                if c.execute("SELECT to_regclass('pgwarden.runs')").fetchone() != (None,):
                    row = c.execute("SELECT count(*) FROM pgwarden.runs").fetchone()
                    if row == (1,):
                        break
                time.sleep(0.1)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(10)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("KILLED_DB", db)
            shown = cli(tmp_path, "fleet", "status", "--fleet", "k")
    finally:
        holder.rollback()
        holder.close()
    assert "interrupted" in shown.stdout, shown.stdout + shown.stderr
    assert "`pgwarden fleet resume` continues it" in shown.stdout
    # the journal last said running; its runner is gone, so nobody is applying it now
    assert "a: wave 1 interrupted" in shown.stdout
    with psycopg.connect(db, autocommit=True) as c:  # the killed client's backend ends
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgwarden-apply' "
            "AND datname = current_database()"
        ).fetchone() != (0,):
            time.sleep(0.1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KILLED_DB", db)
        resumed = cli(tmp_path, "fleet", "resume", "--fleet", "k", "--env", "staging")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        after = cli(tmp_path, "fleet", "status", "--fleet", "k")
    # the new run continued the cut-off one, as `pgwarden resume` would: nothing is left
    # saying "interrupted: `pgwarden resume` continues it" on a target that has the change
    with psycopg.connect(db, autocommit=True) as c:
        runs = c.execute(
            "SELECT id, kind, resumes FROM pgwarden.runs ORDER BY started_at"
        ).fetchall()
    assert [(k, r) for _i, k, r in runs] == [("apply", None), ("resume", runs[0][0])], (
        resumed.stdout + resumed.stderr + str(runs)
    )
    assert "a: wave 1 done; change applied" in after.stdout, after.stdout
    assert "interrupted" not in after.stdout, after.stdout
