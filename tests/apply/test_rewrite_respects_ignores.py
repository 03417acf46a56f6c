"""`apply --rewrite` leaves a hazard the configuration ignores as it is, as `lint --fix` does.

Before, the rewrite linted the plan again with every rule: with `ignore = ["PW101"]` a
CREATE INDEX was still run as CREATE INDEX CONCURRENTLY outside its transaction.
"""

from __future__ import annotations

from pathlib import Path

from pgwarden.apply.api import RunOptions, apply_plan
from pgwarden.commands import load_plan
from pgwarden.settings import Settings


def _preview(tmp_path: Path, settings: Settings) -> list[str]:
    f = tmp_path / "001.sql"
    f.write_text("CREATE INDEX i ON orders (x);\nALTER TABLE orders ADD COLUMN y int;\n")
    result = apply_plan(
        load_plan([f], file_transaction=True),
        database_url=None,
        options=RunOptions(dry_run=True, rewrite=True),
        settings=settings,
    )
    return [s.sql for s in result.steps]


def test_an_ignored_hazard_is_not_rewritten(tmp_path: Path) -> None:
    assert any("CONCURRENTLY" in q for q in _preview(tmp_path, Settings()))
    kept = _preview(tmp_path, Settings(ignore=("PW101",)))
    assert not any("CONCURRENTLY" in q for q in kept), kept
