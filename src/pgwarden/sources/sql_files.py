"""Plain `.sql` files and folders of them (in version order) as plan sources."""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from stat import S_ISDIR
from typing import BinaryIO

from pgwarden.analysis.parse import ParsedStatement, Trees, parse
from pgwarden.errors import InputError, SqlParseError, UsageError
from pgwarden.plan import SourceText
from pgwarden.sources.flyway import (
    is_flyway_file,
    non_transactional,
    script_config_no_transaction,
)
from pgwarden.sources.liquibase import changesets
from pgwarden.sources.placeholders import quote_placeholders
from pgwarden.sources.psql import blank_meta_commands
from pgwarden.sources.updown import (
    down_facts,
    down_file_of,
    is_down_file,
    runner_holds_transaction,
    sent_as_one_query,
    split_halves,
    split_queries,
    statements_apart,
    wrapping_tool,
)

__all__ = [
    "MAX_FILE_BYTES",
    "STDIN",
    "collect_sql_files",
    "decode_sql",
    "is_sql_file",
    "migration_order",
    "read_source",
    "read_sources",
    "read_sql_file",
]

MAX_FILE_BYTES = 64 * 1024 * 1024
STDIN = "<stdin>"  # the source name of `-`
# Errors that `Path.exists()` and `is_dir()` read as "not there" (pathlib._ignore_error).
_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


_DIGITS = re.compile(r"(\d+)")
_FLYWAY = re.compile(r"V(\d+(?:[._]\d+)*)__")


def migration_order(path: Path) -> tuple[object, ...]:
    """Sort key of a file in a folder of migrations (and its sub-folders).

    Flyway's `V<version>__` files come first, by version whatever sub-folder holds them
    (V1 < sub/V2 < V10; V1 < V1_1 < V2), as Flyway orders its locations; then every other
    file, folder by folder (a folder's files and its sub-folders in name order); then
    Flyway's repeatable `R__` files, by description, as Flyway runs them. Numbers in names
    compare as numbers (V2 before V10; zero-padded names keep their order)."""
    parts = tuple((_natural(part), part) for part in path.parts)
    name = path.name
    if name.startswith("R__"):  # repeatable: after every other, by description
        return (2, _natural(name), name, parts)
    flyway = _FLYWAY.match(name)
    if flyway is not None:
        return (0, tuple(int(n) for n in re.split(r"[._]", flyway.group(1))), parts)
    return (1, parts)


def _natural(text: str) -> tuple[str | int, ...]:
    """`text` with its runs of digits as numbers: "V10__a" -> ("V", 10, "__a")."""
    return tuple(int(r) if j % 2 else r for j, r in enumerate(_DIGITS.split(text)))


# `.sql` in any case (`V3__x.SQL`), and Synapse's PostgreSQL-only deltas (`*.sql.postgres`;
# its `*.sql.sqlite` twins run on SQLite only)
_SQL_ENDINGS = (".sql", ".sql.postgres")


def is_sql_file(path: Path) -> bool:
    """Whether a file found in a folder is SQL: `.sql` in any case (`V3__x.SQL`), or a
    Synapse delta run on PostgreSQL only (`02_x.sql.postgres`)."""
    return path.name.lower().endswith(_SQL_ENDINGS) and path.is_file()


def collect_sql_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders into their `.sql` (or `.SQL`) files (recursively, in
    `migration_order`)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        mode = _mode(p)
        if mode is not None and S_ISDIR(mode):
            entries = sorted(p.rglob("*"))
            _refuse_broken_links(entries)
            every = [q for q in entries if is_sql_file(q)]
            # the down (rollback) halves of up/down pairs run only to roll back: not linted
            found = sorted((q for q in every if not is_down_file(q, every)), key=migration_order)
            if not found:
                raise InputError(
                    f"{p}: folder holds no .sql files",
                    hint="pass .sql files or a folder that contains them",
                    path=str(p),
                )
            _refuse_repeated_versions(p, found)
            out.extend(found)
        elif mode is not None:
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or directory", hint="check the path", path=str(p))
    return out


