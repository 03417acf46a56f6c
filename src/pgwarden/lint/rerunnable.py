"""Make a statement safe to run again after a run that stopped half-way (`lint --fix`).

`lint --fix` writes files whose transactions commit one by one, and its header
says to retry the file when a statement times out. So every statement must
survive a second run: CREATE TABLE (PARTITION OF too) / CREATE INDEX / ADD COLUMN /
ADD VALUE / CREATE SEQUENCE / CREATE SCHEMA / CREATE COLLATION / CREATE TABLE AS / CREATE
MATERIALIZED VIEW / CREATE EXTENSION / CREATE SERVER / CREATE USER MAPPING / CREATE FOREIGN
TABLE / CREATE STATISTICS get IF NOT EXISTS (a SELECT ... INTO, which creates its table,
becomes the CREATE TABLE IF NOT EXISTS ... AS the server makes of it: the same columns
and types), DROP gets IF EXISTS (so do ALTER COLUMN ... DROP IDENTITY / DROP EXPRESSION
and ALTER DOMAIN ... DROP CONSTRAINT), a named ADD CONSTRAINT
runs only when the constraint is not there yet (a DO block: PostgreSQL has no IF NOT
EXISTS for constraints; a domain's named ADD CONSTRAINT too; an ALTER TABLE of several
commands unless the table has every constraint it adds, its other commands made
rerunnable as alone), a RENAME (of a relation,
column, constraint, a composite type's attribute, a type, domain, schema or routine; a
trigger, policy or rule, a domain's constraint, a publication, server, foreign data wrapper,
event trigger, role, language, collation, conversion, statistics or text search object;
RENAME VALUE of an enum too) runs unless it is done already (the old name gone, the new
one there).

What has no IF NOT EXISTS runs in a block that skips it when its object is there, looked up
where the server creates it (the schema named, else the first schema of the search_path,
current_schema()): CREATE TYPE (composite, enum, range; a base type once defined, its shell
once created) and CREATE DOMAIN by name in pg_type, CREATE FUNCTION / PROCEDURE / AGGREGATE
by name and input argument types (its signature: OUT and TABLE arguments are not part of it;
a column's %TYPE is that column's type; an aggregate's direct and aggregated arguments, the
old syntax's BASETYPE) in pg_proc, CREATE OPERATOR by name and argument types in pg_operator
(a shell an earlier COMMUTATOR made does not count), CREATE CAST by its two types in
pg_cast, CREATE OPERATOR CLASS / FAMILY by name and access method, CREATE TEXT SEARCH
CONFIGURATION / DICTIONARY / PARSER / TEMPLATE and CREATE CONVERSION by name in their
schema, CREATE ACCESS METHOD by name, CREATE VIEW by name in pg_class, a CREATE SCHEMA with
elements (no IF NOT EXISTS there) by name, CREATE TRIGGER / POLICY / RULE by name on its
table, CREATE EVENT TRIGGER / PUBLICATION / ROLE (USER, GROUP) / FOREIGN DATA WRAPPER by
name, CREATE SUBSCRIPTION by name in the database, CREATE TRANSFORM by its type and language
in pg_transform; ALTER PUBLICATION ... ADD runs unless every table (pg_publication_rel) and
schema (pg_publication_namespace) it adds is in the publication (its DROP is left as it is,
as NO INHERIT); an OPTIONS (ADD ... / DROP ...) of ALTER SERVER / FOREIGN DATA WRAPPER /
USER MAPPING / FOREIGN TABLE (its columns' too, a statement of such commands only) runs
unless the options are as it leaves them (each option it adds or sets there with its value,
none it drops); ALTER EXTENSION ... ADD runs unless the object (found by
pg_get_object_address as the statement names it) is a member of that extension in pg_depend
(not a routine named without its arguments, nor an operator with NONE; ALTER EXTENSION ...
DROP is left as it is, as NO INHERIT); ALTER TEXT SEARCH CONFIGURATION ... ADD MAPPING
unless the configuration maps every token type it names (DROP MAPPING gets IF EXISTS). A
CREATE SUBSCRIPTION that creates its replication slot (it connects, by default) cannot run
in a block and is left as it is: run again, it fails ("already exists") having changed
nothing, and `lint.fix` says in the header to run the file from the statement after it (SQL
cannot create the slot some other way: connect = false makes a subscription without one). OR
REPLACE is not added: it would replace a different object the database had before the file
instead of failing as the original does, and put back an old body a later statement of the
file replaced. Like IF NOT EXISTS, the block keeps an object of that name that was there
before. ALTER TABLE ... ATTACH PARTITION runs unless the table is a partition of that one,
INHERIT unless it inherits from that one, ALTER COLUMN ... ADD GENERATED ... AS IDENTITY
unless the column is an identity column (each alone in its statement; NO INHERIT is left as
it is: done and never inheriting look the same, and the latter must fail). ALTER TYPE ...
DROP ATTRIBUTE gets IF EXISTS; an ADD ATTRIBUTE (no IF NOT EXISTS there) runs unless the
composite type has every attribute it adds.
ALTER ... SET SCHEMA of a table, view, sequence, type, domain, routine (function, procedure,
aggregate), collation, conversion, statistics or text search object runs unless it is done
(the object in the new schema, its old name finding nothing else, looked up along the
search_path as the server does). ALTER TABLE ...
ALTER COLUMN ... TYPE ... USING runs unless every column it converts has the type it
converts to, typmod included (computed here for varchar, char, bit, numeric and the time
types; for another type with modifiers, an extension's vector(3) or interval(0), the block
asks the type's own typmod input function): run again, the conversion would run
on its own output (fail, or scale twice). A conversion that keeps the column's type
(TYPE text USING lower(c) on a text column) is taken as done: write it as an UPDATE.
A statement naming what a later SET SCHEMA moves (the CREATE before it) makes it anew
in the old schema on a re-run: `lint.fix` says so in the header.

An unnamed CREATE INDEX fixed without a catalog (`name_unnamed`) gets the name the server
gives it when the name is free (ChooseIndexName: table_columns_idx cut to 63 bytes as
makeObjectName cuts, the columns named as the server names them) and IF NOT EXISTS:
run again, the server would pick another free name (_idx1) and build a second copy.
So does an unnamed ADD CHECK / FOREIGN KEY / UNIQUE / PRIMARY KEY / EXCLUDE
(ChooseConstraintName: table_column_check or table_check, table_columns_fkey,
table_columns_key, table_pkey, table_columns_excl; several in one statement numbered in
order, as the server does: _check, _check1) and an unnamed ALTER DOMAIN ... ADD
CHECK (domain_check, numbered past a CREATE DOMAIN's own CHECKs),
then guarded by name as a named one: run again it would add a second copy (_check1,
a second foreign key, a second unique index) or fail (a second primary key).
When a relation or constraint of that name is there before, the server would have
numbered it and the statement is skipped: `lint.fix` says so in the header.

A named concurrent index build first drops an INVALID index of
that name: what an earlier run of this file left when the build failed or timed
out half-way (IF NOT EXISTS alone would keep the invalid index, and an ADD
CONSTRAINT ... USING INDEX would fail on it). A valid index of that name is kept:
the build ran to its end. A block sets the invalid index aside under a name of
its own (ALTER INDEX RENAME: SHARE UPDATE EXCLUSIVE on the index only), which
`DROP INDEX CONCURRENTLY IF EXISTS` then drops (a block cannot drop
concurrently); an index another session is building is left alone.

`REINDEX ... CONCURRENTLY` that is cancelled leaves its work behind: an INVALID
`<index>_ccnew` (stopped before the swap) or `<index>_ccold` (stopped after it),
which every write still maintains and a second run skips or adds to. So the
rebuild first drops those two names (concurrently) for each index it names, or
for each index of the table the catalog lists (REINDEX TABLE; without a
catalog `lint.fix` writes in the header to retry with `pgwarden apply`, which
drops them); the names are the server's (the index name cut to fit 63 bytes,
then `_ccnew` / `_ccold`).
A REINDEX TABLE also leaves a copy of its TOAST table's index, named after the
table's OID: a block finds the INVALID indexes of the table's TOAST table
(reltoastrelid; only a cancelled rebuild makes one), and of its partitions'
TOAST tables when it is partitioned (pg_partition_tree: REINDEX rebuilds each
partition's indexes; the partitions' own copies are named from the catalog by
`lint.fix`), and drops them under a short lock_timeout. A block cannot drop
concurrently: the plain DROP takes ACCESS EXCLUSIVE on the TOAST table only (not
the table), which waits for and blocks only the statements that read, write or
delete out-of-line (TOASTed) values, at most the lock_timeout (other columns'
reads and updates go on). Naming a pg_toast object needs USAGE on that schema
(superusers have it): without it (or without owning the table) the block warns
with the DROP for a superuser to run, and the rebuild skips the copy with a
warning of its own.

`DETACH PARTITION ... CONCURRENTLY` that is cancelled after its first
transaction leaves the partition "detach pending", and running it again fails
("already pending detach"): it is preceded by a block that finishes such a
detach with `DETACH PARTITION ... FINALIZE` (allowed in a transaction). A
detach that completed cannot be skipped in SQL (it cannot run in a block):
psql running the file again stops there with "is not a partition", having
changed nothing; `pgwarden apply` records it as done (`detached`), so the
file's header says to retry with it.

Blocks are quoted with `$pgwarden$`, or `$pgwarden1$`, `$pgwarden2$`, ... when the
statement they hold contains that tag (in a CHECK, a quoted name, a function body).

The user's text is kept: a keyword is inserted where it belongs and the result
is checked against the parse tree with the flag set; when the two differ (an
unusual spelling) the statement is deparsed instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence, Set
from typing import Any

import pglast
from pglast import ast
from pglast.enums import (
    A_Expr_Kind,
    AlterPublicationAction,
    AlterTableType,
    AlterTSConfigType,
    ConstrType,
    DefElemAction,
    FunctionParameterMode,
    ObjectType,
    OnConflictAction,
    PublicationObjSpecType,
    RoleSpecType,
)
from pglast.stream import RawStream, maybe_double_quote_name

from pgwarden.rules._sql import make_object_name

__all__ = [
    "changes_again",
    "converts_in_place",
    "creates_slot",
    "default_constraint_name",
    "default_index_name",
    "detaches_concurrently",
    "renamed_object",
    "rerunnable",
]

_ADD_COLUMN = re.compile(
    r"\bADD\s+(?:COLUMN\s+)?(?!IF\b|CONSTRAINT\b|PRIMARY\b|UNIQUE\b|CHECK\b|FOREIGN\b|EXCLUDE\b"
    r"|VALUE\b)",
    re.I,
)
_DROP_MEMBER = re.compile(
    r"\bDROP\s+(COLUMN\s+|CONSTRAINT\s+)?(?!IF\b|NOT\b|DEFAULT\b|IDENTITY\b|EXPRESSION\b)", re.I
)
_INDEX = re.compile(r"\bINDEX\s+(CONCURRENTLY\s+)?", re.I)
_TABLE = re.compile(r"\bTABLE\s+", re.I)
_DROP = re.compile(
    r"^(\s*DROP\s+(?:MATERIALIZED\s+VIEW|FOREIGN\s+TABLE|INDEX\s+CONCURRENTLY|[A-Z]+))\s+", re.I
)
_VALUE = re.compile(r"\bADD\s+VALUE\s+", re.I)


def _deparse(node: Any) -> str:
    return str(RawStream()(node))


def _text(sql: str, node: Any, edit: Callable[[str], str]) -> str:
    """`edit(sql)` when it parses to `node`, else `node` deparsed."""
    want = _deparse(node)
    candidate = edit(sql)
    try:
        got = pglast.parse_sql(candidate)
    except pglast.parser.ParseError:
        return want
    return candidate if len(got) == 1 and _deparse(got[0].stmt) == want else want


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _guarded_constraint(sql: str, node: Any) -> str | None:
    """A named ADD CONSTRAINT that runs only when the table has no constraint of that name."""
    cmds: list[Any] = list(node.cmds or ())
    if len(cmds) != 1 or cmds[0].subtype != AlterTableType.AT_AddConstraint:
        return None
    con = cmds[0].def_
    if con is None or not con.conname:
        return None
    table = _deparse(node.relation)
    return (
        "DO $pgwarden$ BEGIN\n"
        "  IF NOT EXISTS (SELECT FROM pg_constraint\n"
        f"                 WHERE conrelid = {_literal(table)}::regclass\n"
        f"                   AND conname = {_literal(con.conname)}) THEN\n"
        f"    {sql.strip().rstrip(';')};\n"
        "  END IF;\n"
        "END $pgwarden$"
    )


_RENAMED_RELATIONS = frozenset(
    {
        ObjectType.OBJECT_TABLE,
        ObjectType.OBJECT_INDEX,
        ObjectType.OBJECT_SEQUENCE,
        ObjectType.OBJECT_VIEW,
        ObjectType.OBJECT_MATVIEW,
        ObjectType.OBJECT_FOREIGN_TABLE,
    }
)


def _guarded_rename(sql: str, node: Any) -> str | None:
    """A RENAME of a relation, column or constraint that runs unless it is done already
    (the old name gone, the new one there); otherwise it runs, and fails as it would."""
    rel = node.relation
    if rel is None:
        done = _renamed_object(node)
        return None if done is None else _unless(done, sql)
    table = _relation(rel.schemaname, rel.relname)
    kind = node.renameType
    if kind in (ObjectType.OBJECT_COLUMN, ObjectType.OBJECT_ATTRIBUTE):  # a type's: its class
        old, new = _has_column(table, node.subname), _has_column(table, node.newname)
    elif kind == ObjectType.OBJECT_TABCONSTRAINT:
        old, new = _has_constraint(table, node.subname), _has_constraint(table, node.newname)
    elif kind in _RENAMED_RELATIONS:
        old = f"to_regclass({_literal(table)}) IS NOT NULL"
        new = f"to_regclass({_literal(_relation(rel.schemaname, node.newname))}) IS NOT NULL"
    elif kind in _ON_TABLE:
        catalog, relid, column = _ON_TABLE[kind]
        old, new = (
            _named_on(catalog, relid, column, rel, name) for name in (node.subname, node.newname)
        )
    else:
        return None
    return (
        "DO $pgwarden$ BEGIN\n"
        f"  IF {old}\n"
        f"     OR NOT {new} THEN\n"
        f"    {sql.strip().rstrip(';')};\n"
        "  END IF;\n"
        "END $pgwarden$"
    )


_ROUTINES = frozenset(
    {
        ObjectType.OBJECT_FUNCTION,
        ObjectType.OBJECT_PROCEDURE,
        ObjectType.OBJECT_ROUTINE,
        ObjectType.OBJECT_AGGREGATE,
    }
)


def _renamed_object(node: Any) -> str | None:
    """A RENAME of a schema, type, domain or routine done: the old name finds nothing and
    the new one finds it (None for other objects)."""
    kind = node.renameType
    if kind == ObjectType.OBJECT_SCHEMA:
        gone, there = (
            f"{no}EXISTS (SELECT FROM pg_namespace WHERE nspname = {_literal(name)})"
            for no, name in (("NOT ", node.subname), ("", node.newname))
        )
    elif kind in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
        schema, name = _split(node.object)
        gone, there = (
            f"to_regtype({_literal(_relation(schema, n))}) IS {no}NULL"
            for no, n in (("", name), ("NOT ", node.newname))
        )
    elif kind in _ROUTINES and node.object is not None:
        schema, name = _split(node.object.objname)
        lookup, args = _routine_lookup(node.object)
        gone, there = (
            f"{lookup}({_literal(_relation(schema, n) + args)}) IS {no}NULL"
            for no, n in (("", name), ("NOT ", node.newname))
        )
    else:
        exists = _named_object(node)
        if exists is None:
            return None
        gone, there = f"NOT {exists(node.subname or _object_name(node))}", exists(node.newname)
    return f"({gone}\n      AND {there})"


# Objects named on a table: (catalog, its table column, its name column), by rename type.
_ON_TABLE = {
    ObjectType.OBJECT_TRIGGER: ("pg_trigger", "tgrelid", "tgname"),
    ObjectType.OBJECT_POLICY: ("pg_policy", "polrelid", "polname"),
    ObjectType.OBJECT_RULE: ("pg_rewrite", "ev_class", "rulename"),
}
# Objects named in the database or cluster: (catalog, its name column), by rename type.
_BY_NAME = {
    ObjectType.OBJECT_PUBLICATION: ("pg_publication", "pubname"),
    ObjectType.OBJECT_FOREIGN_SERVER: ("pg_foreign_server", "srvname"),
    ObjectType.OBJECT_FDW: ("pg_foreign_data_wrapper", "fdwname"),
    ObjectType.OBJECT_EVENT_TRIGGER: ("pg_event_trigger", "evtname"),
    ObjectType.OBJECT_ROLE: ("pg_roles", "rolname"),
    ObjectType.OBJECT_LANGUAGE: ("pg_language", "lanname"),
}
# Objects named in a schema: (catalog, its name column, its schema column), by rename type.
_IN_SCHEMA = {
    ObjectType.OBJECT_COLLATION: ("pg_collation", "collname", "collnamespace"),
    ObjectType.OBJECT_CONVERSION: ("pg_conversion", "conname", "connamespace"),
    ObjectType.OBJECT_STATISTIC_EXT: ("pg_statistic_ext", "stxname", "stxnamespace"),
}  # and _TEXT_SEARCH's


def _object_name(node: Any) -> str:
    """The name a RENAME's object (a String or a qualified name) has now."""
    obj = node.object
    return str(obj.sval) if type(obj).__name__ == "String" else _split(obj)[1]


