"""`upgrade check`: every check, in one read-only pass, plus pg_upgrade --check on a copy.

1. The catalog checks on the live database (read-only session): the logical
   route's readiness, prepared transactions, what pg_upgrade refuses,
   extensions and libraries against the target binaries, collations.
2. Unless `copy="none"`: a copy (schema-only dump by default, or the newest
   verified backup, or a full dump) restored into a throwaway cluster of the
   source major, a fresh cluster of the target major, each collation used by
   an index compared between the two, and `pg_upgrade --check` between them.
   Its failed checks and the objects it lists become one more issue.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import conninfo

from pgwarden.backup.catalogue import Catalogue
from pgwarden.errors import (
    ClusterError,
    ConnectionFailed,
    DatabaseError,
    EnvironmentProblem,
    InputError,
    UsageError,
)
from pgwarden.events import Observer, Phase
from pgwarden.pg.binaries import Installation, find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.pg.connect import describe_dsn
from pgwarden.upgrade.check import (
    Issue,
    Route,
    Severity,
    logical_database_readiness,
    logical_readiness,
    new_issue,
    prepared_transactions,
)
from pgwarden.upgrade.check_collations import (
    UsedCollation,
    collation_issues,
    target_version_changes,
    used_collations,
)
from pgwarden.upgrade.check_extensions import extension_issues, target_files
from pgwarden.upgrade.check_types import cluster_readiness, database_readiness
from pgwarden.upgrade.pg_upgrade import UpgradeOutcome, run_pg_upgrade
from pgwarden.upgrade.rehearse_copy import (
    CopyInfo,
    SourceFacts,
    open_source,
    read_source,
    restored_copy,
)

__all__ = ["CheckOptions", "CheckReport", "check_upgrade", "target_for"]

ROUTES: tuple[Route, ...] = ("pg_upgrade", "logical")


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What `upgrade check` looks at."""

    target_major: int
    copy: str = "schema"  # none, schema, dump, backup, auto
    catalogue: Catalogue | None = None
    backup_id: str | None = None
    jobs: int = 2
    routes: tuple[Route, ...] = ROUTES
    all_databases: bool = False  # also the cluster's other databases (pg_upgrade takes all)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Everything `upgrade check` found."""

    database: str
    source_version: str
    source_major: int
    target_major: int
    target: str
    routes: tuple[Route, ...]
    issues: tuple[Issue, ...]
    pg_upgrade: UpgradeOutcome | None
    copy: CopyInfo | None
    seconds: float

    def blockers(self, route: Route) -> list[Issue]:
        return [i for i in self.issues if i.blocks(route)]

    @property
    def blocked(self) -> bool:
        """Whether any route asked about is blocked (exit code 1)."""
        return any(self.blockers(r) for r in self.routes)

    def verdicts(self) -> dict[str, str]:
        return {r: "blocked" if self.blockers(r) else "ready" for r in self.routes}

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "source": {"version": self.source_version, "major": self.source_major},
            "target": {"major": self.target_major, "binaries": self.target},
            "routes": self.verdicts(),
            "issues": [i.to_dict() for i in self.issues],
            "pg_upgrade_check": None if self.pg_upgrade is None else self.pg_upgrade.to_dict(),
            "copy": None if self.copy is None else self.copy.to_dict(),
            "seconds": round(self.seconds, 3),
        }


def target_for(source_major: int, target_major: int) -> None:
    """Refuse a target that is not a newer major."""
    if target_major <= source_major:
        raise UsageError(
            f"--to {target_major} is not newer than the source's PostgreSQL {source_major}",
            hint="give the major version to upgrade to, e.g. --to 18",
        )


def _pg_upgrade_issue(outcome: UpgradeOutcome) -> Issue | None:
    if outcome.ok:
        return None
    objects = [
        f"{name}: {line.strip()}"
        for name, text in outcome.reports
        for line in text.splitlines()
        if line.strip() and not line.startswith("In database:")
    ]
    checks = "; ".join(outcome.failed_checks) or "see the message"
    return new_issue(
        "pg-upgrade-check",
        Severity.BLOCKER,
        ("pg_upgrade",),
        f"pg_upgrade --check failed on the restored copy ({checks}): {outcome.message}",
        "fix the objects listed, then run `pgwarden upgrade check` again",
        objects,
    )


_FINDING_HINTS = {
    "extension-updates": "after the upgrade, run ALTER EXTENSION ... UPDATE for each "
    "extension listed, in its database",
    "objects-affected-by-unicode-update": "after the upgrade, REINDEX the indexes and "
    "validate the constraints (refresh the materialized views) of the relations listed: "
    "their expressions depend on Unicode behaviour that changed",
}


def _finding_issues(outcome: UpgradeOutcome) -> list[Issue]:
    """The checks pg_upgrade --check passed with a warning or a notice, as issues."""
    return [
        new_issue(
            f"pg-upgrade-{f.code}",
            Severity.WARNING if f.level == "warning" else Severity.NOTE,
            ("pg_upgrade",),
            f"pg_upgrade --check ({f.check}: {f.level}): {f.message}",
            _FINDING_HINTS.get(
                f.code,
                "pg_upgrade goes ahead; deal with the objects listed (see its message) "
                "after the upgrade",
            ),
            list(f.objects),
        )
        for f in outcome.findings
    ]


