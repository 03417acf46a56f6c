"""Replace hazardous steps by the rules' fixes: `apply --rewrite`, `lint --fix`.

Every finding whose `Fix` is mechanical replaces its step (the first such
finding per step). Each statement of the fix goes where its `Placement` says:
`IN_PLACE` where the step was (same transaction), `BEFORE` alone before the
step's transaction begins, `AFTER` after it commits, each in its own
transaction; `SESSION` settings are left to the caller (`lint --fix` writes a
bounded prologue, `apply` sets its own timeouts). A statement that cannot run
in a transaction but sits in one is moved out too.

A statement moved out goes before its transaction only when no earlier statement
that stays in the transaction could be something it needs or changes what it
does; otherwise the transaction is split at its place (what came before commits,
the statement runs, the rest follows in a new transaction). If in doubt, split:
only these are known to leave it as it was: BEGIN, COMMENT, a SET of a timeout or
application_name, and DDL or a read of relations it does not name (by name,
or a name starting with theirs and `_`: the server's names for a table's index,
sequence, ...; an ALTER TABLE of its own table that only adds a column it does not
name, without a rewrite). Everything else keeps it after: the creation of an
extension, function, procedure, type, domain, collation, operator class or
schema, a rename to or of what it names, SET search_path or ROLE, a DO block or
CALL, a call of a function that is not built in, any statement writing rows (a
cascading foreign key or a trigger may write its table), any change of its own
table, a DROP of an index of its name, and, when its table is unknown (a DROP or
REINDEX of an index without a catalog), any statement on a relation. A fix that
would move a statement out of a transaction after a SET LOCAL (other than of a
timeout: search_path, role, ...) is not made: the statement and those after it
would run without the setting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.context import Snapshot
from pgwarden.analysis.effects import Effects
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.locks_altertable import builtin_volatility
from pgwarden.analysis.nodes import Node, func_calls, strings, walk
from pgwarden.analysis.parse import parse
from pgwarden.findings import Finding, Fix, Placement
from pgwarden.lint.engine import lint_plan
from pgwarden.plan import Plan, Step, TxMode
from pgwarden.rules._sql import object_name

__all__ = ["Rewrite", "rewrite_plan", "statement_changes"]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One replaced step: which rule, the original SQL, the statements replacing it."""

    step: int
    code: str
    original: str
    replacement: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _New:
    sql: str
    tree: Node
    origin: Step
    transaction: int | None


_WORD = re.compile(r'"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)')

# Settings an earlier SET may change without changing what a moved statement does or
# names (search_path, role, default_tablespace, ... do: the statement follows them).
_INERT_SETTINGS = frozenset(
    {
        "lock_timeout",
        "statement_timeout",
        "idle_in_transaction_session_timeout",
        "idle_session_timeout",
        "transaction_timeout",
        "application_name",
        "transaction",  # SET TRANSACTION ISOLATION LEVEL ...
    }
)
# Statements that act on relations only (the names they touch, create or give are
# compared with the moved statement's); every other kind (an extension, function,
# procedure, type, domain, collation, operator class, schema, SET search_path, a DO
# block, a CALL, ...) may be anything a later statement needs.
_ON_RELATIONS = frozenset(
    {
        "SelectStmt",
        "AlterTableStmt",
        "IndexStmt",
        "CreateStmt",
        "CreateTableAsStmt",
        "ViewStmt",
        "CreateSeqStmt",
        "AlterSeqStmt",
        "LockStmt",
        "VacuumStmt",
    }
)
# Statements that write rows: a cascading foreign key or a trigger may write any table
# (the rows of a unique index's duplicates, of an expression's bad values), wherever
# they sit, even in a SELECT's WITH.
_WRITES = frozenset(
    {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "TruncateStmt", "CopyStmt"}
)
_RELATION_OBJECTS = frozenset(
    {
        "OBJECT_TABLE",
        "OBJECT_INDEX",
        "OBJECT_VIEW",
        "OBJECT_MATVIEW",
        "OBJECT_SEQUENCE",
        "OBJECT_FOREIGN_TABLE",
        "OBJECT_COLUMN",
        "OBJECT_TABCONSTRAINT",
    }
)
# Tree fields that name a relation, column, constraint or index a statement touches or gives.
_NAME_FIELDS = frozenset({"relname", "newname", "subname", "conname", "idxname", "indexname"})
# An ADD COLUMN that neither rewrites nor builds anything leaves a later statement that
# does not name its column as it was: these column constraints build nothing.
_PLAIN_COLUMN = frozenset({"CONSTR_NULL", "CONSTR_NOTNULL", "CONSTR_DEFAULT"})