def _refuse_broken_links(entries: list[Path]) -> None:
    """A `.sql` of a folder that links to nothing is refused, naming its target: the
    migration tool fails on it, and passing over it would leave it unlinted unsaid."""
    for q in entries:
        if q.name.lower().endswith(_SQL_ENDINGS) and q.is_symlink() and not q.exists():
            raise InputError(
                f"{q}: symbolic link to {os.readlink(q)}, which does not exist",
                hint="restore the file it links to (or remove the link); the migration tool "
                "cannot read it either",
                path=str(q),
            )


def _refuse_repeated_versions(folder: Path, files: list[Path]) -> None:
    """Flyway refuses two migrations of one version (V2 and sub/V2, V1 and V1.0): so does
    pgwarden, naming them, rather than pick an order by path."""
    seen: dict[tuple[int, ...], Path] = {}
    for f in files:
        flyway = _FLYWAY.match(f.name)
        if flyway is None:
            continue
        numbers = [int(n) for n in re.split(r"[._]", flyway.group(1))]
        while len(numbers) > 1 and numbers[-1] == 0:  # 1.0 is version 1
            numbers.pop()
        first = seen.setdefault(tuple(numbers), f)
        if first is not f:
            version = _FLYWAY.match(first.name)
            assert version is not None
            names = ", ".join(q.relative_to(folder).as_posix() for q in (first, f))
            raise InputError(
                f"{folder}: more than one migration of Flyway version {version.group(1)}: {names}",
                hint="rename one to the next free version, as Flyway would also refuse them",
                path=str(f),
            )


def _mode(path: Path) -> int | None:
    """The file mode of `path` (None: it does not exist), as `is_dir()` and `exists()` see
    it, from one stat."""
    try:
        return path.stat().st_mode
    except OSError as exc:
        if exc.errno not in _MISSING:
            raise
    except ValueError:  # a name the OS cannot hold (a NUL byte)
        pass
    return None


def read_sql_file(path: Path) -> str:
    """The file's text; one clear `InputError` for anything unreadable."""
    try:
        with open(path, "rb") as file:
            return decode_sql(_read(file, path), str(path))
    except PermissionError:
        raise InputError(
            f"{path}: permission denied", hint="make the file readable", path=str(path)
        ) from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory", path=str(path)) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}", path=str(path)) from None


def _read(file: BinaryIO, path: Path) -> bytes:
    """The bytes of an open file, refused before reading when larger than MAX_FILE_BYTES."""
    size = os.fstat(file.fileno()).st_size
    if size > MAX_FILE_BYTES:
        raise InputError(
            f"{path}: file is {size / 1048576:.0f} MiB, larger than the "
            f"{MAX_FILE_BYTES // 1048576} MiB pgwarden reads",
            hint="split the migration into smaller files; a migration this large "
            "is usually a data load, which belongs in COPY, not in a migration",
            path=str(path),
        )
    return file.read()


