"""`manage.py sqlcompare rendered|executed`: the DDL of the pending migrations as JSON.

rendered: what pgwarden collects (pgwarden.contrib.django.source.collect);
executed: what Django's own `migrate` really executes (connection.execute_wrapper).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

DDL = ("CREATE ", "ALTER ", "DROP ", "SET CONSTRAINTS ")


def _ddl(sql: str) -> str | None:
    text = " ".join(sql.split()).rstrip(";").strip()
    return text if text.upper().startswith(DDL) else None


class Command(BaseCommand):  # type: ignore[misc]
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["rendered", "executed"])

    def handle(self, *args: Any, **options: Any) -> None:
        out: list[str] = []
        if options["what"] == "rendered":
            from pgwarden.contrib.django.source import collect, select_migrations

            executor = MigrationExecutor(connection)
            for mig in collect(connection, executor, select_migrations(executor)):
                out += [t for _, sql in mig.chunks if (t := _ddl(sql))]
        else:

            def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
                if (t := _ddl(str(sql))) is not None:
                    out.append(t)
                return execute(sql, params, many, context)

            with connection.execute_wrapper(capture):
                call_command("migrate", verbosity=0)
        self.stdout.write(json.dumps(out))
