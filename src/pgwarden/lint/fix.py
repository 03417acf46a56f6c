"""`lint --fix`: write each file's rewritten plan back as SQL, with explicit transactions.

The rewrite itself is `lint.rewrite.rewrite_plan`, the same one `apply --rewrite`
runs; this module only renders it. Every transaction becomes an explicit
BEGIN ... COMMIT, statements that cannot run in one stand alone, and when a
rule's fix sets a session lock_timeout (`Placement.SESSION`) the file starts
with one sized to what the busiest table it touches can bear (at most 1 s):

    -- pgwarden: no-file-transaction: run it as it is (psql -f, ...)
    SET lock_timeout = '60ms';
    DO $pgwarden$ ... $pgwarden$;            -- sets an INVALID index of that name aside
    DROP INDEX CONCURRENTLY IF EXISTS ...;   -- drops it (what a timed-out build left)
    CREATE INDEX CONCURRENTLY IF NOT EXISTS ...;
    BEGIN; ...statements that ran in one transaction...; COMMIT;
    ALTER TABLE ... VALIDATE CONSTRAINT ...;   -- its own transaction, after the commit

The `no-file-transaction` line tells pgwarden (lint, apply) that the file's transactions are
the ones it writes. Every statement is made safe to run again (`lint.rerunnable`); where SQL
cannot make it so (a DETACH PARTITION ... CONCURRENTLY that completed; the copies a
cancelled REINDEX of a schema, a database, a table without a catalog or a partitioned index
leaves) a header line says to retry with `pgwarden apply`, which reconciles them; a CREATE
SUBSCRIPTION that creates its replication slot cannot be skipped once it has run (it runs
outside every transaction and block), and a header line says to run the file from the
statement after it; an INSERT, COPY FROM or an UPDATE setting a column from the table's own
values changes data again on a re-run, and a header line says to run the file from the
statement that failed after a failure past its transaction's COMMIT; a statement that names
what a later RENAME renames fails once the rename has committed (the RENAME itself is
skipped then), and a header line says to run the file from the statement that failed;
likewise for a statement naming what a later ALTER ... SET SCHEMA moves (a CREATE before the
move makes it anew in the old schema). Fixed without a catalog, an unnamed CREATE INDEX or
ADD CONSTRAINT gets the name the server gives it when that name is free and is skipped when
it is there (a re-run would add another copy, _idx1); a header line says that one of that
name there before makes it be skipped. An ALTER COLUMN ... TYPE ... USING is skipped
when its columns have that type (it ran); a header line says one that keeps the type
does not convert at all.
Comments (inline ignores included) stay with their statements, and the result is linted again: a fix
that leaves a hazard it claims to fix, or brings one the original did not
have, is dropped. Fixing a fixed file again (a statement added to it, another
finding left) adds none of the statements it already has before a statement
(the drops of what a cancelled run left, the cleanup and finalize blocks), and
its bounded-lock-wait header stays while its SET lock_timeout does, and so do its header
lines about statements it wrapped in a block or named (a RENAME or SET SCHEMA after
statements naming its object, an unnamed index or constraint, a USING conversion), which
the fixed file no longer shows as such. The rewrite keeps the
file's line endings (CRLF stays CRLF), its missing final newline and its UTF-8 byte order
mark (which the plan's text leaves out).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.context import Snapshot
from pgwarden.analysis.nodes import option_on, regclass
from pgwarden.findings import Finding, Placement
from pgwarden.lint.engine import LintResult, lint_plan
from pgwarden.lint.rerunnable import (
    changes_again,
    converts_in_place,
    creates_slot,
    default_constraint_name,
    default_index_name,
    detaches_concurrently,
    renamed_object,
    rerunnable,
)
from pgwarden.lint.rewrite import rewrite_plan
from pgwarden.plan import NO_FILE_TRANSACTION, Plan, SourceText, Step, TxMode, build_plan
from pgwarden.rules.base import resets_all_settings
from pgwarden.rules.pw122_lock_timeout_too_long import bearable_ms, blocked_rate
from pgwarden.sources.drizzle import is_drizzle_file
from pgwarden.sources.flyway import is_flyway_file
from pgwarden.sources.sql_files import read_source
from pgwarden.sources.updown import is_up_sql_file, split_halves, with_down_half

__all__ = ["FileFix", "fix_plan", "left_as_written", "write_fixes"]

DEFAULT_TIMEOUT_MS = 1000
# What a CONCURRENTLY statement of a bounded file may wait for its SHARE UPDATE EXCLUSIVE
# lock and for the transactions older than it: the 10 minutes `pgwarden apply` gives such
# a build. Those waits block no reads or writes; a lock timeout in them throws the build
# away (an INVALID index), so the file's short timeout would fail it behind any
# transaction that runs longer than it. A REINDEX ... CONCURRENTLY waits so too: its
# ACCESS EXCLUSIVE lock on the old copy comes once every transaction using it has ended,
# and no new query sees that copy (indislive is off), so none queues behind it (measured
# on PG15 behind a 4 s transaction: reads by the index and updates under a 300 ms
# lock_timeout never waited). Not one of a partitioned table or index: it lists the
# partitions under SHARE first, which blocks their writes.
CONCURRENT_WAIT_MS = 600_000
# (DETACH ... CONCURRENTLY keeps the short timeout: it ends in an ACCESS EXCLUSIVE lock on
# the partition that queries naming the partition queue behind.)
_CONCURRENT = re.compile(
    r"^\s*(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX)\s+CONCURRENTLY\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class FileFix:
    """One file's rewrite: the findings it fixes, old and new text."""

    path: str
    old: str
    new: str
    fixed: tuple[Finding, ...]

    def diff(self) -> str:
        """A unified diff of the rewrite."""
        return "".join(
            difflib.unified_diff(
                self.old.splitlines(keepends=True),
                self.new.splitlines(keepends=True),
                fromfile=f"a/{self.path.lstrip('/')}",
                tofile=f"b/{self.path.lstrip('/')}",
            )
        )


