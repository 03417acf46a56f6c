"""Command line: parse arguments, call `commands`, render, map errors to exit codes.

Exit codes (the contract):
  0  ok
  1  findings at or above the failure threshold, or refused by a guard
  2  usage, input or environment error; interrupted before anything changed
  3  the database misbehaved during apply (cancelled, timed out); the journal tells the state
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from functools import wraps
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar, cast

import click
import orjson

from pgwarden._start import as_usual
from pgwarden.errors import ApplyFailed, PgwardenError
from pgwarden.report.markup import styled as styled

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_APPLY = 0, 1, 2, 3

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made on first use: `lint --format json` never loads rich.

    Printed to a file or a CI log (not a terminal), lines are never hard-wrapped:
    a message, a path or a statement stays on one line, whole, for grep; tables and
    panels are laid out at the width they need (see `pgwarden.report.piped`).
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def _get(self) -> Console:
        if self._console is None:
            from pgwarden.report.piped import make_console

            self._console = make_console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    # Special methods bypass __getattr__: rich's Live uses the console as a context manager.
    def __enter__(self) -> Console:
        return self._get().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._get().__exit__(*exc)


# A plain str printed on these consoles is shown as it is, never read as rich markup:
# user text (SQL, paths, env names, server messages, `[/]`) cannot break or vanish.
# pgwarden's own styling goes through `styled`.
out = cast("Console", _LazyConsole(highlight=False, soft_wrap=False, markup=False))
# Messages stay one line each.
err = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True, markup=False))
# For renderers outside the CLI that escape user text themselves (rehearse report, demo).
out_markup = cast("Console", _LazyConsole(highlight=False, soft_wrap=False))
err_markup = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))


@contextlib.contextmanager
def late_ctrl_c_ignored() -> Iterator[None]:
    """Ignore Ctrl-C: the outcome is decided, a press landing now (a second one as the
    report ends) must not turn the documented exit code into 'interrupted' or death by
    SIGINT. Under `main` for good, since the process ends after the block (giving the
    handler back while its exit unwinds let such a press raise KeyboardInterrupt); in a
    test's process (CliRunner), until the block ends."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if not _process:
            signal.signal(signal.SIGINT, old)


def _fail(message: str, hint: str | None, code: int) -> NoReturn:
    if _process:
        # the outcome is decided: a Ctrl-C from here on (a second press landing as the
        # report ends) must not turn the documented exit code into death by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    err.print(styled("[bold red]pgwarden: error:[/] {}", message))
    if hint:
        err.print(styled("  [dim]hint:[/] {}", hint))
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
    """JSON on stdout: indented for a terminal, compact (a third of the bytes) when piped."""
    option = orjson.OPT_INDENT_2 if sys.stdout.isatty() else 0
    sys.stdout.buffer.write(orjson.dumps(data, option=option) + b"\n")
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


# Which module defines each command. A module is imported when one of its commands
# runs, so `pgwarden lint` never loads psycopg, rich.progress or the backup code.
# A name missing here still works: an unknown name loads every module first.
_COMMAND_MODULES = {
    "explain": "analyse",
    "lint": "analyse",
    "stats": "analyse",
    "demo": "analyse",
    "rehearse": "rehearse",
    "apply": "apply",
    "status": "apply",
    "cancel": "apply",
    "resume": "apply",
    "backfill": "apply",
    "backup": "backup",
    "audit": "audit",
    "fleet": "fleet",
    "upgrade": "upgrade",
    "notify": "notify",
}


class _LazyGroup(click.Group):
    """A group that imports a command's module only when the command is needed."""

    def _load(self, module: str) -> None:
        # One line per capability; each module owns its commands.
        mod = importlib.import_module(f"pgwarden.cli.{module}")
        for command in mod.COMMANDS:
            if command.name not in self.commands:
                self.add_command(command)

    def _load_all(self) -> None:
        for module in dict.fromkeys(_COMMAND_MODULES.values()):
            self._load(module)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_all()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module = _COMMAND_MODULES.get(cmd_name)
            if module is not None:
                self._load(module)
            if cmd_name not in self.commands:
                self._load_all()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pgwarden")
def cli() -> None:
    """pgwarden: know what each schema change locks, rehearse it, apply it safely."""


_teardown = True  # False: the command leaves nothing that needs the interpreter's teardown
_process = False  # True when `main` runs: this process is the command (not a test's)
_kept: list[object] = []  # the last command's results, dropped with the process


def skip_teardown(*keep: object) -> None:
    """Let `main` end the process as soon as the command is done, output flushed.

    For commands that hold no resource needing cleanup (no connection, temporary
    cluster or atexit handler): the interpreter's teardown would only free, one by one,
    the objects a large run built (a 20,000-statement lint: ~0.1-0.2 s of CPU). `keep`:
    the command's results (plan, findings), kept so that they are not freed either when
    the command returns. Run in-process (tests, CliRunner), only the last command's
    results stay referenced; only `main` ends the process.
    """
    global _teardown
    _teardown = False
    _kept[:] = keep


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the `pgwarden` command."""
    global _process
    _process = True
    as_usual()  # the imports are done: Ctrl-C raises KeyboardInterrupt, handled per command
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = _run(argv)
    except SystemExit as exc:
        if _teardown or not (exc.code is None or isinstance(exc.code, int)):
            raise
        code = exc.code or EXIT_OK
    if not _teardown:
        _exit_now(code)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="pgwarden", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", "nothing was left running", EXIT_INPUT)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_INPUT)
    except ApplyFailed as exc:  # pragma: no cover - handled inside commands
        _fail(exc.message, exc.hint, EXIT_APPLY)
    return code if isinstance(code, int) else EXIT_OK


def _exit_now(code: int) -> NoReturn:
    """End the process now: flush what was printed, skip the interpreter's teardown."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left: nothing more to say, as handle_errors does
        pass
    os._exit(code)
