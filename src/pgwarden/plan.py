"""The model every command shares: a `Plan` is an ordered tuple of `Step`s.

A step holds one statement's SQL, where it came from, its parse tree, the
transaction it runs in, and the effects the lock model derived for it. Lint,
rehearse and apply all take a `Plan`; none of them parses SQL on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TypedDict, cast

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.effects import Effects
from pgwarden.analysis.inplan import ColumnFact, InPlan
from pgwarden.analysis.locks import analyse, union_effects
from pgwarden.analysis.locks_altertable import builtin_volatility
from pgwarden.analysis.nodes import (
    AlterTableCmd,
    CreateFunctionStmt,
    DeleteStmt,
    SelectStmt,
    TypeName,
    TypeOf,
    UpdateStmt,
    VariableSetStmt,
    dotted,
)
from pgwarden.analysis.parse import Body, Node, ParsedStatement, fingerprint, gc_paused, parse
from pgwarden.analysis.plpgsql import (
    body_statements,
    do_body,
    executes_argument,
    routine_body,
    sql_statements,
    transaction_control,
)
from pgwarden.errors import SqlParseError
from pgwarden.findings import slot_setter
from pgwarden.location import LineIndex, SourceLocation

__all__ = [
    "Plan",
    "SourceText",
    "Step",
    "TxMode",
    "Unanalysed",
    "build_plan",
    "destroys_existing",
]


class TxMode(Enum):
    """How a step relates to transactions."""

    AUTOCOMMIT = "autocommit"  # runs as its own implicit transaction
    EXPLICIT = "explicit"  # inside BEGIN ... COMMIT written in the source
    FILE = "file"  # inside the transaction the migration runner wraps each file in
    BODY = "body"  # a statement of a DO block or procedure body run outside any transaction


@dataclass(frozen=True, slots=True)
class SourceText:
    """The text of one source (a file, a revision, a command-line string)."""

    path: str
    text: str
    # What the migration framework says of columns the SQL changes (Alembic's
    # existing_type, Django's old field), each before the statement it precedes.
    facts: tuple[ColumnFact, ...] = ()
    # The migration tool runs it outside a transaction whatever `file_transaction` says
    # (goose's `-- +goose NO TRANSACTION`, dbmate's `transaction:false`).
    no_transaction: bool = False
    # Liquibase formatted SQL: (offset where each changeset starts, whether Liquibase runs
    # it in a transaction); each is a transaction of its own, whatever `file_transaction`.
    changesets: tuple[tuple[int, bool], ...] = ()
    # Flyway/Liquibase placeholders (`${schema}`) in the file as written, read as quoted
    # identifiers in `text` (sources.placeholders).
    placeholders: tuple[str, ...] = ()
    # psql meta-commands of psql's own state (`\set ON_ERROR_STOP on`), blanked in `text`.
    psql: tuple[str, ...] = ()
    # Types the migration framework says are enums (Alembic: a native sa.Enum an
    # alter_column names as type_ or existing_type), by name, lower case, without schema.
    enums: tuple[str, ...] = ()
    # The tool holds a transaction (or one query) around the file, so that a BEGIN in it
    # starts none: statements before it share its block, and those after its COMMIT one
    # more transaction (Flyway, golang-migrate, sqlx, diesel, Prisma, dbmate). Only when
    # the plan assumes file transactions.
    runner_transaction: bool = False
    # The tool sends the file to the server as one query (sources.updown.sent_as_one_query).
    one_query: bool = False
    # The tool sends each part between `--bun:split` lines as a query of its own, outside any
    # transaction (sources.updown.statements_apart).
    split_parts: bool = False
    # The parts the tool sends as one query each (bun's `--bun:split`), outside any
    # transaction: (offset where each starts, whether it holds several statements, which
    # then run as one implicit transaction).
    query_parts: tuple[tuple[int, bool], ...] = ()
    # The migration tool that certainly runs the file in a transaction (goose, dbmate,
    # sql-migrate, morph, sqlx: sources.updown.wrapping_tool), "" when not known.
    wrapped_by: str = ""


class Derived(TypedDict, total=False):
    """What rules/_sql.py reads from a step's tree once and every rule reuses."""

    cmds: tuple[tuple[str, AlterTableCmd], ...]  # ALTER TABLE (subtype, sub-command)
    table_of: str | None  # the table an ALTER TABLE changes
    column_defs: tuple[tuple[str, str, TypeName, str], ...]  # (table, column, type, where)
    column_types: tuple[tuple[str, str, str, TypeOf], ...]  # (table, column, where, type_of)
    dml_parts: list[tuple[str, UpdateStmt | DeleteStmt]]  # UPDATE/DELETE, its WITH's too