def _named_object(node: Any) -> Callable[[str], str] | None:
    """For a RENAME of a publication, server, wrapper, event trigger, role, language, a
    domain's constraint, a collation, conversion, statistics object or text search
    object: SQL saying that one of a given name is there (None for other objects)."""
    kind = node.renameType
    if kind in _BY_NAME:
        catalog, column = _BY_NAME[kind]
        return lambda name: f"EXISTS (SELECT FROM {catalog} WHERE {column} = {_literal(name)})"
    if kind == ObjectType.OBJECT_DOMCONSTRAINT:
        domain = _literal(_relation(*_split(node.object)))
        return lambda name: (
            "EXISTS (SELECT FROM pg_constraint\n"
            f"             WHERE contypid = to_regtype({domain})\n"
            f"               AND conname = {_literal(name)})"
        )
    in_schema = _IN_SCHEMA.get(kind) or _TEXT_SEARCH.get(kind)
    if in_schema is not None and type(node.object).__name__ != "String":
        catalog, column, namespace = in_schema
        schema = _split(node.object)[0]
        return lambda name: _named_in(
            catalog,
            column,
            namespace,
            [ast.String(sval=n) for n in (schema, name) if n],
        )
    return None


def renamed_object(sql: str) -> str | None:
    """The old name a RENAME of a schema, type, domain, routine, or of an object looked up
    by `_named_object` (a domain's constraint, a publication, ...) `sql` renames (None for
    another statement: a relation's, a column's rename names its relation)."""
    node = _one(sql, "RenameStmt")
    if node is None:
        return None
    kind = node.renameType
    if kind == ObjectType.OBJECT_SCHEMA:
        return str(node.subname)
    if kind in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN):
        return _split(node.object)[1]
    if kind in _ROUTINES and node.object is not None:
        return _split(node.object.objname)[1]
    if node.relation is None and _named_object(node) is not None:
        return str(node.subname or _object_name(node))
    return None


def _has_column(table: str, column: str) -> str:
    return (
        "EXISTS (SELECT FROM pg_attribute\n"
        f"             WHERE attrelid = to_regclass({_literal(table)})\n"
        f"               AND attname = {_literal(column)} AND attnum > 0 AND NOT attisdropped)"
    )


def _has_constraint(table: str, name: str) -> str:
    return (
        "EXISTS (SELECT FROM pg_constraint\n"
        f"             WHERE conrelid = to_regclass({_literal(table)})\n"
        f"               AND conname = {_literal(name)})"
    )


