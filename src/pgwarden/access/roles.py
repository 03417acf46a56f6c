"""What the live catalog says about roles: attributes, memberships, ownership, grants.

Read in one read-only REPEATABLE READ transaction, so every part describes the
same moment. Default ACLs are made explicit with `acldefault`, so "no ACL"
(the owner has everything, PUBLIC what the object type gives it) and an explicit
ACL are read the same way. Membership options follow the server: from
PostgreSQL 16 each grant carries INHERIT and SET (`pg_auth_members`); before
16 a grant is inherited when the member role has `rolinherit`, and SET ROLE
is allowed along any grant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

__all__ = [
    "PUBLIC",
    "Catalog",
    "DefaultGrant",
    "Definer",
    "Grant",
    "Membership",
    "Owned",
    "Role",
    "display_name",
    "read_catalog",
]

PUBLIC = "PUBLIC"  # the grantee name of a grant to every role (grantee oid 0)

# Schemas no application table lives in; pgwarden's own journal is audited like any other.
_SYSTEM_SCHEMAS = sql.SQL(
    "nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_toast%' "
    "AND nspname NOT LIKE 'pg\\_temp\\_%'"
)
# Objects that belong to an extension are the extension's business (dropped with it).
_NOT_EXTENSION = sql.SQL(
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = {}::regclass AND d.objid = {} "
    "AND d.deptype = 'e')"
)


@dataclass(frozen=True, slots=True)
class Role:
    """One role and its attributes (`pg_roles`)."""

    oid: int
    name: str
    login: bool
    superuser: bool
    inherit: bool
    createrole: bool
    createdb: bool
    replication: bool
    bypassrls: bool


@dataclass(frozen=True, slots=True)
class Membership:
    """`member` is a member of `role`, with the grant's options."""

    role: str
    member: str
    admin: bool
    inherit: bool  # the member uses the role's privileges without SET ROLE
    set: bool  # the member may SET ROLE to it
    implicit: bool = False  # pg_database_owner: the database owner, not a grant
    grantors: tuple[str, ...] = ()  # 16+: one grant per grantor (REVOKE ... GRANTED BY each)


@dataclass(frozen=True, slots=True)
class Owned:
    """An object of this database and its owner."""

    kind: str  # schema, table, partitioned table, view, materialized view, foreign table,
    #            sequence, function, procedure, aggregate, database
    name: str  # schema-qualified, quoted where needed
    schema: str | None
    owner: str
    parts: tuple[str, ...] = ()  # the name's parts as stored (schema, relation), unquoted


@dataclass(frozen=True, slots=True)
class Grant:
    """One privilege on one object, to one grantee (`PUBLIC` for everyone)."""

    kind: str  # as `Owned.kind`
    name: str
    schema: str | None
    owner: str
    grantee: str
    privilege: str  # INSERT, UPDATE, CREATE, TEMPORARY, ...
    grantable: bool
    parts: tuple[str, ...] = ()  # the object's name parts as stored, unquoted
    column: str | None = None  # a column-level grant (`GRANT UPDATE (col) ON t`), as stored


@dataclass(frozen=True, slots=True)
class Definer:
    """A SECURITY DEFINER function or procedure: whoever may EXECUTE it runs its body with
    the rights of its owner. `grants` are the EXECUTE grants on it (`PUBLIC` by default)."""

    kind: str  # function, procedure
    name: str  # schema.name(argument types), quoted where needed
    schema: str
    owner: str
    parts: tuple[str, str, str]  # schema, name as stored, identity arguments (SQL)
    language: str
    body: str  # prosrc: the source of sql and plpgsql functions
    grants: tuple[str, ...]  # grantees of EXECUTE, `PUBLIC` for every role


@dataclass(frozen=True, slots=True)
class DefaultGrant:
    """`ALTER DEFAULT PRIVILEGES FOR ROLE creator [IN SCHEMA schema] GRANT privilege ON
    objtype TO grantee`: what objects `creator` creates tomorrow will grant."""

    creator: str
    schema: str | None  # None: every schema
    objtype: str  # TABLES, SEQUENCES, FUNCTIONS, TYPES, SCHEMAS
    grantee: str
    privilege: str


