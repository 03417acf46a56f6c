"""The parts of `manage.py pgwarden migrate` that Django itself must run.

Migrations with `RunPython` (or any operation that is not SQL) cannot run in
pgwarden's guarded executor: they run through Django's `MigrationExecutor`, in
plan order between the SQL parts pgwarden guards, each in its own transaction
(atomic migrations) under a short `lock_timeout` with retries, and
`statement_timeout`. `pre_migrate` and `post_migrate` are sent as `manage.py
migrate` sends them (content types and permissions are created by their receivers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pgwarden.contrib.django.source import MigrationSQL
from pgwarden.errors import PgwardenError

__all__ = ["DjangoRunError", "emit_post_migrate", "emit_pre_migrate", "run_in_django", "segments"]


class DjangoRunError(PgwardenError):
    """A migration run through Django's executor failed (exit code 3)."""

    exit_code = 3


def segments(migs: Sequence[MigrationSQL]) -> list[tuple[bool, list[MigrationSQL]]]:
    """Consecutive runs of migrations: (runs Python, migrations), in plan order."""
    out: list[tuple[bool, list[MigrationSQL]]] = []
    for mig in migs:
        python = bool(mig.python_operations)
        if out and out[-1][0] == python:
            out[-1][1].append(mig)
        else:
            out.append((python, [mig]))
    return out


def _plan(executor: Any, migs: Sequence[MigrationSQL]) -> list[tuple[Any, bool]]:
    nodes = executor.loader.graph.nodes
    return [(nodes[(m.app_label, m.name)], False) for m in migs]


def emit_pre_migrate(connection: Any, migs: Sequence[MigrationSQL], verbosity: int = 0) -> None:
    """`pre_migrate`, with the apps of the state before the run, as `migrate` sends it."""
    from django.core.management.sql import emit_pre_migrate_signal
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    state = executor._create_project_state(with_applied_migrations=True)
    emit_pre_migrate_signal(
        verbosity, False, connection.alias, apps=state.apps, plan=_plan(executor, migs)
    )


def emit_post_migrate(connection: Any, migs: Sequence[MigrationSQL], verbosity: int = 0) -> None:
    """`post_migrate`, with the apps of the state after the run, as `migrate` sends it."""
    from django.core.management.sql import emit_post_migrate_signal
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)  # reads django_migrations as the run left it
    state = executor._create_project_state(with_applied_migrations=True)
    emit_post_migrate_signal(
        verbosity, False, connection.alias, apps=state.apps, plan=_plan(executor, migs)
    )


def _lock_timed_out(exc: BaseException) -> bool:
    import psycopg.errors

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.errors.LockNotAvailable):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def run_in_django(
    connection: Any,
    migs: Sequence[MigrationSQL],
    *,
    lock_timeout_ms: int,
    statement_timeout_ms: int | None,
    attempts: int = 8,
    on_retry: Callable[[str], None] | None = None,
) -> None:
    """Apply `migs` one by one through Django's executor (which records them).

    Each runs under a short `lock_timeout`; an atomic migration that timed out waiting
    for a lock rolled back whole, so it is retried (up to `attempts`, with backoff),
    as the guarded executor retries its own transactions. A non-atomic one is not.
    """
    for mig in migs:
        for attempt in range(1, attempts + 1):
            try:
                _apply_one(connection, mig, lock_timeout_ms, statement_timeout_ms)
                break
            except Exception as exc:
                if mig.atomic and attempt < attempts and _lock_timed_out(exc):
                    wait = min(0.25 * 2 ** (attempt - 1), 5.0)
                    if on_retry is not None:
                        on_retry(
                            f"{mig.key}: lock_timeout ({lock_timeout_ms} ms) waiting for a "
                            f"lock; rolled back, retry {attempt}/{attempts - 1} in {wait:.2f} s"
                        )
                    time.sleep(wait)
                    continue
                raise DjangoRunError(
                    f"{mig.path}: {mig.key} failed in Django's executor: "
                    f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                    hint="an atomic migration rolled back with its django_migrations row; fix "
                    "the cause and run `manage.py pgwarden migrate` again (--traceback shows "
                    "where)",
                ) from exc


def _apply_one(
    connection: Any, mig: MigrationSQL, lock_timeout_ms: int, statement_timeout_ms: int | None
) -> None:
    from django.db.migrations.executor import MigrationExecutor

    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{lock_timeout_ms}ms"])
        if statement_timeout_ms is not None:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, false)", [f"{statement_timeout_ms}ms"]
            )
    try:
        executor = MigrationExecutor(connection)
        migration = executor.loader.graph.nodes[(mig.app_label, mig.name)]
        state = executor._create_project_state(with_applied_migrations=True)
        executor.apply_migration(state, migration)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
            cursor.execute("RESET statement_timeout")
