"""A `lint --fix` output whose statements create types, domains, functions, views,
schemas, collations, sequences, move a table to a schema or convert a column USING
an expression runs again after a run that got half-way or to its end (its header says
to retry the whole file): each such statement is skipped when what it makes is there,
and the file leaves what one run of the original leaves.

Each shape is a transaction with a CREATE INDEX that `--fix` builds concurrently (so
the file is rewritten), fixed without a catalog, linted again (no hazard it claims to
fix, none the original did not have), run half-way, whole, and whole again on a live
server, and compared with one run of the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pgwarden.analysis.parse import parse
from pgwarden.commands import Context, lint
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.pg.cluster import Cluster
from tests.fixtures.pg import new_database

SETUP = """
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL,
                        tags text NOT NULL, cents bigint NOT NULL, code varchar(10));
INSERT INTO customers (id, name, email, tags, cents, code)
SELECT g, 'customer ' || g, 'c' || g || '@example.org', 'a,b', g * 100, 'c' || g
FROM generate_series(1, 200) g;
"""
BUILD = "CREATE INDEX customers_email_idx ON customers (email);"


# A base type that takes a modifier (as an extension's vector(3) or geometry(Point,4326)
# does), made of varchar's own C functions: its typmod is the type's own to compute.
LABEL_TYPE = """
CREATE TYPE label;
CREATE FUNCTION label_in(cstring, oid, integer) RETURNS label
    LANGUAGE internal IMMUTABLE STRICT AS 'varcharin';
CREATE FUNCTION label_out(label) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'varcharout';
CREATE FUNCTION label_typmod_in(cstring[]) RETURNS integer
    LANGUAGE internal IMMUTABLE STRICT AS 'varchartypmodin';
CREATE TYPE label (INPUT = label_in, OUTPUT = label_out, TYPMOD_IN = label_typmod_in,
                   INTERNALLENGTH = VARIABLE, STORAGE = extended);
