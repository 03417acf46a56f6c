"""Every option of apply and its siblings (backfill, status, cancel, resume) has help text."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from pgwarden.cli import cli

COMMANDS = ["apply", "backfill", "status", "cancel", "resume"]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help(name: str) -> None:
    ctx = click.Context(cli)
    command = cli.get_command(ctx, name)
    assert command is not None
    bare = [
        p.opts[0]
        for p in command.params
        if isinstance(p, click.Option) and not (p.help or "").strip()
    ]
    assert bare == [], f"pgwarden {name}: options without help: {bare}"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_prints(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Options:" in result.output
