"""What a rule is, and the context a rule checks a step in.

A rule module holds its documentation (module docstring with fixed sections),
its metadata, `check()` and optionally `fix()`, and exports `RULE`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast

from pgwarden.analysis.context import Snapshot, estimate_seconds
from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.nodes import A_Const, UpdateStmt, VariableSetStmt, strings
from pgwarden.analysis.selectivity import literal
from pgwarden.findings import Fix, Severity, slot_setter
from pgwarden.location import SourceLocation
from pgwarden.plan import Plan, Step
from pgwarden.rules._sql import alter_cmds, catalog_relation, dml_parts, regclass, table_of
from pgwarden.settings import UnknownTypeChange

__all__ = [
    "DOC_SECTIONS",
    "DmlLimits",
    "Hit",
    "LintContext",
    "Rule",
    "TableJudgement",
    "describe_lock",
]

DOC_SECTIONS = (
    "What it does",
    "Why is this bad?",
    "Example",
    "Use instead",
    "Fix safety",
    "References",
)

# Below these a table is "small": locking it is a note, not an outage.
SMALL_ROWS = 10_000
SMALL_BYTES = 10 * 1024 * 1024
# At or above these a table is "large or busy": locking it is an error.
BUSY_WRITES_PER_S = 5.0
LONG_LOCK_S = 1.0


@dataclass(frozen=True, slots=True, init=False)
class Hit:
    """What `check()` yields: the message and help; the rule adds code, severity, place."""

    message: str
    help: str
    severity: Severity = Severity.ERROR
    fix: Fix | None = None
    location: SourceLocation | None = None  # where it is, when not at the step's start

    # Each slot set through its own setter: a third of the frozen dataclass __init__'s
    # cost per field (rules yield a hit per finding).
    def __init__(
        self,
        message: str,
        help: str,
        severity: Severity = Severity.ERROR,
        fix: Fix | None = None,
        location: SourceLocation | None = None,
    ) -> None:
        _hit_message(self, message)
        _hit_help(self, help)
        _hit_severity(self, severity)
        _hit_fix(self, fix)
        _hit_location(self, location)


_hit_message, _hit_help, _hit_severity, _hit_fix, _hit_location = (
    slot_setter(Hit, name) for name in ("message", "help", "severity", "fix", "location")
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One hazard: code, name, documentation, check and optional fix."""

    code: str
    name: str
    summary: str
    doc: str
    check: Callable[[Step, LintContext], Iterable[Hit]]
    # Statement kinds (parse-tree node names) the rule inspects; None: every statement.
    kinds: frozenset[str] | None = None
    # ALTER TABLE sub-commands (`AT_*` subtypes) the rule inspects when the statement is an
    # ALTER TABLE: it is not run on one that has none of them. None: every ALTER TABLE.
    subtypes: frozenset[str] | None = None
    # Called once per step, after every rule checked it: keeps rule state up to date
    # in `ctx.state[code]`, so no rule rescans earlier steps.
    observe: Callable[[Step, LintContext], None] | None = None
    # Statement kinds `observe` looks at; None: every statement.
    observe_kinds: frozenset[str] | None = None

    def sections(self) -> dict[str, str]:
        """The doc's `## Section` bodies by title."""
        parts = cast("list[str]", re.split(r"^## +(.+?)\s*$", self.doc, flags=re.M))
        return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


@dataclass(frozen=True, slots=True)
class TableJudgement:
    """How much locking a table hurts, and the words that explain why."""

    severity: Severity | None  # None: created in this plan, nothing to protect
    size: str  # "5.0M rows, 1.2 GB, 310 writes/s" or the assumption made


@dataclass(frozen=True, slots=True)
class DmlLimits:
    """PW142's thresholds (settings dml_max_rows, dml_max_share) and planner estimates."""

    max_rows: int = 100_000
    max_share: float = 0.1
    # step index -> (rows the planner expects the UPDATE/DELETE to touch, rows of the table)
    planner_rows: dict[int, tuple[float, float]] = field(default_factory=dict)


# Statements that may write values into existing rows (LintContext._forget_written_values)
_WRITE_KINDS = frozenset(
    {"UpdateStmt", "InsertStmt", "CopyStmt", "AlterTableStmt", "SelectStmt", "DeleteStmt"}
)


