"""The SQL that brings a database to its role policy, ordered so the application keeps working.

0. Each relation of a role through which a login role can drop or alter
   objects beyond its class moves to the migration role in a short transaction
   of its own, together with what the application (and read-only) roles use
   through its owner today (DML, USAGE on its sequences; SELECT), no more:
   `ALTER TABLE ... OWNER` takes ACCESS EXCLUSIVE, so one
   transaction over every table would hold them all at once.
1. What else they own moves too: `REASSIGN OWNED BY <role> TO <migration>`
   (schemas, functions, the database: the database owner is the implicit
   member of `pg_database_owner`, which owns schema public from PostgreSQL 15).
2. Application roles keep what they use today and the policy allows, no more: per
   table and sequence of their schemas the DML (USAGE/SELECT) they hold through
   something the plan may take away (an inherited role's ownership or grant, PUBLIC's
   write), USAGE on the schemas they use, and DML on what the migration role creates
   later (`ALTER DEFAULT PRIVILEGES FOR ROLE <migration>`). Read-only roles that lose a
   membership keep SELECT the same way.
3. Then the revokes: memberships that lead to capabilities beyond a role's
   class, privileges on tables (on columns too), CREATE on schemas and the
   database (also from PUBLIC), default privileges that would grant them on new
   tables, and role attributes (`ALTER ROLE ... NOSUPERUSER ...`; before 16
   NOCREATEROLE also cuts what CREATEROLE could grant itself).
4. EXECUTE on SECURITY DEFINER routines that give a role its owner's rights
   beyond its class, from every grantee it reaches the routine through (PUBLIC,
   the role, a group); granted back to the login roles whose class allows them.
   A group keeps its grant when the membership the path goes through is revoked
   in 3. When PUBLIC
   loses it, so does PUBLIC on the routines the owner creates later
   (`ALTER DEFAULT PRIVILEGES FOR ROLE <owner> REVOKE EXECUTE ON ROUTINES FROM
   PUBLIC`, global: PostgreSQL's built-in grant cannot be revoked per schema),
   and the roles granted back get it on them. The comment names the
   application roles that lose a routine (they may call it) and the groups.
5. What the migration role lacks to apply changes (PW510): USAGE and CREATE on the
   application schemas, CREATE on the database while pgwarden's schema does not exist.

Every statement is built with psycopg.sql from names read from the catalog.
Steps 1-7 are one transaction (applied with `pgwarden apply`): a failure leaves
them undone, and the relations moved before it stay usable. It needs a role that may do all of it: a
superuser, usually a declared break-glass role (`--break-glass "reason"`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from pgwarden.access.capabilities import Capability, reach
from pgwarden.access.policy import class_of
from pgwarden.access.roles import PUBLIC, Catalog
from pgwarden.access.verdict import AuditFinding, RoleVerdict, migration_missing
from pgwarden.settings import RolePolicy

__all__ = ["FixPlan", "fix_plan", "header"]

_ATTR_OFF = {
    "superuser": "NOSUPERUSER",
    "createrole": "NOCREATEROLE",
    "createdb": "NOCREATEDB",
    "bypassrls": "NOBYPASSRLS",
    "replication": "NOREPLICATION",
}
_OBJECT_CLAUSE = {
    "sequence": "SEQUENCE",
    "schema": "SCHEMA",
    "database": "DATABASE",
}


@dataclass(slots=True)
class FixPlan:
    """Sections of statements, in the order they must run, each with a comment."""

    sections: list[tuple[str, list[sql.Composable]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the plan does not fix, and why
    # one short transaction per relation that changes owner (ALTER ... OWNER takes ACCESS
    # EXCLUSIVE): the new owner and the application's grants on it, together
    relations: list[list[sql.Composable]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.relations and not any(stmts for _, stmts in self.sections)

    def render(self, conn: psycopg.Connection[tuple[object, ...]], header: Sequence[str]) -> str:
        """The plan as a SQL file: a header, the per-relation transactions, then the rest
        in one transaction, each section with its comment."""
        lines = [f"-- {h}" if h else "--" for h in header]
        for note in self.notes:
            lines.append(f"-- not fixed here: {note}")
        if self.relations:
            lines += [
                "",
                "-- 0. each relation to the migration role with the application's privileges on "
                "it, one short transaction each (the owner change locks the relation)",
            ]
            for stmts in self.relations:
                lines += ["BEGIN;", *(x.as_string(conn) + ";" for x in stmts), "COMMIT;"]
        rest = [(t, stmts) for t, stmts in self.sections if stmts]
        if rest:
            lines += ["", "BEGIN;"]
            for title, stmts in rest:
                lines += [f"-- {t}" for t in title.split("\n")]
                lines += list(dict.fromkeys(x.as_string(conn) + ";" for x in stmts))
            lines.append("COMMIT;")
        return "\n".join(lines) + "\n"


def _ident(*parts: str) -> sql.Identifier:
    return sql.Identifier(*parts)


def _grantee(name: str) -> sql.Composable:
    return sql.SQL("PUBLIC") if name == PUBLIC else _ident(name)


def _object(
    cap: Capability, parts: dict[tuple[str, str], tuple[str, ...]]
) -> tuple[str, sql.Composable] | None:
    """(`ON` clause keyword, the object's name) of a capability granted on an object;
    `parts` maps (kind, shown name) to the name's parts (`_parts`)."""
    found = parts.get((cap.object_kind, cap.object))
    if not found:
        return None
    return _OBJECT_CLAUSE.get(cap.object_kind, "TABLE"), _ident(*found)


def _parts(cat: Catalog) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(g.kind, g.name): g.parts for g in cat.grants}


