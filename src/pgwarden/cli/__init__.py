"""Command line: parse arguments, call `commands`, render, map errors to exit codes.

Exit codes (the contract):
  0  ok
  1  findings at or above the failure threshold, or refused by a guard
  2  usage, input or environment error; interrupted before anything changed
  3  the database misbehaved during apply (cancelled, timed out); the journal tells the state
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from functools import wraps
from types import FrameType
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
import orjson
from rich.console import Console

from pgwarden.errors import ApplyFailed, PgwardenError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_APPLY = 0, 1, 2, 3

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)


def _fail(message: str, hint: str | None, code: int) -> NoReturn:
    err.print(f"[bold red]pgwarden: error:[/] {message}", markup=True, highlight=False)
    if hint:
        err.print(f"  [dim]hint:[/] {hint}", markup=True, highlight=False)
    sys.exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn pgwarden errors and Ctrl-C into one message and the documented exit code."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PgwardenError as exc:
            _fail(exc.message, exc.hint, exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", "nothing was left running; run the command again", EXIT_INPUT)
        except BrokenPipeError:
            sys.exit(EXIT_OK)
        except (SystemExit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            if os.environ.get("PGWARDEN_DEBUG"):
                raise
            _fail(
                f"internal error: {type(exc).__name__}: {exc}",
                "this is a bug in pgwarden; rerun with PGWARDEN_DEBUG=1 for the traceback "
                "and report it",
                EXIT_INPUT,
            )

    return wrapper


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def print_json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


dsn_option = click.option(
    "--database-url",
    "database_url",
    default=None,
    metavar="DSN",
    help="Target database (falls back to $PGWARDEN_DATABASE_URL, then $DATABASE_URL).",
)
pg_version_option = click.option(
    "--pg-version", type=click.IntRange(13, 18), default=None, help="Server major to model."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pgwarden")
def cli() -> None:
    """pgwarden: know what each schema change locks, rehearse it, apply it safely."""


def _register() -> None:
    # One line per capability; each module owns its commands.
    from pgwarden.cli import analyse
    from pgwarden.cli import apply as apply_cli
    from pgwarden.cli import backup as backup_cli
    from pgwarden.cli import rehearse as rehearse_cli

    for module in (analyse, rehearse_cli, apply_cli, backup_cli):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the `pgwarden` command."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = cli.main(args=argv, prog_name="pgwarden", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", "nothing was left running", EXIT_INPUT)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_INPUT)
    except ApplyFailed as exc:  # pragma: no cover - handled inside commands
        _fail(exc.message, exc.hint, EXIT_APPLY)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
