"""The Django app config of `pgwarden.contrib.django`."""

from __future__ import annotations

from django.apps import AppConfig


class PgwardenConfig(AppConfig):  # type: ignore[misc]
    name = "pgwarden.contrib.django"
    label = "pgwarden"
    verbose_name = "pgwarden"
