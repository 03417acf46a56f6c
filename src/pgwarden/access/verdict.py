"""Judge each login role's capabilities against the declared policy.

In a protected environment a role that can write or change schema beyond its
class, a superuser not declared as one, and a role attribute beyond its
class are errors; an undeclared login role is a warning. Elsewhere the same
findings are warnings. Without a policy only grants to PUBLIC that let every
role create or write are reported (warnings), with a note that no policy is
declared.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from pgwarden.access.capabilities import OTHER, Capability, public_capabilities, reach
from pgwarden.access.policy import class_of, declared_roles
from pgwarden.access.roles import PUBLIC, Catalog
from pgwarden.settings import RolePolicy, config_table

__all__ = ["RULES", "AuditFinding", "Missing", "RoleVerdict", "judge", "migration_missing"]

# code -> (name, what it means), for SARIF and the docs
RULES: dict[str, tuple[str, str]] = {
    "PW501": (
        "undeclared-superuser",
        "a login role is, or can become, a superuser the policy does not declare",
    ),
    "PW502": (
        "can-change-schema",
        "a login role can drop or alter objects (owns them), create "
        "in a schema or the database, or add triggers or foreign keys, beyond its class",
    ),
    "PW503": (
        "can-write",
        "a login role can insert, update, delete or truncate rows beyond "
        "its class (now, or on tables created later through default privileges)",
    ),
    "PW504": (
        "role-attribute",
        "a login role holds CREATEROLE, CREATEDB, BYPASSRLS or REPLICATION beyond its class",
    ),
    "PW505": ("public-grant", "PUBLIC (every role) may create or write"),
    "PW506": ("undeclared-role", "a login role the policy does not name"),
    "PW507": (
        "policy-mismatch",
        "the policy names a role that is missing or cannot log in, or declares no migration role",
    ),
    "PW508": ("no-policy", "no role policy is declared for this environment"),
    "PW509": (
        "restore-drill-overdue",
        "the newest verified restore drill of this database is "
        "older than backup.drill_max_age_days, or there is none",
    ),
    "PW510": (
        "migration-cannot-create",
        "the migration role cannot create in an application schema (or, before pgwarden's "
        "schema exists, in the database): the first pgwarden apply fails",
    ),
}

_WRITE = frozenset({"write", "write_all", "future_write"})
_APP_DML = frozenset({"INSERT", "UPDATE", "DELETE"})


@dataclass(frozen=True, slots=True)
class AuditFinding:
    """One verdict about one role (or the policy, or the database)."""

    code: str
    severity: str  # error, warning, note
    role: str | None
    message: str
    help: str
    paths: tuple[str, ...] = ()  # why: one path per capability, shortest first
    capabilities: tuple[Capability, ...] = field(default=(), repr=False)

    @property
    def name(self) -> str:
        return RULES[self.code][0]


@dataclass(frozen=True, slots=True)
class RoleVerdict:
    """One login role: its class, what it can do, and the findings about it."""

    role: str
    role_class: str  # migration, application, readonly, break_glass, superuser, undeclared,
    #                  or "-" without a policy
    capabilities: tuple[Capability, ...]
    findings: tuple[AuditFinding, ...]


def _allowed(cap: Capability, cls: str, policy: RolePolicy, is_declared_superuser: bool) -> bool:
    """Whether a role of class `cls` may have `cap`. A SECURITY DEFINER routine is judged by
    what its owner can do, as if the role could do it itself."""
    if is_declared_superuser:
        return True
    if cap.kind == "definer":
        return _definer_code(cap.inner, cls, policy, {}) is None
    if cap.kind == "superuser":
        return cls == "break_glass" and cap.holder in policy.superusers
    if cap.kind in OTHER:
        return True
    if cls == "break_glass":
        return True
    if cls == "migration":
        return cap.kind != "createrole"
    if cls == "application":
        if cap.kind == "write" and cap.object_kind == "sequence":
            return cap.schema in policy.application_schemas
        if cap.kind in ("write", "future_write"):
            return cap.schema in policy.application_schemas and cap.privilege in _APP_DML
        return False
    return False


def _summary(caps: Sequence[Capability], limit: int = 3) -> str:
    objs = list(dict.fromkeys(c.what for c in caps))
    more = f" and {len(objs) - limit} more" if len(objs) > limit else ""
    return ", ".join(objs[:limit]) + more


def _holders(caps: Sequence[Capability]) -> str:
    # a routine's `what` names its owner already
    via = sorted({c.holder for c in caps if c.holder != c.role and c.kind != "definer"})
    return f" (through {', '.join(via)})" if via else ""


# (id of a routine owner's rights, class) -> `_definer_code`; the routines of one owner
# share one `inner` tuple, so each is judged once per class (while the tuples are alive)
_DefinerMemo = dict[tuple[int, str], str | None]


def _definer_code(
    inner: tuple[Capability, ...], cls: str, policy: RolePolicy, memo: _DefinerMemo
) -> str | None:
    """The code of the worst of a routine owner's rights (`inner`) that class `cls` may not
    have (as if the role had them itself); None when it may have them all."""
    key = (id(inner), cls)
    if key not in memo:
        codes = [_by_code(c) for c in inner if not _allowed(c, cls, policy, False)]
        memo[key] = min(codes, default=None)
    return memo[key]


def _by_code(cap: Capability) -> str:
    if cap.kind == "superuser":
        return "PW501"
    if cap.kind in ("createrole", "createdb", "bypassrls", "replication"):
        return "PW504"
    if cap.kind in _WRITE:
        return "PW503"
    return "PW502"


_HELP = {
    "PW501": "remove SUPERUSER (ALTER ROLE ... NOSUPERUSER) or the membership that leads to "
    "it, or declare the role in superusers",
    "PW502": "make the migration role own every object (REASSIGN OWNED BY ... TO <migration>) "
    "and revoke CREATE and the membership that grants it; `pgwarden audit --fix-plan` writes it",
    "PW503": "revoke the write privileges (or the membership or default privileges that grant "
    "them); application roles may write only in application_schemas",
    "PW504": "ALTER ROLE ... NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION",
}


def _route_help(caps: Sequence[Capability]) -> str:
    """What else to do when some of `caps` come through a SECURITY DEFINER routine or a
    self-grant CREATEROLE allows."""
    extra = []
    if any(c.route == "definer" for c in caps):
        extra.append(
            "a SECURITY DEFINER routine runs with its owner's rights: REVOKE EXECUTE ON "
            "ROUTINE ... FROM PUBLIC (and the roles that should not run it)"
        )
    if any(c.route == "createrole" for c in caps):
        extra.append(
            "before PostgreSQL 16 CREATEROLE may grant any non-superuser role to itself: "
            "ALTER ROLE ... NOCREATEROLE"
        )
    return "".join(f"; {e}" for e in extra)


def _help(code: str, caps: Sequence[Capability]) -> str:
    """The code's help, and what to do about the routes some of `caps` take; only the
    latter when every one of them takes such a route (its own fix is the whole fix)."""
    extra = _route_help(caps)
    if extra and all(c.route != "grant" for c in caps):
        return extra.removeprefix("; ")
    return _HELP[code] + extra


def _judge_role(
    cat: Catalog,
    login: str,
    caps: Sequence[Capability],
    policy: RolePolicy,
    protected: bool,
    memo: _DefinerMemo,
) -> RoleVerdict:
    cls = class_of(policy, login)
    declared_super = login in policy.superusers
    severity = "error" if protected else "warning"
    bad: dict[str, list[Capability]] = {}
    for cap in caps:
        if cap.kind == "definer" and not declared_super:  # judged by the owner's rights
            code = _definer_code(cap.inner, cls, policy, memo)
            if code is not None:
                bad.setdefault(code, []).append(cap)
        elif not _allowed(cap, cls, policy, declared_super):
            bad.setdefault(_by_code(cap), []).append(cap)
    findings: list[AuditFinding] = []
    for code in sorted(bad):
        group = bad[code]
        what = {
            "PW501": "can act as a superuser",
            "PW502": "can change schema",
            "PW503": "can write data",
            "PW504": "holds role attributes",
        }[code]
        sev = severity
        if code == "PW504" and all(c.kind == "replication" for c in group):
            sev = "warning"
        label = "undeclared role" if cls == "undeclared" else f"{cls.replace('_', '-')} role"
        findings.append(
            AuditFinding(
                code,
                sev,
                login,
                f"{label} {login} {what}: {_summary(group)}{_holders(group)}",
                _help(code, group),
                tuple(dict.fromkeys(c.why for c in sorted(group, key=lambda c: len(c.path)))),
                tuple(group),
            )
        )
    if cls == "undeclared" and not declared_super:
        findings.append(
            AuditFinding(
                "PW506",
                "warning",
                login,
                f"login role {login} is not declared in the role policy",
                "add it to migration, application, readonly, break_glass or superusers, or "
                "drop it (or ALTER ROLE ... NOLOGIN)",
            )
        )
    shown = "superuser" if declared_super and cls == "undeclared" else cls
    return RoleVerdict(login, shown, tuple(caps), tuple(findings))


def _policy_findings(cat: Catalog, policy: RolePolicy) -> list[AuditFinding]:
    out: list[AuditFinding] = []
    if not policy.migration:
        out.append(
            AuditFinding(
                "PW507",
                "warning",
                None,
                "the role policy declares no migration role: nobody may change schema",
                "set roles.migration to the role pgwarden apply connects as",
            )
        )
    for name in declared_roles(policy):
        role = cat.roles.get(name)
        if role is None:
            near = difflib.get_close_matches(
                name, [r for r in cat.roles if not r.startswith("pg_")], n=1, cutoff=0.6
            )
            out.append(
                AuditFinding(
                    "PW507",
                    "warning",
                    name,
                    f"the role policy names {name}, which does not exist on this server"
                    + (f" (did you mean {near[0]}?)" if near else ""),
                    "fix the name in the configuration, or create the role",
                )
            )
        # a NOLOGIN migration role is fine: apply connects as a member that SETs it
    return out


@dataclass(frozen=True, slots=True)
class Missing:
    """Privileges the migration role lacks on a schema or the database to apply changes."""

    object_kind: str  # schema, database
    name: str  # as stored
    privileges: tuple[str, ...]  # USAGE, CREATE
    owner: str  # who may grant them (besides a superuser)
    public_create: bool = False  # PUBLIC may CREATE there (PW505: the fix revokes it)


def migration_missing(cat: Catalog, policy: RolePolicy) -> list[Missing]:
    """What the migration role (as `current_user`: its own and inherited rights) lacks to
    create tables in each existing application schema and, while pgwarden's schema does
    not exist, to create it in the database (CREATE there). PUBLIC's CREATE does not count:
    it is a finding of its own (PW505), which the fix plan revokes."""
    role = cat.roles.get(policy.migration or "")
    if role is None or role.superuser:
        return []
    holders = {r for r, x in reach(cat, role.name).items() if not x.set_role}
    held = {
        (g.kind, g.schema if g.kind == "schema" else g.name, g.privilege)
        for g in cat.grants
        if g.kind in ("schema", "database")
        and (g.grantee in holders or (g.grantee == PUBLIC and g.privilege == "USAGE"))
    }
    schemas = {o.schema: o.owner for o in cat.owned if o.kind == "schema" and o.schema}
    out: list[Missing] = []
    public = {
        (g.kind, g.schema if g.kind == "schema" else g.name)
        for g in cat.grants
        if g.grantee == PUBLIC and g.privilege == "CREATE"
    }
    for schema in policy.application_schemas:
        if schema not in schemas:
            continue
        lacks = tuple(p for p in ("USAGE", "CREATE") if ("schema", schema, p) not in held)
        if lacks:
            owner = _owner_name(cat, schemas[schema])
            out.append(Missing("schema", schema, lacks, owner, ("schema", schema) in public))
    if "pgwarden" not in schemas and ("database", cat.database, "CREATE") not in held:
        by_public = ("database", cat.database) in public
        out.append(Missing("database", cat.database, ("CREATE",), cat.database_owner, by_public))
    return out


def _owner_name(cat: Catalog, owner: str) -> str:
    """The role that owns an object; pg_database_owner is the database's owner."""
    return cat.database_owner if owner == "pg_database_owner" else owner


