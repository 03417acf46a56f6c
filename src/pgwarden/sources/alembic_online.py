"""Alembic revisions that only run online, run by Alembic inside pgwarden's guarded transaction.

A revision that reads data or inspects the connection (`op.get_bind().execute(...)`
using the result, `sa.inspect(op.get_bind())`, an ORM session) cannot be rendered
offline. For `pgwarden apply --alembic` it becomes one step of the plan whose SQL
is a placeholder (`placeholder_sql`: a DO block that fails, naming the revision,
if anything ever runs it as SQL), and `online_runner` gives the callable the
executor runs in that step's place: `alembic upgrade REV` through the project's
own env.py, online, on the executor's connection, inside the transaction the
executor opened. So the revision runs under the step's `lock_timeout` and
`statement_timeout`, watched by the watchdog (it cancels the backend when traffic
queues behind it, or on Ctrl-C), is retried when it timed out waiting for a lock
(the transaction rolled back whole, its `alembic_version` update with it), and is
recorded in the journal in the same transaction.

How env.py's engine gets that connection: while the revision runs, SQLAlchemy's
`do_connect` event hands every engine the executor's psycopg connection, wrapped
so that SQLAlchemy's commit, rollback and close do nothing (the executor commits
after recording the step, or rolls back). What cannot be guarded is refused, the
transaction rolled back: a revision that switches the connection to autocommit
(`autocommit_block()`), an isolation level other than the one the executor's
transaction began at (it cannot change once begun), an env.py engine on another
driver than psycopg 3, an env.py that connects without SQLAlchemy's engine
(`creator=`, a connection of its own).
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pge
from psycopg import sql

__all__ = [
    "RUNNING_ONLINE",
    "OnlineRevision",
    "Runner",
    "online_label",
    "online_runner",
    "placeholder_sql",
]

Runner = Callable[[psycopg.Connection[tuple[object, ...]]], None]

# Set while env.py runs for an online revision: pgwarden's own env.py hook
# (pgwarden.contrib.alembic.configure) then runs Alembic's plain online path.
RUNNING_ONLINE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "pgwarden_alembic_online", default=False
)


@dataclass(frozen=True, slots=True)
class OnlineRevision:
    """A revision the plan runs online, and what alembic_version holds before it."""

    revision: str
    path: str
    after: tuple[str, ...]  # the version table's rows before it (empty: no revision yet)
    sql: str  # the plan's placeholder statement for it


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def placeholder_sql(revision: str, path: str) -> str:
    """The plan's statement standing for an online revision: fails if run as SQL.

    Its text is fixed (`alembic_resume.placeholder_revision` reads the revision and
    path back for `pgwarden resume`, and stored plans hold it), "resume cannot" included.
    """
    msg = (
        f"alembic revision {revision} runs online through Alembic, not as SQL: run "
        f"`pgwarden apply --alembic` again, it runs it ({path} reads data or inspects the "
        "connection; resume cannot)"
    )
    hint = "run `pgwarden apply --alembic` again: it continues after alembic_version"
    return (
        f"DO $pgwarden$ BEGIN RAISE EXCEPTION USING MESSAGE = {_literal(msg)}, "
        f"HINT = {_literal(hint)}; END $pgwarden$"
    )


def online_label(revision: str, path: str) -> str:
    """How progress lines, tables and `pgwarden status` name an online revision's step
    (its statement is the placeholder, a DO block that reads like an error): the
    revision and its file's name, which holds its message (`0006_backfill_totals.py`)."""
    return f"alembic revision {revision} (online: {os.path.basename(path)})"


class _NotGuardable(Exception):
    """What the revision or env.py did that pgwarden cannot keep in its transaction."""


