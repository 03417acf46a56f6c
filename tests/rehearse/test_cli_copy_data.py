"""`pgwarden rehearse` reads `[tool.pgwarden.rehearse] copy_data` / `copy_max_rows`.

A data migration looks a state up by value in a lookup table (`UPDATE ... FROM
states WHERE name = 'open'`) and then makes the column NOT NULL. With synthetic
`states` rows no state is called 'open': the UPDATE sets nothing and SET NOT NULL
fails on the copy (a false failure). With `copy_data = ["states"]` the rows are the
database's and the rehearsal completes. Before, the plain command ignored the setting
(only `manage.py pgwarden rehearse` read it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import psycopg

SCHEMA = """
CREATE TABLE states (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE orders (id bigserial PRIMARY KEY, note text);
INSERT INTO states (name) VALUES ('draft'), ('open'), ('closed');
INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 50) g;
"""

MIGRATION = """\
ALTER TABLE orders ADD COLUMN state_id int REFERENCES states (id);
UPDATE orders o SET state_id = s.id FROM states s WHERE s.name = 'open';
ALTER TABLE orders ALTER COLUMN state_id SET NOT NULL;
"""


def _rehearse(
    tmp_path: Path, source: str, target: str, config: str | None, *extra: str
) -> subprocess.CompletedProcess[str]:
    migration = tmp_path / "001_order_state.sql"
    migration.write_text(MIGRATION)
    args = ["--schema-from", source] if source else []
    if config is not None:
        (tmp_path / "pgwarden.toml").write_text(config)
        args += ["--config", str(tmp_path / "pgwarden.toml")]
    env = dict(os.environ, PGWARDEN_REHEARSALS=str(tmp_path / "records"), COLUMNS="160")
    return subprocess.run(
        [sys.executable, "-m", "pgwarden", "rehearse", str(migration), "--database-url", target,
         "--rows-cap", "500", *args, *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def _failed_steps(out: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    doc = orjson.loads(out.stdout)
    return [s for s in doc["steps"] if s["status"] == "failed"]


def test_copy_data_gives_the_lookup_its_real_rows(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path, pg_cluster: Any
) -> None:
    conn.execute(SCHEMA)
    target = pg_cluster.dsn()
    # synthetic states: no 'open' among them, SET NOT NULL fails on the copy
    plain = _rehearse(tmp_path, db, target, None, "--format", "json")
    assert plain.returncode == 1, plain.stdout[-2000:] + plain.stderr[-2000:]
    assert orjson.loads(plain.stdout)["status"] == "failed"
    (failed,) = _failed_steps(plain)
    assert failed["error"]["sqlstate"] == "23502", failed
    # the states' real rows: the UPDATE finds 'open', the rehearsal completes
    config = '[rehearse]\ncopy_data = ["states"]\n'
    copied = _rehearse(tmp_path, db, target, config, "--format", "json")
    # exit 1 all the same: the ADD COLUMN's lock blocks the probe traffic (RH101)
    assert copied.returncode == 1, copied.stdout[-2000:] + copied.stderr[-2000:]
    doc = orjson.loads(copied.stdout)
    assert doc["status"] == "completed" and _failed_steps(copied) == []
    assert {f["code"] for f in doc["findings"]} == {"RH101"}
    assert "copied 3 rows of states from the database" in copied.stderr
    assert "copied 3 rows of states from the database" in doc["notes"]
    assert {t["name"]: t["copied"] for t in doc["tables"]} == {"states": True, "orders": False}
    # the text output says it too
    text = _rehearse(tmp_path, db, target, config)
    assert text.returncode == 1, text.stdout[-2000:] + text.stderr[-2000:]
    assert "rehearsal completed" in text.stdout
    assert "note: copied 3 rows of states from the database" in text.stdout


def test_copy_data_refusals_exit_2_before_anything_starts(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path, pg_cluster: Any
) -> None:
    conn.execute(SCHEMA)
    target = pg_cluster.dsn()
    over = _rehearse(
        tmp_path, db, target, '[rehearse]\ncopy_data = ["states"]\ncopy_max_rows = 2\n'
    )
    assert over.returncode == 2, over.stdout + over.stderr
    assert (
        "error: rehearse.copy_data: table states has 3 rows, more than rehearse.copy_max_rows "
        "(2); no rows were copied and nothing started"
    ) in " ".join(over.stderr.split())
    assert "starting the target" not in over.stderr
    # no database to copy from: said, not ignored
    nowhere = _rehearse(tmp_path, "", target, '[rehearse]\ncopy_data = ["states"]\n')
    assert nowhere.returncode == 2, nowhere.stdout + nowhere.stderr
    assert "rehearse.copy_data needs the database to copy the rows from (--schema-from)" in (
        " ".join(nowhere.stderr.split())
    )
