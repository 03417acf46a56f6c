"""Runs a statement that cannot run inside a transaction block inside one.

## What it does
Flags a statement the server refuses inside a transaction block (`CREATE
INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY`,
`DETACH PARTITION ... CONCURRENTLY`, `VACUUM`, `CREATE DATABASE`, ...) when
it sits between `BEGIN` and `COMMIT` in the file, or in a file that the
migration runner wraps in one transaction (pgwarden's default assumption, as
Alembic, Django and dbmate do; a file that Prisma Migrate, or morph
with `-- morph:nontransactional`, sends as one query runs outside any
transaction when it holds one statement, as one transaction when it holds
more, as golang-migrate and sqlx's `-- no-transaction` do too: then an error,
the failure being certain; so is a goose, dbmate or sql-migrate migration
without its no-transaction marker, a morph or sqlx `*.up.sql` that go.mod
or `up_sql_runner` names, and a diesel `up.sql` whose metadata.toml does not
say `run_in_transaction = false`, which their tool wraps), or in a changeset of a Liquibase
formatted SQL file without `runInTransaction:false` (an error: Liquibase
certainly runs it in a transaction). Inside a DO block or a procedure
body it always fails (`cannot be executed from a function`, or `cannot
run inside a transaction block` when the block runs inside one), so it is
an error there wherever the block runs. A DO block (or a CALL of a procedure
whose body is in the plan) whose body runs COMMIT or ROLLBACK, as batched
backfills do, is flagged the same way: inside a transaction block the server
refuses them (`invalid transaction termination`).

A drizzle-kit migration (a `.sql` file next to `meta/_journal.json`, or cut by
`--> statement-breakpoint`) is an error too: drizzle runs all pending
migrations in one transaction.

A Flyway migration (`V<version>__`, `R__`) whose statements are all of the
kinds Flyway runs outside a transaction (`CREATE`/`DROP INDEX CONCURRENTLY`,
`VACUUM`, `REINDEX SCHEMA`, `CREATE DATABASE`, ...) runs without one, as
Flyway does. One that mixes such a statement with others (a `SET`, other
DDL) is flagged too (a warning): Flyway refuses it before running any of it,
unless `mixed = true`, which runs the whole file without a transaction (so
the lint reads it that way). A statement that cannot run in a transaction but
is not on Flyway's list (`REINDEX TABLE ... CONCURRENTLY`, `DETACH PARTITION
... CONCURRENTLY`) is an error in a Flyway migration: Flyway runs it in one. A
script config file next to the migration (`V3__x.sql.conf`) saying
`executeInTransaction=false` runs the migration outside any transaction.

## Why is this bad?
PostgreSQL rejects it with `ERROR: ... cannot run inside a transaction
block`: the migration fails at deploy time and everything before it in the
transaction rolls back. People then "fix" it by dropping CONCURRENTLY, which
brings back the lock that CONCURRENTLY was there to avoid.

## Example
```sql
BEGIN;
CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);
COMMIT;
```

## Use instead
```sql
CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);
```
Run it outside any transaction, in a migration of its own. Alembic: inside
`with op.get_context().autocommit_block():`. Django: a migration with
`atomic = False`. golang-migrate runs a file holding a single statement
without a transaction (pgwarden reads a `*.up.sql` file so when the `go.mod`
above it requires golang-migrate; sqlx and morph wrap such a file in a
transaction); if your runner does not wrap files in transactions,
lint with `--no-file-transaction` (or `file_transaction = false` in
`[tool.pgwarden]`).

## Fix safety
No mechanical fix: where the transaction boundary goes depends on the runner.

## References
https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePath
from typing import cast

from pgwarden.findings import Severity
from pgwarden.plan import Step, TxMode
from pgwarden.rules._sql import in_file_where, tx_words
from pgwarden.rules.base import Hit, LintContext, Rule
from pgwarden.sources.drizzle import is_drizzle_file
from pgwarden.sources.flyway import (
    is_flyway_file,
    non_transactional,
    script_config_no_transaction,
)

_KINDS = {
    "VacuumStmt": "VACUUM",
    "ClusterStmt": "CLUSTER without a table",
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
}
_WORDS = re.compile(r"[A-Za-z]+(?:\s+[A-Za-z]+){0,3}")


def _what(step: Step) -> str:
    """The statement's leading keywords, e.g. `CREATE INDEX CONCURRENTLY`."""
    if step.kind == "IndexStmt":
        return "CREATE INDEX CONCURRENTLY"
    if step.kind == "DropStmt":
        return "DROP INDEX CONCURRENTLY"
    if step.kind == "ReindexStmt":
        return "REINDEX CONCURRENTLY" if "CONCURRENTLY" in step.sql.upper() else "REINDEX"
    if step.kind == "AlterTableStmt":
        return "DETACH PARTITION CONCURRENTLY"
    if step.kind in _KINDS:
        return _KINDS[step.kind]
    m = _WORDS.match(step.sql.strip())
    return m.group(0).upper() if m else step.kind


