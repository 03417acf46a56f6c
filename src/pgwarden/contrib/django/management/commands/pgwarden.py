"""`manage.py pgwarden lint | migrate | rehearse`: pgwarden on Django migrations.

Exit codes follow the `pgwarden` CLI: 0 ok, 1 findings at or above fail_on,
2 bad input or refused, 3 the apply failed or was cancelled.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, ClassVar

import click
import orjson
from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from pgwarden.contrib.django.source import (
    MigrationSQL,
    build_django_plan,
    collect,
    database_url,
    django_help,
    django_timezone,
    record_sql,
    select_migrations,
    session_timezone,
    standalone_sql,
    suppress,
)
from pgwarden.errors import (
    ApplyFailed,
    InputError,
    PgwardenError,
    Refused,
    SqlParseError,
    UsageError,
)

EXIT_FINDINGS, EXIT_INPUT, EXIT_APPLY = 1, 2, 3


SMALL_DATABASE_ROWS = 10_000


def context_note(connection: Any, ctx: Any, options: dict[str, Any]) -> str:
    """Where lint's catalog and statistics came from, naming the database (no password)."""
    source = ctx.source
    if source == "database":
        tables = ctx.snapshot.stats.tables.values() if ctx.snapshot is not None else []
        largest = max(tables, key=lambda t: t.rows, default=None)
        size = (
            f"; its largest table is {largest.name} with {largest.rows:,} rows"
            if largest is not None
            else "; it has no tables"
        )
        if largest is None or largest.rows < SMALL_DATABASE_ROWS:
            size += (
                ": a CI or development copy makes every hazard look small; lint with --stats "
                "and a snapshot of production, or with --sql-only (every table assumed large)"
            )
        else:
            size += "; --sql-only lints from the SQL alone"
        where = " ".join(
            f"{k}={v}"
            for k, v in (
                ("dbname", connection.settings_dict.get("NAME")),
                ("host", connection.settings_dict.get("HOST")),
                ("port", connection.settings_dict.get("PORT")),
            )
            if v
        )
        return (
            f"catalog and table statistics read from database {connection.alias!r} ({where}) "
            f"(read-only){size}"
        )
    if source == "snapshot":
        return f"catalog and table statistics from {options['stats_file']}"
    why = "" if options["sql_only"] else " (every migration from a clean start)"
    return f"from the SQL alone{why}: every existing table is assumed large and busy"


def _ensure_connection(connection: Any) -> None:
    """Connect Django's database first: a server that is down, a wrong password or an
    unknown database is one `ConnectionFailed` naming it (no password) and the fix, not a
    traceback out of Django's migration loader."""
    import psycopg
    from django.db.utils import OperationalError

    from pgwarden.errors import ConnectionFailed
    from pgwarden.pg.connect import connect_hint, describe_dsn, libpq_reason

    try:
        connection.ensure_connection()
    except OperationalError as exc:
        cause = exc.__cause__
        where = f"{describe_dsn(database_url(connection))} (Django database {connection.alias!r})"
        if not isinstance(cause, psycopg.OperationalError):
            raise ConnectionFailed(
                f"cannot connect to {where}: {type(exc).__name__}",
                hint="check the DATABASES setting and that the server is reachable",
            ) from None
        raise ConnectionFailed(
            f"cannot connect to {where}: {libpq_reason(str(cause)) or type(cause).__name__}",
            hint=connect_hint(cause, where=f"DATABASES[{connection.alias!r}]"),
            sqlstate=cause.sqlstate,
        ) from None


