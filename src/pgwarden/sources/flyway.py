"""Which Flyway migrations Flyway runs outside a transaction.

Flyway's PostgreSQL parser marks a statement non-transactional when it is `CREATE` or
`DROP [UNIQUE] INDEX CONCURRENTLY`, `CREATE`/`DROP DATABASE`, `TABLESPACE` or
`SUBSCRIPTION`, `ALTER SYSTEM`, `REINDEX SCHEMA|DATABASE|SYSTEM`, `VACUUM` or `DISCARD
ALL` (and `ALTER TYPE ... ADD VALUE` before PostgreSQL 12). A migration made only of such
statements runs outside any transaction, each statement on its own. One that mixes them
with others is refused (`Detected both transactional and non-transactional statements
within the same migration (even though mixed is false)`) unless `mixed = true`, which runs
the whole migration outside a transaction. A script config file next to the migration
(`V3__x.sql.conf`, Flyway 6.1 on) with `executeInTransaction=false` runs it outside one
whatever its statements.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path, PurePath
from typing import cast

from pgwarden.analysis.nodes import Node

__all__ = ["is_flyway_file", "non_transactional", "script_config_no_transaction"]

_NAME = re.compile(r"(?:V\d+(?:[._]\d+)*|R)__.+\.sql$")
_ALWAYS = frozenset(
    {
        "CreatedbStmt",
        "DropdbStmt",
        "CreateTableSpaceStmt",
        "DropTableSpaceStmt",
        "CreateSubscriptionStmt",
        "DropSubscriptionStmt",
        "AlterSystemStmt",
    }
)
_REINDEX_WIDE = frozenset(
    {"REINDEX_OBJECT_SCHEMA", "REINDEX_OBJECT_DATABASE", "REINDEX_OBJECT_SYSTEM"}
)


@lru_cache(maxsize=4096)
def is_flyway_file(path: str) -> bool:
    """A versioned (`V<version>__`) or repeatable (`R__`) Flyway SQL migration."""
    return bool(_NAME.match(PurePath(path).name))


def non_transactional(tree: Node) -> bool:
    """Whether Flyway's PostgreSQL parser runs this statement outside a transaction."""
    ((kind, node),) = tree.items()
    if kind in _ALWAYS:
        return True
    body = cast("dict[str, object]", node)
    if kind == "IndexStmt":
        return body.get("concurrent") is True
    if kind == "DropStmt":
        return body.get("removeType") == "OBJECT_INDEX" and body.get("concurrent") is True
    if kind == "ReindexStmt":
        return body.get("kind") in _REINDEX_WIDE
    if kind == "VacuumStmt":
        return body.get("is_vacuumcmd") is True
    if kind == "DiscardStmt":
        return body.get("target") == "DISCARD_ALL"
    return False


_EXECUTE_IN_TRANSACTION = re.compile(
    r"^[ \t]*(?:flyway\.)?executeInTransaction[ \t]*[=:][ \t]*(\w+)", re.MULTILINE
)


def script_config_no_transaction(path: str) -> bool:
    """Whether the Flyway migration's script config file (`<file>.conf` next to it) says
    `executeInTransaction=false`."""
    try:
        text = Path(path + ".conf").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    found = _EXECUTE_IN_TRANSACTION.findall(text)
    return bool(found) and found[-1].lower() == "false"