def _timeout_ms(steps: list[Step], snapshot: Snapshot | None) -> int:
    """The prologue's lock_timeout: what the busiest table touched can bear, at most 1 s."""
    best = DEFAULT_TIMEOUT_MS
    for step in steps if snapshot is not None else ():
        for relation, mode in step.effects.strongest().items():
            table = snapshot.table(relation) if snapshot is not None else None
            rate = blocked_rate(table, mode) if table is not None and mode.blocks_writes else None
            if rate:
                best = min(best, bearable_ms(rate))
    return best


HEADER = "-- Rewritten by `pgwarden lint --fix` for safe deployment."
_MARK = (
    f"{NO_FILE_TRANSACTION}: run it as it is (psql -f, or a runner that does not wrap "
    "files in a transaction); its transactions are the BEGIN ... COMMIT below."
)
_RETRY = "-- Every statement may run again: if one fails or times out, retry the whole file."
_TIMEOUT = "-- Every lock wait is bounded; retry the file if a statement times out."
_DETACH = (
    "-- A DETACH PARTITION ... CONCURRENTLY that completed cannot run again (psql stops there "
    'with "is not a partition of"): retry with `pgwarden apply`, which records it as done, '
    "or run the file from the statement after it."
)
_SUBSCRIPTION = (
    "-- A CREATE SUBSCRIPTION below creates its replication slot on the publisher, so it "
    "runs outside a transaction and cannot be skipped once it has run: run again, psql "
    'stops there ("subscription ... already exists") having changed nothing: after a '
    "failure past it, run the file from the statement after it."
)
_DATA = (
    "-- An INSERT, COPY FROM or UPDATE from a column's own value below changes data again "
    "when it runs again (nothing skips it: SET c = c * 100 scales twice, an INSERT adds "
    "the rows again or fails on a unique key): after a failure past its transaction's "
    "COMMIT, run the file from the statement that failed, not the whole file."
)
_UNNAMED = (
    "-- This file cannot name the INVALID copies (<index>_ccnew) a cancelled REINDEX ... "
    "CONCURRENTLY of a whole table without a catalog, a schema or a database leaves: retry "
    "with `pgwarden apply`, which drops them (or fix a REINDEX TABLE with --database-url)."
)
_PARTITIONED_INDEX = (
    "-- This file cannot name the INVALID copies (<partition index>_ccnew) a cancelled "
    "REINDEX INDEX ... CONCURRENTLY of a partitioned index leaves in a partition: retry "
    "with `pgwarden apply`, which drops them."
)
_APPLY = (
    "-- The retry with `pgwarden apply`, in full: pgwarden apply FILE --database-url DSN "
    "--env NAME (add --restamp when pgwarden has never applied to that database: it refuses "
    "to adopt one holding data without it)."
)
_RENAMED = (
    "-- A RENAME below follows statements naming what it renames: once it has committed, "
    'those fail when the file runs again ("does not exist"), or make it anew and the '
    'RENAME fails ("already exists"): after a failure past it, run the file from the '
    "statement that failed."
)
_RENAMED_BEFORE = (  # what files fixed before type, schema and routine renames said
    "-- A RENAME below follows statements naming what it renames: once it has committed, "
    'those fail when the file runs again ("does not exist"): after a failure past it, '
    "run the file from the statement that failed."
)
_MOVED = (
    "-- A SET SCHEMA below follows statements naming what it moves: once it has committed, "
    "those make or look for it in its old schema when the file runs again (and fail): after "
    "a failure past it, run the file from the statement that failed."
)
_NAMED_INDEX = (
    "-- An unnamed CREATE INDEX or ADD CONSTRAINT below gets the name the server gives it "
    "when the name is free (table_columns_idx, _key, _fkey, _check, _pkey, cut to 63 bytes) "
    "and is skipped when that name is there, so that a re-run finds it; if a relation or "
    "constraint of that name is there before the file first runs, it is skipped too (the "
    "server would have added a number: _idx1), which this file, fixed without a catalog, "
    "cannot know: name it, or fix with --database-url."
)
_CONVERTED = (
    "-- An ALTER COLUMN ... TYPE ... USING below is skipped when its columns have that type "
    "already (it ran): one that keeps a column's type (TYPE text USING lower(c) on a text "
    "column) does not convert at all; write that one as an UPDATE."
)
_WAITS = (
    "-- A CREATE/DROP INDEX or REINDEX ... CONCURRENTLY below waits up to 10 min for its lock "
    "and for older transactions (those waits block no reads or writes; timing out throws "
    "the build away)."
)
_WAITS_BEFORE = (  # what files fixed before REINDEX waited so say
    "-- A CREATE/DROP INDEX CONCURRENTLY below waits up to 10 min for its lock and for older "
    "transactions (those waits block no reads or writes; timing out throws the build away)."
)
# Marks the SETs of that wait (a fix of the fixed file writes them anew).
_WAIT_TAG = "-- pgwarden: the index build's wait"
# Marks the SET back to the file's bound after those builds (files fixed before said the
# wait's tag there too).
_BACK_TAG = "-- pgwarden: back from the index build's wait"
# Marks the SET that bounds waits again after the file's RESET ALL or DISCARD ALL.
_RESET_TAG = "-- pgwarden: bound again after the reset"
_OWN = {
    HEADER,
    _RETRY,
    _TIMEOUT,
    _WAITS,
    _WAITS_BEFORE,
    _DETACH,
    _SUBSCRIPTION,
    _DATA,
    _UNNAMED,
    _PARTITIONED_INDEX,
    _APPLY,
    _RENAMED,
    _RENAMED_BEFORE,
    _MOVED,
    _NAMED_INDEX,
    _CONVERTED,
}
_CHANGES_DATA = frozenset({"InsertStmt", "UpdateStmt", "CopyStmt"})
_WORD = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')
_TRAIL = re.compile(r"[ \t]*;?[ \t]*(--[^\n]*)")
_IGNORE = re.compile(r"--\s*pgwarden:\s*ignore\b")
_BOUND = re.compile(r"lock_timeout = '\d+ms'")
_BARE_LF = re.compile(r"(?<!\r)\n")
_BOM = "\ufeff"


