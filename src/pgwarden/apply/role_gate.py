"""The role check of commands that run outside `apply_plan` (backfill): refuse, or record."""

from __future__ import annotations

from pgwarden.access.enforce import adopt_journal, check_role
from pgwarden.apply.journal import Journal
from pgwarden.events import BreakGlass, Observer
from pgwarden.pg.connect import connect
from pgwarden.settings import Environment, Settings

__all__ = ["gate_command"]


def gate_command(
    dsn: str,
    environment: Environment,
    settings: Settings,
    *,
    break_glass: str | None,
    command: str,
    observer: Observer | None = None,
) -> None:
    """`Refused` unless this session's role may run `command` on `environment`
    (pgwarden.access.enforce); a break-glass run is recorded in `pgwarden.break_glass`."""
    declared = settings.environments.get(environment.name)
    with connect(dsn, application_name=f"pgwarden-{command}") as conn:
        check = check_role(
            conn,
            environment=environment.name,
            protected=environment.protected,
            policy=None if declared is None else declared.roles,
            break_glass=break_glass,
            command=command,
            config=settings.source,
        )
        for event in check.events:
            if isinstance(event, BreakGlass):
                Journal.ensure_schema(conn)
                if check.journal_owner is not None:
                    adopt_journal(conn, check.journal_owner)
                Journal.record_break_glass(conn, None, event, command)
            if observer is not None:
                observer(event)
