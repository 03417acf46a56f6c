"""Django migrations as a pgwarden source: SQL from Django's own machinery, in-process.

Each migration's SQL is what `manage.py sqlmigrate` prints: the migration is
applied to the project state with `schema_editor(collect_sql=True,
atomic=migration.atomic)`. Django marks every operation in the collected SQL
(`--` / `-- <describe>` / `--`); that maps each statement back to its
operation, and the migration module's AST maps the operation to its line.
One `SourceText` per migration; atomic migrations are one file transaction,
`atomic = False` ones run statement by statement, as Django runs them.

Each `schema_editor.alter_field` (AlterField, RenameField) also notes the old
field's column type and nullability as a `ColumnFact`: without a catalog the lock
model then knows the current type, and a type change is graded exactly.
"""

from __future__ import annotations

import ast
import io
import os
import re
import sys
import tokenize
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pgwarden.analysis.catalog import Catalog
from pgwarden.analysis.inplan import ColumnFact, fact_type
from pgwarden.analysis.parse import parse
from pgwarden.contrib.django.catalog import ConstraintCatalog
from pgwarden.errors import InputError, SqlParseError, UsageError
from pgwarden.findings import Finding
from pgwarden.lint.engine import LintResult, Suppression, ignore_without_reason
from pgwarden.location import SourceLocation
from pgwarden.plan import Plan, SourceText, Step, build_plan

__all__ = [
    "MigrationSQL",
    "OperationSQL",
    "build_django_plan",
    "collect",
    "database_url",
    "django_help",
    "django_timezone",
    "locate",
    "select_migrations",
    "session_timezone",
    "standalone_sql",
    "suppress",
]

NOT_SQL = "-- THIS OPERATION CANNOT BE WRITTEN AS SQL"
NO_OP = "-- (no-op)"


@dataclass(frozen=True, slots=True)
class OperationSQL:
    """One operation of a migration and the statements Django generates for it."""

    index: int
    describe: str
    line: int
    column: int
    reduces_to_sql: bool = True


@dataclass(frozen=True, slots=True)
class MigrationSQL:
    """One migration: where it is, whether Django wraps it in a transaction, its SQL."""

    app_label: str
    name: str
    path: str
    line: int  # the `class Migration` line
    atomic: bool
    operations: tuple[OperationSQL, ...]
    # (operation index, SQL) in the order Django runs them; deferred SQL (indexes and
    # constraints Django creates at the end of the migration) comes last
    chunks: tuple[tuple[int, str], ...]
    records: tuple[tuple[str, str], ...]  # rows `django_migrations` gets when it is applied
    # Old columns of the fields it alters, each before the chunk (index into `chunks`)
    # its alter_field writes first.
    facts: tuple[ColumnFact, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.app_label}.{self.name}"

    @property
    def sql(self) -> str:
        return "\n".join(stmt for _, stmt in self.chunks)

    @property
    def python_operations(self) -> tuple[OperationSQL, ...]:
        return tuple(o for o in self.operations if not o.reduces_to_sql)


def database_url(connection: Any) -> str:
    """A libpq conninfo for a Django PostgreSQL connection (its own settings)."""
    from psycopg.conninfo import make_conninfo

    if connection.vendor != "postgresql":
        raise UsageError(
            f"database {connection.alias!r} uses the {connection.vendor} backend",
            hint="pgwarden works on PostgreSQL databases (django.db.backends.postgresql)",
        )
    params = dict(connection.get_connection_params())
    keep = {
        k: v
        for k, v in params.items()
        if k in {"dbname", "user", "password", "host", "port", "sslmode", "options", "passfile"}
        or k.startswith("ssl")
    }
    if "dbname" not in keep and "database" in params:
        keep["dbname"] = params["database"]
    return make_conninfo(**{k: str(v) for k, v in keep.items() if v not in (None, "")})


@contextmanager
def django_timezone(connection: Any) -> Iterator[None]:
    """While inside, connections pgwarden opens start in the TimeZone Django sets on its
    own (an ALTER ... TYPE timestamptz from timestamp is done in place only in UTC).

    libpq sends `PGTZ` as the start-up parameter TimeZone, which PgBouncer passes on to
    the server; a start-up `options=-c TimeZone=...` would make PgBouncer before 1.20
    refuse the connection ("unsupported startup parameter: options").
    """
    tz = session_timezone(connection)
    before = os.environ.get("PGTZ")
    if tz is not None:
        os.environ["PGTZ"] = tz
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PGTZ", None)
        else:
            os.environ["PGTZ"] = before