def _utf16(data: bytes) -> bool:
    """Whether `data` is UTF-16 text: a byte order mark, or (little-endian without one)
    a NUL after every character of its first line's ASCII."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    head = data[:64]
    return len(head) >= 4 and not any(head[1::2]) and all(head[0::2])


def decode_sql(data: bytes, name: str) -> str:
    """SQL text from bytes (a file's, or standard input's); `InputError` if it is not text."""
    if _utf16(data):
        raise InputError(
            f"{name}: UTF-16 text (as Windows PowerShell's > and Out-File write it), not UTF-8",
            hint="convert it to UTF-8: `iconv -f utf-16 -t utf-8`, or in PowerShell "
            "`Get-Content FILE | Set-Content -Encoding utf8 NEWFILE`",
            path=name,
        )
    if b"\0" in data:
        raise InputError(
            f"{name}: binary file (contains NUL bytes), not SQL",
            hint="pass the migration's .sql text file",
            path=name,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{name}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8`",
            path=name,
        ) from None
    return text.removeprefix("\ufeff")


def read_sources(
    paths: Iterable[str | os.PathLike[str]],
    *,
    unparsed: list[SqlParseError] | None = None,
    up_sql_runner: str | None = None,
) -> list[tuple[SourceText, list[ParsedStatement]]]:
    """Each .sql file of `paths` (folders in name order; `-`: standard input), read and
    parsed. With `unparsed`, a file the grammar rejects is left out and its error added
    there (lint goes on with the other files); without, the error is raised.
    `up_sql_runner`: the tool that runs `*.up.sql` files, as the configuration says."""
    paths = list(paths)
    if not paths:
        raise UsageError("no SQL files given", hint="pass one or more .sql files or folders")
    out: list[tuple[SourceText, list[ParsedStatement]]] = []
    trees: Trees = {}  # a statement repeated across files is parsed once
    for raw in paths:
        if str(raw) == "-":  # standard input, read once
            # Closed (fd 0 closed: sys.stdin is None) reads as /dev/null, as the CLI's
            # pgwarden.cli.interaction.stdin does (that layer is above this one).
            data = b"" if sys.stdin is None else sys.stdin.buffer.read()
            texts = [(STDIN, decode_sql(data, STDIN))]
        else:
            texts = [(str(p), read_sql_file(p)) for p in collect_sql_files([raw])]
        for name, written in texts:
            try:  # a psql meta-command refused (UnreadableSql) or a syntax error
                out.append(read_source(name, written, trees=trees, up_sql_runner=up_sql_runner))
            except SqlParseError as exc:
                if unparsed is None:
                    raise
                unparsed.append(exc)
    return out


def read_source(
    name: str,
    written: str,
    *,
    trees: Trees | None = None,
    up_sql_runner: str | None = None,
) -> tuple[SourceText, list[ParsedStatement]]:
    """The file `name` whose text is `written`, read and parsed as its migration tool runs
    it (its halves, markers, placeholders, psql meta-commands, one query or not).
    Raises SqlParseError for SQL the grammar rejects, InputError for a file of no SQL."""
    blanked, psql = blank_meta_commands(written, name)
    text, placeholders = quote_placeholders(blanked)
    halves = split_halves(text)
    stmts = parse(halves.up, name, trees=trees)
    if not stmts:
        raise InputError(
            f"{name}: no SQL statements (the file is empty or only comments)",
            hint="remove the file or add the migration's statements",
            path=name,
        )
    down = halves.down if halves.down is not None else _down_file_text(name)
    facts = down_facts(stmts, down, name) if down else ()
    # one query of one statement: outside any transaction block; a Flyway migration
    # with a statement Flyway runs outside one runs without one (or is refused)
    one_query = sent_as_one_query(name, text, up_sql_runner)
    split_parts = statements_apart(name, text, up_sql_runner)
    wrapped_by = wrapping_tool(name, text, up_sql_runner) or ""
    alone = (len(stmts) == 1 and one_query) or (
        is_flyway_file(name)
        and (any(non_transactional(s.tree) for s in stmts) or script_config_no_transaction(name))
    )
    source = SourceText(
        name,
        text,
        facts,
        # (a no-transaction file sent as one query of several statements: one
        # implicit transaction, as sqlx's `-- no-transaction` file is)
        (halves.no_transaction and not (one_query and len(stmts) > 1)) or alone or split_parts,
        changesets(text),
        placeholders,
        psql,
        runner_transaction=runner_holds_transaction(name, text) or bool(wrapped_by),
        one_query=one_query,
        split_parts=split_parts,
        wrapped_by=wrapped_by,
        query_parts=split_queries(text, [s.start for s in stmts]) if split_parts else (),
    )
    return source, stmts


def _down_file_text(name: str) -> str | None:
    """The text of the down migration paired with file `name` (None: none, or unreadable;
    it only ever adds what a column was)."""
    if name == STDIN:
        return None
    down = down_file_of(Path(name))
    if down is None:
        return None
    try:
        return read_sql_file(down)
    except InputError:
        return None
