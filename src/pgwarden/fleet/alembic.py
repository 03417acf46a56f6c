"""Alembic revisions as a fleet's change: per target, the revisions after its alembic_version.

Targets of one Alembic project may sit at different revisions. Before anything
runs, every target's `alembic_version` is read (read-only, in parallel); the
revisions each one lacks up to the project's head are rendered to SQL once per
distinct starting revision (Alembic's offline mode is process-global, so this
happens here, on one thread, never in the wave's workers), exactly as `pgwarden
apply --alembic` renders them for one database.

A revision that cannot render offline (it reads data) runs online through
Alembic, as `pgwarden apply --alembic` runs it: its step's runner
(`sources.alembic_online.online_runner`) on the target's own URL. Alembic's
`context`/`op` proxies and the SQLAlchemy connect hook that lends the executor's
connection are process-wide, so the rollout applies targets with such a
revision one at a time (`online_lock`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgwarden.apply.journal import plan_from_records, plan_to_records, step_keys
from pgwarden.errors import ConnectionFailed, PgwardenError, UsageError
from pgwarden.fleet.targets import Redactor, Target
from pgwarden.fleet.words import count
from pgwarden.plan import Plan
from pgwarden.sources.alembic_online import OnlineRevision, Runner

__all__ = ["AlembicChange", "alembic_change", "online_lock", "read_versions"]

_AT_BASE = "base"

# held while a target whose plan runs a revision online is applied (see the module doc)
online_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class AlembicChange:
    """The plan of each group of targets at the same revision, and where each one starts."""

    ini: str
    heads: tuple[str, ...]
    fingerprint: str  # of the project's head and revision files: the rollout's change
    plans: Mapping[str, Plan]  # start key ("base" or the revision ids) -> its plan
    revisions: Mapping[str, tuple[str, ...]]  # start key -> the revisions its plan runs
    before: Mapping[str, tuple[str, ...]]  # target name -> its alembic_version
    # start key -> its revisions that run online (their plan steps are placeholders)
    online: Mapping[str, tuple[OnlineRevision, ...]] = field(default_factory=dict)

    def key_of(self, target: str) -> str:
        return start_key(self.before[target])

    def to_json(self) -> dict[str, Any]:
        """What the rollout journal keeps (enough for `fleet resume` and `fleet status`)."""
        return {
            "ini": self.ini,
            "heads": list(self.heads),
            "before": {n: list(v) for n, v in self.before.items()},
            "plans": {
                k: {
                    "plan": plan_to_records(p, step_keys(p)),
                    "fingerprint": p.fingerprint(),
                    "server_version": p.server_version,
                    "revisions": list(self.revisions[k]),
                    "online": [asdict(o) for o in self.online.get(k, ())],
                }
                for k, p in self.plans.items()
            },
        }

    @staticmethod
    def from_json(d: Mapping[str, Any], fingerprint: str) -> AlembicChange:
        plans = d["plans"]
        return AlembicChange(
            str(d["ini"]),
            tuple(d["heads"]),
            fingerprint,
            {k: plan_from_records(v["plan"], v.get("server_version")) for k, v in plans.items()},
            {k: tuple(v["revisions"]) for k, v in plans.items()},
            {n: tuple(v) for n, v in d["before"].items()},
            {
                k: tuple(
                    OnlineRevision(o["revision"], o["path"], tuple(o["after"]), o["sql"])
                    for o in v.get("online", ())
                )
                for k, v in plans.items()
            },
        )

    def runners(self, target: str, dsn: str) -> dict[str, Runner]:
        """The runners of the target's online revisions, on its own URL (empty: none)."""
        from pgwarden.sources.alembic import _sqlalchemy_url
        from pgwarden.sources.alembic_online import online_runner

        return {
            o.sql: online_runner(self.ini, _sqlalchemy_url(dsn), o)
            for o in self.online.get(self.key_of(target), ())
        }

    def moved(self, target: str, now: Sequence[str], *, touched: bool) -> str | None:
        """Why `target`, now at `now`, must not run its plan (None: it may).

        It may when it is where the rollout planned it from, or, once this rollout has
        applied to it (`touched`: a failed, cancelled or cut-off attempt), part-way through
        its plan: its own pgwarden history skips what that attempt committed.
        """
        before = self.before[target]
        if tuple(now) == before:
            return None
        if touched and len(now) == 1 and now[0] in self.revisions[self.key_of(target)]:
            return None
        return (
            f"alembic_version is {', '.join(now) or 'empty'}, but the rollout planned this "
            f"target from {', '.join(before) or 'base'}: something else migrated it meanwhile"
        )


