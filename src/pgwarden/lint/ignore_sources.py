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
inline `pgwarden: ignore` comment, and the lint summary counts them per entry
and reason (`suppressed_summary`). `path` applies to every source (SQL files,
Alembic revisions, Django migrations); `app` to Django migrations only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from pgwarden.errors import ConfigError
from pgwarden.lint.engine import LintResult, Suppression
from pgwarden.location import SourceLocation
from pgwarden.settings import Settings, config_table

__all__ = [
    "SourceIgnore",
    "SuppressedGroup",
    "apply_source_ignores",
    "source_ignores",
    "suppressed_summary",
]


@dataclass(frozen=True, slots=True)
class SourceIgnore:
    """One `ignore_sources` entry: findings of files matching `path` or of Django app `app`."""

    reason: str
    path: str | None = None
    app: str | None = None
    rules: tuple[str, ...] = ()  # empty: every rule

    def describe(self) -> str:
        """The entry as the summary names it: `path "*/site-packages/*" rules PW121`."""
        what = f'path "{self.path}"' if self.path is not None else f'app "{self.app}"'
        return what + (f" rules {', '.join(self.rules)}" if self.rules else "")

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
            table = config_table("ignore_sources", cfg.source, array=True, named=False)
            example = f'{table} path = "*/site-packages/*" reason = "..."'
            raise ConfigError(f"{label} must be a table", hint=example)
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
        # line 0: declared in the configuration, not at a line of a migration
        where = SourceLocation(f"{config}: ignore_sources {hit.describe()}", 0, 0)
        sup = Suppression(codes, hit.reason, where, f.step)
        suppressed.append((f, sup))
    return replace(result, findings=tuple(kept), suppressed=tuple(suppressed))


@dataclass(frozen=True, slots=True)
class SuppressedGroup:
    """Suppressed findings that share where they were suppressed and why."""

    count: int
    by: str  # "inline comment", or the configuration entry
    reason: str


def suppressed_summary(result: LintResult) -> tuple[SuppressedGroup, ...]:
    """The suppressed findings counted per suppression (entry or inline) and reason."""
    counts: dict[tuple[str, str], int] = {}
    for _finding, sup in result.suppressed:
        by = sup.location.path if sup.location.line == 0 else "inline comment"
        counts[(by, sup.reason)] = counts.get((by, sup.reason), 0) + 1
    groups = [SuppressedGroup(n, by, reason) for (by, reason), n in counts.items()]
    return tuple(sorted(groups, key=lambda g: (-g.count, g.by, g.reason)))
