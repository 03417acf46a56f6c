"""`[tool.pgwarden.notify]`: webhook targets and the thresholds of stuck and progress.

```toml
[tool.pgwarden.notify]
stuck_after_s = 300        # no progress for this long: "stuck"
stuck_factor = 3.0         # a step past 3x its rehearsed duration: "stuck"
progress_every_s = 60      # at most one "progress" notification per target this often
exit_wait_s = 5            # at exit, wait at most this long for undelivered notifications

[[tool.pgwarden.notify.webhooks]]
url_env = "SLACK_WEBHOOK_URL"   # the URL is read from this environment variable
format = "slack"                # or "json" (the default)
events = ["started", "stuck", "failed", "cancelled", "done"]   # default: all six
environments = ["production"]   # default: every environment
```

A webhook URL is a secret: it is held only in memory and never appears in a
message; targets are named "webhook #N (VARIABLE)" instead.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pgwarden.errors import ConfigError
from pgwarden.settings import Settings, config_table

__all__ = ["KINDS", "NotifyConfig", "Webhook", "load_notify_config"]

# Every kind of notification, in the order a run produces them.
KINDS = ("started", "progress", "stuck", "failed", "cancelled", "done")
FORMATS = ("json", "slack")
_WEBHOOK_KEYS = ("url_env", "url", "name", "format", "events", "environments", "timeout_s")


@dataclass(frozen=True, slots=True)
class Webhook:
    """One delivery target. `url` is a secret: `label` is what messages show."""

    index: int  # 1-based, in the order of the configuration
    label: str  # "webhook #1 (SLACK_WEBHOOK_URL)"
    url: str | None = field(default=None, repr=False)  # None: the variable is not set
    format: str = "json"
    events: frozenset[str] = frozenset(KINDS)
    environments: frozenset[str] | None = None  # None: every environment
    timeout_s: float = 5.0
    literal: bool = False  # the URL is written in the configuration file

    def __repr__(self) -> str:  # never the URL
        return f"Webhook({self.label}, format={self.format})"

    def wants(self, kind: str, environment: str | None) -> bool:
        """Whether this target receives a `kind` notification of a run on `environment`."""
        if self.url is None or kind not in self.events:
            return False
        return self.environments is None or environment in self.environments


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """The notify section, validated; `problems` are warnings for the run (no secret)."""

    webhooks: tuple[Webhook, ...] = ()
    stuck_after_s: float = 300.0
    stuck_factor: float = 3.0
    progress_every_s: float = 60.0
    exit_wait_s: float = 5.0
    problems: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return any(w.url is not None for w in self.webhooks)


def _number(
    section: dict[str, Any],
    key: str,
    default: float,
    where: str,
    *,
    low: float,
    high: float = math.inf,
) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}notify.{key} must be a number, got {value!r}")
    if not low <= value <= high:
        limits = f"at least {low:g}" + (f" and at most {high:g}" if high < math.inf else "")
        raise ConfigError(f"{where}notify.{key} must be {limits}, got {value!r}")
    return float(value)


def _names(spec: dict[str, Any], key: str, where: str, allowed: tuple[str, ...] | None) -> Any:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key} must be a list of names")
    if allowed is not None:
        for v in value:
            if v not in allowed:
                close = difflib.get_close_matches(v, allowed, n=1)
                raise ConfigError(
                    f"{where}.{key}: unknown notification {v!r}",
                    hint=(f"did you mean {close[0]!r}? " if close else "")
                    + f"valid: {', '.join(allowed)}",
                )
    return frozenset(value)


def _check_url(url: str, label: str) -> None:
    """ConfigError when `url` is not an http(s) URL; the message never shows the URL."""
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{label}: the URL is not an http:// or https:// URL (not shown: it is a secret)",
            hint="check the value of the variable or of `url`",
        )


def _webhook(
    index: int, spec: object, where: str, environ: dict[str, str], source: str | None
) -> Webhook:
    at = f"{where}notify.webhooks[{index}]"
    if not isinstance(spec, dict):
        table = config_table("notify.webhooks", source, array=True, named=False)
        raise ConfigError(f"{at} must be a table ({table})")
    for key in spec:
        if key not in _WEBHOOK_KEYS:
            close = difflib.get_close_matches(str(key), _WEBHOOK_KEYS, n=1)
            raise ConfigError(
                f"{at}: unknown key `{key}`",
                hint=f"did you mean `{close[0]}`?"
                if close
                else f"valid: {', '.join(_WEBHOOK_KEYS)}",
            )
    url_env, literal, name = spec.get("url_env"), spec.get("url"), spec.get("name")
    if (url_env is None) == (literal is None):
        raise ConfigError(
            f"{at}: give exactly one of `url_env` (the name of an environment variable holding "
            "the URL) or `url`",
            hint='url_env = "SLACK_WEBHOOK_URL" keeps the secret out of the file',
        )
    for key, value in (("url_env", url_env), ("url", literal), ("name", name)):
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise ConfigError(f"{at}.{key} must be a non-empty string")
    shown = name or (url_env if url_env is not None else "url in the configuration")
    label = f"webhook #{index} ({shown})"
    fmt = spec.get("format", "json")
    if fmt not in FORMATS:
        raise ConfigError(f"{at}.format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    timeout = spec.get("timeout_s", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise ConfigError(f"{at}.timeout_s must be a number of seconds above 0, at most 60")
    url = (
        (environ.get(url_env, "").strip() or None) if url_env is not None else str(literal).strip()
    )
    if url is not None:
        _check_url(url, label)
    return Webhook(
        index=index,
        label=label,
        url=url,
        format=fmt,
        events=_names(spec, "events", at, KINDS) or frozenset(KINDS),
        environments=_names(spec, "environments", at, None),
        timeout_s=float(timeout),
        literal=literal is not None,
    )


def load_notify_config(settings: Settings, environ: dict[str, str] | None = None) -> NotifyConfig:
    """The validated notify section of `settings` (empty when there is none).

    Shape errors are `ConfigError`s (exit 2, like any configuration error); a
    variable that is not set or a URL written in the file is a warning in
    `problems`: a run never fails because its notifications cannot be sent.
    """
    section = settings.raw.get("notify")
    if section is None:
        return NotifyConfig()
    where = f"{settings.source}: " if settings.source else ""
    if not isinstance(section, dict):
        table = config_table("notify", settings.source, named=False)
        raise ConfigError(f"{where}notify must be a table ({table})")
    env = dict(os.environ) if environ is None else environ
    raw_hooks = section.get("webhooks", [])
    if not isinstance(raw_hooks, list):
        raise ConfigError(f"{where}notify.webhooks must be an array of tables")
    hooks = tuple(
        _webhook(i, spec, where, env, settings.source) for i, spec in enumerate(raw_hooks, start=1)
    )
    problems: list[str] = []
    for spec, hook in zip(raw_hooks, hooks, strict=True):
        if hook.url is None:
            problems.append(
                f"{hook.label}: the environment variable {spec['url_env']} is not set or "
                "empty; nothing is sent there"
            )
        elif hook.literal:
            problems.append(
                f"{hook.label}: the webhook URL is written in the configuration file; it is a "
                'secret: move it to an environment variable and use url_env = "NAME"'
            )
    return NotifyConfig(
        webhooks=hooks,
        stuck_after_s=_number(section, "stuck_after_s", 300.0, where, low=1.0),
        stuck_factor=_number(section, "stuck_factor", 3.0, where, low=1.0),
        progress_every_s=_number(section, "progress_every_s", 60.0, where, low=1.0),
        # the exit of a command is held at most this long: a few seconds, not minutes
        exit_wait_s=_number(section, "exit_wait_s", 5.0, where, low=0.0, high=60.0),
        problems=tuple(problems),
    )
