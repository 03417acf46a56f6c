"""Python migrations in `manage.py pgwarden rehearse`: run by Django's executor on the copy.

A migration with `RunPython` (any operation that is not SQL) is one rehearsal step
that Django's `MigrationExecutor` runs, as `manage.py pgwarden migrate` runs it,
but on the rehearsal's throwaway database: for the step, the Django connection of
the rehearsed alias is switched to the copy (its settings replaced by the copy's
host, port, database and user; options that could lead elsewhere, such as a
service, a passfile or a connection pool, dropped) and checked to be there before
anything runs; it is switched back afterwards. Code in the migration that uses the
alias, or the default routing, therefore reaches the copy and never the real
database. The project state is built from the migrations applied to the real
database plus the rehearsed ones before the step, not from the copy's
`django_migrations`, whose rows are synthetic.

`pre_migrate` and `post_migrate` are sent as `manage.py migrate` sends them: once,
before the first and after the last migration, with the plan and the apps of the
project state before and after it, verbosity 0, each as a step of its own on the
copy (the same switch of the connection): contenttypes and auth create the
content types and permissions of the models the rehearsed migrations add there,
never in the real database. The real rows of the tables they read are copied
into the copy by default (`default_copy_data`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pgwarden.contrib.django.runner import backend_pid
from pgwarden.contrib.django.source import MigrationSQL
from pgwarden.errors import UsageError
from pgwarden.rehearse.copydata import CopyTable
from pgwarden.rehearse.model import RehearsalResult, StepTrace
from pgwarden.rehearse.null_window import headline
from pgwarden.rehearse.opaque import OpaqueFailed, OpaqueOutcome

__all__ = [
    "DjangoStep",
    "SignalStep",
    "default_copy_data",
    "model_choices",
    "placeholder_sql",
    "python_step_name",
    "relabel",
    "report_json",
    "report_text",
    "scratch_settings",
]

# OPTIONS of a Django database that could connect somewhere else than the copy
_ELSEWHERE = {"service", "passfile", "pool", "assume_role", "hostaddr", "target_session_attrs"}
_WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE")


def python_step_name(mig: MigrationSQL, migration: Any) -> str:
    """`app.0003_x: RunPython fill_editor` (the operations that are not SQL, named)."""
    from django.db.migrations.operations.special import RunPython

    names = []
    for op in migration.operations:
        if isinstance(op, RunPython):
            code = op.code
            names.append(f"RunPython {getattr(code, '__qualname__', None) or repr(code)}")
        elif not getattr(op, "reduces_to_sql", True):
            names.append(type(op).__name__)
    return f"{mig.key}: {', '.join(names) or 'Python'}"


def placeholder_sql(name: str) -> str:
    """The one statement that stands for the step in the plan; it is never sent."""
    return f"SELECT /* run by Django's executor */ '{name.replace(chr(39), chr(39) * 2)}';\n"


def scratch_settings(settings: dict[str, Any], dsn: str) -> dict[str, Any]:
    """A Django database's settings pointed at the copy `dsn` instead."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    out = dict(settings)
    out.update(
        NAME=str(params.get("dbname", "")),
        HOST=str(params.get("host", "")),
        PORT=str(params.get("port", "")),
        USER=str(params.get("user", "")),
        PASSWORD=str(params.get("password", "")),
    )
    out["OPTIONS"] = {
        k: v
        for k, v in (settings.get("OPTIONS") or {}).items()
        if k not in _ELSEWHERE and not k.startswith("ssl")
    }
    return out


