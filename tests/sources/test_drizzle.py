"""drizzle-kit migrations run, with every other pending one, in one transaction
(drizzle-orm's PgDialect.migrate wraps its loop in session.transaction): CREATE INDEX
CONCURRENTLY there always fails, so PW130 is an error, not the warning for a runner
that may or may not wrap the file; --fix leaves such files alone."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pgwarden import commands
from pgwarden.cli import cli
from pgwarden.sources.drizzle import is_drizzle_file

CIC = (
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS "documents_user_id_idx" ON "documents" ("user_id");\n'
)


def _pw130(path: Path) -> list[str]:
    _, result = commands.lint([path])
    return [f.severity.value for f in result.findings if f.code == "PW130"]


def test_a_drizzle_file_by_its_breakpoints_or_its_journal(tmp_path: Path) -> None:
    cut = tmp_path / "0046_extend.sql"
    cut.write_text('ALTER TABLE "documents" ADD COLUMN "x" int;--> statement-breakpoint\n' + CIC)
    assert is_drizzle_file(str(cut), cut.read_text())
    assert _pw130(cut) == ["error"]
    folder = tmp_path / "drizzle"
    (folder / "meta").mkdir(parents=True)
    (folder / "meta" / "_journal.json").write_text('{"entries": []}')
    lone = folder / "0047_index.sql"
    lone.write_text(CIC)
    assert is_drizzle_file(str(lone), CIC)
    assert _pw130(lone) == ["error"]  # even alone: inside drizzle's one transaction
    plain = tmp_path / "plain" / "0047_index.sql"
    plain.parent.mkdir()
    plain.write_text(CIC)
    assert not is_drizzle_file(str(plain), CIC)
    assert _pw130(plain) == ["warning"]  # a runner that may wrap the file


def test_fix_leaves_a_drizzle_file(tmp_path: Path) -> None:
    f = tmp_path / "0048_idx.sql"
    f.write_text('CREATE INDEX "a_idx" ON "a" ("x");--> statement-breakpoint\nSELECT 1;\n')
    before = f.read_text()
    out = CliRunner().invoke(cli, ["lint", "--fix", str(f)], terminal_width=400)
    assert out.exit_code == 1, out.output
    assert f"not rewritten: {f} is a drizzle migration" in out.output
    assert f.read_text() == before