def session_timezone(connection: Any) -> str | None:
    """The TimeZone Django sets on its connections (`connection.timezone_name`: with
    USE_TZ, the database's TIME_ZONE or UTC; without, settings.TIME_ZONE), None when it
    sets none (the server's default stays)."""
    name = connection.timezone_name
    return str(name) if name else None


def select_migrations(
    executor: Any,
    *,
    app_label: str | None = None,
    migration_name: str | None = None,
    unapplied: bool = True,
) -> list[Any]:
    """Migrations in the order Django would apply them (forwards only), dependencies
    in other apps included, as `migrate` plans them.

    `unapplied=False` gives every migration from a clean start, as for a new database.
    """
    loader = executor.loader
    graph = loader.graph
    if app_label is not None and app_label not in loader.migrated_apps:
        raise UsageError(f"app {app_label!r} has no migrations")
    if migration_name is not None:
        if app_label is None:
            raise UsageError("a migration name needs an app label")
        try:
            mig = loader.get_migration_by_prefix(app_label, migration_name)
        except Exception as exc:  # AmbiguityError, KeyError
            raise UsageError(f"{app_label}.{migration_name}: {exc}") from None
        targets = [(app_label, mig.name)]
    elif app_label is not None:
        targets = [n for n in graph.leaf_nodes() if n[0] == app_label]
    else:
        targets = graph.leaf_nodes()
    plan = executor.migration_plan(targets, clean_start=not unapplied)
    backwards = [m for m, back in plan if back]
    if backwards:
        raise UsageError(
            f"reaching {targets[0][0]}.{targets[0][1]} would unapply "
            + ", ".join(f"{m.app_label}.{m.name}" for m in backwards),
            hint="pgwarden applies forwards only; unapply with Django's `manage.py migrate`",
        )
    return [m for m, _ in plan]


