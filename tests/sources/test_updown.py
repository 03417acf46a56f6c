"""Up and down halves of goose, dbmate, golang-migrate, diesel, Flyway and sqitch migrations.

Only the up half is linted and applied; the down half says what a column was before the
up half changed its type. Each verdict taken from a down half is checked against what
the server does: the table's relfilenode is kept (in place) or not (rewritten).
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from pgwarden import commands
from pgwarden.analysis.parse import parse
from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.lint.fix import fix_plan, write_fixes
from pgwarden.rehearse.schema import earlier_migrations, resolve_schema
from pgwarden.settings import Environment, Settings
from pgwarden.sources.sql_files import collect_sql_files
from pgwarden.sources.updown import split_halves

SCHEMA = "CREATE TABLE users (id bigint PRIMARY KEY, email varchar(100) NOT NULL);\n"


def _goose(up: str, down: str, *, no_tx: bool = False) -> str:
    head = "-- +goose NO TRANSACTION\n" if no_tx else ""
    return (
        f"{head}-- +goose Up\n-- +goose StatementBegin\n{up}-- +goose StatementEnd\n\n"
        f"-- +goose Down\n-- +goose StatementBegin\n{down}-- +goose StatementEnd\n"
    )


def _codes(paths: list[Path], severity: str = "error") -> dict[tuple[str, int], set[str]]:
    """(file, line) -> codes of the findings of `severity` there."""
    _, result = commands.lint(paths)
    out: dict[tuple[str, int], set[str]] = {}
    for f in result.findings:
        if f.severity.value == severity:
            out.setdefault((Path(f.location.path).name, f.location.line), set()).add(f.code)
    return out


def _rewrites(dsn: str, up_sql: str) -> bool:
    """Whether running `up_sql` on a fresh users table gives it a new relfilenode."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS users")
        c.execute(SCHEMA.encode())
        c.execute("INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 100) g")
        before = c.execute("SELECT pg_relation_filenode('users')").fetchone()
        c.execute(up_sql.encode())
        after = c.execute("SELECT pg_relation_filenode('users')").fetchone()
    return before != after


def test_split_keeps_offsets_and_blanks_the_other_half() -> None:
    text = _goose("ALTER TABLE users ADD COLUMN a int;\n", "ALTER TABLE users DROP COLUMN a;\n")
    halves = split_halves(text)
    assert len(halves.up) == len(text) == len(halves.down or "")
    assert "ADD COLUMN" in halves.up and "DROP COLUMN" not in halves.up
    assert "DROP COLUMN" in (halves.down or "") and "ADD COLUMN" not in (halves.down or "")
    assert halves.up.count("\n") == text.count("\n")
    assert not halves.no_transaction and split_halves("SELECT 1;").down is None


@pytest.mark.parametrize(
    ("new", "rewrites"),
    [("varchar(200)", False), ("varchar(20)", True), ("text", False), ("int8", True)],
)
def test_goose_down_half_says_the_old_type(
    tmp_path: Path, db: str, new: str, rewrites: bool
) -> None:
    up = f"ALTER TABLE users ALTER COLUMN email TYPE {new} USING email::{new};\n"
    if new == "int8":
        up = "ALTER TABLE users ALTER COLUMN email TYPE bigint USING length(email);\n"
    path = tmp_path / "20260101_email.sql"
    path.write_text(_goose(up, "ALTER TABLE users ALTER COLUMN email TYPE varchar(100);\n"))
    errors = _codes([path])
    assert ("PW104" in errors.get((path.name, 3), set())) is rewrites, errors
    assert _rewrites(db, up) is rewrites  # what the server does
    assert not any(line > 4 for _, line in errors), errors  # nothing from the down half


def test_without_a_down_half_the_type_is_not_known(tmp_path: Path) -> None:
    path = tmp_path / "20260101_email.sql"
    path.write_text("ALTER TABLE users ALTER COLUMN email TYPE varchar(200);\n")
    assert "PW104" in _codes([path])[(path.name, 1)]


