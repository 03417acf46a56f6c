"""Alembic revisions as plan sources: each revision's offline (`--sql`) SQL, in-process.

Alembic runs the revisions' `upgrade()` in offline mode (as `alembic upgrade
--sql` does) with an output buffer of ours. Every statement Alembic writes is
attributed to the revision it belongs to and, where the write happens inside
the revision's code, to the line of the `op.*` call that produced it (read from
the call stack at the moment of the write). Other statements are Alembic's own:
transaction control and the version-table bookkeeping.

A revision becomes one `SourceText` whose path is the revision file and whose
text is the revision's Python source; each statement's offset points at the
`op.*` call line (or `def upgrade`), so findings read `versions/abc_add_fk.py:14`.

Alembic's offline SQL carries its own BEGIN/COMMIT: one pair per revision with
`transaction_per_migration = True`, else one pair around the whole run, and
COMMIT/BEGIN around `op.get_context().autocommit_block()`. `build_alembic_plan`
threads those across revisions, so the plan's transactions are the ones
Alembic would run.

What the database already ran (its alembic_version, from a stats snapshot or
read live) is left out of the range. A revision whose code fails offline (it
reads data or inspects the connection) is dropped with its statements and the
rest of the range is rendered after it; both are listed in `skipped`. For apply
(`online`), such a revision becomes one step of its own transaction, run online
by Alembic inside the guarded executor (`pgwarden.sources.alembic_online`).

`--range A:B` means what `alembic upgrade A:B --sql` means: the database is at
A, so A itself is not taken; a note says so, naming A.

Each `alter_column` (also in `batch_alter_table`, which runs without recreating
the table on PostgreSQL) that names the column's `existing_type` becomes a
`ColumnFact` of its revision, before the statement it writes first: without a
catalog the lock model then knows the current type, and a type change is graded
exactly (varchar(100) to varchar(255) in place, int to bigint a rewrite).

Alembic is an optional dependency: it is imported inside the functions.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pgwarden.analysis.inplan import ColumnFact, fact_type
from pgwarden.analysis.parse import ParsedStatement, parse
from pgwarden.errors import InputError, Refused, SqlParseError, UsageError
from pgwarden.location import SourceLocation
from pgwarden.plan import Plan, SourceText, Step, TxMode, build_plan
from pgwarden.sources import alembic_batch
from pgwarden.sources.alembic_online import OnlineRevision, Runner, online_runner, placeholder_sql

if TYPE_CHECKING:
    from pgwarden.analysis.catalog import Catalog

__all__ = [
    "AlembicSources",
    "AppliedInRange",
    "OfflineRenderError",
    "Source",
    "build_alembic_plan",
    "current_revisions",
    "read_alembic_sources",
    "require_alembic",
    "thread_transactions",
]

Source = tuple[SourceText, list[ParsedStatement]]

_RUNNING = re.compile(r"^-- Running (upgrade|downgrade) (.*?) -> (.*?)\s*$", re.M)
_DEF_UPGRADE = re.compile(r"^def upgrade\s*\(", re.M)
_DEF_DOWNGRADE = re.compile(r"^def downgrade\s*\(", re.M)


def require_alembic() -> None:
    """Raise a clear `UsageError` when Alembic is not installed."""
    try:
        import alembic  # noqa: F401
    except ImportError:
        raise UsageError(
            "Alembic is not installed", hint="pip install 'pgwarden[alembic]'"
        ) from None


@dataclass(slots=True)
class _Revision:
    revision: str
    path: str
    text: str
    direction: str
    stmts: list[ParsedStatement] = field(default_factory=list)
    lines: list[int] | None = None  # character offset of each line start

    def offset_of_line(self, line: int) -> int:
        if self.lines is None:
            starts = [0]
            pos = self.text.find("\n")
            while pos != -1:
                starts.append(pos + 1)
                pos = self.text.find("\n", pos + 1)
            self.lines = starts
        line = max(1, min(line, len(self.lines)))
        start = self.lines[line - 1]
        end = self.text.find("\n", start)
        row = self.text[start : end if end != -1 else len(self.text)]
        return start + (len(row) - len(row.lstrip()))

    def fallback_offset(self) -> int:
        pat = _DEF_UPGRADE if self.direction == "upgrade" else _DEF_DOWNGRADE
        m = pat.search(self.text)
        return m.start() if m else 0


@dataclass(frozen=True, slots=True)
class SkippedRevision:
    """A revision of the range that is not in the plan, and why."""

    revision: str
    path: str
    # "applied" (the database ran it), "offline" (cannot render offline: not linted),
    # "online" (cannot render offline: apply runs it online), "start" (the range's start)
    why: str
    detail: str


class OfflineRenderError(Refused):
    """A revision reads data or inspects the connection: Alembic cannot render it offline."""

    def __init__(self, revision: str, path: str, cause: BaseException, *, hint: str) -> None:
        super().__init__(
            f"{path}: revision {revision} cannot be rendered offline: it reads data or "
            f"inspects the connection ({type(cause).__name__}: {cause})",
            hint=hint,
        )
        self.revision = revision
        self.path = path
        self.cause = cause


class AppliedInRange(Refused):
    """The revision range includes revisions the database already ran."""


@dataclass(frozen=True, slots=True)
class AlembicSources:
    """The revisions' statements, in run order, and which steps are Alembic's own."""

    sources: tuple[Source, ...]
    revisions: tuple[str, ...]
    version_table: str = "alembic_version"  # as env.py configures it (its name, no schema)
    # Revisions of the range left out (or run online), each with why: see SkippedRevision.
    skipped: tuple[SkippedRevision, ...] = ()
    # Revisions apply runs online, and the callables the executor runs for their steps
    # (keyed by the step's placeholder SQL; see pgwarden.apply RunOptions.runners).
    online: tuple[OnlineRevision, ...] = ()
    runners: Mapping[str, Runner] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # other things the user must know about the range

    def notes(self) -> list[str]:
        """One line per skipped revision (or group of applied ones) for the user."""
        applied = [s for s in self.skipped if s.why == "applied"]
        lines = [*self.warnings, *(s.detail for s in self.skipped if s.why == "start")]
        if applied:
            ids = ", ".join(s.revision for s in applied)
            lines.append(f"skipped {len(applied)} applied revision(s) ({ids}): {applied[0].detail}")
        lines += [s.detail for s in self.skipped if s.why in ("offline", "online")]
        return lines

    def is_bookkeeping(self, step: Step) -> bool:
        """Whether `step` is Alembic's version-table SQL (not the user's migration)."""
        tree = step.tree
        body = (
            tree.get("CreateStmt")
            or tree.get("InsertStmt")
            or tree.get("UpdateStmt")
            or tree.get("DeleteStmt")
        )
        return body is not None and body.get("relation", {}).get("relname") == self.version_table


class _Capture(io.StringIO):
    """Alembic's output buffer: each write is one statement (or a `-- Running` marker)."""

    def __init__(self, script_dir: Any) -> None:
        super().__init__()
        self._script = script_dir
        self._paths: dict[str, str] = {}  # resolved file path -> revision id, for lookup
        self.revisions: list[_Revision] = []
        self.pending: list[tuple[str, int | None, str | None]] = []  # (sql, line, file)
        # ("rev", _Revision) | ("sql", (sql, line, file)) | ("fact", ColumnFact)
        # | ("enum", name)
        self.events: list[tuple[str, object]] = []
        self.skip_begin = False
        self._fact_frame: Any = None  # the alter_column call the last fact came from

    def _revision_frame(self) -> tuple[str | None, int | None]:
        """The revision file and line the write comes from; notes the column's existing
        type when the write is inside an `alter_column` that names it."""
        frame = sys._getframe(2)
        call = named = None  # outermost alter_column frames: any, and one naming the type
        while frame is not None:
            code = frame.f_code
            fname = code.co_filename
            # a batch operation runs when its `with` block ends: its line is where it was queued
            queued = [at for at in alembic_batch.origin(frame) if at[0] in self._paths]
            if queued or fname in self._paths:
                if named is not None and call is not self._fact_frame:
                    self._fact_frame = call  # its other statements follow this one
                    fact = _existing_column(named.f_locals)
                    if fact is not None:
                        self.events.append(("fact", fact))
                    self.events.extend(("enum", e) for e in _enum_names(named.f_locals))
                return queued[0] if queued else (fname, frame.f_lineno)
            if code.co_name == "alter_column":  # op proxy, AlterColumnOp, toimpl, impl
                call = frame
                if "existing_type" in code.co_varnames:
                    named = frame
            frame = frame.f_back  # type: ignore[assignment]
        return None, None

    def drop_failed(self, since_event: int) -> _Revision | None:
        """Forget the revision that failed after `since_event` (None: none started).

        Its statements go, with the BEGIN (and version-table CREATE) Alembic wrote for
        it; a transaction the earlier revisions left open stays open, and the BEGIN
        of the next run is then not written twice.
        """
        marks = [i for i, (what, _) in enumerate(self.events) if what == "rev"]
        if not marks or marks[-1] < since_event:
            return None
        cut = marks[-1]
        failed = self.events[cut][1]
        assert isinstance(failed, _Revision)
        while cut > 0 and self.events[cut - 1][0] == "sql":
            payload = cast("tuple[str, int | None, str | None]", self.events[cut - 1][1])
            sql, fname = payload[0], payload[2]
            stmts = parse(sql, "<alembic>")
            opens = bool(stmts) and (
                _kind(stmts[0]) in ("TRANS_STMT_BEGIN", "TRANS_STMT_START")
                or stmts[0].kind == "CreateStmt"
            )
            if fname is not None or not opens:
                break
            cut -= 1
        del self.events[cut:]
        self.revisions.remove(failed)
        self.skip_begin = self._open()
        return failed

    def add_online(self, rev: _Revision, statement: str) -> None:
        """`rev` (dropped by `drop_failed`) as one transaction of its own: `statement`.

        A transaction the revisions before it left open is committed first.
        """
        if self._open():
            self.events.append(("sql", ("COMMIT;", None, None)))
        self.revisions.append(rev)
        self.events.append(("rev", rev))
        for text in ("BEGIN;", statement + ";", "COMMIT;"):
            self.events.append(("sql", (text, None, rev.path)))
        self.skip_begin = False

    def _open(self) -> bool:
        depth = False
        for what, payload in self.events:
            if what != "sql":
                continue
            for st in parse(payload[0], "<alembic>"):  # type: ignore[index]
                kind = _kind(st)
                if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
                    depth = True
                elif kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK"):
                    depth = False
        return depth

    def write(self, s: str) -> int:
        if self.skip_begin and s.strip():
            self.skip_begin = False
            stmts = parse(s, "<alembic>")
            if stmts and _kind(stmts[0]) in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
                return len(s)  # the transaction the run before left open goes on
        m = _RUNNING.match(s.strip())
        if m is not None:
            direction, before, after = m.groups()
            rev_ids = after if direction == "upgrade" else before
            rev_id = rev_ids.split(",")[0].strip()
            sc = self._script.get_revision(rev_id)
            path = str(Path(sc.path).resolve())
            self._paths[sc.path] = rev_id
            self._paths[path] = rev_id
            text = Path(path).read_text(encoding="utf-8")
            rev = _Revision(rev_id, _display(path), text, direction)
            self.revisions.append(rev)
            self.events.append(("rev", rev))
            return len(s)
        if s.strip():
            fname, line = self._revision_frame()
            self.events.append(("sql", (s, line, fname)))
        return len(s)


