"""Atlas's `-- atlas:txmode none` file directive: Atlas runs that file without a
transaction, each statement on its own. Before, pgwarden assumed one transaction per file:
on hatchet's migrations, PW121 errors for locks no transaction holds and PW130 warnings
that the CREATE INDEX CONCURRENTLY fails at deploy time."""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.sources.updown import split_halves

BODY = (
    'ALTER TABLE "StepRateLimit" ADD COLUMN "units" int;\n'
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_run" ON "WorkflowRun" ("units");\n'
)


def test_the_directive_in_the_file_header() -> None:
    assert split_halves("-- atlas:txmode none\n\n" + BODY).no_transaction
    assert split_halves("-- Create index\n--atlas:txmode none\n\n" + BODY).no_transaction
    # Atlas reads directives only from opening comments a blank line ends
    assert not split_halves("-- atlas:txmode none\n" + BODY).no_transaction
    assert not split_halves("-- atlas:txmode file\n\n" + BODY).no_transaction
    assert not split_halves(BODY + "-- atlas:txmode none\n").no_transaction  # not a header


def test_lint_reads_the_file_as_atlas_runs_it(tmp_path: Path) -> None:
    f = tmp_path / "20240924172443_v0.46.0.sql"
    f.write_text("-- atlas:txmode none\n\n" + BODY)
    _, result = commands.lint([f])
    assert not [x for x in result.findings if x.code in ("PW121", "PW130")]
    f.write_text(BODY)  # Atlas's default: the file in one transaction
    _, result = commands.lint([f])
    assert "PW130" in {x.code for x in result.findings}


def test_fix_keeps_the_blank_line_that_makes_the_directive(tmp_path: Path) -> None:
    """--fix writes its header after the file's opening comments; the blank line that ends
    them stays, or Atlas would read no directive and run the fixed file in a transaction,
    where its CONCURRENTLY statements fail (a new user's check)."""
    from pgwarden.lint.fix import fix_plan, write_fixes

    f = tmp_path / "20240106120000_nick2.sql"
    f.write_text(
        '-- atlas:txmode none\n\nALTER TABLE "users" ADD COLUMN "nick2" text;\n'
        'CREATE INDEX "users_nick2_idx" ON "users" ("nick2");\n'
    )
    plan, result = commands.lint([f])
    write_fixes(fix_plan(plan, result))
    fixed = f.read_text()
    assert fixed.startswith("-- atlas:txmode none\n\n-- Rewritten by")
    assert "CONCURRENTLY" in fixed and split_halves(fixed).no_transaction
