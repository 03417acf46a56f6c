"""PW401 holes found by QA: a table the role may not read, a column the plan adds before
constraining it, and an unrelated column's type change before the constraint."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden.commands import lint, load_context
from pgwarden.findings import Finding, Severity
from tests.lint.test_preflight_earlier_writes import SCHEMA, SET_NOT_NULL


def _pw401(db: str, tmp_path: Path, text: str, dsn: str | None = None) -> dict[int, Finding]:
    f = tmp_path / "001.sql"
    f.write_text(text)
    _, result = lint([f], context=load_context(database_url=db), preflight_dsn=dsn or db)
    return {fd.location.line: fd for fd in result.findings if fd.code == "PW401"}


def test_a_table_the_role_may_not_read_is_said_skipped_and_lint_goes_on(
    db: str, tmp_path: Path
) -> None:
    """The role of --database-url lacks SELECT on invoices: its check is skipped with a
    warning naming the table and the grant; accounts, which it reads, is still counted."""
    role = f"pw_reader_{tmp_path.name[-12:].lower()}".replace("-", "_")
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        c.execute(sql.SQL("GRANT SELECT ON accounts TO {}").format(sql.Identifier(role)))
    reader = psycopg.conninfo.make_conninfo(db, user=role)
    plan = SET_NOT_NULL + "ALTER TABLE accounts ADD CONSTRAINT small CHECK (id < 6);\n"
    found = _pw401(db, tmp_path, plan, reader)
    assert found[1].severity is Severity.WARNING
    msg = found[1].message
    assert "skipped" in msg and "NOT NULL on invoices(status)" in msg, msg
    assert "lacks SELECT on" in msg and "invoices" in msg and role in msg, msg
    assert "GRANT SELECT" in found[1].help
    assert found[2].severity is Severity.ERROR  # lint went on: accounts was counted
    assert found[2].message.startswith("5 existing row(s) violate CHECK")
    # a folded earlier write changes nothing: still skipped, not a crash
    fixed = "UPDATE invoices SET status = 'x' WHERE status IS NULL;\n" + SET_NOT_NULL
    assert "skipped" in _pw401(db, tmp_path, fixed, reader)[2].message


def test_a_column_added_earlier_is_counted_as_the_add_leaves_it(db: str, tmp_path: Path) -> None:
    """ADD COLUMN without a default leaves it NULL in every existing row: a later SET NOT
    NULL (or a CHECK it fails) fails on a table with rows, and PW401 says so; a default,
    a CHECK that NULL passes, or an empty table leave nothing to report."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
        c.execute("CREATE TABLE empty (id int PRIMARY KEY)")
    add = "ALTER TABLE invoices ADD COLUMN zz int;\n"
    found = _pw401(db, tmp_path, add + "ALTER TABLE invoices ALTER COLUMN zz SET NOT NULL;\n")
    assert found[2].severity is Severity.ERROR
    msg = found[2].message
    assert msg.startswith("100 existing row(s) violate NOT NULL on invoices(zz)"), msg
    assert "ADD COLUMN" in msg and "default" in found[2].help.lower(), (msg, found[2].help)
    check = add + "ALTER TABLE invoices ADD CONSTRAINT zz_set CHECK (zz IS NOT NULL);\n"
    assert _pw401(db, tmp_path, check)[2].message.startswith("100 existing row(s) violate CHECK")
    # in one statement, too
    one = "ALTER TABLE invoices ADD COLUMN zz int, ALTER COLUMN zz SET NOT NULL;\n"
    assert _pw401(db, tmp_path, one)[1].message.startswith("100 existing row(s) violate NOT NULL")
    fine = [
        "ALTER TABLE invoices ADD COLUMN zz int DEFAULT 0;\n"
        "ALTER TABLE invoices ALTER COLUMN zz SET NOT NULL;\n",
        add + "ALTER TABLE invoices ADD CONSTRAINT zz_pos CHECK (zz > 0);\n",
        "ALTER TABLE empty ADD COLUMN zz int;\nALTER TABLE empty ALTER COLUMN zz SET NOT NULL;\n",
    ]
    for text in fine:
        assert _pw401(db, tmp_path, text) == {}, text


def test_a_type_change_of_another_column_keeps_the_error(db: str, tmp_path: Path) -> None:
    """ALTER COLUMN code TYPE cannot change status: SET NOT NULL on status stays an error
    with today's count; a type change of status itself is counted as its USING leaves it."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA)
    other = "ALTER TABLE invoices ALTER COLUMN code TYPE varchar(20);\n" + SET_NOT_NULL
    found = _pw401(db, tmp_path, other)
    assert found[2].severity is Severity.ERROR
    assert found[2].message.startswith("4 existing row(s) violate NOT NULL on invoices(status):")
    same = "ALTER TABLE invoices ALTER COLUMN status TYPE varchar(10);\n" + SET_NOT_NULL
    assert _pw401(db, tmp_path, same)[2].severity is Severity.ERROR
    using = (
        "ALTER TABLE invoices ALTER COLUMN status TYPE varchar(10) USING coalesce(status, 'x');\n"
    )
    assert _pw401(db, tmp_path, using + SET_NOT_NULL) == {}