def test_dbmate_halves_and_transaction_false(tmp_path: Path) -> None:
    index = "CREATE INDEX CONCURRENTLY users_email ON users (email);\n"
    drop = "DROP INDEX CONCURRENTLY users_email;\n"
    wrapped = tmp_path / "20260101000000_a.sql"
    wrapped.write_text(f"-- migrate:up\n{index}\n-- migrate:down\n{drop}")
    alone = tmp_path / "20260102000000_b.sql"
    alone.write_text(f"-- migrate:up transaction:false\n{index}\n-- migrate:down\n{drop}")
    # dbmate runs the up half in a transaction unless told not to: CONCURRENTLY fails there,
    # for sure (the marker says the tool): an error naming dbmate's own marker
    assert "PW130" in _codes([wrapped])[(wrapped.name, 2)]
    _, result = commands.lint([wrapped])
    (f,) = [f for f in result.findings if f.code == "PW130"]
    assert "in a dbmate migration, which dbmate runs in a transaction" in f.message
    assert "-- migrate:up transaction:false" in f.help
    assert "PW130" not in str(_codes([alone], "warning")) and _codes([alone]) == {}


def test_goose_no_transaction(tmp_path: Path) -> None:
    index = "CREATE INDEX CONCURRENTLY users_email ON users (email);\n"
    path = tmp_path / "00002_index.sql"
    path.write_text(_goose(index, "DROP INDEX users_email;\n", no_tx=True))
    assert "PW130" not in str(_codes([path], "warning")) and _codes([path]) == {}
    path.write_text(_goose(index, "DROP INDEX users_email;\n"))
    assert "PW130" in str(_codes([path]))  # goose wraps it, for sure: an error


def _pair(folder: Path, name: str, up: str, down: str) -> None:
    (folder / f"{name}.up.sql").write_text(up)
    (folder / f"{name}.down.sql").write_text(down)


def test_golang_migrate_folder_lints_up_files_only(tmp_path: Path) -> None:
    _pair(tmp_path, "000001_users", SCHEMA, "DROP TABLE users;\n")
    _pair(
        tmp_path,
        "000002_email",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(20);\n",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(100);\n",
    )
    files = [p.name for p in collect_sql_files([tmp_path])]
    assert files == ["000001_users.up.sql", "000002_email.up.sql"]
    errors = _codes([tmp_path])
    assert set(errors) == {("000002_email.up.sql", 1)}  # narrowing: a rewrite; no DROP TABLE
    assert errors[("000002_email.up.sql", 1)] == {"PW104"}


def test_an_up_file_alone_takes_the_old_type_from_its_down_file(tmp_path: Path) -> None:
    _pair(
        tmp_path,
        "000002_email",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(200);\n",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(100);\n",
    )
    assert _codes([tmp_path / "000002_email.up.sql"]) == {}
    # a down file given by name is linted as given
    assert _codes([tmp_path / "000002_email.down.sql"]) != {}


def test_diesel_flyway_and_sqitch_down_files_are_skipped(tmp_path: Path) -> None:
    diesel = tmp_path / "diesel" / "2026-01-01-000000_users"
    diesel.mkdir(parents=True)
    (diesel / "up.sql").write_text(SCHEMA)
    (diesel / "down.sql").write_text("DROP TABLE users;\n")
    flyway = tmp_path / "flyway"
    flyway.mkdir()
    (flyway / "V1__users.sql").write_text(SCHEMA)
    (flyway / "U1__users.sql").write_text("DROP TABLE users;\n")
    sqitch = tmp_path / "sqitch"
    for part in ("deploy", "revert", "verify"):
        (sqitch / part).mkdir(parents=True)
    (sqitch / "deploy" / "users.sql").write_text(SCHEMA)
    (sqitch / "revert" / "users.sql").write_text("DROP TABLE users;\n")
    (sqitch / "verify" / "users.sql").write_text("SELECT id FROM users WHERE false;\n")
    for folder, kept in [
        (diesel.parent, "up.sql"),
        (flyway, "V1__users.sql"),
        (sqitch, "users.sql"),
    ]:
        assert [p.name for p in collect_sql_files([folder])] == [kept]
        assert _codes([folder]) == {}


