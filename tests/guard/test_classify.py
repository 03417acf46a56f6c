import psycopg
import psycopg_pool
import pytest

from pgwarden.guard import CircuitOpen, DatabaseUnavailable, Outcome, classify
from tests.guard.conftest import Locker


def test_lock_timeout_and_statement_timeout_are_failures(invoices_db):
    with Locker(invoices_db), psycopg.connect(invoices_db, autocommit=True) as c:
        c.execute("SET lock_timeout = '50ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable) as lock_info:
            c.execute("SELECT * FROM invoices")
        c.execute("SET statement_timeout = '50ms'")
        with pytest.raises(psycopg.errors.QueryCanceled) as stmt_info:
            c.execute("SELECT pg_sleep(5)")
    assert classify(lock_info.value) is Outcome.FAILURE
    assert classify(stmt_info.value) is Outcome.FAILURE


def test_connect_failure_is_a_failure(invoices_db):
    from tests.guard.servers import free_port

    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(f"host=127.0.0.1 port={free_port()} connect_timeout=2")
    assert classify(info.value) is Outcome.FAILURE


def test_application_errors_say_nothing_about_health(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(psycopg.errors.UniqueViolation) as info:
        conn.execute("INSERT INTO t VALUES (1)")
    assert classify(info.value) is Outcome.IGNORE
    assert classify(ValueError("x")) is Outcome.IGNORE
    assert classify(None) is Outcome.SUCCESS


def test_pool_timeout_and_wrapped_errors():
    assert classify(psycopg_pool.PoolTimeout()) is Outcome.FAILURE
    assert classify(DatabaseUnavailable("x", retry_after_s=1, guard="g")) is Outcome.FAILURE
    assert classify(CircuitOpen("x", retry_after_s=1, guard="g")) is Outcome.IGNORE

    class FrameworkError(Exception):  # e.g. django.db.utils.OperationalError
        pass

    wrapped = FrameworkError("wrapped")
    wrapped.__cause__ = psycopg.errors.LockNotAvailable()
    assert classify(wrapped) is Outcome.FAILURE