@cache
def _pg_dialect() -> Any:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()  # type: ignore[no-untyped-call]


def _existing_column(names: Mapping[str, Any]) -> ColumnFact | None:
    """The column's current type and nullability an `alter_column` call names (its
    `existing_type`, compiled for PostgreSQL), or None when it names no usable type."""
    existing = names.get("existing_type")
    table, column, schema = names.get("table_name"), names.get("column_name"), names.get("schema")
    if existing is None or not isinstance(table, str) or not isinstance(column, str):
        return None
    from sqlalchemy import Enum, exc
    from sqlalchemy.types import to_instance

    try:
        written = to_instance(existing)
        if isinstance(written, Enum) and not written.native_enum:
            # VARCHAR as long as its longest value, not the column's declared length
            # (mlflow's runs.status: Enum(...) of 9 characters on a varchar(20))
            return None
        spelled = written.compile(dialect=_pg_dialect())
    except (exc.SQLAlchemyError, TypeError, ValueError, AttributeError):
        return None  # an Enum without a name, a type PostgreSQL's dialect cannot write
    typ = fact_type(str(spelled))
    if not typ:
        return None
    nullable = names.get("existing_nullable")
    return ColumnFact(
        table,
        schema if isinstance(schema, str) else None,
        column,
        typ,
        nullable if isinstance(nullable, bool) else None,
        0,  # placed by _assemble
    )


