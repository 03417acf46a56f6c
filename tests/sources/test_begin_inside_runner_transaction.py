"""A BEGIN inside a file the tool runs in a transaction of its own (or sends as one
query): Flyway, golang-migrate/sqlx `*.up.sql`, diesel `up.sql`, Prisma, dbmate.

The BEGIN starts no new transaction there, so a lock taken before it is still held in
the block, and the statements after the block's COMMIT share one more transaction. Before,
pgwarden read such a file as psql runs it (each statement outside the block on its own),
and missed PW121 on ente's `25_alter_ids_to_bigint.up.sql` (18 rewrites, no PW121) and
hawkbit's `V1_12_37__unify` (found by the real-project sweep). A plain `.sql` file keeps
psql's reading. The server's side is checked below with a simple query, as golang-migrate
sends a file.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from pgwarden import commands
from pgwarden.plan import TxMode

FILE = """ALTER TABLE files ALTER COLUMN owner_id TYPE bigint;
ALTER TABLE users ALTER COLUMN user_id TYPE bigint;
BEGIN;
ALTER TABLE users ALTER COLUMN user_id DROP DEFAULT;
COMMIT;
ALTER TABLE notes ALTER COLUMN id TYPE bigint;
ALTER TABLE tags ALTER COLUMN id TYPE bigint;
"""


def _lint(
    path: Path, file_transaction: bool | None = None
) -> tuple[list[tuple[TxMode, int | None]], list[int]]:
    """(mode, transaction) of each step, and the lines PW121 flags."""
    plan, result = commands.lint([path], file_transaction=file_transaction)
    steps = [(s.tx_mode, s.transaction) for s in plan.steps]
    lines = sorted(
        plan.steps[f.step].location.line
        for f in result.findings
        if f.code == "PW121" and f.step is not None
    )
    return steps, lines


def _one_transaction_around_the_block(steps: list[tuple[TxMode, int | None]]) -> None:
    before, block, after = steps[:2], steps[2:5], steps[5:]
    assert {tx for _, tx in before} == {tx for _, tx in block}
    assert [m for m, _ in before] == [TxMode.FILE, TxMode.FILE]
    assert [m for m, _ in block] == [TxMode.EXPLICIT] * 3
    (later,) = {tx for _, tx in after}
    assert later is not None and later != block[0][1]


def test_golang_migrate_file_statements_before_begin_join_the_block(tmp_path: Path) -> None:
    up = tmp_path / "25_alter_ids_to_bigint.up.sql"
    up.write_text(FILE)
    steps, lines = _lint(up)
    _one_transaction_around_the_block(steps)
    assert lines == [2, 7]  # line 1's lock held while line 2 rewrites; line 6's through 7


def test_flyway_and_diesel_files_too(tmp_path: Path) -> None:
    flyway = tmp_path / "V1_12_37__unify.sql"
    flyway.write_text(FILE)
    _one_transaction_around_the_block(_lint(flyway)[0])
    diesel = tmp_path / "2024-02-14-000000_ids"
    diesel.mkdir()
    (diesel / "up.sql").write_text(FILE)
    _one_transaction_around_the_block(_lint(diesel / "up.sql")[0])


def test_plain_sql_file_is_read_as_psql_runs_it(tmp_path: Path) -> None:
    plain = tmp_path / "alter_ids.sql"
    plain.write_text(FILE)
    steps, lines = _lint(plain)
    assert [m for m, _ in steps] == [TxMode.AUTOCOMMIT] * 2 + [TxMode.EXPLICIT] * 3 + [
        TxMode.AUTOCOMMIT
    ] * 2
    assert lines == []


def test_no_file_transaction_keeps_statements_on_their_own(tmp_path: Path) -> None:
    up = tmp_path / "25_alter_ids_to_bigint.up.sql"
    up.write_text(FILE)
    steps, lines = _lint(up, file_transaction=False)
    assert [m for m, _ in steps][:2] == [TxMode.AUTOCOMMIT] * 2
    assert lines == []


def test_server_keeps_a_lock_taken_before_begin_in_one_query(db: str) -> None:
    """As golang-migrate sends a file: one simple query. The implicit transaction the query
    runs in becomes the block BEGIN opens, so the first ALTER's lock is held in it."""
    held = (
        "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
        "AND relation = 'files'::regclass AND mode = 'AccessExclusiveLock'"
    )
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("CREATE TABLE files (owner_id int); CREATE TABLE users (user_id int)")
        cur = c.cursor()
        query = (
            "ALTER TABLE files ALTER COLUMN owner_id TYPE bigint; BEGIN; "
            f"ALTER TABLE users ALTER COLUMN user_id TYPE bigint; {held}; COMMIT; {held}"
        )
        cur.execute(query.encode())  # bytes, no parameters: the simple query protocol
        counts = []
        while True:
            if cur.description is not None:
                counts.append(cur.fetchone())
            if not cur.nextset():
                break
        assert counts == [(1,), (0,)]  # held inside the block, released by its COMMIT