@dataclass(frozen=True, slots=True)
class Catalog:
    """The roles and privileges of one database, read at one moment."""

    server_version: int  # e.g. 150004
    database: str
    database_owner: str
    current_user: str
    session_user: str
    roles: dict[str, Role]
    memberships: tuple[Membership, ...]
    owned: tuple[Owned, ...]
    grants: tuple[Grant, ...]
    defaults: tuple[DefaultGrant, ...]
    # sequences owned by a table's column (serial, identity): (schema, sequence) ->
    # (schema, table); they change owner with their table
    sequence_owners: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    definers: tuple[Definer, ...] = ()
    # tables with row level security enabled: (shown name, schema, owner, FORCE ROW LEVEL
    # SECURITY: the owner is subject to the policies too)
    rls: tuple[tuple[str, str, str, bool], ...] = ()

    @property
    def major(self) -> int:
        return self.server_version // 10000

    def login_roles(self) -> list[Role]:
        return sorted((r for r in self.roles.values() if r.login), key=lambda r: r.name)


_RELKIND = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
}
_PROKIND = {"f": "function", "p": "procedure", "a": "aggregate", "w": "function"}
_OBJTYPE = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}


def _roles(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, Role]:
    rows = conn.execute(
        sql.SQL(
            "SELECT oid::bigint, rolname, rolcanlogin, rolsuper, rolinherit, rolcreaterole, "
            "rolcreatedb, rolreplication, rolbypassrls FROM pg_roles"
        )
    ).fetchall()
    out: dict[str, Role] = {}
    for oid, name, *flags in rows:
        out[str(name)] = Role(int(str(oid)), str(name), *(bool(f) for f in flags))
    return out


def _memberships(
    conn: psycopg.Connection[tuple[object, ...]],
    roles: dict[str, Role],
    major: int,
    database_owner: str,
) -> tuple[Membership, ...]:
    if major >= 16:
        query = sql.SQL(
            "SELECT r.rolname, m.rolname, a.admin_option, a.inherit_option, a.set_option, "
            "pg_get_userbyid(a.grantor) "
            "FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
            "JOIN pg_roles m ON m.oid = a.member"
        )
    else:
        query = sql.SQL(
            "SELECT r.rolname, m.rolname, a.admin_option, m.rolinherit, true, "
            "pg_get_userbyid(a.grantor) "
            "FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
            "JOIN pg_roles m ON m.oid = a.member"
        )
    found: dict[tuple[str, str], Membership] = {}
    for role, member, admin, inherit, can_set, grantor in conn.execute(query):
        key = (str(role), str(member))
        m = Membership(
            str(role),
            str(member),
            bool(admin),
            bool(inherit),
            bool(can_set),
            False,
            (str(grantor),),
        )
        old = found.get(key)
        if old is not None:  # 16+: one grant per grantor; the member has the union
            m = Membership(
                m.role,
                m.member,
                old.admin or m.admin,
                old.inherit or m.inherit,
                old.set or m.set,
                False,
                (*old.grantors, *m.grantors),
            )
        found[key] = m
    if "pg_database_owner" in roles:  # 14+: the database owner is its only, implicit member
        owner = roles.get(database_owner)
        found[("pg_database_owner", database_owner)] = Membership(
            "pg_database_owner",
            database_owner,
            admin=False,
            inherit=True if major >= 16 else bool(owner and owner.inherit),
            set=False,
            implicit=True,
        )
    return tuple(sorted(found.values(), key=lambda m: (m.member, m.role)))


_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


def display_name(*parts: str) -> str:
    """`parts` joined with dots, each double-quoted only where SQL needs it."""
    return ".".join(p if _PLAIN.fullmatch(p) else '"' + p.replace('"', '""') + '"' for p in parts)


def _grantee(value: object) -> str:
    return PUBLIC if value is None else str(value)


