"""`pgwarden resume --run ID` with an id the journal does not hold names that id and how
to find the real ones (usage error, exit 2); it never says 'every recorded run is done'."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from tests.cli.test_errors import assert_clean_error, run


def _apply(tmp_path: Path, db: str) -> str:
    f = tmp_path / "001.sql"
    f.write_text("CREATE TABLE t (id int PRIMARY KEY);\n")
    done = run("apply", str(f), "--database-url", db, "--env", "dev", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status = run("status", "--database-url", db, "--format", "json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    return str(json.loads(status.stdout)["runs"][0]["run_id"])


def test_resume_of_a_run_id_that_does_not_exist_names_it(tmp_path: Path, db: str):
    _apply(tmp_path, db)
    r = run("resume", "--run", "bogus", "--database-url", db, "--env", "dev", "--yes", cwd=tmp_path)
    assert_clean_error(r, 2, "no run bogus", "pgwarden status")
    assert "every recorded run is done" not in r.stderr


def test_resume_of_a_run_id_on_a_database_without_runs_names_it(tmp_path: Path, db: str):
    r = run("resume", "--run", "bogus", "--database-url", db, "--env", "dev", "--yes", cwd=tmp_path)
    assert_clean_error(r, 2, "no run bogus")


def test_resume_of_a_done_run_says_it_is_done_and_records_nothing(tmp_path: Path, db: str):
    rid = _apply(tmp_path, db)
    r = run("resume", "--run", rid, "--database-url", db, "--env", "dev", "--yes", cwd=tmp_path)
    # nothing to do is a usage error (exit 2), as `resume` with every run done
    assert_clean_error(r, 2, f"run {rid} is already done", "finished 20", "nothing was done")
    assert "pgwarden status" in r.stderr
    assert r.stdout == ""
    status = run("status", "--database-url", db, "--format", "json", cwd=tmp_path)
    runs = json.loads(status.stdout)["runs"]
    assert [x["run_id"] for x in runs] == [rid]  # no resume run was started
    assert runs[0]["resumed_by"] is None
    finished = runs[0]["finished_at"]  # ISO, in the server's time zone
    assert f"finished {finished[:10]} {finished[11:19]}" in r.stderr


def test_resume_of_a_failed_run_a_later_resume_finished_says_so(tmp_path: Path, db: str):
    f = tmp_path / "001.sql"
    f.write_text("INSERT INTO t VALUES (1);\n")
    failed = run("apply", str(f), "--database-url", db, "--env", "dev", "--yes", cwd=tmp_path)
    assert failed.returncode == 3, failed.stderr
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int)")  # what the statement lacked
        row = c.execute("SELECT id FROM pgwarden.runs").fetchone()
    assert row is not None
    rid = str(row[0])
    done = run("resume", "--database-url", db, "--env", "dev", "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    r = run("resume", "--run", rid, "--database-url", db, "--env", "dev", "--yes", cwd=tmp_path)
    assert_clean_error(r, 2, f"run {rid} was continued by run ", "which is done (finished 20")
    assert "nothing was done" in r.stderr
    status = run("status", "--database-url", db, "--format", "json", cwd=tmp_path)
    assert len(json.loads(status.stdout)["runs"]) == 2  # no third run