@dataclass(slots=True)
class LintContext:
    """The plan being linted, the stats snapshot, and what earlier steps did."""

    plan: Plan
    snapshot: Snapshot | None = None
    created: set[str] = field(default_factory=set)  # relations created by earlier steps
    # Without a snapshot, relations an earlier migration (file) created: it may have run
    # long ago, so they are not new any more (relation -> that file).
    earlier: dict[str, str] = field(default_factory=dict)
    unit: str | None = None  # the file of the step being linted
    dropped: set[str] = field(default_factory=set)  # tables dropped by earlier steps
    # lock_timeout in ms by scope: a transaction id for SET LOCAL, None for the session.
    lock_timeouts: dict[int | None, int] = field(default_factory=dict)
    held: dict[int, dict[str, tuple[LockMode, Step]]] = field(default_factory=dict)
    added_columns: set[tuple[str, str]] = field(default_factory=set)  # (table, column)
    # of those, added without a DEFAULT (NULL in every row there was): table -> columns
    added_null: dict[str, set[str]] = field(default_factory=dict)
    # ... and with a constant DEFAULT (that value in every row there was): table -> {column:
    # the default as text}
    added_default: dict[str, dict[str, str]] = field(default_factory=dict)
    dml: DmlLimits = field(default_factory=DmlLimits)
    unknown_type_change: UnknownTypeChange = "warning"  # setting: PW104 without a catalog
    state: dict[str, object] = field(default_factory=dict)  # per rule code, kept by Rule.observe

    def held_before(self, step: Step) -> dict[str, tuple[LockMode, Step]]:
        """Locks earlier steps of `step`'s transaction still hold: relation -> (mode, step)."""
        if step.transaction is None:
            return {}
        return self.held.get(step.transaction, {})

    def enter(self, step: Step) -> None:
        """Start linting `step`. Its file is one migration: without a snapshot nothing
        tells whether an earlier file already ran (a folder of migrations holds years of
        them), so what earlier files created or added is not new any more."""
        path = step.location.path
        if path == self.unit:
            return
        if self.unit is not None and not path.endswith(".py"):
            # Nor does an earlier .sql file's session SET lock_timeout cover this one: it may
            # run alone, in a deploy and on a connection of its own. (An Alembic or Django
            # migration is a .py file: env.py's or the runner's settings cover them all.)
            self.lock_timeouts.clear()
        if self.unit is not None and self.snapshot is None:
            self.earlier.update(dict.fromkeys(self.created, self.unit))
            self.created.clear()
            self.added_columns.clear()
            self.added_null.clear()
            self.added_default.clear()
        self.unit = path

    def after(self, step: Step) -> None:
        """Record what `step` leaves behind for later steps."""
        effects = step.effects
        for made in effects.creates:
            if not self.shown_existing(made, step):
                self.created.add(made.removeprefix("public."))
        if effects.destroys:
            self.dropped.update(d[6:] for d in effects.destroys if d.startswith("table "))
        self._forget_written_values(step)
        altered = table_of(step)
        if altered is not None:
            for subtype, cmd in alter_cmds(step):
                if subtype == "AT_AddColumn":
                    col = cmd.get("def", {}).get("ColumnDef", {})
                    name = str(col.get("colname"))
                    if not self._shown_column(altered, name):
                        self.added_columns.add((altered, name))
                        cons = [c.get("Constraint", {}) for c in col.get("constraints") or ()]
                        kinds = {c.get("contype") for c in cons}
                        if not kinds & {"CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"}:
                            self.added_null.setdefault(altered, set()).add(name)
                        for con in cons:
                            default = (
                                literal(con.get("raw_expr", {}))
                                if con.get("contype") == "CONSTR_DEFAULT"
                                else None
                            )
                            if default is not None:
                                self.added_default.setdefault(altered, {})[name] = default
        setting = step.tree.get("VariableSetStmt")
        outside = step.transaction is None  # SET LOCAL there lasts only its own statement
        if setting is not None and setting.get("name") == "lock_timeout":
            scope = step.transaction if setting.get("is_local") else None
            value = setting_ms(setting)
            if setting.get("is_local") and outside:
                pass
            elif value is None:
                self.lock_timeouts.pop(scope, None)
            else:
                self.lock_timeouts[scope] = value
        elif resets_all_settings(step):
            self.lock_timeouts.clear()  # every setting back to its default, LOCAL ones too
        for is_local, text in set_config_calls(step, "lock_timeout"):
            if is_local and outside:
                continue
            scope = step.transaction if is_local else None
            ms = _ms(text)
            if ms is None:
                self.lock_timeouts.pop(scope, None)
            else:
                self.lock_timeouts[scope] = ms
        if step.transaction is not None:
            held = self.held.setdefault(step.transaction, {})
            for lock in effects.locks:
                if lock.mode > held.get(lock.relation, (LockMode.ACCESS_SHARE, step))[0] or (
                    lock.relation not in held
                ):
                    held[lock.relation] = (lock.mode, step)

    def _forget_written_values(self, step: Step) -> None:
        """An UPDATE that sets an added column (a WITH query's too), an INSERT/COPY into
        its table or a type change: the column may no longer hold NULL (or its default) in
        every row."""
        if not self.added_null and not self.added_default:
            return  # nothing known of any column's values (most plans, most of the time)
        kind = step.kind
        if kind not in _WRITE_KINDS:
            return
        if kind == "UpdateStmt" or "withClause" in step.body:
            for sub, part in dml_parts(step):
                if sub != "UpdateStmt":
                    continue
                table = regclass(part.get("relation"))
                for target in cast("UpdateStmt", part).get("targetList") or ():
                    name = str(target.get("ResTarget", {}).get("name"))
                    self.added_null.get(table, set()).discard(name)
                    self.added_default.get(table, {}).pop(name, None)
        rows = step.tree.get("InsertStmt") or step.tree.get("CopyStmt")
        if rows is not None:
            if step.kind == "CopyStmt" and not rows.get("is_from"):
                return
            table = regclass(rows.get("relation"))
            self.added_null.pop(table, None)
            self.added_default.pop(table, None)
            return
        altered = table_of(step)
        if altered is None:
            return
        for subtype, cmd in alter_cmds(step):
            if subtype == "AT_AlterColumnType":
                name = str(cmd.get("name"))
                self.added_null.get(altered, set()).discard(name)
                self.added_default.get(altered, {}).pop(name, None)

    def shown_existing(self, relation: str, step: Step) -> bool:
        """Whether `step` creates a table the snapshot shows existing (not dropped before it).

        Such a table is not new: the linted range includes migrations the database ran.
        """
        return (
            self.snapshot is not None
            and "CreateStmt" in step.tree
            and _bare(relation) not in self.dropped
            and relation not in self.dropped
            and self.snapshot.table(relation) is not None
        )

    def _shown_column(self, table: str, column: str) -> bool:
        """Whether the snapshot's catalog shows `table` with `column` already: the column
        was added by a migration the database ran, and code may use it."""
        catalog = self.snapshot.catalog if self.snapshot is not None else None
        if catalog is None or _bare(table) in self.created:
            return False
        rel = catalog_relation(catalog, table)
        return rel is not None and rel.column(column) is not None

    def judge(self, relation: str, *, lock_s: float | None = None) -> TableJudgement:
        """Severity of holding a blocking lock on `relation` for about `lock_s` seconds."""
        bare = _bare(relation)
        if bare in self.created:
            return TableJudgement(None, "created earlier in this plan")
        if self.snapshot is None:
            made_by = self.earlier.get(bare)
            if made_by is None:
                return _NO_STATS
            return TableJudgement(
                Severity.ERROR,
                f"size unknown: created by {made_by}, an earlier migration that may have run"
                " long ago (no stats given), so assumed large and busy",
            )
        table = self.snapshot.table(relation)
        placeholder = self.snapshot.placeholder_schemas(relation)
        if table is None:
            if placeholder is not None and len(placeholder[1]) > 1:
                return TableJudgement(
                    Severity.ERROR,
                    f"size unknown ({placeholder[0]} may be any of the schemas whose table of "
                    f"that name the stats snapshot has: {', '.join(placeholder[1])}): "
                    "assumed large and busy",
                )
            return _NOT_IN_SNAPSHOT
        rate = f", {table.writes_per_s:.0f} writes/s" if table.writes_per_s is not None else ""
        size = f"{_rows(table.rows)}, {_bytes(table.total_bytes)}{rate}"
        if placeholder is not None:  # the only table of that name the snapshot has
            size += f"; {placeholder[0]} taken as {placeholder[1][0]}, the only schema with it"
        if table.rows < SMALL_ROWS and table.total_bytes < SMALL_BYTES:
            return TableJudgement(Severity.NOTE, size)
        busy = (table.writes_per_s or 0.0) >= BUSY_WRITES_PER_S
        long = lock_s is not None and lock_s >= LONG_LOCK_S
        large = table.total_bytes >= 1024**3
        severity = Severity.ERROR if busy or long or large else Severity.WARNING
        return TableJudgement(severity, size)

    def duration(
        self, relation: str, *, rewrite: bool = False, kind: str | None = None
    ) -> float | None:
        """Estimated seconds of work on `relation` (kind: scan, fk, index, rewrite)."""
        if self.snapshot is None:
            return None
        table = self.snapshot.table(relation)
        return None if table is None else estimate_seconds(table, rewrite=rewrite, kind=kind)

    def lock_timeout_ms(self, step: Step) -> int | None:
        """The lock_timeout `step` runs with (0: disabled), None when nothing set it."""
        if step.transaction is not None and step.transaction in self.lock_timeouts:
            return self.lock_timeouts[step.transaction]
        return self.lock_timeouts.get(None)

    def lock_timeout_active(self, step: Step) -> bool:
        """Whether a non-zero `SET [LOCAL] lock_timeout` precedes `step` in its scope."""
        return bool(self.lock_timeout_ms(step))