def _reassigned(
    cat: Catalog, bad: Iterable[Capability], policy: RolePolicy
) -> tuple[list[str], bool]:
    """Roles whose objects move to the migration role; whether the database moves too."""
    owners: dict[str, None] = {}
    # a superuser the plan demotes (ALTER ROLE ... NOSUPERUSER) hands over what it owns too
    demoted = {c.role for c in bad if c.kind == "superuser" and c.holder == c.role}
    holders = [c.holder for c in bad if c.kind == "owner"]
    holders += [o.owner for o in cat.owned if o.owner in demoted]
    for holder in holders:
        if holder == "pg_database_owner":
            holder = cat.database_owner
        role = cat.roles.get(holder)
        if role is None or (role.superuser and holder not in demoted):
            continue
        if holder in (policy.migration, *policy.break_glass, *policy.superusers):
            continue
        owners[holder] = None
    return list(owners), cat.database_owner in owners


def _membership_revokes(
    cat: Catalog, bad: Iterable[Capability], policy: RolePolicy, moved: set[str]
) -> tuple[list[sql.Composable], set[str], set[tuple[str, str]]]:
    """REVOKE role FROM member for the last grant on each path to a capability beyond the
    login role's class; the members that lose something (read-only roles get SELECT back);
    the (role, member) grants revoked."""
    out: list[sql.Composable] = []
    losing: set[str] = set()
    cut: set[tuple[str, str]] = set()
    for c in bad:
        if len(c.chain) < 2 or c.holder in (c.role, PUBLIC):
            continue
        member, role = c.chain[-2], c.chain[-1]
        if role == "pg_database_owner":
            continue  # implicit: fixed by moving the database's ownership
        cls = class_of(policy, c.role)
        holder_cls = class_of(policy, role)
        # an application role reaching another application role: after the fix that role
        # holds DML in the application schemas only, which this one may have too
        if c.kind == "owner" and role in moved and cls == holder_cls == "application":
            continue
        m = next((m for m in cat.memberships if m.role == role and m.member == member), None)
        if m is None or m.implicit:
            continue
        losing.add(c.role)
        cut.add((role, member))
        grantors = [g for g in m.grantors if g in cat.roles] if cat.major >= 16 else []
        if not grantors:
            out.append(sql.SQL("REVOKE {} FROM {}").format(_ident(role), _ident(member)))
        for g in dict.fromkeys(grantors):
            out.append(
                sql.SQL("REVOKE {} FROM {} GRANTED BY {}").format(
                    _ident(role), _ident(member), _ident(g)
                )
            )
    return out, losing, cut


