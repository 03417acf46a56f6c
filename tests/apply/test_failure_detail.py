"""A failed step says what the server said in full: which key is duplicated, which row
breaks the constraint (the DETAIL), and what was left by a step run outside a transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.apply.api import GuardPolicy, apply_plan
from tests.apply.conftest import INVALID, plan_of, scalar, write_sql


@pytest.mark.parametrize(
    ("statement", "hint"),
    [
        ("ALTER TABLE invoices ADD CONSTRAINT one_status UNIQUE (status);", "rolled back"),
        ("CREATE UNIQUE INDEX CONCURRENTLY one_status ON invoices (status);", "INVALID index"),
    ],
)
def test_a_duplicate_key_is_named(shop: str, tmp_path: Path, statement: str, hint: str) -> None:
    path = write_sql(tmp_path, statement + "\n")
    result = apply_plan(
        plan_of(path, file_transaction=False),
        database_url=shop,
        policy=GuardPolicy(env="staging"),
    )
    assert result.state == "failed" and result.outcome is not None
    message = str(result.outcome.message)
    assert 'could not create unique index "one_status" (Key (status)=(' in message, message
    assert message.endswith(") is duplicated.)")
    assert hint in str(result.outcome.hint)
    assert scalar(shop, INVALID) == 0
