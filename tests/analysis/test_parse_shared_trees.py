"""Repeated statement texts share one parse tree (lint memory on big files)."""

from __future__ import annotations

from pgwarden.analysis.parse import parse


def test_repeated_statements_share_one_tree_and_keep_their_places() -> None:
    text = "SELECT 1;\nSELECT 1;\nSELECT 2;\nSELECT 1;\n"
    stmts = parse(text)
    assert [s.start for s in stmts] == [0, 10, 20, 30]
    assert stmts[0].tree is stmts[1].tree is stmts[3].tree
    assert stmts[2].tree is not stmts[0].tree
    assert stmts[2].tree != stmts[0].tree
