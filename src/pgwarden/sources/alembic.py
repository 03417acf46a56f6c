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

Alembic is an optional dependency: it is imported inside the functions.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgwarden.analysis.parse import ParsedStatement, parse
from pgwarden.errors import InputError, UsageError
from pgwarden.plan import Plan, SourceText, Step, TxMode, build_plan

if TYPE_CHECKING:
    from pgwarden.analysis.catalog import Catalog

__all__ = [
    "AlembicSources",
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
class AlembicSources:
    """The revisions' statements, in run order, and which steps are Alembic's own."""

    sources: tuple[Source, ...]
    revisions: tuple[str, ...]
    version_table: str = "alembic_version"

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
        self.events: list[tuple[str, object]] = []  # ("rev", _Revision) | ("sql", tuple)

    def _revision_frame(self) -> tuple[str | None, int | None]:
        frame = sys._getframe(2)
        while frame is not None:
            fname = frame.f_code.co_filename
            if fname in self._paths:
                return fname, frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return None, None

    def write(self, s: str) -> int:
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


def _display(path: str) -> str:
    """`path` relative to the working directory when it lies under it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _kind(stmt: ParsedStatement) -> str:
    return stmt.tree.get("TransactionStmt", {}).get("kind", "")


def _assemble(cap: _Capture) -> list[Source]:
    """Attribute each written statement to a revision; compute statement offsets."""
    if not cap.revisions:
        return []
    order = cap.revisions
    per: dict[int, list[ParsedStatement]] = {id(r): [] for r in order}
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
        sql, line, fname = payload  # type: ignore[misc]
        stmts = parse(sql, "<alembic>")
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
    sources = [(SourceText(r.path, r.text), per[id(r)]) for r in order]
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
    elif not cfg.get_main_option("sqlalchemy.url"):
        cfg.set_main_option("sqlalchemy.url", "postgresql://")
    return cfg


def current_revisions(database_url: str, version_table: str = "alembic_version") -> list[str]:
    """The revisions recorded in the database's version table (empty: at base)."""
    from psycopg import sql

    from pgwarden.pg.connect import connect

    with connect(database_url, application_name="pgwarden-alembic") as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (version_table,)).fetchone()
        if not (row and row[0]):
            return []
        rows = conn.execute(
            sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(version_table))
        ).fetchall()
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
) -> AlembicSources:
    """Each revision of `revision_range` (default base:heads) as SQL, via Alembic's offline mode.

    With `unapplied`, the range starts at the revision in `database_url`'s
    alembic_version table (read-only).
    """
    require_alembic()
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if unapplied and revision_range:
        raise UsageError("give either --range or --unapplied, not both")
    if unapplied and not database_url:
        raise UsageError(
            "--unapplied needs the database",
            hint="pass --database-url or set PGWARDEN_DATABASE_URL",
        )
    cfg = _config(ini, None, None)
    script = ScriptDirectory.from_config(cfg)
    cap = _Capture(script)
    cfg.output_buffer = cap
    if unapplied:
        assert database_url is not None
        current = current_revisions(database_url)
        if len(current) > 1:
            raise UsageError(
                f"the database is at {len(current)} heads ({', '.join(current)})",
                hint="lint each branch with --range REV:head",
            )
        start = current[0] if current else "base"
        if start != "base" and script.get_current_head() == start:
            return AlembicSources((), ())
        revision_range = f"{start}:heads"
    rng = revision_range or "base:heads"
    if ":" not in rng:
        rng = f"base:{rng}"
    try:
        command.upgrade(cfg, rng, sql=True)
    except CommandError as exc:
        raise UsageError(f"alembic: {exc}", hint="check --range and the revision ids") from None
    sources = _assemble(cap)
    return AlembicSources(tuple(sources), tuple(r.revision for r in cap.revisions))


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
