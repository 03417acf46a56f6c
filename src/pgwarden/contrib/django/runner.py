"""The parts of `manage.py pgwarden migrate` that Django itself must run.

Migrations with `RunPython` (or any operation that is not SQL) cannot run in
pgwarden's guarded executor: they run through Django's `MigrationExecutor`, in
plan order between the SQL parts pgwarden guards, each in its own transaction
(atomic migrations) under a short `lock_timeout` with retries, and
`statement_timeout`. The run's watchdog guards Django's connection as it guards
pgwarden's own: when sessions queue behind it (waiting for a lock, or holding
one) its statement is cancelled, and so is it on Ctrl-C (the same cancel event).
A cancel while waiting rolls an atomic migration back whole and is retried like
a lock timeout; a cancel while holding, or by the user, stops the run. A second
Ctrl-C interrupts the migration in Django's executor (busy in Python, it did not
notice the cancel): it unwinds, rolls back, and the run stops with one message.
`pre_migrate` and `post_migrate` are sent as `manage.py migrate` sends them
(content types and permissions are created by their receivers).

The SQL parts run in pgwarden's guarded executor, with Ctrl-C handled as `pgwarden apply`
handles it (`guarded_ctrl_c`): a second press ends the step's backend through a new
connection, records the run as cancelled and says what the step left.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pgwarden.contrib.django.source import MigrationSQL
from pgwarden.errors import PgwardenError

if TYPE_CHECKING:
    from pgwarden.apply.watchdog import Watch, Watchdog
    from pgwarden.events import Observer

__all__ = [
    "DjangoRunError",
    "backend_pid",
    "emit_post_migrate",
    "emit_pre_migrate",
    "guarded_ctrl_c",
    "run_in_django",
    "segments",
]


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


@contextmanager
def guarded_ctrl_c(
    cancel: threading.Event, database_url: str, journal_file: str | None
) -> Iterator[Observer]:
    """Ctrl-C (or SIGTERM) while a guarded SQL part runs, as during `pgwarden apply`: the
    first cancels the step (its statement through a new connection if the run does not
    react), the second ends its backend (pg_terminate_backend), checks what it left, records
    the run as cancelled and exits 3, a third exits at once. Yields the run's observer: it
    prints the events and tells the handler which run to act on."""
    from pgwarden.cli.interaction import run_observer
    from pgwarden.cli.interrupts import ctrl_c_escalates

    # `manage.py pgwarden migrate` again continues with a new run, and sends post_migrate
    hint = "run `manage.py pgwarden migrate` again to continue"
    with ctrl_c_escalates(cancel, database_url, journal_file, resume_hint=hint) as interrupts:
        yield run_observer(interrupts)


def _lock_timed_out(exc: BaseException) -> bool:
    import psycopg.errors

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg.errors.LockNotAvailable):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def backend_pid(connection: Any) -> int:
    """The server process id of Django's connection (psycopg 3 or psycopg2)."""
    connection.ensure_connection()
    raw = connection.connection
    info = getattr(raw, "info", None)
    if info is not None and hasattr(info, "backend_pid"):
        return int(info.backend_pid)
    return int(raw.get_backend_pid())


@contextmanager
def _watched(connection: Any, watchdog: Watchdog | None) -> Iterator[Watch | None]:
    if watchdog is None:
        yield None
        return
    with watchdog.watch(backend_pid(connection)) as watch:
        yield watch


def _cancel_message(watch: Watch | None) -> str | None:
    if watch is None or watch.cancelled is None:
        return None
    if watch.cancelled == "user":
        return "cancelled (Ctrl-C or `pgwarden cancel`)"
    state = "waiting for a lock" if watch.cancelled == "blocking-while-waiting" else "holding locks"
    who = ", ".join(f"pid {b.pid} ({b.query})" for b in watch.blocked[:3])
    return (
        f"cancelled by the watchdog: {len(watch.blocked)} session(s) queued behind it while it "
        f"was {state}" + (f": {who}" if who else "")
    )


def run_in_django(
    connection: Any,
    migs: Sequence[MigrationSQL],
    *,
    lock_timeout_ms: int,
    statement_timeout_ms: int | None,
    attempts: int = 8,
    on_retry: Callable[[str], None] | None = None,
    watchdog: Watchdog | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Apply `migs` one by one through Django's executor (which records them).

    Each runs under a short `lock_timeout`, watched by `watchdog` (when given); an atomic
    migration that timed out waiting for a lock, or that the watchdog cancelled while it
    waited with sessions queued behind it, rolled back whole, so it is retried (up to
    `attempts`, with backoff), as the guarded executor retries its own transactions. A
    non-atomic one is not; a cancel while holding locks, or by the user, stops the run.
    """
    for mig in migs:
        try:
            _run_one(
                connection, mig, lock_timeout_ms, statement_timeout_ms, attempts, on_retry,
                watchdog, cancel,
            )  # fmt: skip
        except KeyboardInterrupt:  # a second Ctrl-C: Django's executor unwound (rolled back)
            _close(connection)
            raise DjangoRunError(
                f"{mig.path}: {mig.key} interrupted in Django's executor (Ctrl-C twice)",
                hint=(
                    "it is atomic: rolled back whole, not recorded in django_migrations"
                    if mig.atomic
                    else "a non-atomic migration may have run in part (not recorded)"
                )
                + "; the migrations before it are applied and recorded; run "
                "`manage.py pgwarden migrate` again to continue",
            ) from None


def _close(connection: Any) -> None:
    """Close Django's connection: whatever transaction it still had open is rolled back."""
    with contextlib.suppress(Exception):  # already broken: the server ends its transaction
        connection.close()


def _run_one(
    connection: Any,
    mig: MigrationSQL,
    lock_timeout_ms: int,
    statement_timeout_ms: int | None,
    attempts: int,
    on_retry: Callable[[str], None] | None,
    watchdog: Watchdog | None,
    cancel: threading.Event | None,
) -> None:
    """Apply one migration through Django's executor, with the retries `run_in_django` says."""
    for attempt in range(1, attempts + 1):
        if cancel is not None and cancel.is_set():
            raise DjangoRunError(
                f"{mig.key} not started: the run was cancelled",
                hint="the migrations before it are applied and recorded; run "
                "`manage.py pgwarden migrate` again to continue",
            )
        watch: Watch | None = None
        try:
            with _watched(connection, watchdog) as watch:
                _apply_one(connection, mig, lock_timeout_ms, statement_timeout_ms)
            break
        except Exception as exc:
            cancelled = _cancel_message(watch)
            waiting = watch is not None and watch.cancelled == "blocking-while-waiting"
            retry = _lock_timed_out(exc) if cancelled is None else waiting
            if mig.atomic and attempt < attempts and retry:
                wait = min(0.25 * 2 ** (attempt - 1), 5.0)
                why = cancelled or f"lock_timeout ({lock_timeout_ms} ms) waiting for a lock"
                if on_retry is not None:
                    on_retry(
                        f"{mig.key}: {why}; rolled back, retry {attempt}/{attempts - 1} "
                        f"in {wait:.2f} s"
                    )
                time.sleep(wait)
                continue
            what = cancelled or f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            raise DjangoRunError(
                f"{mig.path}: {mig.key} failed in Django's executor: {what}",
                hint=(
                    "an atomic migration rolled back with its django_migrations row"
                    if mig.atomic
                    else "a non-atomic migration may have run in part (not recorded)"
                )
                + "; fix the cause and run `manage.py pgwarden migrate` again "
                "(--traceback shows where)",
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
