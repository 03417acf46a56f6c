"""Configuration: `[tool.pgwarden]` in pyproject.toml, or `pgwarden.toml`.

Unless a path is given (`--config`), found by walking up from the working
directory to the repository root (the first directory holding `.git`): the
nearest `pgwarden.toml`, or `pyproject.toml` with a `[tool.pgwarden]` table.
Unknown keys are an error naming the closest valid key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pgwarden.errors import ConfigError, UsageError

__all__ = [
    "CLIENT_GONE_S",
    "KEYS",
    "UNREACHABLE_S",
    "Environment",
    "RolePolicy",
    "Settings",
    "UnknownTypeChange",
    "check_env_name",
    "config_table",
    "is_protected",
    "load_settings",
    "why_protected",
]


# How PW104 grades an ALTER COLUMN ... TYPE whose current type is unknown (no catalog).
UnknownTypeChange = Literal["error", "warning"]

# [watchdog] defaults. A run's watchdog whose queries go unanswered this long cuts the
# run's connections (apply.watchdog); a run whose watchdog session has been silent this
# long has a gone client for status, cancel and resume (apply.liveness).
UNREACHABLE_S = 30.0
CLIENT_GONE_S = 15.0
# Below these a slow tick on a busy server could pass for a dead one (the watchdog
# queries every 50 ms), and resume would end a live run's backend.
_MIN_WATCHDOG_S = 1.0


@dataclass(frozen=True, slots=True)
class Environment:
    """A declared deployment target."""

    name: str
    protected: bool = False
    roles: RolePolicy | None = None  # [environments.<name>.roles]: audit and apply's role check


@dataclass(frozen=True, slots=True)
class RolePolicy:
    """Who may do what in one environment (docs/audit.md); checked by pgwarden.access."""

    migration: str | None = None  # the one role that may change schema
    application: tuple[str, ...] = ()  # DML only, on `application_schemas`
    application_schemas: tuple[str, ...] = ("public",)
    readonly: tuple[str, ...] = ()
    break_glass: tuple[str, ...] = ()  # may run apply with --break-glass "reason"
    superusers: tuple[str, ...] = ()  # any other superuser is an error


def _role_policy(spec: object, where: str) -> RolePolicy:
    """`RolePolicy` of a `roles` table, or `ConfigError` naming the bad value."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a table")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("application", "application_schemas", "readonly", "break_glass", "superusers"):
        value = spec.get(key, ["public"] if key == "application_schemas" else [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where}.{key} must be a list of role or schema names")
        lists[key] = tuple(value)
    migration = spec.get("migration")
    if migration is not None and not (isinstance(migration, str) and migration):
        raise ConfigError(f"{where}.migration must be a role name")
    return RolePolicy(migration=migration, **lists)


def config_table(key: str, source: str | None, *, array: bool = False, named: bool = True) -> str:
    """Table `key` (e.g. `environments.prod.roles`) as the config file `source` spells it,
    for hints: `[tool.pgwarden.KEY]` in pyproject.toml, `[KEY]` in pgwarden.toml (or any
    other --config file), followed by " in FILE" (`named`); with no config file (None),
    both, pgwarden.toml first. `array`: `[[...]]`, an array of tables.

    A hint naming `[tool.pgwarden.environments]` to a pgwarden.toml user led to
    "unknown key `tool`".
    """
    o, c = ("[[", "]]") if array else ("[", "]")
    if source is None:
        return f"{o}{key}{c} in pgwarden.toml (or {o}tool.pgwarden.{key}{c} in pyproject.toml)"
    prefix = "tool.pgwarden." if Path(source).name == "pyproject.toml" else ""
    table = f"{o}{prefix}{key}{c}"
    return f"{table} in {source}" if named else table


def check_env_name(
    name: str,
    where: str = "--env",
    *,
    environments: Mapping[str, Environment] | None = None,
    stamp_env: str | None = None,
    source: str | None = None,
    unstamped: str = "the database has no pgwarden stamp",
) -> str:
    """`name`, or a `UsageError` when it is empty, holds a control character, or is
    not an environment this run may target.

    With `environments` (the declared ones; empty: none declared, anything goes) a
    name outside them is accepted only when it is `stamp_env`, the environment the
    database's stamp records (a database adopted under that name elsewhere); any
    other undeclared name is a typo or the wrong configuration, refused naming the
    closest declared environment and the stamp's; `source` is the config file that
    declares them (`Settings.source`), named in the hint; `unstamped` says why no
    stamp excuses the name when `stamp_env` is None (a fleet checks before reading any).
    """
    bad = [c for c in name if ord(c) < 32 or 127 <= ord(c) < 160]
    if not name.strip() or bad:
        shown = name.encode("unicode_escape").decode("ascii")
        raise UsageError(
            f"{where}: environment name '{shown}' "
            + ("holds a control character" if bad else "is empty"),
            hint="use a plain name such as production or staging",
        )
    if not environments or name in environments or name == stamp_env:
        return name
    declared = sorted(environments)
    from difflib import get_close_matches  # only to name the closest of a wrong name

    close = get_close_matches(name, declared, n=1, cutoff=0.5)
    stamp = f"the database's stamp says {stamp_env!r}" if stamp_env is not None else unstamped
    raise UsageError(
        f"{where} {name} is not declared in the configuration "
        f"(declared: {', '.join(declared)}) and {stamp}",
        hint=(f"did you mean --env {close[0]}? " if close else "")
        + "Pass a declared environment"
        + (f", or --env {stamp_env} to target what the stamp records" if stamp_env else "")
        + f", or declare it under {config_table('environments', source)}",
    )


def is_protected(
    name: str, environments: Mapping[str, Environment], stamped: bool | None = None
) -> bool:
    """Whether environment `name` is protected; every command decides with this.

    `stamped` is what the target's stamp records for `name` (None: no stamp, or a
    stamp written before protection was recorded). A stamp that says protected
    is protected wherever pgwarden runs; a declared environment is protected if
    its declaration says so; an undeclared one is protected unless its stamp
    says it is not (the safe default when pgwarden cannot know).
    """
    if stamped:
        return True
    declared = environments.get(name)
    if declared is not None:
        return declared.protected
    return stamped is None


def why_protected(
    name: str, environments: Mapping[str, Environment], stamped: bool | None = None
) -> str:
    """The reason `is_protected` gives for `name`, for messages."""
    if stamped:
        return "the database's stamp records it as protected"
    if name in environments:
        return "the configuration declares it protected"
    if environments:
        return (
            "it is not declared in the configuration and its stamp does not record its "
            "protection, so it is protected"
        )
    return "it is not declared in a configuration (no pgwarden.toml here), so it is protected"


@dataclass(frozen=True, slots=True)
class Settings:
    """pgwarden's configuration, with defaults for everything."""

    source: str | None = None
    pg_version: int | None = None
    file_transaction: bool = True
    # The tool that runs `*.up.sql` files when no go.mod above them says (golang-migrate
    # sends a file as one query; sqlx and morph wrap it in a transaction): None, not known.
    up_sql_runner: str | None = None
    fail_on: str = "error"
    ignore: tuple[str, ...] = ()
    environments: dict[str, Environment] = field(default_factory=dict)
    backup_catalogue: str = "backups/"
    # A destructive step on a protected environment needs a verified backup this recent.
    backup_max_age_hours: float = 24.0
    # apply refuses a plan whose exact fingerprint was never rehearsed.
    require_rehearsed: bool = False
    # An UPDATE/DELETE estimated to touch more rows than this, or more than this share
    # of a large or busy table, in one statement is an error (PW142).
    dml_max_rows: int = 100_000
    dml_max_share: float = 0.1
    # Without a catalog, an ALTER COLUMN ... TYPE to a target real migrations mostly reach
    # in place (text) is a warning ("warning"), or an error like every other ("error").
    unknown_type_change: UnknownTypeChange = "warning"
    # [watchdog]: apply's read timeout, and when status/cancel/resume call a client gone.
    watchdog_unreachable_s: float = UNREACHABLE_S
    watchdog_client_gone_s: float = CLIENT_GONE_S
    raw: dict[str, Any] = field(default_factory=dict)


def _table(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    import tomllib  # only once a config file exists

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        section = tool.get("pgwarden") if isinstance(tool, dict) else None
        return section if isinstance(section, dict) else None
    return data


def find_config(start: str | os.PathLike[str] | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The nearest pgwarden.toml, or pyproject.toml with [tool.pgwarden], from `start` up.

    Stops at the repository root (a directory holding `.git`), like ruff and black.
    """
    here = Path(start if start is not None else Path.cwd()).absolute()
    for folder in (here, *here.parents):
        for name in ("pgwarden.toml", "pyproject.toml"):
            table = _table(folder / name)
            if table is not None:
                return folder / name, table
        if (folder / ".git").exists():
            return None
    return None


def load_settings(config: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from `config`, else the nearest config file (`find_config`), else defaults."""
    if config is not None:
        path = Path(config)
        if not path.exists():
            raise ConfigError(f"{path}: config file not found", hint="check --config")
        table = _table(path)
        if table is None:
            raise ConfigError(f"{path}: has no [tool.pgwarden] section")
        return _build(table, str(path))
    found = find_config()
    if found is None:
        return Settings()
    path, table = found
    try:
        shown = str(path.relative_to(Path.cwd().absolute()))
    except ValueError:
        shown = str(path)
    return _build(table, shown)


# The tools whose `*.up.sql` files pgwarden tells apart (the up_sql_runner setting).
UP_SQL_RUNNERS = ("golang-migrate", "bun", "sqlx", "morph", "maragudk/migrate")

# Every valid key, by table: None marks a table of named entries (environments.<name>).
KEYS: dict[str | None, Any] = {
    "pg_version": int,
    "file_transaction": bool,
    "up_sql_runner": str,
    "fail_on": str,
    "ignore": list,
    "ignore_sources": list,  # [{path = glob | app = label, rules?, reason}]: lint/ignore_sources.py
    "require_rehearsed": bool,
    "dml_max_rows": int,
    "dml_max_share": float,
    "unknown_type_change": str,
    "watchdog": {"unreachable_s": float, "client_gone_s": float},
    "environments": {
        None: {
            "protected": bool,
            "roles": {
                "migration": str,
                **dict.fromkeys(
                    ("application", "application_schemas", "readonly", "break_glass"), list
                ),
                "superusers": list,
            },
        }
    },
    "backup": {"catalogue": str, "max_age_hours": float, "drill_max_age_days": float},
    # [tool.pgwarden.rehearse]: validated in pgwarden/rehearse/copydata.py (docs/rehearse.md)
    "rehearse": {"copy_data": list, "copy_max_rows": int, "timezone": str},
    # [tool.pgwarden.fleet.<name>]: validated in pgwarden/fleet/config.py
    "fleet": {
        None: {
            **dict.fromkeys(("targets", "command", "waves", "gates"), list),
            "registry": {"query": str, "dsn": str, "dsn_env": str, "password_env": str},
            **dict.fromkeys(("order", "on_error", "journal_dir"), str),
            **dict.fromkeys(("parallel", "max_connections", "max_per_server"), int),
            "bake_s": float,
        }
    },
    # [tool.pgwarden.notify]: validated in pgwarden/notify/config.py (docs/notify.md)
    "notify": {
        "webhooks": list,
        **dict.fromkeys(("stuck_after_s", "stuck_factor", "progress_every_s"), float),
        "exit_wait_s": float,
    },
}


def _check_keys(
    table: dict[str, Any], known: dict[str | None, Any], source: str, prefix: str
) -> None:
    """ConfigError for the first key of `table` not in `known`, naming the closest valid one."""
    for key, value in table.items():
        if None in known:
            spec: Any = known[None]
        elif key in known:
            spec = known[key]
        else:
            valid = sorted(k for k in known if k is not None)
            from difflib import get_close_matches

            close = get_close_matches(key, valid, n=1)
            where = f"{prefix}{key}"
            hint = (
                f"did you mean `{prefix}{close[0]}`?"
                if close
                else f"valid keys here: {', '.join(prefix + k for k in valid)}"
            )
            if where == "tool" and isinstance(value, dict) and "pgwarden" in value:
                inner = value["pgwarden"]  # [tool.pgwarden.X] is pyproject.toml's spelling
                first = next(iter(inner), "environments") if isinstance(inner, dict) else "fleet"
                hint = (
                    "this file takes the tables without the tool.pgwarden prefix: "
                    f"write [{first}], not [tool.pgwarden.{first}]"
                )
            raise ConfigError(f"{source}: unknown key `{where}`", hint=hint)
        if isinstance(spec, dict) and isinstance(value, dict):
            _check_keys(value, spec, source, f"{prefix}{key}.")


def _build(t: dict[str, Any], source: str) -> Settings:
    _check_keys(t, KEYS, source, "")

    def typed(key: str, kind: type, default: Any) -> Any:
        value = t.get(key, default)
        if value is not default and not isinstance(value, kind):
            raise ConfigError(
                f"{source}: `{key}` must be a {kind.__name__}, got {type(value).__name__}"
            )
        return value

    envs: dict[str, Environment] = {}
    raw_envs = typed("environments", dict, {})
    for name, spec in raw_envs.items():
        check_env_name(name, f"{source}: environments")
        if not isinstance(spec, dict):
            raise ConfigError(f"{source}: environments.{name} must be a table")
        roles = spec.get("roles")
        where = f"{source}: environments.{name}.roles"
        envs[name] = Environment(
            name,
            protected=bool(spec.get("protected", False)),
            roles=None if roles is None else _role_policy(roles, where),
        )
    backup = typed("backup", dict, {})
    fail_on = typed("fail_on", str, "error")
    if fail_on not in ("error", "warning", "note"):
        raise ConfigError(f"{source}: fail_on must be error, warning or note, got {fail_on!r}")
    ignore = typed("ignore", list, [])
    max_age = backup.get("max_age_hours", 24.0)
    if not isinstance(max_age, int | float) or isinstance(max_age, bool) or max_age <= 0:
        raise ConfigError(f"{source}: backup.max_age_hours must be a positive number")
    max_rows = typed("dml_max_rows", int, 100_000)
    share = t.get("dml_max_share", 0.1)
    if isinstance(max_rows, bool) or max_rows <= 0:
        raise ConfigError(f"{source}: dml_max_rows must be a positive integer")
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 < share <= 1:
        raise ConfigError(f"{source}: dml_max_share must be a number above 0 and at most 1")
    raw_unknown_type = typed("unknown_type_change", str, "warning")
    if raw_unknown_type not in ("error", "warning"):
        raise ConfigError(
            f"{source}: unknown_type_change must be error or warning, got {raw_unknown_type!r}"
        )
    unknown_type: UnknownTypeChange = "error" if raw_unknown_type == "error" else "warning"
    up_sql_runner = typed("up_sql_runner", str, None)
    if up_sql_runner is not None and up_sql_runner not in UP_SQL_RUNNERS:
        raise ConfigError(
            f"{source}: up_sql_runner must be one of {', '.join(UP_SQL_RUNNERS)}, "
            f"got {up_sql_runner!r}"
        )
    watchdog = typed("watchdog", dict, {})
    unreachable = _seconds(watchdog, "unreachable_s", UNREACHABLE_S, source)
    client_gone = _seconds(watchdog, "client_gone_s", CLIENT_GONE_S, source)
    return Settings(
        source=source,
        pg_version=typed("pg_version", int, None),
        file_transaction=typed("file_transaction", bool, True),
        up_sql_runner=up_sql_runner,
        fail_on=fail_on,
        ignore=tuple(str(x) for x in ignore),
        environments=envs,
        backup_catalogue=str(backup.get("catalogue", "backups/")),
        backup_max_age_hours=float(max_age),
        require_rehearsed=typed("require_rehearsed", bool, False),
        dml_max_rows=max_rows,
        dml_max_share=float(share),
        unknown_type_change=unknown_type,
        watchdog_unreachable_s=unreachable,
        watchdog_client_gone_s=client_gone,
        raw=t,
    )


def _seconds(table: dict[str, Any], key: str, default: float, source: str) -> float:
    """`watchdog.<key>` in seconds, or ConfigError unless a number of at least 1."""
    value = table.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < _MIN_WATCHDOG_S:
        raise ConfigError(
            f"{source}: watchdog.{key} must be a number of seconds, at least "
            f"{_MIN_WATCHDOG_S:g}, got {value!r}",
            hint=f"the default is {default:g}",
        )
    return float(value)