# Statements with an IF NOT EXISTS of their own (the keyword after the matched word).
_IF_NOT_EXISTS = {
    "CreateSeqStmt": re.compile(r"\b(SEQUENCE)\s+", re.I),
    "CreateSchemaStmt": re.compile(r"\b(SCHEMA)\s+", re.I),
    "CreateTableAsStmt": re.compile(r"\b(TABLE|VIEW)\s+", re.I),
    "DefineStmt": re.compile(r"\b(COLLATION)\s+", re.I),
    "CreateExtensionStmt": re.compile(r"\b(EXTENSION)\s+", re.I),
    "CreateForeignServerStmt": re.compile(r"\b(SERVER)\s+", re.I),
    "CreateStatsStmt": re.compile(r"\b(STATISTICS)\s+", re.I),
    "CreateUserMappingStmt": re.compile(r"\b(MAPPING)\s+", re.I),
}


def _may_skip(node: Any) -> bool:
    """The server takes IF NOT EXISTS on this one (not on a schema with elements,
    SELECT INTO, or a DefineStmt other than CREATE COLLATION)."""
    kind = type(node).__name__
    if kind == "CreateSchemaStmt":
        return not node.schemaElts
    if kind == "CreateTableAsStmt":
        return not node.is_select_into
    if kind == "DefineStmt":
        return bool(node.kind == ObjectType.OBJECT_COLLATION)
    if kind == "CreateStatsStmt":
        return bool(node.defnames)  # an unnamed one takes no IF NOT EXISTS
    return True


def _unless(done: str, sql: str) -> str | None:
    """A block running `sql` unless `done` (an SQL condition) holds: it ran already."""
    return (
        "DO $pgwarden$ BEGIN\n"
        f"  IF NOT {done} THEN\n"
        f"    {sql.strip().rstrip(';')};\n"
        "  END IF;\n"
        "END $pgwarden$"
    )


def _split(names: Any) -> tuple[str | None, str]:
    """(schema, name) of a qualified name (a tuple of String)."""
    parts = [n.sval for n in names or ()]
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


def _namespace(schema: str | None, temporary: bool = False) -> str:
    """The schema an object named with `schema` is created in, as the server picks it: the
    one named, else the first of the search_path that exists (current_schema())."""
    if schema:
        return f"to_regnamespace({_literal(_relation(None, schema))})"
    if temporary:
        return "pg_my_temp_schema()"
    return "to_regnamespace(quote_ident(current_schema()))"


def _type_exists(names: Any, *, defined: bool = False) -> str:
    schema, name = _split(names)
    return (
        "EXISTS (SELECT FROM pg_type\n"
        f"             WHERE typname = {_literal(name)}\n"
        f"               AND typnamespace = {_namespace(schema)}"
        + ("\n               AND typisdefined)" if defined else ")")
    )


_IN = ("i", "b", "v", "d")  # FunctionParameterMode: IN, INOUT, VARIADIC, default (IN)
_IN_MODE = FunctionParameterMode.FUNC_PARAM_IN


def _function_exists(node: Any) -> str | None:
    """The function of that name and input argument types (its signature: OUT and TABLE
    arguments are not part of it, a procedure's either) exists where it is created."""
    return _proc_exists(node.funcname, node.parameters or ())


def _proc_exists(funcname: Any, parameters: Sequence[Any]) -> str | None:
    """A function (or aggregate) of that name and input argument types exists: an
    argument's type by name, a column's %TYPE as the column's type."""
    schema, name = _split(funcname)
    types = []
    for param in parameters:
        if str(param.mode.value) not in _IN:
            continue
        typ = _argument_type(param.argType)
        if typ is None:
            return None
        types.append(typ)
    args = f"ARRAY[{', '.join(types)}]::oid[]" if types else "'{}'::oid[]"
    return (
        "EXISTS (SELECT FROM pg_proc\n"
        f"             WHERE proname = {_literal(name)}\n"
        f"               AND pronamespace = {_namespace(schema)}\n"
        f"               AND (proargtypes::oid[])[:] = {args})"
    )


def _argument_type(type_name: Any) -> str | None:
    """The oid of an argument's type as SQL: a column's %TYPE (table.column or
    schema.table.column, as the server resolves it) is that column's type."""
    if not type_name.pct_type:
        return f"to_regtype({_literal(_deparse(type_name))})"
    parts = [n.sval for n in type_name.names or ()]
    if len(parts) not in (2, 3) or type_name.arrayBounds:
        return None  # a name the server resolves otherwise (db.schema.table.column, [])
    table = _relation(parts[-3] if len(parts) == 3 else None, parts[-2])
    return (
        "(SELECT atttypid FROM pg_attribute\n"
        f"                WHERE attrelid = to_regclass({_literal(table)})\n"
        f"                  AND attname = {_literal(parts[-1])} AND NOT attisdropped)"
    )


def _relation_exists(rel: Any) -> str:
    return (
        "EXISTS (SELECT FROM pg_class\n"
        f"             WHERE relname = {_literal(rel.relname)}\n"
        f"               AND relnamespace = "
        f"{_namespace(rel.schemaname, rel.relpersistence == 't')})"
    )


def _moved(node: Any) -> str | None:
    """ALTER ... SET SCHEMA done: the object is in the new schema and its old name finds
    nothing else (when the new schema comes first in the search_path, the old name finds
    the moved object itself)."""
    if node.objectType in _RENAMED_RELATIONS and node.relation is not None:
        rel, lookup = node.relation, "to_regclass"
        old, new = _relation(rel.schemaname, rel.relname), _relation(node.newschema, rel.relname)
    elif node.objectType in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN) and all(
        type(n).__name__ == "String" for n in node.object or ()
    ):
        schema, name = _split(node.object)
        lookup = "to_regtype"
        old, new = _relation(schema, name), _relation(node.newschema, name)
    elif node.objectType in _ROUTINES and type(node.object).__name__ == "ObjectWithArgs":
        schema, name = _split(node.object.objname)
        lookup, args = _routine_lookup(node.object)
        old, new = _relation(schema, name) + args, _relation(node.newschema, name) + args
    elif node.objectType == ObjectType.OBJECT_COLLATION:
        schema, name = _split(node.object)
        lookup = "to_regcollation"
        old, new = _relation(schema, name), _relation(node.newschema, name)
    elif node.objectType in _IN_SCHEMA or node.objectType in _TEXT_SEARCH:
        catalog, column, namespace = (
            _IN_SCHEMA.get(node.objectType) or _TEXT_SEARCH[node.objectType]
        )
        schema, name = _split(node.object)
        old_sql, new_sql = (
            _found(catalog, column, namespace, s, name) for s in (schema, node.newschema)
        )
        return f"({new_sql} IS NOT NULL\n      AND coalesce({old_sql} = {new_sql}, true))"
    else:
        return None
    old_sql, new_sql = f"{lookup}({_literal(old)})", f"{lookup}({_literal(new)})"
    return f"({new_sql} IS NOT NULL\n      AND coalesce({old_sql} = {new_sql}, true))"


def _found(catalog: str, column: str, namespace: str, schema: str | None, name: str) -> str:
    """The oid of the object that name finds, as SQL (NULL: none): in the schema named,
    else the first schema of the search_path holding one (as the server looks it up)."""
    where = (
        f"{namespace} = to_regnamespace({_literal(_relation(None, schema))})"
        if schema
        else f"{namespace} = to_regnamespace(quote_ident(p.nspname))"
    )
    path = (
        ""
        if schema
        else " JOIN unnest(current_schemas(false)) WITH ORDINALITY p(nspname, i) ON true"
    )
    order = "" if schema else " ORDER BY p.i"
    return (
        f"(SELECT o.oid FROM {catalog} o{path}\n"
        f"        WHERE o.{column} = {_literal(name)} AND o.{where}{order} LIMIT 1)"
    )


def _guarded_create(sql: str, node: Any) -> str | None:
    """A CREATE with no IF NOT EXISTS (a type, domain, function, view, schema with
    elements) that runs unless its object is there, or an ALTER ... SET SCHEMA that runs
    unless it is done, or a RENAME VALUE unless the value is renamed already."""
    kind = type(node).__name__
    done: str | None = None
    if kind == "CompositeTypeStmt":
        done = _type_exists(
            [ast.String(sval=n) for n in (node.typevar.schemaname, node.typevar.relname) if n]
        )
    elif kind in ("CreateEnumStmt", "CreateRangeStmt"):
        done = _type_exists(node.typeName)
    elif kind == "CreateDomainStmt":
        done = _type_exists(node.domainname)
    elif kind == "DefineStmt" and node.kind == ObjectType.OBJECT_TYPE:
        # a shell type (no definition) is there once created; a base type once defined
        done = _type_exists(node.defnames, defined=node.definition is not None)
    elif kind == "CreateFunctionStmt" and not node.replace:
        done = _function_exists(node)
    elif kind == "ViewStmt" and not node.replace:
        done = _relation_exists(node.view)
    elif kind == "CreateSchemaStmt" and node.schemaElts and node.schemaname:
        done = f"EXISTS (SELECT FROM pg_namespace WHERE nspname = {_literal(node.schemaname)})"
    elif kind == "AlterObjectSchemaStmt" and not node.missing_ok:
        done = _moved(node)
    elif kind == "AlterEnumStmt" and node.oldVal and node.newVal:
        done = _renamed_label(node)
    elif kind == "CreateTrigStmt" and not node.replace:
        done = _named_on("pg_trigger", "tgrelid", "tgname", node.relation, node.trigname)
    elif kind == "CreatePolicyStmt":
        done = _named_on("pg_policy", "polrelid", "polname", node.table, node.policy_name)
    elif kind == "RuleStmt" and not node.replace:
        done = _named_on("pg_rewrite", "ev_class", "rulename", node.relation, node.rulename)
    elif kind == "CreateEventTrigStmt":
        done = f"EXISTS (SELECT FROM pg_event_trigger WHERE evtname = {_literal(node.trigname)})"
    elif kind == "CreatePublicationStmt":
        done = f"EXISTS (SELECT FROM pg_publication WHERE pubname = {_literal(node.pubname)})"
    elif kind == "CreateRoleStmt":
        done = f"EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(node.role)})"
    elif kind == "CreateCastStmt":
        done = (
            "EXISTS (SELECT FROM pg_cast\n"
            f"             WHERE castsource = to_regtype({_literal(_deparse(node.sourcetype))})\n"
            f"               AND casttarget = to_regtype({_literal(_deparse(node.targettype))}))"
        )
    elif kind == "DefineStmt" and node.kind == ObjectType.OBJECT_OPERATOR:
        done = _operator_exists(node)
    elif kind == "DefineStmt" and node.kind == ObjectType.OBJECT_AGGREGATE and not node.replace:
        done = _aggregate_exists(node)
    elif kind == "CreateFdwStmt":
        done = (
            "EXISTS (SELECT FROM pg_foreign_data_wrapper\n"
            f"             WHERE fdwname = {_literal(node.fdwname)})"
        )
    elif kind == "DefineStmt" and node.kind in _TEXT_SEARCH:
        table, column, namespace = _TEXT_SEARCH[node.kind]
        done = _named_in(table, column, namespace, node.defnames)
    elif kind == "CreateOpClassStmt":
        done = _named_in("pg_opclass", "opcname", "opcnamespace", node.opclassname)
        done = done[:-1] + f"\n               AND opcmethod = {_access_method(node.amname)})"
    elif kind == "CreateOpFamilyStmt":
        done = _named_in("pg_opfamily", "opfname", "opfnamespace", node.opfamilyname)
        done = done[:-1] + f"\n               AND opfmethod = {_access_method(node.amname)})"
    elif kind == "CreateConversionStmt":
        done = _named_in("pg_conversion", "conname", "connamespace", node.conversion_name)
    elif kind == "CreateAmStmt":
        done = f"EXISTS (SELECT FROM pg_am WHERE amname = {_literal(node.amname)})"
    elif kind == "AlterDomainStmt" and node.subtype == "C" and node.def_ is not None:
        if node.def_.conname:
            domain = _literal(_relation(*_split(node.typeName)))
            done = (
                "EXISTS (SELECT FROM pg_constraint\n"
                f"             WHERE contypid = to_regtype({domain})\n"
                f"               AND conname = {_literal(node.def_.conname)})"
            )
    elif kind == "AlterExtensionContentsStmt" and node.action == 1:
        done = _extension_member(node)
    elif kind == "AlterPublicationStmt" and node.action == AlterPublicationAction.AP_AddObjects:
        done = _published(node)
    elif (
        kind == "AlterTSConfigurationStmt"
        and node.kind == AlterTSConfigType.ALTER_TSCONFIG_ADD_MAPPING
    ):
        done = _mapped(node)
    elif kind in _OPTIONS_OF:
        done = _options_done(node.options, _OPTIONS_OF[kind](node))
    elif kind == "CreateTransformStmt" and not node.replace:
        done = (
            "EXISTS (SELECT FROM pg_transform\n"
            f"             WHERE trftype = to_regtype({_literal(_deparse(node.type_name))})\n"
            "               AND trflang = (SELECT oid FROM pg_language\n"
            f"                              WHERE lanname = {_literal(node.lang)}))"
        )
    elif kind == "CreateSubscriptionStmt" and not _creates_slot(node):
        done = (
            "EXISTS (SELECT FROM pg_subscription\n"
            f"             WHERE subname = {_literal(node.subname)}\n"
            "               AND subdbid = (SELECT oid FROM pg_database\n"
            "                              WHERE datname = current_database()))"
        )
    return _unless(done, sql) if done is not None else None


