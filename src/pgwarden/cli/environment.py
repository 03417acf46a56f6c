"""The environment check of a command that writes outside a plan (backfill, upgrade run)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from pgwarden.cli.interaction import confirm_prompt

if TYPE_CHECKING:
    import psycopg

    from pgwarden.settings import Environment, Settings

__all__ = ["check_environment"]


def check_environment(
    open_database: Callable[[], AbstractContextManager[psycopg.Connection[tuple[object, ...]]]],
    env: str | None,
    settings: Settings,
    *,
    yes: bool,
    lost_stamp_ok: bool = False,
) -> Environment:
    """The environment the database is, read on a connection of its own: its identity and
    stamp must match `env`, a protected one is confirmed by typing the database name (unless
    `yes`); raises `Refused` otherwise. `lost_stamp_ok`: see `read_stamp`."""
    from pgwarden.apply.identity import check_target, read_identity, read_stamp

    with open_database() as conn:
        ident, stamp = read_identity(conn), read_stamp(conn, lost_ok=lost_stamp_ok)
    target, _ = check_target(
        env_name=env,
        environments=settings.environments,
        ident=ident,
        stamp=stamp,
        destructive=[],
        accept_data_loss=None,
        yes=yes,
        confirm=confirm_prompt(),
        config=settings.source,
    )
    return target
