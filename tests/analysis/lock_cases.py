"""The catalogue of statements the live lock-model test runs on every server version.

Each case runs in a fresh schema (first on search_path); `{s}` in setup or
statement is replaced with that schema's name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One statement (or a few, run in one transaction) and the setup it needs."""

    id: str
    setup: str
    sql: str
    blocked_on: str | None = None  # non-transactional: the relation a blocker locks
    min_version: int = 13
    max_version: int = 99
    extension: str | None = None  # needed by the setup: skipped where it is not installed


T = """
CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(10), c timestamp, n int NOT NULL DEFAULT 0);
CREATE INDEX t_a_idx ON t (a);
INSERT INTO t SELECT g, g, 'x', '2024-01-01', g FROM generate_series(1, 20) g;
ANALYZE t;
"""

FK = """
CREATE TABLE p (id int PRIMARY KEY, v int);
CREATE TABLE f (id int PRIMARY KEY, p_id int);
INSERT INTO p VALUES (1, 1), (2, 2);
INSERT INTO f VALUES (1, 1), (2, 2);
"""

CI = """
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TABLE ci (id int PRIMARY KEY, name text, slug varchar(100), code char(4));
CREATE INDEX ci_name_idx ON ci (name);
INSERT INTO ci SELECT g, 'n' || g, 's' || g, 'c' FROM generate_series(1, 20) g;
"""

FKD = FK + "ALTER TABLE f ADD CONSTRAINT f_p_id_fkey FOREIGN KEY (p_id) REFERENCES p (id);\n"

PART = """
CREATE TABLE m (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10);
CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (10) TO (20);
INSERT INTO m SELECT g, g FROM generate_series(0, 19) g;
"""

PARTD = PART + "CREATE TABLE md PARTITION OF m DEFAULT;\n"

PARTIX = PART + "CREATE INDEX m_k_idx ON m (k);\n"

LOOSE = """
CREATE TABLE m3 (id int, k int);
INSERT INTO m3 VALUES (1, 25);
"""

INCIDENT = """
CREATE TABLE payment_accounts (id bigint PRIMARY KEY);
CREATE TABLE invoices (id bigint PRIMARY KEY, payment_account_id bigint
    CONSTRAINT invoices_payment_account_id_fkey REFERENCES payment_accounts (id));
INSERT INTO payment_accounts VALUES (1), (2);
INSERT INTO invoices VALUES (1, 1), (2, 2);
"""

MV = (
    T
    + """
CREATE MATERIALIZED VIEW mv AS SELECT id, a FROM t;
CREATE UNIQUE INDEX mv_id_idx ON mv (id);
CREATE VIEW v AS SELECT id, a FROM t;
"""
)

K = "CREATE TABLE k (id int NOT NULL, v int); INSERT INTO k VALUES (1, 1), (2, 2);\n"
SEQ = "CREATE SEQUENCE s; CREATE TABLE ts (id serial PRIMARY KEY, x int);\n"
ENUM = "CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE TABLE e (id int, m mood);\n"
TRG = (
    T
    + """
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER t_trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg();
"""
)

POL = T + "CREATE POLICY t_pol ON t USING (a > 0);\n"
RULE = T + "CREATE RULE t_rule AS ON UPDATE TO t DO ALSO NOTHING;\n"
PUB = T + "CREATE PUBLICATION {s}_pub;\n"

