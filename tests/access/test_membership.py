"""Membership chains as the server decides them, on every version: the audit's reach of
each login role matches pg_has_role (USAGE: inherited now; SET / MEMBER before 16: after
SET ROLE), and what it claims a role can do, the role really can do."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors as pge
from psycopg import sql

from pgwarden.access.capabilities import capabilities, reach
from pgwarden.access.roles import read_catalog
from pgwarden.access.verdict import judge
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import RolePolicy

_ids = itertools.count()


def _q(s: str) -> sql.SQL:
    return sql.SQL(s)


@pytest.fixture
def graph(pg_any: Cluster) -> Iterator[tuple[Cluster, str, dict[str, str], int]]:
    """Roles granted the owner of a table in every way the server allows."""
    p = f"mg{os.getpid()}_{next(_ids)}"
    names = {
        n: f"{p}_{n}"
        for n in (
            "owner",
            "mid",
            "mid2",
            "inh",
            "noinh",
            "noset",
            "none",
            "chain",
            "chainnoset",
            "admin",
            "su",
            "writer",
        )
    }
    db = f"{p}_db"
    major = 0
    with psycopg.connect(pg_any.dsn(), autocommit=True) as c:
        major = c.info.server_version // 10000
        n = {k: sql.Identifier(v) for k, v in names.items()}
        for k in ("owner", "mid", "mid2"):
            c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(n[k]))
        c.execute(sql.SQL("CREATE ROLE {} NOLOGIN SUPERUSER").format(n["su"]))
        for k in ("inh", "noinh", "noset", "none", "chain", "chainnoset", "admin", "writer"):
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(n[k]))
        c.execute(sql.SQL("GRANT {} TO {}").format(n["owner"], n["inh"]))
        c.execute(sql.SQL("GRANT {} TO {}").format(n["mid"], n["chain"]))
        c.execute(sql.SQL("GRANT {} TO {}").format(n["owner"], n["mid"]))
        c.execute(sql.SQL("GRANT {} TO {}").format(n["su"], n["chain"]))
        c.execute(sql.SQL("GRANT pg_write_all_data TO {}").format(n["writer"]))
        if major >= 16:
            g = "GRANT {} TO {} WITH "
            c.execute(sql.SQL(g + "INHERIT FALSE").format(n["owner"], n["noinh"]))
            c.execute(sql.SQL(g + "SET FALSE").format(n["owner"], n["noset"]))
            c.execute(sql.SQL(g + "INHERIT FALSE, SET FALSE").format(n["owner"], n["none"]))
            c.execute(sql.SQL(g + "SET FALSE").format(n["mid2"], n["chainnoset"]))
            c.execute(sql.SQL(g + "INHERIT FALSE").format(n["owner"], n["mid2"]))
            c.execute(
                sql.SQL(g + "ADMIN TRUE, INHERIT FALSE, SET FALSE").format(n["owner"], n["admin"])
            )
        else:  # before 16 inheritance is the member's attribute; SET ROLE follows any grant
            c.execute(sql.SQL("ALTER ROLE {} NOINHERIT").format(n["noinh"]))
            c.execute(sql.SQL("GRANT {} TO {}").format(n["owner"], n["noinh"]))
            c.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(n["owner"], n["admin"]))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with psycopg.connect(pg_any.dsn(db), autocommit=True) as c:
        c.execute("CREATE TABLE t (id int)")
        c.execute(sql.SQL("ALTER TABLE t OWNER TO {}").format(sql.Identifier(names["owner"])))
    yield pg_any, db, names, major
    with psycopg.connect(pg_any.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
        for v in names.values():
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(v)))


def test_reach_matches_pg_has_role(graph: tuple[Cluster, str, dict[str, str], int]) -> None:
    cluster, db, names, major = graph
    owner = names["owner"]
    with psycopg.connect(cluster.dsn(db), autocommit=True) as c:
        cat = read_catalog(c)
        for key in ("inh", "noinh", "noset", "none", "chain", "chainnoset", "admin", "writer"):
            login = names[key]
            usage, member = c.execute(
                "SELECT pg_has_role(%s, %s, 'USAGE'), pg_has_role(%s, %s, 'MEMBER')",
                [login, owner, login, owner],
            ).fetchone() or (None, None)
            can_set = member
            if major >= 16:
                row = c.execute("SELECT pg_has_role(%s, %s, 'SET')", [login, owner]).fetchone()
                can_set = bool(row and row[0])
            ours = reach(cat, login).get(owner)
            assert (ours is not None and not ours.set_role) == usage, (key, ours)
            assert (ours is not None and not ours.admin_self_grant) == bool(usage or can_set), (
                key,
                ours,
            )
    if major >= 16:  # the ones the old single-walk model got wrong
        assert owner not in reach(cat, names["chainnoset"])
        assert owner not in reach(cat, names["none"])
        admin = reach(cat, names["admin"])[owner]
        assert admin.admin_self_grant and admin.hops[-1] == f"can GRANT {owner} to itself"


def test_what_the_audit_claims_the_server_allows(
    graph: tuple[Cluster, str, dict[str, str], int],
) -> None:
    cluster, db, names, _ = graph
    with psycopg.connect(cluster.dsn(db), autocommit=True) as c:
        cat = read_catalog(c)
    caps = {
        r.name: capabilities(cat, r.name) for r in cat.login_roles() if r.name in names.values()
    }
    policy = RolePolicy(migration=None, readonly=tuple(names.values()))
    verdicts, _ = judge(cat, caps, policy, protected=True, env="production")
    codes = {v.role: {f.code for f in v.findings} for v in verdicts}
    # chain -> mid -> owner (INHERIT) owns t; chain -> SET ROLE su is a superuser
    assert "PW502" in codes[names["chain"]] and "PW501" in codes[names["chain"]]
    assert "PW503" in codes[names["writer"]]  # pg_write_all_data
    su = next(x for x in caps[names["chain"]] if x.kind == "superuser")
    assert su.set_role and su.path[-2] == f"SET ROLE {names['su']}"
    # every role the audit says can drop t really can (after SET ROLE where it says so);
    # every role it says cannot, cannot
    for key in ("inh", "noinh", "noset", "none", "chain", "chainnoset"):
        login = names[key]
        owns = [x for x in caps[login] if x.kind == "owner" and x.object == "public.t"]
        with psycopg.connect(cluster.dsn(db, login)) as c:
            if owns and owns[0].set_role:
                c.execute(_q("SET ROLE {}").format(sql.Identifier(names["owner"])))
            if owns:
                c.execute("DROP TABLE t")  # in a transaction: rolled back below
            else:
                with pytest.raises(pge.InsufficientPrivilege):
                    c.execute("DROP TABLE t")
            c.rollback()