def _comments(text: str, original: list[Step]) -> dict[tuple[int, int], tuple[list[str], str]]:
    """Each original step's comment lines before it and comment after it on its last line
    (what inline ignores attach to), by (line, column); a BEGIN's go to the next step."""
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())
    out: dict[tuple[int, int], tuple[list[str], str]] = {}
    prev_end: int | None = None
    pending: list[str] = []
    for step in original:
        line, col = step.location.line, step.location.column
        start = starts[line - 1] + col - 1 if line - 1 < len(starts) else len(text)
        at = text.find(step.sql, start)
        end = (at if at >= 0 else start) + len(step.sql)
        lead = list(pending)
        if prev_end is not None:
            gap = text[prev_end:start]
            gap = gap[gap.find("\n") + 1 :] if "\n" in gap else ""
            lead += [ln.strip() for ln in gap.splitlines() if ln.strip().startswith("--")]
        tail = _TRAIL.match(text, end)
        trail = tail.group(1).rstrip() if tail else ""
        prev_end = end
        if step.is_transaction_control:
            pending = lead + ([trail] if trail else [])
            continue
        pending = []
        out[(line, col)] = (lead, trail)
    return out


def _same(sql: str) -> str:
    """A statement compared with the file's: comment lines, layout and a block's lock
    bound left out (a fix of a fixed file may size the bound differently)."""
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return _BOUND.sub("lock_timeout = ?", " ".join(" ".join(lines).split()).rstrip(";"))


