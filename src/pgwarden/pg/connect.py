"""Connecting to a user's database, with one clear error per way it can fail."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import psycopg
from psycopg import conninfo

from pgwarden.errors import ConnectionFailed, UsageError

__all__ = ["connect", "connect_hint", "describe_dsn", "host_port", "libpq_reason", "resolve_dsn"]

_ENV_VARS = ("PGWARDEN_DATABASE_URL", "DATABASE_URL")

# A dead peer (a black-holed network, a crashed host) is noticed within about
# idle + interval * count seconds while waiting for a reply, instead of never.
KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",  # ms: unacknowledged data counts as a dead peer too
}
_QUOTED = re.compile(r'"([^"]*)"')


def _without_values(message: str) -> str:
    """libpq's parse error without the quoted pieces of the DSN (one may be the password)."""
    return _QUOTED.sub(lambda m: m.group(0) if len(m.group(1)) < 2 else '"…"', message)


def resolve_dsn(explicit: str | None, *, required: bool = True) -> str | None:
    """`explicit`, else $PGWARDEN_DATABASE_URL, else $DATABASE_URL."""
    if explicit:
        return explicit
    for var in _ENV_VARS:
        value = os.environ.get(var)
        if value:
            return value
    if required:
        raise UsageError(
            "no database given",
            hint="pass --database-url postgresql://user@host/db or set PGWARDEN_DATABASE_URL",
        )
    return None


def host_port(params: Mapping[str, object]) -> str:
    """host:port of a parsed DSN (`conninfo_to_dict`), no credentials: its host, else its
    hostaddr, else localhost; its port, else 5432."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}"


def describe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    return f"{params.get('user', '')}@{host_port(params)}/{params.get('dbname', '')}".lstrip("@")


_ATTEMPT = re.compile(
    r'^(?:connection failed: )?(?:connection to server (?:at "[^"]*"(?:, port \d+)?|on socket'
    r' "[^"]*") failed: )?(?:FATAL: +)?'
)


def libpq_reason(message: str) -> str:
    """The cause in a libpq start-up error, without the server it names (the caller does)
    and without libpq's "Is the server running" advice (the hint gives it)."""
    parts = []
    for line in message.strip().splitlines():
        line = _ATTEMPT.sub("", line.strip())
        if line and not line.startswith("Is the server running"):
            parts.append(line)
    return "; ".join(parts)


def connect(
    dsn: str,
    *,
    autocommit: bool = True,
    connect_timeout_s: int = 5,
    application_name: str = "pgwarden",
) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection or raise `ConnectionFailed` naming the cause and the fix."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ConnectionFailed(
            f"invalid database URL: {_without_values(str(exc).strip())} (values not shown)",
            hint="use postgresql://user:password@host:5432/dbname or 'host=... dbname=...'",
        ) from None
    params.setdefault("connect_timeout", str(connect_timeout_s))
    params.setdefault("application_name", application_name)
    for key, value in KEEPALIVES.items():
        params.setdefault(key, value)
    try:
        return psycopg.connect(**params, autocommit=autocommit)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        text = libpq_reason(str(exc)) or type(exc).__name__
        raise ConnectionFailed(
            f"cannot connect to {describe_dsn(dsn)}: {text}",
            hint=connect_hint(exc),
            sqlstate=exc.sqlstate,
        ) from None


def connect_hint(exc: psycopg.OperationalError, where: str = "the URL") -> str:
    """What to fix for a connection attempt that failed with `exc`; `where`: what holds
    the connection settings."""
    sqlstate = exc.sqlstate
    # libpq reports start-up failures without a SQLSTATE: the hint reads the text,
    # nothing else does.
    low = str(exc).lower()
    if sqlstate in ("28P01", "28000") or "authentication failed" in low:
        return f"check the user and password in {where}"
    if sqlstate == "3D000" or ("database" in low and "does not exist" in low):
        return f"check the database name in {where}, or create the database first"
    if "role" in low and "does not exist" in low:
        return f"check the user name in {where}"
    if re.search(r"invalid \w+ value", low):
        # libpq rejects an option before connecting: `invalid sslmode value: "bogus"`
        return f"check that option's value in {where} (libpq's connection parameters)"
    return "check that the server is running and reachable from here (host, port, firewall)"