class _Borrowed:
    """The executor's connection as env.py's DBAPI connection, inside its transaction.

    SQLAlchemy's commit, rollback and close do nothing: the executor ends the
    transaction. Switching to autocommit is refused (it would commit half a step).
    """

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_handlers", [])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "autocommit" and value:
            self._refuse_autocommit()
        if name == "isolation_level":
            self._check_isolation(value)
        if name in ("autocommit", "isolation_level", "read_only", "deferrable"):
            return  # the executor's transaction keeps its settings
        setattr(self._conn, name, value)

    def _check_isolation(self, value: Any) -> None:
        """An isolation level other than the transaction's is refused, not silently dropped.

        The executor's transaction has begun (and taken its snapshot) before env.py
        connects: PostgreSQL cannot change its isolation any more. SQLAlchemy also sets
        the default level back on its connection; that one matches and passes.
        """
        if value is None:
            return
        wanted = psycopg.IsolationLevel(value).name.replace("_", " ")
        row = self._conn.execute("SHOW transaction_isolation").fetchone()
        current = str(row[0]).upper() if row else "?"
        if wanted != current:
            raise _NotGuardable(
                f"env.py asks for isolation level {wanted} (isolation_level= of "
                "create_engine(), sqlalchemy.isolation_level in alembic.ini, or "
                "connection.execution_options(isolation_level=...)), but the revision runs "
                f"inside pgwarden's transaction, which began at {current}, and PostgreSQL "
                "cannot change the isolation of a transaction once it has begun"
            )

    @staticmethod
    def _refuse_autocommit() -> None:
        raise _NotGuardable(
            "it switches the connection to autocommit (autocommit_block() or "
            "isolation_level='AUTOCOMMIT'), which would commit part of it outside the "
            "guarded transaction"
        )

    @property
    def autocommit(self) -> bool:
        return False  # statements run in the executor's transaction

    def set_autocommit(self, value: bool) -> None:
        if value:
            self._refuse_autocommit()

    def set_isolation_level(self, value: Any) -> None:
        self._check_isolation(value)

    def set_read_only(self, value: Any) -> None:
        pass

    def set_deferrable(self, value: Any) -> None:
        pass

    def add_notice_handler(self, fn: Any) -> None:
        self._handlers.append(fn)
        self._conn.add_notice_handler(fn)

    def forget_handlers(self) -> None:
        for fn in self._handlers:
            self._conn.remove_notice_handler(fn)
        self._handlers.clear()

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def _lend(conn: psycopg.Connection[tuple[object, ...]]) -> Iterator[list[str]]:
    """Every SQLAlchemy engine connects to `conn` meanwhile; yields the drivers that did."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    borrowed = _Borrowed(conn)
    drivers: list[str] = []

    def do_connect(dialect: Any, _record: Any, _cargs: Any, _cparams: Any) -> Any:
        driver = str(getattr(dialect, "driver", "?"))
        drivers.append(driver)
        if getattr(dialect, "name", "") != "postgresql" or driver != "psycopg":
            raise _NotGuardable(
                f"env.py connects with the {dialect.name}+{driver} driver; pgwarden runs an "
                "online revision on its own connection through psycopg 3 only "
                "(postgresql+psycopg://, which --database-url gives env.py as sqlalchemy.url)"
            )
        from psycopg.types import TypeInfo

        # psycopg's type look-up wants the real connection, not the wrapper
        dialect._type_info_fetch = lambda _c, name: TypeInfo.fetch(conn, name)
        return borrowed

    event.listen(Engine, "do_connect", do_connect)
    try:
        yield drivers
    finally:
        event.remove(Engine, "do_connect", do_connect)
        borrowed.forget_handlers()


def _heads(conn: psycopg.Connection[tuple[object, ...]], version_table: str) -> tuple[str, ...]:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (version_table,)).fetchone()
    if not (row and row[0]):
        return ()
    parts = [sql.Identifier(p) for p in version_table.split(".")]
    rows = conn.execute(
        sql.SQL("SELECT version_num FROM {}").format(sql.SQL(".").join(parts))
    ).fetchall()
    return tuple(sorted(str(r[0]) for r in rows))


def _failure(rev: OnlineRevision, text: str) -> pge.ExternalRoutineException:
    """A step failure the executor reports (SQLSTATE 38000: external routine exception)."""
    return pge.ExternalRoutineException(f"revision {rev.revision} ({rev.path}): {text}")


def online_runner(
    ini: str | os.PathLike[str],
    sqlalchemy_url: str | None,
    rev: OnlineRevision,
    *,
    version_table: str = "alembic_version",
    script: Any = None,
) -> Runner:
    """The callable that runs `rev` with `alembic upgrade REV` on the executor's connection.

    `script`: the project's ScriptDirectory, already loaded (default: loaded anew).

    Database errors come out as the psycopg error the server raised (a lock or
    statement timeout, a cancel by the watchdog: the executor retries or stops as
    for SQL); anything else as an `ExternalRoutineException` naming the revision.
    """

    def run(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        from alembic.script import ScriptDirectory
        from sqlalchemy.exc import DBAPIError

        from pgwarden.sources.alembic import _config, _ran, upgrade_with

        cfg = _config(ini, None, sqlalchemy_url)
        scripts = script if script is not None else ScriptDirectory.from_config(cfg)
        # what the version table says ran: its heads and all below them (another branch's
        # head may be there too, or one that depends_on this revision's down revision)
        before = _heads(conn, version_table)
        ran = _ran(scripts, ",".join(before) or "base")
        if rev.revision in ran or not set(rev.after) <= ran:
            raise _failure(
                rev,
                f"{version_table} is {', '.join(before) or 'empty'}, but this revision follows "
                f"{', '.join(rev.after) or 'base'}; another run moved the database meanwhile",
            )
        token = RUNNING_ONLINE.set(True)
        try:
            with _lend(conn) as drivers:
                upgrade_with(cfg, scripts, rev.revision)
        except DBAPIError as exc:
            if isinstance(exc.orig, psycopg.Error):
                raise exc.orig from None
            raise _failure(rev, f"{type(exc).__name__}: {exc}") from exc
        except psycopg.Error:
            raise
        except _NotGuardable as exc:
            raise _failure(
                rev,
                f"cannot run in pgwarden's guarded transaction: {exc}; nothing of it was "
                f"applied: run `alembic upgrade {rev.revision}` for this revision alone without "
                "pgwarden, then `pgwarden apply --alembic` for the rest",
            ) from exc
        except Exception as exc:
            text = " ".join(str(exc).split())
            raise _failure(rev, f"failed in Alembic: {type(exc).__name__}: {text}") from exc
        finally:
            RUNNING_ONLINE.reset(token)
        if not drivers:
            raise _failure(
                rev,
                "cannot run in pgwarden's guarded transaction: env.py did not connect "
                "through a SQLAlchemy engine pgwarden could hand its connection to",
            )
        after = _heads(conn, version_table)
        if _ran(scripts, ",".join(after) or "base") != ran | {rev.revision}:
            raise _failure(
                rev,
                f"Alembic left {version_table} at {', '.join(after) or 'nothing'}, not "
                f"{rev.revision}",
            )

    return run
