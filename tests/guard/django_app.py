"""A real Django project following docs/guard.md, served by uvicorn in the Django test.

Configured from the environment: GUARD_DJANGO_DSN (libpq key=value string).
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from psycopg.conninfo import conninfo_to_dict

from pgwarden.guard import (
    BreakerPolicy,
    Guard,
    GuardMiddleware,
    PoolLimits,
    SessionTimeouts,
    report_exception,
)

LIMITS = PoolLimits(max_size=4, acquire_timeout_ms=500)
TIMEOUTS = SessionTimeouts(statement_timeout_ms=5_000, lock_timeout_ms=100)
guard = Guard("django", breaker=BreakerPolicy(min_calls=3, open_ms=300, half_open_probes=1))


class ReportDatabaseErrors:
    """Tell the active guard scope about database errors a view raised (docs/guard.md)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        report_exception(exception)


def invoices(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM invoices")
        row = cur.fetchone()
    return JsonResponse({"count": row[0] if row else None})


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("invoices/", invoices), path("healthz", healthz)]

params = conninfo_to_dict(os.environ["GUARD_DJANGO_DSN"])
settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[f"{__name__}.ReportDatabaseErrors"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": params["dbname"],
            "HOST": params.get("host", ""),
            "PORT": params.get("port", ""),
            "USER": params.get("user", ""),
            "OPTIONS": {
                "options": TIMEOUTS.libpq_options(),
                "connect_timeout": LIMITS.connect_timeout_s,
                "application_name": "guard-django",
                "pool": {
                    "min_size": LIMITS.min_size,
                    "max_size": LIMITS.max_size,
                    "timeout": LIMITS.acquire_timeout_ms / 1000,
                    "max_waiting": LIMITS.max_waiting,
                },
            },
        }
    },
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 - needs settings first

application = GuardMiddleware(get_asgi_application(), guard, exempt_paths=["/healthz"])
