from __future__ import annotations

from pathlib import Path

from pgwarden.analysis.parse import parse
from pgwarden.commands import load_plan
from pgwarden.plan import SourceText, TxMode, build_plan


def _plan(*files: str, file_transaction: bool = False):
    sources = [(SourceText(f"f{i}.sql", t), parse(t, f"f{i}.sql")) for i, t in enumerate(files)]
    return build_plan(sources, file_transaction=file_transaction)


def test_autocommit_by_default():
    plan = _plan("CREATE TABLE a (id int);\nCREATE INDEX ON a (id);")
    assert [s.tx_mode for s in plan] == [TxMode.AUTOCOMMIT, TxMode.AUTOCOMMIT]
    assert not any(s.in_transaction for s in plan)


def test_explicit_blocks_get_their_own_ids():
    plan = _plan(
        "BEGIN;\nALTER TABLE a ADD COLUMN b int;\nCOMMIT;\n"
        "CREATE INDEX CONCURRENTLY i ON a (b);\n"
        "START TRANSACTION;\nALTER TABLE a DROP COLUMN b;\nROLLBACK;"
    )
    tx = [s.transaction for s in plan]
    assert tx[0] == tx[1] == tx[2] is not None
    assert tx[3] is None
    assert tx[4] == tx[5] == tx[6] is not None
    assert tx[0] != tx[4]
    assert plan.steps[1].tx_mode is TxMode.EXPLICIT


def test_file_transaction_wraps_each_file_unless_it_has_begin():
    plan = _plan(
        "ALTER TABLE a ADD COLUMN b int;\nALTER TABLE a ADD COLUMN c int;",
        "BEGIN;\nALTER TABLE a ADD COLUMN d int;\nCOMMIT;\nALTER TABLE a ADD COLUMN e int;",
        file_transaction=True,
    )
    s = plan.steps
    assert s[0].tx_mode is TxMode.FILE and s[0].transaction == s[1].transaction
    assert s[2].tx_mode is TxMode.EXPLICIT and s[3].transaction == s[2].transaction
    assert s[5].tx_mode is TxMode.AUTOCOMMIT  # explicit BEGIN/COMMIT in the file wins
    assert s[0].transaction != s[2].transaction


def test_locations_are_file_line_column():
    plan = _plan("SELECT 1;\n\n  -- c\n  ALTER TABLE a\n ADD COLUMN b int;")
    assert str(plan.steps[1].location) == "f0.sql:4:3"


def test_folder_plan_orders_files_by_name(tmp_path: Path):
    (tmp_path / "002.sql").write_text("SELECT 2;")
    (tmp_path / "001.sql").write_text("SELECT 1;")
    plan = load_plan([tmp_path])
    assert [Path(s.location.path).name for s in plan] == ["001.sql", "002.sql"]


def test_fingerprint_ignores_constants_and_whitespace_not_statements():
    a = _plan("SELECT * FROM t WHERE id = 1;").fingerprint()
    b = _plan("SELECT *  FROM t\n WHERE id = 2;").fingerprint()
    c = _plan("SELECT * FROM u WHERE id = 1;").fingerprint()
    assert a == b != c


def test_set_timezone_earlier_in_the_plan_decides_timestamp_rewrites():
    from pgwarden.analysis.catalog import Catalog, Column, Relation

    t = Relation("t", "public", "t", "r", columns=(Column("c", "timestamp without time zone"),))
    berlin = Catalog(relations=(t,), timezone="Europe/Berlin", server_version=16)
    change = "ALTER TABLE t ALTER COLUMN c TYPE timestamptz;"

    def rewrites(sql: str, catalog: Catalog | None) -> list[tuple[str, ...]]:
        plan = build_plan([(SourceText("m.sql", sql), parse(sql))], catalog=catalog)
        return [s.effects.rewrites for s in plan.steps]

    assert rewrites(change, berlin) == [("t",)]
    assert rewrites(f"SET TimeZone = 'UTC'; {change}", berlin) == [(), ()]
    assert rewrites(f"SET TIME ZONE 'UTC'; RESET TimeZone; {change}", berlin) == [(), (), ("t",)]
    # Without a catalog the column's type is unknown; the SET still answers the zone question.
    plan_sql = f"SET LOCAL timezone TO 'Etc/UTC'; {change}"
    plan = build_plan([(SourceText("m.sql", plan_sql), parse(plan_sql))])
    assert not any("TimeZone is not known" in a for a in plan.steps[1].effects.assumptions)


def test_destroyed_relation_reads_each_form_the_lock_model_writes() -> None:
    from pgwarden.plan import destroyed_relation

    assert destroyed_relation("table public.t") == "public.t"
    assert destroyed_relation("materialized view mv") == "mv"
    assert destroyed_relation("all rows of t") == "t"
    assert destroyed_relation("all rows of t (DELETE without WHERE)") == "t"
    assert destroyed_relation("every row of s.t overwritten (UPDATE without WHERE)") == "s.t"
    assert destroyed_relation("column t.c") == "t"
    assert destroyed_relation("schema app") is None
    assert destroyed_relation("database shop") is None
