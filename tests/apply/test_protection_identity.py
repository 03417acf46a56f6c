"""A database's identity is never silently lost or cloned; unusable targets are named."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.errors import DatabaseError, InputError, Refused
from pgwarden.pg import cluster as pgc
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, Settings
from tests.apply.conftest import plan_of, scalar, write_sql

SETTINGS = Settings(
    environments={
        "production": Environment("production", protected=True),
        "staging": Environment("staging"),
    }
)
ACCT = "CREATE TABLE acct (id int PRIMARY KEY, balance int);\nINSERT INTO acct VALUES (1, 0);\n"
BONUS = "UPDATE acct SET balance = balance + 100 WHERE id = 1;\n"


def _production(dsn: str, tmp_path: Path) -> Path:
    """`acct` created and a bonus paid by applies to production; the migrations folder."""
    mig = tmp_path / "migrations"
    mig.mkdir(parents=True, exist_ok=True)
    write_sql(mig, ACCT, "001_acct.sql")
    write_sql(mig, BONUS, "002_bonus.sql")
    done = apply_plan(
        plan_of(mig),
        database_url=dsn,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", yes=True),
    )
    assert done.state == "done"
    return mig


def test_a_lost_stamp_is_never_silently_replaced(db: str, tmp_path: Path) -> None:
    mig = _production(db, tmp_path)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("DROP SCHEMA pgwarden CASCADE")
    with pytest.raises(Refused, match=r"(?s)holds 1 table with data but no .*--restamp"):
        apply_plan(
            plan_of(mig), database_url=db, settings=SETTINGS, policy=GuardPolicy(env="staging")
        )
    assert scalar(db, "SELECT balance FROM acct") == 100
    assert scalar(db, "SELECT to_regclass('pgwarden.target')") is None
    # Only the history row's loss is lost: a deleted stamp row with history is refused too.
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("DROP TABLE acct")
    mig2 = _production(db, tmp_path / "again")
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("DELETE FROM pgwarden.target")
        c.execute("DROP TABLE acct")  # no tables left, but the history is there
    with pytest.raises(Refused, match="holds pgwarden history but no pgwarden stamp"):
        apply_plan(
            plan_of(mig2), database_url=db, settings=SETTINGS, policy=GuardPolicy(env="staging")
        )
    # --restamp is the one way to adopt it; the history decides what runs.
    adopted = apply_plan(
        plan_of(mig2),
        database_url=db,
        settings=SETTINGS,
        policy=GuardPolicy(env="staging", restamp=True),
    )
    assert adopted.state == "done" and adopted.outcome is not None
    assert adopted.outcome.done == ()  # everything was applied before
    assert scalar(db, "SELECT environment FROM pgwarden.target") == "staging"


def test_empty_tables_do_not_block_the_first_apply_tables_with_data_do(
    db: str, tmp_path: Path
) -> None:
    """A migration tool creates its empty version table before the first migration."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE alembic_version (version_num text PRIMARY KEY)")
    path = write_sql(tmp_path, ACCT)
    assert apply_plan(
        plan_of(path), database_url=db, settings=SETTINGS, policy=GuardPolicy(env="staging")
    ).ok
    other = tmp_path / "other"
    other.mkdir()
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("DROP SCHEMA pgwarden CASCADE")
    with pytest.raises(Refused, match="holds 2 tables with data"):
        apply_plan(
            plan_of(write_sql(other, BONUS)),
            database_url=db,
            settings=SETTINGS,
            policy=GuardPolicy(env="staging"),
        )
    assert scalar(db, "SELECT balance FROM acct") == 0


def test_a_dropped_stamp_table_names_the_cause(db: str, tmp_path: Path) -> None:
    mig = _production(db, tmp_path)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("DROP TABLE pgwarden.target")
    with pytest.raises(DatabaseError, match=r"pgwarden\.target .* is missing") as err:
        apply_plan(
            plan_of(mig),
            database_url=db,
            settings=SETTINGS,
            policy=GuardPolicy(env="production", yes=True),
        )
    assert err.value.exit_code == 2 and "--restamp" in str(err.value.hint)
    again = apply_plan(
        plan_of(mig),
        database_url=db,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", yes=True, restamp=True),
    )
    assert again.state == "done" and again.outcome is not None and again.outcome.done == ()
    assert scalar(db, "SELECT environment FROM pgwarden.target") == "production"


def test_a_read_only_database_names_the_cause(db: str, tmp_path: Path) -> None:
    name = db.split("dbname=")[1].split()[0]
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    path = write_sql(tmp_path, ACCT)
    with pytest.raises(DatabaseError, match="read-only") as err:
        apply_plan(
            plan_of(path), database_url=db, settings=SETTINGS, policy=GuardPolicy(env="staging")
        )
    assert err.value.exit_code == 2 and "default_transaction_read_only" in str(err.value.hint)
    preview = apply_plan(
        plan_of(path),
        database_url=db,
        settings=SETTINGS,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(dry_run=True),
    )
    assert preview.state == "dry-run"