_NO_STATS = TableJudgement(Severity.ERROR, "size unknown (no stats given): assumed large and busy")
_NOT_IN_SNAPSHOT = TableJudgement(
    Severity.ERROR, "size unknown (table not in the stats snapshot): assumed large and busy"
)

_UNITS_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def setting_ms(body: VariableSetStmt) -> int | None:
    """Milliseconds a `SET x = ...` gives a time setting; None for RESET/DEFAULT/unknown."""
    if body.get("kind") != "VAR_SET_VALUE":
        return None
    args = body.get("args") or []
    if len(args) != 1:
        return None
    const = args[0].get("A_Const", {})
    if "ival" in const:
        return const["ival"].get("ival", 0)
    return _ms(const.get("sval", {}).get("sval", ""))


def set_config_calls(step: Step, name: str) -> Iterator[tuple[bool, str]]:
    """(is_local, value) of each `SELECT set_config('<name>', 'value', is_local)` of
    `step` written with constants: SET (or SET LOCAL, is_local true) by a function call."""
    select = step.tree.get("SelectStmt")
    if select is None or select.get("fromClause"):
        return
    for target in select.get("targetList") or ():
        call = target.get("ResTarget", {}).get("val", {}).get("FuncCall")
        if call is None or strings(call.get("funcname"))[-1:] != ["set_config"]:
            continue
        args = [a.get("A_Const") for a in call.get("args") or ()]
        if len(args) != 3 or any(a is None or a.get("isnull") for a in args):
            continue
        setting, value, local = cast("list[A_Const]", args)
        if setting.get("sval", {}).get("sval", "").lower() != name or "sval" not in value:
            continue
        if "boolval" in local:
            yield bool(local["boolval"].get("boolval")), value["sval"].get("sval", "")


