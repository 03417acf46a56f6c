from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgwarden.analysis.parse import parse
from pgwarden.errors import InputError, SqlParseError
from pgwarden.sources.sql_files import MAX_FILE_BYTES, collect_sql_files, read_sql_file


def test_folders_expand_to_sql_files_in_name_order(tmp_path: Path):
    for name in ("010_b.sql", "002_a.sql", "notes.txt", "sub/001_c.sql"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("SELECT 1;")
    got = [p.relative_to(tmp_path).as_posix() for p in collect_sql_files([tmp_path])]
    assert got == ["002_a.sql", "010_b.sql", "sub/001_c.sql"]


def test_missing_path(tmp_path: Path):
    with pytest.raises(InputError, match="no such file or directory"):
        collect_sql_files([tmp_path / "nope.sql"])


def test_folder_without_sql(tmp_path: Path):
    with pytest.raises(InputError, match=r"holds no \.sql files"):
        collect_sql_files([tmp_path])


def test_binary_file(tmp_path: Path):
    f = tmp_path / "x.sql"
    f.write_bytes(b"\x00\x01\x02SELECT")
    with pytest.raises(InputError, match="binary file"):
        read_sql_file(f)


def test_non_utf8_names_line(tmp_path: Path):
    f = tmp_path / "x.sql"
    f.write_bytes(b"SELECT 1;\nSELECT '\xe9t\xe9';\n")
    with pytest.raises(InputError, match=r"x\.sql:2: not valid UTF-8") as exc:
        read_sql_file(f)
    assert exc.value.hint and "iconv" in exc.value.hint


def test_huge_file_refused_without_reading(tmp_path: Path):
    f = tmp_path / "big.sql"
    with f.open("wb") as fh:  # sparse: 100 MB without writing them
        fh.truncate(100 * 1024 * 1024)
    assert f.stat().st_size > MAX_FILE_BYTES
    with pytest.raises(InputError, match="larger than"):
        read_sql_file(f)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file; covered by the CLI test")
def test_unreadable_file(tmp_path: Path):
    f = tmp_path / "x.sql"
    f.write_text("SELECT 1;")
    f.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        read_sql_file(f)


def test_bom_is_dropped(tmp_path: Path):
    f = tmp_path / "x.sql"
    f.write_bytes(b"\xef\xbb\xbfSELECT 1;")
    assert read_sql_file(f) == "SELECT 1;"


@pytest.mark.parametrize(
    ("sql", "line", "col", "message"),
    [
        ("SELECT 1;\nSELEC 2;", 2, 1, 'syntax error at or near "SELEC"'),
        ("SELECT 'é';\n  ALTER TABLE t ADD COLUMN;", 2, 27, 'syntax error at or near ";"'),
        ("SELECT (1", 1, 10, "syntax error at end of input"),
    ],
)
def test_parse_error_has_file_line_column(sql: str, line: int, col: int, message: str):
    with pytest.raises(SqlParseError) as exc:
        parse(sql, "m.sql")
    assert exc.value.location.line == line
    assert exc.value.location.column == col
    assert exc.value.server_message == message
    assert str(exc.value).startswith(f"m.sql:{line}:{col}: syntax error: {message}")


def test_statement_offsets_are_characters():
    text = "SELECT 'ä';\n-- comment\nALTER TABLE ö ADD COLUMN x int;"
    stmts = parse(text)
    assert [s.kind for s in stmts] == ["SelectStmt", "AlterTableStmt"]
    assert text[stmts[1].start :].startswith("ALTER TABLE ö")


def test_a_folder_runs_in_version_order(tmp_path: Path) -> None:
    from pgwarden.sources.sql_files import collect_sql_files

    names = ["V10__t.sql", "V2__b.sql", "V1__a.sql", "R__views.sql", "V1_1__fix.sql"]
    for name in names:
        (tmp_path / name).write_text("SELECT 1;\n")
    (tmp_path / "sub").mkdir()
    for name in ["0010_c.sql", "0002_b.sql"]:
        (tmp_path / "sub" / name).write_text("SELECT 1;\n")
    got = [p.relative_to(tmp_path).as_posix() for p in collect_sql_files([tmp_path])]
    assert got == [
        "V1__a.sql",
        "V1_1__fix.sql",
        "V2__b.sql",
        "V10__t.sql",  # was before V2 (sorted by name)
        "sub/0002_b.sql",
        "sub/0010_c.sql",
        "R__views.sql",  # Flyway's repeatable files after the versioned ones
    ]


def _tree(root: Path, names: list[str]) -> list[str]:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("SELECT 1;\n")
    return [p.relative_to(root).as_posix() for p in collect_sql_files([root])]


def test_flyway_versions_order_files_across_sub_folders(tmp_path: Path) -> None:
    """Flyway sorts versioned migrations by version whatever folder holds them, then its
    repeatable ones by description. Before, a folder's own files came first: V10 before
    sub/V2, and R__ files in path order."""
    got = _tree(
        tmp_path,
        [
            "V1__accounts.sql",
            "V10__ledger.sql",
            "sub/V2__entries.sql",
            "sub/deeper/V3_1__fix.sql",
            "other/V11__index.sql",
            "R__z_report.sql",
            "sub/R__a_views.sql",
        ],
    )
    assert got == [
        "V1__accounts.sql",
        "sub/V2__entries.sql",
        "sub/deeper/V3_1__fix.sql",
        "V10__ledger.sql",
        "other/V11__index.sql",
        "sub/R__a_views.sql",
        "R__z_report.sql",
    ]


def test_plain_names_keep_folder_order(tmp_path: Path) -> None:
    """Names without a Flyway version: each folder's files in number order, a sub-folder
    where its name sorts (as before)."""
    got = _tree(tmp_path, ["010_b.sql", "002_a.sql", "sub/001_c.sql", "2024/001_d.sql"])
    assert got == ["002_a.sql", "010_b.sql", "2024/001_d.sql", "sub/001_c.sql"]


def test_an_upper_case_extension_is_a_sql_file(tmp_path: Path) -> None:
    """`V3__x.SQL` is linted in its place; before, it was skipped without a word."""
    got = _tree(tmp_path, ["V1__a.sql", "V3__x.SQL", "V10__b.sql", "sub/V2__y.Sql", "notes.txt"])
    assert got == ["V1__a.sql", "sub/V2__y.Sql", "V3__x.SQL", "V10__b.sql"]
    only = tmp_path / "only"
    assert _tree(only, ["V1__A.SQL"]) == ["V1__A.SQL"]  # not "folder holds no .sql files"


def test_rehearse_history_takes_upper_case_extensions(tmp_path: Path) -> None:
    """rehearse's schema history (the files before the rehearsed one) reads `.SQL` too."""
    from pgwarden.rehearse.schema import earlier_migrations

    _tree(tmp_path, ["V1__a.sql", "V2__b.SQL", "V3__plan.sql"])
    history = earlier_migrations([tmp_path / "V3__plan.sql"])
    assert [p.name for p in history] == ["V1__a.sql", "V2__b.SQL"]


def test_two_files_of_one_flyway_version_are_refused_as_flyway_refuses_them(
    tmp_path: Path,
) -> None:
    """Flyway stops with "Found more than one migration with version 2" (1.0 and 1 are one
    version to it); pgwarden names both files instead of picking an order by path."""
    with pytest.raises(InputError) as info:
        _tree(tmp_path, ["V1__a.sql", "V2__b.sql", "sub/V2__c.sql", "V3__d.sql"])
    message = str(info.value)
    assert "version 2" in message and "V2__b.sql" in message and "sub/V2__c.sql" in message
    assert info.value.hint is not None and "rename" in info.value.hint
    with pytest.raises(InputError, match=r"version 1: V1__a\.sql, V1\.0__b\.sql"):
        _tree(tmp_path / "x", ["V1__a.sql", "V1.0__b.sql"])
    # different versions, and repeatable files with one description per folder, pass
    assert _tree(tmp_path / "y", ["V1__a.sql", "V1_1__b.sql", "V1.2__c.sql"]) == [
        "V1__a.sql",
        "V1_1__b.sql",
        "V1.2__c.sql",
    ]
