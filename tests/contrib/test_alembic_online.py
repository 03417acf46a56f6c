"""Alembic revisions that read data run online inside the guarded executor (#15.2), and
what `--range A:B` takes (#15.3).

`pgwarden apply --alembic` runs a revision that cannot render offline through
Alembic (the project's env.py, online) on the executor's connection, inside the
transaction the executor opened for it: under its lock_timeout, retried after a
lock timeout, cancelled by the watchdog or Ctrl-C, recorded in the journal in
the same transaction. What cannot stay in that transaction (autocommit_block) is
refused, naming the revision, and rolled back.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")

from pgwarden.cli.analyse import lint as lint_cmd
from pgwarden.cli.apply import apply as apply_cmd
from pgwarden.pg.cluster import Cluster
from pgwarden.sources.alembic import _sqlalchemy_url
from tests.fixtures.pg import new_database

PROJECT = Path(__file__).parent / "alembic_reads_project"

AUTOCOMMIT_REVISION = '''"""count the metrics, then index them CONCURRENTLY (reads data, autocommit)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    n = op.get_bind().execute(sa.text("SELECT count(*) FROM metrics")).scalar()
    if n:
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY metrics_value_idx ON metrics (value)")


def downgrade() -> None:
    op.drop_index("metrics_value_idx", table_name="metrics")
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(copy)
    return copy


def _alembic(project: Path, db: str, *args: str) -> None:
    """Plain `alembic` with the stock env.py path."""
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={_sqlalchemy_url(db)}", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PGWARDEN_GUARDED": "0"},
        cwd=project,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


_copies = itertools.count()


