"""The 503 a guard answers with, shared by the ASGI and WSGI middleware."""

from __future__ import annotations

import json
import random

from pgwarden.guard.errors import Shed

__all__ = ["retry_after_s", "shed_body", "shed_headers"]


def retry_after_s(exc: BaseException) -> int:
    """Retry-After seconds: the shed's own value, else 1 to 3 s (jittered)."""
    if isinstance(exc, Shed):
        return exc.retry_after_s
    return 1 + random.randint(0, 2)


def shed_body(exc: BaseException) -> bytes:
    reason = exc.reason if isinstance(exc, Shed) else "database"
    return json.dumps({"error": "database_unavailable", "reason": reason}).encode()


def shed_headers(exc: BaseException, body: bytes) -> list[tuple[str, str]]:
    reason = exc.reason if isinstance(exc, Shed) else "database"
    return [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("retry-after", str(retry_after_s(exc))),
        ("x-pgwarden-shed", reason),
        ("cache-control", "no-store"),
    ]
