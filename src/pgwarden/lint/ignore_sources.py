"""Suppress findings by where they come from: migrations you do not own.

```toml
[[tool.pgwarden.ignore_sources]]
path = "*/site-packages/*"        # a glob on the finding's file (shown or absolute path)
reason = "third-party migrations: reviewed upstream"
[[tool.pgwarden.ignore_sources]]
app = "wagtailcore"               # a Django app label
rules = ["PW121"]                 # optional: only these rules (default: every rule)
reason = "run in the maintenance window"
```

Every entry needs a reason; suppressed findings stay listed with it, as for an
inline `pgwarden: ignore` comment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from pgwarden.errors import ConfigError
from pgwarden.lint.engine import LintResult, Suppression
from pgwarden.location import SourceLocation
from pgwarden.settings import Settings

__all__ = ["SourceIgnore", "apply_source_ignores", "source_ignores"]

_EXAMPLE = '[[tool.pgwarden.ignore_sources]] path = "*/site-packages/*" reason = "..."'


@dataclass(frozen=True, slots=True)
class SourceIgnore:
    """One `ignore_sources` entry: findings of files matching `path` or of Django app `app`."""

    reason: str
    path: str | None = None
    app: str | None = None
    rules: tuple[str, ...] = ()  # empty: every rule

    def matches(self, code: str, name: str, path: str, app: str | None) -> bool:
        if self.rules and code not in self.rules and name not in self.rules:
            return False
        if self.app is not None and self.app != app:
            return False
        if self.path is not None:
            shown = path.replace(os.sep, "/")
            absolute = os.path.abspath(path).replace(os.sep, "/")
            return fnmatchcase(shown, self.path) or fnmatchcase(absolute, self.path)
        return True


def source_ignores(cfg: Settings) -> tuple[SourceIgnore, ...]:
    """The `ignore_sources` entries of the configuration (ConfigError when malformed)."""
    raw = cfg.raw.get("ignore_sources", [])
    where = cfg.source or "configuration"
    out: list[SourceIgnore] = []
    for i, entry in enumerate(raw):
        label = f"{where}: ignore_sources[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{label} must be a table", hint=_EXAMPLE)
        unknown = sorted(set(entry) - {"path", "app", "rules", "reason"})
        if unknown:
            raise ConfigError(
                f"{label}: unknown key `{unknown[0]}`", hint="keys: path, app, rules, reason"
            )
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(
                f"{label} gives no reason, so it would hide findings silently",
                hint='say why, e.g. reason = "third-party migrations, reviewed upstream"',
            )
        path, app, rules = entry.get("path"), entry.get("app"), entry.get("rules", [])
        if (path is None) == (app is None):
            raise ConfigError(f"{label} needs exactly one of `path` (a glob) or `app`")
        if not all(isinstance(x, str) for x in (path or "", app or "")):
            raise ConfigError(f"{label}: `path` and `app` must be strings")
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise ConfigError(f'{label}: `rules` must be a list of rule codes, e.g. ["PW121"]')
        out.append(SourceIgnore(reason.strip(), path, app, tuple(rules)))
    return tuple(out)


def apply_source_ignores(
    result: LintResult,
    ignores: tuple[SourceIgnore, ...],
    *,
    app_of: Callable[[str], str | None] = lambda path: None,
    config: str = "configuration",
) -> LintResult:
    """`result` with the findings matching an entry moved to `suppressed`, with its reason."""
    if not ignores:
        return result
    kept = []
    suppressed = list(result.suppressed)
    for f in result.findings:
        hit = next(
            (
                s
                for s in ignores
                if s.matches(f.code, f.name, f.location.path, app_of(f.location.path))
            ),
            None,
        )
        if hit is None or f.code == "PW900":
            kept.append(f)
            continue
        codes = hit.rules or (f.code,)
        sup = Suppression(codes, hit.reason, SourceLocation(config, 1, 1), f.step)
        suppressed.append((f, sup))
    return replace(result, findings=tuple(kept), suppressed=tuple(suppressed))