def start_key(version: Sequence[str]) -> str:
    """The plan key of targets whose alembic_version is `version`."""
    return ",".join(version) or _AT_BASE


def read_versions(
    targets: Sequence[Target], *, workers: int, redact: Redactor
) -> dict[str, tuple[str, ...]]:
    """Each target's alembic_version (empty: no revision yet); `UsageError` naming the
    targets that cannot be read."""
    from pgwarden.sources.alembic import current_revisions

    def one(t: Target) -> tuple[str, ...] | str:
        try:
            return tuple(current_revisions(t.dsn))
        except ConnectionFailed as exc:
            return redact(t.cannot_connect(exc))
        except Exception as exc:  # unreachable, no right to read: named, nothing ran
            text = exc.message if isinstance(exc, PgwardenError) else str(exc).strip()
            return redact(text.splitlines()[0] if text else type(exc).__name__)

    with ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(targets))), thread_name_prefix="pgwarden-alembic"
    ) as pool:
        found = dict(zip((t.name for t in targets), pool.map(one, targets), strict=True))
    bad = {n: v for n, v in found.items() if isinstance(v, str)}
    if bad:
        first = next(iter(bad))
        raise UsageError(
            f"cannot read alembic_version of {count(len(bad), 'target')} "
            f"({', '.join(list(bad)[:5])}); "
            f"{first}: {bad[first]}",
            hint="each target's alembic_version says which revisions it lacks; nothing ran",
        )
    return {n: v for n, v in found.items() if not isinstance(v, str)}


def _project_fingerprint(script: object, heads: Sequence[str]) -> str:
    """sha256 of the heads and every revision file's text: an edited revision is another change."""
    h = hashlib.sha256(",".join(heads).encode())
    for sc in sorted(script.walk_revisions(), key=lambda s: s.revision):  # type: ignore[attr-defined]
        h.update(f"\n{sc.revision}\n".encode())
        h.update(Path(sc.path).read_bytes())
    return h.hexdigest()


def alembic_change(
    ini: str | os.PathLike[str], versions: Mapping[str, tuple[str, ...]]
) -> AlembicChange:
    """Render, once per distinct alembic_version among `versions`, the revisions up to head.

    A target at several heads (branches deployed, their merge not yet) gets what `alembic
    upgrade head` runs there. Refused (`UsageError`, exit 2, before anything runs): a
    target at a revision the project does not have.
    """
    from pgwarden.sources.alembic import (
        _config,
        _script_directory,
        build_alembic_plan,
        read_alembic_sources,
        require_alembic,
    )

    require_alembic()
    script = _script_directory(_config(ini, None, None), ini)
    heads = tuple(sorted(script.get_heads()))
    plans: dict[str, Plan] = {}
    revisions: dict[str, tuple[str, ...]] = {}
    online: dict[str, tuple[OnlineRevision, ...]] = {}
    groups: dict[str, list[str]] = {}
    for name, version in versions.items():
        groups.setdefault(start_key(version), []).append(name)
    for key, names in groups.items():
        at = versions[names[0]]
        who = f"target {names[0]}" + (f" (and {len(names) - 1} more)" if len(names) > 1 else "")
        try:
            sources = read_alembic_sources(
                ini, applied=at, applied_from=f"{who}'s alembic_version", strict=True
            )
        except PgwardenError as exc:
            text = exc.message if who in exc.message else f"{who}: {exc.message}"
            hint = exc.hint
            if hint and ("--range" in hint or "--stats" in hint):  # apply's and lint's options
                hint = "check that target's alembic_version against the project; nothing ran"
            raise UsageError(text, hint=hint) from None
        plans[key] = build_alembic_plan(sources.sources)
        revisions[key] = sources.revisions
        online[key] = sources.online
    return AlembicChange(
        str(ini),
        heads,
        _project_fingerprint(script, heads),
        plans,
        revisions,
        dict(versions),
        online,
    )
