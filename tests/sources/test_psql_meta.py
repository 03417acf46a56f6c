"""psql meta-commands in SQL files: harmless ones blanked, the others refused clearly.

Before, `\\set ON_ERROR_STOP on` at the top of a file run with `psql -f` made lint fail
with `syntax error at or near "\\"` and a hint to fix the SQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.commands import Context, lint
from pgwarden.errors import InputError, SqlParseError
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.sources.psql import blank_meta_commands

SCRIPT = "\\set ON_ERROR_STOP on\n\\echo adding a column\nALTER TABLE orders ADD COLUMN x int;\n"


def test_harmless_meta_commands_are_blanked(tmp_path: Path) -> None:
    f = tmp_path / "001.sql"
    f.write_text(SCRIPT)
    plan, result = lint([f], context=Context(None, None, 18, "x"))
    assert [s.location.line for s in plan.steps] == [3]
    assert {x.code for x in result.findings} == {"PW120"}
    text, found = blank_meta_commands(SCRIPT, "001.sql")
    assert len(text) == len(SCRIPT) and found == (
        "\\set ON_ERROR_STOP on",
        "\\echo adding a column",
    )


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("\\connect other", "meta-command \\\\connect"),
        ("\\i other.sql", "meta-command \\\\i"),
        ("\\.", "COPY ... FROM stdin"),
    ],
)
def test_meta_commands_that_change_what_runs_are_refused(
    tmp_path: Path, line: str, named: str
) -> None:
    f = tmp_path / "001.sql"
    f.write_text(f"ALTER TABLE orders ADD COLUMN x int;\n{line}\nDROP TABLE t;\n")
    with pytest.raises(InputError, match=rf"001.sql:2:1: .*{named}"):
        lint([f], context=Context(None, None, 18, "x"))


def test_fix_keeps_them_at_the_top(tmp_path: Path) -> None:
    """The fixed file still runs with psql's own settings (ON_ERROR_STOP), and fixing it
    again changes nothing."""
    f = tmp_path / "001.sql"
    f.write_text("\\set ON_ERROR_STOP on\nCREATE INDEX i ON orders (x);\n")
    plan, result = lint([f], context=Context(None, None, 18, "x"))
    write_fixes(fix_plan(plan, result))
    fixed = f.read_text()
    assert fixed.startswith("\\set ON_ERROR_STOP on\n") and "CONCURRENTLY" in fixed
    plan, result = lint([f], context=Context(None, None, 18, "x"))
    assert fix_plan(plan, result) == []


def test_backslashes_inside_literals_bodies_and_comments_are_sql(tmp_path: Path) -> None:
    """psql sends a line that starts with a backslash inside a string, a dollar-quoted body
    or a comment as SQL; before, such a line was read as a meta-command and refused."""
    sql = (
        "CREATE FUNCTION digits(t text) RETURNS bool LANGUAGE sql AS $f$\n"
        "SELECT t ~ '^\n"
        "\\d+$'\n"
        "$f$;\n"
        "COMMENT ON FUNCTION digits(text) IS E'line one\n"
        "\\nline two';\n"
        "/* usage:\n"
        "\\i digits.sql\n"
        "*/\n"
        "SELECT 1;\n"
    )
    text, found = blank_meta_commands(sql, "001.sql")
    assert (text, found) == (sql, ())
    f = tmp_path / "001.sql"
    f.write_text(sql)
    plan, _ = lint([f], context=Context(None, None, 18, "x"))
    assert len(plan.steps) == 3


def test_a_meta_command_after_a_query_on_its_line_is_read_as_one(tmp_path: Path) -> None:
    """`SELECT ... \\gexec` (psql runs each result row as SQL) is refused by name; before,
    lint reported a syntax error at the backslash and a hint to fix the SQL. `\\echo` with a
    quoted argument is blanked whole."""
    f = tmp_path / "001.sql"
    f.write_text(
        "\\echo 'it''s starting'\n"
        "SELECT format('CREATE INDEX ON %I (id)', relname) FROM pg_class \\gexec\n"
    )
    with pytest.raises(InputError, match=r"001.sql:2:65: psql meta-command \\gexec"):
        lint([f], context=Context(None, None, 18, "x"))
    text, found = blank_meta_commands("\\echo 'it''s' \nSELECT 1;\n", "001.sql")
    assert found == ("\\echo 'it''s'",) and text == " " * 14 + "\nSELECT 1;\n"


@pytest.mark.parametrize("variable", [":start", ":'start'", ':"start"'])
def test_a_psql_variable_is_named_in_the_syntax_error(tmp_path: Path, variable: str) -> None:
    """psql fills in `:name` before the server sees it. pgwarden reads one as a quoted
    identifier or literal (tests/sources/test_psql_variables.py); where that cannot stand
    (a number is due), the error says it is a psql variable instead of only 'fix the SQL
    at that position'. A `::` cast next to a real error is not taken for one."""
    f = tmp_path / "001.sql"
    f.write_text(f"\\set start 10\nSET lock_timeout = '1s';\nCREATE SEQUENCE s START {variable};\n")
    with pytest.raises(SqlParseError) as info:
        lint([f], context=Context(None, None, 18, "x"))
    assert info.value.location.line == 3
    shown = ":'start'" if variable == ":'start'" else ":start"
    assert f"{shown} looks like a psql variable" in str(info.value.hint)
    f.write_text("SELECT a::int FROM t WHERE;\n")
    with pytest.raises(SqlParseError) as info:
        lint([f], context=Context(None, None, 18, "x"))
    assert "psql variable" not in str(info.value.hint)