def _missing(prelude: list[str], before: list[str], end: int) -> list[str]:
    """The statements `rerunnable` puts before a step (drops of what a cancelled run left,
    a block finishing a detach) that the statements just before it (`before[:end]`, not
    copied: one slice per step made the file's rendering quadratic) are not already:
    a fix of a fixed file adds none of them twice."""
    if not prelude:
        return []
    there = {_same(q) for q in before[max(end - len(prelude), 0) : max(end, 0)]}
    return [q for q in prelude if _same(q) not in there]


def _render(
    text: str,
    original: list[Step],
    steps: list[Step],
    timeout_ms: int | None,
    catalog: Catalog | None = None,
) -> str:
    first_line = min((s.location.line for s in original), default=1)
    # The file's opening comments as written, blank lines between them too (a licence
    # block, then what the migration does); not the lines a fix wrote.
    head = [
        ln
        for ln in text.splitlines()[: first_line - 1]
        if ln not in _OWN and not ln.startswith(NO_FILE_TRANSACTION)
    ]
    while head and not head[0].strip():
        head.pop(0)
    # A blank line after them stays one (Atlas reads its directives only from comments a
    # blank line ends: `-- atlas:txmode none`).
    apart = bool(head) and not head[-1].strip()
    while head and not head[-1].strip():
        head.pop()
    if head and apart:
        head.append("")
    # An inline ignore above the first statement stays with it, below the prologue: with
    # the first statement of the file, not the first one written (a build the fix moves
    # before the transaction would take it, and the statement it was for lose it).
    out = [ln for ln in head if not _IGNORE.search(ln)]
    first_lead = [ln.strip() for ln in head if _IGNORE.search(ln)]
    first_key = next(
        ((s.location.line, s.location.column) for s in original if not s.is_transaction_control),
        None,
    )
    # A fixed file keeps its bounded session timeout: a SET lock_timeout step, no finding.
    bounded = timeout_ms is not None or (
        _TIMEOUT in text.splitlines() and any(_sets_lock_timeout(s) for s in steps)
    )
    out += [HEADER, _MARK, _TIMEOUT if bounded else _RETRY]
    if any(
        _has_cmd(st, "AT_DetachPartition") and detaches_concurrently(st.sql.strip().rstrip(";"))
        for st in steps
    ):
        out.append(_DETACH)
    if any(st.kind == "CreateSubscriptionStmt" and creates_slot(st.sql) for st in steps):
        out.append(_SUBSCRIPTION)
    if any(st.kind in _CHANGES_DATA and changes_again(st.sql) for st in steps):
        out.append(_DATA)
    if any(_unnamed_copies(st, catalog) for st in steps):
        out.append(_UNNAMED)
    if any(_partitioned_index(st, catalog) for st in steps):
        out.append(_PARTITIONED_INDEX)
    if any(ln in (_DETACH, _UNNAMED, _PARTITIONED_INDEX) for ln in out):
        out.append(_APPLY)
    # A fixed file's lines about statements its fix put in a block or named stay: fixed
    # again, those read as a block, or as named by the user.
    had = set(text.splitlines()[: first_line - 1]) & {
        _RENAMED,
        _RENAMED_BEFORE,
        _MOVED,
        _NAMED_INDEX,
        _CONVERTED,
    }
    if had & {_RENAMED, _RENAMED_BEFORE} or _named_before_rename(steps):
        out.append(_RENAMED)
    if _MOVED in had or _named_before_move(steps):
        out.append(_MOVED)
    if _NAMED_INDEX in had or (catalog is None and any(_named_by_fix(st) for st in steps)):
        out.append(_NAMED_INDEX)
    if _CONVERTED in had or any(
        _has_cmd(st, "AT_AlterColumnType") and converts_in_place(st.sql) for st in steps
    ):
        out.append(_CONVERTED)
    waits = {st.index for st in steps if _rebuild_waits_long(st)}
    if bounded and (waits or any(_concurrent(st.sql) for st in steps)):
        out.append(_WAITS)
    if timeout_ms is not None:
        out.append(f"SET lock_timeout = '{timeout_ms}ms';")
    # The session's lock_timeout, which the builds' longer wait gives way to after them.
    session = f"SET lock_timeout = '{timeout_ms}ms'" if timeout_ms is not None else None
    waiting = False  # the builds' longer wait is in force
    lines = text.splitlines()
    notes = _comments(text, original)
    placed: set[tuple[int, int]] = set()
    open_tx: int | None = None
    before: list[str] = []  # the file's statements so far
    names: set[str] = set()  # the index and constraint names of those
    for step in steps:
        if step.is_transaction_control:
            continue  # transactions are rendered from the plan's transaction ids
        key = (step.location.line, step.location.column)
        if _sets_lock_timeout(step):
            line = lines[step.location.line - 1]
            if timeout_ms is not None or any(t in line for t in (_WAIT_TAG, _BACK_TAG, _RESET_TAG)):
                if key == first_key:
                    first_key = None  # the ignore above it goes to the next one written
                continue  # replaced by the prologue's timeout, or the builds' wait (below)
            session = step.sql.strip().rstrip(";")
        else:
            before.append(step.sql)
        stmts = rerunnable(
            step.sql.strip().rstrip(";"),
            indexes=_rebuilt(step, catalog),
            lock_timeout_ms=DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms,
            name_unnamed=catalog is None,
            taken=names,
        )
        queries = [*_missing(stmts[:-1], before, len(before) - 1), stmts[-1]]
        # Each query's wait: a concurrent REINDEX and what the fix puts before it (drops of
        # its leftovers; a block dropping its TOAST copy sets its own bound) wait long.
        longs = [step.index in waits or _concurrent(q) for q in queries]
        if waiting and (step.transaction is not None or not longs[0]):
            out.append(f"{session};  {_BACK_TAG}")
            waiting = False
        if step.transaction != open_tx:
            if open_tx is not None:
                out.append("COMMIT;")
            if step.transaction is not None:
                out.append("BEGIN;")
            open_tx = step.transaction
        lead, trail = notes.get(key, ([], ""))
        if key in placed:
            lead, trail = [], ""
        placed.add(key)
        if first_key is None or key == first_key:
            out += first_lead
            first_lead = []
        out += lead
        for q, long in zip(queries, longs, strict=True):
            if session is not None and long != waiting:
                waiting = not waiting
                wait = f"SET lock_timeout = '{CONCURRENT_WAIT_MS}ms'" if waiting else session
                out.append(f"{wait};  {_WAIT_TAG if waiting else _BACK_TAG}")
            out.append(f"{q};")
        if session is not None and resets_all_settings(step):
            # RESET ALL / DISCARD ALL undid the bound: set it again before what follows.
            bound = f"SET lock_timeout = '{CONCURRENT_WAIT_MS}ms'" if waiting else session
            out.append(f"{bound};  {_WAIT_TAG if waiting else _RESET_TAG}")
        if trail:
            out[-1] += f"  {trail}"
    if open_tx is not None:
        out.append("COMMIT;")
    return "\n".join(out) + "\n"