def resets_all_settings(step: Step) -> bool:
    """RESET ALL or DISCARD ALL: every setting (lock_timeout too) back to its default."""
    setting = step.tree.get("VariableSetStmt")
    if setting is not None:
        return setting.get("kind") == "VAR_RESET_ALL"
    discard = step.tree.get("DiscardStmt")
    return discard is not None and discard.get("target") == "DISCARD_ALL"


def _ms(text: str) -> int | None:
    """Milliseconds of a time setting's text ('1s', '500', '2min'); None if not one."""
    text = text.strip().lower()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = text[len(number) :].strip() or "ms"
    try:
        return int(float(number) * _UNITS_MS[unit])
    except (ValueError, KeyError):
        return None


def _bare(relation: str) -> str:
    return relation.removeprefix("public.")


def _rows(n: int) -> str:
    return (
        f"{n / 1e6:.1f}M rows" if n >= 1e6 else f"{n / 1e3:.0f}k rows" if n >= 1e3 else f"{n} rows"
    )


def _bytes(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GB"
    if n >= 1024**2:
        return f"{n / 1024**2:.0f} MB"
    return f"{n / 1024:.0f} kB"


def describe_lock(mode: LockMode, relation: str) -> str:
    """`ACCESS EXCLUSIVE on invoices (blocks reads and writes)`."""
    title, blocks = _MODE_WORDS[mode]
    return f"{title} on {relation} (blocks {blocks})"


_MODE_WORDS = {mode: (mode.title, mode.blocks) for mode in LockMode}
