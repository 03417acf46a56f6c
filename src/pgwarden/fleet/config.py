"""`[tool.pgwarden.fleet.<name>]`: the fleet's targets, waves, gates and limits, validated.

settings.KEYS lists the keys (unknown ones are errors there); this module reads
the section from `settings.raw` into typed objects and rejects bad values with
a `ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pgwarden.errors import ConfigError
from pgwarden.settings import Settings, config_table

__all__ = [
    "SIGNALS",
    "FleetConfig",
    "GateSpec",
    "RegistrySpec",
    "StaticTarget",
    "WaveSpec",
    "fleet_config",
]

# signal -> the keys its gate may set (besides name, signal, scope)
SIGNALS: dict[str, frozenset[str]] = {
    "rollback_ratio": frozenset({"max", "min_transactions"}),
    "deadlocks": frozenset({"max"}),
    "lock_waits": frozenset({"max"}),
    "replication_lag": frozenset({"max_bytes"}),
    "pg_stat_statements": frozenset(
        {"top", "max_ratio", "min_calls", "min_mean_ms", "max_mean_ms"}
    ),
    "http": frozenset({"url", "url_env", "expect_status", "timeout_s"}),
    "prometheus": frozenset({"url", "url_env", "query", "max", "min", "on_empty", "timeout_s"}),
}
_WAVE_KEYS = frozenset({"name", "count", "percent", "label", "parallel", "bake_s"})
_TARGET_KEYS = frozenset({"name", "dsn", "dsn_env", "labels"})


@dataclass(frozen=True, slots=True)
class StaticTarget:
    """A target as the configuration lists it: its DSN literally (no password) or by env var."""

    name: str
    dsn: str | None
    dsn_env: str | None
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RegistrySpec:
    """A query against a registry database returning `name, dsn[, labels]` rows."""

    query: str
    dsn: str | None
    dsn_env: str | None
    password_env: str | None


@dataclass(frozen=True, slots=True)
class WaveSpec:
    """One wave: a canary (`count` first targets, or those carrying `label`), then counts or
    percentages of the targets not yet in a wave."""

    name: str
    count: int | None = None
    percent: float | None = None
    label: tuple[tuple[str, str], ...] = ()
    parallel: int | None = None  # None: the fleet's
    bake_s: float | None = None  # None: the fleet's


@dataclass(frozen=True, slots=True)
class GateSpec:
    """A health check between waves; `params` holds the signal's own keys (see SIGNALS)."""

    name: str
    signal: str
    scope: str  # wave (the wave's targets) or fleet (every target)
    params: Mapping[str, Any] = field(default_factory=dict)

    def number(self, key: str, default: float | None = None) -> float | None:
        value = self.params.get(key, default)
        return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class FleetConfig:
    name: str
    targets: tuple[StaticTarget, ...] = ()
    registry: RegistrySpec | None = None
    command: tuple[str, ...] = ()
    order: str = "name"  # "name", or a label whose value orders the targets
    parallel: int = 1
    bake_s: float = 0.0
    on_error: str = "halt"  # halt | continue
    max_connections: int = 40  # pgwarden's connections over the whole fleet at once
    max_per_server: int = 10  # targets applied at once on one server (host:port)
    journal_dir: str = ".pgwarden/fleet"
    waves: tuple[WaveSpec, ...] = ()
    gates: tuple[GateSpec, ...] = ()


def _where(fleet: str, key: str) -> str:
    return f"fleet.{fleet}.{key}"


def _pos_int(value: object, where: str, *, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        raise ConfigError(
            f"`{where}` must be a {'non-negative' if zero else 'positive'} integer, got {value!r}"
        )
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"`{where}` must be a non-negative number, got {value!r}")
    return float(value)


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"`{where}` must be a non-empty string, got {value!r}")
    return value


def _labels(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"`{where}` must be a table of label = value, got {value!r}")
    out = []
    for k, v in value.items():
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise ConfigError(f"`{where}.{k}` must be a string or a number, got {v!r}")
        out.append((str(k), str(v)))
    return tuple(sorted(out))


def _unknown(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"unknown key `{where}.{key}`",
                hint="valid keys here: " + ", ".join(sorted(allowed)),
            )


def _has_password(dsn: str) -> bool:
    from psycopg import conninfo

    try:
        return bool(conninfo.conninfo_to_dict(dsn).get("password"))
    except Exception:
        return False


