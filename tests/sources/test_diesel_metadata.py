"""diesel runs a migration's up.sql in a transaction unless the metadata.toml beside it
says `run_in_transaction = false`; then it sends the file as one query (batch_execute):
a lone CREATE INDEX CONCURRENTLY runs, one beside another statement fails (Lemmy's
layout, from the real-project sweep: both were a PW130 warning that assumed a runner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden import commands
from pgwarden.sources.updown import _run_in_transaction

INDEX = "CREATE INDEX CONCURRENTLY idx_post_published ON post (published);\n"
OTHER = "ALTER TABLE post ADD COLUMN note text;\n"


def _up(tmp_path: Path, sql: str, metadata: str | None) -> Path:
    folder = tmp_path / "migrations" / "2024-12-05-000000_post_published_index"
    folder.mkdir(parents=True, exist_ok=True)
    if metadata is not None:
        (folder / "metadata.toml").write_text(metadata)
    up = folder / "up.sql"
    up.write_text(sql)
    _run_in_transaction.cache_clear()
    return up


def _pw130(path: Path) -> list[tuple[str, str]]:
    _, result = commands.lint([path])
    return [(f.severity.value, f.help) for f in result.findings if f.code == "PW130"]


@pytest.mark.parametrize("metadata", [None, "run_in_transaction = true\n"])
def test_diesel_wraps_up_sql_for_sure(tmp_path: Path, metadata: str | None) -> None:
    ((severity, help_),) = _pw130(_up(tmp_path, INDEX, metadata))
    assert severity == "error"
    assert "run_in_transaction = false in the metadata.toml" in help_


def test_run_in_transaction_false_sends_the_file_as_one_query(tmp_path: Path) -> None:
    up = _up(tmp_path, INDEX, "run_in_transaction = false\n")
    assert _pw130(up) == []
    up = _up(tmp_path, OTHER + INDEX, "run_in_transaction = false\n")
    assert [s for s, _ in _pw130(up)] == ["error"]
