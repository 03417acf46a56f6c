"""`manage.py migratecapture`: the pending migrations and their SQL, as JSON.

plan: the pending migrations in the order `migrate` applies them (Django's plan);
rendered: what pgwarden renders for them (pgwarden.contrib.django.source.collect),
each statement keyed by its migration; then plain `manage.py migrate` runs, and
executed: every statement Django really executes on the database
(connection.execute_wrapper), keyed by the migration running it.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.core.management.commands.migrate import Command as Migrate
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


class _Migrate(Migrate):  # type: ignore[misc]
    """`migrate` noting which migration is running."""

    current = ""

    def migration_progress_callback(
        self, action: str, migration: Any = None, fake: bool = False
    ) -> None:
        if action == "apply_start":
            _Migrate.current = f"{migration.app_label}.{migration.name}"
        elif action == "apply_success":
            _Migrate.current = ""
        super().migration_progress_callback(action, migration, fake)


class Command(BaseCommand):  # type: ignore[misc]
    def handle(self, *args: Any, **options: Any) -> None:
        from pgwarden.contrib.django.source import collect, select_migrations

        executor = MigrationExecutor(connection)
        # Django's own plan, as `migrate` makes it (not pgwarden's selection)
        plan = [
            f"{m.app_label}.{m.name}"
            for m, _ in executor.migration_plan(executor.loader.graph.leaf_nodes())
        ]
        collected = collect(connection, executor, select_migrations(executor))
        rendered = [(mig.key, sql) for mig in collected for _, sql in mig.chunks]
        executed: list[tuple[str, str]] = []

        def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            if _Migrate.current:
                executed.append((_Migrate.current, str(sql)))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            call_command(_Migrate(), verbosity=0)
        self.stdout.write(json.dumps({"plan": plan, "rendered": rendered, "executed": executed}))
