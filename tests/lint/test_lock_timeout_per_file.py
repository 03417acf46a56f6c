"""A session `SET lock_timeout` in one migration file does not cover the next file: each
file is one migration that may run alone (in a later deploy, on a new connection), as
pgwarden already takes an earlier file's tables to exist rather than be new. Before, a
folder's V1 that set lock_timeout silenced PW120 for every later file, so a new V2 with
no timeout was reported only when linted alone."""

from __future__ import annotations

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