def _enum_names(names: Mapping[str, Any]) -> list[str]:
    """Names of the native enum types an `alter_column` call names as `type_` or
    `existing_type` (lower case, without schema)."""
    from sqlalchemy import Enum
    from sqlalchemy.types import to_instance

    found = []
    for key in ("type_", "existing_type"):
        try:
            typ = to_instance(names.get(key))
        except (TypeError, ValueError, AttributeError):
            continue
        name = getattr(typ, "name", None)
        if isinstance(typ, Enum) and typ.native_enum and isinstance(name, str) and name:
            found.append(name.lower())
    return found


def _display(path: str) -> str:
    """`path` relative to the working directory when it lies under it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _kind(stmt: ParsedStatement) -> str:
    return stmt.tree.get("TransactionStmt", {}).get("kind", "")


def _parse_error_at_line(rev: _Revision, line: int, exc: SqlParseError) -> SqlParseError:
    """`exc` (at a line and column of the SQL a revision wrote) located at the line of the
    revision file that wrote it, its position in that SQL kept in the message: lint's
    machine formats report it there (PW901), as they do a .sql file's."""
    rows = rev.text.splitlines()
    row = rows[line - 1] if 0 < line <= len(rows) else ""
    at = exc.location
    return SqlParseError(
        f"{exc.server_message} (in the SQL of revision {rev.revision}, at line {at.line} "
        f"column {at.column} of the SQL it runs)",
        SourceLocation(rev.path, line, len(row) - len(row.lstrip()) + 1),
    )