class Command(BaseCommand):  # type: ignore[misc]
    help = "pgwarden: lint, apply under guard, or rehearse Django migrations."
    requires_system_checks: ClassVar[list[str]] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        common = {"database": ("--database", {"default": DEFAULT_DB_ALIAS})}

        lint = sub.add_parser("lint", help="Lint the SQL of migrations.")
        lint.add_argument("app_label", nargs="?", help="Only this app's migrations.")
        lint.add_argument(
            "--unapplied",
            action="store_true",
            help="Only migrations not yet applied to the database (default: all).",
        )
        lint.add_argument("--stats", dest="stats_file", metavar="FILE", help="Stats snapshot.")
        lint.add_argument(
            "--live-stats",
            action="store_true",
            help="Read the catalog, table sizes and traffic from the database (read-only); "
            "the default with --unapplied.",
        )
        lint.add_argument(
            "--sql-only",
            action="store_true",
            help="Lint from the SQL alone: read no catalog or statistics from the database "
            "(every existing table is assumed large and busy).",
        )
        lint.add_argument(
            "--format",
            dest="fmt",
            choices=["text", "json", "sarif", "github", "gitlab"],
            default="text",
        )
        lint.add_argument("--fail-on", choices=["error", "warning", "note", "never"])
        lint.add_argument("--config", metavar="FILE", help="pgwarden configuration file.")

        mig = sub.add_parser("migrate", help="Apply unapplied migrations under pgwarden's guards.")
        mig.add_argument("app_label", nargs="?")
        mig.add_argument("migration_name", nargs="?")
        mig.add_argument("--env", help="The environment this database is (identity guard).")
        mig.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        mig.add_argument(
            "--restamp", action="store_true", help="Adopt this database as --env (re-bind it)."
        )
        mig.add_argument(
            "--rewrite", action="store_true", help="Apply the lint fixes (lock-friendly SQL)."
        )
        mig.add_argument("--dry-run", action="store_true", help="Show the plan; run nothing.")
        mig.add_argument("--stats", dest="stats_file", metavar="FILE")
        mig.add_argument("--lock-timeout-ms", type=int)
        mig.add_argument("--statement-timeout-ms", type=int)
        mig.add_argument("--accept-data-loss", metavar="TOKEN")
        mig.add_argument(
            "--break-glass",
            metavar="REASON",
            help="Run as a declared break-glass role on a protected env (recorded; audit docs).",
        )
        mig.add_argument("--journal-file", default=".pgwarden/journal.jsonl")
        mig.add_argument("--config", metavar="FILE")

        reh = sub.add_parser("rehearse", help="Rehearse unapplied migrations on a copy.")
        reh.add_argument("app_label", nargs="?")
        reh.add_argument("migration_name", nargs="?")
        reh.add_argument("--stats", dest="stats_file", metavar="FILE")
        reh.add_argument("--report", metavar="FILE", help="HTML report path.")
        reh.add_argument("--format", dest="fmt", choices=["text", "json"], default="text")
        reh.add_argument("--config", metavar="FILE")

        for p in (lint, mig, reh):
            name, kw = common["database"]
            p.add_argument(name, **kw, help="Django database alias.")
            # also after the subcommand; SUPPRESS keeps a --traceback given before it
            p.add_argument(
                "--traceback",
                action="store_true",
                default=argparse.SUPPRESS,
                help="Raise on error, with the original exception, instead of one message.",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            _ensure_connection(connections[options["database"]])
            with django_timezone(connections[options["database"]]):
                if action == "lint":
                    code = self._lint(options)
                elif action == "migrate":
                    code = self._migrate(options)
                else:
                    code = self._rehearse(options)
        except PgwardenError as exc:
            if options.get("traceback"):
                raise
            self.stderr.write(f"error: {exc.message}")
            if exc.hint:
                self.stderr.write(f"  hint: {exc.hint}")
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:  # Ctrl-C (or end of input) at the confirmation prompt
            if options.get("traceback"):
                raise
            self.stderr.write("")  # the prompt's line is still open
            self.stderr.write("error: not confirmed (interrupted at the prompt): nothing applied")
            self.stderr.write("  hint: run it again and type the database name, or pass --yes")
            sys.exit(EXIT_INPUT)
        if code:
            sys.exit(code)

    # -- lint ----------------------------------------------------------------------

    def _collect(
        self, options: dict[str, Any], *, unapplied: bool, for_apply: bool
    ) -> tuple[Any, list[MigrationSQL]]:
        connection = connections[options["database"]]
        if for_apply:
            MigrationRecorder(connection).ensure_schema()
        executor = _executor(connection)
        migs = select_migrations(
            executor,
            app_label=options.get("app_label"),
            migration_name=options.get("migration_name"),
            unapplied=unapplied,
        )
        collected = collect(connection, executor, migs, from_zero=not unapplied)
        if options["action"] == "lint" and options.get("app_label"):
            # lint APP: the app's migrations, rendered after the others they depend on
            collected = [m for m in collected if m.app_label == options["app_label"]]
        return connection, collected

    def _lint(self, options: dict[str, Any]) -> int:
        from rich.console import Console

        from pgwarden.commands import lint_built_plan, load_context
        from pgwarden.contrib.django.python_steps import python_writes
        from pgwarden.findings import Severity
        from pgwarden.lint.ignore_sources import apply_source_ignores, source_ignores
        from pgwarden.report.lint_text import render_lint
        from pgwarden.settings import load_settings

        cfg = load_settings(options["config"])
        if options["sql_only"] and (options["live_stats"] or options["stats_file"]):
            raise UsageError("--sql-only reads no statistics: drop --live-stats / --stats")
        connection, migs = self._collect(options, unapplied=options["unapplied"], for_apply=False)
        # The database is where the pending migrations start (--unapplied): its catalog and
        # statistics are the context, read-only, unless a snapshot or --sql-only says otherwise.
        live = options["live_stats"] or (
            options["unapplied"] and not options["sql_only"] and not options["stats_file"]
        )
        ctx = load_context(
            database_url=database_url(connection) if live else None,
            stats_file=options["stats_file"],
            pg_version=cfg.pg_version,
        )
        self.stderr.write(f"lint: {context_note(connection, ctx, options)}")
        # the TimeZone Django's (and pgwarden migrate's) sessions run with
        try:
            plan = build_django_plan(
                migs,
                catalog=ctx.catalog,
                server_version=ctx.server_version,
                timezone=session_timezone(connection),
            )
        except SqlParseError as exc:
            if options["fmt"] in ("json", "sarif", "gitlab"):  # CI uploads the report
                from pgwarden.lint.engine import syntax_error_result
                from pgwarden.plan import Plan

                self._write_lint_report(options, Plan(()), syntax_error_result(exc), migs)
            raise
        # the settings' DML limits and type-change grading; with the live database, the
        # planner's DML sizes and PW401's counts (as pgwarden lint). A RunPython before a
        # new constraint may fix the rows counted: those counts are warnings naming it
        dsn = database_url(connection) if live else None
        code = python_writes(plan, migs) if dsn else []
        result = lint_built_plan(plan, ctx, cfg, preflight_dsn=dsn, hidden_writes=code)
        result = suppress(result, migs)
        apps = {m.path: m.app_label for m in migs}
        result = apply_source_ignores(
            result, source_ignores(cfg), app_of=apps.get, config=cfg.source or "configuration"
        )
        result = replace(result, findings=tuple(django_help(f) for f in result.findings))
        if options["fmt"] in ("json", "sarif", "github", "gitlab"):
            self._write_lint_report(options, plan, result, migs)
        else:
            console = Console(file=self.stdout, highlight=False, soft_wrap=True)
            if not migs:
                console.print("no migrations to lint")
            render_lint(console, plan, result)
        fail_on = options["fail_on"] or cfg.fail_on
        if fail_on != "never" and result.failed(Severity(fail_on)):
            return EXIT_FINDINGS
        return 0

    def _write_lint_report(
        self, options: dict[str, Any], plan: Any, result: Any, migs: list[MigrationSQL]
    ) -> None:
        """`result` on stdout in a machine format (json, sarif, github, gitlab)."""
        if options["fmt"] == "json":
            from pgwarden.report.lint_json import lint_json

            doc = lint_json(plan, result)
            doc["migrations"] = [
                {"app": m.app_label, "name": m.name, "path": m.path, "atomic": m.atomic}
                for m in migs
            ]
            self.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        else:
            from pgwarden.report.lint_ci import ci_report

            self.stdout.write(ci_report(options["fmt"], plan, result), ending="")

    # -- migrate -------------------------------------------------------------------

    def _migrate(self, options: dict[str, Any]) -> int:
        from pgwarden.settings import load_settings

        cfg = load_settings(options["config"])
        connection, migs = self._collect(options, unapplied=True, for_apply=True)
        if not migs:
            self.stdout.write("no migrations to apply")
            return 0
        return self._migrate_all(options, cfg, connection, migs)

    def _migrate_all(
        self, options: dict[str, Any], cfg: Any, connection: Any, migs: list[MigrationSQL]
    ) -> int:
        """Guarded SQL and Django-run (Python) migrations in plan order, between
        `pre_migrate` and `post_migrate`, as `manage.py migrate` runs them."""

        from pgwarden.cli.interrupts import ctrl_c_escalates
        from pgwarden.contrib.django.runner import segments
        from pgwarden.pg.stamp import stamped_protection
        from pgwarden.settings import is_protected

        parts = segments(migs)
        sql_only = [m for runs, part in parts if not runs for m in part]
        if options["dry_run"]:
            for runs, part in parts:
                if runs:
                    self.stdout.write(
                        "runs Python, through Django's executor between the guarded parts: "
                        + ", ".join(m.key for m in part)
                    )
            return self._guarded(options, cfg, connection, sql_only)
        verbosity = int(options.get("verbosity", 1))
        env = options["env"]
        declared = cfg.environments.get(env) if env else None
        # An --env the configuration declares protected with a role policy: the role is
        # checked before anything reads pgwarden's stamp (another role may not read it).
        known = declared is not None and declared.protected and declared.roles is not None
        dsn = database_url(connection)
        unconfirmed = parts[0][0] and env and not options["yes"]  # Django runs first
        if unconfirmed and (known or is_protected(env, cfg.environments, stamped_protection(dsn))):
            m = parts[0][1][0]
            raise Refused(
                f"{m.key} runs Python first, through Django's executor, and {env!r} is "
                "protected: it cannot be confirmed before the guarded run asks",
                hint="check the target, then pass --yes",
            )
        if env and (known or parts[0][0]):  # Django's executor would run as any role
            from pgwarden.access.enforce import check_role
            from pgwarden.pg.connect import connect as pg_connect

            with pg_connect(dsn, application_name="pgwarden-migrate") as conn:
                check_role(
                    conn,
                    environment=env,
                    protected=known or is_protected(env, cfg.environments, stamped_protection(dsn)),
                    policy=None if declared is None else declared.roles,
                    break_glass=options.get("break_glass"),
                    command="migrate",
                    config=cfg.source,
                )
        if len(parts) > 1 or parts[0][0]:
            # The parts run one after another: what a real run of any SQL part would refuse
            # (a destructive step without a backup, an unstamped database, ...) is refused
            # now, before the first part runs, not half-way through the upgrade.
            check = self._apply(dict(options, dry_run=True), cfg, connection, sql_only)
            if check.warnings:
                raise Refused(
                    f"refused before anything ran ({len(migs)} migrations, "
                    f"{sum(1 for runs, _ in parts if runs)} run by Django's executor between "
                    "the guarded parts): " + "; ".join(check.warnings),
                    hint="the hints above say how to proceed; nothing was applied",
                )
        cancel = threading.Event()
        # Ctrl-C: the first cancels the running statement; a second unwinds Django's executor
        # (its migration rolls back) into one message and exit 3; a third exits 3 at once.
        try:
            with ctrl_c_escalates(cancel, unwind=True):
                return self._run_parts(options, cfg, connection, migs, parts, cancel, verbosity)
        except KeyboardInterrupt:  # outside a migration: between parts, in a signal receiver
            raise ApplyFailed(
                "interrupted (Ctrl-C twice); the migrations before are applied and recorded",
                hint="`manage.py showmigrations` lists them; run `manage.py pgwarden migrate` "
                "again to continue",
            ) from None

    def _run_parts(
        self,
        options: dict[str, Any],
        cfg: Any,
        connection: Any,
        migs: list[MigrationSQL],
        parts: list[tuple[bool, list[MigrationSQL]]],
        cancel: threading.Event,
        verbosity: int,
    ) -> int:
        """Each part in plan order: Django's executor runs the Python ones, guarded."""
        from pgwarden.contrib.django.runner import (
            emit_post_migrate,
            emit_pre_migrate,
            run_in_django,
        )

        with self._watchdog(connection, parts, cancel, cfg) as watchdog:
            emit_pre_migrate(connection, migs, verbosity)
            step_options = options
            for runs, part in parts:
                if cancel.is_set():
                    self.stderr.write("error: cancelled; the migrations before are applied")
                    return EXIT_APPLY
                if runs:
                    self.stdout.write(
                        "running " + ", ".join(m.key for m in part) + " through Django's "
                        "executor (RunPython), under lock_timeout and the watchdog"
                    )
                    run_in_django(
                        connection,
                        part,
                        lock_timeout_ms=options["lock_timeout_ms"] or 1000,
                        statement_timeout_ms=options["statement_timeout_ms"],
                        on_retry=self.stderr.write,
                        watchdog=watchdog,
                        cancel=cancel,
                    )
                    continue
                code = self._guarded(step_options, cfg, connection, part, cancel)
                if code:
                    return code
                # confirmed and stamped by the first guarded part
                step_options = dict(options, yes=True, restamp=False)
            emit_post_migrate(connection, migs, verbosity)
        return 0

    @contextmanager
    def _watchdog(
        self, connection: Any, parts: list[tuple[bool, list[MigrationSQL]]], cancel: Any, cfg: Any
    ) -> Iterator[Any]:
        """The watchdog of the parts Django's executor runs (none when there are none), with
        the configured `watchdog.unreachable_s`."""
        if not any(runs for runs, _ in parts):
            yield None
            return
        from pgwarden.apply.api import Limits
        from pgwarden.apply.policy import watchdog_policy
        from pgwarden.apply.watchdog import Watchdog

        limits = Limits(unreachable_s=cfg.watchdog_unreachable_s)
        with Watchdog(database_url(connection), watchdog_policy(limits), cancel) as watchdog:
            yield watchdog

    def _apply(
        self,
        options: dict[str, Any],
        cfg: Any,
        connection: Any,
        migs: list[MigrationSQL],
        cancel: threading.Event | None = None,
    ) -> Any:
        """`migs` (SQL only) through pgwarden's guarded executor: its ApplyResult."""
        from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
        from pgwarden.cli.interaction import confirm_prompt
        from pgwarden.commands import load_context
        from pgwarden.contrib.django.runner import guarded_ctrl_c

        ctx = load_context(stats_file=options["stats_file"]) if options["stats_file"] else None
        table = MigrationRecorder.Migration._meta.db_table
        plan = build_django_plan(
            migs,
            catalog=ctx.catalog if ctx else None,
            server_version=ctx.server_version if ctx else None,
            record_table=table,
            tag=True,
            timezone=session_timezone(connection),
        )
        # with Django's TimeZone: a timestamp -> timestamptz change runs as `migrate` runs it
        dsn = database_url(connection)
        connection.close()  # the guarded executor uses its own connections
        cancel = cancel or threading.Event()
        with guarded_ctrl_c(cancel, dsn, options["journal_file"]) as observer:
            return apply_plan(
                plan,
                database_url=dsn,
                policy=GuardPolicy(
                    env=options["env"],
                    yes=options["yes"],
                    accept_data_loss=options["accept_data_loss"],
                    break_glass=options.get("break_glass"),
                    restamp=options["restamp"],
                    confirm=None if options["yes"] else confirm_prompt(),
                ),
                options=RunOptions(
                    rewrite=options["rewrite"],
                    dry_run=options["dry_run"],
                    limits=Limits(
                        lock_timeout_ms=options["lock_timeout_ms"],
                        statement_timeout_ms=options["statement_timeout_ms"],
                    ),
                    snapshot=ctx.snapshot if ctx else None,
                    journal_file=options["journal_file"],
                ),
                settings=cfg,
                observer=observer,
                cancel=cancel,
            )

    def _guarded(
        self,
        options: dict[str, Any],
        cfg: Any,
        connection: Any,
        migs: list[MigrationSQL],
        cancel: threading.Event | None = None,
    ) -> int:
        """Apply `migs` (SQL only) through pgwarden's guarded executor and report it."""
        self.stdout.write(
            "applying "
            + ", ".join(m.key for m in migs)
            + (" (dry run)" if options["dry_run"] else "")
        )
        result = self._apply(options, cfg, connection, migs, cancel)
        if result.state == "dry-run":
            for s in result.steps:
                locks = f"  ({'; '.join(s.locks)})" if s.locks else ""
                self.stdout.write(f"{s.index:>3} {s.location} {' '.join(s.sql.split())}{locks}")
            for warning in result.warnings:
                self.stdout.write(warning)
            return 0
        if result.state == "done":
            self.stdout.write(
                f"run {result.run_id}: done; applied " + ", ".join(m.key for m in migs)
            )
            return 0
        outcome = result.outcome
        message = outcome.message if outcome and outcome.message else result.state
        self.stderr.write(f"error: run {result.run_id}: {message}")
        if outcome is not None and outcome.hint:
            self.stderr.write(f"  hint: {outcome.hint}")
        return EXIT_APPLY

    # -- rehearse ------------------------------------------------------------------

    def _record_parts(self, result: Any, migs: list[MigrationSQL]) -> None:
        """Record each stretch of SQL migrations between the Python ones as rehearsed:
        the plans `manage.py pgwarden migrate` applies one by one (require_rehearsed)."""
        from pgwarden.contrib.django.runner import segments
        from pgwarden.rehearse.record import write_record

        table = MigrationRecorder.Migration._meta.db_table
        for runs, part in segments(migs):
            if not runs:
                plan = build_django_plan(part, record_table=table, tag=True)
                write_record(replace(result, fingerprint=plan.fingerprint()))

    @staticmethod
    def _html(result: Any, by_file: dict[str, MigrationSQL], path: str) -> Any:
        """Write the HTML report located at the migration files; `result` with its path."""
        from pathlib import Path

        from pgwarden.contrib.django.rehearsal import relabel
        from pgwarden.rehearse.report_html import write_report

        write_report(relabel(result, by_file), Path(path))
        return replace(result, report_path=path)

    def _rehearse(self, options: dict[str, Any]) -> int:
        import tempfile
        from pathlib import Path

        from pgwarden.commands import load_plan
        from pgwarden.contrib.django.rehearsal import (
            DjangoStep,
            SignalStep,
            default_copy_data,
            model_choices,
            placeholder_sql,
        )
        from pgwarden.events import Event, Phase
        from pgwarden.rehearse.api import RehearsalInterrupted, RehearseOptions, rehearse
        from pgwarden.rehearse.copydata import copy_settings
        from pgwarden.settings import load_settings

        cfg = load_settings(options["config"])
        copy = copy_settings(cfg)
        connection, migs = self._collect(options, unapplied=True, for_apply=False)
        if not migs:
            self.stdout.write("no migrations to rehearse")
            return 0
        dsn = database_url(connection)
        copy_data = default_copy_data(connection) if copy.tables is None else copy.tables
        # Python migrations run through Django's executor on the copy; its loader (and the
        # project state of each) starts from what the real database has applied.
        executor = MigrationExecutor(connection)
        done = set(executor.loader.applied_migrations)
        choices = model_choices(executor, connection)  # the synthetic rows' values
        by_file: dict[str, MigrationSQL] = {}
        steps: dict[str, DjangoStep | SignalStep] = {}
        with tempfile.TemporaryDirectory(prefix="pgwarden-django-") as tmp:

            def signal(name: str, order: int) -> None:
                # sent once before the first and after the last migration, as migrate does
                step = SignalStep(name, connection, executor, migs, done, say=self.stderr.write)
                path = Path(tmp) / f"{order:04d}_{name}.sql"
                path.write_text(placeholder_sql(step.name), encoding="utf-8")
                steps[str(path)] = step

            signal("pre_migrate", 0)
            for i, m in enumerate(migs, 1):
                path = Path(tmp) / f"{i:04d}_{m.app_label}_{m.name}.sql"
                if m.python_operations:
                    python = DjangoStep(connection, executor, m, done, say=self.stderr.write)
                    path.write_text(placeholder_sql(python.name), encoding="utf-8")
                    steps[str(path)] = python
                else:
                    # With the django_migrations INSERTs, as `pgwarden migrate` runs it, so
                    # that the rehearsed plan's fingerprint is the applied one.
                    record = record_sql(m, MigrationRecorder.Migration._meta.db_table)
                    path.write_text(standalone_sql(m, record), encoding="utf-8")
                by_file[path.name] = m
                done |= {(m.app_label, m.name), *m.records}
            signal("post_migrate", len(migs) + 1)

            def phases(event: Event) -> None:
                if isinstance(event, Phase):
                    self.stderr.write(event.message)

            connection.close()  # the rehearsal reads the schema on its own connections
            try:
                result = rehearse(
                    # atomic migrations carry their own BEGIN/COMMIT
                    load_plan([tmp], file_transaction=False),
                    RehearseOptions(
                        schema_from=dsn,
                        stats_file=options["stats_file"],
                        environments=cfg.environments,
                        opaque=steps,
                        # real rows of the reference tables data migrations look up
                        copy_data=copy_data,
                        copy_max_rows=copy.max_rows,
                        config=cfg.source,
                        choices=choices,
                        # the TimeZone Django sets on its sessions: a timestamp ->
                        # timestamptz change is rehearsed as `migrate` runs it
                        timezone=session_timezone(connection),
                    ),
                    observer=phases,
                )
            except RehearsalInterrupted as exc:  # Ctrl-C: cleaned up, as `pgwarden rehearse`
                self.stderr.write("error: interrupted; the rehearsal cluster was removed")
                if exc.result is not None and options["report"]:
                    self._html(exc.result, by_file, options["report"])
                    self.stderr.write(f"  partial report: {options['report']}")
                return EXIT_INPUT
            finally:
                for step in steps.values():  # Django's connection back on the real database
                    step.close()
        from pgwarden.contrib.django.rehearsal import report_json, report_text

        if options["report"]:
            result = self._html(result, by_file, options["report"])
        if result.status == "completed":  # the whole plan has the signals' steps too
            self._record_parts(result, migs)
        if options["fmt"] == "json":
            doc = report_json(result, migs, by_file)
            self.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        else:
            lines = report_text(result, migs, by_file)
            # the notes after the summary, as `pgwarden rehearse` prints them (the copied
            # tables' are among report_text's lines already)
            lines[1:1] = [f"note: {n}" for n in result.notes if n not in lines]
            for line in lines:
                self.stdout.write(line)
        from pgwarden.cli.rehearse import exit_code

        return exit_code(result)  # as `pgwarden rehearse` on the same plan


def _executor(connection: Any) -> MigrationExecutor:
    """Django's MigrationExecutor (it loads every migration); a migration Django cannot
    load is an InputError naming it (exit 2), as `manage.py migrate` fails on it too."""
    import traceback

    from django.db.migrations.exceptions import BadMigrationError, NodeNotFoundError

    again = "; `manage.py migrate --plan` fails on it the same way"
    try:
        return MigrationExecutor(connection)
    except (NodeNotFoundError, BadMigrationError) as exc:
        raise InputError(
            f"Django cannot build the migration graph: {exc}",
            hint="fix that migration's dependencies" + again,
        ) from exc
    except SyntaxError as exc:
        where = f"{_shown(exc.filename)}:{exc.lineno}" if exc.filename else "a migration"
        raise InputError(
            f"{where}: Django cannot load this migration: SyntaxError: {exc.msg}",
            hint="fix the migration file" + again,
        ) from exc
    except ImportError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [f for f in frames if "/migrations/" in f.filename.replace("\\", "/")]
        where = f"{_shown(mine[-1].filename)}:{mine[-1].lineno}" if mine else "a migration"
        raise InputError(
            f"{where}: Django cannot load this migration: {type(exc).__name__}: {exc}",
            hint="make what it imports importable (installed, or on the project's path)" + again,
        ) from exc


def _shown(path: str) -> str:
    """`path` relative to the working directory when it lies under it."""
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path
