"""CLI: `pgwarden notify test`: one test notification to every configured webhook."""

from __future__ import annotations

import sys
import time

import click

from pgwarden.cli import EXIT_FINDINGS, handle_errors, out, styled


@click.group()
def notify() -> None:
    """Webhook notifications of long commands (docs/notify.md)."""


@notify.command("test")
@click.option("--config", default=None, metavar="FILE", help="pgwarden.toml or pyproject.toml.")
@handle_errors
def test(config: str | None) -> None:
    """POST a `test` notification to each webhook once, now; exit 1 if one did not take it."""
    from pgwarden.errors import UsageError
    from pgwarden.notify.body import RunContext, encode
    from pgwarden.notify.config import load_notify_config
    from pgwarden.notify.events import Notification
    from pgwarden.notify.sender import post_once
    from pgwarden.settings import config_table, load_settings

    settings = load_settings(config)
    cfg = load_notify_config(settings)
    if not cfg.webhooks:
        raise UsageError(
            "no webhook configured",
            hint=f"add {config_table('notify.webhooks', settings.source, array=True)} "
            'with url_env = "NAME" (docs/notify.md)',
        )
    context = RunContext.of("notify", None, None)
    failed = 0
    for hook in cfg.webhooks:
        if hook.url is None:
            failed += 1
            out.print(
                styled("[red]not sent[/] {}: its environment variable is not set", hook.label)
            )
            continue
        note = Notification(
            "test", f"test notification from pgwarden on {context.host} to {hook.label}"
        )
        t0 = time.monotonic()
        failure = post_once(hook, encode(hook.format, note, context, {}), hook.timeout_s)
        took = time.monotonic() - t0
        if hook.literal:
            out.print(
                styled(
                    "[yellow]warning:[/] {}: the URL is written in the configuration file; "
                    'move it to an environment variable and use url_env = "NAME"',
                    hook.label,
                )
            )
        if failure is None:
            out.print(
                styled(
                    "[green]delivered[/] {} ({} format, {} s)",
                    hook.label,
                    hook.format,
                    f"{took:.2f}",
                )
            )
        else:
            failed += 1
            out.print(styled("[red]failed[/] {}: {}", hook.label, failure[0]))
    if failed:
        sys.exit(EXIT_FINDINGS)


COMMANDS = (notify,)
