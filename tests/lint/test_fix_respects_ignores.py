"""`lint --fix` leaves a hazard the user ignored as it is.

Before, the rewrite linted the plan again with every rule, so a CREATE INDEX whose PW101
the configuration (`ignore = ["PW101"]`) or an inline `-- pgwarden: ignore PW101` set
aside was still rewritten into CREATE INDEX CONCURRENTLY outside the transaction.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.settings import Settings


@pytest.mark.parametrize(
    ("text", "settings"),
    [
        ("CREATE INDEX i ON orders (x);\n", Settings(ignore=("PW101",))),
        ("-- pgwarden: ignore PW101 a small lookup table\nCREATE INDEX i ON orders (x);\n", None),
    ],
    ids=["configuration", "inline"],
)
def test_an_ignored_hazard_is_not_rewritten(
    tmp_path: Path, text: str, settings: Settings | None
) -> None:
    f = tmp_path / "001.sql"
    f.write_text(text)
    plan, result = lint([f], context=Context(None, None, 18, "x"), settings=settings)
    assert "PW101" not in {x.code for x in result.findings}
    write_fixes(fix_plan(plan, result))
    fixed = f.read_text()
    assert "CONCURRENTLY" not in fixed and "CREATE INDEX" in fixed, fixed
