"""psql variables (`:name`, `:'name'`, `:"name"`) in a SQL file run with `psql -v`.

psql fills them in before the server sees the SQL (checked below with psql itself), so the
file as written is not valid SQL. Before, lint stopped at the first one with a syntax
error: nothing of the file was linted. Now each is read as what it stands for, a quoted
identifier (`:s` and `:"s"` as `":s"`) or a literal (`:'s'` as `':s'`), the rest of the
file is linted, and apply/rehearse (which run SQL as written) refuse the file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from pgwarden.apply.api import apply_plan
from pgwarden.commands import Context, lint, load_plan
from pgwarden.errors import InputError
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.sources.placeholders import quote_placeholders

SCRIPT = """\\set ON_ERROR_STOP on
CREATE TABLE :schema.orders (id bigint PRIMARY KEY, note text);
ALTER TABLE :"schema".orders ADD COLUMN kind text DEFAULT :'kind';
CREATE INDEX orders_note_idx ON :schema.orders (note);
SELECT 1::int, (ARRAY[1,2,3])[1:2], ':kept', $$ :kept $$ AS ":kept";
"""


def test_variables_are_read_as_what_they_stand_for(tmp_path: Path) -> None:
    f = tmp_path / "deploy.sql"
    f.write_text(SCRIPT.replace("CREATE TABLE :schema.orders", "CREATE TABLE :schema.other"))
    plan, result = lint([f], context=Context(None, None, 18, "x"))
    assert plan.texts[0].placeholders == (":schema", ':"schema"', ":'kind'")
    (index,) = [x for x in result.findings if x.code == "PW101"]
    assert '":schema".orders' in index.message
    assert index.location.line == 4


def test_only_code_outside_quotes_and_bodies_is_read() -> None:
    text, found = quote_placeholders(SCRIPT.split("\n", 1)[1])
    assert found == (":schema", ':"schema"', ":'kind'")
    assert 'CREATE TABLE ":schema".orders' in text
    assert "ALTER TABLE \":schema\".orders ADD COLUMN kind text DEFAULT ':kind';" in text
    assert "SELECT 1::int, (ARRAY[1,2,3])[1:2], ':kept', $$ :kept $$ AS \":kept\";" in text


def test_psql_substitutes_exactly_those(tmp_path: Path) -> None:
    """The same file through psql -v: the three variables are filled in, the rest is
    left as written (casts, array slices, literals, quoted identifiers, bodies)."""
    f = tmp_path / "deploy.sql"
    f.write_text(SCRIPT)
    inst = find_installation()
    with Cluster.start(inst) as c, psycopg.connect(c.dsn("postgres"), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA app")
        r = subprocess.run(
            [str(inst.tool("psql")), "-X", "-v", "schema=app", "-v", "kind=k1",
             "--echo-queries", "-f", str(f), c.dsn("postgres")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "SELECT 1::int, (ARRAY[1,2,3])[1:2], ':kept', $$ :kept $$ AS \":kept\";" in r.stdout
        default = conn.execute(
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef"
            " WHERE adrelid = 'app.orders'::regclass"
        ).fetchone()
        assert default == ("'k1'::text",)


def test_running_them_as_written_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "deploy.sql"
    f.write_text(SCRIPT)
    plan = load_plan([f])
    with pytest.raises(InputError, match=r"placeholders \(:schema, :\"schema\", :'kind'\)"):
        apply_plan(plan, database_url="postgresql://localhost:1/x")