def _rebuilt(step: Step, catalog: Catalog | None) -> list[str]:
    """The indexes a REINDEX step rebuilds, as the lock model knows them (from the catalog);
    of a partitioned table, its partitions' too, every level (REINDEX TABLE rebuilds
    theirs, one partition after the other; the lock model lists the partitioned ones)."""
    if step.kind != "ReindexStmt":
        return []
    names = [lk.relation for lk in step.effects.locks if lk.relkind == "index"]
    stmt = step.tree.get("ReindexStmt")
    if catalog is not None and stmt and stmt.get("kind") == "REINDEX_OBJECT_TABLE":
        todo = [regclass(stmt.get("relation"))]
        while todo:
            table = catalog.get(todo.pop())
            for part in table.partitions if table is not None else ():
                child = catalog.get(part)
                names += [i.name for i in child.indexes] if child is not None else []
                todo.append(part)
    return list(dict.fromkeys(names))


def _named_before_rename(steps: list[Step]) -> bool:
    """A RENAME whose old name an earlier statement of the file names on that relation
    (of a schema, type, domain or routine: anywhere): the guarded RENAME is skipped on
    a re-run, but that statement fails (or, building an index of the old name, builds it
    again; creating the object, makes it anew, and the RENAME then fails)."""
    for i, step in enumerate(steps):
        if step.kind != "RenameStmt":
            continue
        name = renamed_object(step.sql.strip().rstrip(";"))
        if name is not None and any(name in _words(earlier.sql) for earlier in steps[:i]):
            return True
        old = _renamed(step)
        if old is None:
            continue
        relation, word = old
        for earlier in steps[:i]:
            touched = {lk.relation for lk in earlier.effects.locks} | set(earlier.effects.creates)
            if relation in touched and word in _words(earlier.sql):
                return True
    return False