def read_catalog(conn: psycopg.Connection[tuple[object, ...]]) -> Catalog:
    """Roles, memberships, ownership, grants and default privileges of the connected
    database, in one snapshot. Read only; needs no privilege beyond CONNECT."""
    with conn.transaction():
        conn.execute(sql.SQL("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        # names printed by the server (regprocedure) carry their schema whatever the
        # session's search_path: `function public.purge()`, never an ambiguous `purge()`
        conn.execute(sql.SQL("SET LOCAL search_path = pg_catalog"))
        return _read(conn)


def _read(conn: psycopg.Connection[tuple[object, ...]]) -> Catalog:
    version = conn.info.server_version
    major = version // 10000
    row = conn.execute(
        sql.SQL(
            "SELECT d.datname, pg_get_userbyid(d.datdba), current_user, session_user "
            "FROM pg_database d WHERE d.datname = current_database()"
        )
    ).fetchone()
    assert row is not None
    database, db_owner, current, session = (str(v) for v in row)
    roles = _roles(conn)
    memberships = _memberships(conn, roles, major, db_owner)
    qdb = display_name(database)
    owned: list[Owned] = [Owned("database", qdb, None, db_owner, (database,))]
    grants: list[Grant] = []

    # database privileges
    for grantee, priv, grantable in conn.execute(
        sql.SQL(
            "SELECT pg_get_userbyid(NULLIF(a.grantee, 0)), a.privilege_type, a.is_grantable "
            "FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
            "WHERE d.datname = current_database()"
        )
    ):
        grants.append(
            Grant(
                "database",
                qdb,
                None,
                db_owner,
                _grantee(grantee),
                str(priv),
                bool(grantable),
                (database,),
            )
        )

    # schemas
    for nsp, owner, grantee, priv, grantable in conn.execute(
        sql.SQL(
            "SELECT n.nspname, pg_get_userbyid(n.nspowner), "
            "pg_get_userbyid(NULLIF(a.grantee, 0)), a.privilege_type, a.is_grantable "
            "FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a "
            "WHERE {} AND {} ORDER BY 1"
        ).format(
            _SYSTEM_SCHEMAS,
            _NOT_EXTENSION.format(sql.Literal("pg_namespace"), sql.SQL("n.oid")),
        )
    ):
        grants.append(
            Grant(
                "schema",
                display_name(str(nsp)),
                str(nsp),
                str(owner),
                _grantee(grantee),
                str(priv),
                bool(grantable),
                (str(nsp),),
            )
        )
    for nsp, owner in conn.execute(
        sql.SQL(
            "SELECT n.nspname, pg_get_userbyid(n.nspowner) FROM pg_namespace n "
            "WHERE {} AND {} ORDER BY 1"
        ).format(
            _SYSTEM_SCHEMAS,
            _NOT_EXTENSION.format(sql.Literal("pg_namespace"), sql.SQL("n.oid")),
        )
    ):
        owned.append(Owned("schema", display_name(str(nsp)), str(nsp), str(owner), (str(nsp),)))

    # relations: ownership and privileges
    rel_where = sql.SQL("c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {} AND {}").format(
        _SYSTEM_SCHEMAS, _NOT_EXTENSION.format(sql.Literal("pg_class"), sql.SQL("c.oid"))
    )
    for nsp, rel, kind, owner in conn.execute(
        sql.SQL(
            "SELECT n.nspname, c.relname, c.relkind::text, pg_get_userbyid(c.relowner) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {} ORDER BY 1, 2"
        ).format(rel_where)
    ):
        name = display_name(str(nsp), str(rel))
        owned.append(Owned(_RELKIND[str(kind)], name, str(nsp), str(owner), (str(nsp), str(rel))))
    for nsp, rel, kind, owner, grantee, priv, grantable in conn.execute(
        sql.SQL(
            "SELECT n.nspname, c.relname, c.relkind::text, pg_get_userbyid(c.relowner), "
            "pg_get_userbyid(NULLIF(a.grantee, 0)), a.privilege_type, a.is_grantable "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, "
            "aclexplode(coalesce(c.relacl, acldefault("
            "CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))) a "
            "WHERE {} ORDER BY 1, 2"
        ).format(rel_where)
    ):
        grants.append(_relation_grant(nsp, rel, kind, owner, grantee, priv, grantable))

    grants += _column_grants(conn, rel_where)

    # functions and procedures: ownership (an owner can replace or drop them)
    for nsp, signature, kind, owner in conn.execute(
        sql.SQL(
            "SELECT n.nspname, p.oid::regprocedure::text, p.prokind::text, "
            "pg_get_userbyid(p.proowner) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {} AND {} ORDER BY 1, 2"
        ).format(_SYSTEM_SCHEMAS, _NOT_EXTENSION.format(sql.Literal("pg_proc"), sql.SQL("p.oid")))
    ):
        owned.append(
            Owned(_PROKIND.get(str(kind), "function"), str(signature), str(nsp), str(owner))
        )

    sequence_owners: dict[tuple[str, str], tuple[str, str]] = {}
    for sn, sq, tn, tb in conn.execute(
        sql.SQL(
            "SELECT sn.nspname, s.relname, tn.nspname, t.relname FROM pg_depend d "
            "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
            "JOIN pg_namespace sn ON sn.oid = s.relnamespace "
            "JOIN pg_class t ON t.oid = d.refobjid "
            "JOIN pg_namespace tn ON tn.oid = t.relnamespace "
            "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
            "AND d.deptype IN ('a', 'i')"
        )
    ):
        sequence_owners[(str(sn), str(sq))] = (str(tn), str(tb))
    defaults: list[DefaultGrant] = []
    for creator, nsp, objtype, grantee, priv in conn.execute(
        sql.SQL(
            "SELECT pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype::text, "
            "pg_get_userbyid(NULLIF(a.grantee, 0)), a.privilege_type "
            "FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, "
            "aclexplode(d.defaclacl) a ORDER BY 1, 2, 3, 4, 5"
        )
    ):
        who = _grantee(grantee)
        if who == str(creator):
            continue  # the creator's own privileges: it owns what it creates anyway
        defaults.append(
            DefaultGrant(
                str(creator),
                None if nsp is None else str(nsp),
                _OBJTYPE.get(str(objtype), str(objtype)),
                who,
                str(priv),
            )
        )
    return Catalog(
        server_version=version,
        database=database,
        database_owner=db_owner,
        current_user=current,
        session_user=session,
        roles=roles,
        memberships=memberships,
        owned=tuple(owned),
        grants=tuple(grants),
        defaults=tuple(defaults),
        sequence_owners=sequence_owners,
        definers=_definers(conn),
        rls=tuple(
            (display_name(str(nsp), str(rel)), str(nsp), str(owner), bool(forced))
            for nsp, rel, owner, forced in conn.execute(
                sql.SQL(
                    "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), "
                    "c.relforcerowsecurity FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relrowsecurity AND {} ORDER BY 1, 2"
                ).format(rel_where)
            )
        ),
    )


def _column_grants(
    conn: psycopg.Connection[tuple[object, ...]], rel_where: sql.Composable
) -> list[Grant]:
    """Column-level grants (`pg_attribute.attacl`: NULL when there are none)."""
    out: list[Grant] = []
    for nsp, rel, kind, owner, col, grantee, priv, grantable in conn.execute(
        sql.SQL(
            "SELECT n.nspname, c.relname, c.relkind::text, pg_get_userbyid(c.relowner), "
            "a.attname, pg_get_userbyid(NULLIF(x.grantee, 0)), x.privilege_type, x.is_grantable "
            "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(a.attacl) x "
            "WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND {} "
            "ORDER BY 1, 2, a.attnum"
        ).format(rel_where)
    ):
        out.append(_relation_grant(nsp, rel, kind, owner, grantee, priv, grantable, str(col)))
    return out


def _relation_grant(
    nsp: object,
    rel: object,
    kind: object,
    owner: object,
    grantee: object,
    priv: object,
    grantable: object,
    column: str | None = None,
) -> Grant:
    """A privilege on a relation (or one of its columns) from a row of aclexplode()."""
    return Grant(
        _RELKIND[str(kind)],
        display_name(str(nsp), str(rel)),
        str(nsp),
        str(owner),
        _grantee(grantee),
        str(priv),
        bool(grantable),
        (str(nsp), str(rel)),
        column,
    )


def _definers(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[Definer, ...]:
    """SECURITY DEFINER functions and procedures one can call (not trigger functions, not
    an extension's), with their EXECUTE grants (the default ACL gives PUBLIC EXECUTE)."""
    found: dict[int, Definer] = {}
    for oid, nsp, name, args, kind, owner, lang, body, grantee in conn.execute(
        sql.SQL(
            "SELECT p.oid::bigint, n.nspname, p.proname, "
            "pg_get_function_identity_arguments(p.oid), p.prokind::text, "
            "pg_get_userbyid(p.proowner), l.lanname, p.prosrc, "
            "pg_get_userbyid(NULLIF(a.grantee, 0)) "
            "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "JOIN pg_language l ON l.oid = p.prolang, "
            "aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
            "WHERE p.prosecdef AND p.prokind IN ('f', 'p') AND a.privilege_type = 'EXECUTE' "
            "AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype) "
            "AND {} AND {} ORDER BY 2, 3, 4"
        ).format(_SYSTEM_SCHEMAS, _NOT_EXTENSION.format(sql.Literal("pg_proc"), sql.SQL("p.oid")))
    ):
        key = int(str(oid))
        old = found.get(key)
        who = _grantee(grantee)
        if old is not None:
            found[key] = Definer(
                old.kind, old.name, old.schema, old.owner, old.parts, old.language, old.body,
                (*old.grants, who),
            )  # fmt: skip
            continue
        found[key] = Definer(
            "procedure" if str(kind) == "p" else "function",
            f"{display_name(str(nsp), str(name))}({args})",
            str(nsp),
            str(owner),
            (str(nsp), str(name), str(args)),
            str(lang),
            str(body or ""),
            (who,),
        )
    return tuple(found.values())
