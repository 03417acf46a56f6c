"""What each login role can do to this database, and the path that grants it.

A login role has the privileges of every role it reaches along grants with
INHERIT (without doing anything), and of every role it may `SET ROLE` to
along grants with SET, plus what those inherit in turn; a grant WITH ADMIN
OPTION lets it grant the role to itself. Role attributes (SUPERUSER,
CREATEROLE, CREATEDB, BYPASSRLS) are not inherited: they count when held by
the role itself or by a role it may SET ROLE to (REPLICATION only on the
login role: it is checked at connection). PUBLIC's grants hold for everyone.
Before PostgreSQL 16 a role with CREATEROLE may grant itself any role that is
not a superuser, so it reaches every one of them (after the self-grant).

Column-level grants (`GRANT UPDATE (col) ON t`) write like table-level ones.
A SECURITY DEFINER function or procedure that a role may EXECUTE (and whose
schema it may use) runs with the rights of its owner: it is a path to what the
owner can do (its inherited rights: SET ROLE is refused inside such a function;
one level: calls from its body to other definer functions are not followed).

A path reads from the login role to the privilege, e.g.
`dev -> member of app (INHERIT) -> owns table public.users`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from pgwarden.access.roles import PUBLIC, Catalog, Definer, Grant, Role

__all__ = [
    "ATTRIBUTES",
    "DDL",
    "OTHER",
    "WRITE",
    "Capability",
    "OwnerRights",
    "Reach",
    "capabilities",
    "public_capabilities",
    "reach",
]

# Capability kinds, by what they let a role do.
ATTRIBUTES = ("superuser", "createrole", "createdb", "bypassrls", "replication")
WRITE = ("write", "write_all", "future_write")  # changes rows
DDL = (
    "owner",
    "schema_create",
    "database_create",
    "maintain",
    "trigger",
    "references",
    "definer",  # EXECUTE on a SECURITY DEFINER routine whose owner can write or change schema
    "superuser_rights",  # inside `definer`: the owner is a superuser
)
# shown (json), never a finding: temporary tables are the session's own; bypassing a row
# level security policy grants no write (the role's grants and ownership are judged)
OTHER = ("database_temp", "rls_bypass")

_WRITE_PRIVS = frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE"})
_TABLE_KINDS = frozenset(
    {"table", "partitioned table", "view", "materialized view", "foreign table"}
)
_WRITE_ALL = {"pg_write_all_data": "write_all"}  # predefined roles that write everywhere


@dataclass(frozen=True, slots=True)
class Reach:
    """A role whose privileges the login role has, and how."""

    role: str
    hops: tuple[str, ...]  # after the login role's name, e.g. ("member of app (INHERIT)",)
    set_role: bool  # needs SET ROLE (or a self-grant) first
    admin_self_grant: bool = False  # only through ADMIN OPTION: it may grant itself the role
    chain: tuple[str, ...] = ()  # the roles along the path, login role first, `role` last
    createrole: bool = False  # through a self-grant CREATEROLE allows (before PostgreSQL 16)


@dataclass(frozen=True, slots=True)
class Capability:
    """One thing one login role can do, and why."""

    role: str  # the login role
    kind: str  # superuser, createrole, ..., owner, write, schema_create, future_write, ...
    privilege: str  # SUPERUSER, OWNER, INSERT, CREATE, ...
    object_kind: str  # table, schema, database, role, ...
    object: str  # public.users, "public", the database name, the role name
    schema: str | None
    holder: str  # the role that holds it (the login role, a role it reaches, or PUBLIC)
    path: tuple[str, ...]  # the login role, the hops, the grant itself
    set_role: bool  # only after SET ROLE
    chain: tuple[str, ...] = ()  # the roles from the login role to `holder` (none: PUBLIC)
    column: str | None = None  # a column-level grant: the column
    # how it is reached: "grant" (memberships and grants), "createrole" (a self-grant
    # CREATEROLE allows before 16), "definer" (EXECUTE on a SECURITY DEFINER routine)
    route: str = "grant"
    executor: str | None = None  # definer: the grantee of the EXECUTE grant (or PUBLIC)
    inner: tuple[Capability, ...] = ()  # definer: what the routine's owner can do

    @property
    def why(self) -> str:
        return " -> ".join(self.path)

    @property
    def what(self) -> str:
        """What it allows, in a few words: `owns table public.users`, `INSERT on table t`."""
        if self.kind in ATTRIBUTES:
            return (
                self.privilege if self.holder == self.role else f"{self.privilege} of {self.holder}"
            )
        if self.kind == "owner":
            return f"owns {self.object_kind} {self.object}"
        if self.kind == "definer":
            return f"EXECUTE on {self.object_kind} {self.object} (runs as {self.holder})"
        if self.kind == "superuser_rights":
            return f"every right of superuser {self.holder}"
        if self.column is not None:
            return f"{self.privilege} ({self.column}) on {self.object_kind} {self.object}"
        if self.object_kind == "database" and self.kind == "write_all":
            return f"writes every table ({self.holder})"
        if self.object.startswith("future "):
            return f"{self.privilege} on {self.object}"
        return f"{self.privilege} on {self.object_kind} {self.object}"


def _edge_label(role: str, inherit: bool, can_set: bool, admin: bool, implicit: bool) -> str:
    if implicit:
        return f"owns the database, so member of {role}"
    opts = [o for o, on in (("INHERIT", inherit), ("SET", can_set), ("ADMIN", admin)) if on]
    return f"member of {role} ({', '.join(opts) or 'no INHERIT, no SET'})"


def _walk(cat: Catalog, login: str) -> tuple[dict[str, Reach], dict[str, Reach]]:
    """(roles whose privileges `login` has, roles it may become), shortest paths first.

    The roles it may become (`SET ROLE`, or grant itself through ADMIN OPTION) are
    those along grants with SET from the login role; from each of them (and the
    login role) privileges flow along grants with INHERIT.
    """
    by_member: dict[str, list[tuple[str, bool, bool, bool, bool]]] = {}
    for m in cat.memberships:
        by_member.setdefault(m.member, []).append((m.role, m.inherit, m.set, m.admin, m.implicit))
    grantable = _createrole_grantable(cat)
    start = Reach(login, (), False, chain=(login,))
    used: dict[str, Reach] = {}  # privileges usable (set_role: after SET ROLE)
    become: dict[str, Reach] = {login: start}  # may be current_user
    seen: set[tuple[str, bool, bool]] = set()
    # state: (the reach, whether the role is on a SET chain from the login role)
    queue: deque[tuple[Reach, bool]] = deque([(start, True)])
    while queue:
        here, settable = queue.popleft()
        key = (here.role, settable, here.set_role)
        if key in seen:
            continue
        seen.add(key)
        old = used.get(here.role)
        if old is None or (old.set_role and not here.set_role):
            used[here.role] = here
        if settable and here.role not in become:
            become[here.role] = here
        for parent, inherit, can_set, admin, implicit in by_member.get(here.role, ()):
            label = _edge_label(parent, inherit, can_set, admin, implicit)
            chain = (*here.chain, parent)
            if inherit:
                queue.append(
                    (
                        Reach(
                            parent,
                            (*here.hops, label),
                            here.set_role,
                            here.admin_self_grant,
                            chain,
                            here.createrole,
                        ),
                        False,
                    )
                )
            if settable and can_set:
                hops = (*here.hops, label, f"SET ROLE {parent}")
                queue.append(
                    (Reach(parent, hops, True, here.admin_self_grant, chain, here.createrole), True)
                )
            if admin and not (inherit or can_set):
                hops = (*here.hops, label, f"can GRANT {parent} to itself")
                queue.append((Reach(parent, hops, True, True, chain, here.createrole), True))
        holder = cat.roles.get(here.role)
        if settable and grantable and holder is not None and holder.createrole:
            label = f"{here.role} has CREATEROLE (before PostgreSQL 16: any non-superuser role)"
            for target in grantable:
                if target != here.role:
                    hops = (*here.hops, label, f"can GRANT {target} to itself")
                    chain = (*here.chain, target)
                    queue.append((Reach(target, hops, True, True, chain, True), True))
    return used, become


def _createrole_grantable(cat: Catalog) -> list[str]:
    """Roles a CREATEROLE role may grant to itself without ADMIN OPTION: before
    PostgreSQL 16 every role that is not a superuser (pg_database_owner takes no
    members); from 16 none (ADMIN OPTION, a membership, is needed)."""
    if cat.major >= 16:
        return []
    return sorted(n for n, r in cat.roles.items() if not r.superuser and n != "pg_database_owner")


def reach(cat: Catalog, login: str) -> dict[str, Reach]:
    """Every role whose privileges `login` has or can take, with the shortest path.

    Inherited privileges need no action (`set_role` false); the others need SET
    ROLE along a chain of grants with SET from the login role, or a grant to
    itself through ADMIN OPTION.
    """
    return _walk(cat, login)[0]


def _attribute_caps(cat: Catalog, login: Role) -> list[Capability]:
    """Attributes of the login role and of every role it may become."""
    out: list[Capability] = []
    for name, r in _walk(cat, login.name)[1].items():
        role = cat.roles.get(name)
        if role is None:
            continue
        for attr in ATTRIBUTES:
            if not getattr(role, attr) or (attr == "replication" and name != login.name):
                continue
            out.append(
                Capability(
                    login.name,
                    attr,
                    attr.upper(),
                    "role",
                    name,
                    None,
                    name,
                    (login.name, *r.hops, f"{name} has {attr.upper()}"),
                    name != login.name,
                    r.chain,
                )
            )
    return out


def _grant_kind(kind: str, privilege: str) -> str | None:
    if kind == "database":
        return {"CREATE": "database_create", "TEMPORARY": "database_temp"}.get(privilege)
    if kind == "schema":
        return "schema_create" if privilege == "CREATE" else None
    if kind in _TABLE_KINDS:
        if privilege in _WRITE_PRIVS:
            return "write"
        return {"TRIGGER": "trigger", "REFERENCES": "references", "MAINTAIN": "maintain"}.get(
            privilege
        )
    if kind == "sequence" and privilege == "UPDATE":
        return "write"
    return None


# owner -> what a SECURITY DEFINER routine it owns can do (`_owner_rights`), per catalog
OwnerRights = dict[str, tuple[Capability, ...]]


def _granted(g: Grant) -> str:
    col = f" ({g.column})" if g.column is not None else ""
    return f"{g.privilege}{col} on {g.kind} {g.name}"


def public_capabilities(cat: Catalog, owners: OwnerRights | None = None) -> list[Capability]:
    """What PUBLIC (every role, also ones created later) may do that writes or changes
    schema: grants and default privileges to PUBLIC, and SECURITY DEFINER routines it
    may execute whose owner can write or change schema."""
    out: list[Capability] = []
    for g in cat.grants:
        kind = _grant_kind(g.kind, g.privilege)
        if g.grantee != PUBLIC or kind is None or kind == "database_temp":
            continue
        what = f"granted {_granted(g)}"
        out.append(
            Capability(
                PUBLIC,
                kind,
                g.privilege,
                g.kind,
                g.name,
                g.schema,
                PUBLIC,
                (PUBLIC, what),
                False,
                column=g.column,
            )
        )
    for d in cat.defaults:
        if d.grantee != PUBLIC or not (
            d.objtype in ("TABLES", "SEQUENCES") and d.privilege in _WRITE_PRIVS
        ):
            continue
        where = f" in schema {d.schema}" if d.schema else ""
        obj = f"future {d.objtype.lower()} of {d.creator}{where}"
        out.append(
            Capability(
                PUBLIC,
                "future_write",
                d.privilege,
                d.objtype.lower(),
                obj,
                d.schema,
                PUBLIC,
                (PUBLIC, f"default privileges of {d.creator}{where} grant {d.privilege}"),
                False,
            )
        )
    usage = _schema_usage(cat) if cat.definers else {}
    rights = owners if owners is not None else {}
    for f in cat.definers:
        if PUBLIC not in f.grants or PUBLIC not in usage.get(f.schema, ()):
            continue
        inner = _owner_rights(cat, f.owner, rights)
        if inner:
            out.append(_definer_cap(PUBLIC, f, Reach(PUBLIC, (), False), PUBLIC, inner))
    return out


def _schema_usage(cat: Catalog) -> dict[str, set[str]]:
    """Schema -> the grantees of USAGE on it (the owner's own grant included)."""
    out: dict[str, set[str]] = {}
    for g in cat.grants:
        if g.kind == "schema" and g.privilege == "USAGE" and g.schema is not None:
            out.setdefault(g.schema, set()).add(g.grantee)
    return out


_ROUTINES = frozenset({"function", "procedure", "aggregate"})


def _owner_rights(cat: Catalog, owner: str, cache: OwnerRights) -> tuple[Capability, ...]:
    """What a SECURITY DEFINER routine of `owner` may do when it runs: everything if the
    owner is a superuser, else the owner's own and inherited rights that write or change
    schema (SET ROLE is refused inside such a routine; PUBLIC's grants everyone has
    anyway; the routines it owns are not counted). Ownership first."""
    found = cache.get(owner)
    if found is not None:
        return found
    role = cat.roles.get(owner)
    caps: list[Capability] = []
    if role is not None and role.superuser:
        caps.append(
            Capability(
                owner,
                "superuser_rights",
                "SUPERUSER",
                "role",
                owner,
                None,
                owner,
                (owner, f"{owner} has SUPERUSER"),
                False,
                (owner,),
            )
        )
    elif role is not None:
        inherited = {n: r for n, r in reach(cat, owner).items() if not r.set_role}
        caps = [
            c
            for c in _grant_caps(cat, owner, inherited)
            if c.holder != PUBLIC
            and c.kind != "database_temp"
            and not (c.kind == "owner" and c.object_kind in _ROUTINES)
        ]
        caps.sort(key=lambda c: (c.kind != "owner", c.kind not in DDL))
    cache[owner] = tuple(caps)
    return cache[owner]


def _definer_cap(
    login: str, f: Definer, r: Reach, grantee: str, inner: tuple[Capability, ...]
) -> Capability:
    from pgwarden.access.body import body_note  # the parser, only for catalogs with routines

    holder = "" if grantee == login else f"{grantee} "
    note = body_note(f.language, f.body)
    runs = (
        f"{holder}granted EXECUTE on {f.kind} {f.name} (SECURITY DEFINER: runs with the rights "
        f"of {f.owner}{'; ' + note if note else ''})"
    )
    tail = list(inner[0].path[1:])
    if len(inner) > 1:
        tail[-1] += f" (and {len(inner) - 1} more)"
    return Capability(
        login,
        "definer",
        "EXECUTE",
        f.kind,
        f.name,
        f.schema,
        f.owner,
        (login, *r.hops, runs.strip(), *tail),
        r.set_role,
        r.chain,
        route="definer",
        executor=grantee,
        inner=inner,
    )


def _definer_caps(
    cat: Catalog, login: str, roles: dict[str, Reach], owners: OwnerRights
) -> list[Capability]:
    """SECURITY DEFINER routines `login` may execute (EXECUTE through itself, a role it
    reaches or PUBLIC, and USAGE on the schema) whose owner it does not reach already and
    who can write or change schema: one capability per routine, `inner` the owner's rights."""
    if not cat.definers:
        return []
    usage = _schema_usage(cat)
    public = Reach(PUBLIC, ("PUBLIC (every role)",), False)
    out: list[Capability] = []
    for f in cat.definers:
        if f.owner in roles:
            continue
        users = usage.get(f.schema, set())
        if PUBLIC not in users and not any(u in roles for u in users):
            continue
        options = [
            (public if g == PUBLIC else roles[g], g) for g in f.grants if g == PUBLIC or g in roles
        ]
        if not options:
            continue
        r, grantee = min(options, key=lambda o: (o[0].set_role, len(o[0].hops)))
        inner = _owner_rights(cat, f.owner, owners)
        if inner:
            out.append(_definer_cap(login, f, r, grantee, inner))
    return out


def capabilities(cat: Catalog, login: str, owners: OwnerRights | None = None) -> list[Capability]:
    """Everything `login` can do that changes data or schema, or bypasses the rules, each
    with the path that grants it. A superuser's per-object rights are not listed: it can
    do anything. `owners` caches what SECURITY DEFINER routines' owners can do, across
    calls on the same catalog."""
    role = cat.roles[login]
    roles = reach(cat, login)
    out = _attribute_caps(cat, role)
    if role.superuser:
        return out
    out += _grant_caps(cat, login, roles)
    out += _definer_caps(cat, login, roles, owners if owners is not None else {})
    out += _rls_bypass(cat, login, roles)
    return out


def _rls_bypass(cat: Catalog, login: str, roles: dict[str, Reach]) -> list[Capability]:
    """Tables with row level security whose policies `login` is not subject to: BYPASSRLS
    (of the login role or a role it may SET ROLE to), or the table's owner without FORCE
    ROW LEVEL SECURITY (the owner's privileges, inherited or after SET ROLE)."""
    if not cat.rls:
        return []
    bypass = next(
        (
            r
            for n, r in _walk(cat, login)[1].items()
            if (role := cat.roles.get(n)) and role.bypassrls
        ),
        None,
    )
    out: list[Capability] = []
    for name, schema, owner, forced in cat.rls:
        r = bypass
        why = f"{bypass.role if bypass else ''} has BYPASSRLS"
        if r is None and not forced and owner in roles:
            r, why = roles[owner], f"owns table {name} (no FORCE ROW LEVEL SECURITY)"
        if r is None:
            continue
        out.append(
            Capability(
                login,
                "rls_bypass",
                "BYPASSRLS",
                "table",
                name,
                schema,
                r.role,
                (login, *r.hops, why, f"row level security of table {name} does not apply"),
                r.set_role,
                r.chain,
                route=_route(r),
            )
        )
    return out


def _route(r: Reach) -> str:
    return "createrole" if r.createrole else "grant"


def _grant_caps(cat: Catalog, login: str, roles: dict[str, Reach]) -> list[Capability]:
    """Ownership, grants, default privileges and pg_write_all_data of the roles `login`
    reaches (`roles`)."""
    out: list[Capability] = []
    for o in cat.owned:
        r = roles.get(o.owner)
        if r is None:
            continue
        out.append(
            Capability(
                login,
                "owner",
                "OWNER",
                o.kind,
                o.name,
                o.schema,
                o.owner,
                (login, *r.hops, f"owns {o.kind} {o.name}"),
                r.set_role,
                r.chain,
                route=_route(r),
            )
        )
    public = Reach(PUBLIC, ("PUBLIC (every role)",), False)
    for g in cat.grants:
        kind = _grant_kind(g.kind, g.privilege)
        if kind is None or g.grantee == g.owner:
            continue  # an owner's own privileges are counted as ownership
        r = public if g.grantee == PUBLIC else roles.get(g.grantee)
        if r is None:
            continue
        holder = "" if g.grantee == login else f"{g.grantee} "
        out.append(
            Capability(
                login,
                kind,
                g.privilege,
                g.kind,
                g.name,
                g.schema,
                g.grantee,
                (login, *r.hops, f"{holder}granted {_granted(g)}".strip()),
                r.set_role,
                r.chain,
                column=g.column,
                route=_route(r),
            )
        )
    for d in cat.defaults:
        writes = d.objtype in ("TABLES", "SEQUENCES") and d.privilege in _WRITE_PRIVS
        if not writes and not (d.objtype == "SCHEMAS" and d.privilege == "CREATE"):
            continue
        r = public if d.grantee == PUBLIC else roles.get(d.grantee)
        if r is None:
            continue
        where = f" in schema {d.schema}" if d.schema else ""
        kind = "future_write" if d.objtype != "SCHEMAS" else "schema_create"
        out.append(
            Capability(
                login,
                kind,
                d.privilege,
                d.objtype.lower(),
                f"future {d.objtype.lower()} of {d.creator}{where}",
                d.schema,
                d.grantee,
                (
                    login,
                    *r.hops,
                    f"default privileges of {d.creator}{where} grant {d.privilege} on new "
                    f"{d.objtype.lower()} to {d.grantee}",
                ),
                r.set_role,
                r.chain,
                route=_route(r),
            )
        )
    for name, r in roles.items():
        kind = _WRITE_ALL.get(name)
        if kind is not None:
            out.append(
                Capability(
                    login,
                    kind,
                    "INSERT, UPDATE, DELETE",
                    "database",
                    "all tables",
                    None,
                    name,
                    (login, *r.hops, f"{name}: writes every table"),
                    r.set_role,
                    r.chain,
                    route=_route(r),
                )
            )
    return out
