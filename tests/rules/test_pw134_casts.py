"""PW134's table of type changes that fail without USING, checked on a live server.

For every pair of the built-in types the rule knows, `ALTER COLUMN ... TYPE` with no
USING is refused (42804, "cannot be cast automatically") exactly when the rule says so,
on every supported version; and where the rule's help says `USING c::type`, that runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from tests.fixtures.pg import new_database

from pgwarden.cli.analyse import lint as lint_cmd
from pgwarden.cli.analyse import stats as stats_cmd
from pgwarden.pg.cluster import Cluster
from pgwarden.rules.pw134_type_change_fails_without_using import (
    BUILT_IN,
    EXPLICIT_CASTS,
    STRINGS,
    _problem,
    fails_without_using,
)

SPELLED = {"varchar": "varchar(40)", "bpchar": "char(10)"}
# Added by PostgreSQL 18: explicit casts between bytea and the integer types.
BYTEA_INT_18 = {(a, b) for x in ("int2", "int4", "int8") for a, b in (("bytea", x), (x, "bytea"))}


def _refused(c: psycopg.Connection[tuple[object, ...]], sql: str) -> str | None:
    """The SQLSTATE the server refuses `sql` with, or None when it runs (rolled back)."""
    try:
        with c.transaction():
            c.execute(sql)
            raise _Undo
    except _Undo:
        return None
    except psycopg.Error as e:
        return e.sqlstate


class _Undo(Exception):
    """Rolls the savepoint back after a statement that ran."""


NO_AUTOMATIC_CAST = "42804"  # "column ... cannot be cast automatically to type ..."


def test_the_rule_flags_exactly_the_changes_the_server_refuses(pg_any: Cluster) -> None:
    dsn = new_database(pg_any)
    wrong: list[str] = []
    with psycopg.connect(dsn) as c:
        for old in sorted(BUILT_IN):
            c.execute(f"CREATE TABLE t_{old} (c {SPELLED.get(old, old)})")
            for new in sorted(BUILT_IN - {old}):
                alter = f"ALTER TABLE t_{old} ALTER COLUMN c TYPE {SPELLED.get(new, new)}"
                refused = _refused(c, alter)
                if refused not in (None, NO_AUTOMATIC_CAST):
                    wrong.append(f"{old} -> {new}: refused with {refused}")
                if (refused is not None) != fails_without_using(old, new):
                    wrong.append(f"{old} -> {new}: flagged {fails_without_using(old, new)}")
                if not fails_without_using(old, new):
                    continue
                said = old in STRINGS or (old, new) in EXPLICIT_CASTS
                exists = said or (pg_any.installation.major >= 18 and (old, new) in BYTEA_INT_18)
                if (_refused(c, f"{alter} USING c::{new}") is None) != exists:
                    wrong.append(f"{old} -> {new} USING c::{new}: said {said}")
    assert not wrong, "\n".join(wrong)


def test_to_and_from_an_enum_the_rule_agrees_with_the_server(pg_any: Cluster) -> None:
    dsn = new_database(pg_any)
    wrong: list[str] = []
    enums = {"mood", "mood2"}
    with psycopg.connect(dsn) as c:
        c.execute("CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE TYPE mood2 AS ENUM ('ok')")
        for other in sorted(BUILT_IN | {"mood2"}):
            c.execute(f"CREATE TABLE t_{other} (c {SPELLED.get(other, other)}, e mood)")
            for old, new, col in ((other, "mood", "c"), ("mood", other, "e")):
                alter = f"ALTER TABLE t_{other} ALTER COLUMN {col} TYPE {SPELLED.get(new, new)}"
                refused = _refused(c, alter)
                flagged = _problem(old, new, enums) is not None
                if refused not in (None, NO_AUTOMATIC_CAST) or (refused is not None) != flagged:
                    wrong.append(f"{old} -> {new}: refused {refused}, flagged {flagged}")
            # the help's conversion for a change to an enum runs (no rows to convert)
            if _refused(c, f"ALTER TABLE t_{other} ALTER COLUMN c TYPE mood USING c::text::mood"):
                wrong.append(f"{other} -> mood USING c::text::mood refused")
        # the current type not known: a change to an enum the plan created fails anyway
        assert _problem(None, "mood", enums) is not None
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("model", "spelled"),
    [("int4", "integer"), ("uuid", "uuid"), ("varchar(36)", "varchar(36)"),
     ("bpchar(2)", "char(2)"), ("int8[]", "bigint[]"), ("float8", "double precision")],
)  # fmt: skip
def test_messages_write_the_type_as_sql_does(model: str, spelled: str) -> None:
    from pgwarden.analysis.inplan import sql_type

    assert sql_type(model) == spelled


def test_enums_of_the_catalog_and_of_a_stats_snapshot_are_known(db: str, tmp_path: Path) -> None:
    """`--database-url` and a `stats dump` snapshot both say which types are enums: a text
    column changed to one, and an enum column changed to integer, fail without USING."""
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(
            "CREATE SCHEMA app; CREATE TYPE app.mood AS ENUM ('sad', 'ok');"
            " CREATE TABLE notes (id bigint, feeling text, mood app.mood)"
        )
    sql = tmp_path / "m.sql"
    sql.write_text(
        "SET lock_timeout = '1s';\n"
        "ALTER TABLE notes ALTER COLUMN feeling TYPE app.mood;\n"
        "ALTER TABLE notes ALTER COLUMN mood TYPE integer;\n"
        "ALTER TABLE notes ALTER COLUMN mood TYPE text;\n"
    )
    snapshot = tmp_path / "stats.json"
    r = CliRunner().invoke(stats_cmd, ["dump", "--database-url", db, "-o", str(snapshot)])
    assert r.exit_code == 0, r.output
    for context in (["--database-url", db], ["--stats", str(snapshot)]):
        r = CliRunner().invoke(lint_cmd, [str(sql), "--format", "json", *context])
        found = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "PW134"]
        assert [f["location"]["line"] for f in found] == [2, 3], (context, r.output)
        assert "no automatic cast from text to an enum" in found[0]["message"]
        assert "from an enum to integer" in found[1]["message"]