def _direct_revokes(cat: Catalog, bad: Iterable[Capability]) -> dict[str, list[sql.Composable]]:
    """Revokes of privileges held by the login role itself or PUBLIC, by section."""
    # (clause, object sql, grantee) -> privileges (`UPDATE (col)` for a column's)
    grants: dict[tuple[str, str, str], list[sql.Composable]] = {}
    objects: dict[tuple[str, str], sql.Composable] = {}
    defaults: dict[tuple[str, str | None, str, str], list[str]] = {}
    attrs: dict[str, list[str]] = {}
    parts = _parts(cat)
    for c in bad:
        if c.holder not in (c.role, PUBLIC):
            continue
        if c.kind in _ATTR_OFF:
            attrs.setdefault(c.role, []).append(_ATTR_OFF[c.kind])
        elif c.kind == "owner":
            continue  # REASSIGN OWNED
        elif c.kind == "write_all":
            continue  # a membership
        elif c.kind in ("future_write", "schema_create") and c.object.startswith("future "):
            d = next(
                (
                    d
                    for d in cat.defaults
                    if d.grantee == c.holder
                    and d.privilege == c.privilege
                    and d.objtype.lower() == c.object_kind
                    and c.object.startswith(f"future {d.objtype.lower()} of {d.creator}")
                    and d.schema == c.schema
                ),
                None,
            )
            if d is not None:
                defaults.setdefault((d.creator, d.schema, d.objtype, d.grantee), []).append(
                    d.privilege
                )
        else:
            target = _object(c, parts)
            if target is None:
                continue
            clause, name = target
            key = (clause, repr(name), c.holder)
            objects[key[:2]] = name
            priv: sql.Composable = sql.SQL(c.privilege)
            if c.column is not None:
                priv = sql.SQL("{} ({})").format(priv, _ident(c.column))
            grants.setdefault(key, []).append(priv)
    out: dict[str, list[sql.Composable]] = {"objects": [], "defaults": [], "attributes": []}
    for (clause, shown, grantee), granted in grants.items():
        out["objects"].append(
            sql.SQL("REVOKE {} ON {} {} FROM {}").format(
                sql.SQL(", ").join(list({repr(p): p for p in granted}.values())),
                sql.SQL(clause),
                objects[(clause, shown)],
                _grantee(grantee),
            )
        )
    for (creator, schema, objtype, grantee), privs in defaults.items():
        where = sql.SQL(" IN SCHEMA {}").format(_ident(schema)) if schema else sql.SQL("")
        out["defaults"].append(
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} REVOKE {} ON {} FROM {}").format(
                _ident(creator),
                where,
                sql.SQL(", ").join(sql.SQL(p) for p in dict.fromkeys(privs)),
                sql.SQL(objtype),
                _grantee(grantee),
            )
        )
    for role, flags in attrs.items():
        out["attributes"].append(
            sql.SQL("ALTER ROLE {} {}").format(
                _ident(role), sql.SQL(" ").join(sql.SQL(f) for f in dict.fromkeys(flags))
            )
        )
    return out


def _routine(parts: tuple[str, str, str]) -> sql.Composable:
    """`schema.name(arguments)`: the arguments as the server prints them
    (pg_get_function_identity_arguments)."""
    return sql.SQL("{}({})").format(_ident(parts[0], parts[1]), sql.SQL(parts[2]))


def _after_cuts(cat: Catalog, cut: set[tuple[str, str]]) -> Catalog:
    """The catalog once the membership grants `cut` ((role, member)) are revoked."""
    if not cut:
        return cat
    kept = tuple(m for m in cat.memberships if (m.role, m.member) not in cut)
    return replace(cat, memberships=kept)