def _assemble(cap: _Capture) -> list[Source]:
    """Attribute each written statement to a revision; compute statement offsets."""
    if not cap.revisions:
        return []
    order = cap.revisions
    per: dict[int, list[ParsedStatement]] = {id(r): [] for r in order}
    facts: dict[int, list[ColumnFact]] = {id(r): [] for r in order}
    enums: dict[int, list[str]] = {id(r): [] for r in order}
    current: _Revision | None = None
    waiting: list[tuple[str, int | None, str | None]] = []  # before the next revision

    def place(rev: _Revision, sql: str, line: int | None, from_rev: bool) -> None:
        offset = rev.offset_of_line(line) if (from_rev and line) else rev.fallback_offset()
        for st in parse(sql, rev.path):
            st2 = ParsedStatement(st.text, offset, offset + 1, st.tree)
            per[id(rev)].append(st2)

    for what, payload in cap.events:
        if what == "rev":
            assert isinstance(payload, _Revision)
            current = payload
            for sql, line, fname in waiting:
                place(current, sql, line, fname is not None)
            waiting = []
            continue
        if what == "fact":  # before the statement its alter_column writes first
            assert isinstance(payload, ColumnFact)
            if current is not None:
                facts[id(current)].append(replace(payload, before=len(per[id(current)])))
            continue
        if what == "enum":
            assert isinstance(payload, str)
            if current is not None and payload not in enums[id(current)]:
                enums[id(current)].append(payload)
            continue
        sql, line, fname = payload  # type: ignore[misc]
        try:
            stmts = parse(sql, "<alembic>")
        except SqlParseError as exc:
            if current is None or fname is None or line is None:
                raise
            raise _parse_error_at_line(current, line, exc) from None
        # BEGIN and CREATE TABLE alembic_version belong to the revision that follows;
        # COMMIT and the version UPDATE/INSERT to the one that ran.
        opens = bool(stmts) and (
            _kind(stmts[0]) in ("TRANS_STMT_BEGIN", "TRANS_STMT_START")
            or stmts[0].kind == "CreateStmt"
        )
        if current is None or (fname is None and opens):
            waiting.append((sql, line, fname))
        else:
            place(current, sql, line, fname is not None)
    for sql, line, fname in waiting:  # trailing BEGIN without a revision (unusual)
        place(order[-1], sql, line, fname is not None)
    sources = [
        (SourceText(r.path, r.text, tuple(facts[id(r)]), enums=tuple(enums[id(r)])), per[id(r)])
        for r in order
    ]
    return sources


def _config(ini: str | os.PathLike[str], buffer: io.StringIO | None, url: str | None) -> Any:
    from alembic.config import Config

    path = Path(ini)
    if path.is_dir():
        path = path / "alembic.ini"
    if not path.is_file():
        raise InputError(
            f"{path}: no such Alembic config",
            hint="pass the path of alembic.ini (default: ./alembic.ini)",
            path=str(path),
        )
    cfg = Config(str(path), output_buffer=buffer)
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    elif (cfg.get_main_option("sqlalchemy.url") or "").strip(" \"'") == "":
        # empty (also `sqlalchemy.url = ""`): offline mode only needs the dialect
        cfg.set_main_option("sqlalchemy.url", "postgresql://")
    return cfg


def current_revisions(database_url: str, version_table: str = "alembic_version") -> list[str]:
    """The revisions recorded in the database's version table ("schema.table" or "table";
    empty: at base)."""
    from psycopg import sql

    from pgwarden.pg.connect import connect

    name = sql.SQL(".").join(sql.Identifier(p) for p in version_table.split(".", 1))
    with connect(database_url, application_name="pgwarden-alembic") as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name.as_string(conn),)).fetchone()
        if not (row and row[0]):
            return []
        rows = conn.execute(sql.SQL("SELECT version_num FROM {}").format(name)).fetchall()
        return sorted(str(r[0]) for r in rows)