def _no_derived() -> Derived:
    return {}


@dataclass(frozen=True, slots=True)
class Unanalysed:
    """SQL inside a DO block or procedure body that pgwarden cannot analyse, and why."""

    location: SourceLocation
    text: str
    why: str


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of the plan."""

    index: int
    sql: str
    location: SourceLocation
    tree: Node
    tx_mode: TxMode
    transaction: int | None  # id of the transaction block; None when autocommit
    effects: Effects
    kind: str = field(init=False)  # the statement's node type, e.g. `AlterTableStmt`
    body: Body = field(init=False)  # the statement node's fields, untyped (typed: tree["<kind>"])
    # Values derived from `tree` once per step and reused by every rule (rules/_sql.py).
    derived: Derived = field(default_factory=_no_derived, init=False, repr=False, compare=False)
    # A DO (or a CALL of a procedure the plan creates): the statements of its body, as
    # sub-steps with this step's index, locations in the body, and their own effects
    # (`effects` above is their union: the body runs as one statement, in one transaction).
    inner: tuple[Step, ...] = ()
    unanalysed: tuple[Unanalysed, ...] = ()
    # A sub-step: where it sits and when it runs, in words appended to its findings.
    note: str = ""
    # A sub-step: the location its step had when the plan was built (sources that move
    # the step, e.g. to an Alembic op call, leave the sub-step's own location meaningless).
    built_at: SourceLocation | None = None
    # A sub-step of a body that COMMITs: the COMMITs before it (each starts a transaction;
    # its `transaction` is body_transaction(step, segment)).
    segment: int = 0

    def __post_init__(self) -> None:
        kind = next(iter(self.tree))
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "body", cast(Body, self.tree)[kind])

    @property
    def in_transaction(self) -> bool:
        return self.transaction is not None

    @property
    def is_transaction_control(self) -> bool:
        return self.kind == "TransactionStmt"

    @property
    def destructive(self) -> bool:
        return bool(self.effects.destroys)


@dataclass(frozen=True, slots=True)
class Plan:
    """An ordered list of steps built from one or more sources."""

    steps: tuple[Step, ...]
    sources: tuple[str, ...] = ()
    server_version: int | None = None
    texts: tuple[SourceText, ...] = ()
    assumptions: tuple[str, ...] = field(default=())

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def transactions(self) -> dict[int, tuple[Step, ...]]:
        """Steps grouped by transaction block id."""
        groups: dict[int, list[Step]] = {}
        for step in self.steps:
            if step.transaction is not None:
                groups.setdefault(step.transaction, []).append(step)
        return {k: tuple(v) for k, v in groups.items()}

    def lint_steps(self) -> Iterator[Step]:
        """The steps rules check, in order: a step with a body comes as itself without
        effects (its sub-steps carry them), followed by its sub-steps."""
        for step in self.steps:
            if not step.inner and not step.unanalysed:
                yield step
                continue
            yield Step(
                step.index,
                step.sql,
                step.location,
                step.tree,
                step.tx_mode,
                step.transaction,
                # no locks of its own; whether it may run in a transaction block is its own
                Effects(transactional=step.effects.transactional),
                unanalysed=step.unanalysed,
            )
            for sub in step.inner:  # sources renumber steps and transactions after the build
                if sub.built_at is not None and sub.built_at != step.location:
                    sub = _relocated(sub, step)
                tx = body_transaction(step, sub.segment)
                if sub.index != step.index or sub.transaction != tx:
                    sub = replace(sub, index=step.index, transaction=tx)
                yield sub

    def fingerprint(self) -> str:
        """sha256 over the statements' normalized fingerprints, in order.

        BEGIN/COMMIT are left out, as the implicit per-file transaction already is:
        a file with its own BEGIN/COMMIT and the same file run by a wrapping runner
        are the same plan (Django's atomic migrations are rehearsed one way and
        applied the other).
        """
        import hashlib  # not needed on the lint path

        h = hashlib.sha256()
        for step in self.steps:
            if step.is_transaction_control:
                continue
            h.update(fingerprint(step.sql).encode())
            h.update(b"\0")
        return h.hexdigest()


def destroyed_relation(what: str) -> str | None:
    """The relation a destroy entry of the lock model is about ("table t", "all rows of
    t", "every row of t overwritten (...)", "column t.c"); None for a schema or database."""
    for prefix in ("all rows of ", "every row of "):
        if what.startswith(prefix):
            return what.removeprefix(prefix).split(" (", 1)[0].removesuffix(" overwritten")
    if what.startswith("column "):
        return what.removeprefix("column ").rsplit(".", 1)[0]
    if what.startswith(("schema ", "database ")):
        return None
    return what.rsplit(" ", 1)[-1]


def destroys_existing(steps: Iterable[Step]) -> Iterator[tuple[Step, str]]:
    """(step, what) of each destroy among `steps` (in the order they run) of data that
    exists before them: not of a relation an earlier one of `steps` created, whose rows
    can only be the ones these steps wrote."""
    created: set[str] = set()
    for step in steps:
        for what in step.effects.destroys:
            rel = destroyed_relation(what)
            if rel is None or rel.removeprefix("public.") not in created:
                yield step, what
        created.update(c.removeprefix("public.") for c in step.effects.creates)


def _relocated(sub: Step, step: Step) -> Step:
    """A sub-step of a step a source moved (Alembic, Django: to the operation's line):
    placed at the step, its note naming the statement instead of a line."""
    cut = sub.note.find("; it runs only")
    when = sub.note[cut:-1] if cut >= 0 else ""
    text = " ".join(sub.sql.split())
    text = text if len(text) <= 60 else text[:59] + "…"
    note = f" (`{text}` in the PL/pgSQL body this runs, as one transaction{when})"
    return replace(sub, location=step.location, note=note, built_at=step.location)


def body_transaction(step: Step, segment: int = 0) -> int:
    """The transaction a DO / CALL body runs in: the step's, or its own (a negative id,
    distinct from every transaction block of the plan); in a body that COMMITs, the one
    its `segment`-th COMMIT starts."""
    return _segment_transaction(step.transaction, step.index, segment)


_SEGMENTS = 1 << 32  # ids of a body's later transactions: apart from every step's own


def _segment_transaction(transaction: int | None, index: int, segment: int) -> int:
    """body_transaction() of the step at `index` in `transaction` (None: autocommit). A
    body inside a transaction block fails at its COMMIT ("invalid transaction
    termination"): its statements are read as that block's."""
    if transaction is not None:
        return transaction
    return -(index + 1) - segment * _SEGMENTS


_new = object.__new__
_STEP_FIELDS = (
    "index",
    "sql",
    "location",
    "tree",
    "tx_mode",
    "transaction",
    "effects",
    "kind",
    "body",
    "derived",
    "inner",
    "unanalysed",
    "note",
    "built_at",
    "segment",
)
assert Step.__slots__ == _STEP_FIELDS, "_new_step() sets every field of Step"
# Each slot's own setter: a frozen dataclass's __init__ looks each field up by name
# through object.__setattr__, 2.5x the cost of these (one step per statement).
_index = slot_setter(Step, "index")
_sql = slot_setter(Step, "sql")
_location = slot_setter(Step, "location")
_tree = slot_setter(Step, "tree")
_tx_mode = slot_setter(Step, "tx_mode")
_transaction = slot_setter(Step, "transaction")
_effects = slot_setter(Step, "effects")
_kind = slot_setter(Step, "kind")
_body = slot_setter(Step, "body")
_derived = slot_setter(Step, "derived")
_inner = slot_setter(Step, "inner")
_unanalysed = slot_setter(Step, "unanalysed")
_note = slot_setter(Step, "note")
_built_at = slot_setter(Step, "built_at")
_segment = slot_setter(Step, "segment")


def _new_step(
    index: int,
    stmt: ParsedStatement,
    location: SourceLocation,
    mode: TxMode,
    transaction: int | None,
    effects: Effects,
    inner: tuple[Step, ...],
    unanalysed: tuple[Unanalysed, ...],
) -> Step:
    """`Step(...)` of a statement of a source, built without the frozen __init__'s cost."""
    step: Step = _new(Step)
    tree = stmt.tree
    kind = next(iter(tree))
    _index(step, index)
    _sql(step, stmt.text)
    _location(step, location)
    _tree(step, tree)
    _tx_mode(step, mode)
    _transaction(step, transaction)
    _effects(step, effects)
    _kind(step, kind)
    _body(step, cast(Body, tree)[kind])
    _derived(step, {})
    _inner(step, inner)
    _unanalysed(step, unanalysed)
    _note(step, "")
    _built_at(step, None)
    _segment(step, 0)
    return step


def _tx_kind(stmt: ParsedStatement) -> str | None:
    body = stmt.tree.get("TransactionStmt")
    return None if body is None else body.get("kind", "")


_BEGIN = {"TRANS_STMT_BEGIN", "TRANS_STMT_START"}
# A file carrying this line (`lint --fix` writes it) has no runner transaction: its own
# BEGIN ... COMMIT are all there is, and the statements outside them run one by one.
NO_FILE_TRANSACTION = "-- pgwarden: no-file-transaction"
_END = {
    "TRANS_STMT_COMMIT",
    "TRANS_STMT_ROLLBACK",
    "TRANS_STMT_PREPARE",
    "TRANS_STMT_COMMIT_PREPARED",
}


def _fact_order(fact: ColumnFact) -> int:
    return fact.before


def _timezone_set(body: VariableSetStmt, catalog: Catalog | None) -> str | None:
    """The TimeZone after `SET [LOCAL] TimeZone ...` / `RESET TimeZone` (None: not known)."""
    args = body.get("args")
    if body.get("kind") == "VAR_SET_VALUE" and args:
        return args[0].get("A_Const", {}).get("sval", {}).get("sval")
    return catalog.timezone if catalog is not None else None


def build_plan(
    sources: Iterable[tuple[SourceText, Sequence[ParsedStatement]]],
    *,
    catalog: Catalog | None = None,
    server_version: int | None = None,
    file_transaction: bool = False,
    timezone: str | None = None,
) -> Plan:
    """Steps from parsed sources, in order, with transaction blocks and effects.

    `file_transaction` models runners that wrap each file in one transaction
    (Alembic, Django, Flyway); explicit BEGIN/COMMIT in a file wins, except in a file
    whose tool holds a transaction around it (`SourceText.runner_transaction`): there
    statements outside the blocks join the next block (or one transaction of their own).
    A source's `facts` are taken right before the statement each precedes, where
    neither the catalog nor the statements before say anything of the column.
    `timezone`: the session's TimeZone when the plan starts, as a runner sets it
    (Django), taken as a `SET TimeZone` before the first statement would be.
    """
    with gc_paused():
        return _build_plan(sources, catalog, server_version, file_transaction, timezone)


def _build_plan(
    sources: Iterable[tuple[SourceText, Sequence[ParsedStatement]]],
    catalog: Catalog | None,
    server_version: int | None,
    file_transaction: bool,
    timezone: str | None,  # set by the runner, or by SET TimeZone earlier (one session)
) -> Plan:
    steps: list[Step] = []
    texts: list[SourceText] = []
    next_tx = 0
    inplan = InPlan(catalog)  # the catalog as earlier statements of the plan leave it
    procedures: dict[str, _Body] = {}  # PL/pgSQL procedures the plan creates, by name
    for source, stmts in sources:
        texts.append(source)
        tx_kinds = [_tx_kind(s) for s in stmts]
        # Liquibase changesets, or the parts a tool sends as one query each: transactions
        bounds = source.changesets or source.query_parts
        # pgwarden's own marker says how psql or apply runs the file, never how a tool that
        # sends it as one query or wraps it does (--fix writes it into files it rewrites)
        marked = NO_FILE_TRANSACTION in source.text and not (source.one_query or source.wrapped_by)
        explicit = source.no_transaction or marked or any(k in _BEGIN for k in tx_kinds)
        # a tool that sends the file as one query runs it as one transaction, and a tool
        # known to wrap it runs it in one, however the rest of the plan's files run
        wraps = file_transaction or source.one_query or bool(source.wrapped_by)
        wrap = wraps and not explicit and bool(stmts)
        # BEGIN inside the runner's transaction: what runs outside blocks joins them
        joined = (
            wraps
            and source.runner_transaction
            and not source.no_transaction
            and not bounds
            and not marked
            and any(k in _BEGIN for k in tx_kinds)
        )
        outside_tx: int | None = None  # joined: the transaction of statements outside blocks
        file_tx: int | None = None
        if wrap and not bounds:
            file_tx = next_tx
            next_tx += 1
        changeset = -1  # the Liquibase changeset the statement is in (-1: before the first)
        open_tx: int | None = None
        lines = LineIndex(source.text)
        facts = sorted(source.facts, key=_fact_order) if source.facts else []
        for at, stmt in enumerate(stmts):
            while facts and facts[0].before <= at:  # rare: a framework's word on a column
                inplan.assume(facts.pop(0))
            kind = tx_kinds[at]
            while changeset + 1 < len(bounds) and bounds[changeset + 1][0] <= stmt.start:
                changeset += 1
                file_tx = None
                if bounds[changeset][1]:
                    file_tx = next_tx
                    next_tx += 1
            if kind in _BEGIN and open_tx is None:
                if outside_tx is not None:
                    open_tx, outside_tx = outside_tx, None
                else:
                    open_tx = next_tx
                    next_tx += 1
            elif joined and open_tx is None and file_tx is None and kind is None:
                if outside_tx is None:
                    outside_tx = next_tx
                    next_tx += 1
                file_tx = outside_tx
            tx = open_tx if open_tx is not None else file_tx
            mode = (
                TxMode.EXPLICIT
                if open_tx is not None
                else TxMode.FILE
                if file_tx is not None
                else TxMode.AUTOCOMMIT
            )
            line, col = lines.line_col(stmt.start)
            setting = stmt.tree.get("VariableSetStmt")
            if setting is not None and setting.get("name") == "timezone":
                timezone = _timezone_set(setting, catalog)
            location = SourceLocation(source.path, line, col)
            body = _Body.of(stmt, source, lines, location, procedures)
            inner: tuple[Step, ...] = ()
            unanalysed: tuple[Unanalysed, ...] = ()
            if body is None:
                effects = analyse(
                    stmt.tree,
                    catalog=catalog,
                    server_version=server_version,
                    timezone=timezone,
                    inplan=inplan,
                )
            else:
                inner, unanalysed = body.steps(
                    len(steps),
                    tx,
                    mode if tx is not None else TxMode.BODY,
                    catalog,
                    server_version,
                    timezone,
                    inplan,
                    location,
                    procedures,
                )
                effects = union_effects(
                    ((s.effects, "; it runs only" in s.note) for s in inner),
                    (u.text for u in unanalysed),
                    body.where,
                )
                # the body's type changes from a known type too (PW104 names the old type)
                effects = replace(
                    effects,
                    type_changes=tuple(c for s in inner for c in s.effects.type_changes),
                    # a body that COMMITs cannot run inside a transaction block
                    transactional=body.sql or transaction_control(body.text) is None,
                )
            steps.append(
                _new_step(len(steps), stmt, location, mode, tx, effects, inner, unanalysed)
            )
            inplan.observe(stmt.tree)
            if joined and open_tx is None:
                file_tx = None  # the outside statements' own, set again for the next one
            if kind in _END:
                open_tx = None
    return Plan(tuple(steps), tuple(t.path for t in texts), server_version, tuple(texts))


@dataclass(frozen=True, slots=True)
class _Body:
    """A PL/pgSQL body in the sources: its text and where it starts."""

    text: str
    path: str
    lines: LineIndex
    start: int | None  # character offset of the body in its source (None: not verbatim)
    location: SourceLocation  # of the DO / CREATE PROCEDURE statement
    where: str  # "the DO block at line 3", "procedure p (created at line 3)"
    call: bool = False  # reached through a CALL: the statement's effects are the body's
    sql: bool = False  # plain SQL a function EXECUTEs (`select run_sql($$...$$)`)
    function: str = ""  # sql: the function it is passed to
    known: bool = True  # sql: the plan creates that function (False: it may run it)

    @staticmethod
    def of(
        stmt: ParsedStatement,
        source: SourceText,
        lines: LineIndex,
        location: SourceLocation,
        procedures: dict[str, _Body],
    ) -> _Body | None:
        """The body a DO runs or a CALL reaches; records a CREATE PROCEDURE's body."""
        path = source.path
        tree = stmt.tree
        do = tree.get("DoStmt")
        if do is not None:
            text, language = do_body(do.get("args"))
            if text is None or language != "plpgsql":
                return None
            where = f"the DO block at line {location.line}"
            return _Body(text, path, lines, _offset(source.text, stmt, text), location, where)
        routine = tree.get("CreateFunctionStmt")
        if routine is not None:
            _record_procedure(routine, stmt, source, lines, location, procedures)
            return None
        select = tree.get("SelectStmt")
        if select is not None:
            run = _executed_string(select, procedures)
            if run is not None:
                name, text, plan_made = run
                where = f"the SQL passed to {name}() at line {location.line}"
                start = _offset(source.text, stmt, text)
                return _Body(
                    text,
                    path,
                    lines,
                    start,
                    location,
                    where,
                    sql=True,
                    function=name,
                    known=plan_made,
                )
        return _called(tree, procedures, location.line)

    def steps(
        self,
        index: int,
        transaction: int | None,
        mode: TxMode,
        catalog: Catalog | None,
        server_version: int | None,
        timezone: str | None,
        inplan: InPlan,
        owner: SourceLocation,
        procedures: dict[str, _Body] | None = None,
        segment: int = 0,
        cond: str | None = None,
        depth: int = 0,
    ) -> tuple[tuple[Step, ...], tuple[Unanalysed, ...]]:
        """The body's statements as sub-steps of step `index` (in `transaction`, None:
        autocommit, each in the body's own), and what is not analysable. A statement that
        calls a routine the plan created (`procedures`: PERFORM f(), CALL p()) stands for
        that routine's statements, `depth` calls deep at most 3; `segment` and `cond`: the
        COMMITs before the call and when it runs."""
        inner: list[Step] = []
        unanalysed: list[Unanalysed] = []
        if not self.known:
            why = (
                f"it is SQL in a string passed to {self.function}(), a"
                " function the linted files do not create: if it EXECUTEs its argument, this"
                " SQL runs (lint together with the migration that creates the function)"
            )
            return (), (Unanalysed(self.location, self.text, why),)
        # a body that COMMITs (a batched backfill) is not one transaction
        whole = (
            ", which commits as it goes"
            if not self.sql and transaction_control(self.text) is not None
            else ", which runs as one transaction"
        )
        for part in sql_statements(self.text) if self.sql else body_statements(self.text):
            if self.start is None:
                loc = self.location
            else:
                line, col = self.lines.line_col(self.start + part.offset)
                loc = SourceLocation(self.path, line, col)
            if part.tree is None:
                unanalysed.append(Unanalysed(loc, part.text, part.dynamic or "not analysable"))
                continue
            condition = "; ".join(c for c in (cond, part.condition) if c) or None
            here = segment + part.commits
            called = (
                _called(part.tree, procedures, loc.line, self.where)
                if procedures is not None and depth < _CALL_DEPTH and not self.sql
                else None
            )
            if called is not None:
                more, missed = called.steps(
                    index,
                    transaction,
                    mode,
                    catalog,
                    server_version,
                    timezone,
                    inplan,
                    owner,
                    procedures,
                    here,
                    condition,
                    depth + 1,
                )
                inner.extend(more)
                unanalysed.extend(missed)
                continue
            when = f"; it runs only {condition}" if condition else ""
            inner.append(
                Step(
                    index=index,
                    sql=part.text,
                    location=loc,
                    tree=part.tree,
                    tx_mode=mode,
                    transaction=_segment_transaction(transaction, index, here),
                    effects=analyse(
                        part.tree,
                        catalog=catalog,
                        server_version=server_version,
                        timezone=timezone,
                        inplan=inplan,
                    ),
                    note=f" (in {self.where}{whole}{when})",
                    built_at=owner,
                    segment=here,
                )
            )
            inplan.observe(part.tree)  # later statements see what this one created
        return tuple(inner), tuple(unanalysed)


_CALL_DEPTH = 3  # routines calling routines: followed this deep


def _called(
    tree: Node, procedures: dict[str, _Body], line: int, body: str | None = None
) -> _Body | None:
    """The body a statement (at `line`; of the PL/pgSQL body `body` describes, or at the
    top level) runs by calling a routine the plan created in PL/pgSQL: the procedure of a
    CALL, the function of a `SELECT f(...)` (a PERFORM in a body) that selects nothing
    else and reads no table (it runs once)."""
    call = tree.get("CallStmt")
    if call is not None:
        known = procedures.get(dotted(call.get("funccall", {}).get("funcname")))
        verb = "CALL"
    else:
        select = tree.get("SelectStmt")
        targets = (select or {}).get("targetList") or []
        if select is None or len(targets) != 1 or select.get("fromClause"):
            return None
        func = targets[0].get("ResTarget", {}).get("val", {}).get("FuncCall")
        if func is None:
            return None
        known = procedures.get(_FUNCTION + dotted(func.get("funcname")))
        verb = "SELECT" if body is None else "PERFORM (or SELECT)"
    if known is None or not known.text:
        return None
    at = f"at line {line}" if body is None else f"at line {line} of {body}"
    return replace(known, where=f"{known.where}, run by the {verb} {at}", call=True)


def _offset(text: str, stmt: ParsedStatement, body: str) -> int | None:
    """Where the body starts in the source: after the statement's start (an SQL file, or
    the SQL literal of an Alembic op.execute in the revision file); None: not verbatim."""
    at = text.find(body, stmt.start) if body else -1
    return None if at < 0 else at


_EXECUTOR = "executor "  # key prefix of functions that EXECUTE their argument
_FUNCTION = "function "  # key prefix of the plan's other functions


def _executed_string(
    select: SelectStmt, procedures: dict[str, _Body]
) -> tuple[str, str, bool] | None:
    """(function, SQL, known) of `SELECT f('<sql>') [WHERE ...]` when the plan created f
    as a function that EXECUTEs its first argument (known), or when f is neither built in
    nor created by the plan and the string is SQL that is not only queries (it may run
    it: not known); None otherwise."""
    targets = select.get("targetList") or []
    if len(targets) != 1 or select.get("fromClause"):
        return None
    call = targets[0].get("ResTarget", {}).get("val", {}).get("FuncCall")
    if call is None or len(call.get("args") or ()) != 1:
        return None
    name = dotted(call.get("funcname"))
    arg: Node = (call.get("args") or [{}])[0]
    text = arg.get("A_Const", {}).get("sval", {}).get("sval")
    if text is None:
        return None
    if _EXECUTOR + name in procedures:
        return name, text, True
    if (
        name.removeprefix("pg_catalog.") in builtin_volatility()
        or _FUNCTION + name in procedures
        or name in procedures
    ):
        return None  # built in, or the plan's own function (or procedure) that does not run it
    try:
        kinds = {next(iter(p.tree)) for p in parse(text)}
    except SqlParseError:
        return None
    return (name, text, False) if kinds - {"SelectStmt"} else None


def _record_procedure(
    routine: CreateFunctionStmt,
    stmt: ParsedStatement,
    source: SourceText,
    lines: LineIndex,
    location: SourceLocation,
    procedures: dict[str, _Body],
) -> None:
    path = source.path
    text, language = routine_body(routine.get("options"))
    name = dotted(routine.get("funcname"))
    if not routine.get("is_procedure"):
        # a function that EXECUTEs its first argument: the SQL of `select f('...')` runs
        params = [p.get("FunctionParameter", {}) for p in routine.get("parameters") or ()]
        first = params[0].get("name") if params else None
        if text is not None and language == "plpgsql" and executes_argument(text, first):
            procedures[_EXECUTOR + name] = _Body(text, path, lines, None, location, name)
            procedures.pop(_FUNCTION + name, None)
        else:  # its body, when PL/pgSQL: what a `SELECT f()` or PERFORM of it runs
            body = text if text is not None and language == "plpgsql" else ""
            where = f"function {name} (created at line {location.line})"
            at = _offset(source.text, stmt, body) if body else None
            procedures[_FUNCTION + name] = _Body(body, path, lines, at, location, where)
            procedures.pop(_EXECUTOR + name, None)
        return
    if text is None or language != "plpgsql":
        procedures.pop(name, None)
        return
    where = f"procedure {name} (created at line {location.line})"
    procedures[name] = _Body(text, path, lines, _offset(source.text, stmt, text), location, where)
