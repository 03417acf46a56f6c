"""`pgwarden upgrade …`: major-version upgrades (check, rehearse, run, cancel, rollback, status).

The group lives here; each part of it is a module of its own that defines
`SUBCOMMANDS` (a tuple of click commands), listed once in `_PARTS`.
"""

from __future__ import annotations

import importlib

import click

# One line per part; each module owns its subcommands.
_PARTS: tuple[str, ...] = ("upgrade_check", "upgrade_run")


@click.group("upgrade")
def upgrade() -> None:
    """Major-version upgrades: check, rehearse, then run with a bounded switchover."""


for _part in _PARTS:
    for _command in importlib.import_module(f"pgwarden.cli.{_part}").SUBCOMMANDS:
        upgrade.add_command(_command)

COMMANDS = (upgrade,)