def _named_by_fix(step: Step) -> bool:
    """An unnamed CREATE INDEX or ADD CONSTRAINT the file names as the server would."""
    sql = step.sql.strip().rstrip(";")
    if step.kind == "IndexStmt":
        return not step.body.get("idxname") and default_index_name(sql) is not None
    if step.kind == "AlterDomainStmt":
        return default_constraint_name(sql) is not None
    return _has_cmd(step, "AT_AddConstraint") and default_constraint_name(sql) is not None


def _has_cmd(step: Step, subtype: str) -> bool:
    """An ALTER TABLE step with a command of `subtype` (AT_...): read from its tree, so that
    only such steps are parsed again by the checks of `rerunnable` (every statement of a
    large file was parsed once per check)."""
    stmt = step.tree.get("AlterTableStmt")
    return stmt is not None and any(
        cmd.get("AlterTableCmd", {}).get("subtype") == subtype for cmd in stmt.get("cmds") or ()
    )


def _named_before_move(steps: list[Step]) -> bool:
    """An ALTER ... SET SCHEMA whose object an earlier statement of the file names: the
    guarded move is skipped on a re-run, but that statement makes a new one in the old
    schema (then the move fails) or does not find it there."""
    for i, step in enumerate(steps):
        if step.kind != "AlterObjectSchemaStmt":
            continue
        obj = step.body.get("object")
        items = obj.get("List", {}).get("items", []) if isinstance(obj, dict) else []
        if isinstance(obj, dict) and "ObjectWithArgs" in obj:  # a routine's name
            items = obj["ObjectWithArgs"].get("objname") or []
        names = [it["String"]["sval"] for it in items if isinstance(it, dict) and "String" in it]
        old = (step.body.get("relation") or {}).get("relname") or (names[-1] if names else None)
        if isinstance(old, str) and any(old in _words(earlier.sql) for earlier in steps[:i]):
            return True
    return False


def _renamed(step: Step) -> tuple[str, str] | None:
    """(relation the RENAME locks, the old name) of a RENAME step."""
    if step.kind != "RenameStmt" or not step.effects.locks:
        return None
    old = step.body.get("subname") or (step.body.get("relation") or {}).get("relname")
    return (step.effects.locks[0].relation, old) if isinstance(old, str) else None


def _words(sql: str) -> set[str]:
    """The identifiers of `sql`, as PostgreSQL folds them."""
    return {m.group(1) or m.group(2).lower() for m in _WORD.finditer(sql)}


def _unnamed_copies(step: Step, catalog: Catalog | None) -> bool:
    """A REINDEX ... CONCURRENTLY whose copies the file cannot name: a table's without a
    catalog, a schema's or a database's (`rerunnable` names an index's, a table's from
    the catalog)."""
    if not _reindexes_concurrently(step):
        return False
    kind = step.body.get("kind")
    return kind in ("REINDEX_OBJECT_SCHEMA", "REINDEX_OBJECT_DATABASE") or (
        kind == "REINDEX_OBJECT_TABLE" and not _rebuilt(step, catalog)
    )


def _partitioned_index(step: Step, catalog: Catalog | None) -> bool:
    """A REINDEX INDEX ... CONCURRENTLY of an index the catalog shows partitioned: it
    rebuilds the partitions' indexes, which the catalog does not tie to it by name."""
    stmt = step.tree.get("ReindexStmt")
    if catalog is None or not stmt or not _reindexes_concurrently(step):
        return False
    if stmt.get("kind") != "REINDEX_OBJECT_INDEX":
        return False
    rel = catalog.get(regclass(stmt.get("relation")))
    return rel is not None and rel.relkind == "I"


