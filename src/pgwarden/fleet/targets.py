"""The fleet's databases: a static list, a registry query, or a command printing JSON lines.

A target's DSN is a secret: it is read from the environment (or returned by
the registry or the command), kept in memory, and never written to disk or
output. Targets are named in every message, event and journal; `Redactor`
scrubs any DSN or password that a server or library message might echo.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson
import psycopg
from psycopg import conninfo, sql

from pgwarden.errors import ConfigError, ConnectionFailed, EnvironmentProblem, UsageError
from pgwarden.fleet.config import FleetConfig, RegistrySpec
from pgwarden.pg.connect import connect, describe_dsn, host_port

__all__ = ["Redactor", "Target", "load_targets", "server_of"]

_NAME = re.compile(r"^[A-Za-z0-9_.:@/-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Target:
    """One database of the fleet. `dsn` is never shown: `repr` and messages use `name`."""

    name: str
    dsn: str = field(repr=False)
    labels: tuple[tuple[str, str], ...] = ()
    dsn_env: str | None = None  # the environment variable the URL was read from

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)

    @property
    def unset(self) -> bool:
        """Its URL variable is not set (loaded for a status only, see load_targets)."""
        return not self.dsn

    def url_source(self) -> str:
        """Where the URL comes from, for connection hints ('' when given in the config)."""
        return f"its URL comes from ${self.dsn_env}" if self.dsn_env else ""

    def cannot_connect(self, exc: ConnectionFailed) -> str:
        """A connection failure in one line: libpq's reason, the fix, the URL's variable."""
        hint = "; ".join(x for x in (exc.hint, self.url_source()) if x)
        return exc.message.splitlines()[0] + (f" (hint: {hint})" if hint else "")

    @property
    def where(self) -> str:
        """user@host:port/db, without the password."""
        return describe_dsn(self.dsn)


def server_of(target: Target) -> str:
    """host:port of the target's server (what per-server limits count)."""
    try:
        return host_port(conninfo.conninfo_to_dict(target.dsn))
    except psycopg.ProgrammingError:
        return "?"


class Redactor:
    """Replaces every DSN and password of the fleet in a text by `***`."""

    def __init__(self, targets: Iterable[Target] = (), extra: Iterable[str] = ()) -> None:
        secrets: set[str] = {s for s in extra if s}
        for t in targets:
            secrets.add(t.dsn)
            try:
                pw = conninfo.conninfo_to_dict(t.dsn).get("password")
            except psycopg.ProgrammingError:
                pw = None
            if pw:
                secrets.add(str(pw))
        # longest first: a DSN is replaced whole before its password alone
        self._secrets = sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True)

    def __call__(self, text: str | None) -> str:
        if not text:
            return text or ""
        for s in self._secrets:
            text = text.replace(s, "***")
        return text