def _order(issues: list[Issue]) -> tuple[Issue, ...]:
    rank = {Severity.BLOCKER: 0, Severity.WARNING: 1, Severity.NOTE: 2}
    return tuple(sorted(issues, key=lambda i: rank[i.severity]))


def _other_database(
    dsn: str, name: str, source: int, target_major: int, target: Installation
) -> list[Issue]:
    """The per-database checks of another database of the same cluster."""
    other = conninfo.make_conninfo(dsn, dbname=name)
    try:
        conn = open_source(other)
    except ConnectionFailed as exc:
        return [
            dataclasses.replace(
                new_issue(
                    "database-not-checked",
                    Severity.WARNING,
                    ROUTES,
                    f"could not read database {name}: {exc.message}",
                    "grant this role CONNECT on it, or check it with its own --database-url",
                ),
                database=name,
            )
        ]
    with conn:
        try:
            found = [
                *database_readiness(conn, source, target_major),
                *extension_issues(conn, target),
                *collation_issues(conn, target_files(target), target_major),
                *logical_database_readiness(conn),
            ]
        except psycopg.Error as exc:
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            found = [
                new_issue(
                    "database-not-checked",
                    Severity.WARNING,
                    ROUTES,
                    f"could not read the catalog of database {name}: {text}",
                    "check it with its own --database-url and a role that can read it",
                )
            ]
    return [dataclasses.replace(i, database=name) for i in found]


def _on_a_copy(
    dsn: str,
    facts: SourceFacts,
    options: CheckOptions,
    target: Installation,
    used: list[UsedCollation],
    observer: Observer | None,
) -> tuple[UpgradeOutcome, CopyInfo, list[Issue]]:
    """pg_upgrade --check (and the collation versions) between a copy and a new cluster."""
    emit = observer or (lambda _e: None)
    files = target_files(target)
    issues: list[Issue] = []
    with restored_copy(
        dsn,
        facts,
        kind=options.copy,
        catalogue=options.catalogue,
        backup_id=options.backup_id,
        jobs=options.jobs,
        observer=observer,
        schema_fallback=True,
    ) as restored:
        emit(Phase(message=f"starting a fresh PostgreSQL {target.version} cluster"))
        with Cluster.start(target) as new:
            # ICU collations against a target without ICU are reported already.
            probe = [c for c in used if files.has_icu or c.provider != "icu"]
            if probe:
                issues += target_version_changes(probe, new.dsn())
            emit(Phase(message="pg_upgrade --check between the copy and the new cluster"))
            outcome = run_pg_upgrade(restored.cluster, new, check_only=True, jobs=options.jobs)
    found = _pg_upgrade_issue(outcome)
    if found is not None:
        issues.append(found)
    issues += _finding_issues(outcome)
    return outcome, restored.info, issues


def check_upgrade(
    dsn: str, options: CheckOptions, *, observer: Observer | None = None
) -> CheckReport:
    """Run every check of the database at `dsn` for an upgrade to `options.target_major`."""
    emit = observer or (lambda _e: None)
    started = time.monotonic()
    with open_source(dsn) as conn:
        facts = read_source(conn)
        # The version first: an older --to is refused as such, installed or not.
        target_for(facts.major, options.target_major)
        target = find_installation(options.target_major)
        emit(Phase(message=f"reading the catalog of {describe_dsn(dsn)}"))
        files = target_files(target)
        try:
            issues: list[Issue] = [
                *prepared_transactions(conn),
                *database_readiness(conn, facts.major, options.target_major),
                *cluster_readiness(conn),
                *extension_issues(conn, target),
                *collation_issues(conn, files, options.target_major),
                *logical_readiness(conn),
            ]
            used = used_collations(conn)
        except psycopg.Error as exc:
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DatabaseError(
                f"reading the catalog of {describe_dsn(dsn)} failed: {text}",
                hint="connect as a role that can read the catalog (a superuser, or a member "
                "of pg_read_all_settings and pg_read_all_stats)",
                sqlstate=exc.sqlstate,
            ) from None
        others = (
            [
                str(r[0])
                for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datallowconn "
                    "AND datname <> current_database() ORDER BY 1"
                ).fetchall()
            ]
            if options.all_databases
            else []
        )
    for name in others:
        emit(Phase(message=f"reading the catalog of database {name}"))
        issues += _other_database(dsn, name, facts.major, options.target_major, target)
    outcome: UpgradeOutcome | None = None
    copy: CopyInfo | None = None
    if options.copy != "none":
        try:
            outcome, copy, more = _on_a_copy(dsn, facts, options, target, used, observer)
        except (InputError, EnvironmentProblem, ClusterError, DatabaseError) as exc:
            issues.append(
                new_issue(
                    "pg-upgrade-check-not-run",
                    Severity.BLOCKER,
                    ("pg_upgrade",),
                    f"pg_upgrade --check could not run on a copy: {exc.message}",
                    (exc.hint + "; " if exc.hint else "")
                    + "or pass --copy none to rely on the catalog checks alone",
                )
            )
        else:
            issues += more
    return CheckReport(
        database=describe_dsn(dsn),
        source_version=facts.version,
        source_major=facts.major,
        target_major=options.target_major,
        target=str(target),
        routes=options.routes,
        issues=_order(issues),
        pg_upgrade=outcome,
        copy=copy,
        seconds=time.monotonic() - started,
    )
