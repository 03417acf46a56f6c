"""Importing the parser module leaves pglast's enums and AST classes unloaded until used
(they were a fifth of `pgwarden lint`'s start-up), and using them still works."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
import pgwarden.analysis.parse as parse
enums, ast = sys.modules["pglast.enums"], sys.modules["pglast.ast"]
print("AlterTableType" in vars(enums), "AlterTableStmt" in vars(ast))
print(parse.parse("ALTER TABLE t ADD COLUMN c int;")[0].kind)
print(parse.check_expressions("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)"))
from pglast.enums import AlterTableType
import pglast
print(AlterTableType.AT_AddColumn.name, pglast.ast.AlterTableStmt.__name__)
"""


def test_pglast_nodes_load_on_first_use() -> None:
    r = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "False False",
        "AlterTableStmt",
        "['a > 0']",
        "AT_AddColumn AlterTableStmt",
    ]
