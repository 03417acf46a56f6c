"""How long `pgwarden audit` takes on a large catalog: N tables owned by the application
role, a developer member of it, per-table grants to a reporting role; optionally R
SECURITY DEFINER functions of the application role (EXECUTE to PUBLIC, the default) and a
column-level UPDATE grant to the reporting role on every tenth table. Prints the time to
read the catalog, compute every login role's capabilities and verdict, and write the fix
plan. Usage: python bench/audit_catalog.py [tables] [server major] [routines]"""

from __future__ import annotations

import sys
import time

import psycopg

from pgwarden.access.audit import audit_connection
from pgwarden.access.capabilities import capabilities
from pgwarden.access.roles import read_catalog
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.settings import Environment, RolePolicy, Settings


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    major = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
    routines = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with Cluster.start(find_installation(major)) as c:
        with psycopg.connect(c.dsn(), autocommit=True) as conn:
            for r in ("migrator", "app", "dev", "reporting"):
                conn.execute(f"CREATE ROLE {r} LOGIN")
            conn.execute("GRANT app TO dev")
            conn.execute("CREATE DATABASE shop OWNER app")
        with psycopg.connect(c.dsn("shop", "app")) as conn:
            for i in range(n):
                conn.execute(f"CREATE TABLE t{i} (id bigserial PRIMARY KEY, v text)")
                conn.execute(f"GRANT SELECT, INSERT ON t{i} TO reporting")
                if routines and i % 10 == 0:
                    conn.execute(f"GRANT UPDATE (v) ON t{i} TO reporting")
            for i in range(routines):
                conn.execute(
                    f"CREATE FUNCTION f{i}() RETURNS int LANGUAGE sql SECURITY DEFINER "
                    "AS 'SELECT 1'"
                )
            conn.commit()
        policy = RolePolicy(
            migration="migrator",
            application=("app",),
            readonly=("dev", "reporting"),
            superusers=("postgres",),
            break_glass=("postgres",),
        )
        settings = Settings(environments={"prod": Environment("prod", True, policy)})
        with psycopg.connect(c.dsn("shop"), autocommit=True) as conn:
            t0 = time.perf_counter()
            cat = read_catalog(conn)
            t1 = time.perf_counter()
            caps = {r.name: capabilities(cat, r.name) for r in cat.login_roles()}
            t2 = time.perf_counter()
            report = audit_connection(conn, env="prod", settings=settings)
            t3 = time.perf_counter()
            plan = report.fix_plan()
            assert plan is not None
            text = plan.render(conn, [])
            t4 = time.perf_counter()
    total = sum(len(v) for v in caps.values())
    print(
        f"{n} tables ({n * 2} relations), {len(cat.grants)} grants, {len(cat.definers)} "
        f"SECURITY DEFINER routines, {total} capabilities"
    )
    print(f"read catalog      {t1 - t0:6.2f} s")
    print(f"capabilities      {t2 - t1:6.2f} s")
    print(f"whole audit       {t3 - t2:6.2f} s  ({report.count('error')} errors)")
    print(f"fix plan          {t4 - t3:6.2f} s  ({len(text.splitlines())} lines)")


if __name__ == "__main__":
    main()