class _Kept:
    """A statement that stays where it is in its transaction's order (a step, what a fix
    put in its place, or a statement run between two parts of the transaction)."""

    __slots__ = ("_touched", "effects", "kind", "tree")

    def __init__(self, tree: Node, effects: Effects) -> None:
        self.kind = next(iter(tree))
        self.tree = tree
        self.effects = effects
        self._touched: set[str] | bool | None = False  # not read yet

    def touched(self) -> set[str] | None:
        """`_touched` of this statement, read once."""
        if self._touched is False:
            self._touched = _touched(self)
        return self._touched if isinstance(self._touched, set) else None


def _kept(tree: Node, cat: Catalog | None, server_version: int | None) -> _Kept:
    return _Kept(tree, analyse(tree, catalog=cat, server_version=server_version))


def _bare(name: str) -> str:
    """The last part of a (qualified, maybe quoted) name, as _WORD reads it."""
    parts = [m.group(1) or m.group(2).lower() for m in _WORD.finditer(name)]
    return parts[-1].replace('""', '"') if parts else name


def _names(sql: str, effects: Effects) -> frozenset[str]:
    """Every name a moved statement may refer to: its words, its relations."""
    words = {(m.group(1) or m.group(2).lower()).replace('""', '"') for m in _WORD.finditer(sql)}
    words |= {_bare(lock.relation) for lock in effects.locks}
    words |= {_bare(c) for c in effects.creates}
    return frozenset(words)


def _plain_columns(kept: _Kept) -> frozenset[str] | None:
    """The columns of an ALTER TABLE that only adds columns, without rewriting the table or
    building anything (None: it does more)."""
    stmt = kept.tree.get("AlterTableStmt")
    if (
        stmt is None
        or kept.effects.rewrites
        or stmt.get("objtype", "OBJECT_TABLE") != "OBJECT_TABLE"
    ):
        return None
    columns: set[str] = set()
    for cmd in stmt.get("cmds") or ():
        fields = cmd.get("AlterTableCmd", {})
        column = fields.get("def", {}).get("ColumnDef")
        if fields.get("subtype") != "AT_AddColumn" or column is None:
            return None
        if column.get("identity") or column.get("generated"):
            return None
        for con in column.get("constraints") or ():
            if con.get("Constraint", {}).get("contype") not in _PLAIN_COLUMN:
                return None
        name = column.get("colname")
        if isinstance(name, str):
            columns.add(name)
    return frozenset(columns)


def _touched(kept: _Kept) -> set[str] | None:
    """The names of the relations (and columns, constraints, indexes) a statement
    locks, creates, drops, renames or gives; None when it may change other objects too
    (it writes rows, calls a function that is not built in, or set_config)."""
    out = {_bare(lock.relation) for lock in kept.effects.locks}
    out |= {_bare(c) for c in kept.effects.creates}
    for key, value in walk(kept.tree):
        if key in _WRITES:
            return None
        if key in _NAME_FIELDS and isinstance(value, str):
            out.add(value)
    for call in func_calls(kept.tree, []):
        name = strings(call.get("funcname"))[-1:]
        if not name or name[0] not in builtin_volatility() or name[0] == "set_config":
            return None
    drop = kept.tree.get("DropStmt")
    if drop is not None:
        for obj in drop.get("objects") or ():
            out.add(_bare(object_name(obj)))
    return out


def _on_relations(kept: _Kept) -> bool:
    """Whether a statement acts on relations only (DDL of a table, view, sequence or
    index, a read): the names it touches tell what it may change."""
    drop = kept.tree.get("DropStmt")
    if drop is not None:
        return drop.get("removeType") in _RELATION_OBJECTS
    rename = kept.tree.get("RenameStmt")
    if rename is not None:
        return rename.get("renameType") in _RELATION_OBJECTS
    return kept.kind in _ON_RELATIONS


