"""The role check apply, resume, backfill and the Alembic and Django runners make first.

In a protected environment with a role policy, a run goes ahead only when the
session's role (`current_user`, after any `SET ROLE` from the URL's
`options=-c role=...`) is the declared migration role, or a declared
break-glass role given `--break-glass "reason"` (recorded: a `BreakGlass`
event, which the journal also writes to `pgwarden.break_glass`). Anything
else is refused before a statement runs, naming the role connected as and the
one expected. A protected environment without a policy is allowed, and says so
once per run (`NoRolePolicy`). Unprotected environments are not checked.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgwarden.errors import Refused, UsageError
from pgwarden.events import BreakGlass, Event, NoRolePolicy
from pgwarden.settings import RolePolicy, config_table

__all__ = ["RoleCheck", "adopt_journal", "check_role", "session_roles"]


@dataclass(frozen=True, slots=True)
class RoleCheck:
    """The outcome of an allowed run's role check: the events to record with the run."""

    current_user: str
    session_user: str
    events: tuple[Event, ...] = ()
    # a break-glass run: the pgwarden schema it may create goes to this (migration) role
    journal_owner: str | None = None


def session_roles(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[str, str]:
    """(current_user, session_user) of the connection."""
    row = conn.execute(sql.SQL("SELECT current_user, session_user")).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def adopt_journal(conn: psycopg.Connection[tuple[object, ...]], owner: str) -> bool:
    """Give `owner` the `pgwarden` schema and its tables where this session's role owns
    them (a break-glass run created them; the migration role must write them next time).
    False when this role may not (it is neither a superuser nor a member of `owner`) or
    `owner` does not exist."""
    row = conn.execute(
        sql.SQL("SELECT to_regrole({}) IS NOT NULL").format(
            sql.Literal(sql.Identifier(owner).as_string(conn))
        )
    ).fetchone()
    if not (row and row[0]):
        return False
    try:
        with conn.transaction():
            row = conn.execute(
                sql.SQL(
                    "SELECT pg_get_userbyid(nspowner) = current_user FROM pg_namespace "
                    "WHERE nspname = 'pgwarden'"
                )
            ).fetchone()
            if row is None:
                return True
            if row[0]:
                conn.execute(
                    sql.SQL("ALTER SCHEMA pgwarden OWNER TO {}").format(sql.Identifier(owner))
                )
            tables = conn.execute(
                sql.SQL(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = 'pgwarden' "
                    "AND c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) = current_user"
                )
            ).fetchall()
            for (name,) in tables:
                conn.execute(
                    sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                        sql.Identifier("pgwarden", str(name)), sql.Identifier(owner)
                    )
                )
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def _who() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = str(os.getuid())
    return user, socket.gethostname()


def check_role(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    environment: str,
    protected: bool,
    policy: RolePolicy | None,
    break_glass: str | None,
    command: str = "apply",
    config: str | None = None,
) -> RoleCheck:
    """Whether this session's role may run `command` on `environment`; `Refused` otherwise.

    `break_glass` is the reason given with `--break-glass` (None: not given); `config` is
    the config file in use (`Settings.source`), named in hints.
    """
    current, session = session_roles(conn)
    reason = None if break_glass is None else break_glass.strip()
    if break_glass is not None and not reason:
        raise UsageError(
            "--break-glass needs a reason", hint='e.g. --break-glass "INC-123: restore orders"'
        )
    if not protected:
        if reason:
            # never silently ignored: the user believes the run is recorded as break-glass
            raise UsageError(
                f"--break-glass given, but environment {environment!r} is not protected: "
                "no role check to break and nothing would be recorded",
                hint="run without --break-glass, or check --env and the database URL",
            )
        return RoleCheck(current, session)
    if policy is None:
        return RoleCheck(
            current,
            session,
            (NoRolePolicy(environment=environment, current_user=current, config=config),),
        )
    expected = policy.migration
    as_whom = f"role {current}" + (f" (session user {session})" if session != current else "")
    if current == expected:
        if reason:
            raise UsageError(
                f"--break-glass given, but {current} is the migration role of {environment}",
                hint="run without --break-glass; it is for the declared break_glass roles",
            )
        return RoleCheck(current, session)
    if current in policy.break_glass:
        if not reason:
            raise Refused(
                f"refusing to {command} on protected environment {environment!r}: connected as "
                f"{as_whom}, a break-glass role, but the migration role is "
                f"{expected or '(none declared)'}",
                hint=f"connect as {expected}, or if this is an emergency pass "
                '--break-glass "<reason>" (who, when and why are recorded)'
                if expected
                else '--break-glass "<reason>" (who, when and why are recorded)',
            )
        user, host = _who()
        event = BreakGlass(
            environment=environment,
            reason=reason,
            session_user=session,
            current_user=current,
            os_user=user,
            host=host,
            expected=expected,
        )
        return RoleCheck(current, session, (event,), expected)
    if expected is None:
        raise Refused(
            f"refusing to {command} on protected environment {environment!r}: its role policy "
            f"declares no migration role, and {as_whom} is not a break-glass role",
            hint="set migration = ROLE under "
            + config_table(f"environments.{environment}.roles", config),
        )
    extra = f"; {current} is not a declared break-glass role" if reason else ""
    raise Refused(
        f"refusing to {command} on protected environment {environment!r}: connected as "
        f"{as_whom}, but only the migration role {expected} may change it{extra}",
        hint=f"connect as {expected} (user={expected} in the URL, or options='-c role={expected}' "
        "for a member of it); nothing was changed",
    )