def _sqlalchemy_url(dsn: str) -> str:
    """A SQLAlchemy URL for the psycopg 3 driver from a libpq URL or conninfo."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + dsn.split("://", 1)[1]
    if "://" in dsn:
        return dsn
    import psycopg.conninfo

    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    from sqlalchemy.engine import URL

    host = parts.pop("host", None)
    port = parts.pop("port", None)
    return URL.create(
        "postgresql+psycopg",
        username=str(parts.pop("user")) if "user" in parts else None,
        password=str(parts.pop("password")) if "password" in parts else None,
        host=str(host) if host and not str(host).startswith("/") else None,
        port=int(str(port)) if port else None,
        database=str(parts.pop("dbname")) if "dbname" in parts else None,
        query={k: str(v) for k, v in parts.items()}
        | ({"host": str(host)} if host and str(host).startswith("/") else {}),
    ).render_as_string(hide_password=False)


def read_alembic_sources(
    ini: str | os.PathLike[str] = "alembic.ini",
    *,
    revision_range: str | None = None,
    unapplied: bool = False,
    database_url: str | None = None,
    applied: Sequence[str] | None = None,
    applied_from: str = "the snapshot's alembic_version",
    strict: bool = False,
    sqlalchemy_url: str | None = None,
) -> AlembicSources:
    """Each revision of `revision_range` (default base:heads) as SQL, via Alembic's offline mode.

    What the database already ran is left out: `applied` (its alembic_version heads,
    e.g. from a stats snapshot; `applied_from` says where they come from), else with
    `unapplied` or `database_url` the database's own alembic_version (read-only).
    Without a range that gives the revisions after it, as `alembic upgrade heads`
    runs them. `sqlalchemy_url` (a libpq DSN or SQLAlchemy URL; default `database_url`)
    is the `sqlalchemy.url` env.py sees, for an alembic.ini that leaves it empty.

    A range that includes applied revisions, and a revision that cannot render
    offline (it reads data or inspects the connection), are left out and listed
    in `skipped`. With `strict` (apply) the first is refused, and the second is
    one step of its own transaction that the executor runs online through Alembic
    (`online`, `runners`).
    """
    require_alembic()

    if unapplied and revision_range:
        raise UsageError("give either --range or --unapplied, not both")
    if unapplied and not database_url and applied is None:
        raise UsageError(
            "--unapplied needs the database",
            hint="pass --database-url or set PGWARDEN_DATABASE_URL",
        )
    url = sqlalchemy_url or database_url
    sa_url = _sqlalchemy_url(url) if url else None
    cfg = _config(ini, None, sa_url)
    script = _script_directory(cfg, ini)
    warnings: list[str] = []
    current: list[str] | None = list(applied) if applied is not None else None
    if current is not None or database_url:
        table = _version_table(cfg, script)
        if database_url and (current is None or table != "alembic_version"):
            current, applied_from = (
                current_revisions(database_url, table),
                f"the database's {table}",
            )
        elif current is not None and table != "alembic_version":  # a snapshot records only that
            warnings.append(
                f"env.py keeps the revisions in {table}, and {applied_from} is not from it: "
                "every revision of the range is linted, as if none had run"
            )
            current = None
    cap = _Capture(script)
    cfg.output_buffer = cap
    rng = revision_range or "base:heads"
    if ":" not in rng:
        rng = f"base:{rng}"
    lower, upper = (part.strip() or "base" for part in rng.split(":", 1))
    skipped: list[SkippedRevision] = []
    if revision_range and lower not in ("base", *_heads(script)):
        skipped += _range_start(script, lower, upper, current, applied_from, strict)
    if current:  # several heads: branches the database ran, their merge not yet
        lower, ran = _after_applied(
            script, tuple(current), lower, upper, applied_from, strict and bool(revision_range)
        )
        skipped += ran
    at_end = upper in ("head", "heads") and set(lower.split(",")) <= _heads(script)
    if lower == upper or at_end:
        return AlembicSources((), (), skipped=tuple(skipped), warnings=tuple(warnings))
    rendered = _render(cfg, script, cap, lower, upper, strict)
    table = str(cfg.attributes.get(_VERSION_TABLE, "alembic_version"))
    skipped += rendered
    sources = _assemble(cap)
    online = tuple(
        OnlineRevision(
            s.revision, s.path, _down(script, s.revision), placeholder_sql(s.revision, s.path)
        )
        for s in rendered
        if s.why == "online"
    )
    return AlembicSources(
        tuple(sources),
        tuple(r.revision for r in cap.revisions),
        version_table=table.rsplit(".", 1)[-1],
        skipped=tuple(skipped),
        online=online,
        runners={
            o.sql: online_runner(ini, sa_url, o, version_table=table, script=script) for o in online
        },
        warnings=tuple(warnings),
    )


def _script_directory(cfg: Any, ini: str | os.PathLike[str]) -> Any:
    """The project's Alembic ScriptDirectory, every revision loaded; what Alembic cannot
    find or load is an InputError naming it (exit 2)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        script = ScriptDirectory.from_config(cfg)
    except CommandError as exc:  # script_location is not there
        raise InputError(
            f"alembic: {exc}",
            hint=f"script_location in {ini} is read relative to the directory you run from: "
            "run pgwarden where you run alembic",
            path=str(ini),
        ) from None
    _load(script)
    return script