_TEXT_SEARCH = {
    ObjectType.OBJECT_TSCONFIGURATION: ("pg_ts_config", "cfgname", "cfgnamespace"),
    ObjectType.OBJECT_TSDICTIONARY: ("pg_ts_dict", "dictname", "dictnamespace"),
    ObjectType.OBJECT_TSPARSER: ("pg_ts_parser", "prsname", "prsnamespace"),
    ObjectType.OBJECT_TSTEMPLATE: ("pg_ts_template", "tmplname", "tmplnamespace"),
}


def _named_in(catalog: str, column: str, namespace: str, names: Any) -> str:
    """An object of that (qualified) name exists where it is created."""
    schema, name = _split(names)
    return (
        f"EXISTS (SELECT FROM {catalog}\n"
        f"             WHERE {column} = {_literal(name)}\n"
        f"               AND {namespace} = {_namespace(schema)})"
    )


def _access_method(name: str) -> str:
    return f"(SELECT oid FROM pg_am WHERE amname = {_literal(name)})"


def _definition(node: Any, name: str) -> Any:
    """The argument of a DefineStmt's `name = ...` (None when not given)."""
    for elem in node.definition or ():
        if elem.defname == name:
            return elem.arg
    return None


def _operator_exists(node: Any) -> str | None:
    """CREATE OPERATOR done: an operator of that name and argument types with a function
    (not the shell an earlier operator's COMMUTATOR or NEGATOR made, which it fills in)."""
    schema, name = _split(node.defnames)
    sides = []
    for side in ("left", "right"):
        arg = _definition(node, f"{side}arg")
        if arg is not None and type(arg).__name__ != "TypeName":
            return None
        typ = "0" if arg is None else f"to_regtype({_literal(_deparse(arg))})"
        sides.append(f"opr{side} = {typ}")
    return (
        "EXISTS (SELECT FROM pg_operator\n"
        f"             WHERE oprname = {_literal(name)}\n"
        f"               AND oprnamespace = {_namespace(schema)}\n"
        f"               AND {sides[0]} AND {sides[1]} AND oprcode <> 0)"
    )


def _aggregate_exists(node: Any) -> str | None:
    """CREATE AGGREGATE done: a function of that name and argument types (direct and
    aggregated ones; the old syntax's BASETYPE, none for BASETYPE = ANY)."""
    if not node.oldstyle:
        args = node.args[0] if node.args else None
        return _proc_exists(node.defnames, args or ())  # None: agg(*)
    base = _definition(node, "basetype")
    if base is None or type(base).__name__ != "TypeName":
        return None
    names = [n.sval.lower() for n in base.names or ()]
    if names == ["any"]:
        return _proc_exists(node.defnames, ())
    return _proc_exists(node.defnames, (ast.FunctionParameter(argType=base, mode=_IN_MODE),))


# pg_get_object_address's names of the object types whose ObjectType name does not read so
_ADDRESS_TYPES = {
    ObjectType.OBJECT_FDW: "foreign-data wrapper",
    ObjectType.OBJECT_FOREIGN_SERVER: "server",
    ObjectType.OBJECT_MATVIEW: "materialized view",
    ObjectType.OBJECT_OPCLASS: "operator class",
    ObjectType.OBJECT_OPFAMILY: "operator family",
    ObjectType.OBJECT_TSCONFIGURATION: "text search configuration",
    ObjectType.OBJECT_TSDICTIONARY: "text search dictionary",
    ObjectType.OBJECT_TSPARSER: "text search parser",
    ObjectType.OBJECT_TSTEMPLATE: "text search template",
}


def _extension_member(node: Any) -> str | None:
    """ALTER EXTENSION ... ADD done: the object is a member of that extension (pg_depend,
    the object found by pg_get_object_address as the statement names it; None for a
    routine named without its arguments or an operator with NONE, not looked up here)."""
    obj, names, args = node.object, [], []
    if type(obj).__name__ == "ObjectWithArgs":
        if obj.args_unspecified or None in (obj.objargs or ()):
            return None
        names = [n.sval for n in obj.objname]
        args = [_deparse(t) for t in obj.objargs or ()]
    elif type(obj).__name__ == "String":
        names = [obj.sval]
    elif type(obj).__name__ == "TypeName":
        names = [_deparse(obj)]
    else:  # a qualified name; a cast's or transform's (type, type or language) pair
        parts = [n.sval if type(n).__name__ == "String" else _deparse(n) for n in obj or ()]
        pair = node.objtype in (ObjectType.OBJECT_CAST, ObjectType.OBJECT_TRANSFORM)
        names, args = (parts[:1], parts[1:]) if pair else (parts, [])
    kind = _ADDRESS_TYPES.get(node.objtype, node.objtype.name[7:].lower().replace("_", " "))
    array = "ARRAY[{}]::text[]".format
    return (
        "EXISTS (SELECT FROM pg_depend d,\n"
        f"               pg_get_object_address({_literal(kind)},\n"
        f"                 {array(', '.join(map(_literal, names)))},"
        f" {array(', '.join(map(_literal, args)))}) a\n"
        "             WHERE (d.classid, d.objid, d.objsubid) = (a.classid, a.objid, a.objsubid)\n"
        "               AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'\n"
        "               AND d.refobjid = (SELECT oid FROM pg_extension\n"
        f"                                 WHERE extname = {_literal(node.extname)}))"
    )


def _options_done(options: Any, array: str | None) -> str | None:
    """An OPTIONS (ADD / SET / DROP ...) clause done: the options array (`array`, SQL)
    has each option it adds or sets with its value and none it drops. None when it
    neither adds nor drops one (SET runs again as it is)."""
    if array is None:
        return None
    arr = f"coalesce({array}, '{{}}'::text[])"
    checks, fails_again = [], False
    for opt in options or ():
        name = str(opt.defname)
        if opt.defaction == DefElemAction.DEFELEM_DROP:
            fails_again = True
            checks.append(
                f"NOT EXISTS (SELECT FROM unnest({arr}) o\n"
                f"                 WHERE split_part(o, '=', 1) = {_literal(name)})"
            )
            continue
        if type(opt.arg).__name__ != "String":
            return None
        fails_again |= opt.defaction != DefElemAction.DEFELEM_SET
        checks.append(f"{_literal(name + '=' + str(opt.arg.sval))} = ANY ({arr})")
    return "(" + "\n      AND ".join(checks) + ")" if fails_again else None


_ROLE_SPEC = {
    RoleSpecType.ROLESPEC_CURRENT_USER: "current_user",
    RoleSpecType.ROLESPEC_CURRENT_ROLE: "current_role",
    RoleSpecType.ROLESPEC_SESSION_USER: "session_user",
    RoleSpecType.ROLESPEC_PUBLIC: "'public'",
}


def _mapping_options(node: Any) -> str | None:
    user = node.user
    if user is None:
        return None
    name = _ROLE_SPEC.get(user.roletype) or _literal(str(user.rolename))
    return (
        "(SELECT umoptions FROM pg_user_mappings\n"
        f"                 WHERE srvname = {_literal(node.servername)} AND usename = {name})"
    )


# The options array each ALTER ... OPTIONS statement changes, as SQL.
_OPTIONS_OF: dict[str, Callable[[Any], str | None]] = {
    "AlterForeignServerStmt": lambda n: (
        f"(SELECT srvoptions FROM pg_foreign_server WHERE srvname = {_literal(n.servername)})"
    ),
    "AlterFdwStmt": lambda n: (
        f"(SELECT fdwoptions FROM pg_foreign_data_wrapper WHERE fdwname = {_literal(n.fdwname)})"
    ),
    "AlterUserMappingStmt": _mapping_options,
}


