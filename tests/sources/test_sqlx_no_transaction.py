"""sqlx runs a migration whose file starts with `-- no-transaction` outside a
transaction (sqlx-core migrate/source.rs: `sql.starts_with("-- no-transaction")`, the
file's first bytes): CONCURRENTLY there is not the deploy-time failure PW130 warns of.
Before, the line was read as a comment and every such file was said to fail."""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.sources.updown import split_halves

INDEX = "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);\n"


def _codes(path: Path) -> set[str]:
    _, result = commands.lint([path])
    return {f.code for f in result.findings}


def test_a_no_transaction_header_runs_the_file_outside_a_transaction(tmp_path: Path) -> None:
    header = tmp_path / "20240101000000_users_email.up.sql"
    header.write_text(f"-- no-transaction\n{INDEX}")
    assert split_halves(header.read_text()).no_transaction
    assert "PW130" not in _codes(header)
    plain = tmp_path / "20240101000001_users_name.sql"
    plain.write_text(f"-- no-transaction\n{INDEX}".replace("email", "name"))
    assert "PW130" not in _codes(plain)


def test_the_header_counts_only_as_the_first_bytes_of_the_file(tmp_path: Path) -> None:
    # sqlx reads nothing else: after a blank line or another comment, the file runs in
    # its transaction and CONCURRENTLY fails there.
    for i, text in enumerate(
        (f"\n-- no-transaction\n{INDEX}", f"-- users\n-- no-transaction\n{INDEX}")
    ):
        late = tmp_path / f"2024010100000{i}_late.sql"
        late.write_text(text)
        assert not split_halves(text).no_transaction
        assert "PW130" in _codes(late)


def test_a_no_transaction_file_of_several_statements_is_one_query(tmp_path: Path) -> None:
    """sqlx sends the file with conn.execute(sql), no arguments: one simple query, so
    several statements run as one implicit transaction and CONCURRENTLY fails there (the
    server says so for `SET ...; CREATE INDEX CONCURRENTLY ...` sent as one query)."""
    two = tmp_path / "20240101000002_two.up.sql"
    two.write_text(f"-- no-transaction\nSET lock_timeout = '2s';\n{INDEX}")
    _, result = commands.lint([two])
    (pw130,) = [f for f in result.findings if f.code == "PW130"]
    assert pw130.severity.value == "error"
    assert "sends as one query" in pw130.message