def _load(script: Any) -> None:
    """Load every revision file now (Alembic loads them on first use), so that one Alembic
    cannot load is an error naming its file (exit 2), not an internal error."""
    import warnings

    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    again = "; `alembic history` fails on it the same way"
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            script.revision_map.heads  # noqa: B018 (builds the map: imports every revision)
        for w in said:  # loaded: Alembic's own warnings are shown as they would be
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    except SyntaxError as exc:
        where = f"{_display(exc.filename)}:{exc.lineno}" if exc.filename else "a revision"
        raise InputError(
            f"{where}: Alembic cannot load this revision: SyntaxError: {exc.msg}",
            hint="fix the revision file" + again,
            path=exc.filename,
        ) from None
    except KeyError as exc:  # a down_revision (or depends_on) naming no revision file
        named = "".join(f" ({w.message})" for w in said if "is not present" in str(w.message))
        raise InputError(
            f"alembic: revision {exc.args[0]!r} is a down_revision (or depends_on) of a "
            f"revision, but no revision file has that id{named}",
            hint="check the down_revision of the revision that names it" + again,
        ) from None
    except (RevisionError, CommandError) as exc:
        raise InputError(f"alembic: {exc}", hint="check the revision files" + again) from None
    except Exception as exc:  # the revision's own code (imports) failed as Alembic ran it
        where = _failing_file(exc, Path(script.dir))
        hint = "fix the revision file" + again
        if isinstance(exc, ImportError):
            hint = (
                "run pgwarden where you run alembic, with what the revision imports importable "
                "(alembic.ini's prepend_sys_path = ., or install the project's package)"
            )
        raise InputError(
            f"{where}: Alembic cannot load this revision: {type(exc).__name__}: {exc}",
            hint=hint,
            path=where,
        ) from None


def _failing_file(exc: BaseException, scripts: Path) -> str:
    """The file under the Alembic script directory where `exc` was raised, innermost."""
    import traceback

    scripts = scripts.resolve()  # Alembic's `%(here)s` keeps a `..` of the alembic.ini path
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename).resolve()
        if frame.filename.endswith(".py") and path.is_relative_to(scripts):
            return f"{_display(str(path))}:{frame.lineno}"
    return _display(str(scripts))


def _down(script: Any, revision: str) -> tuple[str, ...]:
    """What the version table holds right before `revision` runs (linear history)."""
    down = script.get_revision(revision).down_revision
    if down is None:
        return ()
    return tuple(sorted([down] if isinstance(down, str) else down))


def _range_start(
    script: Any,
    lower: str,
    upper: str,
    current: list[str] | None,
    applied_from: str,
    strict: bool,
) -> list[SkippedRevision]:
    """`--range A:B` starts after A, as `alembic upgrade A:B --sql` does: say so.

    When the database's alembic_version is known and has not reached A, the
    revisions up to A would never run: apply refuses, lint names them.
    """
    try:
        rev = script.get_revision(lower)
    except Exception:  # "head-1" and the like: Alembic resolves them in the range itself
        return []
    if rev is None or lower in ("head", "heads"):
        return []
    path = _display(str(rev.path))
    ids = list(reversed(_ids(script, lower, "base")))
    if current is not None:
        done = _ran(script, ",".join(current)) if current else set()
        missing = [r for r in ids if r not in done]
        if not missing:
            return []  # the database ran A: the range starts where it is
        what = (
            f"the range {lower}:{upper} starts after {lower} (as `alembic upgrade "
            f"{lower}:{upper} --sql`), but {applied_from} is {', '.join(current) or 'empty'}: "
            f"{len(missing)} revision(s) before the range never ran ({', '.join(missing)})"
        )
        if strict:
            raise AppliedInRange(
                what, hint="drop --range to apply the revisions after alembic_version"
            )
        return [SkippedRevision(lower, path, "start", what + "; they are not linted")]
    down = ", ".join(_down(script, lower)) or "base"
    return [
        SkippedRevision(
            lower,
            path,
            "start",
            f"--range {lower}:{upper} starts after {lower}, as `alembic upgrade {lower}:{upper} "
            f"--sql` does (the database is taken to be at {lower}): revision {lower} ({path}) "
            f"is not taken; --range {down}:{upper} includes it",
        )
    ]


def _heads(script: Any) -> set[str]:
    return set(script.get_heads())


def _revs(spec: str) -> str | tuple[str, ...]:
    """A range end as Alembic takes it: "a,b" (the heads of a database at several) is a tuple."""
    return tuple(spec.split(",")) if "," in spec else spec


