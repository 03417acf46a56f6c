"""A DO block's step keeps its body's type changes from a known type (union of the body)."""

from __future__ import annotations

from pathlib import Path

from pgwarden.commands import load_plan

SQL = """
ALTER TABLE hosts ADD name varchar(20);
DO $$
BEGIN
  ALTER TABLE hosts ALTER COLUMN name TYPE varchar(10);
END
$$;
"""


def test_a_do_block_keeps_its_bodys_type_changes(tmp_path: Path) -> None:
    path = tmp_path / "001.sql"
    path.write_text(SQL)
    do = load_plan([path], file_transaction=False).steps[1]
    assert do.inner, do
    # as at top level: the old type is known from the ADD before it (was: dropped, ())
    assert [(c.column, c.old, c.new, c.rewrites) for c in do.effects.type_changes] == [
        ("name", "varchar(20)", "varchar(10)", True)
    ]
    assert do.effects.type_changes == do.inner[0].effects.type_changes
