"""A migration saved as UTF-16 (Windows PowerShell 5's `>` and `Out-File` write it) is
refused as UTF-16 with how to convert it, exit 2. Before, it was called a 'binary file
(contains NUL bytes), not SQL', which sent the user looking for the wrong problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.errors import InputError
from pgwarden.sources.sql_files import read_sql_file

SQL = "ALTER TABLE invoices ADD COLUMN note text;\n"


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe" + SQL.encode("utf-16-le"),
        b"\xfe\xff" + SQL.encode("utf-16-be"),
        SQL.encode("utf-16-le"),  # no byte order mark
    ],
    ids=["le-bom", "be-bom", "le-no-bom"],
)
def test_utf16_file_is_named_as_utf16(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "V2__note.sql"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        read_sql_file(path)
    assert "UTF-16" in err.value.message and "binary" not in err.value.message
    assert err.value.hint is not None and "utf-8" in err.value.hint.lower()


def test_a_binary_file_is_still_binary(tmp_path: Path) -> None:
    path = tmp_path / "V3__blob.sql"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    with pytest.raises(InputError, match="binary file"):
        read_sql_file(path)
