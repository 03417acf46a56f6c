"""Liquibase formatted SQL: each changeset is a transaction of its own.

Before, such a file was one transaction (the runner's file wrap): a strong lock in
one changeset was reported as held across the next (PW121), and a CREATE INDEX
CONCURRENTLY in a `runInTransaction:false` changeset as failing in a transaction
(PW130), while Liquibase runs them apart.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.apply.identity import stamp_database
from pgwarden.commands import Context, lint, load_plan
from pgwarden.lint.fix import fix_plan
from pgwarden.plan import TxMode
from pgwarden.sources.liquibase import changesets
from tests.fixtures.pg import new_database

HEADER = "--liquibase formatted sql\n\n"
TWO = """--changeset alice:1
ALTER TABLE orders ADD COLUMN note text;
--rollback ALTER TABLE orders DROP COLUMN note;

--changeset alice:2 runInTransaction:false
CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);
--rollback DROP INDEX orders_note_idx;

--changeset alice:3
UPDATE orders SET note = 'x' WHERE id = 1;
INSERT INTO orders (id) VALUES (2);
"""


def _codes(tmp_path: Path, text: str) -> set[str]:
    f = tmp_path / "changelog.sql"
    f.write_text(text)
    _, result = lint([f], context=Context(None, None, 18, "x"))
    return {x.code for x in result.findings}


def test_each_changeset_is_a_transaction_of_its_own(tmp_path: Path) -> None:
    f = tmp_path / "changelog.sql"
    f.write_text(HEADER + TWO)
    steps = load_plan([f]).steps
    assert [s.transaction is None for s in steps] == [False, True, False, False]
    assert steps[0].transaction != steps[2].transaction == steps[3].transaction
    assert steps[0].tx_mode is TxMode.FILE
    codes = _codes(tmp_path, HEADER + TWO)
    assert "PW121" not in codes and "PW130" not in codes, codes


def test_the_same_file_without_the_header_is_one_transaction(tmp_path: Path) -> None:
    assert "PW130" in _codes(tmp_path, TWO)  # (not PW121: in a transaction it fails at once)


def test_concurrently_in_a_changeset_run_in_a_transaction_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "changelog.sql"
    f.write_text(HEADER + "--changeset bob:7\nCREATE INDEX CONCURRENTLY i ON orders (note);\n")
    _, result = lint([f], context=Context(None, None, 18, "x"))
    (hit,) = [x for x in result.findings if x.code == "PW130"]
    assert hit.severity.value == "error"
    assert "Liquibase changeset" in hit.message and "runInTransaction:false" in hit.help


def test_changeset_lines() -> None:
    text = HEADER + "--changeset a:1\nSELECT 1;\n"
    text += "  -- ChangeSet b:2 runInTransaction: false\nSELECT 2;\n"
    assert [tx for _, tx in changesets(text)] == [True, False]
    assert changesets("--changeset a:1\nSELECT 1;\n") == ()  # not a formatted SQL file


def test_apply_runs_each_changeset_apart(pg_cluster, tmp_path: Path) -> None:
    """The CONCURRENTLY changeset runs outside a transaction, after the one before it
    committed; a failing changeset rolls back only itself."""
    dsn = new_database(pg_cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        c.execute("INSERT INTO orders VALUES (1)")
        stamp_database(c, "staging", protected=False, by="tests")
    f = tmp_path / "changelog.sql"
    f.write_text(
        HEADER + TWO + "\n--changeset alice:4\nALTER TABLE orders ADD COLUMN n int;\n"
        "ALTER TABLE orders ADD COLUMN n int;\n"
    )
    result = apply_plan(
        load_plan([f]),
        database_url=dsn,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(journal_file=str(tmp_path / "j.jsonl")),
    )
    assert result.state != "done"  # changeset 4 fails: the column twice
    with psycopg.connect(dsn) as c:
        valid = c.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_note_idx'::regclass"
        ).fetchone()
        notes = c.execute("SELECT count(*) FROM orders WHERE note = 'x'").fetchone()
        added = c.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass"
            " AND attname = 'n'"
        ).fetchone()
    assert (valid, notes, added) == ((True,), (1,), (0,))


def test_fix_leaves_a_liquibase_file_alone(tmp_path: Path) -> None:
    """The transactions a fix writes (BEGIN ... COMMIT, a build moved out) are not
    changesets: Liquibase would run them inside one; the file is left as it is."""
    f = tmp_path / "changelog.sql"
    f.write_text(HEADER + "--changeset bob:7\nCREATE INDEX i ON orders (note);\n")
    plan, result = lint([f], context=Context(None, None, 18, "x"))
    assert any(x.fix is not None for x in result.findings)
    assert fix_plan(plan, result) == []