def _static(raw: object, fleet: str) -> tuple[StaticTarget, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"`{_where(fleet, 'targets')}` must be a list of tables")
    out = []
    for i, t in enumerate(raw):
        where = _where(fleet, f"targets[{i}]")
        if not isinstance(t, dict):
            raise ConfigError(f"`{where}` must be a table {{ name = ..., dsn_env = ... }}")
        _unknown(t, _TARGET_KEYS, where)
        name = _str(t.get("name"), f"{where}.name")
        dsn, dsn_env = t.get("dsn"), t.get("dsn_env")
        if (dsn is None) == (dsn_env is None):
            raise ConfigError(
                f"`{where}` ({name}) needs exactly one of `dsn` and `dsn_env`",
                hint='dsn_env = "NAME" reads the URL from the environment variable NAME',
            )
        if dsn is not None and _has_password(_str(dsn, f"{where}.dsn")):
            raise ConfigError(
                f"`{where}` ({name}): the dsn holds a password; a configuration file is no "
                "place for a secret (value not shown)",
                hint="put the URL in an environment variable and name it with dsn_env, or keep "
                "the password in ~/.pgpass",
            )
        out.append(
            StaticTarget(
                name,
                None if dsn is None else str(dsn),
                None if dsn_env is None else _str(dsn_env, f"{where}.dsn_env"),
                _labels(t.get("labels", {}), f"{where}.labels"),
            )
        )
    return tuple(out)


def _registry(raw: object, fleet: str) -> RegistrySpec:
    where = _where(fleet, "registry")
    if not isinstance(raw, dict):
        raise ConfigError(f"`{where}` must be a table {{ dsn_env = ..., query = ... }}")
    dsn, dsn_env = raw.get("dsn"), raw.get("dsn_env")
    if (dsn is None) == (dsn_env is None):
        raise ConfigError(f"`{where}` needs exactly one of `dsn` and `dsn_env`")
    if dsn is not None and _has_password(_str(dsn, f"{where}.dsn")):
        raise ConfigError(
            f"`{where}.dsn` holds a password (value not shown)", hint="use dsn_env instead"
        )
    pw = raw.get("password_env")
    return RegistrySpec(
        _str(raw.get("query"), f"{where}.query"),
        None if dsn is None else str(dsn),
        None if dsn_env is None else _str(dsn_env, f"{where}.dsn_env"),
        None if pw is None else _str(pw, f"{where}.password_env"),
    )