def _ids(script: Any, upper: str, lower: str) -> list[str]:
    """Revision ids of lower:upper (lower excluded; "a,b": several heads), newest first."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return [sc.revision for sc in script.iterate_revisions(upper, _revs(lower))]
    except (CommandError, RevisionError) as exc:
        raise UsageError(f"alembic: {exc}", hint="check --range and the revision ids") from None


def _ran(script: Any, heads: str) -> set[str]:
    """Every revision a version table holding `heads` ("a,b") has run ("base": none)."""
    if heads == "base":
        return set()
    return {r for head in heads.split(",") for r in _ids(script, head, "base")}


def _start_of(script: Any, ran: set[str]) -> str:
    """What a version table holds after exactly the revisions `ran` ran: their heads."""
    below = {down for r in ran for down in _down(script, r)}
    return ",".join(sorted(r for r in ran if r not in below)) or "base"


def _after_applied(
    script: Any,
    heads: tuple[str, ...],
    lower: str,
    upper: str,
    applied_from: str,
    strict: bool,
) -> tuple[str, list[SkippedRevision]]:
    """The range's start moved past the database's `heads`, and the applied revisions it had."""
    current = ", ".join(heads)
    try:
        done = _ran(script, ",".join(heads))
    except UsageError:
        raise UsageError(
            f"{applied_from} is {current}, which is not a revision of this project",
            hint="check the alembic.ini (or --stats / --database-url) belongs to this database",
        ) from None
    wanted = _ids(script, upper, lower)
    ran = [r for r in reversed(wanted) if r in done]
    if not ran:
        return lower, []
    paths = {r: _display(str(script.get_revision(r).path)) for r in ran}
    detail = f"{applied_from} is {current}, so the database already ran them"
    if strict:
        raise AppliedInRange(
            f"the range {lower}:{upper} includes {len(ran)} revision(s) the database already "
            f"ran ({', '.join(ran)}): {applied_from} is {current}",
            hint="drop --range to apply the revisions after alembic_version, or start the "
            f"range at {','.join(heads)}",
        )
    in_range = any(head in wanted for head in heads)
    start = ",".join(heads) if in_range else upper  # else the whole range ran
    return start, [SkippedRevision(r, paths[r], "applied", detail) for r in ran]


def upgrade_with(config: Any, script: Any, revision: str, *, sql: bool = False) -> None:
    """`alembic.command.upgrade`, with a ScriptDirectory already loaded.

    Alembic's command loads every revision file again on each call; a range with
    several revisions that cannot render offline (each restarts the rendering, and
    apply runs each online) would load them a dozen times.
    """
    from alembic.runtime.environment import EnvironmentContext

    starting_rev: str | tuple[str, ...] | None = None
    if ":" in revision:
        start, revision = revision.split(":", 1)
        starting_rev = _revs(start)  # "a,b": a database at several heads

    def upgrade(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs(revision, rev)

    env = EnvironmentContext(
        config,
        script,
        fn=upgrade,
        as_sql=sql,
        starting_rev=starting_rev,
        destination_rev=revision,
    )
    if sql:
        _render_as_online(env)
    with env:
        script.run_env()


def _render_as_online(env: Any) -> None:
    """Make `env.configure()` (what env.py calls) render SQL as an online run sends it.

    An env.py's offline branch often gives only `literal_binds=True` (Flask-Migrate's does):
    SQLAlchemy then compiles for psycopg's `pyformat` paramstyle and writes each `%` of a
    revision's SQL as `%%` (`'100%'` becomes `'100%%'`, which apply would store). Alembic's
    own template asks for the `named` paramstyle, which escapes nothing; so does this, and
    it renders bound values inline (`literal_binds`), as SQL to run must have them.
    """
    import inspect

    configure = env.configure
    signature = inspect.signature(configure)

    def as_online(*args: Any, **kw: Any) -> None:
        given = signature.bind(*args, **kw).arguments
        extra = given.pop("kw", {})
        table = str(extra.get("version_table") or "alembic_version")
        schema = extra.get("version_table_schema")
        env.config.attributes[_VERSION_TABLE] = f"{schema}.{table}" if schema else table
        given["dialect_opts"] = {**(given.get("dialect_opts") or {}), "paramstyle": "named"}
        given["literal_binds"] = True
        configure(**given, **extra)

    env.configure = as_online


_VERSION_TABLE = "pgwarden.version_table"  # Config.attributes key: what env.py configured


def _version_table(cfg: Any, script: Any) -> str:
    """The version table env.py configures (`version_table`, `version_table_schema`:
    "schema.table" or "table"), found by running env.py offline with nothing to run.
    "alembic_version" when env.py fails here (the rendering says why)."""
    from alembic.runtime.environment import EnvironmentContext

    env = EnvironmentContext(
        cfg, script, fn=lambda _rev, _context: [], as_sql=True, destination_rev="base"
    )
    _render_as_online(env)
    buffer, cfg.output_buffer = cfg.output_buffer, io.StringIO()
    try:
        with env:
            script.run_env()
    except Exception:  # reported by the rendering that follows
        return "alembic_version"
    finally:
        cfg.output_buffer = buffer
    return str(cfg.attributes.get(_VERSION_TABLE, "alembic_version"))


def _render(
    cfg: Any, script: Any, cap: _Capture, lower: str, upper: str, strict: bool
) -> list[SkippedRevision]:
    """Run Alembic's offline upgrade of lower:upper into `cap`, leaving out what cannot render."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    wanted = _ids(script, upper, lower)
    skipped: list[SkippedRevision] = []
    start = lower
    while True:
        mark = len(cap.events)
        try:
            with alembic_batch.recording():
                upgrade_with(cfg, script, f"{start}:{upper}", sql=True)
            return skipped
        except Exception as exc:  # the revision's own code (or env.py) failed offline
            failed_exc = exc
        failed = cap.drop_failed(mark)
        if failed is None and isinstance(failed_exc, (CommandError, RevisionError)):
            raise UsageError(
                f"alembic: {failed_exc}", hint="check --range and the revision ids"
            ) from None
        if failed is None:
            raise InputError(
                "alembic failed in offline mode, before any revision ran (env.py or loading "
                f"the revision files): {type(failed_exc).__name__}: {failed_exc}",
                hint="`alembic upgrade head --sql` shows the same error; env.py must support "
                "offline mode (context.is_offline_mode())",
            ) from failed_exc
        if _broken(failed_exc):  # fails online too: no reading of data would help it
            where = _failing_file(failed_exc, Path(script.dir))
            raise InputError(
                f"{where}: revision {failed.revision} fails as Alembic runs it: "
                f"{type(failed_exc).__name__}: {failed_exc}",
                hint="fix the revision; `alembic upgrade --sql` (and an online upgrade) fail "
                "on it the same way",
                path=failed.path,
            ) from failed_exc
        err = OfflineRenderError(
            failed.revision,
            failed.path,
            failed_exc,
            hint="it is skipped; lint the rest, and review this revision by hand",
        )
        if strict:
            cap.add_online(failed, placeholder_sql(failed.revision, failed.path))
            detail = (
                f"{failed.path}: revision {failed.revision} cannot be rendered offline (it reads "
                "data or inspects the connection): it runs online through Alembic, as one "
                "guarded transaction of its own"
            )
            skipped.append(SkippedRevision(failed.revision, failed.path, "online", detail))
        else:
            skipped.append(SkippedRevision(failed.revision, failed.path, "offline", err.message))
        done = {r.revision for r in cap.revisions} | {s.revision for s in skipped}
        if not [r for r in wanted if r not in done]:
            return skipped
        # go on from there: the failed revision and every one rendered count as run (on
        # another branch too, which a restart from the failed revision alone would run again)
        start = _start_of(script, _ran(script, lower) | done)


