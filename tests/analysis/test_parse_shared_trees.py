"""Repeated statement texts share one parse tree (lint memory on big files)."""

from __future__ import annotations

from pathlib import Path

from pgwarden.analysis.parse import parse


def test_repeated_statements_share_one_tree_and_keep_their_places() -> None:
    text = "SELECT 1;\nSELECT 1;\nSELECT 2;\nSELECT 1;\n"
    stmts = parse(text)
    assert [s.start for s in stmts] == [0, 10, 20, 30]
    assert stmts[0].tree is stmts[1].tree is stmts[3].tree
    assert stmts[2].tree is not stmts[0].tree
    assert stmts[2].tree != stmts[0].tree


def test_a_statement_repeated_across_files_is_parsed_once(tmp_path: Path) -> None:
    from pgwarden.sources.sql_files import read_sources

    for name, body in (
        ("001.sql", "SET lock_timeout = '5s';\nSELECT 1;\n"),
        ("002.sql", "SELECT 1;\n"),
    ):
        (tmp_path / name).write_text(body)
    (_, first), (_, second) = read_sources([tmp_path])
    assert first[1].tree is second[0].tree  # one tree for the files of one run
    assert (first[1].start, second[0].start) == (25, 0)  # each keeps its own place
    assert parse("SELECT 1;")[0].tree is not first[1].tree  # nothing kept between runs
