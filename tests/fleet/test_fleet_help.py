"""`pgwarden fleet ... --help` shows only the options the subcommand honours; an apply option
a fleet refuses (--range) is hidden but still refused with its reason."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from pgwarden.cli import cli

SUBCOMMANDS = ["apply", "resume", "status", "cancel"]


def _options_in_help(sub: str) -> set[str]:
    result = CliRunner().invoke(cli, ["fleet", sub, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return set(re.findall(r"^\s+(--[a-z-]+)", result.output, re.MULTILINE))


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_fleet_help_hides_refused_and_meaningless_options(sub: str) -> None:
    shown = _options_in_help(sub)
    assert "--fleet" in shown
    assert not shown & {"--range", "--unapplied"}, shown
    if sub == "apply":
        assert "--alembic" in shown


def test_fleet_apply_range_is_still_refused_with_its_reason() -> None:
    result = CliRunner().invoke(
        cli,
        ["fleet", "apply", "--alembic", "--range", "0001:head", "--fleet", "x", "--env", "s"],
        terminal_width=200,
    )
    assert result.exit_code == 2, result.output
    assert "--range does not apply to a fleet" in result.output
    assert "drop --range" in result.output


def test_fleet_apply_unapplied_alone_needs_alembic() -> None:
    result = CliRunner().invoke(
        cli, ["fleet", "apply", "a.sql", "--unapplied", "--fleet", "x", "--env", "s"]
    )
    assert result.exit_code == 2, result.output
    assert "--unapplied needs --alembic" in result.output