def _rebuild_waits_long(step: Step) -> bool:
    """A REINDEX ... CONCURRENTLY whose waits block no reads or writes: not one of a
    partitioned table or index, which first lists the partitions under SHARE (the lock
    model says so; it blocks their writes, and PW122 would flag the long wait)."""
    return _reindexes_concurrently(step) and not any(
        lk.mode.blocks_writes and lk.relkind not in ("index", "partitioned index")
        for lk in step.effects.locks
    )


def _reindexes_concurrently(step: Step) -> bool:
    """A REINDEX ... CONCURRENTLY, read from its options (not from whether it can run in a
    transaction: a plain REINDEX SCHEMA cannot either, and its locks queue queries)."""
    stmt = step.tree.get("ReindexStmt")
    return stmt is not None and option_on(stmt.get("params"), "concurrently")


def _concurrent(sql: str) -> bool:
    """CREATE or DROP INDEX CONCURRENTLY: waits for old transactions, blocks no queries."""
    return bool(_CONCURRENT.match(sql))


def _sets_lock_timeout(step: Step) -> bool:
    return step.kind == "VariableSetStmt" and step.body.get("name") == "lock_timeout"


def left_as_written(source: SourceText) -> str | None:
    """Why `--fix` leaves `source` as written, in words that follow its path ("is a Flyway
    migration: ..."), or None when it may rewrite it: the transactions (or queries) a fix
    writes would not be the ones its migration tool runs."""
    if source.changesets:
        return (
            "is Liquibase formatted SQL, whose changesets are its transactions: make the fixes "
            "its findings show by hand (a CONCURRENTLY statement in a changeset of its own, "
            "with runInTransaction:false)"
        )
    if is_flyway_file(source.path):
        return (
            "is a Flyway migration: Flyway runs it in a transaction, or without one when all "
            "its statements are CONCURRENTLY (and the like), and refuses a mix: make the fixes "
            "its findings show by hand (a CONCURRENTLY statement in a migration of its own)"
        )
    if source.one_query or source.split_parts:
        return (
            "is sent to the server as one query (Prisma Migrate; golang-migrate; morph, sqlx, "
            "dbmate, postgres-migrations and diesel when marked to run without a transaction; "
            "bun: one per --bun:split part), where a CONCURRENTLY statement runs only as the "
            "query's only statement: make the fixes its findings show by hand (each "
            "CONCURRENTLY statement in a migration of its own)"
        )
    if source.runner_transaction and is_up_sql_file(source.path):
        return (
            "is run by its migration tool inside a transaction (sqlx, morph and pop wrap a "
            "*.up.sql file in one, diesel an up.sql), where the BEGIN ... COMMIT blocks and "
            "CONCURRENTLY statements of a fix do not run as written: make the fixes its "
            "findings show by hand (each CONCURRENTLY statement in a migration of its own, "
            "which the tool runs outside a transaction: sqlx's -- no-transaction, morph's "
            "-- morph:nontransactional, diesel's run_in_transaction = false)"
        )
    if is_drizzle_file(source.path, source.text):
        return (
            "is a drizzle migration, which drizzle runs with all pending ones in one "
            "transaction: make the fixes its findings show by hand"
        )
    if source.placeholders:
        return (
            f"holds placeholders ({', '.join(source.placeholders)}), read as identifiers: "
            "make the fixes its findings show by hand"
        )
    return None