"""


@dataclass(frozen=True)
class Shape:
    name: str
    sql: str  # the transaction's statements (with the build, or the build is added)
    setup: str = ""  # what the database has before the file
    extension: str = ""  # an extension the server must have


SHAPES = [
    Shape(
        "composite_type",
        "CREATE TYPE contact AS (name text, email text);\n"
        "CREATE INDEX customers_contact_idx ON customers ((ROW(name, email)::contact));",
    ),
    Shape(
        "enum_and_value",
        "CREATE TYPE tier AS ENUM ('free', 'paid');\n"
        "ALTER TYPE tier ADD VALUE 'gold';\n"
        "ALTER TABLE customers ADD COLUMN tier tier;",
    ),
    Shape(
        "enum_rename_value",
        "CREATE TYPE state AS ENUM ('new', 'old');\nALTER TYPE state RENAME VALUE 'old' TO 'gone';",
    ),
    Shape("range_type", "CREATE TYPE cents_range AS RANGE (subtype = bigint);"),
    Shape(
        "domain",
        "CREATE DOMAIN mail AS text CHECK (VALUE LIKE '%@%');\n"
        "CREATE INDEX customers_mail_idx ON customers ((email::mail));",
    ),
    Shape(
        "function",
        "CREATE FUNCTION email_domain(e text) RETURNS text\n"
        "    LANGUAGE sql IMMUTABLE AS $$ SELECT split_part(e, '@', 2) $$;\n"
        "CREATE FUNCTION email_domain(e text, n int, VARIADIC rest text[]) RETURNS text\n"
        "    LANGUAGE sql IMMUTABLE AS $$ SELECT split_part(e, '@', n) $$;\n"
        "CREATE INDEX customers_domain_idx ON customers ((email_domain(email)));",
    ),
    Shape(
        "procedure",
        "CREATE PROCEDURE count_customers(IN lo bigint, OUT n bigint)\n"
        "    LANGUAGE sql AS $$ SELECT count(*) FROM customers WHERE id >= lo $$;",
    ),
    Shape(
        "function_in_new_schema",
        "CREATE SCHEMA util;\n"
        "CREATE FUNCTION util.mailbox(e text) RETURNS text\n"
        "    LANGUAGE sql IMMUTABLE AS $$ SELECT split_part(e, '@', 1) $$;\n"
        "CREATE INDEX customers_mailbox_idx ON customers ((util.mailbox(email)));",
    ),
    Shape(
        "collation",
        'CREATE COLLATION bytewise FROM "C";\n'
        "CREATE INDEX customers_name_bytewise_idx ON customers (name COLLATE bytewise);",
    ),
    Shape(
        "set_schema",
        "CREATE SCHEMA crm;\nALTER TABLE customers SET SCHEMA crm;\n"
        "CREATE INDEX customers_email_idx ON crm.customers (email);",
    ),
    Shape(
        "set_schema_of_a_table_the_search_path_finds_first",
        "ALTER TABLE customers SET SCHEMA crm;",
        setup="CREATE SCHEMA crm; DO $$ BEGIN EXECUTE format("
        "'ALTER DATABASE %I SET search_path = crm, public', current_database()); END $$;",
    ),
    Shape(
        "type_set_schema",
        "CREATE SCHEMA crm;\nALTER TYPE tier SET SCHEMA crm;",
        setup="CREATE TYPE tier AS ENUM ('free');",
    ),
    Shape(
        "convert_using",
        "ALTER TABLE customers ALTER COLUMN tags TYPE text[] USING string_to_array(tags, ',');\n"
        "CREATE INDEX customers_tags_idx ON customers USING gin (tags);",
    ),
    Shape(
        "convert_using_twice_would_scale_twice",
        "ALTER TABLE customers ALTER COLUMN cents TYPE numeric(12,2) USING cents / 100.0,\n"
        "    ALTER COLUMN code TYPE varchar(20) USING upper(code);",
    ),
    Shape("sequence", "CREATE SEQUENCE customer_no START 1000;"),
    Shape("view", "CREATE VIEW customer_emails AS SELECT id, email FROM customers;"),
    Shape(
        "materialized_view",
        "CREATE MATERIALIZED VIEW customer_count AS SELECT count(*) FROM customers;",
    ),
    Shape("schema", "CREATE SCHEMA reports;"),
    Shape(
        "extension",
        "CREATE EXTENSION pg_trgm;\n"
        "CREATE INDEX customers_name_trgm ON customers USING gin (name gin_trgm_ops);",
        extension="pg_trgm",
    ),
    Shape(
        "trigger",
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS\n"
        "    $$ BEGIN NEW.email := lower(NEW.email); RETURN NEW; END $$;\n"
        "CREATE TRIGGER customers_touch BEFORE UPDATE ON customers\n"
        "    FOR EACH ROW EXECUTE FUNCTION touch();",
    ),
    Shape(
        "policy",
        "ALTER TABLE customers ENABLE ROW LEVEL SECURITY;\n"
        "CREATE POLICY customers_own ON customers USING (email = current_user);",
    ),
    Shape("rule", "CREATE RULE customers_keep AS ON DELETE TO customers DO INSTEAD NOTHING;"),
    Shape("statistics", "CREATE STATISTICS customers_name_email ON name, email FROM customers;"),
    Shape("publication", "CREATE PUBLICATION customers_pub FOR TABLE customers;"),
    Shape("schema_with_elements", "CREATE SCHEMA audit CREATE TABLE log (id bigint, at date);"),
    Shape(
        "cast",
        "CREATE TYPE tier AS ENUM ('free', 'paid');\n"
        "CREATE CAST (text AS tier) WITH INOUT AS ASSIGNMENT;",
    ),
    Shape(
        "operator",
        "CREATE FUNCTION same_name(a text, b text) RETURNS boolean\n"
        "    LANGUAGE sql IMMUTABLE AS $$ SELECT lower(a) = lower(b) $$;\n"
        "CREATE OPERATOR === (LEFTARG = text, RIGHTARG = text, FUNCTION = same_name);\n"
        "CREATE OPERATOR public.!== (RIGHTARG = bigint, FUNCTION = int8um);",
    ),
    Shape(
        "aggregate",
        "CREATE AGGREGATE total_cents(bigint) (SFUNC = int8pl, STYPE = bigint, INITCOND = '0');\n"
        "CREATE AGGREGATE newest(BASETYPE = bigint, SFUNC = int8larger, STYPE = bigint);\n"
        "CREATE AGGREGATE pick(ORDER BY text) (SFUNC = textcat, STYPE = text, INITCOND = '');",
    ),
    Shape(
        "foreign_table",
        "CREATE FOREIGN DATA WRAPPER nowhere;\n"
        "CREATE SERVER archive FOREIGN DATA WRAPPER nowhere;\n"
        "CREATE USER MAPPING FOR CURRENT_USER SERVER archive;\n"
        "CREATE FOREIGN TABLE old_customers (id bigint, name text) SERVER archive;",
    ),
    Shape(
        "foreign_table_postgres_fdw",
        "CREATE EXTENSION postgres_fdw;\n"
        "CREATE SERVER archive FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'archive');\n"
        "CREATE USER MAPPING FOR CURRENT_USER SERVER archive;\n"
        "CREATE FOREIGN TABLE old_customers (id bigint, name text) SERVER archive\n"
        "    OPTIONS (table_name 'customers');",
        extension="postgres_fdw",
    ),
    Shape(
        "subscription",
        "CREATE SUBSCRIPTION customers_sub CONNECTION 'dbname=nowhere'\n"
        "    PUBLICATION customers_pub WITH (connect = false);",
    ),
    Shape("unnamed_exclude", "ALTER TABLE customers ADD EXCLUDE USING btree (email WITH =);"),
    Shape(
        "function_with_type_of_a_column",
        "CREATE FUNCTION label(n customers.name%TYPE, c public.customers.cents%TYPE)\n"
        "    RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT n || c $$;",
    ),
    Shape(
        "convert_using_to_a_type_with_a_typmod_of_its_own",
        "ALTER TABLE customers ALTER COLUMN code TYPE label(20) USING (code || '!')::label;",
        setup=LABEL_TYPE,
    ),
    Shape(
        "convert_using_to_an_interval_with_a_precision",
        "ALTER TABLE customers ALTER COLUMN cents TYPE interval second(0)\n"
        "    USING make_interval(secs => cents + 1);",
    ),
    # The text of the dollar tag the fix's blocks are quoted with, in the statement itself.
    Shape(
        "dollar_tag_in_a_constraint",
        "ALTER TABLE customers ADD CONSTRAINT name_is_no_tag CHECK (name <> '$pgwarden$');",
    ),
    Shape(
        "dollar_tag_around_a_function_body",
        "CREATE FUNCTION tagged(n text) RETURNS text\n"
        "    LANGUAGE sql IMMUTABLE AS $pgwarden$ SELECT n || '$pgwarden1$' $pgwarden$;",
    ),
    Shape("dollar_tag_in_a_rename", 'ALTER TABLE customers RENAME COLUMN code TO "$pgwarden$";'),
    Shape(
        "type_attributes",
        "ALTER TYPE pair ADD ATTRIBUTE c int;\n"
        "ALTER TYPE pair ADD ATTRIBUTE d text, DROP ATTRIBUTE b CASCADE;",
        setup="CREATE TYPE pair AS (a int, b int);",
    ),
    Shape(
        "partitions",
        "CREATE TABLE visits_2 PARTITION OF visits FOR VALUES FROM (100) TO (200);\n"
        "ALTER TABLE visits ATTACH PARTITION visits_1 FOR VALUES FROM (1) TO (100);",
        setup="CREATE TABLE visits (id int) PARTITION BY RANGE (id);\n"
        "CREATE TABLE visits_1 (id int);",
    ),
    Shape(
        "identity",
        "ALTER TABLE customers ALTER COLUMN cents ADD GENERATED BY DEFAULT AS IDENTITY;",
    ),
    Shape(
        "operator_class_and_family",
        "CREATE OPERATOR FAMILY text_pattern_fam USING hash;\n"
        "CREATE OPERATOR CLASS text_hash_ops FOR TYPE text USING hash FAMILY text_pattern_fam\n"
        "    AS OPERATOR 1 =, FUNCTION 1 hashtext(text);",
    ),
    Shape(
        "text_search",
        "CREATE TEXT SEARCH TEMPLATE plain_words (LEXIZE = dsimple_lexize);\n"
        "CREATE TEXT SEARCH DICTIONARY plain_dict (TEMPLATE = plain_words);\n"
        "CREATE TEXT SEARCH PARSER plain_parser (START = prsd_start, GETTOKEN = prsd_nexttoken,\n"
        "    END = prsd_end, LEXTYPES = prsd_lextype);\n"
        "CREATE TEXT SEARCH CONFIGURATION plain_cfg (PARSER = plain_parser);",
    ),
    Shape(
        "conversion",
        "CREATE CONVERSION latin_to_utf8 FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;",
    ),
    Shape(
        "access_method",
        "CREATE ACCESS METHOD heap_copy TYPE TABLE HANDLER heap_tableam_handler;",
    ),
    Shape(
        "inheritance",
        "ALTER TABLE archived INHERIT customers;",
        setup="CREATE TABLE archived (LIKE customers);",
    ),
    Shape(
        "renames_of_other_objects",
        "ALTER TYPE pair RENAME ATTRIBUTE b TO c;\nALTER TYPE mood RENAME TO feeling;\n"
        "ALTER DOMAIN mail RENAME TO post;\nALTER FUNCTION twice(int) RENAME TO double;\n"
        "ALTER PROCEDURE tick RENAME TO tock;\nALTER SCHEMA crm RENAME TO sales;",
        setup="CREATE TYPE pair AS (a int, b int); CREATE DOMAIN mail AS text;\n"
        "CREATE TYPE mood AS ENUM ('ok');\n"
        "CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2';\n"
        "CREATE PROCEDURE tick() LANGUAGE sql AS 'SELECT 1'; CREATE SCHEMA crm;",
    ),
    Shape(
        "domain_constraint",
        "ALTER DOMAIN mail ADD CONSTRAINT mail_at CHECK (VALUE LIKE '%@%');",
        setup="CREATE DOMAIN mail AS text;",
    ),
    # The server names an unnamed CHECK of a domain mail_check, numbered past the names
    # taken (the CREATE DOMAIN's own CHECK has mail_check): run again, it adds mail_check3.
    Shape(
        "unnamed_domain_checks",
        "CREATE DOMAIN mail AS text CHECK (VALUE <> '');\n"
        "ALTER DOMAIN mail ADD CHECK (VALUE LIKE '%@%');\n"
        "ALTER DOMAIN public.mail ADD CHECK (length(VALUE) > 3);",
    ),
    # SELECT ... INTO creates its table, with no IF NOT EXISTS: the server makes it a
    # CREATE TABLE ... AS (same column types: an unknown literal text, a division numeric).
    Shape(
        "select_into",
        "SELECT id, name, cents * 2 AS double_cents, 'x' AS tag, cents / 3.0 AS third, code\n"
        "    INTO big_spenders FROM customers WHERE cents > 1000\n"
        "    UNION ALL SELECT 0, 'none', 0, 'y', 0, NULL;\n"
        "SELECT 1 AS one INTO UNLOGGED TABLE public.ones;",
    ),
    # ALTER EXTENSION ... ADD fails run again ("... is already a member of extension"), and
    # CREATE TRANSFORM has no IF NOT EXISTS. plpgsql is there on every server.
    Shape(
        "extension_members_and_transform",
        "CREATE FUNCTION from_sql(internal) RETURNS internal\n"
        "    LANGUAGE internal IMMUTABLE STRICT AS 'int4recv';\n"
        "CREATE FUNCTION to_sql(internal) RETURNS int LANGUAGE internal IMMUTABLE STRICT\n"
        "    AS 'int4recv';\n"
        "CREATE TRANSFORM FOR int LANGUAGE plpgsql\n"
        "    (FROM SQL WITH FUNCTION from_sql(internal), TO SQL WITH FUNCTION to_sql(internal));\n"
        "ALTER EXTENSION plpgsql ADD TRANSFORM FOR int LANGUAGE plpgsql;\n"
        "CREATE FUNCTION helper(bigint, text) RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
        "ALTER EXTENSION plpgsql ADD FUNCTION helper(int8, text);\n"
        "CREATE TYPE mood AS ENUM ('ok');\nALTER EXTENSION plpgsql ADD TYPE public.mood;\n"
        "CREATE CAST (mood AS text) WITH INOUT;\n"
        "ALTER EXTENSION plpgsql ADD CAST (mood AS text);\n"
        "CREATE TABLE side (id int);\nALTER EXTENSION plpgsql ADD TABLE side;\n"
        "CREATE SCHEMA util;\nALTER EXTENSION plpgsql ADD SCHEMA util;\n"
        "CREATE OPERATOR FAMILY fam USING btree;\n"
        "ALTER EXTENSION plpgsql ADD OPERATOR FAMILY fam USING btree;",
    ),
    # Run again, these fail: "column ... is not an identity column", "... is not a stored
    # generated column", "constraint ... of domain ... does not exist".
    Shape(
        "drop_identity_expression_and_domain_constraint",
        "ALTER TABLE gen ALTER COLUMN id DROP IDENTITY, ALTER COLUMN g DROP EXPRESSION;\n"
        "ALTER DOMAIN pos DROP CONSTRAINT positive;",
        setup="CREATE TABLE gen (id int GENERATED ALWAYS AS IDENTITY,\n"
        "    g int GENERATED ALWAYS AS (id * 2) STORED);\n"
        "CREATE DOMAIN pos AS int CONSTRAINT positive CHECK (VALUE > 0);",
    ),
    # Run again: 'relation "customers" is already member of publication "customers_pub"'.
    Shape(
        "publication_add",
        "CREATE PUBLICATION customers_pub;\n"
        "ALTER PUBLICATION customers_pub ADD TABLE customers, public.gen WHERE (id > 0),\n"
        "    TABLES IN SCHEMA crm;\n"
        "ALTER PUBLICATION customers_pub ADD TABLES IN SCHEMA CURRENT_SCHEMA;",
        setup="CREATE TABLE gen (id int); CREATE SCHEMA crm;",
    ),
    # Run again, an OPTIONS (ADD ...) fails: 'option "host" provided more than once'; its
    # DROP: 'option "dbname" not found'.
    Shape(
        "foreign_options",
        "ALTER SERVER archive OPTIONS (ADD host 'db.example', SET port '5433', DROP dbname);\n"
        "ALTER FOREIGN DATA WRAPPER nowhere OPTIONS (ADD flavour 'plain');\n"
        "ALTER USER MAPPING FOR CURRENT_USER SERVER archive OPTIONS (ADD user 'reader');\n"
        "ALTER USER MAPPING FOR PUBLIC SERVER archive OPTIONS (ADD user 'anyone');\n"
        "ALTER FOREIGN TABLE old_customers OPTIONS (ADD table_name 'customers'),\n"
        "    ALTER COLUMN name OPTIONS (column_name 'full_name');",
        setup="CREATE FOREIGN DATA WRAPPER nowhere;\n"
        "CREATE SERVER archive FOREIGN DATA WRAPPER nowhere OPTIONS (port '5432', dbname 'x');\n"
        "CREATE USER MAPPING FOR CURRENT_USER SERVER archive;\n"
        "CREATE USER MAPPING FOR PUBLIC SERVER archive;\n"
        "CREATE FOREIGN TABLE old_customers (id bigint, name text) SERVER archive;",
    ),
    # Run again after they committed, each fails: 'trigger "t_old" for table "customers"
    # does not exist', 'publication "pub_old" does not exist', ...
    Shape(
        "renames_of_named_objects",
        "ALTER TRIGGER t_old ON customers RENAME TO t_new;\n"
        "ALTER POLICY p_old ON customers RENAME TO p_new;\n"
        "ALTER RULE r_old ON customers RENAME TO r_new;\n"
        "ALTER DOMAIN mail RENAME CONSTRAINT c_old TO c_new;\n"
        "ALTER PUBLICATION pub_old RENAME TO pub_new;\n"
        "ALTER COLLATION public.coll_old RENAME TO coll_new;\n"
        "ALTER FOREIGN DATA WRAPPER w_old RENAME TO w_new;\n"
        "ALTER SERVER srv_old RENAME TO srv_new;\n"
        "ALTER TEXT SEARCH CONFIGURATION cfg_old RENAME TO cfg_new;\n"
        "ALTER STATISTICS st_old RENAME TO st_new;\n"
        "ALTER EVENT TRIGGER ev_old RENAME TO ev_new;",
        setup="CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql\n"
        "    AS $$ BEGIN RETURN NEW; END $$;\n"
        "CREATE TRIGGER t_old BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch();\n"
        "CREATE POLICY p_old ON customers USING (true);\n"
        "CREATE RULE r_old AS ON DELETE TO customers DO INSTEAD NOTHING;\n"
        "CREATE DOMAIN mail AS text CONSTRAINT c_old CHECK (VALUE <> '');\n"
        'CREATE PUBLICATION pub_old; CREATE COLLATION coll_old FROM "C";\n'
        "CREATE FOREIGN DATA WRAPPER w_old; CREATE SERVER srv_old FOREIGN DATA WRAPPER w_old;\n"
        "CREATE TEXT SEARCH CONFIGURATION cfg_old (COPY = simple);\n"
        "CREATE STATISTICS st_old ON name, email FROM customers;\n"
        "CREATE FUNCTION noop() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;\n"
        "CREATE EVENT TRIGGER ev_old ON sql_drop EXECUTE FUNCTION noop();",
    ),
    # Run again after they committed: 'function twice(integer) does not exist', ...
    Shape(
        "set_schema_of_other_objects",
        "ALTER FUNCTION twice(int) SET SCHEMA crm;\nALTER PROCEDURE tick SET SCHEMA crm;\n"
        "ALTER AGGREGATE total(bigint) SET SCHEMA crm;\nALTER COLLATION coll SET SCHEMA crm;\n"
        "ALTER STATISTICS st SET SCHEMA crm;\n"
        "ALTER TEXT SEARCH CONFIGURATION public.cfg SET SCHEMA crm;",
        setup="CREATE SCHEMA crm;\n"
        "CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2';\n"
        "CREATE PROCEDURE tick() LANGUAGE sql AS 'SELECT 1';\n"
        "CREATE AGGREGATE total(bigint) (SFUNC = int8pl, STYPE = bigint);\n"
        'CREATE COLLATION coll FROM "C";\n'
        "CREATE STATISTICS st ON name, email FROM customers;\n"
        "CREATE TEXT SEARCH CONFIGURATION cfg (COPY = simple);",
    ),
    # Run again: 'duplicate key value violates unique constraint "pg_ts_config_map_index"',
    # 'mapping for token type "email" does not exist'.
    Shape(
        "text_search_mappings",
        "CREATE TEXT SEARCH CONFIGURATION plain_cfg (PARSER = default);\n"
        "ALTER TEXT SEARCH CONFIGURATION plain_cfg ADD MAPPING FOR word, hword WITH simple;\n"
        "ALTER TEXT SEARCH CONFIGURATION public.plain_cfg ADD MAPPING FOR asciiword WITH simple;\n"
        "ALTER TEXT SEARCH CONFIGURATION copy_cfg DROP MAPPING FOR email;",
        setup="CREATE TEXT SEARCH CONFIGURATION copy_cfg (COPY = simple);",
    ),
    # An ALTER TABLE of several commands adding constraints: run again, a named one fails
    # ('constraint "rank_positive" ... already exists'), an unnamed one is added again
    # (customers_score_check2); the server names the unnamed ones in order (_check, _check1).
    Shape(
        "several_commands_with_constraints",
        "ALTER TABLE customers ADD COLUMN rank int,\n"
        "    ADD CONSTRAINT rank_positive CHECK (rank > 0);\n"
        "ALTER TABLE customers ADD COLUMN score int, ADD CHECK (score >= 0),\n"
        "    ADD CHECK (score < 100),\n"
        "    ADD FOREIGN KEY (score) REFERENCES customers (id) NOT VALID;\n"
        "ALTER TABLE customers ALTER COLUMN code SET DATA TYPE varchar(20),\n"
        "    ADD CONSTRAINT code_upper CHECK (code = upper(code)) NOT VALID;",
    ),
]


def _source(shape: Shape) -> str:
    build = "" if "CREATE INDEX" in shape.sql else f"\n{BUILD}"
    return f"BEGIN;\n{shape.sql}{build}\nCOMMIT;\n"


def _statements(text: str) -> list[str]:
    return [s.text for s in parse(text)]


def _run(dsn: str, stmts: list[str], *, upto: int | None = None) -> None:
    """The statements (the first `upto` of them: a run stopped there, its open
    transaction rolled back), each in the session as psql would run them."""
    with psycopg.connect(dsn, autocommit=True) as c:
        for q in stmts[:upto]:
            c.execute(q.encode())
        if c.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            c.execute("ROLLBACK")


def _available(cluster: Cluster, extension: str) -> bool:
    with psycopg.connect(cluster.dsn(), autocommit=True) as c:
        q = "SELECT FROM pg_available_extensions WHERE name = %s"
        return c.execute(q, (extension,)).fetchone() is not None


def _database(cluster: Cluster, setup: str = "") -> str:
    dsn = new_database(cluster)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SETUP.encode())
        if setup:
            c.execute(setup.encode())
    return dsn


USER = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"


def _state(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    """What the file made: relations and their columns, types, enum labels, functions,
    collations, views and schemas outside the system schemas, transforms, extension
    members, and the rows of the tables."""
    with psycopg.connect(dsn) as c:
        out = {
            "relations": c.execute(
                "SELECT c.oid::regclass::text, c.relkind::text, "
                "pg_get_viewdef(c.oid) FROM pg_class c "
                f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER} ORDER BY 1"
            ).fetchall(),
            "columns": c.execute(
                "SELECT a.attrelid::regclass::text, a.attname, "
                "format_type(a.atttypid, a.atttypmod), a.attidentity::text, "
                "a.attgenerated::text FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                f"WHERE {USER} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2"
            ).fetchall(),
            "inherits": c.execute(
                "SELECT inhrelid::regclass::text, inhparent::regclass::text, "
                "pg_get_expr(r.relpartbound, r.oid) FROM pg_inherits "
                "JOIN pg_class r ON r.oid = inhrelid ORDER BY 1"
            ).fetchall(),
            "types": c.execute(
                "SELECT t.oid::regtype::text, t.typtype::text, "
                "format_type(t.typbasetype, t.typtypmod) FROM pg_type t "
                f"JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {USER} ORDER BY 1"
            ).fetchall(),
            "labels": c.execute(
                "SELECT enumtypid::regtype::text, "
                "array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum "
                "GROUP BY 1 ORDER BY 1"
            ).fetchall(),
            "functions": c.execute(
                "SELECT p.oid::regprocedure::text, p.prosrc FROM pg_proc p "
                f"JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {USER} ORDER BY 1"
            ).fetchall(),
            "collations": c.execute(
                "SELECT o.oid::regcollation::text FROM pg_collation o "
                f"JOIN pg_namespace n ON n.oid = o.collnamespace WHERE {USER} ORDER BY 1"
            ).fetchall(),
            "extensions": c.execute("SELECT extname::text FROM pg_extension ORDER BY 1").fetchall(),
            "triggers": c.execute(
                "SELECT tgrelid::regclass::text, tgname::text FROM pg_trigger "
                "WHERE NOT tgisinternal ORDER BY 1, 2"
            ).fetchall(),
            "policies": c.execute(
                "SELECT polrelid::regclass::text, polname::text FROM pg_policy ORDER BY 1, 2"
            ).fetchall(),
            "rules": c.execute(
                "SELECT ev_class::regclass::text, rulename::text FROM pg_rewrite "
                "WHERE rulename <> '_RETURN' ORDER BY 1, 2"
            ).fetchall(),
            "statistics": c.execute(
                "SELECT stxnamespace::regnamespace::text, stxname::text FROM pg_statistic_ext "
                "ORDER BY 1, 2"
            ).fetchall(),
            "publications": c.execute(
                "SELECT p.pubname::text, r.prrelid::regclass::text FROM pg_publication p "
                "LEFT JOIN pg_publication_rel r ON r.prpubid = p.oid UNION ALL "
                "SELECT p.pubname::text, 'schema ' || s.pnnspid::regnamespace::text "
                "FROM pg_publication p JOIN pg_publication_namespace s ON s.pnpubid = p.oid "
                "ORDER BY 1, 2"
            ).fetchall(),
            "schemas": c.execute(
                f"SELECT n.nspname FROM pg_namespace n WHERE {USER} ORDER BY 1"
            ).fetchall(),
            "constraints": c.execute(
                "SELECT conrelid::regclass::text, contypid::regtype::text, conname::text, "
                "pg_get_constraintdef(o.oid) "
                "FROM pg_constraint o JOIN pg_namespace n ON n.oid = o.connamespace "
                f"WHERE {USER} ORDER BY 1, 2"
            ).fetchall(),
            "casts": c.execute(
                "SELECT castsource::regtype::text, casttarget::regtype::text, "
                "castmethod::text, castcontext::text FROM pg_cast WHERE oid >= 16384 "
                "ORDER BY 1, 2"
            ).fetchall(),
            "operators": c.execute(
                "SELECT o.oid::regoperator::text, o.oprcode::text FROM pg_operator o "
                f"JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE {USER} ORDER BY 1"
            ).fetchall(),
            "foreign": c.execute(
                "SELECT 'wrapper', fdwname::text, array_to_string(fdwoptions, ',') "
                "FROM pg_foreign_data_wrapper "
                "UNION ALL SELECT 'server', srvname::text, array_to_string(srvoptions, ',') "
                "FROM pg_foreign_server UNION ALL SELECT 'mapping', srvname::text, "
                "usename::text || ' ' || array_to_string(umoptions, ',') "
                "FROM pg_user_mappings UNION ALL "
                "SELECT 'table', ftrelid::regclass::text, array_to_string(ftoptions, ',') "
                "FROM pg_foreign_table UNION ALL SELECT 'column', attname::text, "
                "array_to_string(attfdwoptions, ',') FROM pg_attribute "
                "WHERE attfdwoptions IS NOT NULL ORDER BY 1, 2, 3"
            ).fetchall(),
            "catalog": c.execute(
                "SELECT 'opclass', opcname::text FROM pg_opclass WHERE oid >= 16384 "
                "UNION ALL SELECT 'opfamily', opfname::text FROM pg_opfamily WHERE oid >= 16384 "
                "UNION ALL SELECT 'config', cfgnamespace::regnamespace || '.' || cfgname "
                "FROM pg_ts_config WHERE oid >= 16384 "
                "UNION ALL SELECT 'dict', dictname::text FROM pg_ts_dict WHERE oid >= 16384 "
                "UNION ALL SELECT 'parser', prsname::text FROM pg_ts_parser WHERE oid >= 16384 "
                "UNION ALL SELECT 'template', tmplname::text FROM pg_ts_template "
                "WHERE oid >= 16384 UNION ALL SELECT 'conversion', conname::text "
                "FROM pg_conversion WHERE oid >= 16384 UNION ALL SELECT 'am', amname::text "
                "FROM pg_am WHERE oid >= 16384 ORDER BY 1, 2"
            ).fetchall(),
            "subscriptions": c.execute(
                "SELECT subname::text, subconninfo, subpublications::text FROM pg_subscription "
                "WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "ORDER BY 1"
            ).fetchall(),
            "ts_mappings": c.execute(
                "SELECT mapcfg::regconfig::text, maptokentype, mapseqno, "
                "mapdict::regdictionary::text FROM pg_ts_config_map WHERE mapcfg >= 16384 "
                "ORDER BY 1, 2, 3"
            ).fetchall(),
            "event_triggers": c.execute(
                "SELECT evtname::text FROM pg_event_trigger ORDER BY 1"
            ).fetchall(),
            "transforms": c.execute(
                "SELECT trftype::regtype::text, lanname::text FROM pg_transform t "
                "JOIN pg_language l ON l.oid = t.trflang ORDER BY 1, 2"
            ).fetchall(),
            "members": c.execute(
                "SELECT pg_describe_object(d.classid, d.objid, d.objsubid), e.extname::text "
                "FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid "
                "WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' "
                "AND d.objid >= 16384 ORDER BY 1, 2"
            ).fetchall(),
            "indexes": c.execute(
                "SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER} ORDER BY 1"
            ).fetchall(),
        }
        tables = [r[0] for r in out["relations"] if r[1] == "r"]
        out["rows"] = [
            (
                t,
                c.execute(
                    f"SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM {t} x"
                ).fetchone(),
            )
            for t in tables
        ]
    return out


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_fixed_file_runs_again_and_leaves_what_one_run_does(
    shape: Shape, pg_any: Cluster, tmp_path: Path
) -> None:
    source = _source(shape)
    if shape.extension and not _available(pg_any, shape.extension):
        pytest.skip(f"PostgreSQL {pg_any.installation.major} has no {shape.extension}")
    plain = _database(pg_any, shape.setup)
    _run(plain, _statements(source))  # the original, once

    f = tmp_path / "001.sql"
    f.write_text(source)
    ctx = Context(None, None, pg_any.installation.major, "x")
    plan, result = lint([f], context=ctx)
    before = {x.code for x in result.findings}
    fixes = fix_plan(plan, result)
    claimed = {x.code for x in fixes[0].fixed}
    assert "PW101" in claimed
    write_fixes(fixes)
    _, after = lint([f], context=ctx)
    codes = {x.code for x in after.findings}
    assert not codes & claimed and codes <= before, (codes, f.read_text())

    stmts = _statements(f.read_text())
    dsn = _database(pg_any, shape.setup)
    _run(dsn, stmts, upto=len(stmts) // 2)  # a run that stopped half-way
    _run(dsn, stmts)  # the retry the header allows
    _run(dsn, stmts)  # and another
    assert _state(dsn) == _state(plain), f.read_text()


MOVED = "-- A SET SCHEMA below follows statements naming what it moves"


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TYPE tier AS ENUM ('free');\nALTER TYPE tier SET SCHEMA crm;",
        "CREATE FUNCTION twice(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2';\n"
        "ALTER FUNCTION twice(int) SET SCHEMA crm;",
    ],
    ids=["type", "function"],
)
def test_a_move_after_the_create_says_to_go_on_from_the_failed_statement(
    pg_any: Cluster, tmp_path: Path, sql: str
) -> None:
    """CREATE TYPE (or FUNCTION) then SET SCHEMA: once committed, a re-run makes it anew
    in its old schema and the move fails; the header says so, and running the file from
    the statement that failed finishes it."""
    source = _source(Shape("create_then_move", f"CREATE SCHEMA crm;\n{sql}"))
    plain = _database(pg_any)
    _run(plain, _statements(source))
    f = tmp_path / "001.sql"
    f.write_text(source)
    plan, result = lint([f], context=Context(None, None, pg_any.installation.major, "x"))
    write_fixes(fix_plan(plan, result))
    text = f.read_text()
    assert MOVED in text
    stmts = _statements(text)
    dsn = _database(pg_any)
    _run(dsn, stmts)
    with pytest.raises((psycopg.errors.DuplicateObject, psycopg.errors.DuplicateFunction)):
        _run(dsn, stmts)
    failed = next(i for i, q in enumerate(stmts) if "SET SCHEMA" in q)
    _run(dsn, stmts[failed:])
    assert _state(dsn) == _state(plain)


CONVERTED = "-- An ALTER COLUMN ... TYPE ... USING below is skipped when its columns have"


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("ALTER TABLE customers ALTER COLUMN cents TYPE numeric USING cents / 100.0;", True),
        ("ALTER TABLE customers ALTER COLUMN code TYPE varchar(20);", False),  # no USING
    ],
)
def test_the_header_says_a_conversion_keeping_its_type_is_skipped(
    sql: str, said: bool, tmp_path: Path
) -> None:
    """The block cannot tell a conversion that ran from one that keeps the column's type
    (TYPE text USING lower(c) on a text column): the header says the latter is skipped."""
    f = tmp_path / "001.sql"
    f.write_text(_source(Shape("x", sql)))
    plan, result = lint([f], context=Context(None, None, 15, "x"))
    write_fixes(fix_plan(plan, result))
    assert (CONVERTED in f.read_text()) is said


def test_a_created_role_is_skipped_when_it_is_there(pg_any: Cluster, tmp_path: Path) -> None:
    """CREATE ROLE has no IF NOT EXISTS: before, the retry stopped at it ('role ... already
    exists'). Roles belong to the cluster, so this one is named after the test's database
    and dropped at the end."""
    dsn = _database(pg_any)
    with psycopg.connect(dsn) as c:
        role = f"reporter_{c.info.dbname}"
    source = _source(
        Shape(
            "role",
            f"CREATE ROLE {role} NOLOGIN;\nCREATE USER {role}_app IN ROLE {role};\n"
            f"GRANT SELECT ON customers TO {role};",
        )
    )
    f = tmp_path / "001.sql"
    f.write_text(source)
    ctx = Context(None, None, pg_any.installation.major, "x")
    plan, result = lint([f], context=ctx)
    before = {x.code for x in result.findings}
    fixes = fix_plan(plan, result)
    claimed = {x.code for x in fixes[0].fixed}
    write_fixes(fixes)
    _, after = lint([f], context=ctx)
    codes = {x.code for x in after.findings}
    assert not codes & claimed and codes <= before, (codes, f.read_text())
    stmts = _statements(f.read_text())
    try:
        _run(dsn, stmts, upto=len(stmts) // 2)
        _run(dsn, stmts)
        _run(dsn, stmts)
        with psycopg.connect(dsn) as c:
            granted = c.execute(
                "SELECT r.rolname::text, m.rolname::text, has_table_privilege(r.oid, "
                "'customers', 'SELECT') FROM pg_roles r LEFT JOIN pg_auth_members a "
                "ON a.member = r.oid LEFT JOIN pg_roles m ON m.oid = a.roleid "
                "WHERE r.rolname LIKE %s ORDER BY 1",
                (f"{role}%",),
            ).fetchall()
        assert granted == [(role, None, True), (f"{role}_app", role, True)], f.read_text()
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            for name in (f"{role}_app", role):
                c.execute(f"DROP OWNED BY {name} CASCADE".encode()) if _exists(c, name) else None
                c.execute(f"DROP ROLE IF EXISTS {name}".encode())


def _exists(c: psycopg.Connection[tuple[object, ...]], role: str) -> bool:
    return c.execute("SELECT FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None
