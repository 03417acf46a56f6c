"""A guarded pool that cannot connect says why, not only that no connection came in time.

The pool connects in the background; when its attempts fail, `DatabaseUnavailable` names
the last failure (wrong password, unknown database, unknown host) and what to fix, never
the password. A pool that is only full keeps its plain message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgwarden.guard import (
    AsyncGuardedPool,
    BreakerPolicy,
    DatabaseUnavailable,
    Guard,
    GuardedPool,
    PoolLimits,
)
from pgwarden.pg.cluster import Cluster
from tests.guard.servers import wait_until

PASSWORD = "guard-Pw_0815-secret"
ROLE = "guarded_app"


@pytest.fixture(scope="module")
def scram() -> Iterator[Cluster]:
    """A loopback TCP cluster: postgres trusted (set-up), ROLE needs its scram password."""
    with Cluster.start(tcp=True, settings={"password_encryption": "scram-sha-256"}) as c:
        with psycopg.connect(c.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(PASSWORD)
                )
            )
            (c.root / "data" / "pg_hba.conf").write_text(
                "local all all trust\n"
                "host all postgres 127.0.0.1/32 trust\n"
                "host all all 127.0.0.1/32 scram-sha-256\n"
            )
            conn.execute("SELECT pg_reload_conf()")
        yield c


def _guard() -> Guard:
    return Guard("app", breaker=BreakerPolicy(min_calls=100), observers=[])


LIMITS = PoolLimits(min_size=1, max_size=2, acquire_timeout_ms=500)


def _failure(conninfo: str) -> str:
    """The message of the `DatabaseUnavailable` a request gets from a pool on `conninfo`,
    once the pool's first connection attempt (started as it opens) has failed."""
    with GuardedPool(conninfo, _guard(), limits=LIMITS) as pool:
        wait_until(lambda: pool.failures.last is not None, what="a failed connection attempt")
        with pytest.raises(DatabaseUnavailable) as exc, pool.connection():
            pass
    return str(exc.value)


def test_a_wrong_password_is_named_without_the_password(scram: Cluster) -> None:
    said = _failure(f"postgresql://{ROLE}:wrong-{PASSWORD}@127.0.0.1:{scram.port}/postgres")
    assert "no database connection within 500 ms" in said, said
    assert f'password authentication failed for user "{ROLE}"' in said, said
    assert "check the user and password" in said, said
    assert PASSWORD not in said


def test_an_unknown_database_is_named(scram: Cluster) -> None:
    said = _failure(f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{scram.port}/no_such_db")
    assert 'database "no_such_db" does not exist' in said, said
    assert "check the database name" in said, said
    assert PASSWORD not in said


def test_an_unknown_host_is_named() -> None:
    said = _failure(f"postgresql://{ROLE}:{PASSWORD}@no-such-host.invalid:5432/postgres")
    assert "attempt to guarded_app@no-such-host.invalid:5432/postgres failed" in said, said
    assert "reachable" in said, said
    assert PASSWORD not in said


def test_the_async_pool_names_a_wrong_password(scram: Cluster) -> None:
    conninfo = f"postgresql://{ROLE}:wrong-{PASSWORD}@127.0.0.1:{scram.port}/postgres"

    async def attempt() -> str:
        async with AsyncGuardedPool(conninfo, _guard(), limits=LIMITS) as pool:
            for _ in range(1_000):  # at most 20 s: a hang guard, not a timing test
                if pool.failures.last is not None:
                    break
                await asyncio.sleep(0.02)
            with pytest.raises(DatabaseUnavailable) as exc:
                async with pool.connection():
                    pass
        return str(exc.value)

    said = asyncio.run(attempt())
    assert f'password authentication failed for user "{ROLE}"' in said, said
    assert PASSWORD not in said
