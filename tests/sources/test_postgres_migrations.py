"""postgres-migrations (the npm package, as supabase/storage uses it) runs a file that
holds `-- postgres-migrations disable-transaction` outside a transaction: CONCURRENTLY
there is not the deploy-time failure PW130 warns of. Before, only goose's and dbmate's
markers were read, and such a file was said to fail."""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.sources.updown import split_halves

INDEX = "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);\n"


def _codes(path: Path) -> set[str]:
    _, result = commands.lint([path])
    return {f.code for f in result.findings}


def test_disable_transaction_runs_the_file_outside_a_transaction(tmp_path: Path) -> None:
    alone = tmp_path / "0042-users-email-index.sql"
    alone.write_text(f"-- postgres-migrations disable-transaction\n\n{INDEX}")
    assert split_halves(alone.read_text()).no_transaction
    assert "PW130" not in _codes(alone)
    wrapped = tmp_path / "0043-users-email-index.sql"
    wrapped.write_text(f"-- the runner wraps this one in a transaction\n{INDEX}")
    assert not split_halves(wrapped.read_text()).no_transaction
    assert "PW130" in _codes(wrapped)
