"""DETACH PARTITION ... CONCURRENTLY outside transactions: what an earlier attempt left.

The detach runs in two transactions. Cancelled after the first (a lock or
statement timeout while it waits for queries on the parent), it leaves the
partition "detach pending", and running it again fails ("already pending
detach"): `DETACH PARTITION ... FINALIZE` finishes it. Completed, it cannot run
again ("is not a partition of"): the partition is found detached and the step
is done. Both are read from pg_inherits before the step runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql

from pgwarden.apply.guards import Failure, classify, set_timeouts
from pgwarden.plan import Step
from pgwarden.rules._sql import regclass

__all__ = ["Detach", "detach_of", "detach_state", "finalize"]

State = Literal["attached", "pending", "detached", "unknown"]


@dataclass(frozen=True, slots=True)
class Detach:
    """The partitioned table and the partition a DETACH ... CONCURRENTLY names."""

    parent: str
    partition: str


def detach_of(step: Step) -> Detach | None:
    """The tables of an `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY` step."""
    if step.kind != "AlterTableStmt" or step.effects.transactional:
        return None
    cmds = step.body.get("cmds") or []
    if len(cmds) != 1:
        return None
    cmd = cmds[0].get("AlterTableCmd", {}) if isinstance(cmds[0], dict) else {}
    part = (cmd.get("def") or {}).get("PartitionCmd") or {}
    if cmd.get("subtype") != "AT_DetachPartition" or not part.get("concurrent"):
        return None
    return Detach(regclass(step.body.get("relation")), regclass(part.get("name")))


def detach_state(conn: psycopg.Connection[tuple[object, ...]], d: Detach) -> State:
    """attached, pending (an interrupted detach), detached (both tables exist, the
    partition is not the parent's), or unknown (a table is missing: the step says why)."""
    row = conn.execute(
        sql.SQL(
            "SELECT to_regclass({p}) IS NOT NULL AND to_regclass({c}) IS NOT NULL, "
            "(SELECT bool_or(inhdetachpending) FROM pg_inherits "
            " WHERE inhparent = to_regclass({p}) AND inhrelid = to_regclass({c}))"
        ).format(p=sql.Literal(d.parent), c=sql.Literal(d.partition))
    ).fetchone()
    if row is None or not row[0]:
        return "unknown"
    if row[1] is None:
        return "detached"
    return "pending" if row[1] else "attached"


def finalize(
    conn: psycopg.Connection[tuple[object, ...]],
    d: Detach,
    *,
    lock_timeout_ms: int,
    statement_timeout_ms: int,
    attempts: int = 20,
) -> None:
    """`DETACH PARTITION ... FINALIZE` of a pending detach, retrying lock timeouts; raises
    the last error. It takes ACCESS EXCLUSIVE on the partition, SHARE UPDATE EXCLUSIVE
    on the parent."""
    spell = sql.SQL(
        "SELECT format('ALTER TABLE %s DETACH PARTITION %s FINALIZE', to_regclass({}), "
        "to_regclass({}))"
    ).format(sql.Literal(d.parent), sql.Literal(d.partition))
    row = conn.execute(spell).fetchone()  # the server quotes the names
    stmt = str(row[0]) if row is not None else ""
    for attempt in range(1, attempts + 1):
        try:
            with conn.transaction():
                set_timeouts(
                    conn,
                    lock_timeout_ms=lock_timeout_ms,
                    statement_timeout_ms=statement_timeout_ms,
                    local=True,
                )
                conn.execute(stmt.encode())
            return
        except psycopg.Error as exc:
            if classify(exc) is not Failure.LOCK or attempt == attempts:
                raise
            time.sleep(min(2.0, 0.1 * 2**attempt))
