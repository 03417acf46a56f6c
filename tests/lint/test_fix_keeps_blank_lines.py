"""--fix keeps the file's opening comments as written, the blank lines between them too
(synapse's files open with a licence block, a blank line, then what the migration does:
the fix joined them), and a fixed file fixed again is unchanged."""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.lint.fix import fix_plan, write_fixes


def _fix(path: Path) -> int:
    plan, result = commands.lint([path])
    fixes = fix_plan(plan, result)
    write_fixes(fixes)
    return len(fixes)


def test_opening_comments_keep_their_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "56_retry_interval.sql"
    head = "/* Copyright\n * Licensed under the Apache License\n */\n\n-- Store large intervals.\n"
    path.write_text(
        head + "\nALTER TABLE destinations ALTER retry_interval SET DATA TYPE BIGINT;\n"
    )
    assert _fix(path) == 1
    assert path.read_text().startswith(head + "\n-- Rewritten by `pgwarden lint --fix`")
    once = path.read_text()
    assert _fix(path) == 0 and path.read_text() == once
