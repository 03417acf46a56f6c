"""`pgwarden cancel --run ID` with an id the journal does not hold is a usage error: one
message on stderr naming the id and the database, a hint naming the command that lists
the runs, exit 2 (docs/apply.md) — not a 'not running' line on stdout."""

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