def _env(var: str, what: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise UsageError(
            f"{what}: the environment variable {var} is not set (it holds the database URL)",
            hint=f"export {var}=postgresql://... before running pgwarden fleet",
        )
    return value


def _check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        shown = name.encode("unicode_escape").decode("ascii")[:60]
        raise UsageError(
            f"{what}: target name '{shown}' is not a plain name",
            hint="use letters, digits and . _ - : @ / (at most 128 characters)",
        )
    return name


def _with_password(dsn: str, password_env: str | None) -> str:
    if password_env is None:
        return dsn
    params = conninfo.conninfo_to_dict(dsn)
    if params.get("password"):
        return dsn
    return conninfo.make_conninfo(dsn, password=_env(password_env, "registry.password_env"))


def _from_registry(spec: RegistrySpec, fleet: str) -> list[Target]:
    dsn = spec.dsn if spec.dsn is not None else _env(spec.dsn_env or "", f"fleet {fleet} registry")
    query = sql.SQL(spec.query)
    try:
        with connect(dsn, application_name="pgwarden-fleet-registry") as conn:
            conn.execute("SET default_transaction_read_only = on")
            cur = conn.execute(query)
            cols = [d.name for d in cur.description or ()]
            rows = cur.fetchall()
    except psycopg.Error as exc:
        raise UsageError(
            f"fleet {fleet}: the registry query failed: {str(exc).strip().splitlines()[0]}",
            hint="the query must return the columns name, dsn and (optionally) labels (jsonb)",
        ) from None
    if "name" not in cols or "dsn" not in cols:
        lacks = " and ".join(c for c in ("name", "dsn") if c not in cols)
        raise UsageError(
            f"fleet {fleet}: the registry query returns no column {lacks} (it returns "
            f"{', '.join(cols) or 'no columns'})",
            hint="return the columns name, dsn and (optionally) labels (a jsonb object)",
        )
    out = []
    for row in rows:
        r = dict(zip(cols, row, strict=True))
        name = _check_name(str(r["name"]), f"fleet {fleet} registry")
        labels = r.get("labels") or {}
        if not isinstance(labels, dict):
            raise UsageError(f"fleet {fleet} registry: labels of {name} is not a JSON object")
        out.append(
            Target(
                name,
                _with_password(str(r["dsn"]), spec.password_env),
                tuple(sorted((str(k), str(v)) for k, v in labels.items())),
            )
        )
    return out


def _from_command(argv: Sequence[str], fleet: str) -> list[Target]:
    what = f"fleet {fleet}: the targets command {argv[0]}"
    try:
        done = subprocess.run(
            list(argv), capture_output=True, stdin=subprocess.DEVNULL, timeout=120, check=False
        )
    except FileNotFoundError:
        raise EnvironmentProblem(
            f"{what} was not found", hint="check `command` in the config"
        ) from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"{what} did not finish within 120 s") from None
    if done.returncode != 0:
        # its output may hold DSNs: not shown
        raise EnvironmentProblem(
            f"{what} exited with status {done.returncode} (its output is not shown: it may "
            "hold secrets)",
            hint="run the command by hand to see what went wrong",
        )
    out = []
    for n, line in enumerate(done.stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise UsageError(
                f"{what}: line {n} of its output is not JSON (line not shown)",
                hint='print one object per line: {"name": ..., "dsn" or "dsn_env": ..., '
                '"labels": {...}}',
            ) from None
        if not isinstance(item, dict) or "name" not in item:
            raise UsageError(f"{what}: line {n} is not an object with a name")
        name = _check_name(str(item["name"]), what)
        var = str(item["dsn_env"]) if "dsn_env" in item else None
        if var is not None:
            dsn = _env(var, f"target {name}")
        elif "dsn" in item:
            dsn = str(item["dsn"])
        else:
            raise UsageError(f"{what}: target {name} has neither dsn nor dsn_env")
        labels = item.get("labels") or {}
        if not isinstance(labels, dict):
            raise UsageError(f"{what}: labels of {name} is not an object")
        pairs = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
        out.append(Target(name, dsn, pairs, dsn_env=var))
    return out


def load_targets(cfg: FleetConfig, *, unset_ok: bool = False) -> list[Target]:
    """Every target of the fleet, names unique; DSNs from the environment, registry or command.

    `unset_ok` (a status, which only reads): a static target whose URL variable is not set
    gets an empty `dsn` (`Target.unset`), to be reported, never connected to."""
    if cfg.registry is not None:
        targets = _from_registry(cfg.registry, cfg.name)
    elif cfg.command:
        targets = _from_command(cfg.command, cfg.name)
    else:
        targets = []
        for st in cfg.targets:
            name = _check_name(st.name, f"fleet {cfg.name}")
            if st.dsn is not None:
                dsn = st.dsn
            elif unset_ok and not os.environ.get(st.dsn_env or ""):
                dsn = ""
            else:
                dsn = _env(st.dsn_env or "", f"target {name}")
            targets.append(Target(name, dsn, st.labels, dsn_env=st.dsn_env))
    if not targets:
        raise UsageError(f"fleet {cfg.name} has no targets", hint="check its targets source")
    seen: dict[str, int] = {}
    for t in targets:
        seen[t.name] = seen.get(t.name, 0) + 1
    dup = sorted(n for n, c in seen.items() if c > 1)
    if dup:
        raise ConfigError(
            f"fleet {cfg.name}: target names repeat: {', '.join(dup[:10])}",
            hint="each target needs a unique name (the journal and the events use it)",
        )
    return targets


def select(targets: Sequence[Target], labels: Mapping[str, str]) -> list[Target]:
    """The targets carrying every label of `labels`."""
    return [t for t in targets if all(t.label(k) == v for k, v in labels.items())]