def _routine_revokes(
    cat: Catalog,
    verdicts: Sequence[RoleVerdict],
    bad: Sequence[Capability],
    policy: RolePolicy,
    cut: set[tuple[str, str]],
    moves: dict[str, list[str]],
) -> tuple[str, list[sql.Composable]]:
    """REVOKE EXECUTE on each SECURITY DEFINER routine that gives a role a path beyond its
    class, from every grantee the role reaches it through (PUBLIC, the role, roles it is
    a member of); GRANT EXECUTE back to the login roles whose class allows what the routine's
    owner can do and that held it through a revoked grant. The title says who loses it.

    A group's grant stays when the membership the path goes through is revoked anyway
    (`cut`, step 3): the group's other members keep it. When PUBLIC loses EXECUTE, so does
    PUBLIC on the routines the owners create later (PostgreSQL grants it on every new
    routine): ALTER DEFAULT PRIVILEGES for the owner (and for the migration role, in
    `moves`, that takes over what the owner owns), granting it to the roles that keep it.
    """
    definers = {f.name: f for f in cat.definers}
    after = _after_cuts(cat, cut)
    revoked: dict[str, dict[str, None]] = {}  # routine -> grantees
    for c in bad:
        if c.executor is None or c.object not in definers:
            continue
        # every grant the role reaches the routine through, not only the path shown; a
        # group's stays when the membership it goes through is revoked in step 3
        reached = reach(after, c.role)
        for g in definers[c.object].grants:
            if g in (PUBLIC, c.role) or g in reached:
                revoked.setdefault(c.object, {})[g] = None
    if not revoked:
        return "", []
    flagged = {(c.role, c.object) for c in bad}
    paths: dict[str, list[Capability]] = {}  # routine -> every login role's path through it
    for v in verdicts:
        for c in v.capabilities:
            if c.kind == "definer" and c.object in revoked:
                paths.setdefault(c.object, []).append(c)
    out: list[sql.Composable] = []
    keep: list[sql.Composable] = []
    losing: list[str] = []
    groups: list[str] = []
    creators: dict[str, dict[str, None]] = {}  # who creates tomorrow's routines -> keepers
    for name, grantees in revoked.items():
        f = definers[name]
        routine = _routine(f.parts)
        for g in grantees:
            out.append(sql.SQL("REVOKE EXECUTE ON ROUTINE {} FROM {}").format(routine, _grantee(g)))
            if g != PUBLIC and g in cat.roles and not cat.roles[g].login:
                groups.append(f"{g} ({name})")
        owners = [f.owner] if PUBLIC in grantees else []
        owners += [m for m, moved in moves.items() if f.owner in moved and owners]
        for owner in owners:
            creators.setdefault(owner, {})
        for c in paths.get(name, ()):
            if c.executor not in grantees:
                continue
            if (c.role, name) in flagged:
                if class_of(policy, c.role) == "application":
                    losing.append(f"{c.role} ({f.kind} {name}, as {f.owner})")
            else:
                keep.append(
                    sql.SQL("GRANT EXECUTE ON ROUTINE {} TO {}").format(routine, _ident(c.role))
                )
                for owner in owners:
                    creators[owner][c.role] = None
    defaults: list[sql.Composable] = []
    grant = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT EXECUTE ON ROUTINES TO {}")
    for owner, keepers in creators.items():
        who = _ident(owner)
        defaults.append(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE EXECUTE ON ROUTINES FROM PUBLIC"
            ).format(who)
        )
        defaults += [grant.format(who, _ident(role)) for role in keepers]
    title = (
        "7. EXECUTE on SECURITY DEFINER routines that run with the rights of an owner who "
        "can write or change schema beyond a role's class\n"
        "   (the audit cannot tell what the body does; roles whose class allows the owner's "
        "rights get EXECUTE back)"
    )
    if losing:
        title += (
            "\n   the application can no longer call: "
            + ", ".join(dict.fromkeys(losing))
            + "\n   if it does, review the body, then make it SECURITY INVOKER (the "
            "application's own DML rights) or have an owner with only the DML the application "
            "may do own it, and GRANT EXECUTE back; or run this plan after that change"
        )
    if groups:
        title += (
            "\n   groups that lose EXECUTE (a member beyond the owner's rights reaches it "
            "through them): "
            + ", ".join(dict.fromkeys(groups))
            + "; their login members above get it directly, a member added later needs a GRANT"
        )
    if creators:
        title += (
            "\n   routines "
            + ", ".join(creators)
            + " create later are not executable by PUBLIC either (global default privileges: "
            "PostgreSQL grants EXECUTE to PUBLIC on every new routine, a per-schema default "
            "cannot take that back); GRANT EXECUTE on each one a role calls, extensions' "
            "included, in the migration that creates it"
        )
    return title, out + keep + defaults


# what each class keeps, at most: on relations, on sequences, and on new ones
_APP_KEEPS = (("SELECT", "INSERT", "UPDATE", "DELETE"), ("USAGE", "SELECT"))
_READER_KEEPS = (("SELECT",), ("SELECT",))
_REVOKED_FROM_PUBLIC = frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE"})  # PW505

# (kind, schema, name) of a relation or sequence -> privileges
Kept = dict[tuple[str, str, str], tuple[str, ...]]


