"""History keys name the migration (file name, content, place), not its position in a plan."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import GuardPolicy, apply_plan, resume_run
from pgwarden.apply.journal import checksum
from pgwarden.settings import Environment, Settings
from tests.apply.conftest import plan_of, scalar, write_sql

STAGING = Settings(environments={"staging": Environment("staging")})
BONUS = "UPDATE acct SET balance = balance + 100 WHERE id = 1;"


@pytest.fixture
def acct(db: str, tmp_path: Path) -> Path:
    """`acct` with one row (balance 1), created by an applied migration; the folder."""
    mig = tmp_path / "migrations"
    mig.mkdir()
    write_sql(mig, "CREATE TABLE acct (id int PRIMARY KEY, balance int);", "000_init.sql")
    write_sql(mig, "INSERT INTO acct VALUES (1, 1);", "000_row.sql")
    first = apply_plan(
        plan_of(mig), database_url=db, settings=STAGING, policy=GuardPolicy(env="staging")
    )
    assert first.state == "done"
    return mig


def _apply(db: str, path: Path) -> tuple[int, ...]:
    result = apply_plan(
        plan_of(path), database_url=db, settings=STAGING, policy=GuardPolicy(env="staging")
    )
    assert result.state == "done", result.outcome
    assert result.outcome is not None
    return result.outcome.done


def _balance(db: str) -> object:
    return scalar(db, "SELECT balance FROM acct")


def test_a_copy_of_an_applied_file_is_a_new_migration(db: str, acct: Path) -> None:
    write_sql(acct, BONUS, "001_bonus.sql")
    _apply(db, acct)
    assert _balance(db) == 101
    shutil.copy(acct / "001_bonus.sql", acct / "002_bonus_again.sql")
    assert _apply(db, acct / "002_bonus_again.sql") == (0,)  # the new migration runs
    assert _balance(db) == 201
    assert _apply(db, acct) == ()  # and neither runs again, whatever the plan around them
    assert _balance(db) == 201


def test_a_file_inserted_earlier_in_sort_order_shifts_nothing(db: str, acct: Path) -> None:
    double = "UPDATE acct SET balance = balance * 2 WHERE id = 1;"
    write_sql(acct, double, "010_double.sql")
    _apply(db, acct)
    assert _balance(db) == 2
    write_sql(acct, double + "\nUPDATE acct SET balance = balance + 1 WHERE id = 1;", "005.sql")
    _apply(db, acct)  # 005 runs both statements, 010 stays applied: 2 * 2 + 1
    assert _balance(db) == 5


def test_the_same_file_from_another_folder_is_the_same_migration(
    db: str, acct: Path, tmp_path: Path
) -> None:
    write_sql(acct, BONUS, "001_bonus.sql")
    _apply(db, acct / "001_bonus.sql")
    elsewhere = tmp_path / "checkout" / "db"
    elsewhere.mkdir(parents=True)
    shutil.copy(acct / "001_bonus.sql", elsewhere / "001_bonus.sql")
    assert _apply(db, elsewhere / "001_bonus.sql") == ()
    assert _balance(db) == 101


def _legacy_key(sql: str, occurrence: int) -> str:
    """The key pgwarden wrote before this scheme: statement checksum + occurrence in the plan."""
    return hashlib.sha256(f"{checksum(sql)}#{occurrence}".encode()).hexdigest()[:32]


def _to_legacy_keys(db: str) -> None:
    """Rewrite every history row and every stored run plan as the previous version wrote them."""
    with psycopg.connect(db, autocommit=True) as c:
        occurrences: dict[str, int] = {}
        legacy: dict[str, str] = {}
        for key, sql in c.execute("SELECT key, sql FROM pgwarden.applied ORDER BY applied_at, key"):
            n = occurrences.get(checksum(sql), 0)
            occurrences[checksum(sql)] = n + 1
            legacy[key] = _legacy_key(sql, n)
        for new, old in legacy.items():
            c.execute("UPDATE pgwarden.applied SET key = %s WHERE key = %s", (old, new))
            c.execute("UPDATE pgwarden.steps SET key = %s WHERE key = %s", (old, new))
        for run_id, plan in c.execute("SELECT id, plan FROM pgwarden.runs").fetchall():
            for record in plan:
                record["key"] = legacy.get(record["key"], _legacy_key(record["sql"], 0))
            c.execute(
                "UPDATE pgwarden.runs SET plan = %s WHERE id = %s",
                (psycopg.types.json.Jsonb(plan), run_id),
            )


def test_history_written_with_the_old_keys_still_counts_as_applied(
    db: str, acct: Path, tmp_path: Path
) -> None:
    write_sql(acct, BONUS, "001_bonus.sql")
    _apply(db, acct)
    _to_legacy_keys(db)
    assert _apply(db, acct) == ()  # recognised by file name, line and statement
    elsewhere = tmp_path / "other"
    shutil.copytree(acct, elsewhere)
    assert _apply(db, elsewhere) == ()
    shutil.copy(acct / "001_bonus.sql", acct / "002_bonus_again.sql")
    assert _apply(db, acct) == (3,)
    assert _balance(db) == 201


def test_resume_of_a_run_recorded_with_the_old_keys(db: str, acct: Path, tmp_path: Path) -> None:
    write_sql(acct, BONUS + "\nSELECT 1 / 0;", "001_bonus.sql")
    failed = apply_plan(
        plan_of(acct / "001_bonus.sql", file_transaction=False),
        database_url=db,
        settings=STAGING,
        policy=GuardPolicy(env="staging"),
    )
    assert failed.state == "failed" and _balance(db) == 101
    _to_legacy_keys(db)
    with psycopg.connect(db, autocommit=True) as c:  # fix the failing statement in the record
        c.execute(
            "UPDATE pgwarden.runs SET plan = jsonb_set(plan, '{1,sql}', '\"SELECT 1\"') "
            "WHERE state = 'failed'"
        )
    resumed = resume_run(database_url=db, settings=STAGING, policy=GuardPolicy(env="staging"))
    assert resumed.state == "done"
    assert resumed.outcome is not None and resumed.outcome.done == (1,)
    assert _balance(db) == 101
