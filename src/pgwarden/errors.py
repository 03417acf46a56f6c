"""Every error pgwarden raises on purpose derives from `PgwardenError`.

```
PgwardenError                      root; .exit_code, .hint
├── UsageError                     bad arguments or configuration            (exit 2)
│   └── ConfigError                unreadable or invalid pgwarden.toml/pyproject
├── InputError                     a source that cannot be read              (exit 2)
│   └── SqlParseError              the server grammar rejected the SQL (file:line:col)
├── EnvironmentProblem             the machine lacks something               (exit 2)
│   └── PostgresNotFound           no PostgreSQL server binaries
├── ClusterError                   a throwaway cluster failed to start/stop  (exit 2)
├── DatabaseError                  a target database misbehaved             (exit 2)
│   └── ConnectionFailed           bad DSN or unreachable server
├── Refused                        a guard refused to proceed               (exit 1)
└── ApplyFailed                    the database misbehaved during apply     (exit 3)
```
Messages say what happened; `hint` says what to do next.
"""

from __future__ import annotations

from pgwarden.location import SourceLocation

__all__ = [
    "ApplyFailed",
    "ClusterError",
    "ConfigError",
    "ConnectionFailed",
    "DatabaseError",
    "EnvironmentProblem",
    "InputError",
    "PgwardenError",
    "PostgresNotFound",
    "Refused",
    "SqlParseError",
    "UsageError",
]


class PgwardenError(Exception):
    """Root of pgwarden's errors: a message, an optional hint, an exit code."""

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  hint: {self.hint}"


class UsageError(PgwardenError):
    """Bad command-line arguments or options."""


class ConfigError(UsageError):
    """The configuration file is unreadable or invalid."""


class InputError(PgwardenError):
    """A source file or input that cannot be used."""

    def __init__(self, message: str, *, hint: str | None = None, path: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class SqlParseError(InputError):
    """The server grammar rejected the SQL; carries file:line:column."""

    def __init__(
        self, server_message: str, location: SourceLocation, *, hint: str | None = None
    ) -> None:
        super().__init__(
            f"{location}: syntax error: {server_message}",
            hint=hint
            or "fix the SQL at that position; pgwarden parses with PostgreSQL's own grammar",
            path=location.path,
        )
        self.server_message = server_message
        self.location = location


class UnreadableSql(SqlParseError):
    """A file the grammar may accept but pgwarden cannot read as the SQL it sends (a psql
    meta-command that changes what runs or where); reported like a syntax error."""

    def __init__(self, what: str, location: SourceLocation, *, hint: str) -> None:
        InputError.__init__(self, f"{location}: {what}", hint=hint, path=location.path)
        self.server_message = what
        self.location = location


class EnvironmentProblem(PgwardenError):
    """The machine lacks something pgwarden needs."""


class PostgresNotFound(EnvironmentProblem):
    """No PostgreSQL server binaries were found."""


class ClusterError(PgwardenError):
    """A throwaway cluster could not be started or stopped."""


class DatabaseError(PgwardenError):
    """A target database failed in a way the user must look at."""

    def __init__(
        self, message: str, *, hint: str | None = None, sqlstate: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.sqlstate = sqlstate


class ConnectionFailed(DatabaseError):
    """The DSN is malformed or the server cannot be reached."""


class Refused(PgwardenError):
    """A guard refused to proceed."""

    exit_code = 1


class ApplyFailed(PgwardenError):
    """The database misbehaved during apply; the journal tells the state."""

    exit_code = 3
