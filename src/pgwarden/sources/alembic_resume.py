"""`pgwarden resume` of a run with Alembic revisions that only run online.

The stored plan holds, for such a revision, only its placeholder statement
(`alembic_online.placeholder_sql`: the revision id and its file). `resume_runners`
gives each placeholder back its runner, so that resume runs the revision online
through Alembic as `pgwarden apply --alembic` did, instead of failing on the
placeholder. The project is found from the revision's file: the nearest
`alembic.ini` above it (a relative path is taken from the working directory, as
apply printed it). What cannot be found fails at that step, naming what to do;
the steps before it are resumed as usual.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pge

from pgwarden.sources.alembic_online import OnlineRevision, Runner, online_runner, placeholder_sql

__all__ = ["placeholder_revision", "resume_runners"]

_PLACEHOLDER = re.compile(
    r"^DO \$pgwarden\$ BEGIN RAISE EXCEPTION USING MESSAGE = 'alembic revision (?P<rev>\S+) "
    r"runs online through Alembic, not as SQL: .*? it runs it \((?P<path>.*) reads data or "
    r"inspects the connection; resume cannot\)'",
    re.DOTALL,
)
_LEVELS = 4  # how far above the revision's file alembic.ini is looked for


def placeholder_revision(statement: str) -> tuple[str, str] | None:
    """(revision, path) when `statement` is an online revision's placeholder, else None."""
    m = _PLACEHOLDER.match(statement)
    if m is None:
        return None
    rev, path = m["rev"], m["path"].replace("''", "'")
    return (rev, path) if placeholder_sql(rev, path) == statement else None


def resume_runners(statements: Iterable[str], database_url: str) -> dict[str, Runner]:
    """A runner for each online-revision placeholder among `statements` (the stored plan)."""
    runners: dict[str, Runner] = {}
    for statement in statements:
        found = placeholder_revision(statement)
        if found is not None:
            runners[statement] = _runner(found[0], found[1], statement, database_url)
    return runners


def _runner(revision: str, path: str, statement: str, database_url: str) -> Runner:
    def run(conn: psycopg.Connection[tuple[object, ...]]) -> None:
        ini, script = _project(revision, path)
        from pgwarden.sources.alembic import _down, _sqlalchemy_url

        rev = OnlineRevision(revision, path, _down(script, revision), statement)
        online_runner(ini, _sqlalchemy_url(database_url), rev, script=script)(conn)

    return run


def _project(revision: str, path: str) -> tuple[Path, Any]:
    """The alembic.ini and ScriptDirectory whose `revision` is the file at `path`."""
    what = f"revision {revision} ({path})"
    todo = (
        "run `pgwarden resume` where `pgwarden apply --alembic` ran (the revision's path is "
        "relative to it), or `pgwarden apply --alembic` again in the project: it continues "
        "after alembic_version"
    )
    try:
        import alembic  # noqa: F401
    except ImportError:
        raise _failed(
            f"{what} runs online through Alembic, which is not installed: {todo}"
        ) from None
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    file = Path(path).resolve()
    if not file.is_file():
        raise _failed(f"{what} runs online through Alembic, but {file} is not there: {todo}")
    for folder in list(file.parents)[:_LEVELS]:
        ini = folder / "alembic.ini"
        if not ini.is_file():
            continue
        try:
            script = ScriptDirectory.from_config(Config(str(ini)))
            found = script.get_revision(revision)
        except Exception as exc:  # not this project, or a broken one
            raise _failed(f"{what}: {ini} could not be read ({exc}): {todo}") from exc
        if found is None or Path(found.path).resolve() != file:
            raise _failed(f"{what}: {ini} has no revision {revision} in {file}: {todo}")
        return ini, script
    raise _failed(f"{what} runs online through Alembic, but no alembic.ini is above it: {todo}")


def _failed(text: str) -> pge.ExternalRoutineException:
    return pge.ExternalRoutineException(text)