def _broken(exc: BaseException) -> bool:
    """Whether a revision's failure while rendering is a bug of its own that fails online
    too (a name, or a module attribute, that is not there; an import), not offline mode's
    missing data (`'NoneType' object has no attribute 'fetchall'`, no inspection)."""
    if isinstance(exc, ImportError):
        return True
    if isinstance(exc, NameError):
        return not isinstance(exc, UnboundLocalError)
    return isinstance(exc, AttributeError) and str(exc).startswith("module ")


def thread_transactions(plan: Plan) -> Plan:
    """Re-derive transaction blocks from BEGIN/COMMIT across source boundaries.

    `build_plan` closes an open transaction at the end of each source; Alembic
    without `transaction_per_migration` opens one transaction for the whole run.
    """
    steps: list[Step] = []
    open_tx: int | None = None
    next_tx = 0
    for step in plan.steps:
        kind = step.tree.get("TransactionStmt", {}).get("kind", "")
        if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START") and open_tx is None:
            open_tx = next_tx
            next_tx += 1
        mode = TxMode.EXPLICIT if open_tx is not None else TxMode.AUTOCOMMIT
        steps.append(replace(step, transaction=open_tx, tx_mode=mode))
        if kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK", "TRANS_STMT_PREPARE"):
            open_tx = None
    return Plan(tuple(steps), plan.sources, plan.server_version, plan.texts, plan.assumptions)


def build_alembic_plan(
    sources: Sequence[Source],
    *,
    catalog: Catalog | None = None,
    server_version: int | None = None,
) -> Plan:
    """The plan of Alembic revisions, with Alembic's own transaction blocks."""
    return thread_transactions(
        build_plan(sources, catalog=catalog, server_version=server_version, file_transaction=False)
    )
