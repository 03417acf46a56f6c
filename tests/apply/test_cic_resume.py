"""An interrupted CREATE INDEX CONCURRENTLY is recognised by its definition: never a second copy."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
from pgwarden.apply.indexes import definition, existing_builds
from tests.apply.conftest import (
    CIC_WAITING,
    INVALID,
    Recorder,
    cli,
    plan_of,
    scalar,
    wait_until,
    write_sql,
)

UNNAMED = "CREATE INDEX CONCURRENTLY ON invoices (created_at);"
# An open snapshot makes CREATE INDEX CONCURRENTLY wait after it created its INVALID index.
SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM settings"
COPIES = (
    "SELECT count(*) FROM pg_index WHERE indrelid = 'invoices'::regclass "
    "AND pg_get_indexdef(indexrelid) LIKE '% USING btree (created_at)'"
)
VALID_COPIES = COPIES + " AND indisvalid"
APPLY_GONE = (
    "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgwarden-apply')"
)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(*args), capture_output=True, text=True, timeout=300, cwd=cwd, check=False
    )


@pytest.mark.parametrize(
    "statement",
    [UNNAMED, "CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);"],
)
def test_sigkill_during_a_build_then_resume_leaves_one_valid_index(
    shop: str, holder, tmp_path: Path, statement: str
) -> None:
    snap = holder(SNAPSHOT)
    journal = str(tmp_path / "journal.jsonl")
    proc = subprocess.Popen(
        cli(
            "apply",
            str(write_sql(tmp_path, statement)),
            "--database-url",
            shop,
            "--env",
            "staging",
            "--lock-timeout-ms",
            "120000",
            "--journal-file",
            journal,
            "--no-file-transaction",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        wait_until(shop, CIC_WAITING)
        proc.kill()  # SIGKILL: no cleanup; the server keeps building for the dead client
        proc.wait(60)
    finally:
        proc.kill()
    assert scalar(shop, COPIES) == 1 and scalar(shop, VALID_COPIES) == 0

    # while the orphaned backend still builds, resume refuses; nothing is built twice
    early = _run("resume", "--database-url", shop, "--journal-file", journal, cwd=tmp_path)
    assert early.returncode == 1, early.stderr
    assert "Traceback" not in early.stderr
    assert scalar(shop, COPIES) == 1

    snap.commit()
    wait_until(shop, APPLY_GONE)  # the build finished, then the backend found its client gone
    assert scalar(shop, VALID_COPIES) == 1

    done = _run("resume", "--database-url", shop, "--journal-file", journal, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "already valid" in done.stdout + done.stderr
    assert scalar(shop, COPIES) == 1 and scalar(shop, VALID_COPIES) == 1
    assert scalar(shop, INVALID) == 0


def test_a_dead_copy_under_another_generated_name_is_dropped_and_rebuilt(
    shop: str, holder, tmp_path: Path
) -> None:
    """invoices_created_at_idx is taken by another index, so the dead build was ..._idx1."""
    with psycopg.connect(shop, autocommit=True) as c:
        c.execute("CREATE INDEX invoices_created_at_idx ON invoices (created_at, id)")
        snap = holder(SNAPSHOT)
        c.execute("SET statement_timeout = '1s'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute(UNNAMED.encode())
        snap.rollback()
    assert scalar(
        shop,
        "SELECT NOT indisvalid FROM pg_index "
        "WHERE indexrelid = 'invoices_created_at_idx1'::regclass",
    )

    path = write_sql(tmp_path, UNNAMED)
    result = apply_plan(
        plan_of(path, file_transaction=False), database_url=shop, policy=GuardPolicy(env="staging")
    )
    assert result.state == "done"
    assert scalar(shop, INVALID) == 0
    assert scalar(shop, COPIES) == 1 and scalar(shop, VALID_COPIES) == 1
    assert scalar(shop, "SELECT to_regclass('invoices_created_at_idx') IS NOT NULL")


def test_a_build_of_the_same_index_by_another_session_is_waited_for(
    shop: str, holder, tmp_path: Path, recorder: Recorder
) -> None:
    snap = holder(SNAPSHOT)
    other = psycopg.connect(shop, autocommit=True, application_name="someone-else")
    errors: list[BaseException] = []

    def build() -> None:
        try:
            other.execute(UNNAMED.encode())
        except BaseException as exc:  # reported below
            errors.append(exc)

    builder = threading.Thread(target=build)
    builder.start()
    try:
        wait_until(
            shop,
            "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p "
            "JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'someone-else' "
            "AND p.index_relid <> 0)",
        )
        results: list[object] = []
        path = write_sql(tmp_path, UNNAMED)
        t = threading.Thread(
            target=lambda: results.append(
                apply_plan(
                    plan_of(path, file_transaction=False),
                    database_url=shop,
                    observer=recorder,
                    policy=GuardPolicy(env="staging"),
                    options=RunOptions(limits=Limits(lock_timeout_ms=2000)),
                )
            )
        )
        t.start()
        wait = recorder.wait_for("lock_wait")
        assert wait.data["phase"] == "building"
        assert wait.data["blockers"][0]["application"] == "someone-else"
        snap.commit()
        t.join(120)
        builder.join(120)
    finally:
        snap.rollback() if not snap.closed else None
        other.close()
    assert not errors
    result = results[0]
    assert getattr(result, "state", None) == "done"
    # Waited for, never built beside it; but that index is someone else's (no attempt
    # of this step was journalled before it), so the statement then runs as written.
    assert recorder.kinds().index("lock_wait") < recorder.kinds().index("step_started")
    assert scalar(shop, COPIES) == 2 and scalar(shop, VALID_COPIES) == 2


def test_the_definition_is_compared_as_the_server_spells_it(conn, tmp_path: Path) -> None:
    """Quoting, case, casts, the default method and a predicate's parentheses do not matter;
    a different predicate, column order or uniqueness does."""
    conn.execute('CREATE SCHEMA "Odd"')
    conn.execute('CREATE TABLE "Odd"."My T" (id int PRIMARY KEY, email text, active bool)')
    conn.execute('CREATE INDEX kept ON "Odd"."My T" (lower(email), id) WHERE active')

    def found(text: str) -> list[str]:
        step = plan_of(write_sql(tmp_path, text), file_transaction=False).steps[0]
        return [e.name for e in existing_builds(conn, step, exclude_pids=(), lock_timeout_ms=500)]

    same = 'create index concurrently on "Odd" . "My T" using BTREE (LOWER(email::text), id)'
    assert found(same + " where (active);") == ["kept"]
    assert found('CREATE INDEX CONCURRENTLY ON "Odd"."My T" (lower(email), id) WHERE active;') == [
        "kept"
    ]
    assert found('CREATE INDEX CONCURRENTLY ON "Odd"."My T" (lower(email), id);') == []
    assert found('CREATE INDEX CONCURRENTLY ON "Odd"."My T" (id, lower(email)) WHERE active;') == []
    assert (
        found('CREATE UNIQUE INDEX CONCURRENTLY ON "Odd"."My T" (lower(email), id) WHERE active;')
        == []
    )
    # a named build is its name: a valid index of another definition is not this step's
    assert found('CREATE INDEX CONCURRENTLY kept ON "Odd"."My T" (email);') == []
    assert found(
        'CREATE INDEX CONCURRENTLY kept ON "Odd"."My T" (lower(email), id) WHERE active;'
    ) == ["kept"]
    assert conn.execute(
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'pgwarden_index_probe%'"
    ).fetchone() == (0,)


def test_a_lock_timeout_while_reading_the_definition_is_an_error_not_no_match(
    shop: str, holder, tmp_path: Path
) -> None:
    """Otherwise a finished copy would go unrecognised whenever the table is briefly locked."""
    step = plan_of(write_sql(tmp_path, UNNAMED), file_transaction=False).steps[0]
    holder("BEGIN; LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
    with (
        psycopg.connect(shop, autocommit=True) as c,
        pytest.raises(psycopg.errors.LockNotAvailable),
    ):
        definition(c, step, lock_timeout_ms=50, attempts=2)
