"""A session `SET lock_timeout` in one migration file does not cover the next file: each
file is one migration that may run alone (in a later deploy, on a new connection), as
pgwarden already takes an earlier file's tables to exist rather than be new. Before, a
folder's V1 that set lock_timeout silenced PW120 for every later file, so a new V2 with
no timeout was reported only when linted alone."""

from __future__ import annotations

import json
from pathlib import Path

from pgwarden.commands import lint


def _pw120(paths: list[Path]) -> list[tuple[str, int]]:
    _, result = lint(paths)
    return [
        (Path(f.location.path).name, f.location.line) for f in result.findings if f.code == "PW120"
    ]


def test_a_session_lock_timeout_covers_its_own_file_only(tmp_path: Path) -> None:
    (tmp_path / "V1__note.sql").write_text(
        "SET lock_timeout = '1s';\nALTER TABLE invoices ADD COLUMN note text;\n"
    )
    (tmp_path / "V2__memo.sql").write_text("ALTER TABLE invoices ADD COLUMN memo text;\n")
    assert _pw120([tmp_path]) == [("V2__memo.sql", 1)]
    assert _pw120([tmp_path / "V2__memo.sql"]) == [("V2__memo.sql", 1)]  # as alone


def test_within_a_file_the_setting_still_holds(tmp_path: Path) -> None:
    (tmp_path / "V1__two.sql").write_text(
        "SET lock_timeout = '1s';\nALTER TABLE invoices ADD COLUMN note text;\n"
        "ALTER TABLE invoices ADD COLUMN memo text;\n"
    )
    assert _pw120([tmp_path]) == []


ALEMBIC = Path(__file__).resolve().parents[1] / "contrib" / "alembic_project"
REVISION = '''"""memo

Revision ID: {rev}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("{col}", sa.Text()))


def downgrade() -> None:
    pass
'''


def test_an_alembic_env_py_setting_covers_every_revision(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    site = tmp_path / "proj"
    shutil.copytree(ALEMBIC, site)
    env = (site / "env.py").read_text()
    run = "        context.run_migrations()"
    assert env.count(run) >= 1, env
    (site / "env.py").write_text(
        env.replace(run, "        context.execute(\"SET lock_timeout = '1s'\")\n" + run)
    )
    for rev, down, col in (("0006", "0005", "memo"), ("0007", "0006", "memo2")):
        (site / f"versions/{rev}_{col}.py").write_text(REVISION.format(rev=rev, down=down, col=col))
    lint = ["lint", "--alembic", "alembic.ini", "--range", "0005:head", "--format", "json"]
    r = subprocess.run(
        [sys.executable, "-m", "pgwarden", *lint],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "PW120" not in r.stdout, r.stdout + r.stderr
    assert json.loads(r.stdout)["summary"]["files"] == 2, r.stdout  # both revisions linted