def test_apply_runs_only_the_up_half(tmp_path: Path, db: str) -> None:
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA.encode())
    path = tmp_path / "00002_add.sql"
    path.write_text(
        _goose("ALTER TABLE users ADD COLUMN note text;\n", "ALTER TABLE users DROP COLUMN note;\n")
    )
    plan = commands.load_plan([path], file_transaction=True)
    apply_plan(
        plan,
        database_url=db,
        settings=Settings(environments={"staging": Environment("staging")}),
        policy=GuardPolicy(env="staging"),
    )
    with psycopg.connect(db, autocommit=True) as c:
        got = c.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'users'::regclass "
            "AND attname = 'note' AND NOT attisdropped"
        ).fetchone()
    assert got == (1,)


def test_rehearse_history_is_the_earlier_up_halves_in_version_order(tmp_path: Path) -> None:
    _pair(tmp_path, "000001_users", SCHEMA, "DROP TABLE users;\n")
    (tmp_path / "000002_note.sql").write_text(
        _goose("ALTER TABLE users ADD COLUMN note text;\n", "DROP TABLE users;\n")
    )
    (tmp_path / "000010_plan.up.sql").write_text("ALTER TABLE users DROP COLUMN note;\n")
    (tmp_path / "000011_later.up.sql").write_text("SELECT 1;\n")
    plan = [tmp_path / "000010_plan.up.sql"]
    history = earlier_migrations(plan)
    assert [p.name for p in history] == ["000001_users.up.sql", "000002_note.sql"]
    schema = resolve_schema(plan).sql
    assert "ADD COLUMN note" in schema and "DROP TABLE" not in schema


def _fix(path: Path) -> str:
    plan, result = commands.lint([path])
    write_fixes(fix_plan(plan, result))
    return path.read_text()


def test_fix_of_a_goose_file_keeps_its_down_half_and_runs_twice(tmp_path: Path, db: str) -> None:
    down = (
        "-- +goose Down\n-- +goose StatementBegin\n"
        "DROP INDEX users_email_key;\n-- +goose StatementEnd\n"
    )
    path = tmp_path / "00003_unique.sql"
    path.write_text(
        "-- +goose Up\n-- +goose StatementBegin\n"
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);\n"
        f"-- +goose StatementEnd\n\n{down}"
    )
    fixed = _fix(path)
    assert fixed.endswith(down)  # the down half as it was
    assert "-- +goose NO TRANSACTION" in fixed  # goose must not wrap CONCURRENTLY
    up = split_halves(fixed).up
    stmts = [s.text for s in parse(up)]
    assert any("CONCURRENTLY" in s for s in stmts)
    # goose ends a statement at a line ending in ';': every such statement is one block
    for s in stmts:
        if re.search(r";\s*\n", s):
            block = up[up.rindex("-- +goose StatementBegin", 0, up.index(s)) :]
            assert block.index("-- +goose StatementEnd") > block.index(s), s
    _, result = commands.lint([path])
    assert not [f for f in result.findings if f.severity.value == "error"]
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA.encode())
        for _ in range(2):  # goose runs each statement on its own, no transaction around
            for s in stmts:
                c.execute(s.encode())
        valid = c.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_key'::regclass"
        ).fetchone()
        assert valid == (True,)


