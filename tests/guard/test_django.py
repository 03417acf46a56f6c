"""Django's ASGI handler behind GuardMiddleware, as docs/guard.md shows, on a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.guard.conftest import Locker, backends
from tests.guard.servers import free_port, wait_until

pytest.importorskip("django", reason="Django is a dev dependency for this test")
ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Retry-After", "")


def test_django_app_sheds_while_locked_and_recovers(invoices_db: str, admin):
    port = free_port()
    env = {**os.environ, "GUARD_DJANGO_DSN": invoices_db, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.guard.django_app:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _probe(base), what="the Django app to start")
        assert _get(f"{base}/invoices/") == (200, '{"count": 100}')
        with Locker(invoices_db):
            # Lock timeouts answer 500 until the breaker has seen enough of them (how many
            # depends on which earlier calls share its window); then it sheds with 503.
            seen = [_get(f"{base}/invoices/") for _ in range(6)]
            codes = [code for code, _ in seen]
            assert codes[0] == 500
            assert 503 in codes and set(codes) <= {500, 503}
            shed = seen[codes.index(503)]
            assert int(shed[1]) >= 1  # Retry-After
            assert _get(f"{base}/healthz") == (200, "ok")  # exempt, works during the lock
            assert backends(admin, "guard-django") <= 4  # never more than the pool's maximum
        wait_until(lambda: _get(f"{base}/invoices/")[0] == 200, what="recovery after the lock")
    finally:
        server.terminate()
        server.communicate(timeout=30)


def _probe(base: str) -> bool:
    try:
        return _get(f"{base}/healthz")[0] == 200
    except OSError:
        return False
