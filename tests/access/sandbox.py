"""A database and roles of a test's own, dropped after it, and what the server lets a role do."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import errors as pge
from psycopg import sql

from pgwarden.access.audit import AuditReport, audit
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, RolePolicy, Settings

_ids = itertools.count()


@dataclass
class Sandbox:
    """Database `db` on `cluster`; `n` names the roles by key."""

    cluster: Cluster
    db: str
    n: dict[str, str]
    settings: Settings = field(default_factory=Settings)

    def protect(self, migration: str, application: tuple[str, ...], readonly: str) -> None:
        """Environment `production`: protected, with this role policy (keys of `n`)."""
        policy = RolePolicy(
            migration=self.n[migration],
            application=tuple(self.n[k] for k in application),
            readonly=(self.n[readonly],),
            break_glass=("postgres",),
            superusers=("postgres",),
        )
        self.settings = Settings(
            environments={"production": Environment("production", True, policy)}
        )

    def audit(self) -> AuditReport:
        return audit(self.cluster.dsn(self.db), env="production", settings=self.settings)

    def connect(
        self, role: str = "postgres", *, autocommit: bool = False
    ) -> psycopg.Connection[tuple[object, ...]]:
        """A connection to `db` as `role` (a key of `n`, or a role name)."""
        dsn = self.cluster.dsn(self.db, self.n.get(role, role))
        return psycopg.connect(dsn, autocommit=autocommit)

    def can(self, role: str, statement: str, *, set_role: str | None = None) -> bool:
        """Whether the server lets `role` run `statement` (after SET ROLE `set_role`, if
        given), rolled back either way."""
        with self.connect(role) as c:
            try:
                if set_role:
                    c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.n[set_role])))
                c.execute(statement)
            except pge.InsufficientPrivilege:
                return False
            finally:
                c.rollback()
        return True


@contextmanager
def sandbox(cluster: Cluster, prefix: str, roles: dict[str, str]) -> Iterator[Sandbox]:
    """A new database and new roles (`roles`: key -> attributes, as "NOLOGIN"), in that
    order; the database and the roles are dropped on exit."""
    p = f"{prefix}{os.getpid()}_{next(_ids)}"
    n = {k: f"{p}_{k}" for k in roles}
    db = f"{p}_db"
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as c:
            for k, attributes in roles.items():
                c.execute(
                    sql.SQL("CREATE ROLE {} ").format(sql.Identifier(n[k])) + sql.SQL(attributes)
                )
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        yield Sandbox(cluster, db, n)
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            for v in n.values():
                c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(v)))
