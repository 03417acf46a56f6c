"""Click options several commands declare alike (apply, backfill, fleet, lint, upgrade run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = [
    "accept_data_loss_option",
    "alembic_option",
    "config_option",
    "log_format_option",
    "stacked",
    "threshold_option",
    "yes_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def stacked(*options: Callable[[Any], Any]) -> Callable[[F], F]:
    """One decorator applying `options` as if stacked in this order (first listed, first in
    --help)."""

    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


config_option = click.option(
    "--config", default=None, metavar="FILE", help="pgwarden.toml or pyproject.toml."
)
yes_option = click.option("--yes", is_flag=True, help="Skip the typed confirmation (CI).")
accept_data_loss_option = click.option(
    "--accept-data-loss",
    default=None,
    metavar="REASON",
    help="Allow destructive steps on a protected env without a verified backup.",
)
log_format_option = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Progress on stderr as text, or one JSON event per line.",
)
threshold_option = click.option(
    "--threshold",
    type=float,
    default=1.5,
    show_default=True,
    help="Latency ratio that makes a regression.",
)


def alembic_option(help: str) -> Callable[[F], F]:
    """`--alembic [ALEMBIC_INI]` into `alembic_ini` (alembic.ini when given no value), with
    the command's own `help`."""
    option: Callable[[F], F] = click.option(
        "--alembic",
        "alembic_ini",
        is_flag=False,
        flag_value="alembic.ini",
        default=None,
        metavar="[ALEMBIC_INI]",
        help=help,
    )
    return option
