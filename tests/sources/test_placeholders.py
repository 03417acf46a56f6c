"""Flyway/Liquibase placeholders: linted as identifiers, refused where SQL runs as written.

Before, `ALTER TABLE ${schema}.orders ...` (Flyway's most common placeholder) was a
syntax error: a Flyway project using placeholders could not be linted at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.apply.api import apply_plan
from pgwarden.commands import Context, lint, load_plan
from pgwarden.errors import InputError
from pgwarden.lint.fix import fix_plan
from pgwarden.rehearse.api import rehearse
from pgwarden.sources.placeholders import quote_placeholders

FLYWAY = """SET search_path TO ${flyway:defaultSchema};
-- ${not_this} in a comment
ALTER TABLE ${schema}.orders ADD COLUMN note text DEFAULT '${nor_this}';
CREATE INDEX orders_note_idx ON ${schema}.orders (note);
DO $$ BEGIN ALTER TABLE ${schema}.orders ADD COLUMN IF NOT EXISTS x int; END $$;
"""


def test_placeholders_are_read_as_identifiers(tmp_path: Path) -> None:
    f = tmp_path / "V2__note.sql"
    f.write_text(FLYWAY)
    plan, result = lint([f], context=Context(None, None, 18, "x"))
    assert plan.texts[0].placeholders == ("${flyway:defaultSchema}", "${schema}")
    assert {x.code for x in result.findings} >= {"PW101", "PW120"}
    (index,) = [x for x in result.findings if x.code == "PW101"]
    assert '"${schema}".orders' in index.message
    assert plan.steps[2].location.line == 4
    assert fix_plan(plan, result) == []  # not rewritten: the file as written stays


def test_literals_identifiers_and_comments_keep_them() -> None:
    text, found = quote_placeholders(
        "SELECT '${a}', E'\\'${b}', \"${c}\" /* ${d} /* ${e} */ */ FROM ${t}; -- ${f}"
    )
    assert found == ("${t}",)
    assert (
        text == "SELECT '${a}', E'\\'${b}', \"${c}\" /* ${d} /* ${e} */ */ FROM \"${t}\"; -- ${f}"
    )
    assert quote_placeholders("SELECT $1, $$${x}$$") == ('SELECT $1, $$"${x}"$$', ("${x}",))


@pytest.mark.parametrize("run", ["apply", "rehearse"])
def test_running_them_as_written_is_refused(tmp_path: Path, run: str) -> None:
    f = tmp_path / "V2__note.sql"
    f.write_text(FLYWAY)
    plan = load_plan([f])
    named = r"placeholders \(\$\{flyway:defaultSchema\}, \$\{schema\}\)"

    def go() -> None:
        if run == "apply":
            apply_plan(plan, database_url="postgresql://localhost:1/x")
        else:
            rehearse(plan)

    with pytest.raises(InputError, match=named):
        go()
