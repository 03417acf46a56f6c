"""require_rehearsed: apply refuses a plan whose exact fingerprint was never rehearsed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.errors import Refused
from pgwarden.pg.cluster import Cluster
from pgwarden.rehearse.api import RehearseOptions, rehearse
from pgwarden.sample import SCHEMA_SQL
from pgwarden.settings import Environment, Settings
from tests.apply.conftest import plan_of, scalar, write_sql

SETTINGS = Settings(environments={"staging": Environment("staging")}, require_rehearsed=True)


def test_apply_needs_a_rehearsal_of_exactly_this_plan(
    shop: str, pg_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGWARDEN_REHEARSALS", str(tmp_path / "rehearsals"))
    migration = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN note text;")
    with pytest.raises(Refused, match="never rehearsed"):
        apply_plan(
            plan_of(migration),
            database_url=shop,
            settings=SETTINGS,
            policy=GuardPolicy(env="staging"),
        )
    assert scalar(shop, "SELECT to_regclass('pgwarden.runs')") is None  # nothing ran

    rehearse(
        plan_of(migration),
        RehearseOptions(database_url=pg_cluster.dsn(), schema_sql=SCHEMA_SQL, rows_cap=1000),
    )
    result = apply_plan(
        plan_of(migration), database_url=shop, settings=SETTINGS, policy=GuardPolicy(env="staging")
    )
    assert result.state == "done"

    changed = write_sql(tmp_path, "ALTER TABLE settings ADD COLUMN other text;", "002.sql")
    with pytest.raises(Refused, match="never rehearsed"):
        apply_plan(
            plan_of(changed),
            database_url=shop,
            settings=SETTINGS,
            policy=GuardPolicy(env="staging"),
        )
    unchecked = replace(SETTINGS, require_rehearsed=False)
    assert apply_plan(
        plan_of(changed), database_url=shop, settings=unchecked, policy=GuardPolicy(env="staging")
    )
