"""The environment check of a command that writes outside a plan (backfill, upgrade run)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from pgwarden.cli.interaction import confirm_prompt

if TYPE_CHECKING:
    import psycopg

    from pgwarden.settings import Environment, Settings

__all__ = ["adopt", "check_environment"]


def check_environment(
    open_database: Callable[[], AbstractContextManager[psycopg.Connection[tuple[object, ...]]]],
    env: str | None,
    settings: Settings,
    *,
    yes: bool,
    lost_stamp_ok: bool = False,
    unstamped_data_refused: bool = False,
    restamp: bool = False,
) -> Environment:
    """The environment the database is, read on a connection of its own: its identity and
    stamp must match `env`, a protected one is confirmed by typing the database name (unless
    `yes`); raises `Refused` otherwise. `lost_stamp_ok`: see `read_stamp`.

    `unstamped_data_refused`: a database holding data (or pgwarden history) but no stamp
    is refused as `pgwarden apply` refuses it, unless `restamp` (the caller then stamps
    it, see `adopt`); `restamp` also lets `env` replace another environment's stamp."""
    from pgwarden.apply.identity import check_target, read_identity, read_stamp, user_tables
    from pgwarden.apply.journal import has_history

    with open_database() as conn:
        ident, stamp = read_identity(conn), read_stamp(conn, lost_ok=lost_stamp_ok)
        look = unstamped_data_refused and stamp is None and not restamp
        tables = user_tables(conn) if look else 0
        history = has_history(conn) if look else False
    target, _ = check_target(
        env_name=env,
        environments=settings.environments,
        ident=ident,
        stamp=stamp,
        destructive=[],
        accept_data_loss=None,
        yes=yes,
        confirm=confirm_prompt(),
        restamp=restamp,
        tables=tables,
        history=history,
        config=settings.source,
    )
    return target


def adopt(
    open_database: Callable[[], AbstractContextManager[psycopg.Connection[tuple[object, ...]]]],
    env: str,
    settings: Settings,
) -> None:
    """Stamp the database as `env` (`--restamp` once `check_environment` accepted it),
    recording the environment's protection as the configuration decides it, as `pgwarden
    apply --restamp` records it."""
    from pgwarden.apply.identity import stamp_database
    from pgwarden.apply.journal import RunInfo
    from pgwarden.settings import is_protected

    user, host = RunInfo.who()
    with open_database() as conn:
        stamp_database(
            conn, env, protected=is_protected(env, settings.environments), by=f"{user}@{host}"
        )
