"""Helpers for rehearse tests: the incident schema, SQL files, a rehearsal on the test cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgwarden import commands
from pgwarden.demo import SCHEMA_SQL
from pgwarden.pg.cluster import Cluster
from pgwarden.rehearse.api import RehearseOptions, rehearse
from pgwarden.rehearse.model import RehearsalResult

ROOT = Path(__file__).resolve().parents[2]
INCIDENT = ROOT / "examples" / "incident" / "001_recreate_invoice_fk.sql"
SAFE = ROOT / "examples" / "safe" / "001_recreate_invoice_fk_safe.sql"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def run(pg_cluster: Cluster, tmp_path: Path) -> Any:
    """Rehearse on a scratch database of the session cluster, small tables, record in tmp."""

    def go(paths: list[Path], file_transaction: bool = True, **kw: Any) -> RehearsalResult:
        kw.setdefault("schema_sql", SCHEMA_SQL)
        kw.setdefault("default_rows", 5_000)
        kw.setdefault("record_dir", tmp_path / "records")
        plan = commands.load_plan(paths, file_transaction=file_transaction)
        return rehearse(plan, RehearseOptions(database_url=pg_cluster.dsn(), **kw))

    return go
