"""The lock model without a database: assumption paths, catalog round trip, names."""

from __future__ import annotations

import json

import pytest

from pgwarden.analysis.catalog import Catalog, Column, Constraint, Index, Relation
from pgwarden.analysis.effects import Effects, LockMode
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.parse import parse_one

AE = LockMode.ACCESS_EXCLUSIVE
SRE = LockMode.SHARE_ROW_EXCLUSIVE

DROP_FK = "ALTER TABLE invoices DROP CONSTRAINT invoices_payment_account_id_fkey"
ADD_FK = (
    "ALTER TABLE invoices ADD CONSTRAINT invoices_payment_account_id_fkey"
    " FOREIGN KEY (payment_account_id) REFERENCES payment_accounts(id)"
)


def run(sql: str, catalog: Catalog | None = None, version: int | None = 16) -> Effects:
    return analyse(parse_one(sql), catalog=catalog, server_version=version)


def incident_catalog(timezone: str = "UTC") -> Catalog:
    fk = Constraint(
        "invoices_payment_account_id_fkey",
        "f",
        references="payment_accounts",
        columns=("payment_account_id",),
        index="payment_accounts_pkey",
        ref_columns=("id",),
    )
    invoices = Relation(
        "invoices",
        "public",
        "invoices",
        "r",
        columns=(
            Column("id", "bigint", True),
            Column("payment_account_id", "bigint"),
            Column("created", "timestamp without time zone"),
            Column("note", "character varying(10)"),
        ),
        indexes=(Index("invoices_pkey", unique=True, primary=True, columns=("id",)),),
        constraints=(
            Constraint("invoices_pkey", "p", columns=("id",), index="invoices_pkey"),
            fk,
            Constraint("invoices_note_nn", "c", definition="CHECK ((note IS NOT NULL))"),
        ),
    )
    accounts = Relation(
        "payment_accounts",
        "public",
        "payment_accounts",
        "r",
        columns=(Column("id", "bigint", True),),
        indexes=(Index("payment_accounts_pkey", unique=True, primary=True, columns=("id",)),),
        constraints=(
            Constraint(
                "payment_accounts_pkey", "p", columns=("id",), index="payment_accounts_pkey"
            ),
        ),
    )
    return Catalog(relations=(invoices, accounts), timezone=timezone, server_version=16)


def test_incident_drop_fk_without_catalog_states_the_assumption() -> None:
    eff = run(DROP_FK)
    assert eff.strongest() == {"invoices": AE}
    assert any("foreign key" in a and "referenced table" in a for a in eff.assumptions)


def test_incident_drop_fk_with_catalog_locks_the_referenced_table() -> None:
    eff = run(DROP_FK, incident_catalog())
    assert eff.strongest() == {"invoices": AE, "payment_accounts": AE}
    assert eff.assumptions == ()


def test_incident_add_fk_scans_under_share_row_exclusive_on_both() -> None:
    eff = run(ADD_FK)
    assert eff.strongest()["invoices"] == SRE
    assert eff.strongest()["payment_accounts"] == SRE
    assert "invoices" in eff.scans
    assert eff.transactional


def test_add_fk_not_valid_does_not_scan() -> None:
    eff = run(ADD_FK + " NOT VALID", incident_catalog())
    assert eff.scans == ()


def test_validate_without_catalog_assumes() -> None:
    eff = run("ALTER TABLE invoices VALIDATE CONSTRAINT x")
    assert eff.strongest() == {"invoices": LockMode.SHARE_UPDATE_EXCLUSIVE}
    assert eff.scans == ("invoices",)
    assert eff.assumptions


def test_set_not_null_without_catalog_scans_and_says_so() -> None:
    eff = run("ALTER TABLE invoices ALTER COLUMN note SET NOT NULL")
    assert eff.scans == ("invoices",)
    assert any("CHECK (note IS NOT NULL)" in a for a in eff.assumptions)


def test_set_not_null_skips_scan_with_valid_check() -> None:
    eff = run("ALTER TABLE invoices ALTER COLUMN note SET NOT NULL", incident_catalog())
    assert eff.scans == ()


@pytest.mark.parametrize(
    ("timezone", "rewrites"), [("UTC", ()), ("Europe/Berlin", ("invoices", "invoices_pkey"))]
)
def test_timestamptz_rewrite_depends_on_timezone(timezone: str, rewrites: tuple[str, ...]) -> None:
    sql = "ALTER TABLE invoices ALTER COLUMN created TYPE timestamptz"
    assert run(sql, incident_catalog(timezone)).rewrites == rewrites


def test_timestamptz_without_catalog_assumes_rewrite() -> None:
    eff = run("ALTER TABLE invoices ALTER COLUMN created TYPE timestamptz")
    assert "invoices" in eff.rewrites
    assert any("TimeZone" in a for a in eff.assumptions)


@pytest.mark.parametrize(
    ("new_type", "rewrites"),
    [("varchar(20)", False), ("text", False), ("varchar(5)", True), ("int", True)],
)
def test_type_changes(new_type: str, rewrites: bool) -> None:
    sql = f"ALTER TABLE invoices ALTER COLUMN note TYPE {new_type}"
    if new_type == "int":
        sql += " USING note::int"
    assert bool(run(sql, incident_catalog()).rewrites) is rewrites


def test_int_to_bigint_without_catalog_assumes_rewrite() -> None:
    eff = run("ALTER TABLE t ALTER COLUMN a TYPE bigint")
    assert eff.rewrites == ("t",)
    assert eff.assumptions