def _foreign_table_options(node: Any) -> str | None:
    """ALTER FOREIGN TABLE ... OPTIONS / ALTER COLUMN ... OPTIONS done (a statement of
    such commands only): every one's options as they leave them."""
    cmds: list[Any] = list(node.cmds or ())
    rel = node.relation
    if not cmds or rel is None:
        return None
    table = _literal(_relation(rel.schemaname, rel.relname))
    checks = []
    for cmd in cmds:
        if cmd.subtype == AlterTableType.AT_GenericOptions:
            array = f"(SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = to_regclass({table}))"
        elif cmd.subtype == AlterTableType.AT_AlterColumnGenericOptions and cmd.name:
            array = (
                "(SELECT attfdwoptions FROM pg_attribute\n"
                f"                 WHERE attrelid = to_regclass({table})"
                f" AND attname = {_literal(cmd.name)})"
            )
        else:
            return None
        checks.append(_options_done(cmd.def_, array))
    done = [c for c in checks if c is not None]
    return "(" + "\n      AND ".join(done) + ")" if done else None


def _mapped(node: Any) -> str:
    """ALTER TEXT SEARCH CONFIGURATION ... ADD MAPPING done: the configuration maps every
    token type it names (pg_ts_config_map, the types named by its parser's aliases)."""
    schema, name = _split(node.cfgname)
    config = _found("pg_ts_config", "cfgname", "cfgnamespace", schema, name)
    tokens = ", ".join(_literal(str(t.sval)) for t in node.tokentype or ())
    return (
        f"(NOT EXISTS (SELECT FROM unnest(ARRAY[{tokens}]) token\n"
        "             WHERE NOT EXISTS (SELECT FROM pg_ts_config c\n"
        "                 JOIN pg_ts_config_map m ON m.mapcfg = c.oid\n"
        "                 JOIN ts_token_type(c.cfgparser) t ON t.tokid = m.maptokentype\n"
        f"                 WHERE c.oid = {config} AND t.alias = token)))"
    )


def _published(node: Any) -> str | None:
    """ALTER PUBLICATION ... ADD done: every table it adds is in the publication
    (pg_publication_rel), every schema too (pg_publication_namespace)."""
    pub = f"(SELECT oid FROM pg_publication WHERE pubname = {_literal(node.pubname)})"
    checks = []
    for obj in node.pubobjects or ():
        kind = obj.pubobjtype
        if kind == PublicationObjSpecType.PUBLICATIONOBJ_TABLE and obj.pubtable is not None:
            rel = obj.pubtable.relation
            table = _literal(_relation(rel.schemaname, rel.relname))
            checks.append(
                "EXISTS (SELECT FROM pg_publication_rel\n"
                f"             WHERE prpubid = {pub}\n"
                f"               AND prrelid = to_regclass({table}))"
            )
        elif kind in (
            PublicationObjSpecType.PUBLICATIONOBJ_TABLES_IN_SCHEMA,
            PublicationObjSpecType.PUBLICATIONOBJ_TABLES_IN_CUR_SCHEMA,
        ):
            schema = (
                obj.name if kind == PublicationObjSpecType.PUBLICATIONOBJ_TABLES_IN_SCHEMA else None
            )
            checks.append(
                "EXISTS (SELECT FROM pg_publication_namespace\n"
                f"             WHERE pnpubid = {pub}\n"
                f"               AND pnnspid = {_namespace(schema)})"
            )
        else:
            return None
    return "(" + "\n      AND ".join(checks) + ")" if checks else None


def changes_again(sql: str) -> bool:
    """`sql` changes data again when it runs again, and nothing here skips it: an INSERT
    (not ON CONFLICT DO NOTHING, nor DO UPDATE setting columns from EXCLUDED and
    constants only), an UPDATE setting a column from the table's own values (SET c = c *
    100 scales twice; a column named without a table is taken as the table's), a COPY
    FROM (`lint.fix` says so in the header)."""
    try:
        parsed = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return False
    node: Any = parsed[0].stmt if len(parsed) == 1 else None
    kind = type(node).__name__
    if kind == "CopyStmt":
        return bool(node.is_from)
    if kind not in ("InsertStmt", "UpdateStmt") or node.relation is None:
        return False
    rel = node.relation
    names = {rel.relname, rel.alias.aliasname if rel.alias is not None else rel.relname}
    if kind == "InsertStmt":
        clause = node.onConflictClause
        if clause is None:
            return True
        if clause.action == OnConflictAction.ONCONFLICT_NOTHING:
            return False
        targets = clause.targetList
    else:
        targets = node.targetList
    return any(
        q is None or q in names
        for t in targets or ()
        if t.val is not None
        for q in _qualifiers(t.val(depth=None))
    )