def _display_path(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


# A piece of an `operations` list in source order: (line, column, known) where known
# is False for a piece of unknown length (a comprehension, `*helper()`, a call).
_Piece = tuple[int, int, bool]


def _pieces(value: ast.expr) -> list[_Piece]:
    """The pieces a value added to `operations` contributes, in order."""
    if isinstance(value, ast.List | ast.Tuple):
        return [(e.lineno, e.col_offset + 1, not isinstance(e, ast.Starred)) for e in value.elts]
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        return _pieces(value.left) + _pieces(value.right)
    return [(value.lineno, value.col_offset + 1, False)]


def _in_order(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of a class body in source order, those under if/try/with included."""
    out: list[ast.stmt] = []
    for stmt in body:
        out.append(stmt)
        if isinstance(stmt, ast.If | ast.For | ast.While | ast.With | ast.Try):
            for part in ("body", "orelse", "finalbody"):
                out += _in_order(getattr(stmt, part, []))
            for handler in getattr(stmt, "handlers", []):
                out += _in_order(handler.body)
    return out


def _is_operations(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "operations"


def _candidates(cls: ast.ClassDef) -> list[list[_Piece]]:
    """Each assignment of `operations` with what later statements add to it."""
    found: list[list[_Piece]] = []
    for stmt in _in_order(cls.body):
        if isinstance(stmt, ast.Assign) and any(_is_operations(t) for t in stmt.targets):
            found.append(_pieces(stmt.value))
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            if _is_operations(stmt.target):
                found.append(_pieces(stmt.value))
        elif found and isinstance(stmt, ast.AugAssign) and _is_operations(stmt.target):
            found[-1] += _pieces(stmt.value)
        elif found and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            call = stmt.value
            func = call.func
            if isinstance(func, ast.Attribute) and _is_operations(func.value) and call.args:
                if func.attr == "extend":
                    found[-1] += _pieces(call.args[0])
                elif func.attr == "append":
                    arg = call.args[0]
                    found[-1].append((arg.lineno, arg.col_offset + 1, True))
    return found


def _spread(pieces: list[_Piece], count: int, class_line: int) -> list[tuple[int, int]] | None:
    """`count` operation locations from `pieces`, or None when they cannot hold `count`.

    Known pieces before the first piece of unknown length take the first operations,
    those after the last one the last operations; the operations between are at that
    piece when it is the only one, else at `class Migration`.
    """
    unknown = [i for i, p in enumerate(pieces) if not p[2]]
    if not unknown:
        return [(line, col) for line, col, _ in pieces] if len(pieces) == count else None
    head = pieces[: unknown[0]]
    tail = pieces[unknown[-1] + 1 :]
    if len(head) + len(tail) > count:
        return None
    middle = count - len(head) - len(tail)
    at = pieces[unknown[0]][:2] if len(unknown) == 1 else (class_line, 1)
    return [p[:2] for p in head] + [at] * middle + [p[:2] for p in tail]


def _operation_lines(path: str, count: int) -> tuple[int, list[tuple[int, int]]]:
    """(line of `class Migration`, [(line, column) of each operation]) from the module's AST.

    `operations` may be assigned under an `if` (or several times), and grown by `+=`,
    `.extend()`, `.append()`, `[...] + [...]`: the assignment whose pieces make `count`
    operations is taken, else the first (its operations past its known pieces are at
    `class Migration`). A comprehension or a `*helper()` counts as many operations as
    the others leave; they are located at it.
    """
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return 1, []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            found = _candidates(node)
            for pieces in found:
                spread = _spread(pieces, count, node.lineno)
                if spread is not None:
                    return node.lineno, spread
            first = found[0] if found else []
            known = []
            for line, col, exact in first:
                if not exact:
                    break
                known.append((line, col))
            return node.lineno, known
    return 1, []


def _split(collected: Sequence[str]) -> list[tuple[str, list[str], bool]]:
    """Django's collected SQL split at its per-operation markers: (describe, sql, reduces)."""
    ops: list[tuple[str, list[str], bool]] = []
    i = 0
    while i < len(collected):
        item = collected[i]
        if (
            item == "--"
            and i + 2 < len(collected)
            and collected[i + 1].startswith("-- ")
            and collected[i + 2] == "--"
        ):
            ops.append((collected[i + 1][3:], [], True))
            i += 3
            continue
        if not ops:  # SQL before the first marker (none in Django today): its own operation
            ops.append(("(before the first operation)", [], True))
        if item == NOT_SQL:
            describe, stmts, _ = ops[-1]
            ops[-1] = (describe, stmts, False)
        elif item != NO_OP:
            ops[-1][1].append(item)
        i += 1
    return ops


class _OwnedList(list[Any]):
    """`schema_editor.deferred_sql` noting which operation deferred each statement."""

    def __init__(self, items: Iterable[Any], editor: Any, owners: dict[int, int]) -> None:
        super().__init__(items)
        self._editor = editor
        self._owners = owners

    def _current(self) -> int:
        return len(_split(self._editor.collected_sql)) - 1

    def append(self, item: Any) -> None:
        self._owners[id(item)] = self._current()
        super().append(item)

    def extend(self, items: Iterable[Any]) -> None:
        for item in items:
            self.append(item)


def _old_column(connection: Any, model: Any, old_field: Any, at: int) -> ColumnFact | None:
    """The column `old_field` is before `alter_field` changes it (None: not a column)."""
    column = getattr(old_field, "column", None)
    typ = old_field.db_parameters(connection=connection).get("type")
    if not column or not typ:
        return None  # a ManyToManyField, a GeneratedField's expression, ...
    typ = fact_type(str(typ))
    if not typ:
        return None  # typmods that are not numbers (PostGIS): not comparable
    return ColumnFact(str(model._meta.db_table), None, str(column), typ, bool(old_field.null), at)


def _old_columns(
    connection: Any, model: Any, old_field: Any, new_field: Any, at: int
) -> Iterator[ColumnFact | None]:
    """The old field's column, then the foreign keys Django changes along with it (those
    to a primary key or unique column whose type changes), as Django pairs them."""
    yield _old_column(connection, model, old_field, at)
    try:
        from django.db.backends.base.schema import _related_non_m2m_objects
    except ImportError:  # pragma: no cover - Django's helper since 1.8
        return
    for old_rel, _ in _related_non_m2m_objects(old_field, new_field):
        yield _old_column(connection, old_rel.related_model, old_rel.field, at)


def _note_old_columns(editor: Any, connection: Any, facts: list[ColumnFact]) -> None:
    """Make `editor.alter_field` note each old column, at the collected SQL so far."""
    alter_field = editor.alter_field

    def noting(model: Any, old_field: Any, new_field: Any, *args: Any, **kwargs: Any) -> Any:
        at = len(editor.collected_sql)
        try:
            found = list(_old_columns(connection, model, old_field, new_field, at))
        except Exception:  # a custom field's db_parameters: Django's own call reports it
            found = []
        facts.extend(f for f in found if f is not None)
        return alter_field(model, old_field, new_field, *args, **kwargs)

    editor.alter_field = noting


def _chunk_facts(head: Sequence[str], facts: Iterable[ColumnFact]) -> tuple[ColumnFact, ...]:
    """Facts placed at an offset of the collected SQL, placed at a chunk instead."""
    return tuple(
        replace(f, before=sum(len(stmts) for _, stmts, _ in _split(head[: f.before])))
        for f in facts
    )


def _start_state(executor: Any, *, from_zero: bool) -> Any:
    """The project state `migrate` starts from: every applied migration (or nothing)."""
    from django.db.migrations.state import ProjectState

    if from_zero:
        return ProjectState(real_apps=executor.loader.unmigrated_apps)
    return executor._create_project_state(with_applied_migrations=True)


def collect(
    connection: Any, executor: Any, migrations: Sequence[Any], *, from_zero: bool = False
) -> list[MigrationSQL]:
    """The SQL of each migration, in order, as `migrate` would run them one after another.

    Like `migrate`, the project state starts from every applied migration (`from_zero`:
    from none) and each migration is rendered against the state the ones before it
    leave. Constraint names Django would read from the database come from a
    `ConstraintCatalog`: the database as it is (nothing, `from_zero`) plus the SQL
    collected before, so a migration sees what the earlier pending ones created.
    """
    introspection = connection.introspection
    real = introspection.get_constraints

    def read(table: str) -> dict[str, Any]:
        with connection.cursor() as cursor:
            found: dict[str, Any] = real(cursor, table)
            return found

    catalog = ConstraintCatalog(None if from_zero else read)
    current: dict[str, Any] = {"editor": None, "fed": 0}

    def get_constraints(cursor: Any, table: str) -> dict[str, Any]:
        editor = current["editor"]
        if editor is not None:  # what the operations before this one ran
            pending = editor.collected_sql[current["fed"] :]
            current["fed"] += len(pending)
            catalog.feed("\n".join(pending))
        return catalog.get_constraints(cursor, table)

    introspection.get_constraints = get_constraints
    try:
        return _collect(connection, executor, migrations, from_zero, catalog, current)
    finally:
        del introspection.get_constraints


def _collect(
    connection: Any,
    executor: Any,
    migrations: Sequence[Any],
    from_zero: bool,
    catalog: ConstraintCatalog,
    current: dict[str, Any],
) -> list[MigrationSQL]:
    out: list[MigrationSQL] = []
    state: Any = _start_state(executor, from_zero=from_zero) if migrations else None
    for migration in migrations:
        module = sys.modules.get(type(migration).__module__)
        file = getattr(module, "__file__", None) or f"<{migration.app_label}.{migration.name}>"
        class_line, lines = _operation_lines(file, len(migration.operations))
        owners: dict[int, int] = {}
        deferred: list[Any] = []
        facts: list[ColumnFact] = []
        try:
            with connection.schema_editor(
                collect_sql=True, atomic=migration.atomic
            ) as schema_editor:
                current.update(editor=schema_editor, fed=0)
                _note_old_columns(schema_editor, connection, facts)
                schema_editor.deferred_sql = _OwnedList(
                    schema_editor.deferred_sql, schema_editor, owners
                )
                state = migration.apply(state, schema_editor, collect_sql=True)
                deferred = list(schema_editor.deferred_sql)
            collected = list(schema_editor.collected_sql)  # deferred SQL is added on exit
            catalog.feed("\n".join(collected[current["fed"] :]))
        except Exception as exc:
            hint = (
                # AddIndexConcurrently / RemoveIndexConcurrently in an atomic migration
                "set `atomic = False` on the migration class: Django runs this operation "
                "only outside a transaction (put it in a migration of its own)"
                if "atomic = False" in str(exc)
                else "the migrations before it (applied, or pending before it in this run) "
                "must lead to the state it expects; check its dependencies, or run "
                "`manage.py sqlmigrate` on it to see Django's own error "
                "(--traceback shows where it failed)"
            )
            raise InputError(
                f"{_display_path(file)}: Django could not generate the SQL of "
                f"{migration.app_label}.{migration.name}: {type(exc).__name__}: {exc}",
                hint=hint,
            ) from exc
        finally:
            current.update(editor=None, fed=0)
        tail = collected[len(collected) - len(deferred) :] if deferred else []
        head = collected[: len(collected) - len(tail)]
        ops: list[OperationSQL] = []
        chunks: list[tuple[int, str]] = []
        for idx, (describe, stmts, reduces) in enumerate(_split(head)):
            line, col = lines[idx] if idx < len(lines) else (class_line, 1)
            ops.append(OperationSQL(idx, describe, line, col, reduces))
            chunks += [(idx, stmt) for stmt in stmts]
        last = len(ops) - 1
        for item, stmt in zip(deferred, tail, strict=True):
            chunks.append((owners.get(id(item), last), stmt))
        records = tuple(migration.replaces) or ((migration.app_label, migration.name),)
        out.append(
            MigrationSQL(
                migration.app_label,
                migration.name,
                _display_path(file),
                class_line,
                bool(migration.atomic and connection.features.can_rollback_ddl),
                tuple(ops),
                tuple(chunks),
                tuple((str(a), str(n)) for a, n in records),
                _chunk_facts(head, facts),
            )
        )
    return out


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def record_sql(mig: MigrationSQL, table: str = "django_migrations") -> list[str]:
    """The INSERTs Django's MigrationRecorder makes for `mig` (replaced ones for a squash)."""
    quoted = '"' + table.replace('"', '""') + '"'
    return [
        f'INSERT INTO {quoted} ("app", "name", "applied") '
        f"VALUES ({_literal(app)}, {_literal(name)}, now());"
        for app, name in mig.records
    ]


def _text(mig: MigrationSQL, record: list[str]) -> tuple[str, list[int], list[int]]:
    """The migration's SQL text, and (start offset, operation index) of each chunk."""
    parts: list[str] = []
    starts: list[int] = []
    owners: list[int] = []
    pos = 0
    chunks = [*mig.chunks, *((-1, s) for s in record)]
    for op, stmt in chunks:
        starts.append(pos)
        owners.append(op)
        parts.append(stmt)
        pos += len(stmt) + 1
    return "\n".join(parts) + ("\n" if parts else ""), starts, owners


def standalone_sql(mig: MigrationSQL, record: list[str] | None = None) -> str:
    """The migration as a .sql file: wrapped in BEGIN/COMMIT when Django runs it atomically;
    `record` (from `record_sql`) appends the bookkeeping INSERTs, as `migrate` runs them."""
    text, _, _ = _text(mig, record or [])
    if mig.atomic and text:
        return f"BEGIN;\n{text}COMMIT;\n"
    return text


def locate(mig: MigrationSQL, line: int) -> SourceLocation:
    """Where line `line` of `standalone_sql(mig)` comes from in the migration file."""
    text, starts, owners = _text(mig, [])
    if mig.atomic and text:
        line -= 1  # the BEGIN line
    offset = sum(len(row) + 1 for row in text.split("\n")[: max(line - 1, 0)])
    chunk = bisect_right(starts, offset) - 1
    ops = {o.index: o for o in mig.operations}
    op = ops.get(owners[chunk]) if 0 <= chunk < len(owners) else None
    if op is None:
        return SourceLocation(mig.path, mig.line, 1)
    return SourceLocation(mig.path, op.line, op.column)


def _parse_error_at_operation(
    mig: MigrationSQL, text: str, starts: list[int], owners: list[int], exc: SqlParseError
) -> SqlParseError:
    """`exc` (at a line and column of the migration's SQL text) located at the operation
    of the migration file whose SQL it is, its position in that SQL kept in the message:
    lint's machine formats report it there (PW901), as they do a .sql file's."""
    at = exc.location
    offset = sum(len(row) + 1 for row in text.split("\n")[: max(at.line - 1, 0)])
    chunk = bisect_right(starts, offset + max(at.column - 1, 0)) - 1
    ops = {o.index: o for o in mig.operations}
    op = ops.get(owners[chunk]) if 0 <= chunk < len(owners) else None
    where = (
        SourceLocation(mig.path, op.line, op.column)
        if op is not None
        else SourceLocation(mig.path, mig.line, 1)
    )
    return SqlParseError(
        f"{exc.server_message} (in the SQL of {mig.key}, at line {at.line} column "
        f"{at.column} of the SQL it runs)",
        where,
    )


def _statement_facts(
    facts: Sequence[ColumnFact], starts: Sequence[int], stmts: Sequence[Any]
) -> tuple[ColumnFact, ...]:
    """Facts placed at a chunk, placed at the first statement of that chunk."""
    if not facts:
        return ()
    offsets = [s.start for s in stmts]
    return tuple(
        replace(f, before=bisect_left(offsets, starts[f.before]))
        if f.before < len(starts)
        else replace(f, before=len(stmts))
        for f in facts
    )


def build_django_plan(
    migrations: Iterable[MigrationSQL],
    *,
    catalog: Catalog | None = None,
    server_version: int | None = None,
    record_table: str | None = None,
    tag: bool = False,
    timezone: str | None = None,
) -> Plan:
    """One plan over the migrations, each step located at its migration's operation.

    `record_table` appends the `django_migrations` INSERTs to each migration (inside
    its transaction when atomic, right after its last statement when not). `tag`
    marks each statement with its migration so equal SQL in different migrations
    keeps distinct journal keys. `timezone`: the session TimeZone Django sets
    (`session_timezone`), which decides whether timestamp -> timestamptz rewrites.
    """
    steps: list[Step] = []
    texts: list[SourceText] = []
    next_tx = 0
    for mig in migrations:
        record = record_sql(mig, record_table) if record_table else []
        text, starts, owners = _text(mig, record)
        try:
            stmts = parse(text, mig.path)
        except SqlParseError as exc:
            raise _parse_error_at_operation(mig, text, starts, owners, exc) from None
        source = SourceText(mig.path, text, _statement_facts(mig.facts, starts, stmts))
        texts.append(source)
        part = build_plan(
            [(source, stmts)],
            catalog=catalog,
            server_version=server_version,
            file_transaction=mig.atomic,
            timezone=timezone,
        )
        ops = {o.index: o for o in mig.operations}
        offset_tx = next_tx
        for step, stmt in zip(part.steps, stmts, strict=True):
            chunk = bisect_right(starts, stmt.start) - 1
            op = ops.get(owners[chunk]) if chunk >= 0 else None
            loc = (
                SourceLocation(mig.path, op.line, op.column)
                if op is not None
                else SourceLocation(mig.path, mig.line, 1)
            )
            tx = None if step.transaction is None else step.transaction + offset_tx
            if tx is not None:
                next_tx = max(next_tx, tx + 1)
            sql = step.sql
            if tag and not step.is_transaction_control:
                sql = sql.rstrip().rstrip(";").rstrip() + f" /* django {mig.key} */"
            steps.append(replace(step, index=len(steps), location=loc, transaction=tx, sql=sql))
    return Plan(tuple(steps), tuple(t.path for t in texts), server_version, tuple(texts))


# -- Django remedies -----------------------------------------------------------------

_SDS = "migrations.SeparateDatabaseAndState"

DJANGO_HELP: dict[str, str] = {
    "PW101": "In Django: use django.contrib.postgres.operations.AddIndexConcurrently "
    "(RemoveIndexConcurrently to drop) in a migration with `atomic = False`.",
    "PW102": f"In Django: add the foreign key NOT VALID with {_SDS}(state_operations="
    "[AddField(...)], database_operations=[RunSQL('ALTER TABLE ... ADD CONSTRAINT ... "
    "FOREIGN KEY ... NOT VALID')]), then run RunSQL('ALTER TABLE ... VALIDATE CONSTRAINT "
    "...') in a separate migration with `atomic = False`.",
    "PW103": "In Django: add the field nullable first (null=True), backfill it, add a "
    "CHECK (col IS NOT NULL) with django.contrib.postgres.operations.AddConstraintNotValid "
    "and ValidateConstraint, then AlterField to null=False.",
    "PW104": "In Django: add a new field, backfill it in batches, then switch the code "
    f"over and remove the old field; keep model state in sync with {_SDS}.",
    "PW105": "In Django: build the unique index with AddIndexConcurrently in a migration "
    f"with `atomic = False`, then attach it with {_SDS} + RunSQL('ALTER TABLE ... ADD "
    "CONSTRAINT ... UNIQUE USING INDEX ...').",
    "PW106": "In Django: use django.contrib.postgres.operations.AddConstraintNotValid, "
    "then ValidateConstraint in a later migration.",
    "PW120": "In Django: `manage.py pgwarden migrate` sets lock_timeout and retries for "
    "every statement.",
    "PW121": "In Django: each migration runs in one transaction, so split these operations "
    "into separate migrations (or set `atomic = False`); build indexes with "
    "AddIndexConcurrently, and add a foreign key NOT VALID with "
    f"{_SDS} + RunSQL, then VALIDATE it in a later migration with `atomic = False`.",
    "PW130": "In Django: set `atomic = False` on the migration (Django wraps each "
    "migration in a transaction by default).",
    "PW141": "In Django: add the field nullable first (null=True) or with db_default=..., "
    "backfill, then make it NOT NULL in a later migration.",
    "PW202": f"In Django: remove the field from the model with {_SDS}(state_operations="
    "[RemoveField(...)]) and deploy; drop the column in a later release.",
    "PW203": f"In Django: instead of RenameField, use {_SDS} to keep the old column "
    "(db_column='old_name') and rename only in the model state; or add the new column, "
    "dual-write, backfill, then remove the old one.",
    "PW204": f"In Django: instead of RenameModel, set Meta.db_table to the old name with "
    f"{_SDS} so the table is not renamed.",
    "PW201": f"In Django: delete the model with {_SDS}(state_operations=[DeleteModel(...)]) "
    "first; drop the table in a later release.",
    "PW207": "In Django: use django.contrib.postgres.operations.RemoveIndexConcurrently "
    "in a migration with `atomic = False`.",
}


def django_help(finding: Finding) -> Finding:
    """`finding` with the Django remedy for its rule appended to its help."""
    extra = DJANGO_HELP.get(finding.code)
    if extra is None:
        return finding
    base = finding.help.rstrip()
    if base and not base.endswith((".", "!", "?")):
        base += "."
    return replace(finding, help=f"{base} {extra}" if base else extra)


# -- `# pgwarden: ignore CODE reason` in migration files ------------------------------

_CODE = r"(?:PW\d+|[a-z][a-z0-9-]+)"
_IGNORE = re.compile(rf"#\s*pgwarden:\s*ignore\s+({_CODE}(?:\s*,\s*{_CODE})*)[ \t]*(.*)$")


def _ignores(path: str) -> list[tuple[int, int, int, tuple[str, ...], str]]:
    """(comment line, column, line it applies to, codes, reason) of each ignore comment.

    A comment after code applies to its own line; a comment on a line of its own
    applies to the next line with code (the operation below it).
    """
    try:
        source = Path(path).read_text(encoding="utf-8")
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, UnicodeDecodeError, SyntaxError, tokenize.TokenError):
        return []
    code_lines = sorted(
        {
            t.start[0]
            for t in tokens
            if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT)
            and t.type not in (tokenize.DEDENT, tokenize.ENDMARKER)
        }
    )
    out = []
    for t in tokens:
        if t.type != tokenize.COMMENT:
            continue
        m = _IGNORE.search(t.string)
        if m is None:
            continue
        line, col = t.start
        target = line if line in code_lines else next((c for c in code_lines if c > line), line)
        codes = tuple(c.strip() for c in m.group(1).split(","))
        out.append((line, col + 1, target, codes, m.group(2).strip()))
    return out


def suppress(result: LintResult, migrations: Iterable[MigrationSQL]) -> LintResult:
    """Apply `# pgwarden: ignore CODE reason` comments at operations of the migration files.

    As with `-- pgwarden: ignore` in SQL, a comment without a reason suppresses nothing
    and is itself an error (PW900).
    """
    kept = list(result.findings)
    suppressed = list(result.suppressed)
    for mig in migrations:
        for line, col, target, codes, reason in _ignores(mig.path):
            where = SourceLocation(mig.path, line, col)
            if not reason:
                kept.append(ignore_without_reason(tuple(codes), where, comment="#"))
                continue
            sup = Suppression(codes, reason, where, None)
            for f in list(kept):
                if (
                    f.location.path == mig.path
                    and f.location.line == target
                    and (f.code in codes or f.name in codes)
                ):
                    kept.remove(f)
                    suppressed.append((f, replace(sup, step=f.step)))
    kept.sort(key=lambda f: (f.step if f.step is not None else -1, f.code))
    return replace(result, findings=tuple(kept), suppressed=tuple(suppressed))