def check(step: Step, ctx: LintContext) -> Iterator[Hit]:
    if step.effects.transactional or step.is_transaction_control:
        return
    if not step.in_transaction:
        if not step.note and _in_mixed_flyway_file(step, ctx) and non_transactional(step.tree):
            yield Hit(
                message=f"{_what(step)} shares a Flyway migration with statements Flyway runs in "
                "a transaction: Flyway refuses such a migration before running any of it "
                "(Detected both transactional and non-transactional statements within the same "
                "migration) unless mixed = true, which runs the whole file outside a "
                "transaction, each statement committed on its own",
                help="put it in a Flyway migration of its own, with only statements Flyway runs "
                "outside a transaction (no SET, no other DDL); or set mixed = true if the file "
                "may stop half-applied",
                severity=Severity.WARNING,
            )
        return
    explicit = step.tx_mode is TxMode.EXPLICIT
    changeset = not explicit and _in_changeset(step, ctx)
    flyway = not explicit and not changeset and is_flyway_file(step.location.path)
    drizzle = not explicit and not changeset and not flyway and _in_drizzle_file(step, ctx)
    one_query = not explicit and not changeset and not flyway and _sent_as_one_query(step, ctx)
    known = explicit or changeset or flyway or drizzle or one_query
    tool = "" if known or step.tx_mode is not TxMode.FILE else _wrapping_tool(step, ctx)
    where = (
        tx_words(step, ctx)
        if explicit
        else "in a Liquibase changeset, which Liquibase runs in a transaction"
        if changeset
        else "in a Flyway migration, which Flyway runs in a transaction: its parser does not "
        "count this statement among those it runs outside one (only CREATE/DROP INDEX "
        "CONCURRENTLY, VACUUM, REINDEX SCHEMA, ...)"
        if flyway
        else "in a drizzle migration: drizzle runs all pending migrations in one transaction"
        if drizzle
        else "in a file (or bun --bun:split part) of several statements that the runner sends "
        "as one query (as Prisma Migrate, golang-migrate, bun, and morph, sqlx, dbmate, "
        "diesel or postgres-migrations without a transaction do), which runs as one "
        "transaction"
        if one_query
        else f"in a {tool} migration, which {tool} runs in a transaction"
        if tool
        else "in a file that pgwarden assumes the runner wraps in one transaction (as Alembic, "
        "Django and dbmate do)"
    )
    if step.note:  # a statement of a DO block or procedure body: always fails
        passed = "the SQL passed to" in step.note  # a string a function EXECUTEs
        yield Hit(
            message=f"{_what(step)} runs inside a PL/pgSQL body: PostgreSQL rejects it there "
            "(cannot be executed from a function; inside BEGIN: cannot run inside a transaction "
            "block) and the migration fails at deploy time",
            help=(
                "run it as a statement of its own, not in the string passed to the function, "
                "outside any transaction; IF NOT EXISTS replaces the existence check"
                if passed
                else "move it out of the DO block (or procedure) to a statement of its own, "
                "run outside any transaction; IF NOT EXISTS replaces the existence check"
            ),
        )
        return
    if step.kind in ("DoStmt", "CallStmt"):  # its body ends transactions itself
        what = "a DO block" if step.kind == "DoStmt" else "a CALL of a procedure"
        yield Hit(
            message=f"{what} whose body runs COMMIT or ROLLBACK runs {where}: PostgreSQL "
            "refuses them there (invalid transaction termination) and the migration fails at "
            "deploy time",
            help="run it outside any transaction, after the file's COMMIT or in a migration of "
            "its own (Alembic autocommit_block(), Django atomic = False); or drop the COMMITs "
            "from the body if it may run as one transaction",
            severity=Severity.ERROR
            if explicit or changeset or flyway or tool
            else Severity.WARNING,
        )
        return
    yield Hit(
        message=f"{_what(step)} runs {where}: PostgreSQL rejects it there (cannot run inside a "
        "transaction block) and the migration fails at deploy time",
        help="put it in a changeset of its own with runInTransaction:false on its --changeset line"
        if changeset
        else "put it in a Flyway migration of its own with a script config file next to it "
        f"({PurePath(step.location.path).name}.conf) that says executeInTransaction=false"
        if flyway
        else "drizzle's migrator cannot run it: run it outside drizzle (psql, or a script "
        "after the migration), then make the migration that needs it expect it"
        if drizzle
        else "put it in a migration of its own, as its only statement: a query of one statement "
        "runs outside any transaction"
        if one_query
        else f"put it in a migration of its own that {tool} runs outside a transaction: "
        + _NO_TRANSACTION[tool]
        if tool in _NO_TRANSACTION
        else f"{tool} runs every migration in a transaction, with no way out: run it outside "
        f"{tool} (psql, or code after the migration), then make the migrations that need it "
        "expect it"
        if tool
        else "run it outside any transaction, in a migration of its own (Alembic "
        "autocommit_block(), Django atomic = False); if the runner does not wrap files in a "
        "transaction, lint with --no-file-transaction"
        + (
            " (golang-migrate sends a *.up.sql file as one query, so a file of this statement "
            "alone runs outside any transaction: pgwarden reads it so when the go.mod above the "
            'file requires golang-migrate, or with up_sql_runner = "golang-migrate" in the '
            "configuration; sqlx and morph wrap it unless it starts with "
            "-- no-transaction (sqlx) or holds -- morph:nontransactional (morph), and then it "
            "must be the file's only statement)"
            if step.location.path.endswith(".up.sql")
            else ""
        ),
        severity=Severity.ERROR
        if explicit or changeset or flyway or drizzle or one_query or tool
        else Severity.WARNING,
    )