class _Earlier:
    """A transaction's statements so far that stay in its order, as `may_need` asks
    about them: each is read once, when a moved statement first asks (a transaction of
    n statements and m moved ones costs n + m, not n x m)."""

    __slots__ = ("_always", "_any", "_kept", "_other", "_plain", "_read")

    def __init__(self) -> None:
        self._kept: list[_Kept] = []
        self._read = 0  # how many of them are indexed below
        self._any = False  # one that is not a BEGIN, a COMMENT or a SET of a timeout
        self._always = False  # one that every moved statement may need
        self._other: set[str] = set()  # names touched by one that is not a plain ADD COLUMN
        self._plain: dict[str, set[str]] = {}  # name -> columns plain ADD COLUMNs of it add

    def append(self, kept: _Kept) -> None:
        self._kept.append(kept)

    def extend(self, kept: list[_Kept]) -> None:
        self._kept.extend(kept)

    def _index(self) -> None:
        for kept in self._kept[self._read :]:
            if kept.kind in ("TransactionStmt", "CommentStmt"):
                continue
            setting = kept.tree.get("VariableSetStmt")
            if setting is not None and str(setting.get("name", "")).lower() in _INERT_SETTINGS:
                continue
            self._any = True
            touched = kept.touched() if setting is None and _on_relations(kept) else None
            if touched is None:  # search_path, role, RESET ALL, a function, a row write, ...
                self._always = True
                continue
            columns = _plain_columns(kept)
            if columns is None:
                self._other |= touched
            else:
                for name in touched:
                    self._plain.setdefault(name, set()).update(columns)
        self._read = len(self._kept)

    def may_need(self, sql: str, tree: Node, cat: Catalog | None) -> bool:
        """Whether the moved statement `sql` may need (or do otherwise after) one of these
        statements: if in doubt, yes. One that touches a name it names (or its names' heads)
        counts, unless it only adds columns it does not name to a table."""
        self._index()
        if self._always:
            return True
        effects = analyse(tree, catalog=cat)
        # A statement whose table is unknown (DROP INDEX of an index the catalog does not
        # give, REINDEX SCHEMA) may need any relation's statement.
        if not any(lock.relkind != "index" for lock in effects.locks):
            return self._any
        names = _names(sql, effects)
        # Its names and what they start with before a `_`: the server names a table's
        # index, sequence, constraint, ... after the table (t_pkey, t_id_seq).
        heads = set(names)
        for word in names:
            heads.update(word[:i] for i, ch in enumerate(word) if ch == "_" and i)
        if not self._other.isdisjoint(heads):
            return True
        return any(not self._plain[h].isdisjoint(names) for h in heads if h in self._plain)


# Settings whose SET LOCAL the rewrite may drop: a moved statement gets the caller's own.
_TIMEOUTS = frozenset({"lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout"})


def _sets_local(step: Step) -> bool:
    """SET LOCAL of something other than a timeout (search_path, role, ...)."""
    body = step.tree.get("VariableSetStmt")
    return body is not None and bool(body.get("is_local")) and body.get("name") not in _TIMEOUTS


def statement_changes(fix: Fix, step: Step) -> bool:
    """Whether a mechanical fix changes the plan's statements (not only session settings)."""
    if not fix.mechanical:
        return False
    rest = [s for s in fix.statements if s.placement is not Placement.SESSION]
    unchanged = (
        len(rest) == 1
        and rest[0].placement is Placement.IN_PLACE
        and rest[0].sql.rstrip().rstrip(";").strip() == step.sql.rstrip().rstrip(";").strip()
    )
    return bool(rest) and not unchanged


