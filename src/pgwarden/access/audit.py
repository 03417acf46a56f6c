"""`pgwarden audit`: read the catalog, list each login role's capabilities, judge them.

Read only: one connection, one REPEATABLE READ READ ONLY snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.access.capabilities import OwnerRights, capabilities
from pgwarden.access.fixplan import FixPlan, fix_plan
from pgwarden.access.policy import policy_for
from pgwarden.access.roles import Catalog, read_catalog
from pgwarden.access.verdict import AuditFinding, RoleVerdict, judge
from pgwarden.errors import UsageError
from pgwarden.pg.connect import connect
from pgwarden.settings import RolePolicy, Settings, check_env_name, is_protected

__all__ = ["AuditReport", "audit", "audit_connection"]


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What every login role can do to one database, and the verdict."""

    database: str
    server_version: int
    environment: str | None
    protected: bool
    policy: RolePolicy | None
    connected_as: str
    verdicts: tuple[RoleVerdict, ...]
    general: tuple[AuditFinding, ...]  # about PUBLIC, the policy, restore drills
    catalog: Catalog

    @property
    def findings(self) -> list[AuditFinding]:
        """Every finding: the general ones first, then per role."""
        return [*self.general, *(f for v in self.verdicts for f in v.findings)]

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def with_findings(self, extra: list[AuditFinding]) -> AuditReport:
        return replace(self, general=(*self.general, *extra))

    def fix_plan(self) -> FixPlan | None:
        """The statements that bring the database to the policy (None without a policy)."""
        if self.policy is None:
            return None
        return fix_plan(self.catalog, self.verdicts, self.general, self.policy)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape (docs/json-output.md)."""
        return {
            "database": self.database,
            "server_version": self.server_version,
            "environment": self.environment,
            "protected": self.protected,
            "connected_as": self.connected_as,
            "policy": None
            if self.policy is None
            else {
                "migration": self.policy.migration,
                "application": list(self.policy.application),
                "application_schemas": list(self.policy.application_schemas),
                "readonly": list(self.policy.readonly),
                "break_glass": list(self.policy.break_glass),
                "superusers": list(self.policy.superusers),
            },
            "roles": [
                {
                    "role": v.role,
                    "class": v.role_class,
                    "capabilities": [
                        {
                            "kind": c.kind,
                            "privilege": c.privilege,
                            "object_kind": c.object_kind,
                            "object": c.object,
                            "holder": c.holder,
                            "set_role": c.set_role,
                            "path": list(c.path),
                        }
                        for c in v.capabilities
                    ],
                }
                for v in self.verdicts
            ],
            "findings": [
                {
                    "code": f.code,
                    "name": f.name,
                    "severity": f.severity,
                    "role": f.role,
                    "message": f.message,
                    "help": f.help,
                    "paths": list(f.paths),
                }
                for f in self.findings
            ],
            "summary": {
                "roles": len(self.verdicts),
                "errors": self.count("error"),
                "warnings": self.count("warning"),
                "notes": self.count("note"),
            },
        }


_UNREADABLE = "unreadable"


def _stamp(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[str | None, bool | None]:
    """(environment, protected) of the database's pgwarden stamp, if it has one;
    (`_UNREADABLE`, None) when this role may not read it."""
    try:
        row = conn.execute(sql.SQL("SELECT to_regclass('pgwarden.target') IS NOT NULL")).fetchone()
        if not (row and row[0]):
            return None, None
        row = conn.execute(
            sql.SQL(
                "SELECT environment, (to_jsonb(t) ->> 'protected')::boolean FROM pgwarden.target t"
            )
        ).fetchone()
    except pge.InsufficientPrivilege:
        return _UNREADABLE, None
    if row is None:
        return None, None
    return str(row[0]), None if row[1] is None else bool(row[1])


def audit_connection(
    conn: psycopg.Connection[tuple[object, ...]], *, env: str | None, settings: Settings
) -> AuditReport:
    """Audit the database `conn` is connected to, against the policy of `env` (default:
    the environment its stamp names)."""
    stamped_env, stamped = _stamp(conn)
    if stamped_env == _UNREADABLE:
        if env is None:
            raise UsageError(
                f"this role ({conn.info.user}) may not read the database's pgwarden stamp "
                "(pgwarden.target), so the environment is unknown",
                hint="pass --env NAME, or audit as a role with USAGE on schema pgwarden",
            )
        stamped_env = None
    name = (
        check_env_name(
            env, environments=settings.environments, stamp_env=stamped_env, source=settings.source
        )
        if env is not None
        else stamped_env
    )
    protected = False
    if name is not None:
        protected = is_protected(
            name, settings.environments, stamped if stamped_env == name else None
        )
    cat = read_catalog(conn)
    policy = policy_for(settings, name)
    owners: OwnerRights = {}  # what each SECURITY DEFINER routine's owner can do, once
    caps = {r.name: capabilities(cat, r.name, owners) for r in cat.login_roles()}
    verdicts, general = judge(
        cat, caps, policy, protected=protected, env=name, config=settings.source
    )
    return AuditReport(
        database=cat.database,
        server_version=cat.major,
        environment=name,
        protected=protected,
        policy=policy,
        connected_as=cat.current_user,
        verdicts=tuple(verdicts),
        general=tuple(general),
        catalog=cat,
    )


def audit(database_url: str, *, env: str | None, settings: Settings) -> AuditReport:
    """`audit_connection` on a new connection to `database_url`."""
    with connect(database_url, application_name="pgwarden-audit") as conn:
        return audit_connection(conn, env=env, settings=settings)