def _in_drizzle_file(step: Step, ctx: LintContext) -> bool:
    """Whether the step's file is a drizzle-kit migration (sources.drizzle)."""
    return in_file_where(step, ctx, "PW130.drizzle", lambda t: is_drizzle_file(t.path, t.text))


def _in_changeset(step: Step, ctx: LintContext) -> bool:
    """Whether the step is in a Liquibase formatted SQL file (its changesets: transactions)."""
    return in_file_where(step, ctx, "PW130.changesets", lambda t: bool(t.changesets))


def _in_mixed_flyway_file(step: Step, ctx: LintContext) -> bool:
    """Whether the step's file is a Flyway migration that mixes statements Flyway runs
    outside a transaction with others (sources.flyway)."""
    key = "PW130.flyway_mixed"
    paths = cast("frozenset[str] | None", ctx.state.get(key))
    if paths is None:
        kinds: dict[str, set[bool]] = {}
        for s in ctx.plan.steps:
            if is_flyway_file(s.location.path):
                kinds.setdefault(s.location.path, set()).add(non_transactional(s.tree))
        paths = frozenset(  # (executeInTransaction=false: Flyway runs it as it is)
            p for p, seen in kinds.items() if len(seen) == 2 and not script_config_no_transaction(p)
        )
        ctx.state[key] = paths
    return step.location.path in paths


# How each tool is told to run a migration outside a transaction.
_NO_TRANSACTION = {
    "goose": "-- +goose NO TRANSACTION at its top (goose then runs each statement on its own)",
    "sql-migrate": "-- +migrate Up notransaction (sql-migrate then runs each statement on its own)",
    "dbmate": "-- migrate:up transaction:false, with this as the only statement (dbmate sends "
    "the up half as one query)",
    "morph": "-- morph:nontransactional, with this as the only statement (morph sends the file "
    "as one query)",
    "sqlx": "-- no-transaction as its first line, with this as the only statement (sqlx sends "
    "the file as one query)",
    "diesel": "run_in_transaction = false in the metadata.toml beside its up.sql, with this as "
    "the only statement (diesel then sends the file as one query)",
    "bun": "a *.up.sql file, not *.tx.up.sql, with this as the only statement of its "
    "--bun:split part (bun sends each part as one query)",
}


def _wrapping_tool(step: Step, ctx: LintContext) -> str:
    """The tool that certainly runs the step's file in a transaction (SourceText.wrapped_by),
    "" when not known."""
    key = "PW130.wrapped_by"
    tools = cast("dict[str, str] | None", ctx.state.get(key))
    if tools is None:
        tools = {t.path: t.wrapped_by for t in ctx.plan.texts if t.wrapped_by}
        ctx.state[key] = tools
    return tools.get(step.location.path, "")


def _sent_as_one_query(step: Step, ctx: LintContext) -> bool:
    """Whether the step's file is one the runner sends as one query (SourceText.one_query)."""
    return in_file_where(step, ctx, "PW130.one_query", lambda t: t.one_query or bool(t.query_parts))


RULE = Rule(
    code="PW130",
    name="concurrently-inside-transaction",
    summary="CONCURRENTLY (and VACUUM, ...) inside a transaction block fails at deploy time",
    doc=__doc__ or "",
    check=check,
)