def _kept(
    cat: Catalog, role: str, schemas: Sequence[str], keeps: tuple[tuple[str, ...], ...]
) -> Kept:
    """Per relation and sequence of `schemas`, the privileges of `keeps` that `role` uses
    now (without SET ROLE) through something the plan may take away: ownership (its own or
    an inherited role's), an inherited role's grant, PUBLIC's write. What it holds by a
    grant to itself stays as it is; what it does not have now, it does not get."""
    inherited = {r for r, x in reach(cat, role).items() if not x.set_role}
    grants: dict[tuple[str, str], set[str]] = {}
    for g in cat.grants:
        if g.column is not None or g.grantee == role:
            continue
        if g.grantee in inherited or (g.grantee == PUBLIC and g.privilege in _REVOKED_FROM_PUBLIC):
            grants.setdefault((g.kind, g.name), set()).add(g.privilege)
    out: Kept = {}
    for o in cat.owned:
        if o.schema not in schemas or len(o.parts) != 2:
            continue
        if o.kind in _ALTER:
            allowed = keeps[0]
        elif o.kind == "sequence":
            allowed = keeps[1]
        else:
            continue
        has = set(allowed) if o.owner in inherited else grants.get((o.kind, o.name), set())
        privs = tuple(p for p in allowed if p in has)
        if privs:
            out[(o.kind, *o.parts)] = privs
    return out


def _usage(cat: Catalog, role: str, schema: str) -> bool:
    """Whether `role` may use `schema` now (a grant to it, an inherited role or PUBLIC)."""
    inherited = {r for r, x in reach(cat, role).items() if not x.set_role} | {PUBLIC}
    return any(
        g.kind == "schema" and g.schema == schema and g.privilege == "USAGE"
        and g.grantee in inherited
        for g in cat.grants
    )  # fmt: skip


def _object_grant(
    kind: str, parts: tuple[str, str], privs: Sequence[str], role: str
) -> sql.Composable:
    return sql.SQL("GRANT {} ON {} {} TO {}").format(
        sql.SQL(", ").join(sql.SQL(p) for p in privs),
        sql.SQL("SEQUENCE" if kind == "sequence" else "TABLE"),
        _ident(*parts),
        _ident(role),
    )


def _grants_to(
    cat: Catalog,
    policy: RolePolicy,
    roles: Iterable[str],
    keeps: tuple[tuple[str, ...], ...],
    creator: str | None,
    skip: set[tuple[str, str]],
) -> list[sql.Composable]:
    """What `roles` keep in the application schemas: USAGE on a schema they use now, on
    each relation and sequence the privileges of `keeps` they use now through something
    the plan may take away (`_kept`; not those in `skip`, (schema, name) moved in step 0
    with their grants), and `keeps` on what `creator` (the migration role) creates later."""
    schemas = {o.schema for o in cat.owned if o.kind == "schema"}
    out: list[sql.Composable] = []
    for role in roles:
        if role not in cat.roles:
            continue
        kept = _kept(cat, role, policy.application_schemas, keeps)
        for schema in policy.application_schemas:
            if schema not in schemas:
                continue
            s, r = _ident(schema), _ident(role)
            if _usage(cat, role, schema):
                out.append(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r))
            for (kind, sch, name), privs in kept.items():
                if sch == schema and (sch, name) not in skip:
                    out.append(_object_grant(kind, (sch, name), privs, role))
            if creator is not None and creator in cat.roles:
                for what, p in (("TABLES", keeps[0]), ("SEQUENCES", keeps[1])):
                    out.append(
                        sql.SQL(
                            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON {} TO {}"
                        ).format(_ident(creator), s, sql.SQL(", ".join(p)), sql.SQL(what), r)
                    )
    return out


