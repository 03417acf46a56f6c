"""Statements inside DO blocks and CALLed procedures are linted like top-level ones (#14.1).

What each statement locks on a live server is checked in tests/analysis/test_plpgsql_live.py
and the DO cases of tests/analysis/lock_cases.py; here: findings, places and wording.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from pgwarden.analysis.effects import LockMode
from pgwarden.commands import lint
from pgwarden.findings import Finding
from pgwarden.lint.engine import lint_plan
from pgwarden.location import SourceLocation
from pgwarden.plan import Plan
from pgwarden.report.lint_text import render_lint
from pgwarden.settings import Settings
from pgwarden.sources.alembic import read_alembic_sources

SUPABASE = """\
-- add status and a unique number, Supabase style
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'invoices_number_key') THEN
    ALTER TABLE invoices ADD CONSTRAINT invoices_number_key UNIQUE (number);
  END IF;
  ALTER TABLE invoices ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();
  CREATE INDEX invoices_status_idx ON invoices (status);
  UPDATE invoices SET status = 'open';
END
$$;
"""


def _lint(tmp_path: Path, sql: str, *, wrap: bool = True) -> tuple[Plan, list[Finding]]:
    path = tmp_path / "0001_migration.sql"
    path.write_text(sql)
    plan, result = lint([path], settings=Settings(file_transaction=wrap))
    return plan, list(result.findings)


def _at(findings: list[Finding], code: str) -> list[tuple[int, int]]:
    return [(f.location.line, f.location.column) for f in findings if f.code == code]


def test_do_block_statements_are_linted_at_their_lines(tmp_path: Path) -> None:
    _, findings = _lint(tmp_path, SUPABASE)
    assert _at(findings, "PW105") == [(5, 5)]  # UNIQUE builds its index under ACCESS EXCLUSIVE
    assert _at(findings, "PW104") == [(7, 3)]  # volatile default: the table is rewritten
    assert _at(findings, "PW101") == [(8, 3)]  # CREATE INDEX without CONCURRENTLY
    assert _at(findings, "PW140") == [(9, 3)]  # whole-table UPDATE
    assert (8, 3) in _at(findings, "PW121")  # the index build waits under the earlier locks
    assert all(f.step == 0 for f in findings)  # all belong to the one DO statement
    unique = next(f for f in findings if f.code == "PW105")
    assert "in the DO block at line 2, which runs as one transaction" in unique.message
    assert "runs only when `NOT EXISTS (SELECT 1 FROM pg_constraint" in unique.message
    index = next(f for f in findings if f.code == "PW101")
    assert "runs only" not in index.message
    # a fix replaces a whole statement: there is none to offer for one inside a body
    assert all(f.fix is None for f in findings)


def test_a_body_that_commits_is_not_called_one_transaction(tmp_path: Path) -> None:
    """A batched backfill in a DO block COMMITs per batch (run outside a transaction)."""
    body = (
        "DO $$\nDECLARE n bigint;\nBEGIN\n  LOOP\n"
        "    UPDATE orders SET v2 = v WHERE id IN "
        "(SELECT id FROM orders WHERE v2 IS NULL LIMIT 5000);\n"
        "    GET DIAGNOSTICS n = ROW_COUNT;\n    EXIT WHEN n = 0;\n    COMMIT;\n"
        "  END LOOP;\nEND\n$$;\n"
    )
    _, findings = _lint(tmp_path, body, wrap=False)
    (note,) = [f for f in findings if f.code == "PW142"]
    assert "in the DO block at line 1, which commits as it goes" in note.message
    assert "one transaction" not in note.message


def test_do_step_runs_as_one_statement_with_the_union_of_effects(tmp_path: Path) -> None:
    plan, _ = _lint(tmp_path, SUPABASE)
    (step,) = plan.steps  # apply and rehearse run the DO as one statement
    assert step.kind == "DoStmt"
    assert [s.kind for s in step.inner] == [
        "SelectStmt",  # the IF's condition reads pg_constraint
        "AlterTableStmt",
        "AlterTableStmt",
        "IndexStmt",
        "UpdateStmt",
    ]
    assert {s.transaction for s in step.inner} == {step.transaction}
    assert step.effects.strongest()["invoices"] is LockMode.ACCESS_EXCLUSIVE
    assert step.effects.rewrites == ("invoices",)
    assert "invoices_status_idx" in step.effects.creates


def test_autocommit_do_block_is_one_transaction(tmp_path: Path) -> None:
    sql = """DO $$ BEGIN
  ALTER TABLE invoices ADD COLUMN note text;
  CREATE INDEX invoices_note_idx ON invoices (note);
