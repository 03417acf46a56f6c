"""Alembic integration: run `alembic upgrade` through pgwarden's guarded executor.

In `env.py`, replace the body (both the offline and the online branch) with::

    from alembic import context
    from pgwarden.contrib.alembic import configure

    configure(context, url=config.get_main_option("sqlalchemy.url"), environment="production")

Offline (`alembic upgrade head --sql`) this is Alembic's stock offline run.
Online, for `alembic upgrade`, it:

1. reads the database's current revision from `alembic_version` (read-only);
2. renders the pending revisions to SQL in-process (Alembic's offline mode,
   exactly what `--sql` prints), including Alembic's own `UPDATE alembic_version`
   inside each revision's transaction;
3. applies that plan with `pgwarden.apply.api.apply_plan`: identity guard
   (`environment`), lock_timeout per transaction with retries, watchdog,
   journal, Ctrl-C cancel.

Because the version-table update runs in the same transaction as the revision's
DDL (Alembic's transactional DDL on PostgreSQL), a failed or cancelled revision
rolls back together with its version bump: `alembic_version` always names the
last revision whose DDL committed. Statements Alembic runs outside a transaction
(`autocommit_block()`, e.g. CREATE INDEX CONCURRENTLY) commit on their own; the
version update of that revision follows them in the revision's last transaction.

Other commands (downgrade, stamp, current, check, ...) run Alembic's normal
online path unchanged. Revisions that read from the database at migration time
(`op.get_bind().execute(...)` using the result, `sa.inspect(op.get_bind())`)
cannot be rendered offline: each becomes one step of its own transaction that
the executor runs online through Alembic (`pgwarden.sources.alembic_online`), in
order between the others; while it runs, this hook takes Alembic's plain online
path on the connection the executor lends it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgwarden.errors import PgwardenError, UsageError

__all__ = ["GuardedUpgradeFailed", "configure", "libpq_dsn"]


class GuardedUpgradeFailed(PgwardenError):
    """The guarded upgrade stopped (failed or cancelled); alembic_version matches the schema."""


def libpq_dsn(url: str) -> str:
    """A libpq connection string from a SQLAlchemy URL (any postgresql driver)."""
    from psycopg.conninfo import make_conninfo
    from sqlalchemy.engine import make_url

    u = make_url(url)
    parts: dict[str, Any] = {
        "host": u.host,
        "port": u.port,
        "dbname": u.database,
        "user": u.username,
        "password": u.password,
    }
    for k, v in u.query.items():
        parts[k] = v if isinstance(v, str) else v[-1]
    return make_conninfo("", **{k: v for k, v in parts.items() if v is not None})


def _environment(context: Any) -> Any:
    """The EnvironmentContext behind `alembic.context` (a module proxy) or given directly."""
    from alembic.runtime.environment import EnvironmentContext

    if isinstance(context, EnvironmentContext):
        return context
    real = getattr(context, "_proxy", None)
    if not isinstance(real, EnvironmentContext):
        raise UsageError(
            "configure() must be called from env.py while Alembic runs it",
            hint="call it as configure(context, ...) with `from alembic import context`",
        )
    return real


def _offline(context: Any, url: str | None, opts: dict[str, Any]) -> None:
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **opts)
    with context.begin_transaction():
        context.run_migrations()


def _online(context: Any, url: str | None, opts: dict[str, Any]) -> None:
    from sqlalchemy import create_engine, pool

    if url is None:
        raise UsageError("no database URL", hint="pass url= to configure() or set sqlalchemy.url")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **opts)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


def configure(
    context: Any,
    *,
    url: str | None = None,
    environment: str | None = None,
    settings: Any = None,
    limits: Any = None,
    rewrite: bool = False,
    yes: bool = False,
    accept_data_loss: str | None = None,
    journal_file: str | Path | None = None,
    observer: Callable[[Any], None] | None = None,
    cancel: threading.Event | None = None,
    restamp: bool = False,
    break_glass: str | None = None,
    **alembic_opts: Any,
) -> Any:
    """Configure and run the migrations of `env.py`; `alembic upgrade` goes through pgwarden.

    `url` is the SQLAlchemy URL (default: `sqlalchemy.url` of alembic.ini).
    `environment`, `settings`, `limits`, `rewrite`, `yes`, `accept_data_loss`,
    `journal_file`, `observer`, `cancel`, `restamp` and `break_glass` (docs/audit.md)
    are those of `pgwarden.apply.api.apply_plan` (`settings` default: pgwarden.toml /
    pyproject.toml of the working directory). Every other keyword goes to
    Alembic's `context.configure` (e.g. `target_metadata`,
    `transaction_per_migration`, `version_table`).

    Returns pgwarden's `ApplyResult` for a guarded upgrade, else None. Raises
    `GuardedUpgradeFailed` when the upgrade failed or was cancelled, so the
    `alembic` command exits non-zero.
    """
    from pgwarden.sources.alembic_online import RUNNING_ONLINE

    context = _environment(context)
    url = url or context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        _offline(context, url, alembic_opts)
        return None
    fn = context.context_opts.get("fn")
    if getattr(fn, "__name__", "") != "upgrade" or RUNNING_ONLINE.get():
        # RUNNING_ONLINE: pgwarden apply --alembic runs one revision online, guarded
        _online(context, url, alembic_opts)
        return None
    if url is None:
        raise UsageError("no database URL", hint="pass url= to configure() or set sqlalchemy.url")
    return _guarded_upgrade(
        context,
        url,
        alembic_opts,
        environment=environment,
        settings=settings,
        limits=limits,
        rewrite=rewrite,
        yes=yes,
        accept_data_loss=accept_data_loss,
        journal_file=journal_file,
        observer=observer,
        cancel=cancel,
        restamp=restamp,
        break_glass=break_glass,
    )


def _guarded_upgrade(context: Any, url: str, opts: dict[str, Any], **apply_kw: Any) -> Any:
    from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
    from pgwarden.settings import load_settings
    from pgwarden.sources.alembic import (
        _assemble,
        _Capture,
        _sqlalchemy_url,
        build_alembic_plan,
        current_revisions,
    )
    from pgwarden.sources.alembic_online import online_runner

    dsn = libpq_dsn(url)
    version_table = str(opts.get("version_table", "alembic_version"))
    if opts.get("version_table_schema"):
        version_table = f"{opts['version_table_schema']}.{version_table}"
    # several heads: branches the database ran, and (as `alembic upgrade head` runs it)
    # their merge to come
    heads = current_revisions(dsn, version_table)
    # Render the pending revisions with Alembic's offline mode, in this process.
    cap = _Capture(context.script)
    online = _render_with_online(context, url, opts, cap, ",".join(heads) or "base")
    sources = _assemble(cap)
    if not sources:
        return None
    plan = build_alembic_plan(sources)
    ini = str(context.config.config_file_name or "")
    libpq_url = _sqlalchemy_url(dsn)
    settings = apply_kw.pop("settings") or load_settings(None)
    cancel = apply_kw.pop("cancel") or threading.Event()
    result = apply_plan(
        plan,
        database_url=dsn,
        policy=GuardPolicy(
            env=apply_kw["environment"],
            yes=apply_kw["yes"],
            accept_data_loss=apply_kw["accept_data_loss"],
            restamp=apply_kw["restamp"],
            break_glass=apply_kw["break_glass"],
        ),
        options=RunOptions(
            runners={
                o.sql: online_runner(ini, libpq_url, o, version_table=version_table) for o in online
            },
            rewrite=apply_kw["rewrite"],
            limits=apply_kw["limits"] or Limits(),
            journal_file=apply_kw["journal_file"],
        ),
        settings=settings,
        observer=apply_kw["observer"],
        cancel=cancel,
    )
    if online:
        # each online revision ran a nested Alembic command, whose exit removed the
        # `alembic.context` proxy of this one: put it back for the rest of env.py
        context._install_proxy()
    if not result.ok:
        o = result.outcome
        raise GuardedUpgradeFailed(
            f"pgwarden: upgrade {result.state}: {o.message if o and o.message else result.state}",
            hint=(o.hint if o and o.hint else None)
            or "alembic_version names the last revision that committed; fix and rerun",
        )
    return result


def _render_with_online(
    context: Any, url: str, opts: dict[str, Any], cap: Any, start: str
) -> list[Any]:
    """Render the pending revisions after `start` (the version table's heads, "a,b", or
    "base") offline into `cap`; those that cannot be rendered become online steps
    (pgwarden.sources.alembic_online), returned in order."""
    from pgwarden.sources import alembic_batch
    from pgwarden.sources.alembic import OfflineRenderError, _down, _ran, _revs, _start_of
    from pgwarden.sources.alembic_online import OnlineRevision, placeholder_sql

    online: list[OnlineRevision] = []
    context.context_opts["as_sql"] = True
    try:
        while True:
            context.context_opts["starting_rev"] = None if start == "base" else _revs(start)
            mark = len(cap.events)
            try:
                with alembic_batch.recording():
                    _offline(context, url, {**opts, "output_buffer": cap})
                return online
            except Exception as exc:
                failed = cap.drop_failed(mark)
                if failed is None:
                    raise
                if not context.config.config_file_name:
                    raise OfflineRenderError(
                        failed.revision,
                        failed.path,
                        exc,
                        hint="nothing was applied; running it online needs the Config's "
                        "alembic.ini (config_file_name); `pgwarden apply --alembic` runs it",
                    ) from exc
                statement = placeholder_sql(failed.revision, failed.path)
                cap.add_online(failed, statement)
                after = _down(context.script, failed.revision)
                online.append(OnlineRevision(failed.revision, failed.path, after, statement))
                done = {r.revision for r in cap.revisions} | {o.revision for o in online}
                start = _start_of(context.script, _ran(context.script, start) | done)
    finally:
        context.context_opts["as_sql"] = False
