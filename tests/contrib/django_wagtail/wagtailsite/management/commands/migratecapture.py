"""`manage.py migratecapture executed|rendered`: the SQL of the pending migrations as JSON.

executed: plain `manage.py migrate`, every statement Django really executes on the
database (connection.execute_wrapper), keyed by the migration running it;
rendered: what pgwarden renders for the same migrations
(pgwarden.contrib.django.source.collect), keyed the same way.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
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
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["rendered", "executed"])

    def handle(self, *args: Any, **options: Any) -> None:
        out: list[tuple[str, str]] = []
        if options["what"] == "rendered":
            from pgwarden.contrib.django.source import collect, select_migrations

            executor = MigrationExecutor(connection)
            for mig in collect(connection, executor, select_migrations(executor)):
                out += [(mig.key, sql) for _, sql in mig.chunks]
        else:

            def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
                if _Migrate.current:
                    out.append((_Migrate.current, str(sql)))
                return execute(sql, params, many, context)

            with connection.execute_wrapper(capture):
                call_command(_Migrate(), verbosity=0)
        self.stdout.write(json.dumps(out))
