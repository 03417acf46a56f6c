"""#16.4 through `manage.py pgwarden migrate`: when the next migration runs Python
(Django's executor, not the guarded one), the role policy is still checked first."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pgwarden.pg.cluster import Cluster
from tests.contrib.test_django_upgrades import manage, released

pytest.importorskip("django")


def _refused(
    db: str, pg_cluster: Cluster, tmp_path: Path, dev: str, roles: str
) -> subprocess.CompletedProcess[str]:
    """`manage.py pgwarden migrate` as `dev` on production, protected with the role policy
    `migration = "migrator"`, `break_glass = ["postgres"]` and `roles` (TOML lines), after
    the break-glass superuser migrated up to beta 0002: the documented role refusal."""
    cfg = tmp_path / "pgwarden.toml"
    cfg.write_text(
        "[environments.production]\nprotected = true\n"
        "[environments.production.roles]\n"
        'migration = "migrator"\nbreak_glass = ["postgres"]\n' + roles
    )
    journal = str(tmp_path / "journal.jsonl")
    common = ("--env", "production", "--yes", "--journal-file", journal, "--config", str(cfg))
    # up to beta 0002, as the break-glass superuser (recorded)
    for target in (("alpha", "--restamp"), ("beta", "0002")):
        r = manage(db, "pgwarden", "migrate", *target, *common, "--break-glass", "catch up")
        assert r.returncode == 0, r.stdout + r.stderr
    dev_dsn = pg_cluster.dsn(str(conninfo_to_dict(db)["dbname"]), dev)
    r = manage(dev_dsn, "pgwarden", "migrate", *common)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"connected as role {dev}, but only the migration role migrator" in r.stderr
    return r


def test_a_python_first_migration_is_refused_for_a_non_migration_role(
    db: str, conn: psycopg.Connection[Any], pg_cluster: Cluster, tmp_path: Path
) -> None:
    released(db, conn)
    dev = f"dj{os.getpid()}_dev"
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(dev)))
    try:
        # next is beta 0003 (RunPython first): a superuser developer is refused before it runs
        roles = f'superusers = ["postgres", "{dev}"]\n'
        r = _refused(db, pg_cluster, tmp_path, dev, roles)
        editor = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'beta_book' AND column_name = 'editor_id'"
        ).fetchone()
        assert editor == (0,)
        glass = conn.execute("SELECT count(*), min(reason) FROM pgwarden.break_glass").fetchone()
        assert glass == (2, "catch up")
        # what the check stopped: Django's executor, not the guarded run after it
        assert "through Django's executor" not in r.stdout
    finally:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(dev)))


def test_a_role_that_cannot_read_pgwarden_schema_gets_the_role_refusal(
    db: str, conn: psycopg.Connection[Any], pg_cluster: Cluster, tmp_path: Path
) -> None:
    """Not a superuser, so pgwarden's stamp is unreadable to it: with --env declared
    protected with a role policy, the role check comes first (exit 1, the documented
    refusal), not 'cannot read schema pgwarden' (exit 2)."""
    released(db, conn)
    dev = f"dj{os.getpid()}_ro"
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(dev)))
    try:
        # it reads the application's tables (Django loads its migration state), not pgwarden's
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(dev))
        )
        roles = f'readonly = ["{dev}"]\nsuperusers = ["postgres"]\n'
        r = _refused(db, pg_cluster, tmp_path, dev, roles)
        assert "cannot read schema" not in r.stderr
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(dev)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(dev)))