_ALTER_TABLE = [
    Case("add_column_nullable", T, "ALTER TABLE t ADD COLUMN e int"),
    Case("add_column_const_default", T, "ALTER TABLE t ADD COLUMN e int DEFAULT 5"),
    Case("add_column_volatile_default", T, "ALTER TABLE t ADD COLUMN e float8 DEFAULT random()"),
    Case("add_column_now_default", T, "ALTER TABLE t ADD COLUMN e timestamptz DEFAULT now()"),
    Case("add_column_not_null_default", T, "ALTER TABLE t ADD COLUMN e int NOT NULL DEFAULT 0"),
    # Stable functions are evaluated once (no rewrite); a volatile one anywhere rewrites.
    Case(
        "add_column_utc_default",
        T,
        "ALTER TABLE t ADD COLUMN e timestamp DEFAULT timezone('utc', now())",
    ),
    Case(
        "add_column_date_trunc_default",
        T,
        "ALTER TABLE t ADD COLUMN e timestamptz DEFAULT date_trunc('day', now())",
    ),
    Case(
        "add_column_setting_default",
        T,
        "ALTER TABLE t ADD COLUMN e text DEFAULT current_setting('TimeZone')",
    ),
    Case(
        "add_column_at_time_zone_default",
        T,
        "ALTER TABLE t ADD COLUMN e timestamp DEFAULT (now() AT TIME ZONE 'UTC')",
    ),
    Case(
        "add_column_nested_volatile_default",
        T,
        "ALTER TABLE t ADD COLUMN e text DEFAULT md5(random()::text)",
    ),
    Case(
        "add_column_clock_default",
        T,
        "ALTER TABLE t ADD COLUMN e timestamptz DEFAULT clock_timestamp()",
    ),
    Case(
        "add_column_uuid_default",
        T,
        "ALTER TABLE t ADD COLUMN e uuid DEFAULT gen_random_uuid()",
        min_version=13,
    ),
    Case("add_column_serial", T, "ALTER TABLE t ADD COLUMN e serial"),
    Case(
        "add_column_identity", T, "ALTER TABLE t ADD COLUMN e bigint GENERATED ALWAYS AS IDENTITY"
    ),
    Case(
        "add_column_generated_stored",
        T,
        "ALTER TABLE t ADD COLUMN e int GENERATED ALWAYS AS (a * 2) STORED",
    ),
    Case("add_column_unique", T, "ALTER TABLE t ADD COLUMN e int UNIQUE"),
    Case("add_column_primary_key", K, "ALTER TABLE k ADD COLUMN e serial PRIMARY KEY"),
    Case("add_column_references", FK, "ALTER TABLE f ADD COLUMN q int REFERENCES p (id)"),
    Case(
        "add_column_default_references",
        FK,
        "ALTER TABLE f ADD COLUMN q int DEFAULT 1 REFERENCES p (id)",
    ),
    Case("add_column_check", T, "ALTER TABLE t ADD COLUMN e int CHECK (e > 0)"),
    Case("add_column_if_not_exists", T, "ALTER TABLE t ADD COLUMN IF NOT EXISTS a int"),
    Case("drop_column", T, "ALTER TABLE t DROP COLUMN b"),
    Case("drop_column_indexed", T, "ALTER TABLE t DROP COLUMN a"),
    Case("drop_column_fk", FKD, "ALTER TABLE f DROP COLUMN p_id"),
    Case("drop_column_cascade_view", MV, "ALTER TABLE t DROP COLUMN a CASCADE"),
    Case("alter_type_int_bigint", T, "ALTER TABLE t ALTER COLUMN a TYPE bigint"),
    Case("alter_type_pk_bigint", T, "ALTER TABLE t ALTER COLUMN id TYPE bigint"),
    Case("alter_type_varchar_widen", T, "ALTER TABLE t ALTER COLUMN b TYPE varchar(20)"),
    Case("alter_type_varchar_text", T, "ALTER TABLE t ALTER COLUMN b TYPE text"),
    Case("alter_type_varchar_unbounded", T, "ALTER TABLE t ALTER COLUMN b TYPE varchar"),
    Case("alter_type_varchar_narrow", T, "ALTER TABLE t ALTER COLUMN b TYPE varchar(5)"),
    Case("alter_type_ts_tz_utc", T, "ALTER TABLE t ALTER COLUMN c TYPE timestamptz"),
    Case(
        "alter_type_ts_tz_berlin",
        T + "SET TimeZone = 'Europe/Berlin';",
        "ALTER TABLE t ALTER COLUMN c TYPE timestamptz",
    ),
    Case("alter_type_using", T, "ALTER TABLE t ALTER COLUMN a TYPE text USING a::text"),
    Case(
        "alter_type_ts_tz_after_set_local_utc",
        T + "SET TimeZone = 'Europe/Berlin';",
        "SET LOCAL TimeZone = 'UTC'; ALTER TABLE t ALTER COLUMN c TYPE timestamptz",
    ),
    # No rewrite, but an index whose operator class changes is rebuilt (UTC: no rewrite).
    Case(
        "alter_type_ts_tz_indexed_utc",
        T + "CREATE INDEX t_c_idx ON t (c);",
        "ALTER TABLE t ALTER COLUMN c TYPE timestamptz",
    ),
    Case(
        "alter_type_varchar_text_indexed",
        T + "CREATE INDEX t_b_idx ON t (b);",
        "ALTER TABLE t ALTER COLUMN b TYPE text",
    ),
    # No rewrite, but a CHECK on the column is validated again: a scan.
    Case(
        "alter_type_same_type_with_check",
        T + "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0);",
        "ALTER TABLE t ALTER COLUMN a TYPE int",
    ),
    Case(
        "alter_type_widen_with_check",
        T + "ALTER TABLE t ADD CONSTRAINT t_b_len CHECK (length(b) > 0);",
        "ALTER TABLE t ALTER COLUMN b TYPE varchar(20)",
    ),
    Case(
        "alter_type_widen_with_not_valid_check",
        T + "ALTER TABLE t ADD CONSTRAINT t_b_len CHECK (length(b) > 0) NOT VALID;",
        "ALTER TABLE t ALTER COLUMN b TYPE varchar(20)",
    ),
    # USING the column, or the column cast to the new type (Django): decided as without USING.
    Case(
        "alter_type_using_plain_cast",
        T,
        'ALTER TABLE "t" ALTER COLUMN "b" TYPE varchar(20) USING "b"::varchar(20)',
    ),
    Case("alter_type_using_same_column", T, "ALTER TABLE t ALTER COLUMN b TYPE text USING b"),
    Case(
        "alter_type_using_narrowing_cast",
        T,
        "ALTER TABLE t ALTER COLUMN b TYPE varchar(5) USING b::varchar(5)",
    ),
    Case(
        "alter_type_char_text",
        "CREATE TABLE ch (id int, code char(2)); INSERT INTO ch VALUES (1, 'ab');",
        "ALTER TABLE ch ALTER COLUMN code TYPE text",
    ),
    Case(
        "alter_type_char_varchar",
        "CREATE TABLE ch (id int, code char(2)); INSERT INTO ch VALUES (1, 'ab');",
        "ALTER TABLE ch ALTER COLUMN code TYPE varchar",
    ),
    Case("alter_type_fk_column", FKD, "ALTER TABLE f ALTER COLUMN p_id TYPE bigint"),
    Case("set_not_null", T, "ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
    # citext (an extension): binary casts from and to text and varchar, its index rebuilt
    Case(
        "type_text_to_citext",
        CI,
        "ALTER TABLE ci ALTER COLUMN name TYPE citext",
        extension="citext",
    ),
    Case(
        "type_varchar_to_citext",
        CI,
        "ALTER TABLE ci ALTER COLUMN slug TYPE citext",
        extension="citext",
    ),
    Case(
        "type_char_to_citext",
        CI,
        "ALTER TABLE ci ALTER COLUMN code TYPE citext",
        extension="citext",
    ),
    Case(
        "type_citext_to_text",
        CI + "ALTER TABLE ci ALTER COLUMN name TYPE citext;",
        "ALTER TABLE ci ALTER COLUMN name TYPE text",
        extension="citext",
    ),
    Case(
        "type_citext_to_short_varchar",
        CI + "ALTER TABLE ci ALTER COLUMN name TYPE citext;",
        "ALTER TABLE ci ALTER COLUMN name TYPE varchar(50)",
        extension="citext",
    ),
    # the rewrite checks NOT NULL as it copies the rows (PW103 stays quiet)
    Case(
        "set_not_null_with_rewrite",
        T,
        "ALTER TABLE t ALTER COLUMN a TYPE bigint, ALTER COLUMN a SET NOT NULL",
    ),
    Case(
        "set_not_null_with_check",
        T + "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL);",
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
    ),
    Case(
        "set_not_null_with_unvalidated_check",
        T + "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;",
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
    ),
    Case("drop_not_null", T, "ALTER TABLE t ALTER COLUMN n DROP NOT NULL"),
    Case("set_default", T, "ALTER TABLE t ALTER COLUMN a SET DEFAULT 7"),
    Case("drop_default", T, "ALTER TABLE t ALTER COLUMN n DROP DEFAULT"),
    Case("set_statistics", T, "ALTER TABLE t ALTER COLUMN a SET STATISTICS 500"),
    Case("set_storage", T, "ALTER TABLE t ALTER COLUMN b SET STORAGE EXTERNAL"),
    Case("set_compression", T, "ALTER TABLE t ALTER COLUMN b SET COMPRESSION pglz", min_version=14),
    Case("set_column_options", T, "ALTER TABLE t ALTER COLUMN a SET (n_distinct = 100)"),
    Case("add_check", T, "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0)"),
    Case("add_check_not_valid", T, "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID"),
    Case(
        "validate_check",
        T + "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID;",
        "ALTER TABLE t VALIDATE CONSTRAINT t_a_pos",
    ),
    Case("add_fk", FK, "ALTER TABLE f ADD CONSTRAINT f_fk FOREIGN KEY (p_id) REFERENCES p (id)"),
    Case(
        "add_fk_not_valid",
        FK,
        "ALTER TABLE f ADD CONSTRAINT f_fk FOREIGN KEY (p_id) REFERENCES p (id) NOT VALID",
    ),
    Case("add_fk_implicit_pk", FK, "ALTER TABLE f ADD FOREIGN KEY (p_id) REFERENCES p"),
    Case(
        "validate_fk",
        FK + "ALTER TABLE f ADD CONSTRAINT f_fk FOREIGN KEY (p_id) REFERENCES p (id) NOT VALID;",
        "ALTER TABLE f VALIDATE CONSTRAINT f_fk",
    ),
    Case("drop_fk", FKD, "ALTER TABLE f DROP CONSTRAINT f_p_id_fkey"),
    Case("drop_fk_if_exists", FKD, "ALTER TABLE f DROP CONSTRAINT IF EXISTS f_p_id_fkey"),
    Case(
        "alter_constraint_deferrable",
        FKD,
        "ALTER TABLE f ALTER CONSTRAINT f_p_id_fkey DEFERRABLE INITIALLY DEFERRED",
    ),
    Case(
        "drop_check",
        T + "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0);",
        "ALTER TABLE t DROP CONSTRAINT t_a_pos",
    ),
    Case("drop_primary_key", T, "ALTER TABLE t DROP CONSTRAINT t_pkey"),
    Case("drop_pk_referenced_cascade", FKD, "ALTER TABLE p DROP CONSTRAINT p_pkey CASCADE"),
    Case("add_primary_key", K, "ALTER TABLE k ADD PRIMARY KEY (id, v)"),
    Case("add_primary_key_nullable", K, "ALTER TABLE k ADD CONSTRAINT k_pk PRIMARY KEY (v)"),
    Case("add_unique", T, "ALTER TABLE t ADD CONSTRAINT t_b_key UNIQUE (b, id)"),
    Case(
        "add_exclusion",
        "CREATE TABLE r (id int, during int4range);",
        "ALTER TABLE r ADD CONSTRAINT r_excl EXCLUDE USING gist (during WITH &&)",
    ),
    Case(
        "add_primary_key_using_index",
        T + "ALTER TABLE t DROP CONSTRAINT t_pkey; CREATE UNIQUE INDEX t_id_uq ON t (id);",
        "ALTER TABLE t ADD CONSTRAINT t_pk PRIMARY KEY USING INDEX t_id_uq",
    ),
    Case(
        "add_unique_using_index",
        T + "CREATE UNIQUE INDEX t_a_uq ON t (a);",
        "ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE USING INDEX t_a_uq",
    ),
    Case("rename_table", T, "ALTER TABLE t RENAME TO t2"),
    Case("rename_column", T, "ALTER TABLE t RENAME COLUMN a TO a2"),
    Case("rename_constraint", T, "ALTER TABLE t RENAME CONSTRAINT t_pkey TO t_pk"),
    Case(
        "set_schema",
        T + "CREATE SCHEMA {s}_other;",
        "ALTER TABLE t SET SCHEMA {s}_other",
    ),
    Case(
        "qualified_other_schema",
        "CREATE SCHEMA {s}_other; CREATE TABLE {s}_other.q (id int PRIMARY KEY);",
        "ALTER TABLE {s}_other.q ADD COLUMN e int",
    ),
    Case("set_unlogged", T, "ALTER TABLE t SET UNLOGGED"),
    Case(
        "set_logged",
        "CREATE UNLOGGED TABLE u (id int PRIMARY KEY, a int);",
        "ALTER TABLE u SET LOGGED",
    ),
    Case("enable_trigger", TRG, "ALTER TABLE t ENABLE TRIGGER t_trg"),
    Case("disable_trigger", TRG, "ALTER TABLE t DISABLE TRIGGER t_trg"),
    Case("disable_trigger_all", FKD, "ALTER TABLE f DISABLE TRIGGER ALL"),
    Case("set_fillfactor", T, "ALTER TABLE t SET (fillfactor = 70)"),
    Case("set_autovacuum", T, "ALTER TABLE t SET (autovacuum_enabled = off)"),
    Case("reset_fillfactor", T, "ALTER TABLE t RESET (fillfactor)"),
    Case("set_parallel_workers", T, "ALTER TABLE t SET (parallel_workers = 2)"),
    Case("cluster_on", T, "ALTER TABLE t CLUSTER ON t_a_idx"),
    Case("set_without_cluster", T, "ALTER TABLE t SET WITHOUT CLUSTER"),
    Case("set_access_method", T, "ALTER TABLE t SET ACCESS METHOD heap", min_version=15),
    # The tablespace pgwarden_ts is made by the live test (an in-place tablespace).
    # PostgreSQL 18 forms.
    Case(
        "add_column_virtual_generated",
        T,
        "ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (a * 2) VIRTUAL",
        min_version=18,
    ),
    Case(
        "add_not_null_not_valid",
        T,
        "ALTER TABLE t ADD CONSTRAINT t_a_nn NOT NULL a NOT VALID",
        min_version=18,
    ),
    Case(
        "add_check_not_enforced",
        T,
        "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT ENFORCED",
        min_version=18,
    ),
    Case("set_tablespace", T, "ALTER TABLE t SET TABLESPACE pgwarden_ts"),
    Case("index_set_tablespace", T, "ALTER INDEX t_a_idx SET TABLESPACE pgwarden_ts"),
    Case("partitioned_set_tablespace", PART, "ALTER TABLE m SET TABLESPACE pgwarden_ts"),
    Case("owner_to", T, "ALTER TABLE t OWNER TO CURRENT_USER"),
    Case("replica_identity_full", T, "ALTER TABLE t REPLICA IDENTITY FULL"),
    Case("replica_identity_index", T, "ALTER TABLE t REPLICA IDENTITY USING INDEX t_pkey"),
    Case("enable_rls", T, "ALTER TABLE t ENABLE ROW LEVEL SECURITY"),
    Case(
        "add_identity",
        T + "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        "ALTER TABLE t ALTER COLUMN a ADD GENERATED ALWAYS AS IDENTITY",
    ),
    Case(
        "drop_identity",
        "CREATE TABLE g (id int GENERATED ALWAYS AS IDENTITY, a int);",
        "ALTER TABLE g ALTER COLUMN id DROP IDENTITY",
    ),
    Case(
        "set_identity_restart",
        "CREATE TABLE g (id int GENERATED ALWAYS AS IDENTITY, a int);",
        "ALTER TABLE g ALTER COLUMN id RESTART WITH 100",
    ),
    Case(
        "drop_expression",
        "CREATE TABLE g (a int, b int GENERATED ALWAYS AS (a + 1) STORED);",
        "ALTER TABLE g ALTER COLUMN b DROP EXPRESSION",
    ),
    Case(
        "set_expression",
        "CREATE TABLE g (a int, b int GENERATED ALWAYS AS (a + 1) STORED);",
        "ALTER TABLE g ALTER COLUMN b SET EXPRESSION AS (a + 2)",
        min_version=17,
    ),
    Case(
        "multi_subcommands", T, "ALTER TABLE t ADD COLUMN e int, ALTER COLUMN a SET STATISTICS 100"
    ),
    Case(
        "multi_weak_subcommands",
        T,
        "ALTER TABLE t ALTER COLUMN a SET STATISTICS 100, SET (fillfactor = 80)",
    ),
    Case(
        "inherit",
        T + "CREATE TABLE t_child (id int NOT NULL, a int, b varchar(10), c timestamp,"
        " n int NOT NULL);",
        "ALTER TABLE t_child INHERIT t",
    ),
    Case(
        "no_inherit",
        T + "CREATE TABLE t_child () INHERITS (t);",
        "ALTER TABLE t_child NO INHERIT t",
    ),
    Case(
        "attach_partition",
        PART + LOOSE,
        "ALTER TABLE m ATTACH PARTITION m3 FOR VALUES FROM (20) TO (30)",
    ),
    Case(
        "attach_partition_with_check",
        PART
        + LOOSE
        + "ALTER TABLE m3 ADD CONSTRAINT m3_k CHECK (k IS NOT NULL AND k >= 20 AND k < 30);",
        "ALTER TABLE m ATTACH PARTITION m3 FOR VALUES FROM (20) TO (30)",
    ),
    Case(
        "attach_partition_with_default",
        PARTD + LOOSE,
        "ALTER TABLE m ATTACH PARTITION m3 FOR VALUES FROM (20) TO (30)",
    ),
    Case("detach_partition", PART, "ALTER TABLE m DETACH PARTITION m2"),
    Case("detach_partition_with_default", PARTD, "ALTER TABLE m DETACH PARTITION m2"),
    Case(
        "detach_partition_concurrently",
        PART,
        "ALTER TABLE m DETACH PARTITION m2 CONCURRENTLY",
        blocked_on="m",
    ),
    Case("partitioned_add_column", PART, "ALTER TABLE m ADD COLUMN z int"),
    Case("partitioned_set_not_null", PART, "ALTER TABLE m ALTER COLUMN k SET NOT NULL"),
    Case("partitioned_alter_type", PART, "ALTER TABLE m ALTER COLUMN id TYPE bigint"),
    Case(
        "partition_only_set_statistics",
        PART,
        "ALTER TABLE ONLY m ALTER COLUMN id SET STATISTICS 10",
    ),
    Case(
        "partitioned_add_fk",
        PART
        + "CREATE TABLE pk (id int PRIMARY KEY); INSERT INTO pk SELECT generate_series(0, 19);",
        "ALTER TABLE m ADD CONSTRAINT m_fk FOREIGN KEY (id) REFERENCES pk (id)",
    ),
]

_INDEX = [
    Case("create_index", T, "CREATE INDEX t_b_idx ON t (b)"),
    Case("create_unique_index", T, "CREATE UNIQUE INDEX t_b_uq ON t (b, id)"),
    Case("create_index_if_not_exists", T, "CREATE INDEX IF NOT EXISTS t_a_idx ON t (a)"),
    Case("create_index_partitioned", PART, "CREATE INDEX m_k_idx ON m (k)"),
    Case("create_index_only_partitioned", PART, "CREATE INDEX m_k_idx ON ONLY m (k)"),
    Case("create_index_only_plain_table", T, "CREATE INDEX t_n_idx ON ONLY t (n)"),
    Case("create_index_matview", MV, "CREATE INDEX mv_a_idx ON mv (a)"),
    Case(
        "create_index_concurrently", T, "CREATE INDEX CONCURRENTLY t_b_idx ON t (b)", blocked_on="t"
    ),
    Case("drop_index", T, "DROP INDEX t_a_idx"),
    Case("drop_index_if_exists", T, "DROP INDEX IF EXISTS t_a_idx, t_nope_idx"),
    Case("drop_index_concurrently", T, "DROP INDEX CONCURRENTLY t_a_idx", blocked_on="t"),
    Case("reindex_index", T, "REINDEX INDEX t_a_idx"),
    Case("reindex_table", T, "REINDEX TABLE t"),
    Case("reindex_concurrently", T, "REINDEX TABLE CONCURRENTLY t", blocked_on="t"),
    Case("reindex_index_concurrently", T, "REINDEX INDEX CONCURRENTLY t_a_idx", blocked_on="t"),
    # an option turned off is a plain REINDEX: SHARE, in the transaction
    Case("reindex_concurrently_false", T, "REINDEX (CONCURRENTLY false) TABLE t"),
    Case("reindex_concurrently_0", T, "REINDEX (CONCURRENTLY 0) INDEX t_a_idx"),
    Case("reindex_concurrently_on", T, "REINDEX (CONCURRENTLY on) TABLE t", blocked_on="t"),
    # A partitioned table: the partitions are listed under SHARE (both forms; behind a
    # writer on a partition, writers of that partition queue), then reindexed one by one.
    Case("reindex_partitioned", PARTIX, "REINDEX TABLE m", blocked_on="m1"),
    Case(
        "reindex_partitioned_concurrently",
        PARTIX,
        "REINDEX TABLE CONCURRENTLY m",
        blocked_on="m1",
    ),
    Case("reindex_partitioned_index", PARTIX, "REINDEX INDEX m_k_idx", blocked_on="m1"),
    Case(
        "reindex_partitioned_index_concurrently",
        PARTIX,
        "REINDEX INDEX CONCURRENTLY m_k_idx",
        blocked_on="m1",
    ),
    Case("alter_index_rename", T, "ALTER INDEX t_a_idx RENAME TO t_a_idx2"),
    Case("alter_index_set_fillfactor", T, "ALTER INDEX t_a_idx SET (fillfactor = 80)"),
    Case(
        "alter_index_set_statistics",
        T + "CREATE INDEX t_expr_idx ON t ((a + 1));",
        "ALTER INDEX t_expr_idx ALTER COLUMN 1 SET STATISTICS 100",
    ),
    Case(
        "alter_index_attach_partition",
        PART + "CREATE INDEX m_k_idx ON ONLY m (k); CREATE INDEX m1_k_idx ON m1 (k);",
        "ALTER INDEX m_k_idx ATTACH PARTITION m1_k_idx",
    ),
]

_MAINTENANCE = [
    Case("cluster", T, "CLUSTER t USING t_a_idx"),
    Case("vacuum", T, "VACUUM t", blocked_on="t"),
    Case("vacuum_full", T, "VACUUM FULL t", blocked_on="t"),
    Case("vacuum_analyze", T, "VACUUM (ANALYZE) t", blocked_on="t"),
    Case("analyze", T, "ANALYZE t"),
    Case("analyze_columns", T, "ANALYZE t (a, b)"),
    Case("truncate", T, "TRUNCATE t"),
    Case("truncate_restart_identity", SEQ, "TRUNCATE ts RESTART IDENTITY"),
    Case("truncate_cascade", FKD, "TRUNCATE p CASCADE"),
    Case("truncate_both", FKD, "TRUNCATE p, f"),
    Case("truncate_partitioned", PART, "TRUNCATE m"),
    Case("lock_table_share", T, "LOCK TABLE t IN SHARE MODE"),
    Case("lock_table_default", T, "LOCK t"),
    Case("lock_table_row_exclusive", T + FK, "LOCK TABLE t, p IN ROW EXCLUSIVE MODE NOWAIT"),
    Case("lock_table_partitioned", PART, "LOCK TABLE m IN SHARE UPDATE EXCLUSIVE MODE"),
    Case("lock_table_only", PART, "LOCK TABLE ONLY m IN EXCLUSIVE MODE"),
]

_DROP_CREATE = [
    Case("drop_table", T, "DROP TABLE t"),
    Case("drop_table_referencing", FKD, "DROP TABLE f"),
    Case("drop_table_referenced_cascade", FKD, "DROP TABLE p CASCADE"),
    Case("drop_table_with_view_cascade", MV, "DROP TABLE t CASCADE"),
    Case("drop_table_serial", SEQ, "DROP TABLE ts"),
    Case("drop_table_partitioned", PART, "DROP TABLE m"),
    Case("drop_partition", PART, "DROP TABLE m2"),
    Case("drop_table_if_exists", T, "DROP TABLE IF EXISTS t, nope"),
    Case("drop_view", MV, "DROP VIEW v"),
    Case("drop_matview", MV, "DROP MATERIALIZED VIEW mv"),
    Case("drop_sequence", SEQ, "DROP SEQUENCE s"),
    Case(
        "drop_schema_cascade",
        "CREATE SCHEMA {s}_other; CREATE TABLE {s}_other.q (id int PRIMARY KEY, x int);"
        " CREATE INDEX q_x ON {s}_other.q (x);",
        "DROP SCHEMA {s}_other CASCADE",
    ),
    Case("create_table", "", "CREATE TABLE nt (id bigint PRIMARY KEY, x text UNIQUE)"),
    Case("create_table_serial", "", "CREATE TABLE nt (id serial, x int)"),
    Case("create_table_references", FK, "CREATE TABLE nt (id int, p_id int REFERENCES p (id))"),
    Case(
        "create_table_partition_of",
        PART,
        "CREATE TABLE m3 PARTITION OF m FOR VALUES FROM (20) TO (30)",
    ),
    Case(
        "create_table_partition_of_with_default",
        PARTD,
        "CREATE TABLE m3 PARTITION OF m FOR VALUES FROM (20) TO (30)",
    ),
    Case("create_table_like", T, "CREATE TABLE nt (LIKE t INCLUDING ALL)"),
    Case("create_table_as", T, "CREATE TABLE nt AS SELECT * FROM t"),
    Case("create_temp_table", "", "CREATE TEMP TABLE tmp_x (id int)"),
    Case(
        "create_trigger",
        TRG,
        "CREATE TRIGGER t_trg2 AFTER UPDATE ON t FOR EACH ROW EXECUTE FUNCTION trg()",
    ),
    Case("drop_trigger", TRG, "DROP TRIGGER t_trg ON t"),
    Case("rename_trigger", TRG, "ALTER TRIGGER t_trg ON t RENAME TO t_trg9"),
    Case("create_policy", T, "CREATE POLICY t_pol ON t USING (a > 0)"),
    Case("alter_policy", POL, "ALTER POLICY t_pol ON t USING (a > 1)"),
    Case("rename_policy", POL, "ALTER POLICY t_pol ON t RENAME TO t_pol9"),
    Case("drop_policy", POL, "DROP POLICY t_pol ON t"),
    Case("create_rule", T, "CREATE RULE t_rule AS ON UPDATE TO t DO ALSO NOTHING"),
    Case("replace_rule", RULE, "CREATE OR REPLACE RULE t_rule AS ON UPDATE TO t DO ALSO NOTHING"),
    Case("rename_rule", RULE, "ALTER RULE t_rule ON t RENAME TO t_rule9"),
    Case("drop_rule", RULE, "DROP RULE t_rule ON t"),
    Case("create_statistics", T, "CREATE STATISTICS t_stat ON a, n FROM t"),
    Case("create_publication", T, "CREATE PUBLICATION {s}_pub FOR TABLE t"),
    Case("alter_publication_add", PUB, "ALTER PUBLICATION {s}_pub ADD TABLE t"),
    Case("create_view", T, "CREATE VIEW nv AS SELECT id, a FROM t"),
    Case("create_or_replace_view", MV, "CREATE OR REPLACE VIEW v AS SELECT id, a, 1 AS one FROM t"),
    Case("create_matview", T, "CREATE MATERIALIZED VIEW nmv AS SELECT id, a FROM t"),
    Case("refresh_matview", MV, "REFRESH MATERIALIZED VIEW mv"),
    Case("refresh_matview_concurrently", MV, "REFRESH MATERIALIZED VIEW CONCURRENTLY mv"),
    Case("alter_view_rename", MV, "ALTER VIEW v RENAME TO v2"),
    Case("alter_matview_rename", MV, "ALTER MATERIALIZED VIEW mv RENAME TO mv2"),
    Case("create_sequence", "", "CREATE SEQUENCE ns"),
    Case("alter_sequence_restart", SEQ, "ALTER SEQUENCE s RESTART WITH 10"),
    Case("alter_sequence_increment", SEQ, "ALTER SEQUENCE s INCREMENT BY 5"),
    Case("alter_sequence_owned_by", SEQ, "ALTER SEQUENCE s OWNED BY ts.x"),
    Case("comment_on_table", T, "COMMENT ON TABLE t IS 'hello'"),
    Case("comment_on_column", T, "COMMENT ON COLUMN t.a IS 'hello'"),
    Case("comment_on_index", T, "COMMENT ON INDEX t_a_idx IS 'hello'"),
    Case("grant_select", T, "GRANT SELECT ON t TO PUBLIC"),
    Case("revoke_select", T, "REVOKE SELECT ON t FROM PUBLIC"),
    Case("alter_type_add_value", ENUM, "ALTER TYPE mood ADD VALUE 'happy'"),
    Case("create_type", "", "CREATE TYPE color AS ENUM ('red', 'green')"),
    Case("drop_type", ENUM, "DROP TABLE e; DROP TYPE mood"),
    Case("create_function", "", "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
    Case("drop_function", TRG, "DROP FUNCTION trg() CASCADE"),
    Case("create_extension", "", "CREATE EXTENSION IF NOT EXISTS plpgsql"),
    Case("create_schema", "", "CREATE SCHEMA {s}_new"),
]

_DML = [
    Case("insert", T, "INSERT INTO t (id, a) VALUES (100, 1)"),
    Case("insert_fk", FKD, "INSERT INTO f VALUES (3, 1)"),
    Case(
        "insert_on_conflict_update",
        T,
        "INSERT INTO t (id, a) VALUES (1, 5) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a",
    ),
    Case(
        "insert_on_conflict_nothing",
        T,
        "INSERT INTO t (id, a) VALUES (1, 5) ON CONFLICT DO NOTHING",
    ),
    Case(
        "insert_on_conflict_target_nothing",
        T,
        "INSERT INTO t (id, a) VALUES (1, 5) ON CONFLICT (id) DO NOTHING",
    ),
    Case("insert_select", T + FK, "INSERT INTO p (id) SELECT id + 100 FROM t"),
    # nextval() of a serial/identity default: ROW EXCLUSIVE on the sequence (Django's
    # INSERT INTO django_migrations (app, name, applied) VALUES ...)
    Case("insert_serial_default", SEQ, "INSERT INTO ts (x) VALUES (1)"),
    Case("insert_serial_default_keyword", SEQ, "INSERT INTO ts VALUES (DEFAULT, 1)"),
    Case("insert_serial_given", SEQ, "INSERT INTO ts VALUES (5, 1)"),
    Case("insert_serial_select", SEQ, "INSERT INTO ts (x) SELECT g FROM generate_series(1, 2) g"),
    Case(
        "insert_identity_default",
        "CREATE TABLE ti (id bigint GENERATED BY DEFAULT AS IDENTITY, x int);",
        "INSERT INTO ti (x) VALUES (1)",
    ),
    Case("update", T, "UPDATE t SET a = a + 1 WHERE id = 1"),
    Case("update_fk_column", FKD, "UPDATE f SET p_id = 2 WHERE id = 1"),
    Case(
        "update_referenced_key",
        FKD + "INSERT INTO p VALUES (3, 3);",
        "UPDATE p SET id = 30 WHERE id = 3",
    ),
    Case("update_referenced_other_column", FKD, "UPDATE p SET v = 30 WHERE id = 2"),
    Case("update_no_where", T, "UPDATE t SET a = 0"),
    Case("delete", T, "DELETE FROM t WHERE id = 1"),
    Case("delete_no_where", T, "DELETE FROM t"),
    Case("delete_referenced", FKD + "INSERT INTO p VALUES (3, 3);", "DELETE FROM p WHERE id = 3"),
    Case("select", T, "SELECT * FROM t WHERE id = 1"),
    Case("select_join", T + FK, "SELECT * FROM t JOIN p ON p.id = t.a"),
    Case("select_for_update", T, "SELECT * FROM t WHERE id = 1 FOR UPDATE"),
    Case("select_for_share", T, "SELECT * FROM t WHERE id = 1 FOR SHARE"),
    Case("select_view", MV, "SELECT * FROM v"),
    Case("copy_to", T, "COPY t TO STDOUT"),
    Case("copy_from", T, "COPY t (id, a) FROM STDIN"),
    # Data-modifying WITH queries lock as the statement alone; a WITH name is no relation.
    Case(
        "with_delete_insert",
        T + FK,
        "WITH moved AS (DELETE FROM t WHERE a < 5 RETURNING id) "
        "INSERT INTO p (id) SELECT id + 100 FROM moved",
    ),
    Case("with_update_select", T, "WITH u AS (UPDATE t SET a = 0 RETURNING id) SELECT * FROM u"),
    Case(
        "merge_update_insert",
        T + "CREATE TABLE src (id int, a int); INSERT INTO src VALUES (1, 5), (500, 6);",
        "MERGE INTO t USING src s ON s.id = t.id WHEN MATCHED THEN UPDATE SET a = s.a "
        "WHEN NOT MATCHED THEN INSERT (id, a) VALUES (s.id, s.a)",
        min_version=15,
    ),
    Case(
        "merge_delete_referenced",
        FKD + "INSERT INTO p VALUES (3, 3);",
        "MERGE INTO p USING (VALUES (3)) v (id) ON v.id = p.id WHEN MATCHED THEN DELETE",
        min_version=15,
    ),
    Case(
        "with_select_insert",
        T + FK,
        "WITH picked AS (SELECT id FROM t WHERE a > 3) INSERT INTO p (id) SELECT id FROM picked",
    ),
]

DOM = """
CREATE DOMAIN posint AS int;
CREATE TABLE d (id int PRIMARY KEY, v posint);
CREATE TABLE d2 (w posint, x int);
CREATE TABLE dp (k int, v posint) PARTITION BY RANGE (k);
CREATE TABLE dp1 PARTITION OF dp FOR VALUES FROM (0) TO (10);
CREATE TABLE other (id int);
INSERT INTO d SELECT g, g FROM generate_series(1, 20) g;
INSERT INTO d2 VALUES (1, 1);
INSERT INTO dp VALUES (1, 1);
"""

_DOMAIN = [
    # A new column of a domain with constraints: every row is checked (a rewrite).
    Case(
        "add_column_constrained_domain",
        DOM + "ALTER DOMAIN posint ADD CONSTRAINT pos CHECK (VALUE > 0);\n",
        "ALTER TABLE other ADD COLUMN v posint",
    ),
    Case(
        "add_column_constrained_domain_default",
        DOM + "ALTER DOMAIN posint SET NOT NULL;\n",
        "ALTER TABLE other ADD COLUMN v posint DEFAULT 1",
    ),
    Case("add_column_unconstrained_domain", DOM, "ALTER TABLE other ADD COLUMN v posint"),
    Case("domain_add_check", DOM, "ALTER DOMAIN posint ADD CONSTRAINT pos CHECK (VALUE > 0)"),
    Case(
        "domain_add_check_not_valid",
        DOM,
        "ALTER DOMAIN posint ADD CONSTRAINT pos CHECK (VALUE > 0) NOT VALID",
    ),
    Case(
        "domain_validate",
        DOM + "ALTER DOMAIN posint ADD CONSTRAINT pos CHECK (VALUE > 0) NOT VALID;\n",
        "ALTER DOMAIN posint VALIDATE CONSTRAINT pos",
    ),
    Case("domain_set_not_null", DOM, "ALTER DOMAIN posint SET NOT NULL"),
    Case("domain_drop_not_null", DOM, "ALTER DOMAIN posint DROP NOT NULL"),
    Case("domain_set_default", DOM, "ALTER DOMAIN posint SET DEFAULT 1"),
    # From a domain to its base type the column is relabelled (no rewrite, its index kept);
    # to another type it is converted.
    Case(
        "type_domain_to_base",
        DOM + "ALTER DOMAIN posint ADD CONSTRAINT pos CHECK (VALUE > 0);\n"
        "CREATE INDEX d_v_idx ON d (v);\n",
        "ALTER TABLE d ALTER COLUMN v TYPE int",
    ),
    Case(
        "type_domain_to_other",
        DOM + "CREATE INDEX d_v_idx ON d (v);\n",
        "ALTER TABLE d ALTER COLUMN v TYPE bigint",
    ),
    Case(
        "domain_drop_constraint",
        DOM + "ALTER DOMAIN posint ADD CONSTRAINT pos CHECK (VALUE > 0);\n",
        "ALTER DOMAIN posint DROP CONSTRAINT pos",
    ),
]

_MULTI = [
    Case(
        "incident_fk_recreate",
        INCIDENT,
        "ALTER TABLE invoices DROP CONSTRAINT invoices_payment_account_id_fkey;"
        " ALTER TABLE invoices ADD CONSTRAINT invoices_payment_account_id_fkey"
        " FOREIGN KEY (payment_account_id) REFERENCES payment_accounts (id);",
    ),
    Case(
        "safe_fk_recreate",
        INCIDENT,
        "ALTER TABLE invoices ADD CONSTRAINT invoices_pa_fk2 FOREIGN KEY (payment_account_id)"
        " REFERENCES payment_accounts (id) NOT VALID;"
        " ALTER TABLE invoices VALIDATE CONSTRAINT invoices_pa_fk2;",
    ),
    Case(
        "add_column_then_index",
        T,
        "ALTER TABLE t ADD COLUMN e int; CREATE INDEX t_e_idx ON t (e);",
    ),
]

# Issue 14.3: a primary key over an index on a nullable column proved NOT NULL by a valid
# CHECK, and a scan inside an ALTER TABLE whose other sub-commands take ACCESS EXCLUSIVE.
KNN = K + "CREATE UNIQUE INDEX k_v_uq ON k (v);\n"
TS = """
CREATE TABLE ts2 (id int, ip cidr, at timestamp, at3 timestamp(3), tz3 timestamptz(3),
    n numeric(10, 2), tm3 time(3), iv3 interval(3));
INSERT INTO ts2 SELECT g, '10.0.0.0/8', now(), now(), now(), 1.5, now(), '1 s'
FROM generate_series(1, 20) g;
"""
_INPLAN = [
    Case(
        "pk_using_index_nullable",
        KNN,
        "ALTER TABLE k ADD CONSTRAINT k_pk PRIMARY KEY USING INDEX k_v_uq",
    ),
    Case(
        "pk_using_index_not_null_check",
        KNN + "ALTER TABLE k ADD CONSTRAINT k_v_nn CHECK (v IS NOT NULL);\n",
        "ALTER TABLE k ADD CONSTRAINT k_pk PRIMARY KEY USING INDEX k_v_uq",
    ),
    Case(
        "validate_check_with_add_column",
        T + "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID;",
        "ALTER TABLE t VALIDATE CONSTRAINT t_a_pos, ADD COLUMN z int",
    ),
    Case(
        "validate_fk_with_drop_column",
        FK + "ALTER TABLE f ADD CONSTRAINT f_fk FOREIGN KEY (p_id) REFERENCES p (id) NOT VALID;"
        " ALTER TABLE f ADD COLUMN z int;",
        "ALTER TABLE f VALIDATE CONSTRAINT f_fk, DROP COLUMN z",
    ),
    # Type changes the catalog (or the plan) knows the current type of.
    Case("alter_type_cidr_inet", TS, "ALTER TABLE ts2 ALTER COLUMN ip TYPE inet"),
    Case("alter_type_ts_precision_up", TS, "ALTER TABLE ts2 ALTER COLUMN at3 TYPE timestamp(6)"),
    Case("alter_type_ts_precision_drop", TS, "ALTER TABLE ts2 ALTER COLUMN at3 TYPE timestamp"),
    Case("alter_type_ts_precision_down", TS, "ALTER TABLE ts2 ALTER COLUMN at3 TYPE timestamp(1)"),
    Case(
        "alter_type_tstz_precision_up", TS, "ALTER TABLE ts2 ALTER COLUMN tz3 TYPE timestamptz(5)"
    ),
    Case("alter_type_ts_to_precision", TS, "ALTER TABLE ts2 ALTER COLUMN at TYPE timestamp(3)"),
    Case("alter_type_numeric_up", TS, "ALTER TABLE ts2 ALTER COLUMN n TYPE numeric(12, 2)"),
    Case("alter_type_time_precision_up", TS, "ALTER TABLE ts2 ALTER COLUMN tm3 TYPE time(6)"),
    Case(
        "alter_type_interval_precision_up",
        TS,
        "ALTER TABLE ts2 ALTER COLUMN iv3 TYPE interval(6)",
    ),
]

# Issue 14.1: DO blocks run their statements in one transaction; the model's effects of
# the DO statement are the union of its statements' (conditions here hold on the data).
_PLPGSQL = [
    Case(
        "do_add_column_volatile_default",
        T,
        "DO $$ BEGIN ALTER TABLE t ADD COLUMN z uuid NOT NULL DEFAULT gen_random_uuid(); END $$",
    ),
    Case(
        "do_if_not_exists_add_unique",
        T,
        "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM t WHERE a = 0) THEN\n"
        "    ALTER TABLE t ADD CONSTRAINT t_a_key UNIQUE (a);\n  END IF;\nEND\n$$",
    ),
    Case("do_create_index", T, "DO $$ BEGIN CREATE INDEX t_b_idx ON t (b); END $$"),
    Case(
        "do_add_column_then_index",
        T,
        "DO $$ BEGIN ALTER TABLE t ADD COLUMN z int; CREATE INDEX t_z_idx ON t (z); END $$",
    ),
    Case(
        "do_constant_execute_alter_type",
        T,
        "DO $$ BEGIN EXECUTE 'ALTER TABLE t ALTER COLUMN c TYPE timestamptz'; END $$",
    ),
    Case(
        "do_add_fk",
        FK,
        "DO $$ BEGIN ALTER TABLE f ADD CONSTRAINT f_fk FOREIGN KEY (p_id) REFERENCES p (id); "
        "END $$",
    ),
    Case("do_set_not_null", T, "DO $$ BEGIN ALTER TABLE t ALTER COLUMN a SET NOT NULL; END $$"),
    Case("do_drop_table", FK, "DO $$ BEGIN DROP TABLE f; END $$"),
]

CASES: list[Case] = (
    _ALTER_TABLE
    + _INDEX
    + _MAINTENANCE
    + _DROP_CREATE
    + _DML
    + _DOMAIN
    + _MULTI
    + _INPLAN
    + _PLPGSQL
)
