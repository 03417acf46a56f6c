"""Running a `lint --fix` output through `pgwarden apply`, as its header tells a user to."""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden.apply.api import GuardPolicy, RunOptions, apply_plan
from pgwarden.apply.identity import stamp_database
from pgwarden.commands import load_plan


def apply_fixed(dsn: str, path: Path) -> None:
    """`pgwarden apply` of the fixed file, on an unprotected environment."""
    with psycopg.connect(dsn, autocommit=True) as c:
        stamp_database(c, "staging", protected=False, by="tests")
    result = apply_plan(
        load_plan([path]),
        database_url=dsn,
        policy=GuardPolicy(env="staging"),
        options=RunOptions(journal_file=str(path.with_suffix(".jsonl"))),
    )
    assert result.state == "done", result