def fix_plan(
    cat: Catalog,
    verdicts: Sequence[RoleVerdict],
    general: Sequence[AuditFinding],
    policy: RolePolicy,
) -> FixPlan:
    """The statements that remove every capability the verdicts flag, in a safe order."""
    bad: list[Capability] = []
    for v in verdicts:
        for f in v.findings:
            bad.extend(f.capabilities)
    for f in general:
        bad.extend(f.capabilities)
    # a path through a SECURITY DEFINER routine is cut by revoking EXECUTE on it; one
    # through a self-grant CREATEROLE allows (before 16) by NOCREATEROLE, its own capability
    definers = [c for c in bad if c.route == "definer"]
    bad = [c for c in bad if c.route == "grant"]
    plan = FixPlan()
    migration = policy.migration if policy.migration in cat.roles else None
    owners, database_moves = _reassigned(cat, bad, policy)
    if owners and migration is None:
        plan.notes.append(
            "ownership: no existing migration role is declared to take over the objects of "
            + ", ".join(owners)
        )
        owners, database_moves = [], False
    moved = set(owners)
    for owner in owners:
        if owner not in policy.application:
            continue
        outside = sorted(
            {
                o.schema
                for o in cat.owned
                if o.owner == owner
                and o.schema is not None
                and o.kind != "schema"
                and o.schema not in policy.application_schemas
            }
        )
        if outside:
            plan.notes.append(
                f"application role {owner} owns objects in schema {', '.join(outside)}, which "
                "application_schemas does not list: after this plan it cannot use them (list "
                "the schema there if it should, and write the plan again)"
            )
    reassign: list[sql.Composable] = []
    assert migration is not None or not owners
    # read-only roles whose objects move keep reading them (an owner reads its tables
    # without any grant: after the move it needs one)
    owner_readers = [r for r in owners if r in policy.readonly]
    if migration is not None:
        plan.relations = _relation_moves(cat, policy, owners, migration, owner_readers)
    for owner in owners:
        reassign.append(
            sql.SQL("REASSIGN OWNED BY {} TO {}").format(_ident(owner), _ident(str(migration)))
        )
    if (
        migration is not None
        and not database_moves
        and cat.database_owner != migration
        and any(c.holder == "pg_database_owner" and c.kind == "owner" for c in bad)
    ):
        reassign.append(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(_ident(cat.database), _ident(migration))
        )
    memberships, losing, cut = _membership_revokes(cat, bad, policy, moved)
    direct = _direct_revokes(cat, bad)
    moves = {migration: owners} if migration is not None else {}
    routines_title, routines = _routine_revokes(cat, verdicts, definers, policy, cut, moves)
    something = bool(reassign or memberships or any(direct.values()) or routines)
    grants: list[sql.Composable] = []
    if something:
        moving = _moving(cat, owners)
        grants = _grants_to(cat, policy, policy.application, _APP_KEEPS, migration, moving)
        readers = [r for r in policy.readonly if r in losing or r in owner_readers]
        grants += _grants_to(cat, policy, readers, _READER_KEEPS, migration, moving)
        grants += _schema_usage(cat, policy, owner_readers)
    plan.sections = [
        (f"1. what else they own moves to the migration role {migration}", reassign),
        (
            "2. what the application (and read-only) roles keep in "
            + ", ".join(policy.application_schemas)
            + ": the DML (SELECT) they have now, no more, and on new tables",
            grants,
        ),
        ("3. memberships that lead beyond a role's class", memberships),
        ("4. privileges on tables, schemas and the database", direct["objects"]),
        ("5. default privileges that would grant them on new objects", direct["defaults"]),
        ("6. role attributes", direct["attributes"]),
        (routines_title, routines),
        (
            f"8. what the migration role {migration} needs to apply changes (CREATE in the "
            "application schemas; in the database while pgwarden's schema does not exist)",
            _migration_grants(cat, policy),
        ),
    ]
    return plan


def _migration_grants(cat: Catalog, policy: RolePolicy) -> list[sql.Composable]:
    """GRANT what the migration role lacks to create tables and pgwarden's schema."""
    out: list[sql.Composable] = []
    for m in migration_missing(cat, policy):
        out.append(
            sql.SQL("GRANT {} ON {} {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in m.privileges),
                sql.SQL(m.object_kind.upper()),
                _ident(m.name),
                _ident(str(policy.migration)),
            )
        )
    return out


_ALTER = {
    "table": "TABLE",
    "partitioned table": "TABLE",
    "view": "VIEW",
    "materialized view": "MATERIALIZED VIEW",
    "foreign table": "FOREIGN TABLE",
}


def _moving(cat: Catalog, owners: Sequence[str]) -> set[tuple[str, str]]:
    """(schema, name) of the relations step 0 moves (they get their grants there)."""
    return {
        (o.parts[0], o.parts[1])
        for o in cat.owned
        if o.kind in _ALTER and o.owner in owners and len(o.parts) == 2
    }


