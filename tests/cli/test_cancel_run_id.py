"""`pgwarden cancel --run ID` with an id the journal does not hold is a usage error: one
message on stderr naming the id and the database, a hint naming the command that lists
the runs, exit 2 (docs/apply.md) — not a 'not running' line on stdout. So is a cancel with
nothing to cancel: a run that is done, or no run running."""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from tests.cli.test_errors import assert_clean_error, run
from tests.cli.test_resume_run_id import _apply


def test_cancel_of_a_run_id_that_does_not_exist_names_it(tmp_path: Path, db: str):
    _apply(tmp_path, db)
    r = run("cancel", "--run", "bogus", "--database-url", db, cwd=tmp_path)
    dbname = conninfo_to_dict(db)["dbname"]
    assert_clean_error(r, 2, f"no run bogus in database {dbname}", "hint:", "pgwarden status")
    assert r.stdout == ""


def test_cancel_of_a_run_id_on_a_database_without_runs_names_it(tmp_path: Path, db: str):
    r = run("cancel", "--run", "bogus", "--database-url", db, cwd=tmp_path)
    assert_clean_error(r, 2, "no run bogus in database", "no pgwarden run was ever recorded")
    assert r.stdout == ""


def test_cancel_of_a_done_run_says_there_is_nothing_to_cancel(tmp_path: Path, db: str):
    rid = _apply(tmp_path, db)
    r = run("cancel", "--run", rid, "--database-url", db, cwd=tmp_path)
    # nothing to cancel is a usage error (exit 2, on stderr), as nothing to resume is
    assert_clean_error(r, 2, f"nothing to cancel: run {rid} is done (finished 20", "hint:")
    assert "`pgwarden status` lists the runs" in r.stderr
    assert r.stdout == ""
    assert r.stderr.count("\n") == 2  # the message and its hint, one line each


def test_cancel_with_no_run_running_says_there_is_nothing_to_cancel(tmp_path: Path, db: str):
    _apply(tmp_path, db)
    r = run("cancel", "--database-url", db, cwd=tmp_path)
    assert_clean_error(r, 2, "nothing to cancel: no apply is running", "pgwarden status")
    assert r.stdout == ""


def test_cancel_on_a_database_without_runs_says_there_is_nothing_to_cancel(tmp_path: Path, db: str):
    r = run("cancel", "--database-url", db, cwd=tmp_path)
    dbname = conninfo_to_dict(db)["dbname"]
    assert_clean_error(
        r, 2, f"nothing to cancel: no pgwarden run was ever recorded in database {dbname}"
    )
    assert r.stdout == ""
