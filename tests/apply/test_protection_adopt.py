"""Databases migrated by Django or Alembic before pgwarden are adopted with --restamp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("django")

from tests.contrib.test_django import ALL, manage, recorded


def test_django_database_migrated_without_pgwarden_is_adopted_with_restamp(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    plain = manage(db, "migrate", "billing", "0001")  # Django's own migrate, before pgwarden
    assert plain.returncode == 0, plain.stdout + plain.stderr
    args = ["pgwarden", "migrate", "billing", "0002", "--env", "test", "--yes"]
    args += ["--journal-file", str(tmp_path / "journal.jsonl")]
    refused = manage(db, *args)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "no pgwarden stamp" in refused.stderr and "--restamp" in refused.stderr
    assert recorded(conn) == ALL[:1]
    adopted = manage(db, *args, "--restamp")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert recorded(conn) == ALL[:2]
    assert conn.execute("SELECT environment FROM pgwarden.target").fetchone() == ("test",)
