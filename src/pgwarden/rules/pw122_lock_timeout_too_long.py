"""Waits longer for a lock than the table's traffic can queue behind it.

## What it does
Flags a statement taking a lock that blocks reads or writes on an existing
table when the `lock_timeout` in force is longer than the table's traffic
allows (zero, no limit at all, is PW120's): with a stats snapshot, the queries arriving per second
that the lock blocks, times the timeout, must stay under 20 queued queries;
without one, the table is assumed busy and the timeout must stay at or under
2 s.

## Why is this bad?
While a DDL statement waits for its lock, every later query that conflicts
with the requested mode queues behind it, holding a connection. A 10 s
timeout on a table taking 300 writes/s lets 3,000 writes pile up before the
statement gives up: the same outage as no timeout, only shorter. On this
project's reference machine the textbook 2 s timeout, retried, still stalled
an API for about 10 s.

## Example
```sql
SET lock_timeout = '10s';
ALTER TABLE invoices ADD COLUMN note text;
```

## Use instead
```sql
SET lock_timeout = '50ms';
ALTER TABLE invoices ADD COLUMN note text;
```
and retry until it gets the lock (`pgwarden apply` retries with backoff and
cancels the statement as soon as sessions queue behind it). Alembic and
Django: the same `SET lock_timeout` at the start of the migration.

## Fix safety
Safe: a shorter timeout only makes the statement give up sooner; the
migration must retry.

## References
https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT
https://www.postgresql.org/docs/current/explicit-locking.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pgwarden.analysis.effects import LockMode
from pgwarden.findings import Fix, FixStatement, Placement, Severity
from pgwarden.plan import Step
from pgwarden.rules._sql import TABLE_KINDS
from pgwarden.rules.base import Hit, LintContext, Rule, describe_lock

if TYPE_CHECKING:  # a snapshot's types: pg.stats is loaded with a snapshot
    from pgwarden.pg.stats import TableStats

MAX_QUEUED = 20  # queries allowed to pile up behind a waiting lock
MAX_WITHOUT_STATS_MS = 2000
MIN_SUGGESTED_MS = 50


def blocked_rate(table: TableStats, mode: LockMode) -> float | None:
    """Queries per second that a lock in `mode` on `table` would hold up (from the snapshot)."""
    if table.writes_per_s is None:
        return None
    return table.writes_per_s + ((table.reads_per_s or 0.0) if mode.blocks_reads else 0.0)


def bearable_ms(rate: float) -> int:
    """The longest lock_timeout that lets at most MAX_QUEUED queries pile up at `rate`."""
    return max(MIN_SUGGESTED_MS, int(MAX_QUEUED / rate * 1000) // 10 * 10)


def _mode(item: tuple[str, LockMode]) -> LockMode:
    return item[1]


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    timeout_ms = ctx.lock_timeout_ms(step)
    if not timeout_ms:
        return  # PW120 reports a missing (or zero) timeout
    for relation, mode in sorted(step.effects.strongest().items(), key=_mode, reverse=True):
        relkind = next(lk.relkind for lk in step.effects.locks if lk.relation == relation)
        if not mode.blocks_writes or relkind not in TABLE_KINDS:
            continue
        if ctx.judge(relation).severity is None:
            continue  # created in this plan
        table = ctx.snapshot.table(relation) if ctx.snapshot is not None else None
        lock = describe_lock(mode, relation)
        rate = blocked_rate(table, mode) if table is not None else None
        if rate is not None and rate > 0:
            queued = rate * timeout_ms / 1000
            if queued < MAX_QUEUED:
                continue
            bearable = bearable_ms(rate)
            yield Hit(
                message=f"waits up to {timeout_ms} ms for {lock}; at {rate:.0f} blocked queries/s "
                f"about {queued:.0f} queries queue behind it before it gives up",
                help=f"SET lock_timeout = '{bearable}ms' (or less) and retry on failure",
                severity=Severity.WARNING,
                fix=_bounded(step, bearable),
            )
            return
        if rate is None and timeout_ms > MAX_WITHOUT_STATS_MS:
            yield Hit(
                message=f"waits up to {timeout_ms} ms for {lock}; {relation}'s traffic is unknown "
                f"(no stats) and assumed busy: queries queue behind it for that long",
                help=f"SET lock_timeout = '{MAX_WITHOUT_STATS_MS}ms' or less (give --stats for a "
                "bound from real traffic) and retry on failure",
                severity=Severity.WARNING,
                fix=_bounded(step, MAX_WITHOUT_STATS_MS),
            )
            return


def _bounded(step: Step, timeout_ms: int) -> Fix:
    return Fix(
        (
            FixStatement(f"SET lock_timeout = '{timeout_ms}ms';", Placement.SESSION),
            FixStatement(f"{step.sql};", Placement.IN_PLACE),
        )
    )


RULE = Rule(
    code="PW122",
    name="lock-timeout-too-long",
    summary="lock_timeout longer than the table's traffic can queue behind a waiting lock",
    doc=__doc__ or "",
    check=check,
)