def test_copy_from_stdin_is_refused_before_anything_runs(db: str, tmp_path: Path) -> None:
    path = write_sql(tmp_path, ACCT + "COPY acct FROM STDIN;\n", "003_load.sql")
    with pytest.raises(InputError, match=r"003_load\.sql:3:1: COPY \.\.\. FROM STDIN") as err:
        apply_plan(
            plan_of(path), database_url=db, settings=SETTINGS, policy=GuardPolicy(env="staging")
        )
    assert err.value.exit_code == 2 and "\\copy" in str(err.value.hint)
    assert scalar(db, "SELECT to_regclass('acct')") is None
    assert scalar(db, "SELECT to_regclass('pgwarden.runs')") is None


def _physical_copy(src: Cluster, *, standby: bool = False) -> Cluster:
    """A pg_basebackup of `src` started as a server of its own (or as a hot standby)."""
    run_as = pgc._run_as()
    as_user: dict[str, object] = (
        {"user": run_as[0], "group": run_as[1], "extra_groups": []} if run_as else {}
    )
    root = Path(tempfile.mkdtemp(prefix=pgc._PREFIX))
    (root / pgc._OWNER_FILE).write_text(str(os.getpid()))
    if run_as is not None:
        os.chown(root, *run_as)
    tool = str(src.installation.tool("pg_basebackup"))
    argv = [tool, "-D", str(root / "data"), "-h", str(src.root), "-p", str(src.port)]
    argv += ["-U", "postgres", "-X", "stream", "-c", "fast", *(["-R"] if standby else [])]
    subprocess.run(argv, check=True, capture_output=True, timeout=120, cwd=root, **as_user)  # type: ignore[call-overload]
    args = [a.replace(str(src.root), str(root)) for a in src._args]
    proc = pgc._spawn(args, root, run_as)
    copy = Cluster(src.installation, root, src.port, proc, False, args, run_as)
    with pgc._live_lock:
        pgc._live.add(copy)
    try:
        copy._wait_ready(60)
    except BaseException:
        copy.stop()
        raise
    return copy


@pytest.fixture
def original() -> Iterator[Cluster]:
    with Cluster.start() as cluster:
        yield cluster


def test_a_pg_basebackup_copy_is_told_apart_and_restamp_adopts_it(
    original: Cluster, tmp_path: Path
) -> None:
    dsn = original.create_database("shop")
    mig = _production(dsn, tmp_path)
    write_sql(mig, "UPDATE acct SET balance = balance + 1 WHERE id = 1;", "003_more.sql")
    with _physical_copy(original) as copy:
        copied = copy.dsn("shop")
        assert scalar(copied, "SELECT environment FROM pgwarden.target") == "production"
        with pytest.raises(Refused, match="physical copy") as err:
            apply_plan(
                plan_of(mig),
                database_url=copied,
                settings=SETTINGS,
                policy=GuardPolicy(env="production", yes=True),
            )
        assert "data directory" in str(err.value) and "--restamp" in str(err.value.hint)
        assert scalar(copied, "SELECT balance FROM acct") == 100
        with pytest.raises(Refused, match="restamping a database stamped as protected"):
            apply_plan(
                plan_of(mig),
                database_url=copied,
                settings=SETTINGS,
                policy=GuardPolicy(env="staging", restamp=True),
            )
        adopted = apply_plan(
            plan_of(mig),
            database_url=copied,
            settings=SETTINGS,
            policy=GuardPolicy(env="staging", restamp=True, yes=True),
        )
        assert adopted.outcome is not None and adopted.outcome.done == (3,)
        assert scalar(copied, "SELECT balance FROM acct") == 101
        assert scalar(copied, "SELECT protected FROM pgwarden.target") is False  # staging's
    # The original is still production and still itself.
    result = apply_plan(
        plan_of(mig),
        database_url=dsn,
        settings=SETTINGS,
        policy=GuardPolicy(env="production", yes=True),
    )
    assert result.outcome is not None and result.outcome.done == (3,)


def test_a_hot_standby_names_the_cause(original: Cluster, tmp_path: Path) -> None:
    dsn = original.create_database("shop")
    mig = _production(dsn, tmp_path)
    with _physical_copy(original, standby=True) as standby:
        with pytest.raises(DatabaseError, match="hot standby") as err:
            apply_plan(
                plan_of(mig),
                database_url=standby.dsn("shop"),
                settings=SETTINGS,
                policy=GuardPolicy(env="production", yes=True),
            )
        assert err.value.exit_code == 2 and "primary" in str(err.value.hint)
