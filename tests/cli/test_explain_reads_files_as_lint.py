"""`pgwarden explain FILE` reads the file as `lint` does: Flyway `${placeholders}`, Go
template actions and psql variables are names it cannot know, not syntax errors (the
real-project sweep: explain exited 2 on seven supabase/auth files that lint read)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pgwarden.cli import cli


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("V1__note.sql", "${schema}.users"),
        ("20240101_note.up.sql", '{{ index .Options "Namespace" }}.users'),
        ("note.sql", ":schema.users"),
    ],
)
def test_explain_reads_placeholders_as_lint_does(tmp_path: Path, name: str, table: str) -> None:
    path = tmp_path / name
    path.write_text(f"ALTER TABLE {table} ADD COLUMN note text;\n")
    lint = CliRunner().invoke(cli, ["lint", str(path)], terminal_width=200)
    assert lint.exit_code in (0, 1), lint.output
    out = CliRunner().invoke(cli, ["explain", str(path)], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "ACCESS EXCLUSIVE" in out.output


def test_explain_of_nothing_still_says_so() -> None:
    out = CliRunner().invoke(cli, ["explain", "-- only a comment"])
    assert out.exit_code == 2
    assert "no SQL statement given" in out.output
