"""The up and down halves of a migration, as the common migration tools keep them.

goose (`-- +goose Up` / `-- +goose Down`), dbmate (`-- migrate:up` /
`-- migrate:down`) and sql-migrate (`-- +migrate Up` / `-- +migrate Down`) keep
both directions in one file; golang-migrate and sqlx
(`<version>_<name>.up.sql` / `.down.sql`), diesel (`<dir>/up.sql` /
`<dir>/down.sql`), Flyway (`V<version>__` / undo `U<version>__`) and sqitch
(`deploy/`, `revert/`, `verify/`) keep them in two files. pgwarden lints,
rehearses and applies the up half only. The down half is read for one thing:
`ALTER COLUMN c TYPE <t>` there says what `c` was before the up half changed
its type, which decides whether that change rewrites the table.

goose's `-- +goose NO TRANSACTION`, dbmate's `-- migrate:up transaction:false`
and sql-migrate's `-- +migrate Up notransaction` mean the tool does not wrap the
file in a transaction; so does a `-- postgres-migrations disable-transaction` line
(the npm postgres-migrations package, which keeps no down half), and sqlx's
`-- no-transaction` when it is the file's first bytes (sqlx reads it nowhere else), and
Atlas's `-- atlas:txmode none` among the comment lines that open the file (its file
directives; Atlas then runs each statement on its own).

Prisma Migrate (`migrations/<timestamp>_<name>/migration.sql`), Mattermost's morph
with `-- morph:nontransactional`, dbmate with `transaction:false` (`db.Exec` of the up
half), postgres-migrations with `disable-transaction` (`client.query` of the file), and
golang-migrate (a `*.up.sql` file in a Go module whose go.mod requires it) send the
file as one query (`sent_as_one_query`): a
file of one statement runs outside any transaction block, one of several runs as one
implicit transaction, as a file transaction does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePath

from pgwarden.analysis.inplan import ColumnFact, type_text
from pgwarden.analysis.parse import ParsedStatement, parse
from pgwarden.errors import PgwardenError
from pgwarden.sources.flyway import is_flyway_file
from pgwarden.sources.gomodule import go_migration_library

__all__ = [
    "Halves",
    "diesel_no_transaction",
    "down_facts",
    "down_file_of",
    "is_down_file",
    "is_prisma_file",
    "is_up_sql_file",
    "sent_as_one_query",
    "split_halves",
    "split_queries",
    "statements_apart",
    "with_down_half",
    "wrapping_tool",
]

# A line that starts a half: goose's `-- +goose Up|Down`, dbmate's `-- migrate:up|down`,
# sql-migrate's `-- +migrate Up|Down`.
_MARKER = re.compile(
    r"^[ \t]*--[ \t]*(?:\+goose[ \t]+(?P<goose>up|down)|migrate:(?P<dbmate>up|down)"
    r"|\+migrate[ \t]+(?P<sqlmigrate>up|down))\b(?P<rest>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_GOOSE_NO_TX = re.compile(r"^[ \t]*--[ \t]*\+goose[ \t]+no[ \t]+transaction\b", re.I | re.M)
_DBMATE_NO_TX = re.compile(r"\btransaction:false\b", re.IGNORECASE)
_SQLMIGRATE_NO_TX = re.compile(r"\bnotransaction\b", re.IGNORECASE)
_PG_MIGRATIONS_NO_TX = re.compile(
    r"^[ \t]*--[ \t]*postgres-migrations[ \t]+disable-transaction\b", re.IGNORECASE | re.MULTILINE
)
_SQLX_NO_TX = "-- no-transaction"  # sqlx: `sql.starts_with(...)`, the file's first bytes
# Atlas's file directive: among the comment lines that open the file, which a blank line
# must follow (Atlas reads no directive otherwise: LocalFile.comments)
_ATLAS_NO_TX = re.compile(
    r"\A(?:(?:--|#)[^\n]*\n)*?(?:--|#)[ \t]*atlas:txmode[ \t]+none\b[^\n]*\n"
    r"(?:(?:--|#)[^\n]*\n)*[ \t]*(?:\n|\Z)"
)
_MORPH_NO_TX = re.compile(r"^[ \t]*--[ \t]*morph:nontransactional\b", re.IGNORECASE | re.MULTILINE)
_PRISMA = re.compile(r"(?:^|[/\\])\d{14}_[^/\\]+[/\\]migration\.sql$")
_PRISMA_FOLDER = re.compile(r"(?:^|[/\\])[^/\\]+[/\\]migration\.sql$")


def is_prisma_file(path: str) -> bool:
    """A Prisma Migrate migration: `migrations/<timestamp>_<name>/migration.sql`, or any
    `<folder>/migration.sql` whose migrations folder holds Prisma's `migration_lock.toml`
    (Prisma takes any folder name: umami's `17_remove_duplicate_key`)."""
    if _PRISMA.search(path):
        return True
    return bool(_PRISMA_FOLDER.search(path)) and _prisma_lock(str(PurePath(path).parent.parent))


@lru_cache(maxsize=256)
def _prisma_lock(folder: str) -> bool:
    try:
        return (Path(folder) / "migration_lock.toml").is_file()
    except OSError:
        return False


def diesel_no_transaction(path: str) -> bool:
    """Whether the diesel migration of `path` (its `up.sql`) has a metadata.toml beside it
    that says `run_in_transaction = false`: diesel then sends the file as one query
    (batch_execute) outside a transaction; else it runs it in one."""
    return _run_in_transaction(str(PurePath(path).parent)) is False


@lru_cache(maxsize=256)
def _run_in_transaction(folder: str) -> bool | None:
    import tomllib  # only for diesel folders

    try:
        data = tomllib.loads((Path(folder) / "metadata.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    value = data.get("run_in_transaction")
    return value if isinstance(value, bool) else None


_FLYWAY_UNDO = re.compile(r"U(\d+(?:[._]\d+)*__.*)")
_SQITCH_OTHER = ("revert", "verify")


@dataclass(frozen=True, slots=True)
class Halves:
    """A migration file's text split in two, each half at its own offsets: the other
    half's characters are blanked (newlines kept), so lines and columns stay the file's."""

    up: str
    down: str | None  # None: the file has no down half
    no_transaction: bool  # the tool runs the up half outside a transaction


def split_halves(text: str) -> Halves:
    """The up and down halves of a goose, dbmate or sql-migrate file; other text is all
    up."""
    markers = list(_MARKER.finditer(text))
    if not markers:
        no_tx = (
            text.startswith(_SQLX_NO_TX)
            or bool(_PG_MIGRATIONS_NO_TX.search(text))
            or bool(_ATLAS_NO_TX.match(text))
        )
        return Halves(text, None, no_tx)
    up: list[str] = []
    down: list[str] = []
    at, state = 0, "up"  # text before the first marker belongs to the up half
    no_tx = bool(_GOOSE_NO_TX.search(text))
    for m in markers:
        _take(text[at : m.start()], state, up, down)
        state = _half(m)
        if m.group("dbmate") and state == "up" and _DBMATE_NO_TX.search(m.group("rest")):
            no_tx = True
        if m.group("sqlmigrate") and state == "up" and _SQLMIGRATE_NO_TX.search(m.group("rest")):
            no_tx = True
        at = m.start()
    _take(text[at:], state, up, down)
    return Halves("".join(up), "".join(down), no_tx)


_DBMATE_UP = re.compile(r"^[ \t]*--[ \t]*migrate:up\b", re.IGNORECASE | re.MULTILINE)


def runner_holds_transaction(path: str, text: str) -> bool:
    """Whether the tool runs the file in a transaction of its own or sends it as one query
    (a BEGIN in it then starts no transaction: what runs before it joins the block, and
    after its COMMIT one more transaction runs to the next BEGIN or the end): Flyway
    (`V<version>__`, `R__`), golang-migrate and sqlx (`*.up.sql`), diesel (`up.sql`),
    Prisma (`migration.sql`) and dbmate (`-- migrate:up`); goose and sql-migrate when
    `wrapping_tool` names them. Not a plain `.sql` file run by psql."""
    return (
        is_up_sql_file(path)
        or is_flyway_file(path)
        or is_prisma_file(path)
        or bool(_DBMATE_UP.search(text))
    )


def is_up_sql_file(path: str) -> bool:
    """An up migration of its own file: `<version>_<name>.up.sql` (golang-migrate, sqlx,
    morph, bun, maragudk/migrate) or diesel's `<folder>/up.sql`."""
    name = PurePath(path).name
    return name.endswith(".up.sql") or name == "up.sql"


def sent_as_one_query(path: str, text: str, up_sql_runner: str | None = None) -> bool:
    """Whether the migration tool sends the file to the server as one query (Prisma
    Migrate's migration.sql, morph's nontransactional file, sqlx's `-- no-transaction`
    file, dbmate's up half marked `transaction:false`, a postgres-migrations file marked
    `disable-transaction`, a golang-migrate `*.up.sql` of a Go module that requires
    golang-migrate, a bun `*.up.sql` without `--bun:split`): one
    statement then runs outside any transaction block, several as one transaction.
    `up_sql_runner`: the tool the configuration names for `*.up.sql` files (over go.mod)."""
    return (
        is_prisma_file(path)
        or bool(_MORPH_NO_TX.search(text))
        or text.startswith(_SQLX_NO_TX)  # sqlx: conn.execute(sql), no arguments
        # dbmate: db.Exec(up half) outside a transaction, one query as lib/pq sends it
        or any(
            m.group("dbmate") and _half(m) == "up" and _DBMATE_NO_TX.search(m.group("rest"))
            for m in _MARKER.finditer(text)
        )
        or bool(_PG_MIGRATIONS_NO_TX.search(text))  # postgres-migrations: client.query(sql)
        # diesel: batch_execute(up.sql), without a transaction when metadata.toml says so
        or (PurePath(path).name == "up.sql" and diesel_no_transaction(path))
        or (
            path.endswith(".up.sql")
            and (
                (tool := up_sql_runner or go_migration_library(path)) == "golang-migrate"
                or (tool == "bun" and not path.endswith(".tx.up.sql") and _BUN_SPLIT not in text)
            )
        )
    )


_BUN_SPLIT = "--bun:split"


_BUN_SPLIT_LINE = re.compile(r"^[ \t]*--bun:split[^\n]*(?:\n|\Z)", re.MULTILINE)


def split_queries(text: str, starts: Sequence[int]) -> tuple[tuple[int, bool], ...]:
    """The parts of a bun file between its `--bun:split` lines, each sent as one query:
    (offset where it starts, whether it holds several of the statements at `starts`)."""
    bounds = [0, *(m.end() for m in _BUN_SPLIT_LINE.finditer(text))]
    out = []
    for at, begin in enumerate(bounds):
        end = bounds[at + 1] if at + 1 < len(bounds) else len(text) + 1
        out.append((begin, sum(1 for s in starts if begin <= s < end) > 1))
    return tuple(out)


def wrapping_tool(path: str, text: str, up_sql_runner: str | None = None) -> str | None:
    """The migration tool that certainly runs the file's up half in a transaction, by name:
    goose, dbmate or sql-migrate (their up marker, without their no-transaction marker),
    morph or sqlx (a `*.up.sql` that go.mod or `up_sql_runner` says is theirs, without
    `-- morph:nontransactional` or a leading `-- no-transaction`), bun (a `*.tx.up.sql`),
    maragudk/migrate (any `*.up.sql`), diesel (an `up.sql`
    whose metadata.toml does not say `run_in_transaction = false`). None: not known."""
    up = next((m for m in _MARKER.finditer(text) if _half(m) == "up"), None)
    if up is not None:
        if split_halves(text).no_transaction:
            return None
        return "goose" if up.group("goose") else "dbmate" if up.group("dbmate") else "sql-migrate"
    if PurePath(path).name == "up.sql":
        return None if diesel_no_transaction(path) else "diesel"
    if not path.endswith(".up.sql") or _MORPH_NO_TX.search(text) or text.startswith(_SQLX_NO_TX):
        return None
    tool = up_sql_runner or go_migration_library(path)
    if tool == "bun":
        return "bun" if path.endswith(".tx.up.sql") else None
    return tool if tool in ("morph", "sqlx", "maragudk/migrate") else None


def statements_apart(path: str, text: str, up_sql_runner: str | None = None) -> bool:
    """Whether the tool runs the file's statements apart, outside any transaction: a bun
    `*.up.sql` (not `*.tx.up.sql`) cut by `--bun:split` lines, each part sent on its own
    (read here as each statement on its own)."""
    return (
        path.endswith(".up.sql")
        and not path.endswith(".tx.up.sql")
        and _BUN_SPLIT in text
        and (up_sql_runner or go_migration_library(path)) == "bun"
    )


def with_down_half(fixed_up: str, original: str) -> str:
    """A rewrite of a goose, dbmate or sql-migrate file's up half (`fixed_up`, which manages its own
    transactions) made whole again: marked to run outside the tool's transaction, and the
    original's text from its first down marker on, as it was."""
    down = next(
        (m for m in _MARKER.finditer(original) if _half(m) == "down"),
        None,
    )
    if down is None:
        return fixed_up
    up = fixed_up
    if down.group("goose"):
        up = _goose_statements(up)
        if not _GOOSE_NO_TX.search(up):
            up = "-- +goose NO TRANSACTION\n" + up
    elif down.group("dbmate"):
        up = _DBMATE_UP.sub(_no_transaction, up, count=1)
    else:  # sql-migrate: its statements split as goose's, its up marker notransaction
        up = _goose_statements(up, "+migrate")
        up = _SQLMIGRATE_UP.sub(_sqlmigrate_no_transaction, up, count=1)
    return up.rstrip("\n") + "\n\n" + original[down.start() :]


def _goose_statements(up: str, tool: str = "+goose") -> str:
    """`up` with every statement that has a line ending in `;` inside it (a DO block)
    between `-- +goose StatementBegin` and `StatementEnd` (sql-migrate: `-- +migrate ...`),
    as the tool needs to send it whole (it ends a statement at such a line otherwise); the
    old markers are dropped."""
    block = rf"^[ \t]*--[ \t]*{re.escape(tool)}[ \t]+statement(begin|end)\b.*\n?"
    up = re.sub(block, "", up, flags=re.I | re.M)
    try:
        stmts = parse(up)
    except PgwardenError:
        return up
    out: list[str] = []
    at = 0
    for st in stmts:
        if not re.search(r";[ \t]*(--[^\n]*)?\n", up[st.start : st.end]):
            continue
        end = up.find(";", st.end)
        end = len(up) if end < 0 else end + 1
        out += [up[at : st.start], f"-- {tool} StatementBegin\n", up[st.start : end]]
        out.append(f"\n-- {tool} StatementEnd")
        at = end
    return "".join(out) + up[at:]


def _half(m: re.Match[str]) -> str:
    """ "up" or "down": the half a marker starts."""
    return (m.group("goose") or m.group("dbmate") or m.group("sqlmigrate")).lower()


_DBMATE_UP = re.compile(r"^([ \t]*--[ \t]*migrate:up\b)(.*)$", re.IGNORECASE | re.MULTILINE)


_SQLMIGRATE_UP = re.compile(r"^([ \t]*--[ \t]*\+migrate[ \t]+up\b)(.*)$", re.I | re.M)


def _sqlmigrate_no_transaction(m: re.Match[str]) -> str:
    """sql-migrate's up marker with `notransaction` (kept if there)."""
    rest = m.group(2)
    return m.group(0) if _SQLMIGRATE_NO_TX.search(rest) else f"{m.group(1)} notransaction{rest}"


def _no_transaction(m: re.Match[str]) -> str:
    """dbmate's up marker with `transaction:false` (kept if there)."""
    rest = m.group(2)
    return m.group(0) if _DBMATE_NO_TX.search(rest) else f"{m.group(1)} transaction:false{rest}"


def _take(chunk: str, state: str, up: list[str], down: list[str]) -> None:
    """`chunk` into its half, and blanked into the other."""
    blank = re.sub(r"[^\n]", " ", chunk)
    up.append(chunk if state == "up" else blank)
    down.append(chunk if state == "down" else blank)


def is_down_file(path: Path, siblings: Sequence[Path] = ()) -> bool:
    """Whether a file of a migrations folder is a down (or verify) migration that the
    tools run only to roll back: `*.down.sql`, a `down.sql` next to an `up.sql`, a Flyway
    `U<version>__` file next to `V` files, sqitch's `revert/` and `verify/` scripts."""
    name = path.name
    if name.lower().endswith(".down.sql"):
        return True
    if name.lower() == "down.sql" and (path.parent / "up.sql").exists():
        return True
    if _FLYWAY_UNDO.fullmatch(name) and any(s.name.startswith("V") for s in siblings):
        return True
    return any(
        part in _SQITCH_OTHER and (Path(*path.parts[:i]) / "deploy").is_dir()
        for i, part in enumerate(path.parts[:-1])
        if i > 0
    )


def down_file_of(path: Path) -> Path | None:
    """The down migration that undoes the up migration `path`, if it exists."""
    name = path.name
    candidates: list[Path] = []
    if name.lower().endswith(".up.sql"):
        candidates.append(path.with_name(name[: -len(".up.sql")] + ".down.sql"))
    elif name.lower() == "up.sql":
        candidates.append(path.with_name("down.sql"))
    elif re.match(r"V\d", name):
        candidates.append(path.with_name("U" + name[1:]))
    if path.parent.name == "deploy":
        candidates.append(path.parent.parent / "revert" / name)
    return next((c for c in candidates if c.is_file()), None)


def down_facts(up: Sequence[ParsedStatement], down_text: str, path: str) -> tuple[ColumnFact, ...]:
    """What the down half says each column was before the up half changed its type: one
    fact before the first up statement that changes the column's type, when the down half
    sets that column's type exactly once (more is ambiguous). Unparsable down SQL says
    nothing."""
    try:
        down = parse(down_text, path)
    except PgwardenError:
        return ()
    said: dict[tuple[str | None, str, str], list[str]] = {}
    for st in down:
        for key, typ in _type_changes(st):
            said.setdefault(key, []).append(typ)
    facts: list[ColumnFact] = []
    done: set[tuple[str | None, str, str]] = set()
    for i, st in enumerate(up):
        for key, _ in _type_changes(st):
            old = said.get(key, [])
            if key in done or len(old) != 1 or not old[0]:
                continue
            done.add(key)
            schema, table, column = key
            facts.append(ColumnFact(table, schema, column, old[0], None, i))
    return tuple(facts)


def _type_changes(st: ParsedStatement) -> list[tuple[tuple[str | None, str, str], str]]:
    """((schema, table, column), new type in `type_text` form) of each `ALTER COLUMN ...
    TYPE` of an ALTER TABLE statement."""
    body = st.tree.get("AlterTableStmt")
    if body is None or body.get("objtype", "OBJECT_TABLE") != "OBJECT_TABLE":
        return []
    rel = body["relation"]
    out = []
    for c in body.get("cmds") or ():
        cmd = c.get("AlterTableCmd", {})
        if cmd.get("subtype") != "AT_AlterColumnType":
            continue
        tn = cmd.get("def", {}).get("ColumnDef", {}).get("typeName")
        if tn is not None and cmd.get("name"):
            key = (rel.get("schemaname"), str(rel["relname"]), str(cmd["name"]))
            out.append((key, type_text(tn)))
    return out