def _qualifiers(tree: Any) -> Iterator[str | None]:
    """The table each ColumnRef of a node (as pglast dicts it) names (None: unqualified)."""
    if isinstance(tree, dict):
        if tree.get("@") == "ColumnRef":
            names = [f.get("sval") for f in tree["fields"] if isinstance(f, dict)]
            yield names[-2] if len(names) > 1 else None
            return
        for value in tree.values():
            yield from _qualifiers(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from _qualifiers(value)


def creates_slot(sql: str) -> bool:
    """`sql` is one CREATE SUBSCRIPTION that creates its replication slot: it is left as
    it is (`lint.fix` says so in the header)."""
    node = _one(sql, "CreateSubscriptionStmt")
    return node is not None and _creates_slot(node)


def _creates_slot(node: Any) -> bool:
    """CREATE SUBSCRIPTION that creates a replication slot (it connects, unless
    connect = false or create_slot = false): it cannot run in a block."""
    options = {e.defname: e.arg for e in node.options or ()}
    for name in ("connect", "create_slot"):
        if name in options and not _true(options[name]):
            return False
    return True


def _named_on(catalog: str, relid: str, column: str, rel: Any, name: str) -> str:
    """An object of that name on that table (a trigger, policy, rule) exists."""
    table = _relation(rel.schemaname, rel.relname)
    return (
        f"EXISTS (SELECT FROM {catalog}\n"
        f"             WHERE {relid} = to_regclass({_literal(table)})\n"
        f"               AND {column} = {_literal(name)})"
    )


def _renamed_label(node: Any) -> str:
    """RENAME VALUE done: the enum has the new label and not the old one."""
    labels = f"enum_range(NULL::{_relation(*_split(node.typeName))})::text[]"
    return (
        f"({_literal(node.newVal)} = ANY ({labels})\n"
        f"      AND NOT {_literal(node.oldVal)} = ANY ({labels}))"
    )


def converts_in_place(sql: str) -> bool:
    """`sql` is an ALTER TABLE whose ALTER COLUMN ... TYPE ... USING `rerunnable` skips
    when the columns have that type already: one that keeps a column's type is skipped
    on its first run too (`lint.fix` says so in the header)."""
    node = _one(sql, "AlterTableStmt")
    if node is None:
        return False
    return _guarded_conversion(sql, node) is not None


def _guarded_conversion(sql: str, node: Any) -> str | None:
    """ALTER TABLE ... ALTER COLUMN ... TYPE ... USING that runs unless every column it
    converts has the type it converts to (with its typmod): a second run would convert
    the converted values again (twice the * 100) or fail on them."""
    rel = node.relation
    cmds = [
        c
        for c in node.cmds or ()
        if c.subtype == AlterTableType.AT_AlterColumnType
        and c.def_ is not None
        and c.def_.raw_default is not None
    ]
    if rel is None or not cmds:
        return None
    table = _relation(rel.schemaname, rel.relname)
    checks: list[str] = []
    computed: list[str | None] = []
    for cmd in cmds:
        typmod: int | str | None = _typmod(cmd.def_.typeName)
        if typmod is None:  # the type's own typmod input function computes it
            typmod = f"typmod{len(computed) + 1}"
            computed.append(_typmod_of(typmod, cmd.def_.typeName))
            if computed[-1] is None:
                return None
        checks.append(
            "EXISTS (SELECT FROM pg_attribute\n"
            f"             WHERE attrelid = to_regclass({_literal(table)})\n"
            f"               AND attname = {_literal(cmd.name)} AND NOT attisdropped\n"
            f"               AND atttypid = to_regtype({_literal(_deparse(cmd.def_.typeName))})\n"
            f"               AND atttypmod = {typmod})"
        )
    done = "(" + "\n      AND ".join(checks) + ")"
    block = _unless(done, sql)
    if block is None or not computed:
        return block
    names = ", ".join(f"typmod{i + 1}" for i in range(len(computed)))
    head = (
        f"-- pgwarden: ignore PW133 {_TYPMOD_REASON}\n"
        f"DO $pgwarden$ DECLARE {names} integer; modin regproc; BEGIN\n"
    )
    return head + "".join(str(c) for c in computed) + block.split("\n", 1)[1]


_TYPMOD_REASON = "computes the typmod of the type converted to with its own typmod input"


def _typmod_of(var: str, type_name: Any) -> str | None:
    """PL/pgSQL setting `var` to the typmod a column of this type gets, as the server
    computes it: the type's typmod input function given the modifiers as text (an
    extension's vector(3), geometry(Point, 4326); interval(0)). NULL when the type is
    not there yet (the conversion has not run: it runs, and fails as it would)."""
    mods: list[str] = []
    for mod in type_name.typmods or ():
        kind = type(mod).__name__
        value: Any = getattr(mod, "val", None)
        fields: Any = getattr(mod, "fields", None) or ()
        if kind == "A_Const" and type(value).__name__ in ("Integer", "Float"):
            mods.append(str(getattr(value, "ival", getattr(value, "fval", ""))))
        elif kind == "A_Const" and type(value).__name__ == "String":
            mods.append(str(value.sval))
        elif kind == "ColumnRef" and len(fields) == 1 and type(fields[0]).__name__ == "String":
            mods.append(str(fields[0].sval))
        else:
            return None  # the server refuses other modifiers
    bare = ast.TypeName(names=type_name.names, arrayBounds=type_name.arrayBounds)
    array = ", ".join(_literal(m) for m in mods)
    return (
        "  SELECT t.typmodin INTO modin FROM pg_type t\n"
        f"   WHERE t.oid = to_regtype({_literal(_deparse(bare))}) AND t.typmodin <> 0;\n"
        "  IF modin IS NOT NULL THEN\n"
        f"    EXECUTE format('SELECT %s($1)', modin) INTO {var}\n"
        f"      USING ARRAY[{array}]::cstring[];\n"
        "  END IF;\n"
    )


_VARHDRSZ = 4


def _typmod(type_name: Any) -> int | None:
    """The atttypmod a column of this type gets (-1: none), as the built-in types' typmod
    input functions compute it; None for another type with modifiers (not known here)."""
    mods = list(type_name.typmods or ())
    if not mods:
        return -1
    values = [getattr(getattr(m, "val", None), "ival", None) for m in mods]
    if any(not isinstance(v, int) for v in values):
        return None
    names = [n.sval for n in type_name.names or ()]
    if len(names) > 1 and names[0] != "pg_catalog":
        return None
    base, ints = names[-1], [int(v) for v in values if isinstance(v, int)]
    if base in ("varchar", "bpchar") and len(ints) == 1:
        return ints[0] + _VARHDRSZ
    if base in ("bit", "varbit") and len(ints) == 1:
        return ints[0]
    if base == "numeric" and len(ints) in (1, 2):
        scale = ints[1] if len(ints) == 2 else 0
        return ((ints[0] << 16) | (scale & 0x7FF)) + _VARHDRSZ
    if base in ("timestamp", "timestamptz", "time", "timetz") and len(ints) == 1:
        return min(ints[0], 6)  # the server caps the precision at 6 (with a warning)
    return None


def rerunnable(
    sql: str,
    *,
    indexes: Sequence[str] = (),
    lock_timeout_ms: int = 1000,
    name_unnamed: bool = False,
    taken: set[str] | None = None,
) -> list[str]:
    """`sql` (one statement, no `;`) as statements that may run again.

    `indexes`: the indexes a REINDEX TABLE rebuilds, when the catalog knows them
    (their leftovers are dropped first). `lock_timeout_ms`: the bound of a block's
    lock wait. `name_unnamed`: an unnamed CREATE INDEX gets the name the server gives
    it when that name is free (`default_index_name`), and IF NOT EXISTS. `taken`: the
    index and constraint names of the file's earlier statements (an unnamed one is
    numbered past them as the server numbers it: _idx1, _check1); this one's is added.
    """
    return [_retagged(q) for q in _rerunnable(sql, indexes, lock_timeout_ms, name_unnamed, taken)]


_OPEN, _CLOSE = "DO $pgwarden$", "END $pgwarden$"


def _retagged(stmt: str) -> str:
    """A block of this module quoted with a dollar tag its body does not contain: the
    statement it wraps (a CHECK, a name, a function body) may hold `$pgwarden$`, which
    would end the block there; `$pgwarden1$`, `$pgwarden2$`, ... then."""
    start = stmt.find(_OPEN)
    if start < 0 or not stmt.endswith(_CLOSE):
        return stmt
    body = stmt[start + len(_OPEN) : len(stmt) - len(_CLOSE)]
    tag, n = "pgwarden", 0
    while f"${tag}$" in body:
        n += 1
        tag = f"pgwarden{n}"
    return stmt if n == 0 else f"{stmt[:start]}DO ${tag}${body}END ${tag}$"


def _rerunnable(
    sql: str,
    indexes: Sequence[str],
    lock_timeout_ms: int,
    name_unnamed: bool,
    taken: set[str] | None,
) -> list[str]:
    """`rerunnable`, its blocks quoted with `$pgwarden$`."""
    try:
        parsed = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return [sql]
    if len(parsed) != 1:
        return [sql]
    node: Any = parsed[0].stmt
    kind = type(node).__name__
    text = sql
    taken = set() if taken is None else taken
    if kind == "IndexStmt" and not node.idxname and name_unnamed:
        name = _default_index_name(node, taken)
        if name is not None:
            node.idxname = name
            quoted = _relation(None, name).replace("\\", "\\\\")
            text = _text(sql, node, lambda s: _UNNAMED.sub(rf"\1 {quoted} ON", s, count=1))
            sql = text
    if kind == "IndexStmt" and node.idxname:
        taken.add(node.idxname)
        if not node.if_not_exists:
            node.if_not_exists = True
            text = _text(sql, node, lambda s: _INDEX.sub(r"INDEX \1IF NOT EXISTS ", s, count=1))
        if node.concurrent:
            return [*_invalid_index_cleanup(node.relation.schemaname, node.idxname), text]
        return [text]
    if kind == "CreateStmt" and not node.if_not_exists:
        node.if_not_exists = True
        return [_text(sql, node, lambda s: _TABLE.sub("TABLE IF NOT EXISTS ", s, count=1))]
    if kind == "CreateForeignTableStmt" and not node.base.if_not_exists and not node.base.partbound:
        node.base.if_not_exists = True
        return [_text(sql, node, lambda s: _TABLE.sub("TABLE IF NOT EXISTS ", s, count=1))]
    if kind == "DropStmt" and not node.missing_ok:
        node.missing_ok = True
        return [_text(sql, node, lambda s: _DROP.sub(r"\1 IF EXISTS ", s, count=1))]
    if kind == "AlterEnumStmt" and node.newVal and not node.oldVal and not node.skipIfNewValExists:
        node.skipIfNewValExists = True
        return [_text(sql, node, lambda s: _VALUE.sub("ADD VALUE IF NOT EXISTS ", s, count=1))]
    if kind == "ReindexStmt" and _concurrent(node):
        toast = _toast_leftovers(node, lock_timeout_ms)
        return [*_reindex_leftovers(node, indexes), *toast, sql]
    if kind == "RenameStmt":
        renamed = _guarded_rename(sql, node)
        return [renamed] if renamed is not None else [sql]
    if kind == "SelectStmt":
        created_as = _select_into(sql, node)
        return [created_as] if created_as is not None else [sql]
    if kind == "AlterDomainStmt" and node.subtype == "X" and not node.missing_ok:
        node.missing_ok = True
        return [_text(sql, node, lambda s: _DROP_CONSTRAINT.sub("CONSTRAINT IF EXISTS ", s, 1))]
    if (
        kind == "AlterTSConfigurationStmt"
        and node.kind == AlterTSConfigType.ALTER_TSCONFIG_DROP_MAPPING
        and not node.missing_ok
    ):
        node.missing_ok = True
        return [_text(sql, node, lambda s: _DROP_MAPPING.sub("MAPPING IF EXISTS FOR", s, 1))]
    if kind in ("AlterDomainStmt", "CreateDomainStmt"):
        sql = _domain_checks(sql, node, taken, name_unnamed)
    if kind in _IF_NOT_EXISTS and not node.if_not_exists and _may_skip(node):
        node.if_not_exists = True
        word = _IF_NOT_EXISTS[kind]
        return [_text(sql, node, lambda s: word.sub(r"\1 IF NOT EXISTS ", s, count=1))]
    created = _guarded_create(sql, node)
    if created is not None:
        return [created]
    if kind == "AlterTableStmt" and node.objtype == ObjectType.OBJECT_TYPE:
        return [_guarded_attributes(sql, node)]
    if kind == "AlterTableStmt":
        finalize = _finalize_pending_detach(node)
        if finalize is not None:
            return [finalize, sql]
        if name_unnamed:
            sql = _named_constraint(sql, node, taken)
        taken.update(
            c.def_.conname
            for c in node.cmds or ()
            if c.subtype == AlterTableType.AT_AddConstraint
            and c.def_ is not None
            and c.def_.conname
        )
        guarded = _guarded_constraint(sql, node) or _guarded_constraints(sql, node)
        if guarded is not None:
            return [guarded]
        done = _attached_or_identity(node) or _foreign_table_options(node)
        if done is not None:
            return [str(_unless(done, sql))]
        converted = _guarded_conversion(sql, node)
        if converted is not None:
            return [converted]
        changed = False
        for cmd in node.cmds or ():
            if cmd.subtype in _MISSING_OK and not cmd.missing_ok:
                cmd.missing_ok = changed = True
        if changed:
            return [_text(sql, node, _alter_edit)]
    return [sql]


_DROP_MAPPING = re.compile(r"\bMAPPING\s+FOR\b", re.I)
_DROP_CONSTRAINT = re.compile(r"\bCONSTRAINT\s+(?!IF\b)", re.I)
_INTO = re.compile(
    r"\s*\bINTO\s+(?:(?:TEMPORARY|TEMP|UNLOGGED|LOCAL|GLOBAL)\s+)*(?:TABLE\s+)?"
    r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(?:\s*\.\s*(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))*',
    re.I,
)
_PERSISTENCE = {"t": "TEMPORARY ", "u": "UNLOGGED "}


def _select_into(sql: str, node: Any) -> str | None:
    """SELECT ... INTO t (which creates t) as CREATE TABLE IF NOT EXISTS t AS SELECT ...:
    the server turns the one into the other (the same columns, types and rows); None
    for a SELECT without INTO. The INTO clause is on the first SELECT of a UNION."""
    first = node
    while first.larg is not None:
        first = first.larg
    into = first.intoClause
    if into is None or into.rel is None:
        return None
    first.intoClause = None
    created = ast.CreateTableAsStmt(
        query=node, into=into, objtype=ObjectType.OBJECT_TABLE, if_not_exists=True
    )
    rel = into.rel
    head = (
        f"CREATE {_PERSISTENCE.get(rel.relpersistence, '')}TABLE IF NOT EXISTS "
        f"{_relation(rel.schemaname, rel.relname)} AS "
    )
    return _text(sql, created, lambda s: head + _INTO.sub("", s, count=1).strip())


def _domain_checks(sql: str, node: Any, taken: set[str], name_unnamed: bool) -> str:
    """`sql` with the unnamed CHECK an ALTER DOMAIN adds named as the server names it
    (ChooseConstraintName: domain_check, numbered past the names taken: a re-run would
    add domain_check1), when `name_unnamed`; the names its CHECKs get (a CREATE DOMAIN's
    too) are added to `taken`."""
    if type(node).__name__ == "CreateDomainStmt":
        _, domain = _split(node.domainname)
        for con in node.constraints or ():
            if con.contype == ConstrType.CONSTR_CHECK:
                taken.add(con.conname or _choose(domain, None, "check", taken))
        return sql
    con = node.def_
    if node.subtype != "C" or con is None or con.contype != ConstrType.CONSTR_CHECK:
        return sql
    if not con.conname and name_unnamed:
        con.conname = _choose(_split(node.typeName)[1], None, "check", taken)
        quoted = _relation(None, con.conname).replace("\\", "\\\\")
        sql = _text(sql, node, lambda s: _UNNAMED_CONSTRAINT.sub(f"ADD CONSTRAINT {quoted} ", s, 1))
    if con.conname:
        taken.add(con.conname)
    return sql


# ALTER TABLE commands that take IF [NOT] EXISTS (`_alter_edit` writes it).
_MISSING_OK = frozenset(
    {
        AlterTableType.AT_AddColumn,
        AlterTableType.AT_DropColumn,
        AlterTableType.AT_DropConstraint,
        AlterTableType.AT_DropIdentity,
        AlterTableType.AT_DropExpression,
    }
)


def _attached_or_identity(node: Any) -> str | None:
    """ATTACH PARTITION done: the table is a partition of that one; INHERIT: it inherits
    from it; ALTER COLUMN ... ADD GENERATED ... AS IDENTITY: the column is an identity
    column (for a statement of that one command; none has IF NOT EXISTS). NO INHERIT is
    left as it is: done and never inheriting look the same, and the latter must fail."""
    cmds: list[Any] = list(node.cmds or ())
    rel = node.relation
    if len(cmds) != 1 or rel is None:
        return None
    table = _literal(_relation(rel.schemaname, rel.relname))
    cmd = cmds[0]
    if cmd.subtype == AlterTableType.AT_AttachPartition and cmd.def_ is not None:
        part = _literal(_relation(cmd.def_.name.schemaname, cmd.def_.name.relname))
        return (
            "EXISTS (SELECT FROM pg_inherits\n"
            f"             WHERE inhrelid = to_regclass({part})\n"
            f"               AND inhparent = to_regclass({table}))"
        )
    if cmd.subtype == AlterTableType.AT_AddInherit and cmd.def_ is not None:
        parent = _literal(_relation(cmd.def_.schemaname, cmd.def_.relname))
        return (
            "EXISTS (SELECT FROM pg_inherits\n"
            f"             WHERE inhrelid = to_regclass({table})\n"
            f"               AND inhparent = to_regclass({parent}))"
        )
    if cmd.subtype == AlterTableType.AT_AddIdentity and cmd.name:
        return (
            "EXISTS (SELECT FROM pg_attribute\n"
            f"             WHERE attrelid = to_regclass({table})\n"
            f"               AND attname = {_literal(cmd.name)} AND attidentity <> '')"
        )
    return None


_DROP_ATTRIBUTE = re.compile(r"\bDROP\s+ATTRIBUTE\s+(?!IF\b)", re.I)


def _guarded_attributes(sql: str, node: Any) -> str:
    """ALTER TYPE ... ADD / DROP ATTRIBUTE: DROP ATTRIBUTE gets IF EXISTS; with an ADD
    ATTRIBUTE (no IF NOT EXISTS there), a block runs it unless the composite type has
    every attribute it adds."""
    cmds: list[Any] = list(node.cmds or ())
    for cmd in cmds:
        if cmd.subtype == AlterTableType.AT_DropColumn:
            cmd.missing_ok = True
    text = _text(sql, node, lambda s: _DROP_ATTRIBUTE.sub("DROP ATTRIBUTE IF EXISTS ", s))
    added = [
        c.def_.colname
        for c in cmds
        if c.subtype == AlterTableType.AT_AddColumn and c.def_ is not None
    ]
    rel = node.relation
    if not added or rel is None:
        return text
    typ = f"to_regtype({_literal(_relation(rel.schemaname, rel.relname))})"
    done = "\n      AND ".join(
        "EXISTS (SELECT FROM pg_attribute\n"
        f"             WHERE attrelid = (SELECT typrelid FROM pg_type WHERE oid = {typ})\n"
        f"               AND attname = {_literal(name)} AND NOT attisdropped)"
        for name in added
    )
    return str(_unless(f"({done})", text))


_ASIDE = "pgwarden_invalid"


def _invalid_index_cleanup(schema: str | None, index: str) -> list[str]:
    """A block setting an INVALID index named `index` aside (renamed, unless another
    session is building it), then the concurrent drop of what it set aside."""
    name = _relation(schema, index)
    aside = _leftover_name(index, _ASIDE)
    return [
        "DO $pgwarden$ BEGIN\n"
        "  IF EXISTS (SELECT FROM pg_index\n"
        f"             WHERE indexrelid = to_regclass({_literal(name)})\n"
        "               AND NOT indisvalid)\n"
        "     AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index\n"
        f"                     WHERE index_relid = to_regclass({_literal(name)})) THEN\n"
        f"    ALTER INDEX {name} RENAME TO {_relation(None, aside)};\n"
        "  END IF;\n"
        "END $pgwarden$",
        f"DROP INDEX CONCURRENTLY IF EXISTS {_relation(schema, aside)}",
    ]


def _relation(schema: str | None, name: str) -> str:
    """`schema.name` as SQL, quoted where it must be: as pglast deparses that RangeVar,
    without building and walking a tree for it (a fix names every index it builds)."""
    return ".".join(maybe_double_quote_name(part) for part in (schema, name) if part)


_DROP_GENERATED = re.compile(r"\bDROP\s+(IDENTITY|EXPRESSION)\b(?!\s+IF\b)", re.I)


def _alter_edit(sql: str) -> str:
    sql = _ADD_COLUMN.sub("ADD COLUMN IF NOT EXISTS ", sql)
    sql = _DROP_GENERATED.sub(lambda m: f"DROP {m.group(1)} IF EXISTS", sql)
    return _DROP_MEMBER.sub(lambda m: f"DROP {m.group(1) or 'COLUMN '}IF EXISTS ", sql)


_NAMEDATALEN = 64
_UNNAMED = re.compile(r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX(?:\s+CONCURRENTLY)?)\s+ON\b", re.I)


_UNNAMED_CONSTRAINT = re.compile(r"\bADD\s+(?=(?:CHECK|FOREIGN|UNIQUE|PRIMARY|EXCLUDE)\b)", re.I)


def default_constraint_name(sql: str) -> str | None:
    """The name the server gives the unnamed constraint one ALTER TABLE ... ADD CHECK /
    FOREIGN KEY / UNIQUE / PRIMARY KEY or ALTER DOMAIN ... ADD CHECK adds when that name is
    free (None: named, another statement, or not worked out here)."""
    node = _one(sql, "AlterTableStmt")
    if node is None:
        domain = _one(sql, "AlterDomainStmt")
        if domain is None or domain.subtype != "C" or domain.def_ is None:
            return None
        con = domain.def_
        if con.conname or con.contype != ConstrType.CONSTR_CHECK:
            return None
        return _choose(_split(domain.typeName)[1], None, "check", frozenset())
    con = _unnamed_constraint(node)
    return _default_constraint_name(node, con) if con is not None else None


def _unnamed_constraints(node: Any) -> list[Any]:
    """The constraints an ALTER TABLE's ADD CONSTRAINT commands add unnamed, in order."""
    return [
        c.def_
        for c in node.cmds or ()
        if c.subtype == AlterTableType.AT_AddConstraint
        and c.def_ is not None
        and not c.def_.conname
    ]


def _unnamed_constraint(node: Any) -> Any:
    unnamed = _unnamed_constraints(node)
    return unnamed[0] if unnamed else None


def _named_constraint(sql: str, node: Any, taken: set[str]) -> str:
    """`sql` with its unnamed ADD CONSTRAINTs named as the server would name them, each
    numbered past the names before it (none named when one is not worked out here)."""
    unnamed = _unnamed_constraints(node)
    names: list[str] = []
    for con in unnamed:
        name = _default_constraint_name(node, con, {*taken, *names})
        if name is None:
            return sql
        names.append(name)
    for con, name in zip(unnamed, names, strict=True):
        con.conname = name

    def edit(text: str) -> str:
        for name in names:
            quoted = _relation(None, name).replace("\\", "\\\\")
            text = _UNNAMED_CONSTRAINT.sub(f"ADD CONSTRAINT {quoted} ", text, 1)
        return text

    return _text(sql, node, edit) if names else sql


def _guarded_constraints(sql: str, node: Any) -> str | None:
    """An ALTER TABLE of several commands adding named constraints: it runs unless the
    table has every one (it ran: the statement is atomic), its other commands made
    rerunnable as alone (ADD COLUMN IF NOT EXISTS, ...). None for another statement."""
    cmds: list[Any] = list(node.cmds or ())
    names = [
        c.def_.conname
        for c in cmds
        if c.subtype == AlterTableType.AT_AddConstraint and c.def_ is not None and c.def_.conname
    ]
    rel = node.relation
    if len(cmds) < 2 or not names or rel is None:
        return None
    changed = False
    for cmd in cmds:
        if cmd.subtype in _MISSING_OK and not cmd.missing_ok:
            cmd.missing_ok = changed = True
    text = _text(sql, node, _alter_edit) if changed else sql
    table = _relation(rel.schemaname, rel.relname)
    done = "(" + "\n      AND ".join(_has_constraint(table, n) for n in names) + ")"
    return _unless(done, text)


def _choose(name1: str, name2: str | None, label: str, taken: Set[str]) -> str:
    """makeObjectName, numbered past the names taken as ChooseRelationName /
    ChooseConstraintName number theirs (label1, label2, ...)."""
    name, n = make_object_name(name1, name2, label), 0
    while name in taken:
        n += 1
        name = make_object_name(name1, name2, f"{label}{n}")
    return name


def _default_constraint_name(node: Any, con: Any, taken: Set[str] = frozenset()) -> str | None:
    """ChooseConstraintName / ChooseIndexName of an unnamed table constraint: table_pkey,
    table_columns_key (as an index's columns), table_columns_fkey, table_column_check
    (the one column its expression names) or table_check; USING INDEX: the index's."""
    if node.relation is None:
        return None
    table, kind = node.relation.relname, con.contype
    if kind in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE) and con.indexname:
        return str(con.indexname)
    if kind == ConstrType.CONSTR_PRIMARY:
        return _choose(table, None, "pkey", taken)
    if kind == ConstrType.CONSTR_UNIQUE:
        columns = _numbered([k.sval for k in [*(con.keys or ()), *(con.including or ())]])
        return _choose(table, "_".join(columns), "key", taken) if columns else None
    if kind == ConstrType.CONSTR_FOREIGN:
        return _choose(table, "_".join(a.sval for a in con.fk_attrs or ()), "fkey", taken)
    if kind == ConstrType.CONSTR_EXCLUSION:
        elems = [pair[0] for pair in con.exclusions or ()]
        names = [e.name or _expression_name(e.expr) for e in elems]
        names += [k.sval for k in con.including or ()]
        if not names or None in names:
            return None
        return _choose(table, "_".join(_numbered([str(n) for n in names])), "excl", taken)
    if kind == ConstrType.CONSTR_CHECK and con.raw_expr is not None:
        named = set(_column_refs(con.raw_expr(depth=None)))
        if None in named:
            return None  # a whole-row reference: not worked out here
        return _choose(table, named.pop() if len(named) == 1 else None, "check", taken)
    return None