def test_fix_of_a_dbmate_file_runs_as_dbmate_sends_it(tmp_path: Path, db: str) -> None:
    """dbmate sends an up half marked `transaction:false` as one query (`db.Exec`, lib/pq's
    simple query; dbmate issues 126, 182, 285): a CONCURRENTLY statement runs there only
    alone. The fix turns the transaction off for its BEGIN ... COMMIT blocks and keeps the
    plain build, whose PW101 stays (before, it wrote SET, a DO block and CREATE INDEX
    CONCURRENTLY into that one query, which the server refuses)."""
    down = "-- migrate:down\nDROP INDEX users_email;\n"
    path = tmp_path / "20260103000000_index.sql"
    path.write_text(
        "-- migrate:up\nALTER TABLE users ADD COLUMN note text;\n"
        f"CREATE INDEX users_email ON users (email);\n\n{down}"
    )
    _, result = commands.lint([path])
    was = {f.code for f in result.findings}
    fixed = _fix(path)
    assert fixed.startswith("-- migrate:up transaction:false\n") and fixed.endswith(down)
    up = split_halves(fixed).up
    assert "CONCURRENTLY" not in up and "lock_timeout" in up
    _, result = commands.lint([path])
    assert "PW101" in {f.code for f in result.findings} < was  # PW120 fixed, nothing new
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(SCHEMA.encode())
        for _ in range(2):  # one query, as dbmate sends it; twice, as a retry does
            c.execute(up.encode())
        assert c.execute("SELECT to_regclass('users_email') IS NOT NULL").fetchone() == (True,)
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):  # what the old fix wrote
            c.execute(b"SET lock_timeout = '1s'; CREATE INDEX CONCURRENTLY e2 ON users (email);")


def test_postgres_migrations_and_dbmate_no_transaction_files_are_one_query(
    tmp_path: Path,
) -> None:
    """postgres-migrations sends a `disable-transaction` file with one client.query, dbmate
    a `transaction:false` up half with one db.Exec: alone, a CONCURRENTLY statement runs;
    beside another statement it fails for sure (PW130 error), and --fix leaves the file."""
    index = "CREATE INDEX CONCURRENTLY users_email ON users (email);\n"
    other = "ALTER TABLE users ADD COLUMN note text;\n"
    pm = tmp_path / "0080-index.sql"
    dbmate = tmp_path / "20260104000000_index.sql"
    for sql, severity in ((index, []), (other + index, ["error"])):
        pm.write_text("-- postgres-migrations disable-transaction\n" + sql)
        dbmate.write_text(f"-- migrate:up transaction:false\n{sql}\n-- migrate:down\n")
        for path in (pm, dbmate):
            _, result = commands.lint([path])
            assert [f.severity.value for f in result.findings if f.code == "PW130"] == severity
    before = pm.read_text()
    _fix(pm)
    assert pm.read_text() == before


def test_a_tool_known_to_wrap_wraps_under_no_file_transaction(tmp_path: Path) -> None:
    """--no-file-transaction says how files run when nothing else does; a goose migration
    without `-- +goose NO TRANSACTION` still runs in goose's transaction, where
    CONCURRENTLY fails for sure (before: no finding under --no-file-transaction)."""
    path = tmp_path / "00003_index.sql"
    path.write_text(
        "-- +goose Up\nALTER TABLE users ADD COLUMN note text;\n"
        "CREATE INDEX CONCURRENTLY users_note ON users (note);\n-- +goose Down\nSELECT 1;\n"
    )
    _, result = commands.lint([path], file_transaction=False)
    assert [f.severity.value for f in result.findings if f.code == "PW130"] == ["error"]


def test_begin_inside_a_goose_migration_starts_no_transaction(tmp_path: Path) -> None:
    """goose runs the up half in its transaction: a BEGIN there starts none (the server
    warns), so the ALTER's ACCESS EXCLUSIVE is held through the UPDATE (PW121); a DO block
    that COMMITs fails there for sure (PW130 error). Before: no PW121, and a warning."""
    path = tmp_path / "00004_backfill.sql"
    path.write_text(
        "-- +goose Up\nALTER TABLE users ADD COLUMN IF NOT EXISTS d int;\n"
        "BEGIN;\nUPDATE users SET d = 0;\nCOMMIT;\n"
    )
    assert "PW121" in _codes([path])[(path.name, 4)]
    path.write_text("-- +goose Up\nDO $$ BEGIN UPDATE users SET d = 1; COMMIT; END $$;\n")
    assert "PW130" in _codes([path])[(path.name, 2)]
