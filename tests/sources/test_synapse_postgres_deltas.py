"""A folder's `*.sql.postgres` files are linted with its `.sql` files, in name order:
Synapse's schema deltas keep the statements it runs only on PostgreSQL there (and
`*.sql.sqlite` the SQLite ones, not linted). Before, a folder walk took only `.sql`, so
the PostgreSQL-only half of a delta folder (`ALTER TABLE ... SET UNLOGGED`, a table
rewrite) was passed over: lint reported the other files and said nothing of it."""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.sources.sql_files import collect_sql_files


def test_postgres_only_deltas_are_linted_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "01_tasks.sql").write_text("CREATE TABLE IF NOT EXISTS tasks (id text);\n")
    (tmp_path / "02_locks_unlogged.sql.postgres").write_text(
        "ALTER TABLE worker_locks SET UNLOGGED;\n"
    )
    (tmp_path / "02_locks_unlogged.sql.sqlite").write_text("SELECT 1;\n")
    (tmp_path / "03_users.sql").write_text("ALTER TABLE users ADD COLUMN locked boolean;\n")
    names = [p.name for p in collect_sql_files([tmp_path])]
    assert names == ["01_tasks.sql", "02_locks_unlogged.sql.postgres", "03_users.sql"]
    _, result = commands.lint([tmp_path])
    assert ("PW104", "02_locks_unlogged.sql.postgres") in {
        (f.code, Path(f.location.path).name) for f in result.findings
    }