def fix_plan(plan: Plan, result: LintResult, snapshot: Snapshot | None = None) -> list[FileFix]:
    """The rewrite of every file that has at least one mechanical fix, except those
    `left_as_written` says why (Liquibase, Flyway, files sent as one query, `*.up.sql`
    files their tool wraps, drizzle, placeholders).

    Each rewritten file is linted again as it will be read: a file still showing
    a hazard it claims to fix, or a hazard the original did not have (a fix that
    relies on a constraint another fix made NOT VALID, say), loses its last
    statement fix until it is clean; the session timeout always stays.
    """
    originals = _by_path(plan.steps)
    path_of = {s.index: s.location.path for s in plan.steps}
    findings: dict[str, list[Finding]] = {}  # by path, in result order
    for f in result.findings:
        if f.step in path_of:
            findings.setdefault(path_of[f.step], []).append(f)
    skip: set[int] = set()
    before: dict[str, set[str]] = {}
    while True:
        rewritten, rewrites = rewrite_plan(
            plan, snapshot=snapshot, skip=frozenset(skip), findings=result.findings
        )
        replaced = {(r.step, r.code) for r in rewrites}  # the fix each replaced step took
        news = _by_path(rewritten.steps)
        fixes: list[FileFix] = []
        retry = False
        for source in plan.texts:
            if left_as_written(source) is not None:
                continue  # their tool's transactions (or one query) decide, not the fix's
            original = originals.get(source.path, [])
            mine = findings.get(source.path, [])
            timeout = any(f.fix is not None and f.fix.sets_session for f in mine)
            fixed = tuple(
                f
                for f in mine
                if f.fix is not None
                and f.fix.mechanical
                and (_session_only(f) or (f.step, f.code) in replaced)
            )
            if not fixed:
                continue
            steps = news.get(source.path, [])
            halves = split_halves(source.text)  # a goose or dbmate file: its up half
            new = with_down_half(
                _render(
                    halves.up,
                    original,
                    steps,
                    _timeout_ms(original, snapshot) if timeout else None,
                    snapshot.catalog if snapshot is not None else None,
                ),
                source.text,
            )
            if source.psql:  # psql's own settings (\set ON_ERROR_STOP on): at the top
                new = "\n".join(source.psql) + "\n" + new
            new = _as_file_had(new, source.text)
            if new == source.text:
                continue
            if source.path not in before:
                wrapped = any(s.tx_mode is TxMode.FILE for s in original)
                before[source.path] = _codes(plan, source.path, source.text, snapshot, wrapped)
            after = _codes(plan, source.path, new, snapshot, False)
            if after & {f.code for f in fixed} or not after <= before[source.path]:
                mine_rewrites = [
                    r.step
                    for r in rewrites
                    if r.code != "tx" and path_of.get(r.step) == source.path
                ]
                if mine_rewrites:
                    skip.add(max(mine_rewrites))
                    retry = True
                    continue
            fixes.append(FileFix(source.path, source.text, new, fixed))
        if not retry:
            return fixes


def _as_file_had(new: str, old: str) -> str:
    """`new` with the line endings `old` had: CRLF when most of its line breaks are (every
    line break then, the statements' own and a down half's included), and no final line
    break when it had none (editors keep both as they find them)."""
    crlf = old.count("\r\n")
    if crlf and crlf * 2 > old.count("\n"):
        new = _BARE_LF.sub("\r\n", new)
    if old and not old.endswith("\n"):
        new = new.removesuffix("\n").removesuffix("\r")
    return new


def _codes(
    plan: Plan, path: str, text: str, snapshot: Snapshot | None, file_transaction: bool
) -> set[str]:
    """The codes a lint of `text` alone finds (as `lint` reads the file)."""
    one = build_plan(
        [read_source(path, text)],
        catalog=snapshot.catalog if snapshot is not None else None,
        server_version=plan.server_version,
        file_transaction=file_transaction,
    )
    return {f.code for f in lint_plan(one, snapshot=snapshot).findings}


def _session_only(f: Finding) -> bool:
    """A fix that is only a session setting (the prologue writes it)."""
    return f.fix is not None and all(s.placement is Placement.SESSION for s in f.fix.statements)


def _by_path(steps: tuple[Step, ...]) -> dict[str, list[Step]]:
    """Steps grouped by source path, in plan order."""
    out: dict[str, list[Step]] = {}
    for step in steps:
        out.setdefault(step.location.path, []).append(step)
    return out


def write_fixes(fixes: list[FileFix]) -> None:
    """Write each rewrite in place (temp name, then rename), starting with the UTF-8 byte
    order mark the file starts with (Windows editors and SSMS write one; reading the
    file drops it from the text)."""
    for fx in fixes:
        target = Path(fx.path)
        tmp = target.with_name(target.name + ".pgwarden-fix")
        bom = _BOM if _starts_with_bom(target) else ""
        tmp.write_text(bom + fx.new, encoding="utf-8", newline="")  # its line endings as they are
        tmp.replace(target)


def _starts_with_bom(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(len(_BOM.encode())) == _BOM.encode()
    except FileNotFoundError:
        return False
