"""The incident migration and its safe form, rehearsed under probe traffic.

Assertions are about states and orderings, never timings: which locks were
held, whether a probe was seen waiting on them, which findings came out.
"""

from __future__ import annotations

from typing import Any

from pgwarden.rehearse.model import StepTrace
from tests.rehearse.conftest import INCIDENT, SAFE


def _blocking(step: StepTrace, table: str) -> tuple[float, float]:
    b = next(b for b in step.blocking if b.table == table)
    return b.reads_blocked_s, b.writes_blocked_s


def test_naive_fk_recreate_blocks_writes_for_the_validation(run: Any):
    result = run([INCIDENT])
    assert result.status == "completed"
    drop, add = result.steps
    assert ("invoices", "ACCESS EXCLUSIVE") in drop.acquired
    assert ("payment_accounts", "ACCESS EXCLUSIVE") in drop.acquired
    assert ("invoices", "SHARE ROW EXCLUSIVE") in add.acquired
    assert ("payment_accounts", "SHARE ROW EXCLUSIVE") in add.acquired
    assert add.strongest()["invoices"] == "ACCESS EXCLUSIVE"  # still held from the DROP
    # The tracer holds the transaction open until every probe has issued a request,
    # so a probe write is always seen waiting on invoices during the validation.
    _reads, writes = _blocking(add, "invoices")
    assert writes > 0
    assert add.rows_read > 0 and add.bytes_touched > 0
    assert not drop.model_diffs and not add.model_diffs
    rh101 = [f for f in result.findings if f.code == "RH101" and f.step == add.index]
    assert rh101, result.findings
    assert rh101[0].severity.value == "error"  # no stats: assume a large, busy table
    assert "NOT VALID" in rh101[0].help and "VALIDATE" in rh101[0].help


def test_not_valid_then_validate_never_blocks_traffic_during_validation(run: Any):
    result = run([SAFE])
    assert result.status == "completed"
    by_kind = [s for s in result.steps if "VALIDATE CONSTRAINT" in s.sql]
    assert len(by_kind) == 1
    validate = by_kind[0]
    assert ("invoices", "SHARE UPDATE EXCLUSIVE") in validate.acquired
    assert validate.strongest()["invoices"] == "SHARE UPDATE EXCLUSIVE"
    # SHARE UPDATE EXCLUSIVE conflicts with neither reads nor writes: no probe can wait.
    assert _blocking(validate, "invoices") == (0.0, 0.0)
    assert _blocking(validate, "payment_accounts") == (0.0, 0.0)
    assert validate.rows_read > 0
    assert not any(f.code == "RH101" and f.step == validate.index for f in result.findings)
    assert not any(s.model_diffs for s in result.steps)


def test_production_estimate_scales_with_the_snapshot(run: Any, tmp_path: Any):
    import orjson

    from pgwarden.analysis.context import Snapshot
    from pgwarden.pg.stats import Stats, TableStats

    big = 1000  # production is 1,000 times the rehearsal
    tables = {
        "public.invoices": TableStats("public.invoices", 5_000 * big, 0, 0, 0),
        "public.payment_accounts": TableStats("public.payment_accounts", 1_000 * big, 0, 0, 0),
    }
    snap = Snapshot(Stats("2026-01-01T00:00:00+00:00", 150000, "prod", 1.0, tables), None)
    result = run([INCIDENT], snapshot=snap, rows_cap=5_000)
    loaded = {t.name: t for t in result.tables}
    assert loaded["invoices"].rows == 5_000
    assert loaded["payment_accounts"].rows == 5_000
    add = result.steps[1]
    assert add.scale is not None and add.scale > 100
    inv = next(b for b in add.blocking if b.table == "invoices")
    assert inv.est_writes_blocked_s is not None
    assert inv.est_writes_blocked_s > inv.writes_blocked_s
    assert orjson.loads(orjson.dumps(result.to_dict()))["steps"][1]["scale"] == add.scale
    _ = tmp_path


def test_sizes_come_from_a_stats_file(run: Any, conn: Any, db: str, tmp_path: Any):
    from pgwarden.analysis.context import save_snapshot, take_snapshot
    from pgwarden.demo import create_sample_schema

    create_sample_schema(conn, invoices_rows=3_000, accounts_rows=300)
    stats = tmp_path / "stats.json"
    save_snapshot(take_snapshot(db, sample_s=0.0), stats)
    result = run([INCIDENT], stats_file=stats, rows_cap=2_000)
    loaded = {t.name: t for t in result.tables}
    assert (loaded["invoices"].rows, loaded["invoices"].prod_rows) == (2_000, 3_000)
    assert (loaded["payment_accounts"].rows, loaded["payment_accounts"].prod_rows) == (300, 300)
    assert not any("no stats snapshot" in n for n in result.notes)