def rewrite_plan(
    plan: Plan,
    *,
    snapshot: Snapshot | None = None,
    catalog: Catalog | None = None,
    skip: frozenset[int] = frozenset(),
    findings: Sequence[Finding] | None = None,
) -> tuple[Plan, tuple[Rewrite, ...]]:
    """The plan with rewritable hazards replaced, and what was replaced.

    `skip`: steps whose fixes are left out (`lint --fix` drops a fix that would
    bring in a hazard of its own). `findings`: the plan's findings as the caller's lint
    reported them (its settings' and inline ignores applied: an ignored hazard is not
    rewritten); by default the plan is linted here with every rule.
    """
    cat = catalog if catalog is not None else (snapshot.catalog if snapshot else None)
    fixes: dict[int, tuple[str, Fix]] = {}
    reported = findings if findings is not None else lint_plan(plan, snapshot=snapshot).findings
    for f in reported:
        if (
            f.fix is not None
            and f.step is not None
            and f.step not in fixes
            and f.step not in skip
            and statement_changes(f.fix, plan.steps[f.step])
        ):
            fixes[f.step] = (f.code, f.fix)

    before: dict[int, list[_New]] = {}
    after: dict[int, list[_New]] = {}
    inplace: dict[int, list[_New]] = {}
    split: dict[int, list[_New]] = {}  # run where the step was, between two transactions
    rewrites: list[Rewrite] = []
    # Each transaction's statements so far that stay in its order: a moved statement may
    # go before the transaction only when it cannot need one of them.
    kept: dict[int, _Earlier] = {}
    scoped: set[int] = set()  # transactions with a SET LOCAL (not of a timeout) so far
    for step in plan.steps:
        tx = step.transaction
        earlier = kept.setdefault(tx, _Earlier()) if tx is not None else _Earlier()
        if tx is not None and _sets_local(step):
            scoped.add(tx)
        if step.index in fixes:
            code, fix = fixes[step.index]
            placed = [
                (stmt.text, stmt.tree, fs.placement)
                for fs in fix.statements
                if fs.placement is not Placement.SESSION
                for stmt in parse(fs.sql, step.location.path)
            ]
            if tx in scoped and any(
                p is not Placement.IN_PLACE or not analyse(t).transactional for _, t, p in placed
            ):
                # moved out of (or splitting) its transaction, it and what follows would run
                # without the SET LOCAL (search_path, role) before it: left as it is
                earlier.append(_Kept(step.tree, step.effects))
                continue
        elif tx is not None and not step.effects.transactional and not step.is_transaction_control:
            code, placed = "tx", [(step.sql, step.tree, Placement.BEFORE)]
        else:
            earlier.append(_Kept(step.tree, step.effects))
            continue
        rewrites.append(Rewrite(step.index, code, step.sql, tuple(q for q, _, _ in placed)))
        mine: list[_New] = []
        runs: list[_Kept] = []  # of this step, what runs at its place between two parts
        stays: list[_Kept] = []  # and what stays in the transaction (after those)
        splitting = False  # once one of a fix's statements runs at its place, the rest do
        for sql_text, tree, placement in placed:
            new = _New(sql_text, tree, step, None)
            if placement is Placement.IN_PLACE and analyse(tree).transactional:
                mine.append(replace(new, transaction=tx))
                stays.append(_kept(tree, cat, plan.server_version))
            elif placement is Placement.AFTER:
                after.setdefault(step.index, []).append(new)
            elif tx is not None and (splitting or earlier.may_need(sql_text, tree, cat)):
                split.setdefault(step.index, []).append(new)
                runs.append(_kept(tree, cat, plan.server_version))
                splitting = True
            else:  # BEFORE, or anything that cannot run in a transaction block
                before.setdefault(step.index, []).append(new)
        earlier.extend(runs + stays)
        inplace[step.index] = mine

    if not rewrites:
        return plan, ()

    # Moves relative to transactions: before the first step, after the last.
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for step in plan.steps:
        if step.transaction is not None:
            first.setdefault(step.transaction, step.index)
            last[step.transaction] = step.index
    pre: dict[int, list[_New]] = {}
    post: dict[int, list[_New]] = {}
    for idx, items in before.items():
        tx = plan.steps[idx].transaction
        pre.setdefault(first[tx] if tx is not None else idx, []).extend(items)
    for idx, items in after.items():
        tx = plan.steps[idx].transaction
        post.setdefault(last[tx] if tx is not None else idx, []).extend(items)

    out: list[_New] = []
    next_tx = 1 + max((s.transaction for s in plan.steps if s.transaction is not None), default=-1)
    renamed: dict[int, int] = {}  # a split transaction's id -> the id of its second part
    for step in plan.steps:
        out.extend(pre.get(step.index, []))
        if step.index in split and step.transaction is not None:
            out.extend(split[step.index])
            renamed[step.transaction] = next_tx
            next_tx += 1
        here = inplace.get(step.index, [_New(step.sql, step.tree, step, step.transaction)])
        for new in here:
            tx = new.transaction
            out.append(replace(new, transaction=renamed.get(tx, tx)) if tx is not None else new)
        out.extend(post.get(step.index, []))

    steps: list[Step] = []
    for i, new in enumerate(out):
        same = new.sql == new.origin.sql and new.transaction == new.origin.transaction
        steps.append(
            Step(
                index=i,
                sql=new.sql,
                location=new.origin.location,
                tree=new.tree,
                tx_mode=new.origin.tx_mode if new.transaction is not None else TxMode.AUTOCOMMIT,
                transaction=new.transaction,
                effects=new.origin.effects
                if same
                else analyse(new.tree, catalog=cat, server_version=plan.server_version),
            )
        )
    return (
        Plan(tuple(steps), plan.sources, plan.server_version, plan.texts, plan.assumptions),
        tuple(rewrites),
    )
