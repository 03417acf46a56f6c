"""Shared by the upgrade tests: session clusters of a given major (skipped when absent)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pgwarden.errors import PostgresNotFound
from pgwarden.pg.binaries import Installation, find_installation
from pgwarden.pg.cluster import Cluster
from tests.upgrade.run_support import logical_clusters  # noqa: F401 - `upgrade run` tests


def installation(major: int) -> Installation:
    """The installation of `major`, or skip the test naming what is missing."""
    try:
        return find_installation(major)
    except PostgresNotFound as exc:
        pytest.skip(f"PostgreSQL {major} is not installed: {exc.message}")


@pytest.fixture(scope="session")
def cluster_of(_pg_clusters: object) -> Callable[[int], Cluster]:
    """A running session cluster of a given major (shared with the `pg_any` fixtures)."""

    def get(major: int) -> Cluster:
        return _pg_clusters.get(installation(major))  # type: ignore[attr-defined, no-any-return]

    return get
