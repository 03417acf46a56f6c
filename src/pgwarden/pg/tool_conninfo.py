"""Connection parameters for client programs (pg_dump, pg_restore, psql) without secrets in argv.

A command line is readable by every user of the machine (`ps`, /proc/PID/cmdline).
The DSN is handed to the program as a conninfo without its password, and the
password travels in the child's environment (PGPASSWORD; /proc/PID/environ is
readable only by its owner and root). Whatever the program prints is passed
through `redact` before pgwarden shows it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import conninfo

from pgwarden.errors import ConnectionFailed, UsageError

__all__ = ["ToolConnection", "tool_connection"]

_REDACTED = "********"


@dataclass(frozen=True, slots=True)
class ToolConnection:
    """A conninfo safe to put in argv, and the environment that carries the rest."""

    conninfo: str
    env: dict[str, str]
    secrets: tuple[str, ...] = ()

    def redact(self, text: str) -> str:
        """`text` with every secret of the DSN masked."""
        for secret in self.secrets:
            text = text.replace(secret, _REDACTED)
        return text


def tool_connection(dsn: str, base_env: Mapping[str, str] | None = None) -> ToolConnection:
    """Split `dsn` into an argv-safe conninfo and an environment holding its password."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise ConnectionFailed(
            "invalid database URL (values not shown)",
            hint="use postgresql://user:password@host:5432/dbname or 'host=... dbname=...'",
        ) from None
    if params.get("sslpassword"):
        raise UsageError(
            "the database URL carries sslpassword, which a client program (pg_dump, "
            "pg_restore) could only receive on its command line, visible to every user",
            hint="put sslpassword in a pg_service.conf entry and use service=NAME in the URL, "
            "or use a client key without a passphrase",
        )
    env = dict(os.environ if base_env is None else base_env)
    password = params.pop("password", None)
    secrets: tuple[str, ...] = ()
    if password is not None and str(password) != "":
        env["PGPASSWORD"] = str(password)
        secrets = (str(password),)
    plain = conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
    return ToolConnection(plain, env, secrets)