@pytest.fixture(scope="module")
def at_0001(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database at 0001 with duplicate keys for 0002 to delete (it reads them first),
    made once with plain Alembic: the template of each test's database."""
    copy = tmp_path_factory.mktemp("online") / "project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    db = new_database(pg_cluster)
    _alembic(copy, db, "upgrade", "0001")
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(
            "INSERT INTO metrics (key, value) "
            "SELECT 'k' || (i % 50), i FROM generate_series(1, 500) i"
        )
    return str(psycopg.conninfo.conninfo_to_dict(db)["dbname"])


@pytest.fixture
def db(pg_cluster: Cluster, at_0001: str) -> str:
    """A fresh database at 0001 with rows (a copy of the template)."""
    return pg_cluster.create_database(f"online_{next(_copies)}", template=at_0001)


def _version(db: str) -> list[str]:
    with psycopg.connect(db, autocommit=True) as c:
        return [str(r[0]) for r in c.execute("SELECT version_num FROM alembic_version")]


def _schema(db: str) -> dict[str, list[tuple[object, ...]]]:
    """Columns, constraints and indexes of the public schema (pgwarden's own left out)."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = 'public' ORDER BY 1, 2",
        "metrics": "SELECT key, value FROM metrics ORDER BY key, value",
        "version": "SELECT version_num FROM alembic_version",
    }
    with psycopg.connect(db, autocommit=True) as c:
        return {k: c.execute(q).fetchall() for k, q in queries.items()}


def _apply(db: str, tmp_path: Path, *extra: str) -> tuple[int, str]:
    args = ["--alembic", "--database-url", db, "--env", "dev", "--restamp", *extra]
    r = CliRunner().invoke(apply_cmd, [*args, "--journal-file", str(tmp_path / "j.jsonl")])
    return r.exit_code, r.output


def _events(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "j.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_apply_runs_the_revisions_that_read_data_online_in_order(
    pg_cluster: Cluster, at_0001: str, db: str, project: Path, tmp_path: Path
) -> None:
    guarded, plain = db, pg_cluster.create_database(f"online_{next(_copies)}", template=at_0001)
    code, output = _apply(guarded, tmp_path)
    assert code == 0, output  # refused before: "revision 0002 cannot be rendered offline"
    assert "revision 0002 cannot be rendered offline" in output
    assert "it runs online through Alembic" in output
    _alembic(project, plain, "upgrade", "head")
    assert _schema(guarded) == _schema(plain)
    assert _version(guarded) == ["0005"]
    assert len(_schema(guarded)["metrics"]) == 50  # 0002 deleted the duplicates
    # the online revisions are steps of the run, each done and recorded in its transaction
    done = [e for e in _events(tmp_path) if e.get("event") == "step_done"]
    assert len(done) == 4  # 0002 (online), 0003, 0004 (online), 0005: one transaction each
    with psycopg.connect(guarded, autocommit=True) as c:
        sqls = [str(r[0]) for r in c.execute("SELECT sql FROM pgwarden.applied ORDER BY 1")]
    assert sum("alembic revision 0002" in s for s in sqls) == 1
    assert sum("alembic revision 0004" in s for s in sqls) == 1


def test_env_py_with_the_pgwarden_hook_runs_its_plain_online_path_for_apply(
    db: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGWARDEN_GUARDED", "1")  # env.py calls pgwarden.contrib.alembic.configure
    code, output = _apply(db, tmp_path)
    # before: the hook started a guarded upgrade of its own inside the run, which refused
    # 0002 (OfflineRenderError) and failed the step
    assert code == 0, output
    assert _version(db) == ["0005"]
    assert len(_schema(db)["metrics"]) == 50


def test_env_py_hook_runs_the_revisions_that_read_data_online(db: str, project: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={_sqlalchemy_url(db)}", "upgrade", "head"],
        capture_output=True,
        text=True,
        env={**os.environ, "PGWARDEN_GUARDED": "1", "PGWARDEN_RESTAMP": "1"},
        cwd=project,
        timeout=120,
    )
    # refused before: "revision 0002 cannot be rendered offline" (OfflineRenderError)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _version(db) == ["0005"]
    assert len(_schema(db)["metrics"]) == 50  # 0002 ran, online
    with psycopg.connect(db, autocommit=True) as c:
        sqls = [str(r[0]) for r in c.execute("SELECT sql FROM pgwarden.applied")]
    assert sum("alembic revision 0004" in s for s in sqls) == 1  # a guarded, recorded step


def test_online_revision_waits_under_lock_timeout_and_is_retried(
    db: str, project: Path, tmp_path: Path
) -> None:
    holder = psycopg.connect(db)
    holder.execute("LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(2.0, holder.rollback)
    release.start()
    try:
        code, output = _apply(db, tmp_path, "--lock-timeout-ms", "200")
    finally:
        release.join()
        holder.close()
    assert code == 0, output
    assert _version(db) == ["0005"]
    retries = [e for e in _events(tmp_path) if e.get("event") == "retry"]
    assert retries and all(e["reason"] == "lock_timeout" for e in retries)
    started = [e for e in _events(tmp_path) if e.get("event") == "step_started"]
    first = started[0]
    assert "alembic revision 0002" in str(first["sql"])  # the online revision waited


def test_ctrl_c_cancels_an_online_revision_while_it_runs(db: str, project: Path) -> None:
    from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
    from pgwarden.commands import load_plan
    from pgwarden.events import Event, StepStarted
    from pgwarden.settings import Environment, Settings
    from pgwarden.sources.alembic import read_alembic_sources

    sources = read_alembic_sources("alembic.ini", database_url=db, strict=True)
    assert [o.revision for o in sources.online] == ["0002", "0004"]
    plan = load_plan([], sources=sources)
    cancel = threading.Event()

    def observer(event: Event) -> None:
        if isinstance(event, StepStarted):  # 0002 is about to wait for the held lock
            threading.Timer(1.0, cancel.set).start()  # what Ctrl-C does

    with psycopg.connect(db) as holder:
        holder.execute("LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE")
        result = apply_plan(
            plan,
            database_url=db,
            policy=GuardPolicy(env="dev", restamp=True),
            # waits far longer than the cancel takes: only the watchdog's cancel ends it
            options=RunOptions(limits=Limits(lock_timeout_ms=60_000), runners=sources.runners),
            settings=Settings(environments={"dev": Environment("dev", False)}),
            observer=observer,
            cancel=cancel,
        )
        holder.rollback()
    assert result.state == "cancelled", result
    assert result.outcome is not None and "cancelled while running" in str(result.outcome.message)
    assert _version(db) == ["0001"]
    assert len(_schema(db)["metrics"]) == 500  # 0002 rolled back whole


def test_lost_connection_during_an_online_revision_reconnects_and_runs_it(
    db: str, project: Path
) -> None:
    from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
    from pgwarden.commands import load_plan
    from pgwarden.events import Event, Reconnected, StepStarted
    from pgwarden.settings import Environment, Settings
    from pgwarden.sources.alembic import read_alembic_sources

    sources = read_alembic_sources("alembic.ini", database_url=db, strict=True)
    plan = load_plan([], sources=sources)
    holder = psycopg.connect(db)
    holder.execute("LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE")
    seen: list[Event] = []
    timers: list[threading.Timer] = []

    def cut() -> None:  # the server drops the run's session while 0002 waits
        with psycopg.connect(db, autocommit=True) as c:
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'pgwarden-apply' AND datname = current_database()"
            )
        holder.rollback()

    def observer(event: Event) -> None:
        seen.append(event)
        if isinstance(event, StepStarted) and not timers:  # once, at 0002
            timers.append(threading.Timer(1.0, cut))
            timers[0].start()

    try:
        result = apply_plan(
            plan,
            database_url=db,
            policy=GuardPolicy(env="dev", restamp=True),
            options=RunOptions(
                limits=Limits(lock_timeout_ms=60_000, reconnect_s=20), runners=sources.runners
            ),
            settings=Settings(environments={"dev": Environment("dev", False)}),
            observer=observer,
        )
    finally:
        for t in timers:
            t.join()
        holder.close()
    assert any(isinstance(e, Reconnected) for e in seen)
    # before: the resumed run ran 0002's placeholder as SQL ("runs online through Alembic,
    # not as SQL") and failed
    assert result.state == "done", result.outcome
    assert _version(db) == ["0005"]
    assert len(_schema(db)["metrics"]) == 50


def test_autocommit_in_an_online_revision_is_refused_naming_it(
    db: str, project: Path, tmp_path: Path
) -> None:
    (project / "versions" / "0006_count_then_index.py").write_text(AUTOCOMMIT_REVISION)
    code, output = _apply(db, tmp_path)
    assert code == 3, output
    text = " ".join(output.split())
    assert "revision 0006 (versions/0006_count_then_index.py)" in text
    assert "cannot run in pgwarden's guarded transaction" in text
    assert "autocommit" in text
    assert _version(db) == ["0005"]  # the revisions before it committed; 0006 rolled back
    assert not any(i[1] == "metrics_value_idx" for i in _schema(db)["indexes"])


def test_range_start_is_excluded_as_alembic_sql_does_and_said(
    db: str, project: Path, tmp_path: Path
) -> None:
    args = ["--alembic", "--range", "0003:head", "--fail-on", "never"]
    r = CliRunner().invoke(lint_cmd, args)
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "--range 0003:head starts after 0003, as `alembic upgrade 0003:head --sql` does" in text
    assert "revision 0003 (versions/0003_metrics_key_index.py) is not taken" in text
    assert "--range 0002:head includes it" in text
    assert "PW101" not in r.output  # 0003's CREATE INDEX is not in the range
    r = CliRunner().invoke(lint_cmd, [*args, "--database-url", db])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "2 revision(s) before the range never ran (0002, 0003); they are not linted" in text
    # apply: a database that has not reached the range's start is refused, nothing runs
    code, output = _apply(db, tmp_path, "--range", "0003:head")
    assert code == 1, output
    text = " ".join(output.split())
    assert "2 revision(s) before the range never ran (0002, 0003)" in text
    assert _version(db) == ["0001"]
    code, output = _apply(db, tmp_path, "--range", "0001:0003")
    assert code == 0, output
    assert _version(db) == ["0003"]


@pytest.mark.parametrize("on", ["engine", "connection"])
def test_an_isolation_level_env_py_asks_for_is_refused_naming_it(
    db: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on: str
) -> None:
    """env.py asks for SERIALIZABLE (create_engine or execution_options): the executor's
    transaction began at READ COMMITTED and cannot change, so the revision is refused, named,
    and rolled back (was: run at READ COMMITTED without a word)."""
    monkeypatch.setenv("SAMPLE_ISOLATION", "SERIALIZABLE")
    monkeypatch.setenv("SAMPLE_ISOLATION_ON", on)
    code, output = _apply(db, tmp_path)
    assert code == 3, output
    text = " ".join(output.split())
    assert "revision 0002 (versions/0002_dedupe_metric_keys.py)" in text
    assert "env.py asks for isolation level SERIALIZABLE" in text
    assert "which began at READ COMMITTED" in text
    assert _version(db) == ["0001"]  # 0002 rolled back: nothing of it applied
    assert len(_schema(db)["metrics"]) == 500


def test_the_isolation_level_of_the_transaction_is_accepted(
    db: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_ISOLATION", "READ COMMITTED")
    code, output = _apply(db, tmp_path)
    assert code == 0, output
    assert _version(db) == ["0005"]
    assert len(_schema(db)["metrics"]) == 50


def _stopped_at_0002(db: str, tmp_path: Path) -> None:
    """`apply --alembic` gives up on 0002 (its lock held past the lock budget): exit 3, and
    the hint says `pgwarden resume`."""
    with psycopg.connect(db) as holder:
        holder.execute("LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE")
        code, output = _apply(db, tmp_path, "--lock-timeout-ms", "100", "--lock-budget-s", "0.5")
        holder.rollback()
    assert code == 3, output
    assert "pgwarden resume" in output
    assert _version(db) == ["0001"]


def _resume(db: str, tmp_path: Path) -> tuple[int, str]:
    from pgwarden.cli.apply import resume as resume_cmd

    args = ["--database-url", db, "--journal-file", str(tmp_path / "j.jsonl")]
    r = CliRunner().invoke(resume_cmd, args)
    return r.exit_code, r.output


def test_resume_runs_an_online_revision_through_alembic(
    db: str, project: Path, tmp_path: Path
) -> None:
    """The run stopped at 0002 (reads data, runs online): `pgwarden resume`, as the hint says,
    runs it online through Alembic and the rest after it (was: it ran 0002's placeholder as
    SQL and failed with "runs online through Alembic, not as SQL")."""
    _stopped_at_0002(db, tmp_path)
    code, output = _resume(db, tmp_path)
    assert code == 0, output
    assert _version(db) == ["0005"]
    assert len(_schema(db)["metrics"]) == 50  # 0002 ran, online
    with psycopg.connect(db, autocommit=True) as c:
        kinds = [str(r[0]) for r in c.execute("SELECT kind FROM pgwarden.runs ORDER BY 1")]
    assert kinds == ["apply", "resume"]


def test_resume_elsewhere_says_where_to_run_it(
    db: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stopped_at_0002(db, tmp_path)
    monkeypatch.chdir(tmp_path)  # not the project: versions/0002_... is not here
    code, output = _resume(db, tmp_path)
    assert code == 3, output
    text = " ".join(output.split())
    assert "revision 0002 (versions/0002_dedupe_metric_keys.py) runs online through Alembic" in text
    assert "run `pgwarden resume` where `pgwarden apply --alembic` ran" in text
    assert _version(db) == ["0001"]
