"""pgwarden: safe PostgreSQL schema changes.

The public API, for library users; the CLI calls the same functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgwarden.errors import PgwardenError

if TYPE_CHECKING:
    from pgwarden.analysis.context import Snapshot
    from pgwarden.analysis.effects import Effects, LockMode, RelationLock
    from pgwarden.commands import Context, explain, lint, load_context, load_plan, stats_dump
    from pgwarden.findings import Finding, Severity
    from pgwarden.lint.engine import LintResult
    from pgwarden.pg.cluster import Cluster
    from pgwarden.plan import Plan, Step

    __version__: str

__all__ = [
    "Cluster",
    "Context",
    "Effects",
    "Finding",
    "LintResult",
    "LockMode",
    "PgwardenError",
    "Plan",
    "RelationLock",
    "Severity",
    "Snapshot",
    "Step",
    "__version__",
    "explain",
    "lint",
    "load_context",
    "load_plan",
    "stats_dump",
]

_LAZY = {
    "Cluster": "pgwarden.pg.cluster",
    "Context": "pgwarden.commands",
    "Effects": "pgwarden.analysis.effects",
    "Finding": "pgwarden.findings",
    "LintResult": "pgwarden.lint.engine",
    "LockMode": "pgwarden.analysis.effects",
    "Plan": "pgwarden.plan",
    "RelationLock": "pgwarden.analysis.effects",
    "Severity": "pgwarden.findings",
    "Snapshot": "pgwarden.analysis.context",
    "Step": "pgwarden.plan",
    "explain": "pgwarden.commands",
    "lint": "pgwarden.commands",
    "load_context": "pgwarden.commands",
    "load_plan": "pgwarden.commands",
    "stats_dump": "pgwarden.commands",
}


def __getattr__(name: str) -> object:
    # Lazy, so that `import pgwarden.guard` never drags in the parser (nor
    # importlib.metadata, 30 ms, into every command).
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("pgwarden")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0.0.0"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pgwarden' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