def _waves(raw: object, fleet: str) -> tuple[WaveSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"`{_where(fleet, 'waves')}` must be a non-empty list of tables")
    out = []
    for i, w in enumerate(raw):
        where = _where(fleet, f"waves[{i}]")
        if not isinstance(w, dict):
            raise ConfigError(f"`{where}` must be a table")
        _unknown(w, _WAVE_KEYS, where)
        given = [k for k in ("count", "percent", "label") if k in w]
        if len(given) != 1:
            raise ConfigError(
                f"`{where}` needs exactly one of `count`, `percent` and `label`"
                + (f" (it sets {', '.join(given)})" if given else ""),
                hint="count = 1 for a canary, percent = 100 for the rest",
            )
        percent = None
        if "percent" in w:
            percent = _number(w["percent"], f"{where}.percent")
            if not 0 < percent <= 100:
                raise ConfigError(f"`{where}.percent` must be above 0 and at most 100")
        out.append(
            WaveSpec(
                name=_str(w.get("name", f"wave {i + 1}"), f"{where}.name"),
                count=_pos_int(w["count"], f"{where}.count") if "count" in w else None,
                percent=percent,
                label=_labels(w["label"], f"{where}.label") if "label" in w else (),
                parallel=_pos_int(w["parallel"], f"{where}.parallel") if "parallel" in w else None,
                bake_s=_number(w["bake_s"], f"{where}.bake_s") if "bake_s" in w else None,
            )
        )
    names = [w.name for w in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(
            f"`{_where(fleet, 'waves')}`: wave names repeat: {', '.join(sorted(dup))}"
        )
    return tuple(out)


def _gate(g: object, where: str) -> GateSpec:
    if not isinstance(g, dict):
        raise ConfigError(f"`{where}` must be a table")
    signal = g.get("signal")
    if signal not in SIGNALS:
        raise ConfigError(
            f"`{where}.signal` is {signal!r}", hint="one of: " + ", ".join(sorted(SIGNALS))
        )
    _unknown(g, SIGNALS[signal] | {"name", "signal", "scope"}, where)
    scope = g.get("scope", "wave")
    if scope not in ("wave", "fleet"):
        raise ConfigError(f"`{where}.scope` must be wave or fleet, got {scope!r}")
    params = {k: v for k, v in g.items() if k not in ("name", "signal", "scope")}
    for key, value in params.items():
        if key in ("url", "url_env", "query", "on_empty"):
            _str(value, f"{where}.{key}")
        elif key in ("top", "min_calls", "min_transactions", "expect_status", "max_bytes"):
            _pos_int(value, f"{where}.{key}", zero=key == "max_bytes")
        else:
            _number(value, f"{where}.{key}")
    if signal in ("http", "prometheus") and ("url" in params) == ("url_env" in params):
        raise ConfigError(f"`{where}` needs exactly one of `url` and `url_env`")
    if signal == "prometheus":
        if "query" not in params:
            raise ConfigError(f"`{where}` needs `query` (PromQL; {{targets}} is replaced)")
        if "max" not in params and "min" not in params:
            raise ConfigError(f"`{where}` needs a threshold: `max` or `min`")
        if params.get("on_empty", "fail") not in ("fail", "pass"):
            raise ConfigError(f"`{where}.on_empty` must be fail or pass")
    if signal in ("deadlocks", "lock_waits", "rollback_ratio") and "max" not in params:
        raise ConfigError(f"`{where}` needs `max` (the largest acceptable value)")
    if signal == "replication_lag" and "max_bytes" not in params:
        raise ConfigError(f"`{where}` needs `max_bytes`")
    if signal == "rollback_ratio" and float(params["max"]) > 1:
        raise ConfigError(f"`{where}.max` is a share of transactions: at most 1")
    return GateSpec(_str(g.get("name", signal), f"{where}.name"), str(signal), str(scope), params)


def fleet_config(settings: Settings, name: str) -> FleetConfig:
    """The fleet `name` of the configuration, validated; `ConfigError` otherwise."""
    fleets = settings.raw.get("fleet", {})
    src = settings.source or "the configuration"
    if not isinstance(fleets, dict) or name not in fleets:
        known = sorted(fleets) if isinstance(fleets, dict) else []
        raise ConfigError(
            f"{src}: no fleet {name!r} is configured",
            hint=(
                f"configured fleets: {', '.join(known)}"
                if known
                else f"declare it as {config_table(f'fleet.{name}', settings.source)} "
                "(docs/fleet.md)"
            ),
        )
    t = fleets[name]
    if not isinstance(t, dict):
        raise ConfigError(f"{src}: fleet.{name} must be a table")
    try:
        return _build(name, t)
    except ConfigError as exc:
        raise ConfigError(f"{src}: {exc.message}", hint=exc.hint) from None


def _build(name: str, t: dict[str, Any]) -> FleetConfig:
    sources = [k for k in ("targets", "registry", "command") if k in t]
    if len(sources) != 1:
        raise ConfigError(
            f"fleet.{name} needs exactly one source of targets: `targets` (a list), "
            "`registry` (a query) or `command` (a program printing JSON lines)"
            + (f"; it sets {', '.join(sources)}" if sources else ""),
        )
    command: tuple[str, ...] = ()
    if "command" in t:
        raw = t["command"]
        if not isinstance(raw, list) or not raw or not all(isinstance(a, str) for a in raw):
            raise ConfigError(
                f"`{_where(name, 'command')}` must be a list of strings (the program and its "
                "arguments; no shell)"
            )
        command = tuple(raw)
    on_error = t.get("on_error", "halt")
    if on_error not in ("halt", "continue"):
        raise ConfigError(
            f"`{_where(name, 'on_error')}` must be halt or continue, got {on_error!r}"
        )
    gates_raw = t.get("gates", [])
    if not isinstance(gates_raw, list):
        raise ConfigError(f"`{_where(name, 'gates')}` must be a list of tables")
    gates = tuple(_gate(g, _where(name, f"gates[{i}]")) for i, g in enumerate(gates_raw))
    max_conn = _pos_int(t.get("max_connections", 40), _where(name, "max_connections"))
    if max_conn < 4:
        raise ConfigError(
            f"`{_where(name, 'max_connections')}` must be at least 4 (one apply uses 3 "
            "connections, the health gates one)"
        )
    return FleetConfig(
        name=name,
        targets=_static(t["targets"], name) if "targets" in t else (),
        registry=_registry(t["registry"], name) if "registry" in t else None,
        command=command,
        order=_str(t.get("order", "name"), _where(name, "order")),
        parallel=_pos_int(t.get("parallel", 1), _where(name, "parallel")),
        bake_s=_number(t.get("bake_s", 0.0), _where(name, "bake_s")),
        on_error=str(on_error),
        max_connections=max_conn,
        max_per_server=_pos_int(t.get("max_per_server", 10), _where(name, "max_per_server")),
        journal_dir=_str(t.get("journal_dir", ".pgwarden/fleet"), _where(name, "journal_dir")),
        waves=_waves(t["waves"], name)
        if "waves" in t
        else (
            WaveSpec("canary", count=1),
            WaveSpec("rest", percent=100.0),
        ),
        gates=gates,
    )
