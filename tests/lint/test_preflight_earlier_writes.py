"""PW401 counts the rows as the plan's earlier statements leave them (read-only)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.commands import lint, load_context
from pgwarden.findings import Finding, Severity

SCHEMA = """
CREATE TABLE accounts (id bigint PRIMARY KEY);
INSERT INTO accounts SELECT generate_series(1, 10);
CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint, status text, code text);
INSERT INTO invoices
SELECT g, CASE WHEN g <= 3 THEN 100 + g ELSE 1 + g % 10 END,
       CASE WHEN g % 25 = 0 THEN NULL ELSE 'open' END, 'c' || (g % 90)
FROM generate_series(1, 100) g;
"""

SET_NOT_NULL = "ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;\n"


def _pw401(db: str, tmp_path: Path, text: str) -> dict[int, Finding]:
    f = tmp_path / "001.sql"
    f.write_text(text)
    _, result = lint([f], context=load_context(database_url=db), preflight_dsn=db)
    return {fd.location.line: fd for fd in result.findings if fd.code == "PW401"}


def test_an_update_that_fixes_the_rows_clears_the_count(db: str, tmp_path: Path):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    before = _pw401(db, tmp_path, SET_NOT_NULL)
    assert before[1].severity is Severity.ERROR
    assert before[1].message.startswith("4 existing row(s) violate NOT NULL on invoices(status)")
    fixed = "UPDATE invoices SET status = 'open' WHERE status IS NULL;\n" + SET_NOT_NULL
    assert _pw401(db, tmp_path, fixed) == {}
    aliased = "UPDATE invoices AS i SET status = coalesce(i.status, 'x');\n" + SET_NOT_NULL
    assert _pw401(db, tmp_path, aliased) == {}
    deleted = "DELETE FROM invoices WHERE status IS NULL;\n" + SET_NOT_NULL
    assert _pw401(db, tmp_path, deleted) == {}
    # the duplicates and orphans the same way: fixed by the earlier statements
    keys = (
        "UPDATE invoices SET code = 'u' || id WHERE id > 89;\n"
        "DELETE FROM invoices WHERE account_id > 10;\n"
        "ALTER TABLE invoices ADD CONSTRAINT invoices_code_key UNIQUE (code);\n"
        "ALTER TABLE invoices ADD FOREIGN KEY (account_id) REFERENCES accounts;\n"
    )
    assert _pw401(db, tmp_path, keys) == {}


def test_an_update_that_misses_the_rows_still_errors(db: str, tmp_path: Path):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    other = "UPDATE invoices SET status = 'open' WHERE id < 50;\n" + SET_NOT_NULL
    found = _pw401(db, tmp_path, other)
    assert found[2].severity is Severity.ERROR
    assert found[2].message.startswith(
        "3 existing row(s) violate NOT NULL on invoices(status) after UPDATE invoices at "
    )
    nulls = "UPDATE invoices SET status = NULL WHERE id = 1;\n" + SET_NOT_NULL
    assert _pw401(db, tmp_path, nulls)[2].message.startswith("5 existing row(s)")


def test_a_write_pgwarden_cannot_fold_gives_todays_count_as_a_warning(db: str, tmp_path: Path):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
        c.execute("CREATE TABLE fixes (id bigint, status text)")
    writes = {
        "UPDATE invoices SET status = f.status FROM fixes f WHERE f.id = invoices.id;": "FROM",
        "DO $$ DECLARE v text := 'x'; BEGIN UPDATE invoices SET status = v; END $$;": "UPDATE",
        "DO $$ BEGIN EXECUTE 'UPDATE ' || 'invoices SET status = 1'; END $$;": "DO body",
        "INSERT INTO invoices (id) VALUES (1000);": "INSERT INTO invoices",
    }
    for stmt, named in writes.items():
        found = _pw401(db, tmp_path, stmt + "\n" + SET_NOT_NULL)
        assert found[2].severity is Severity.WARNING, stmt
        msg = found[2].message
        assert msg.startswith("4 row(s) violate NOT NULL on invoices(status) today"), msg
        assert "001.sql:1" in msg and named in msg and "check it fixes them" in msg
    # a DO body pgwarden reads is folded like the statement itself
    folded = "DO $$ BEGIN UPDATE invoices SET status = 'x' WHERE status IS NULL; END $$;\n"
    assert _pw401(db, tmp_path, folded + SET_NOT_NULL) == {}
    # a trigger may change what the UPDATE writes: not folded
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(
            "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS "
            "'BEGIN NEW.status := OLD.status; RETURN NEW; END'"
        )
        c.execute(
            "CREATE TRIGGER keep BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION keep()"
        )
    fixed = "UPDATE invoices SET status = 'open' WHERE status IS NULL;\n" + SET_NOT_NULL
    assert _pw401(db, tmp_path, fixed)[2].severity is Severity.WARNING


def test_an_unfinished_backfill_of_the_table_gives_a_warning(db: str, tmp_path: Path):
    from pgwarden.apply.journal import Journal

    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
        Journal.ensure_schema(c)
        c.execute(
            "INSERT INTO pgwarden.backfills (key, table_name, set_sql, where_sql, state, "
            "rows_done) VALUES ('k', 'public.invoices', 'status = ''open''', "
            "'status IS NULL', 'cancelled', 2)"
        )
    found = _pw401(db, tmp_path, SET_NOT_NULL)
    assert found[1].severity is Severity.WARNING
    assert found[1].message.startswith(
        "4 row(s) violate NOT NULL on invoices(status) today; pgwarden backfill SET "
        "status = 'open' WHERE status IS NULL (cancelled, 2 rows done) may change them first"
    )
