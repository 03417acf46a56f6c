"""Preflight data checks against a real database: counts and samples of rejected rows."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.commands import lint, load_context

SCHEMA = """
CREATE TABLE accounts (id bigint PRIMARY KEY);
INSERT INTO accounts SELECT generate_series(1, 10);
CREATE TABLE invoices (id bigint, account_id bigint, status text, code text, amount int);
INSERT INTO invoices
SELECT g, CASE WHEN g <= 3 THEN 100 + g ELSE 1 + g % 10 END,
       CASE WHEN g % 25 = 0 THEN NULL ELSE 'open' END,
       'c' || (g % 90), CASE WHEN g = 7 THEN -5 ELSE g END
FROM generate_series(1, 100) g;
"""

MIGRATION = """
ALTER TABLE invoices ALTER COLUMN status SET NOT NULL;
ALTER TABLE invoices ADD CONSTRAINT invoices_code_key UNIQUE (code);
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_check CHECK (amount >= 0);
ALTER TABLE invoices ADD CONSTRAINT invoices_account_fkey
    FOREIGN KEY (account_id) REFERENCES accounts;
ALTER TABLE invoices ADD COLUMN paid boolean NOT NULL;
CREATE TABLE refunds (id bigint PRIMARY KEY, invoice_id bigint);
ALTER TABLE refunds ALTER COLUMN invoice_id SET NOT NULL;
"""


def _pw401(db: str, tmp_path: Path, migration: str) -> dict[int, str]:
    """The PW401 messages, by line, of lint with preflight of `migration` against `db`."""
    f = tmp_path / "001.sql"
    f.write_text(migration)
    _, result = lint([f], context=load_context(database_url=db), preflight_dsn=db)
    return {fd.location.line: fd.message for fd in result.findings if fd.code == "PW401"}


def test_preflight_counts_rows_each_constraint_rejects(db: str, tmp_path: Path):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    found = _pw401(db, tmp_path, MIGRATION)
    assert sorted(found) == [2, 3, 4, 5, 7]  # refunds is new: nothing to check
    assert found[2].startswith("4 existing row(s) violate NOT NULL on invoices(status)")
    assert found[3].startswith("20 existing row(s) violate UNIQUE on invoices(code)")
    assert found[4].startswith("1 existing row(s) violate CHECK (amount >= 0) on invoices")
    # invoices has no key: its rows are located by ctid, never by their values
    assert found[4].endswith("e.g. ctid (0,7) (values not shown)")
    assert "-5" not in found[4] and "open" not in found[2]
    assert found[5].startswith("3 existing row(s) violate FOREIGN KEY invoices(account_id)")
    assert found[7].startswith("100 existing row(s) violate new NOT NULL column invoices.paid")


def test_clean_data_gives_no_preflight_findings(db: str, tmp_path: Path):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2);")
    migration = "ALTER TABLE t ALTER COLUMN a SET NOT NULL;\nCREATE UNIQUE INDEX t_a ON t (a);"
    assert not _pw401(db, tmp_path, migration)


def test_preflight_is_read_only(db: str, tmp_path: Path):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE t (a int); INSERT INTO t VALUES (NULL);")
    f = tmp_path / "001.sql"
    f.write_text("ALTER TABLE t ALTER COLUMN a SET NOT NULL;")
    lint([f], context=load_context(database_url=db), preflight_dsn=db)
    with psycopg.connect(db) as c:
        row = c.execute(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'a'"
        ).fetchone()
    assert row == (False,)


PEOPLE = """
CREATE TABLE people (id bigint PRIMARY KEY, email text, name text, ssn text);
INSERT INTO people SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'p' || g || '@x.org' END,
       'Person ' || g, 'SSN-' || g FROM generate_series(1, 50) g;
INSERT INTO people VALUES (51, 'p1@x.org', 'Twin', 'SSN-51');
CREATE TABLE visits (tenant int NOT NULL, n int NOT NULL, note text, UNIQUE (tenant, n));
INSERT INTO visits VALUES (1, 1, NULL), (1, 2, 'secret note'), (2, 1, NULL);
"""


def test_preflight_locates_rows_by_key_and_prints_no_other_column(db: str, tmp_path: Path):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(PEOPLE)
    found = _pw401(
        db,
        tmp_path,
        "ALTER TABLE people ALTER COLUMN email SET NOT NULL;\n"
        "ALTER TABLE people ADD CONSTRAINT people_email_key UNIQUE (email);\n"
        "ALTER TABLE people ADD CONSTRAINT people_name_check CHECK (id < 51);\n"
        "ALTER TABLE visits ALTER COLUMN note SET NOT NULL;\n",
    )
    assert found[1].startswith("5 existing row(s) violate NOT NULL on people(email)")
    assert found[1].endswith("e.g. id 10, 20, 30 (NULL in email)")
    assert found[2].endswith("e.g. id 1, 51 (values not shown)")  # the two rows sharing one
    assert found[3].endswith("e.g. id 51 (values not shown)")
    # no primary key: the unique key on NOT NULL columns locates the rows
    assert found[4].endswith("e.g. (tenant, n) (1,1), (2,1) (NULL in note)")
    text = " ".join(found.values())
    for value in ("@x.org", "Person", "Twin", "SSN-", "secret", "{"):
        assert value not in text


def test_rows_an_earlier_update_leaves_are_located_by_key_or_said_unlocated(
    db: str, tmp_path: Path
):
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(PEOPLE)
        c.execute("CREATE TABLE loose (email text); INSERT INTO loose VALUES (NULL), ('a@x.org')")
    found = _pw401(
        db,
        tmp_path,
        "UPDATE people SET email = 'none' WHERE id < 25 AND email IS NULL;\n"
        "ALTER TABLE people ALTER COLUMN email SET NOT NULL;\n"
        "UPDATE loose SET email = email WHERE false;\n"
        "ALTER TABLE loose ALTER COLUMN email SET NOT NULL;\n",
    )
    assert found[2].startswith("3 existing row(s) violate NOT NULL on people(email) after")
    assert found[2].endswith("e.g. id 30, 40, 50 (NULL in email)")
    # read through the CTE that folds the UPDATE: no ctid there, and no key
    assert found[4].startswith("1 existing row(s) violate NOT NULL on loose(email) after")
    assert found[4].endswith(
        "rows not located: the table has no primary or unique NOT NULL key (NULL in email)"
    )
