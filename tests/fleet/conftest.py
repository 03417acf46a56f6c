"""A fleet of real databases: small `accounts` schemas on several real clusters.

Each database is a copy of a per-cluster template (CREATE DATABASE ... TEMPLATE:
cheap), stamped as the unprotected environment `staging` (as `pgwarden apply
--restamp` would adopt it), with pg_stat_statements installed where the server
preloads it. The DSNs travel in environment variables, as the docs ask.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgwarden.apply.identity import stamp_database
from pgwarden.pg.cluster import Cluster

_SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 20) g;
CREATE FUNCTION lookup(i int) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN i; END';
"""
FAST = (
    "CREATE OR REPLACE FUNCTION lookup(i int) RETURNS int LANGUAGE plpgsql AS 'BEGIN RETURN i; END'"
)
SLOW = (
    "CREATE OR REPLACE FUNCTION lookup(i int) RETURNS int LANGUAGE plpgsql "
    "AS 'BEGIN PERFORM pg_sleep(0.03); RETURN i; END'"
)


@dataclass(frozen=True)
class Member:
    name: str
    dsn: str
    env_var: str
    n: int
    cluster: Cluster


def preload_settings() -> dict[str, str]:
    return {"shared_preload_libraries": "pg_stat_statements", "max_connections": "200"}


def memory_tablespace(cluster: Cluster) -> Path | None:
    """A tablespace `fleet_mem` in /dev/shm (tmpfs) when there is one: fifty databases are
    fifty copies of the catalogs (~8 MB each), which a loaded disk writes slowly."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        return None
    where = Path(tempfile.mkdtemp(prefix="pgwarden-fleet-ts-", dir=shm))
    owner = getattr(cluster, "_run_as", None)
    if owner is not None:
        os.chown(where, owner[0], owner[1])
    with psycopg.connect(cluster.dsn(), autocommit=True) as c:
        c.execute(
            sql.SQL("CREATE TABLESPACE fleet_mem LOCATION {}").format(sql.Literal(str(where)))
        )
    return where


def make_template(cluster: Cluster, name: str = "fleet_tpl") -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(cluster.dsn(name), autocommit=True) as c:
        c.execute(_SCHEMA)
        row = c.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_stat_statements'"
        ).fetchone()
        preloaded = c.execute("SHOW shared_preload_libraries").fetchone()
        if row and row[0] and preloaded and "pg_stat_statements" in str(preloaded[0]):
            c.execute("CREATE EXTENSION pg_stat_statements")


def _has_memory_ts(c: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = c.execute("SELECT count(*) FROM pg_tablespace WHERE spcname = 'fleet_mem'").fetchone()
    return bool(row and row[0])


def make_members(
    clusters: Sequence[Cluster], count: int, prefix: str, template: str = "fleet_tpl"
) -> list[Member]:
    """`count` databases spread round-robin over `clusters`, stamped as staging (each
    cluster's databases created by a thread of its own)."""

    def create(n: int) -> Member:
        cluster = clusters[n % len(clusters)]
        name = f"{prefix}{n:03d}"
        with psycopg.connect(cluster.dsn(), autocommit=True) as c:
            c.execute(
                # FILE_COPY: no WAL image of the template per database (15+)
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY {}").format(
                    sql.Identifier(name),
                    sql.Identifier(template),
                    sql.SQL("TABLESPACE fleet_mem" if _has_memory_ts(c) else ""),
                )
            )
        dsn = cluster.dsn(name)
        with psycopg.connect(dsn, autocommit=True) as c:
            stamp_database(c, "staging", protected=False, by="fleet-tests")
        return Member(name, dsn, f"FLEET_DSN_{name.upper()}", n, cluster)

    def per_cluster(k: int) -> list[Member]:
        return [create(n) for n in range(1, count + 1) if n % len(clusters) == k]

    with ThreadPoolExecutor(len(clusters)) as pool:
        made = [m for ms in pool.map(per_cluster, range(len(clusters))) for m in ms]
    return sorted(made, key=lambda m: m.n)


def fleet_toml(fleets: dict[str, str], members: Sequence[Member], *, journal_dir: Path) -> str:
    """pgwarden.toml text: `fleets` maps a fleet name to its extra TOML (waves, gates...)."""
    targets = ",\n".join(
        f'  {{ name = "{m.name}", dsn_env = "{m.env_var}", '
        f'labels = {{ n = "{m.n}", major = "{m.cluster.installation.major}" }} }}'
        for m in members
    )
    parts = ["[environments.staging]\nprotected = false\n"]
    for name, extra in fleets.items():
        parts.append(
            f'[fleet.{name}]\norder = "n"\njournal_dir = "{journal_dir}"\n'
            f"targets = [\n{targets}\n]\n{extra}\n"
        )
    return "\n".join(parts)


def export(members: Sequence[Member], mp: pytest.MonkeyPatch) -> None:
    for m in members:
        mp.setenv(m.env_var, m.dsn)


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`pgwarden ARGS` in a subprocess (stdin closed, as in CI), from `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
        timeout=300,
        check=False,
    )


def has_column(dsn: str, column: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'accounts'::regclass "
            "AND attname = %s AND NOT attisdropped",
            (column,),
        ).fetchone()
        return bool(row and row[0])


def runs_of(dsn: str) -> list[tuple[str, str]]:
    """(state, plan_fingerprint) of every pgwarden run recorded in the database."""
    with psycopg.connect(dsn, autocommit=True) as c:
        if c.execute("SELECT to_regclass('pgwarden.runs')").fetchone() == (None,):
            return []
        return [
            (str(s), str(f))
            for s, f in c.execute("SELECT state, plan_fingerprint FROM pgwarden.runs")
        ]