END $$;
"""
    plan, findings = _lint(tmp_path, sql, wrap=False)
    assert plan.steps[0].transaction is None
    assert _at(findings, "PW121") == [(3, 3)]


def test_dynamic_execute_is_reported_not_passed(tmp_path: Path) -> None:
    sql = """DO $$
DECLARE t text := 'invoices';
BEGIN
  EXECUTE format('ALTER TABLE %I ADD COLUMN c int', t);
  EXECUTE 'ALTER TABLE invoices ALTER COLUMN amount TYPE bigint';
END
$$;
"""
    _, findings = _lint(tmp_path, sql)
    (dyn,) = [f for f in findings if f.code == "PW133"]
    assert dyn.severity.value == "warning"
    assert "line 4, column 11" in dyn.message and "built at run time" in dyn.message
    assert _at(findings, "PW104") == [(5, 11)]  # a constant string is analysed


def test_body_the_plpgsql_parser_rejects_is_reported(tmp_path: Path) -> None:
    _, findings = _lint(tmp_path, "DO $$ BEGIN ALTER TABLE t ADD COLUMN c int; END IF; END $$;\n")
    (f,) = [f for f in findings if f.code == "PW133"]
    assert "PL/pgSQL parser rejected it" in f.message


def test_concurrently_inside_do_block_is_an_error_everywhere(tmp_path: Path) -> None:
    sql = "DO $$ BEGIN\n  CREATE INDEX CONCURRENTLY i ON invoices (a);\nEND $$;\n"
    for wrap in (True, False):
        _, findings = _lint(tmp_path, sql, wrap=wrap)
        (f,) = [f for f in findings if f.code == "PW130"]
        assert f.severity.value == "error"
        assert (f.location.line, f.location.column) == (2, 3)
        assert "cannot be executed from a function" in f.message


def test_called_procedure_body_is_linted_where_it_is_written(tmp_path: Path) -> None:
    sql = """CREATE PROCEDURE add_index() LANGUAGE plpgsql AS $$
BEGIN
  CREATE INDEX invoices_a_idx ON invoices (a);
END
$$;
CALL add_index();
"""
    plan, findings = _lint(tmp_path, sql)
    assert _at(findings, "PW101") == [(3, 3)]
    (f,) = [f for f in findings if f.code == "PW101"]
    assert f.step == 1  # the CALL runs it
    assert "procedure add_index (created at line 1), run by the CALL at line 6" in f.message
    assert plan.steps[1].effects.strongest() == {"invoices": LockMode.SHARE}
    # without the CREATE PROCEDURE in the plan, the body is not known
    plan, findings = _lint(tmp_path, "CALL add_index();\n")
    assert not plan.steps[0].inner and not findings


def test_ignore_comment_before_the_do_block_covers_its_statements(tmp_path: Path) -> None:
    sql = (
        "-- pgwarden: ignore PW101 settings has 40 rows\n"
        "DO $$ BEGIN CREATE INDEX s_idx ON settings (k); END $$;\n"
    )
    _, findings = _lint(tmp_path, sql)
    assert not _at(findings, "PW101")


def test_drop_inside_do_block_makes_the_step_destructive(tmp_path: Path) -> None:
    plan, findings = _lint(tmp_path, "DO $$ BEGIN DROP TABLE legacy; END $$;\n")
    assert plan.steps[0].destructive  # apply asks for a verified backup
    assert _at(findings, "PW201") == [(1, 13)]


def test_sub_steps_follow_their_step_when_a_source_renumbers_it(tmp_path: Path) -> None:
    """Django and Alembic rebuild steps with new indexes and transaction ids."""
    plan, _ = _lint(tmp_path, "SELECT 1;\n" + SUPABASE)
    moved = Plan(
        tuple(replace(s, index=s.index + 10, transaction=7) for s in plan.steps),
        plan.sources,
        texts=plan.texts,
    )
    findings = lint_plan(moved).findings
    assert {f.step for f in findings if f.code in ("PW101", "PW105")} == {11}
    inner = [s for s in moved.lint_steps() if s.note]
    assert {(s.index, s.transaction) for s in inner} == {(11, 7)}


def test_columns_added_in_a_do_block_feed_later_statements(tmp_path: Path) -> None:
    """#14.3's in-plan catalog sees statements inside bodies: cidr -> inet and varchar
    widening after an ADD in (or before) the block do not rewrite; inet -> cidr does."""
    sql = """DO $$ BEGIN
  ALTER TABLE t ADD COLUMN ip cidr;
  ALTER TABLE t ALTER COLUMN ip TYPE inet;
