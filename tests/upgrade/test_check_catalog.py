"""`upgrade check`'s catalog checks on real clusters: planted hazards are found, clean
objects are not, and each family applies to the version pairs pg_upgrade checks it for."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from pgwarden.pg.cluster import Cluster
from pgwarden.upgrade.check import Issue, Severity, logical_readiness, prepared_transactions
from pgwarden.upgrade.check_collations import (
    collation_issues,
    target_version_changes,
    used_collations,
)
from pgwarden.upgrade.check_extensions import extension_issues, target_files
from pgwarden.upgrade.check_types import pg_upgrade_readiness
from tests.fixtures.pg import new_database
from tests.upgrade.conftest import installation

Conn = psycopg.Connection[tuple[object, ...]]


def _by_code(issues: list[Issue]) -> dict[str, Issue]:
    return {i.code: i for i in issues}


@pytest.fixture
def source15(cluster_of: Callable[[int], Cluster]) -> Iterator[Conn]:
    with psycopg.connect(new_database(cluster_of(15)), autocommit=True) as conn:
        yield conn


def test_logical_readiness_names_each_hazard_and_spares_clean_tables(source15: Conn) -> None:
    c = source15
    c.execute("CREATE TABLE keyed (id bigint PRIMARY KEY, v text)")
    c.execute("CREATE TABLE events (at timestamptz, payload text)")  # no key: planted
    c.execute("CREATE TABLE audit (a int, b int)")
    c.execute("ALTER TABLE audit REPLICA IDENTITY FULL")
    c.execute("CREATE TABLE with_unique (id int NOT NULL)")
    c.execute("CREATE UNIQUE INDEX with_unique_id ON with_unique (id)")
    c.execute("ALTER TABLE with_unique REPLICA IDENTITY USING INDEX with_unique_id")
    c.execute("CREATE UNLOGGED TABLE cache (k text PRIMARY KEY)")
    c.execute("CREATE TABLE parted (id int, PRIMARY KEY (id)) PARTITION BY RANGE (id)")
    c.execute("CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10)")
    c.execute("SELECT lo_create(0)")
    c.execute("CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x")
    issues = _by_code(logical_readiness(c))

    no_id = issues["no-replica-identity"]
    assert no_id.objects == ("public.events",)
    assert no_id.blocks("logical") and not no_id.blocks("pg_upgrade")
    assert issues["replica-identity-full"].objects == ("public.audit",)
    assert issues["replica-identity-full"].severity is Severity.WARNING
    assert issues["unlogged-tables"].objects == ("public.cache",)
    assert "1 large object" in issues["large-objects"].message
    assert issues["materialized-views"].objects == ("public.mv",)
    assert "public.keyed_id_seq" not in issues.get("sequences", no_id).objects
    # The session cluster runs with the default wal_level (replica).
    assert issues["wal-level"].blocks("logical")


def test_sequences_are_a_note_for_the_logical_route(source15: Conn) -> None:
    source15.execute("CREATE TABLE s (id bigserial PRIMARY KEY)")
    issues = _by_code(logical_readiness(source15))
    assert issues["sequences"].objects == ("public.s_id_seq",)
    assert issues["sequences"].severity is Severity.NOTE


def test_reg_columns_are_found_through_domains_and_arrays_but_regclass_is_kept(
    source15: Conn,
) -> None:
    c = source15
    c.execute("CREATE DOMAIN fn AS regprocedure")
    c.execute(
        "CREATE TABLE hooks (id int PRIMARY KEY, handler fn, ops regoperator[], "
        "tbl regclass, typ regtype, acl aclitem)"
    )
    issues = _by_code(pg_upgrade_readiness(c, 15, 18))
    reg = issues["reg-types"]
    assert set(reg.objects) == {
        "public.hooks.handler (fn)",
        "public.hooks.ops (regoperator[])",
    }
    assert reg.blocks("pg_upgrade") and not reg.blocks("logical")
    assert issues["aclitem"].objects == ("public.hooks.acl (aclitem)",)


def test_aclitem_matters_only_from_15_or_older_to_16_or_newer(
    cluster_of: Callable[[int], Cluster],
) -> None:
    with psycopg.connect(new_database(cluster_of(16)), autocommit=True) as c:
        c.execute("CREATE TABLE acl (a aclitem)")
        assert "aclitem" not in _by_code(pg_upgrade_readiness(c, 16, 18))
        # The same column on a 15 source going to 16 is refused.
        assert "aclitem" in _by_code(pg_upgrade_readiness(c, 15, 16))


def test_prepared_transactions_block_both_routes(
    cluster_of: Callable[[int], Cluster],
) -> None:
    cluster = cluster_of(15)
    dsn = new_database(cluster)
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        has = admin.execute("SHOW max_prepared_transactions").fetchone()
    if has is None or int(str(has[0])) == 0:
        # The session cluster does not enable prepared transactions; start one that does.
        with Cluster.start(installation(15), settings={"max_prepared_transactions": "5"}) as own:
            _prepared(own.create_database("p"))
        return
    _prepared(dsn)


def _prepared(dsn: str) -> None:
    with psycopg.connect(dsn) as c:
        c.execute("CREATE TABLE t (id int)")
        c.execute("PREPARE TRANSACTION 'pgwarden-test-gid'")
    with psycopg.connect(dsn, autocommit=True) as c:
        try:
            issues = prepared_transactions(c)
            assert [i.code for i in issues] == ["prepared-transactions"]
            assert issues[0].blocks("pg_upgrade") and issues[0].blocks("logical")
            assert "pgwarden-test-gid" in issues[0].objects[0]
        finally:
            c.execute("ROLLBACK PREPARED 'pgwarden-test-gid'")
        assert prepared_transactions(c) == []


def test_extensions_missing_from_the_target_binaries(source15: Conn) -> None:
    source15.execute("CREATE EXTENSION pgcrypto")
    source15.execute("CREATE EXTENSION pg_trgm")
    source15.execute("CREATE EXTENSION pg_stat_statements")
    to18 = _by_code(extension_issues(source15, installation(18)))
    # The PostgreSQL 18 wheel ships pg_trgm and pg_stat_statements, not pgcrypto.
    assert [o.split()[0] for o in to18["extension-missing"].objects] == ["pgcrypto"]
    assert to18["extension-missing"].blocks("pg_upgrade")
    assert to18["extension-missing"].blocks("logical")
    to17 = _by_code(extension_issues(source15, installation(17)))
    assert "extension-missing" not in to17
    # 17 ships newer versions: pg_upgrade keeps the old ones until ALTER EXTENSION UPDATE.
    assert [o.split()[0] for o in to17["extension-update"].objects] == ["pg_stat_statements"]


def test_icu_collations_in_use_block_a_target_built_without_icu(source15: Conn) -> None:
    assert not target_files(installation(18)).has_icu
    source15.execute('CREATE TABLE names (n text COLLATE "und-x-icu")')
    source15.execute("CREATE INDEX names_n ON names (n)")
    issues = _by_code(collation_issues(source15, target_files(installation(18)), 18))
    icu = issues["icu-unsupported"]
    assert icu.objects == ("und-x-icu (names.n)",)
    assert icu.blocks("pg_upgrade") and icu.blocks("logical")
    # A database without ICU columns is fine.
    source15.execute("DROP TABLE names")
    assert "icu-unsupported" not in _by_code(
        collation_issues(source15, target_files(installation(18)), 18)
    )


def test_a_collation_whose_library_changed_under_the_source_is_stale(source15: Conn) -> None:
    # What an OS or ICU upgrade leaves behind: the version recorded at CREATE COLLATION
    # differs from what the library reports now (recorded by hand here, in this database).
    source15.execute('CREATE COLLATION german (provider = icu, locale = "de-DE")')
    actual = source15.execute(
        "SELECT pg_collation_actual_version(oid) FROM pg_collation WHERE collname = 'german'"
    ).fetchone()
    assert actual is not None and actual[0] is not None
    source15.execute("UPDATE pg_collation SET collversion = '1.0' WHERE collname = 'german'")
    issues = _by_code(collation_issues(source15, target_files(installation(17)), 17))
    stale = issues["collation-version-stale"]
    assert stale.objects == (f"german: recorded 1.0, library {actual[0]}",)


def test_index_collations_are_compared_with_a_running_target(
    source15: Conn, cluster_of: Callable[[int], Cluster]
) -> None:
    source15.execute('CREATE TABLE words (w text COLLATE "de-x-icu", plain text)')
    source15.execute("CREATE INDEX words_w ON words (w)")
    source15.execute("CREATE INDEX words_plain ON words (plain)")  # C: never a problem
    used = used_collations(source15)
    assert [(u.name, u.provider, u.indexes) for u in used] == [("de-x-icu", "icu", ("words_w",))]
    # The 18 wheel has no ICU: the collation cannot even be created there.
    issues = _by_code(target_version_changes(used, cluster_of(18).dsn()))
    assert issues["collation-unavailable"].objects[0].startswith("de-x-icu (icu de")
    # The same library (the source server itself as the "target"): nothing changes.
    assert target_version_changes(used, cluster_of(15).dsn()) == []


def test_a_c_function_whose_library_the_target_lacks(source15: Conn) -> None:
    # adminpack's library is in PostgreSQL 15 and gone from 17 on; a function bound to it
    # outside any extension is what pg_upgrade's loadable-library check stops on.
    source15.execute(
        "CREATE FUNCTION file_write(text, text, bool) RETURNS bigint "
        "AS '$libdir/adminpack', 'pg_file_write_v1_1' LANGUAGE C STRICT"
    )
    to18 = _by_code(extension_issues(source15, installation(18)))
    assert to18["library-missing"].objects == ("$libdir/adminpack: file_write(text,text,boolean)",)
    assert to18["library-missing"].blocks("pg_upgrade")


def test_pgvector_is_carried_at_its_old_version(cluster_of: Callable[[int], Cluster]) -> None:
    with psycopg.connect(new_database(cluster_of(16)), autocommit=True) as c:
        c.execute("CREATE EXTENSION vector")
        installed = c.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        assert installed is not None
        issues = _by_code(extension_issues(c, installation(18)))
    # The 18 wheel ships pgvector (its library too): nothing missing, an update to run
    # after pg_upgrade; but it installs only its newest version, so the logical route
    # cannot create the old one.
    assert "extension-missing" not in issues and "library-missing" not in issues
    [update] = issues["extension-update"].objects
    assert update.startswith(f"vector {installed[0]} -> ") and "no update path" not in update
    [old] = issues["extension-version"].objects
    assert old.startswith(f"vector {installed[0]} (target ships ")
    assert issues["extension-version"].routes == ("logical",)


def test_not_null_dropped_on_an_inheritance_child_matters_only_going_to_18(
    source15: Conn,
) -> None:
    # PostgreSQL 15 lets a child drop the NOT NULL its parent has; pg_upgrade 18 refuses
    # it ("Checking for not-null constraint inconsistencies", public.child.a): seen live.
    source15.execute("CREATE TABLE parent (a int NOT NULL, b int)")
    source15.execute("CREATE TABLE child () INHERITS (parent)")
    source15.execute("ALTER TABLE child ALTER COLUMN a DROP NOT NULL")
    to18 = _by_code(pg_upgrade_readiness(source15, 15, 18))
    assert to18["not-null-inheritance"].objects == ("child.a (NOT NULL in parent parent)",)
    assert "not-null-inheritance" not in _by_code(pg_upgrade_readiness(source15, 15, 17))
    source15.execute("ALTER TABLE child ALTER COLUMN a SET NOT NULL")
    assert "not-null-inheritance" not in _by_code(pg_upgrade_readiness(source15, 15, 18))