def _column_refs(tree: Any) -> Iterator[str | None]:
    """The column each ColumnRef of a node (as pglast dicts it) names (None for t.*)."""
    if isinstance(tree, dict):
        if tree.get("@") == "ColumnRef":
            last = tree["fields"][-1]
            yield last.get("sval") if isinstance(last, dict) else None
            return
        for value in tree.values():
            yield from _column_refs(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from _column_refs(value)


def _numbered(names: list[str]) -> list[str]:
    """ChooseIndexColumnNames: a name already given is numbered (a, a1, a2)."""
    out: list[str] = []
    for orig in names:
        name, i = orig, 0
        while name in out:
            i += 1
            raw = orig.encode()[: _NAMEDATALEN - 1 - len(str(i))]
            name = raw.decode("utf-8", errors="ignore") + str(i)
        out.append(name)
    return out


def default_index_name(sql: str) -> str | None:
    """The name the server gives the unnamed CREATE INDEX `sql` when that name is free
    (None: named, or a column name this module does not work out)."""
    node = _one(sql, "IndexStmt")
    if node is None or node.idxname:
        return None
    return _default_index_name(node)


def _default_index_name(node: Any, taken: Set[str] = frozenset()) -> str | None:
    """ChooseIndexName of a plain index: table_columns_idx (makeObjectName), the
    columns (key, then INCLUDE) named as ChooseIndexColumnNames names them: a column
    by its name, an expression by FigureIndexColname (a function call by the function,
    a cast by what it casts, else "expr"), a repeated name numbered (a, a1)."""
    names: list[str] = []
    for elem in [*(node.indexParams or ()), *(node.indexIncludingParams or ())]:
        orig = elem.name or _expression_name(elem.expr)
        if orig is None:
            return None
        names.append(orig)
    names = _numbered(names)
    if not names or node.relation is None:
        return None
    return _choose(node.relation.relname, "_".join(names), "idx", taken)


_NAMED = {"CaseExpr": "case", "CoalesceExpr": "coalesce", "RowExpr": "row", "A_ArrayExpr": "array"}


def _expression_name(expr: Any) -> str | None:
    """FigureIndexColname of an index expression ("expr" where it finds none), for the
    nodes it is known for here (None for the others: the caller leaves it unnamed)."""
    figured = _figure(expr)
    return None if figured is None else (figured[0] or "expr")


def _figure(expr: Any) -> tuple[str | None, int] | None:
    """FigureColnameInternal: (name, strength); None for a node not known here."""
    kind = type(expr).__name__
    if kind == "ColumnRef":
        fields = [f.sval for f in expr.fields if type(f).__name__ == "String"]
        return (str(fields[-1]), 2) if fields else (None, 0)
    if kind == "FuncCall":
        return str(expr.funcname[-1].sval), 2
    if kind == "TypeCast":
        inner = _figure(expr.arg)
        if inner is None or inner[1] > 1:
            return inner
        return str(expr.typeName.names[-1].sval), 1
    if kind == "CollateClause":
        return _figure(expr.arg)
    if kind == "A_Expr":
        return ("nullif", 2) if expr.kind == A_Expr_Kind.AEXPR_NULLIF else (None, 0)
    if kind == "A_Const":
        return None, 0
    return (_NAMED[kind], 2) if kind in _NAMED else None


def _concurrent(node: Any) -> bool:
    return any(
        getattr(p, "defname", None) == "concurrently" and (p.arg is None or _true(p.arg))
        for p in node.params or ()
    )


def _true(arg: Any) -> bool:
    """A DefElem value read as a boolean option (true, on, 1, or a boolean constant)."""
    value = getattr(arg, "boolval", getattr(arg, "ival", getattr(arg, "sval", True)))
    return str(value).lower() not in ("false", "off", "0", "no")


def _leftover_name(index: str, label: str) -> str:
    """The name PostgreSQL gives a REINDEX CONCURRENTLY copy (makeObjectName)."""
    room = _NAMEDATALEN - 1 - len(label) - 1
    raw = index.encode("utf-8")
    if len(raw) > room:  # cut on a character boundary, as pg_mbcliplen does
        raw = raw[:room]
        while raw and (raw[-1] & 0xC0) == 0x80:
            raw = raw[:-1]
        if raw and raw[-1] >= 0xC0:
            raw = raw[:-1]
    return f"{raw.decode('utf-8')}_{label}"


def _reindex_leftovers(node: Any, indexes: Sequence[str]) -> list[str]:
    """DROP INDEX CONCURRENTLY IF EXISTS of the `_ccnew` / `_ccold` copies a cancelled
    REINDEX ... CONCURRENTLY of the same indexes left."""
    kind = node.kind.name.rsplit("_", 1)[-1].lower()
    if kind == "index" and node.relation is not None:
        names = [(node.relation.schemaname, node.relation.relname)]
    elif kind == "table":
        schema = node.relation.schemaname if node.relation is not None else None
        names = [
            (i.rsplit(".", 1)[0], i.rsplit(".", 1)[1]) if "." in i else (schema, i) for i in indexes
        ]
    else:
        return []
    from psycopg import sql as psql

    out = []
    for schema, name in names:
        for label in ("ccnew", "ccold"):
            parts = [p for p in (schema, _leftover_name(name, label)) if p]
            ident = ".".join(psql.Identifier(p).as_string(None) for p in parts)
            out.append(f"DROP INDEX CONCURRENTLY IF EXISTS {ident}")
    return out


_TOAST_REASON = "drops the INVALID copies of the TOAST index a cancelled rebuild left"


def _toast_leftovers(node: Any, lock_timeout_ms: int) -> list[str]:
    """For REINDEX TABLE: a block dropping the INVALID copies of the table's TOAST index
    a cancelled rebuild left (named after the table's OID); a partitioned table's: of
    its partitions' TOAST indexes, every level (REINDEX rebuilds each partition's)."""
    if node.kind.name.rsplit("_", 1)[-1].lower() != "table" or node.relation is None:
        return []
    table = _deparse(node.relation)
    return [
        f"-- pgwarden: ignore PW133 {_TOAST_REASON}\n"
        "DO $pgwarden$ DECLARE leftover regclass; BEGIN\n"
        f"  SET LOCAL lock_timeout = '{lock_timeout_ms}ms';\n"
        "  FOR leftover IN SELECT i.indexrelid::regclass FROM pg_index i\n"
        "                  JOIN pg_class t ON t.reltoastrelid = i.indrelid\n"
        f"                  WHERE t.oid IN (SELECT to_regclass({_literal(table)}) UNION\n"
        "                                  SELECT relid FROM pg_partition_tree(\n"
        f"                                    to_regclass({_literal(table)})))\n"
        "                    AND NOT i.indisvalid\n"
        "  LOOP\n"
        "    BEGIN\n"
        "      EXECUTE format('DROP INDEX %s', leftover);\n"
        "    EXCEPTION WHEN insufficient_privilege THEN\n"
        "      RAISE WARNING 'INVALID index % left by a cancelled REINDEX CONCURRENTLY: %',\n"
        "        leftover, SQLERRM USING HINT = format('a superuser can drop it: "
        "DROP INDEX CONCURRENTLY %s', leftover);\n"
        "    END;\n"
        "  END LOOP;\n"
        "END $pgwarden$"
    ]


def _one(sql: str, kind: str) -> Any:
    """The statement node of `sql` when it is one statement of `kind` (None otherwise)."""
    try:
        parsed = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return None
    node: Any = parsed[0].stmt if len(parsed) == 1 else None
    return node if type(node).__name__ == kind else None


def detaches_concurrently(sql: str) -> bool:
    """`sql` is one ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY."""
    node = _one(sql, "AlterTableStmt")
    if node is None:
        return False
    cmds: list[Any] = list(node.cmds or ())
    return (
        len(cmds) == 1
        and cmds[0].subtype == AlterTableType.AT_DetachPartition
        and cmds[0].def_ is not None
        and bool(cmds[0].def_.concurrent)
    )


def _finalize_pending_detach(node: Any) -> str | None:
    """A block finishing an interrupted DETACH PARTITION ... CONCURRENTLY of the same
    partition (one left "detach pending"), before the statement runs again."""
    cmds: list[Any] = list(node.cmds or ())
    if len(cmds) != 1 or cmds[0].subtype != AlterTableType.AT_DetachPartition:
        return None
    pcmd = cmds[0].def_
    if pcmd is None or not pcmd.concurrent or pcmd.name is None:
        return None
    parent, part = _deparse(node.relation), _deparse(pcmd.name)
    return (
        "DO $pgwarden$ BEGIN\n"
        "  IF EXISTS (SELECT FROM pg_inherits\n"
        f"             WHERE inhrelid = to_regclass({_literal(part)})\n"
        f"               AND inhparent = to_regclass({_literal(parent)})\n"
        "               AND inhdetachpending) THEN\n"
        f"    ALTER TABLE {parent} DETACH PARTITION {part} FINALIZE;\n"
        "  END IF;\n"
        "END $pgwarden$"
    )


def _routine_lookup(obj: Any) -> tuple[str, str]:
    """The regproc lookup of a routine (ObjectWithArgs) and its argument list, as written:
    to_regprocedure with the types when given, to_regproc by name alone otherwise."""
    if obj.args_unspecified:
        return "to_regproc", ""
    return "to_regprocedure", "(" + ", ".join(_deparse(t) for t in obj.objargs or ()) + ")"