@pytest.mark.parametrize(
    ("default", "rewrites"), [("0", False), ("now()", False), ("random()", True)]
)
def test_add_column_default_volatility(default: str, rewrites: bool) -> None:
    eff = run(f"ALTER TABLE t ADD COLUMN c float8 DEFAULT {default}")
    assert bool(eff.rewrites) is rewrites


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX CONCURRENTLY i ON t (a)",
        "DROP INDEX CONCURRENTLY i",
        "REINDEX TABLE CONCURRENTLY t",
        "VACUUM t",
        "ALTER TABLE m DETACH PARTITION m1 CONCURRENTLY",
    ],
)
def test_non_transactional(sql: str) -> None:
    assert run(sql).transactional is False


def test_destroys() -> None:
    assert run("DROP TABLE t").destroys == ("table t",)
    assert run("TRUNCATE t").destroys == ("all rows of t",)
    assert run("DELETE FROM t").destroys
    assert not run("DELETE FROM t WHERE id = 1").destroys
    assert run("ALTER TABLE t DROP COLUMN c").destroys == ("column t.c",)
    assert run("DROP SCHEMA s CASCADE").destroys == ("schema s",)


def test_names_follow_regclass() -> None:
    assert run("ALTER TABLE public.t ADD COLUMN c int").strongest() == {"t": AE}
    assert run("ALTER TABLE other.t ADD COLUMN c int").strongest() == {"other.t": AE}
    assert run('ALTER TABLE "Mixed" ADD COLUMN c int').strongest() == {'"Mixed"': AE}


def test_strongest_subcommand_wins() -> None:
    eff = run("ALTER TABLE t SET (fillfactor = 70), ADD COLUMN c int")
    assert eff.strongest() == {"t": AE}
    eff = run("ALTER TABLE t SET (fillfactor = 70), ALTER COLUMN a SET STATISTICS 10")
    assert eff.strongest() == {"t": LockMode.SHARE_UPDATE_EXCLUSIVE}


def test_version_assumption_only_when_it_matters() -> None:
    assert run("GRANT SELECT ON t TO PUBLIC", version=None).strongest() == {
        "t": LockMode.ACCESS_SHARE
    }
    assert any(
        "assuming PostgreSQL 18" in a
        for a in run("GRANT SELECT ON t TO PUBLIC", version=None).assumptions
    )
    assert run("GRANT SELECT ON t TO PUBLIC", version=17).locks == ()
    assert run("ALTER TABLE t ADD COLUMN c int", version=None).assumptions == ()


def test_features_newer_than_the_server_are_flagged() -> None:
    eff = run("ALTER TABLE m DETACH PARTITION m1 CONCURRENTLY", version=13)
    assert any("needs PostgreSQL 14" in a for a in eff.assumptions)
    eff = run("ALTER TABLE g ALTER COLUMN b SET EXPRESSION AS (a + 2)", version=16)
    assert any("needs PostgreSQL 17" in a for a in eff.assumptions)


def test_no_table_locks_for_types_functions_extensions() -> None:
    for sql in (
        "CREATE TYPE c AS ENUM ('a')",
        "ALTER TYPE c ADD VALUE 'b'",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        "DROP TYPE c",
        "DROP FUNCTION f()",
    ):
        assert run(sql).locks == (), sql


def test_catalog_round_trips_through_json() -> None:
    cat = incident_catalog()
    again = Catalog.from_dict(json.loads(json.dumps(cat.to_dict())))
    assert again == cat
    assert again.get("invoices") == cat.get("invoices")
    assert again.referencing("payment_accounts")[0][0].name == "invoices"


def test_catalog_not_null_check_detection() -> None:
    rel = incident_catalog().get("invoices")
    assert rel is not None
    assert rel.has_not_null_check("note")
    assert not rel.has_not_null_check("payment_account_id")


def test_unknown_statement_has_no_effects() -> None:
    assert run("LISTEN x") == Effects()


def test_database_and_wide_reindex_statements_refuse_transactions() -> None:
    for sql in (
        "CREATE DATABASE x",
        "DROP DATABASE x",
        "REINDEX SCHEMA public",
        "REINDEX DATABASE app",
        "REINDEX SYSTEM app",
    ):
        assert analyse(parse_one(sql)).transactional is False, sql
    assert analyse(parse_one("DROP DATABASE IF EXISTS x")).destroys == ("database x",)


def test_what_each_mode_blocks_follows_the_conflict_table() -> None:
    """explain's 'blocks' column: ROW EXCLUSIVE (every writer) blocks CREATE INDEX (SHARE)
    and CREATE TRIGGER (SHARE ROW EXCLUSIVE); it said 'only ACCESS EXCLUSIVE'."""
    from pgwarden.analysis.effects import LockMode

    words = {mode: mode.blocks for mode in LockMode}
    assert words[LockMode.ACCESS_SHARE] == "only ACCESS EXCLUSIVE (DROP, most ALTER TABLE)"
    assert words[LockMode.ROW_SHARE].startswith("only EXCLUSIVE and ACCESS EXCLUSIVE")
    assert "CREATE INDEX" in words[LockMode.ROW_EXCLUSIVE]
    assert "CREATE TRIGGER" in words[LockMode.ROW_EXCLUSIVE]
    assert LockMode.ROW_EXCLUSIVE.conflicts_with(LockMode.SHARE)
    assert LockMode.ROW_EXCLUSIVE.conflicts_with(LockMode.SHARE_ROW_EXCLUSIVE)
    assert words[LockMode.SHARE] == "writes"
    assert words[LockMode.ACCESS_EXCLUSIVE] == "reads and writes"
