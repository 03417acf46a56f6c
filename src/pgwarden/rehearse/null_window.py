"""RH103: a NOT NULL that fails on rows the application inserts after the backfill.

A column is added (nullable), filled by a later step (an UPDATE, a data
migration), and made NOT NULL later still. The application, until it writes
the column, keeps inserting rows without it; those that land between the fill
and the NOT NULL leave NULLs, and the NOT NULL fails. The rehearsal's probe
writers insert as the application did before the migration, so this is seen
on the copy when they inserted the NULLs (`NullRows`): a deploy hazard of the
migration, reported with the steps that make the window and what closes it,
not as a step that failed for reasons of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pgwarden.analysis.effects import LockMode
from pgwarden.findings import Finding, Severity
from pgwarden.location import SourceLocation
from pgwarden.plan import Plan, Step
from pgwarden.rehearse.model import NullRows, StepTrace
from pgwarden.rehearse.opaque import OPAQUE_KIND
from pgwarden.sources.labels import statement_label

__all__ = ["CODE", "NAME", "headline", "null_window_finding"]

CODE = "RH103"
NAME = "rows_inserted_between_backfill_and_not_null"


def _same(relation: str, table: str) -> bool:
    return relation == table or relation.rpartition(".")[2].strip('"') == table


def _adds(step: Step, table: str, column: str) -> bool:
    """Whether `step` is ALTER TABLE `table` ADD COLUMN `column`."""
    body = step.tree.get("AlterTableStmt")
    if body is None or body.get("relation", {}).get("relname") != table:
        return False
    return any(
        c.get("subtype") == "AT_AddColumn"
        and c.get("def", {}).get("ColumnDef", {}).get("colname") == column
        for c in (cmd.get("AlterTableCmd", {}) for cmd in body.get("cmds", []))
    )


def _fills(step: Step | None, tr: StepTrace, table: str) -> bool:
    """Whether the step wrote rows of `table`: an UPDATE or INSERT of it, or the caller's
    own step (a data migration) that wrote rows holding a write lock on it."""
    if tr.status != "ok" or tr.rows_written <= 0:
        return False
    if tr.kind == OPAQUE_KIND or step is None:  # its own session: its locks are its own
        return any(
            _same(rel, table) and LockMode[mode.replace(" ", "_")] >= LockMode.ROW_EXCLUSIVE
            for rel, mode in tr.strongest().items()
        )
    body = step.tree.get("UpdateStmt") or step.tree.get("InsertStmt")
    return body is not None and body.get("relation", {}).get("relname") == table


def _short(location: str) -> str:
    """`path:line:col` as `file:line` (a migration's file name says which it is)."""
    head, _, _col = location.rpartition(":")
    path, _, line = head.rpartition(":")
    return f"{Path(path).name}:{line}" if path and line.isdigit() else location


def _named(tr: StepTrace, width: int = 90) -> str:
    """A step as the reader finds it: its index, its statement, where it is."""
    where = _short(tr.location) if tr.kind != OPAQUE_KIND else ""
    return f"step {tr.index} ({statement_label(tr.sql, width)}" + (f", {where})" if where else ")")


def null_window_finding(
    plan: Plan, traces: Sequence[StepTrace], failed: StepTrace, location: SourceLocation
) -> Finding | None:
    """RH103 for `failed` when its NOT NULL failed on rows the probe traffic inserted."""
    nulls: NullRows | None = failed.error.null_rows if failed.error is not None else None
    if nulls is None or nulls.inserted <= 0:
        return None
    table, column = nulls.table, nulls.column
    earlier = [t for t in traces if t.index < failed.index]
    committed = [
        t for t in earlier if failed.transaction is None or t.transaction != failed.transaction
    ]
    by_index = {s.index: s for s in plan.steps}
    fill = next((t for t in reversed(committed) if _fills(by_index.get(t.index), t, table)), None)
    if fill is None and nulls.inserted < nulls.rows:  # no fill, NULLs of its own: RH102
        return None
    added = next(
        (s for s in plan.steps if s.index < failed.index and _adds(s, table, column)), None
    )
    after = f"after {_named(fill)} filled it" if fill is not None else "after the column was added"
    msg = (
        f"{table}.{column} cannot be made NOT NULL here: {nulls.inserted:,} of the "
        f"{nulls.rows:,} rows with NULL in it were inserted by the probe traffic, which writes "
        f"as the application did before the migration, {after} and before this step. In "
        "production the application inserts such rows in the same window, and this step "
        "fails there too"
    )
    if nulls.rows > nulls.inserted:
        msg += (
            f"; the other {nulls.rows - nulls.inserted:,} row(s) were left NULL by the fill "
            "itself (it may not expect the synthetic values)"
        )
    if added is not None:
        msg += (
            f"; the column is added without a default by step {added.index} "
            f"({statement_label(added.sql, 90)}, {_short(str(added.location))})"
        )
    help_ = (
        "close the window before the fill: give the column a default where it is added "
        f"(ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT ...), so rows the application "
        f"inserts get a value; or, once the application writes {column}, add "
        f"CHECK ({column} IS NOT NULL) NOT VALID before the fill, VALIDATE it after the fill "
        "(SHARE UPDATE EXCLUSIVE, reads and writes go on), and SET NOT NULL then needs no "
        "scan (PostgreSQL 12+); or fill new rows from a trigger until the NOT NULL. "
        "Deploying the code that writes the column before the migration that fills it "
        "closes the window too"
    )
    return Finding(CODE, NAME, Severity.ERROR, msg, help_, location, step=failed.index)


def headline(status: str, findings: Sequence[Finding]) -> str:
    """The rehearsal's outcome in words: its status, or, when it stopped at a step that
    RH103 explains, that it found a deploy hazard (the migration's, not the rehearsal's)."""
    if status == "failed" and any(f.code == CODE for f in findings):
        return "stopped at a deploy hazard"
    return status