END $$;
ALTER TABLE t ALTER COLUMN ip TYPE cidr;
DO $$ BEGIN ALTER TABLE t ADD COLUMN v varchar(10); END $$;
ALTER TABLE t ALTER COLUMN v TYPE varchar(20);
"""
    plan, findings = _lint(tmp_path, sql)
    assert _at(findings, "PW104") == [(5, 1)]
    assert plan.steps[0].effects.rewrites == ()


def test_text_output_shows_the_lines_of_a_finding_deep_in_a_block(tmp_path: Path) -> None:
    body = "".join(f"  PERFORM {i};\n" for i in range(10))
    sql = f"DO $$\nBEGIN\n{body}  CREATE INDEX i ON invoices (a);\nEND\n$$;\n"
    plan, result = lint([_write(tmp_path, sql)])
    buf = io.StringIO()
    render_lint(Console(file=buf, width=200, color_system=None), plan, result)
    text = buf.getvalue()
    assert "0001_migration.sql:13:3: error PW101" in text
    assert "  13   CREATE INDEX i ON invoices (a);" in text
    assert "   1 DO $$" not in text  # not the head of the block


def _write(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "0001_migration.sql"
    path.write_text(sql)
    return path


def test_sub_steps_of_a_moved_step_are_placed_at_it(tmp_path: Path) -> None:
    """Django places each step at its operation's line in the migration file; a line
    inside the rendered SQL means nothing there, so the finding names the statement."""
    plan, _ = _lint(tmp_path, SUPABASE)
    op = SourceLocation("app/migrations/0002_status.py", 14, 9)
    moved = Plan((replace(plan.steps[0], location=op),), plan.sources, texts=plan.texts)
    (f,) = [f for f in lint_plan(moved).findings if f.code == "PW105"]
    assert f.location == op
    assert "(`ALTER TABLE invoices ADD CONSTRAINT invoices_number_key UNI…` in the PL/pgSQL " in (
        f.message
    )
    assert "runs only when `NOT EXISTS" in f.message


def test_alembic_op_execute_do_block_points_into_the_revision_file(tmp_path: Path) -> None:
    project = tmp_path / "alembic_project"
    shutil.copytree(Path(__file__).parents[1] / "contrib" / "alembic_project", project)
    (project / "versions" / "0006_do_block.py").write_text(ALEMBIC_DO)
    src = read_alembic_sources(project / "alembic.ini", revision_range="0005:head")
    _, result = lint([], sources=src)
    revision = project / "versions" / "0006_do_block.py"
    lines = revision.read_text().splitlines()
    where = {f.code: (f.location.path, f.location.line) for f in result.findings}
    assert where["PW105"] == (
        str(revision),
        1 + next(i for i, t in enumerate(lines) if "ADD CONSTRAINT inv_x" in t),
    )
    assert where["PW101"] == (
        str(revision),
        1 + next(i for i, t in enumerate(lines) if "CREATE INDEX invoices_y_idx" in t),
    )


ALEMBIC_DO = '''"""do block

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'inv_x') THEN
            ALTER TABLE invoices ADD CONSTRAINT inv_x UNIQUE (account_id);
          END IF;
          CREATE INDEX invoices_y_idx ON invoices (account_id);
        END
        $$;
        """
    )


def downgrade() -> None:
    pass
'''
