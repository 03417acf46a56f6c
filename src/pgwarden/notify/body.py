"""Request bodies: plain JSON, or Slack-compatible `{"text", "blocks"}`.

Both carry the command, the environment, the database name and server (never
a user or password), the machine pgwarden runs on, and the event behind the
notification with its SQL cut short (a statement may hold a literal secret).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from pgwarden.events import Event
from pgwarden.notify.events import Notification

__all__ = ["FORMAT_VERSION", "RunContext", "encode", "json_body", "slack_body"]

FORMAT_VERSION = "pgwarden-notify/1"
_SQL_CHARS = 200
_LIST_ITEMS = 10  # sessions listed per event (blockers, blocked)
_ICONS = {
    "started": ":arrow_forward:",
    "progress": ":hourglass_flowing_sand:",
    "stuck": ":warning:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
    "done": ":white_check_mark:",
    "test": ":bell:",  # `pgwarden notify test`
}


@dataclass(frozen=True, slots=True)
class RunContext:
    """Where the command runs: what goes in every body besides the event."""

    command: str
    environment: str | None
    database: str | None  # the database name only
    server: str | None  # host:port, no credentials
    host: str  # the machine running pgwarden

    @classmethod
    def of(cls, command: str, env: str | None, database_url: str | None) -> RunContext:
        """The context of `command` against `database_url`, credentials left out."""
        import psycopg  # here: `pgwarden --help` imports the CLI modules, not psycopg
        from psycopg import conninfo

        from pgwarden.pg.connect import host_port

        database = server = None
        if database_url:
            try:
                params = conninfo.conninfo_to_dict(database_url)
            except psycopg.ProgrammingError:
                params = {}
            database = str(params["dbname"]) if params.get("dbname") else None
            server = host_port(params)
        return cls(command, env, database, server, socket.gethostname())


def _short(value: object) -> object:
    if isinstance(value, str) and len(value) > _SQL_CHARS:
        return value[: _SQL_CHARS - 1] + "…"
    if isinstance(value, list):
        return [_short(v) for v in value]
    return value


def _event_dict(event: Event | None) -> dict[str, Any] | None:
    """`event.to_dict()` with SQL shortened, a run's statements only counted and lists of
    sessions (blockers) cut to their first `_LIST_ITEMS` (`<key>_total` says how many)."""
    if event is None:
        return None
    data = event.to_dict()
    if "statements" in data:
        data["statements"] = len(data["statements"])
    for key in ("sql", "query"):
        if key in data:
            data[key] = _short(data[key])
    for key, value in list(data.items()):
        if isinstance(value, list) and value and isinstance(value[0], dict):
            if len(value) > _LIST_ITEMS:
                data[f"{key}_total"] = len(value)
            data[key] = [{k: _short(v) for k, v in item.items()} for item in value[:_LIST_ITEMS]]
    return data


def json_body(n: Notification, ctx: RunContext, run: dict[str, str | None]) -> dict[str, Any]:
    """The plain JSON body (format documented in docs/notify.md)."""
    return {
        "format": FORMAT_VERSION,
        "notification": n.kind,
        "summary": n.summary,
        "command": ctx.command,
        "environment": run.get("environment") or ctx.environment,
        "database": run.get("database") or ctx.database,
        "server": ctx.server,
        "host": ctx.host,
        "at": datetime.fromtimestamp(n.at, UTC).isoformat(),
        **n.details,
        "event": _event_dict(n.event),
    }


def _mrkdwn(text: str) -> str:
    """Slack's three control characters escaped (its mrkdwn reads them as markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(n: Notification, ctx: RunContext, run: dict[str, str | None]) -> dict[str, Any]:
    """A Slack incoming-webhook body: `text` (notifications, fallbacks) and `blocks`."""
    env = run.get("environment") or ctx.environment
    database = run.get("database") or ctx.database
    where = " ".join(
        part
        for part in (
            f"on {env}" if env else "",
            f"({database} at {ctx.server})" if database and ctx.server else "",
        )
        if part
    )
    title = f"pgwarden {ctx.command} {n.kind}" + (f" {where}" if where else "")
    context = [f"host {ctx.host}"]
    if n.details.get("run_id"):
        context.append(f"run {n.details['run_id']}")
    context.append(datetime.fromtimestamp(n.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    return {
        "text": _mrkdwn(f"{title}: {n.summary}"),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{_ICONS[n.kind]} *{_mrkdwn(title)}*\n{_mrkdwn(n.summary)}",
                },
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _mrkdwn(" · ".join(context))}],
            },
        ],
    }


def encode(fmt: str, n: Notification, ctx: RunContext, run: dict[str, str | None]) -> bytes:
    """The request body of `n` in `fmt` (json or slack)."""
    body = slack_body(n, ctx, run) if fmt == "slack" else json_body(n, ctx, run)
    return orjson.dumps(body, default=str)
