"""No password in the argv of any program pgwarden starts, nor in its messages.

A TCP cluster whose pg_hba requires scram-sha-256 for a role with a password;
pg_dump, pg_restore and psql are wrapped by scripts that record their argv and
exec the real program, so every run below is real and authenticates for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgwarden.backup import api
from pgwarden.backup.restore import describe_target, restore_backup
from pgwarden.errors import PgwardenError
from pgwarden.pg.binaries import find_installation, find_installations
from pgwarden.pg.cluster import Cluster
from pgwarden.rehearse.schema import dump_schema, resolve_schema

PASSWORD = "s3cret-Pw_4711"
ROLE = "secretive"
WRAPPED = ("pg_dump", "pg_restore", "psql")


@pytest.fixture(scope="module")
def scram_cluster() -> Iterator[Cluster]:
    """A loopback TCP cluster: postgres trusted (test set-up), every other role needs scram."""
    with Cluster.start(tcp=True, settings={"password_encryption": "scram-sha-256"}) as c:
        with psycopg.connect(c.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(PASSWORD)
                )
            )
            hba = c.root / "data" / "pg_hba.conf"
            hba.write_text(
                "local all all trust\n"
                "host all postgres 127.0.0.1/32 trust\n"
                "host all all 127.0.0.1/32 scram-sha-256\n"
            )
            conn.execute("SELECT pg_reload_conf()")
        yield c


def _url(c: Cluster, db: str) -> str:
    return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{c.port}/{db}"


def _new_db(c: Cluster, name: str, schema: str = "") -> str:
    c.create_database(name)
    if schema:
        with psycopg.connect(c.dsn(name), autocommit=True) as conn:
            conn.execute(schema.encode())
    return _url(c, name)


@pytest.fixture
def argv_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """PGWARDEN_PG_BINDIR pointing at a copy of the bin directory whose client programs
    append their argv (and whether PGPASSWORD reached them) to the returned file."""
    real = find_installation().bindir
    # World-readable, so that a throwaway cluster's server user (when run as root) can use it.
    wrap = Path(tempfile.mkdtemp(prefix="pgwarden-argv-")) / "bin"
    wrap.parent.chmod(0o755)
    wrap.mkdir(mode=0o755)
    log = tmp_path / "argv.log"
    for entry in real.iterdir():
        if entry.name in WRAPPED:
            script = wrap / entry.name
            script.write_text(
                "#!/bin/sh\n"
                f'printf "%s\\n" "$0" "$@" "PGPASSWORD=${{PGPASSWORD:+set}}" >> "{log}"\n'
                f'exec "{entry}" "$@"\n'
            )
            script.chmod(0o755)
        else:
            (wrap / entry.name).symlink_to(entry)
    monkeypatch.setenv("PGWARDEN_PG_BINDIR", str(wrap))
    find_installations.cache_clear()
    yield log
    find_installations.cache_clear()
    shutil.rmtree(wrap.parent, ignore_errors=True)


SCHEMA = (
    "CREATE TABLE t (id int PRIMARY KEY, v text);"
    " INSERT INTO t SELECT g, 'x' FROM generate_series(1, 50) g;"
)


def test_rehearse_schema_from_passes_no_password_in_argv(scram_cluster, argv_log):
    url = _new_db(scram_cluster, "schema_src", SCHEMA)
    source = resolve_schema([], schema_from=url)
    assert "CREATE TABLE public.t" in source.sql
    assert PASSWORD not in source.origin
    recorded = argv_log.read_text()
    assert "pg_dump" in recorded and "--schema-only" in recorded
    assert PASSWORD not in recorded
    assert "PGPASSWORD=set" in recorded  # it authenticated through the environment


def test_rehearse_schema_from_failure_message_has_no_password(scram_cluster, argv_log):
    url = _new_db(scram_cluster, "schema_denied", SCHEMA)
    with psycopg.connect(scram_cluster.dsn("schema_denied"), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE weak LOGIN PASSWORD '{PASSWORD}'")
    weak = url.replace(f"{ROLE}:", "weak:")
    with pytest.raises(PgwardenError) as info:
        dump_schema(weak)  # weak cannot read t: pg_dump fails after connecting
    assert "permission denied" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in argv_log.read_text()


def test_backup_create_and_restore_pass_no_password_in_argv(scram_cluster, argv_log, tmp_path):
    src = _new_db(scram_cluster, "backup_src", SCHEMA)
    cat = tmp_path / "catalogue"
    m = api.create(src, catalogue=cat)
    target = _new_db(scram_cluster, "backup_dst")
    result = restore_backup(api.open_catalogue(cat), m.id, describe_target(target))
    assert result.ok, result.mismatches
    recorded = argv_log.read_text()
    assert "--snapshot=" in recorded and "--exit-on-error" in recorded
    assert PASSWORD not in recorded
    assert os.environ.get("PGPASSWORD") is None  # pgwarden's own environment is untouched


def test_a_key_passphrase_is_refused_rather_than_put_in_argv():
    from pgwarden.errors import UsageError
    from pgwarden.pg.tool_conninfo import tool_connection

    with pytest.raises(UsageError) as info:
        tool_connection(f"host=db.example user=u sslpassword={PASSWORD}")
    assert PASSWORD not in str(info.value)
    assert "service=NAME" in str(info.value)


def test_django_rehearse_passes_no_password_in_argv(scram_cluster, argv_log, tmp_path):
    pytest.importorskip("django")
    project = Path(__file__).parent / "contrib" / "django_project"
    history = (
        "CREATE TABLE django_migrations (id bigserial PRIMARY KEY, app varchar(255) NOT NULL,"
        " name varchar(255) NOT NULL, applied timestamptz NOT NULL)"
    )
    env = {**os.environ, "PGWARDEN_DJANGO_DSN": _new_db(scram_cluster, "django_src", history)}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1] / "src"), str(project)])
    env.pop("DJANGO_SETTINGS_MODULE", None)
    out = subprocess.run(
        [sys.executable, str(project / "manage.py"), "pgwarden", "rehearse", "billing"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.stdout.startswith("rehearsal completed"), out.stdout + out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    recorded = argv_log.read_text()
    assert "--schema-only" in recorded and "PGPASSWORD=set" in recorded
    assert PASSWORD not in recorded