def _migration_findings(cat: Catalog, policy: RolePolicy, protected: bool) -> list[AuditFinding]:
    """PW510: the migration role cannot create where `pgwarden apply` will."""
    missing = migration_missing(cat, policy)
    if not missing:
        return []
    who = policy.migration or ""
    where = "; ".join(
        (
            f"in schema {m.name} (no {' or '.join(m.privileges)}"
            if m.object_kind == "schema"
            else f"pgwarden's schema in database {m.name} (no CREATE on the database"
        )
        + (" but PUBLIC's, which is revoked as PW505)" if m.public_create else ")")
        for m in missing
    )
    grants = "; ".join(
        f"GRANT {', '.join(m.privileges)} ON {m.object_kind.upper()} {m.name} TO "
        f"{_quoted(who)} (as {m.owner})"
        for m in missing
    )
    return [
        AuditFinding(
            "PW510",
            "error" if protected else "warning",
            who,
            f"migration role {who} cannot create {where}: the first `pgwarden apply` fails "
            "with permission denied",
            f"{grants}; PostgreSQL 15 and later no longer let PUBLIC create in schema public; "
            "`pgwarden audit --fix-plan` writes it",
        )
    ]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _public_findings(cat: Catalog, protected: bool) -> list[AuditFinding]:
    """Grants to PUBLIC that let every role create or write (reported once, not per role)."""
    seen: dict[tuple[str, str], Capability] = {}
    for c in public_capabilities(cat):
        seen.setdefault((c.privilege, c.object), c)
    if not seen:
        return []
    group = list(seen.values())
    return [
        AuditFinding(
            "PW505",
            "error" if protected else "warning",
            PUBLIC,
            f"PUBLIC (every role, including ones created later) may {_summary(group)}",
            "REVOKE it FROM PUBLIC and grant it to the roles that need it"
            + (
                " (PostgreSQL before 15 grants CREATE on schema public to PUBLIC by default)"
                if any(c.kind == "schema_create" for c in group)
                else ""
            )
            + _route_help(group),
            tuple(c.why for c in group),
            tuple(group),
        )
    ]


def judge(
    cat: Catalog,
    caps: dict[str, list[Capability]],
    policy: RolePolicy | None,
    *,
    protected: bool,
    env: str | None,
    config: str | None = None,
) -> tuple[list[RoleVerdict], list[AuditFinding]]:
    """Verdicts per login role, and findings about the policy and PUBLIC; `config` is the
    config file in use (`Settings.source`), named in the help."""
    if policy is None:
        verdicts = [RoleVerdict(r, "-", tuple(cs), ()) for r, cs in sorted(caps.items())]
        general = _public_findings(cat, protected=False)
        roles = config_table(f"environments.{env or '<env>'}.roles", config)
        general.append(
            AuditFinding(
                "PW508",
                "note",
                None,
                f"no role policy declared for {env}"
                if env
                else "no environment given "
                "(--env) and the database is not stamped: no role policy to judge against",
                f"declare {roles} (docs/audit.md)",
            )
        )
        return verdicts, general
    memo: _DefinerMemo = {}
    verdicts = [_judge_role(cat, r, cs, policy, protected, memo) for r, cs in sorted(caps.items())]
    general = (
        _policy_findings(cat, policy)
        + _migration_findings(cat, policy, protected)
        + _public_findings(cat, protected)
    )
    return verdicts, general