def _schema_usage(cat: Catalog, policy: RolePolicy, readers: Sequence[str]) -> list[sql.Composable]:
    """USAGE on the schemas outside application_schemas that read-only `readers` owned and
    held relations in (their relations' SELECT is granted with each move)."""
    out: list[sql.Composable] = []
    for r in readers:
        kept = {
            o.schema
            for o in cat.owned
            if o.owner == r and o.kind in _ALTER and o.schema is not None and len(o.parts) == 2
        }
        for o in cat.owned:
            if (
                o.kind == "schema"
                and o.owner == r
                and o.schema in kept
                and o.schema not in policy.application_schemas
            ):
                out.append(
                    sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_ident(o.schema), _ident(r))
                )
    return out


def _relation_moves(
    cat: Catalog,
    policy: RolePolicy,
    owners: Sequence[str],
    migration: str,
    readers: Sequence[str] = (),
) -> list[list[sql.Composable]]:
    """Per relation of `owners`: ALTER ... OWNER TO the migration role; in the application
    schemas, what the application and read-only roles use now through its owner (DML,
    USAGE on its sequences; SELECT), no more; SELECT on it to its former owner when that
    is a read-only role (`readers`)."""
    apps = [a for a in policy.application if a in cat.roles]
    kept = {a: _kept(cat, a, policy.application_schemas, _APP_KEEPS) for a in apps}
    for r in policy.readonly:  # a read-only role reading through the owner reads on
        if r in cat.roles and r not in kept:
            kept[r] = _kept(cat, r, policy.application_schemas, _READER_KEEPS)
    sequences: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for seq, table in cat.sequence_owners.items():
        sequences.setdefault(table, []).append(seq)
    out: list[list[sql.Composable]] = []
    for o in cat.owned:
        keyword = _ALTER.get(o.kind)
        if keyword is None or o.owner not in owners or len(o.parts) != 2:
            continue
        name = _ident(*o.parts)
        stmts: list[sql.Composable] = [
            sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(keyword), name, _ident(migration))
        ]
        if o.owner in readers:
            stmts.append(sql.SQL("GRANT SELECT ON {} TO {}").format(name, _ident(o.owner)))
        if o.schema in policy.application_schemas:
            for app in kept:  # what it uses now through the owner, no more
                if app == o.owner and app in readers:
                    continue  # granted SELECT above
                privs = kept[app].get((o.kind, o.parts[0], o.parts[1]))
                if privs:
                    stmts.append(_object_grant(o.kind, (o.parts[0], o.parts[1]), privs, app))
                for seq in sequences.get((o.parts[0], o.parts[1]), []):
                    seq_privs = kept[app].get(("sequence", *seq))
                    if seq_privs:
                        stmts.append(_object_grant("sequence", seq, seq_privs, app))
        out.append(stmts)
    return out


def header(
    cat: Catalog, env: str | None, path: str, *, empty: bool = False, stamped: bool = True
) -> list[str]:
    """The comment lines that open a plan file (`empty`: nothing to fix, nothing to apply;
    `stamped`: pgwarden has applied to this database before, no --restamp needed)."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if empty:
        return [
            f"pgwarden audit --fix-plan: database {cat.database} already meets the role "
            f"policy of {env}: nothing to fix, nothing to apply.",
            f"generated {now} from the catalog of PostgreSQL {cat.server_version // 10000}.",
        ]
    lines = [
        f"pgwarden audit --fix-plan: database {cat.database} to the role policy of {env}",
        f"generated {now} from the catalog of PostgreSQL {cat.server_version // 10000}.",
        "Review it, then apply it to the audited database (--database-url, or",
        "PGWARDEN_DATABASE_URL, as for the audit) as a role allowed to change ownership",
        "and grants (a superuser; on a protected environment a declared break-glass role):",
        f"  pgwarden apply {path} --env {env} --database-url URL --dry-run",
        f'  pgwarden apply {path} --env {env} --database-url URL --break-glass "audit fix plan"',
    ]
    if not stamped:
        lines.append(
            "(add --restamp: pgwarden has never applied to this database, and it holds data)."
        )
    lines.append("Run `pgwarden audit` again afterwards: it should be clean.")
    return lines


def stamped(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether pgwarden has stamped this database (its `pgwarden.target` table exists: read
    from the catalog, which any role may, not from the schema, which it may not)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'pgwarden' AND c.relname = 'target')"
    ).fetchone()
    return bool(row and row[0])
