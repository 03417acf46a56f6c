"""`backup drill`: create + verify + prune, exit 1 when the policy is not met."""

from __future__ import annotations

import json
from datetime import timedelta

from pgwarden.backup import api
from tests.backup.conftest import make_shop, run_cli


def test_drill_creates_verifies_and_prunes(pg_cluster, catalogue):
    src = make_shop(pg_cluster)
    first = api.drill(src, catalogue=catalogue, keep=1)
    assert first.ok and first.verification.ok and first.pruned == ()
    r = run_cli(
        "backup", "drill", "--database-url", src, "--catalogue", str(catalogue), "--keep", "1"
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["ok"] is True
    assert summary["pruned"] == [first.created.id]
    assert summary["created"]["state"] == "verified"
    assert [b.id for b in api.list_backups(catalogue)] == [summary["created"]["id"]]


def test_drill_fails_when_newest_verified_is_too_old(pg_cluster, catalogue):
    src = make_shop(pg_cluster)
    result = api.drill(src, catalogue=catalogue, max_age=timedelta(0))
    assert not result.ok
    r = run_cli(
        "backup", "drill", "--database-url", src, "--catalogue", str(catalogue), "--max-age", "0s"
    )
    assert r.returncode == 1
    assert json.loads(r.stdout)["ok"] is False
    r = run_cli(
        "backup", "drill", "--database-url", src, "--catalogue", str(catalogue), "--max-age", "soon"
    )
    assert r.returncode == 2 and "expected e.g. 90m" in r.stderr
