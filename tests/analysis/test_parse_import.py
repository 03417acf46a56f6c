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


THREADS = """
import threading
import pgwarden.analysis.parse
import pglast

start, errors = threading.Barrier(16), []

def use(i):
    start.wait()
    try:
        if i % 2:
            from pglast.enums import AlterTableType
            AlterTableType.AT_AddColumn
        else:
            pglast.ast.AlterTableStmt
        pglast.parse_sql("SELECT 1")
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=use, args=(i,)) for i in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors)
"""


def test_threads_first_using_them_together_all_see_them_whole() -> None:
    """16 threads read the deferred modules at once: one runs their code, the others wait
    for it, and none sees a half-run module (pglast.ast finishes its classes' slots last)."""
    for _ in range(3):
        r = subprocess.run(
            [sys.executable, "-c", THREADS], capture_output=True, text=True, timeout=60, check=False
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "[]", r.stdout