def _sqlstate(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if state:
            return str(state)
        seen = seen.__cause__ or seen.__context__
    return None


def _tables(mig: MigrationSQL) -> tuple[str, ...]:
    """Tables `mig` likely locks: those its SQL operations lock (lint's model), then the
    tables of its app's models, at most 16 (probe traffic runs on the ones that exist)."""
    from django.apps import apps

    from pgwarden.contrib.django.source import build_django_plan

    out: list[str] = []
    with contextlib.suppress(Exception):  # SQL that does not parse: lint reports it
        for step in build_django_plan([mig]).steps:
            out += [lk.relation for lk in step.effects.locks if lk.relation not in out]
    with contextlib.suppress(LookupError):
        for model in apps.get_app_config(mig.app_label).get_models():
            table = model._meta.db_table
            if table not in out:
                out.append(table)
    return tuple(out[:16])


def default_copy_data(connection: Any = None) -> tuple[str, ...]:
    """The tables whose real rows a Django rehearsal copies unless `copy_data` says
    otherwise: the content types and permissions, when their apps are installed (and,
    given `connection`, their tables are in its database)."""
    from django.apps import apps

    out: list[str] = []
    if apps.is_installed("django.contrib.contenttypes"):
        out.append(apps.get_model("contenttypes", "ContentType")._meta.db_table)
    if apps.is_installed("django.contrib.auth"):
        out.append(apps.get_model("auth", "Permission")._meta.db_table)
    if connection is not None:
        there = set(connection.introspection.table_names())
        out = [t for t in out if t in there]
    return tuple(out)


def _as_text(value: Any) -> str | None:
    """A database value as the text PostgreSQL reads it; None for what has no plain text."""
    import datetime
    import decimal
    import uuid

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return None


def model_choices(executor: Any, connection: Any) -> dict[tuple[str, str], tuple[str, ...]]:
    """The `choices` of each model field, as database values in text, by (table, column),
    in the project state of the migrations the real database has applied (the schema the
    rehearsal starts from): the synthetic rows take their values from them."""
    state = executor._create_project_state(with_applied_migrations=True)
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for model in state.apps.get_models():
        for f in model._meta.local_fields:
            if not (f.concrete and f.column and f.choices) or f.is_relation:
                continue
            values: list[str] = []
            with contextlib.suppress(Exception):  # a value the field cannot prepare
                for value, _label in f.flatchoices:
                    text = _as_text(f.get_db_prep_save(value, connection))
                    if text is None:
                        values = []
                        break
                    if text not in values:
                        values.append(text)
            if values:
                out[(model._meta.db_table, f.column)] = tuple(values)
    return out


def _clear_content_types() -> None:
    """Forget the content types cached for the alias: the copy's are not the real ones."""
    from django.apps import apps

    if apps.is_installed("django.contrib.contenttypes"):
        apps.get_model("contenttypes", "ContentType").objects.clear_cache()


class _OnCopy:
    """Django's connection switched to the rehearsal copy while a step runs there."""

    name = ""
    location = ""
    tables: tuple[str, ...] = ()

    def __init__(self, connection: Any, executor: Any, say: Callable[[str], None] | None) -> None:
        self.connection = connection
        self.executor = executor  # its loader read the real database's django_migrations
        self._say = say
        self._saved: dict[str, Any] | None = None

    def open(self, dsn: str) -> int:
        """Switch the Django connection to the copy `dsn`, check it is there: its pid."""
        self.close()
        connection = self.connection
        connection.close()
        self._saved = connection.settings_dict
        connection.settings_dict = scratch_settings(self._saved, dsn)
        connection.ensure_connection()
        from psycopg.conninfo import conninfo_to_dict

        want = conninfo_to_dict(dsn)
        info = connection.connection.info
        got = {"dbname": info.dbname, "host": info.host, "port": str(info.port)}
        if any(str(want.get(k, got[k])) != got[k] for k in got):
            self.close()
            raise UsageError(
                f"Django's connection {connection.alias!r} did not reach the rehearsal copy "
                f"({got} instead of {want.get('dbname')} on {want.get('host')}:"
                f"{want.get('port')}); nothing ran",
                hint="check the database's OPTIONS in settings.DATABASES",
            )
        _clear_content_types()
        return backend_pid(connection)

    def _counting(self, written: list[int]) -> Any:
        """An execute wrapper adding the rows each write (but django_migrations') wrote."""
        from django.db.migrations.recorder import MigrationRecorder

        recorder_table = MigrationRecorder.Migration._meta.db_table.upper()

        def count(execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
            result = execute(sql, params, many, context)
            text = str(sql).lstrip().upper()
            if text.startswith(_WRITES) and recorder_table not in text:
                written[0] += max(0, int(getattr(context["cursor"], "rowcount", 0) or 0))
            return result

        return self.connection.execute_wrapper(count)

    def _state(self, applied: Iterable[tuple[str, str]]) -> Any:
        """The project state with `applied` applied (not the copy's django_migrations)."""
        executor = self.executor
        executor.loader.applied_migrations = dict.fromkeys(applied)
        return executor._create_project_state(with_applied_migrations=True)

    def close(self) -> None:
        """Close the copy's connection and switch Django's connection back (idempotent)."""
        if self._saved is None:
            return
        with contextlib.suppress(Exception):  # a broken connection: the server ends it
            self.connection.close()
        self.connection.settings_dict = self._saved
        self._saved = None
        _clear_content_types()


class DjangoStep(_OnCopy):
    """One Python migration, run by Django's executor on the rehearsal copy (an OpaqueStep)."""

    def __init__(
        self,
        connection: Any,
        executor: Any,
        mig: MigrationSQL,
        applied: Iterable[tuple[str, str]],
        *,
        say: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(connection, executor, say)
        self.mig = mig
        self.migration = executor.loader.graph.nodes[(mig.app_label, mig.name)]
        self.applied = frozenset(applied)  # real applied + the rehearsed ones before this
        self.name = python_step_name(mig, self.migration)
        op = mig.python_operations[0] if mig.python_operations else None
        self.location = f"{mig.path}:{op.line if op else mig.line}:{op.column if op else 1}"
        self.tables = _tables(mig)  # probe traffic runs on them

    def run(self) -> OpaqueOutcome:
        """Apply the migration through Django's executor; count the rows its statements wrote."""
        if self._say is not None:
            self._say(f"running {self.name} through Django's executor, on the rehearsal copy")
        written = [0]
        try:
            state = self._state(self.applied)
            with self._counting(written):
                self.executor.apply_migration(state, self.migration)
        except Exception as exc:
            what = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            raise OpaqueFailed(
                f"{self.mig.key} failed in Django's executor: {what}",
                sqlstate=_sqlstate(exc),
                state=(
                    "the atomic migration rolled back"
                    if self.mig.atomic
                    else "the non-atomic migration may have run in part"
                )
                + "; the copy's rows are synthetic (or none) but for the tables copied "
                "(copy_data): code that expects other real rows may fail here and not in "
                "production",
            ) from exc
        return OpaqueOutcome(rows_written=written[0])


SIGNALS = ("pre_migrate", "post_migrate")


class SignalStep(_OnCopy):
    """`pre_migrate` or `post_migrate`, sent on the rehearsal copy as `migrate` sends it
    (an OpaqueStep): once, with the plan and the apps of the state before or after it."""

    def __init__(
        self,
        signal: str,
        connection: Any,
        executor: Any,
        migs: Sequence[MigrationSQL],
        applied: Iterable[tuple[str, str]],
        *,
        say: Callable[[str], None] | None = None,
    ) -> None:
        import inspect

        from django.core.management import sql as django_sql

        super().__init__(connection, executor, say)
        self.signal = signal
        self.applied = frozenset(applied)  # real applied (+ every rehearsed one: post_)
        nodes = executor.loader.graph.nodes
        self.plan = [(nodes[(m.app_label, m.name)], False) for m in migs]
        self.name = f"{signal} (Django's signal, as migrate sends it)"
        emit = getattr(django_sql, f"emit_{signal}_signal")
        self._emit = emit
        self.location = f"{inspect.getsourcefile(emit)}:{inspect.getsourcelines(emit)[1]}:1"
        self.tables = default_copy_data()  # what contenttypes and auth write

    def run(self) -> OpaqueOutcome:
        """Send the signal on the copy (verbosity 0); count the rows its receivers wrote."""
        if self._say is not None:
            self._say(f"sending {self.signal} on the rehearsal copy")
        written = [0]
        try:
            state = self._state(self.applied)
            with self._counting(written):
                self._emit(0, False, self.connection.alias, apps=state.apps, plan=self.plan)
        except Exception as exc:
            what = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            raise OpaqueFailed(
                f"{self.signal} failed on the copy: {what}",
                sqlstate=_sqlstate(exc),
                state="a receiver failed (its writes, in autocommit, may have run in part)",
            ) from exc
        return OpaqueOutcome(rows_written=written[0])


def copied(result: RehearsalResult) -> list[CopyTable]:
    """The tables whose rows the rehearsal copied from the database (copy_data)."""
    return [CopyTable(str(n), int(r), str(b)) for n, r, b in result.extra.get("copied", [])]


def _where(location: str, by_file: Mapping[str, MigrationSQL]) -> str:
    """A rehearsal location (`tmp/0003_app_name.sql:LINE:COL`) in the migration file."""
    from pathlib import Path

    from pgwarden.contrib.django.source import locate

    head, _, _col = location.rpartition(":")
    path, _, line = head.rpartition(":")
    mig = by_file.get(Path(path).name)
    if mig is None or not line.isdigit():
        return location
    if mig.python_operations:
        op = mig.python_operations[0]
        return f"{mig.path}:{op.line}:{op.column}"
    return str(locate(mig, int(line)))


def relabel(result: RehearsalResult, by_file: Mapping[str, MigrationSQL]) -> RehearsalResult:
    """`result` located at the migration files, not at the rehearsal's temporary .sql files:
    each SQL step as `app.0002_x at path:line:column`, each finding at its line (the
    HTML report)."""
    from dataclasses import replace
    from pathlib import Path

    from pgwarden.location import SourceLocation

    steps = []
    for tr in result.steps:
        where = _where(tr.location, by_file)
        mig = by_file.get(Path(tr.location.rsplit(":", 2)[0]).name)
        if mig is not None and where != tr.location and not mig.python_operations:
            where = f"{mig.key} at {where}"
        steps.append(replace(tr, location=where))
    findings = []
    for f in result.findings:
        path, line, col = _where(str(f.location), by_file).rsplit(":", 2)
        findings.append(replace(f, location=SourceLocation(path, int(line), int(col))))
    return replace(result, steps=tuple(steps), findings=tuple(findings))


def _blocked(trace: StepTrace) -> str:
    parts = [
        f"{b.table} reads {b.reads_blocked_s:.3f} s, writes {b.writes_blocked_s:.3f} s"
        for b in trace.blocking
        if b.reads_blocked_s > 0 or b.writes_blocked_s > 0
    ]
    return "; ".join(parts) or "none"


def report_text(
    result: RehearsalResult, migs: Sequence[MigrationSQL], by_file: Mapping[str, MigrationSQL]
) -> list[str]:
    """The command's text output: summary, the steps Django ran, findings, report path."""
    python = [m for m in migs if m.python_operations]
    ran = f" ({len(python)} run by Django's executor)" if python else ""
    lines = [
        f"rehearsal {headline(result.status, result.findings)}: {len(result.findings)} "
        "finding(s) in "
        f"{len(migs)} migration(s){ran}, up to {migs[-1].key}"
    ]
    lines += [c.said() for c in copied(result)]
    keys = {f"{m.key}: " for m in python} | {f"{s} (" for s in SIGNALS}
    for tr in result.steps:
        if not any(tr.sql.startswith(k) for k in keys):
            continue
        if tr.status in ("skipped", "interrupted"):
            lines.append(f"step {tr.index} {tr.sql}: {tr.status}")
            continue
        locks = ", ".join(
            f"{m} on {r}" for r, m in sorted(tr.strongest().items()) if m != "ACCESS SHARE"
        )
        status = tr.status if tr.error is None else f"{tr.status}: {tr.error.message}"
        lines.append(
            f"step {tr.index} {tr.sql}: {status}; {tr.duration_s:.3f} s; "
            f"locks held: {locks or 'none stronger than ACCESS SHARE'}; "
            f"{tr.rows_written:,} row(s) written; probe traffic blocked: {_blocked(tr)}"
        )
    skipped = sum(1 for tr in result.steps if tr.status == "skipped")
    if skipped:
        lines.append(f"{skipped} step(s) not run after the failure")
    for f in result.findings:
        lines.append(f"{_where(str(f.location), by_file)}: {f.severity.value} {f.code} {f.name}")
        lines.append(f"  {f.message}")
        if f.help:
            lines.append(f"  help: {f.help}")
    if result.report_path:
        lines.append(f"report: {result.report_path}")
    return lines


def report_json(
    result: RehearsalResult, migs: Sequence[MigrationSQL], by_file: Mapping[str, MigrationSQL]
) -> dict[str, Any]:
    """`pgwarden rehearse --format json`'s document, located at the migration files, with
    the migrations (and which of them Django's executor ran)."""
    doc = result.to_dict()
    for raw in doc["findings"]:
        where = _where(
            f"{raw['location']['path']}:{raw['location']['line']}:{raw['location']['column']}",
            by_file,
        )
        path, line, col = where.rsplit(":", 2)
        raw["location"] = {"path": path, "line": int(line), "column": int(col)}
    for raw in doc["steps"]:
        raw["location"] = _where(str(raw["location"]), by_file)
    doc["copied"] = [
        {"table": c.name, "rows": c.rows, "referenced_by": c.referenced_by or None}
        for c in copied(result)
    ]
    doc["migrations"] = [
        {
            "app": m.app_label,
            "name": m.name,
            "path": m.path,
            "atomic": m.atomic,
            "runs_python": bool(m.python_operations),
        }
        for m in migs
    ]
    return doc
