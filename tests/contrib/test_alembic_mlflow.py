"""A real Alembic project upgraded with data loaded: mlflow's tracking-store revisions (#15.1).

mlflow-skinny (pinned in the `test-alembic-real` extra) ships 67 revisions; 7 of
them read data or inspect the connection (an ORM session that copies runs.user_id
into tags, the latest_metrics table filled from metrics, sa.inspect of the
columns, ...). A database made as mlflow makes it (its initial tables, then
`alembic upgrade 451aebb31d03`) gets runs, params, tags and metrics; then:

- `pgwarden lint --alembic --database-url` lints every pending revision in one
  run, naming and skipping with a warning the 7 that cannot render offline;
- what it lints is what Alembic runs: per revision rendered offline, the DDL
  pgwarden reads equals the DDL plain `alembic upgrade head` sends to the server;
- `pgwarden apply --alembic` brings it to head with the same schema, data and
  alembic_version as plain `alembic upgrade head` on a twin database.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from pgwarden.cli.analyse import lint as lint_cmd
from pgwarden.cli.apply import apply as apply_cmd
from pgwarden.pg.cluster import Cluster
from pgwarden.sources.alembic import _sqlalchemy_url
from tests.fixtures.pg import new_database

pytest.importorskip("alembic")
migrations = pytest.importorskip(
    "mlflow.store.db_migrations", reason="pip install 'pgwarden[test-alembic-real]'"
)
# mlflow's models and revisions warn under SQLAlchemy 2.1 (deprecated loader strategies,
# a unary distinct()); a plain `alembic upgrade` prints those, the suite must not fail on them
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::sqlalchemy.exc.SAWarning"
)

START = "451aebb31d03"  # mlflow's first revision: runs.user_id not yet moved to tags
ONLINE = {  # the revisions that read data or inspect the connection
    "90e64c465722",
    "89d4b8295536",
    "3500859a5d39",
    "0584bdc529eb",
    "1b5f0d9ad7c1",
    "75868b020152",
    "dc11669786a5",
}
DATA = """
INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage)
SELECT e, 'exp' || e, '/artifacts/' || e, 'active' FROM generate_series(1, 3) e;
SELECT setval('experiments_experiment_id_seq', 3);
INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status,
                  start_time, end_time, source_version, lifecycle_stage, artifact_uri,
                  experiment_id)
SELECT md5(r::text), 'run' || r, 'LOCAL', 'train.py', 'main', 'user' || (r % 7), 'FINISHED',
       1700000000000 + r, 1700000100000 + r, 'abc', 'active', '/artifacts/r' || r, 1 + r % 3
  FROM generate_series(1, 200) r;
INSERT INTO metrics (key, value, timestamp, run_uuid, step)
SELECT 'm' || (i % 5), i * 0.5, 1700000000000 + i, md5((1 + i % 200)::text), i / 1000
  FROM generate_series(1, 20000) i;
INSERT INTO params (key, value, run_uuid)
SELECT 'p' || k, 'v' || r, md5(r::text) FROM generate_series(1, 200) r, generate_series(1, 3) k;
INSERT INTO tags (key, value, run_uuid)
SELECT 'note', 'n' || r, md5(r::text) FROM generate_series(1, 200) r;
"""


@dataclass(frozen=True, slots=True)
class MlflowProject:
    cluster: Cluster
    start: str  # a database at START with rows, used as the template of the others
    ini: Path  # sqlalchemy.url empty: pgwarden passes --database-url through
    folder: Path

    def copy(self) -> str:
        """A new database with the start's schema and rows."""
        name = f"mlflow_{len(list(self.folder.glob('copy-*')))}"
        (self.folder / f"copy-{name}").touch()
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as c:
            c.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(_dbname(self.start))
                )
            )
        return self.cluster.dsn(name)

    def plain_alembic(self, db: str, *args: str) -> None:
        """Plain `alembic` with mlflow's own env.py, as `mlflow db upgrade` runs it."""
        ini = self.folder / f"plain-{_dbname(db)}.ini"
        url = _sqlalchemy_url(db).replace("%", "%%")
        ini.write_text(self.ini.read_text().replace("sqlalchemy.url =", f"sqlalchemy.url = {url}"))
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ini), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def _dbname(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])


@pytest.fixture(scope="module")
def mlflow(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> MlflowProject:
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
    from sqlalchemy import create_engine

    folder = tmp_path_factory.mktemp("mlflow")
    (folder / "pgwarden.toml").write_text("[environments.dev]\nprotected = false\n")
    ini = folder / "alembic.ini"
    location = Path(migrations.__file__).parent
    ini.write_text(f"[alembic]\nscript_location = {location}\nsqlalchemy.url =\n")
    start = new_database(pg_cluster)
    engine = create_engine(_sqlalchemy_url(start))
    InitialBase.metadata.create_all(engine)  # what mlflow does before its first upgrade
    engine.dispose()
    project = MlflowProject(pg_cluster, start, ini, folder)
    project.plain_alembic(start, "upgrade", START)
    with psycopg.connect(start, autocommit=True) as c:
        c.execute(DATA)
    return project


def _schema(db: str) -> dict[str, list[tuple[object, ...]]]:
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default, "
        "character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY 1, 2",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = 'public' ORDER BY 1, 2",
        "version": "SELECT version_num FROM alembic_version",
        "latest_metrics": "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)), count(*) "
        "FROM latest_metrics t",
        "tags": "SELECT key, count(*) FROM tags GROUP BY key ORDER BY key",
    }
    with psycopg.connect(db, autocommit=True) as c:
        return {k: c.execute(q).fetchall() for k, q in queries.items()}


def _revisions(mlflow: MlflowProject) -> list[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(mlflow.ini)))
    return [sc.revision for sc in script.iterate_revisions("heads", START)]


def test_lint_lints_every_pending_revision_in_one_run(
    mlflow: MlflowProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(mlflow.folder)
    db = mlflow.copy()
    args = ["--alembic", str(mlflow.ini), "--database-url", db, "--format", "json"]
    r = CliRunner().invoke(lint_cmd, args)
    assert r.exit_code == 1, r.output  # findings (an index on metrics, SET NOT NULL, ...)
    start = r.output.index("{")
    report = json.loads(r.output[start : r.output.rindex("}") + 1])
    warnings = r.output[:start]
    assert f"skipped 1 applied revision(s) ({START})" in warnings
    for rev in ONLINE:
        assert f"revision {rev} cannot be rendered offline" in warnings
    pending = _revisions(mlflow)
    assert len(pending) >= 60

    def rev_of(f: dict[str, Any]) -> str:
        return Path(f["location"]["path"]).name.split("_")[0]

    linted = {rev_of(f) for f in report["findings"] if f["code"] != "PW133"}
    assert not linted & ONLINE and not linted - set(pending)
    # the revisions that cannot render offline are in the report, as not linted
    unseen = {rev_of(f) for f in report["findings"] if "was not linted" in f["message"]}
    assert unseen == ONLINE
    assert report["summary"]["files"] == len(pending) - len(ONLINE)  # every other one
    codes = {f["code"] for f in report["findings"]}
    assert {"PW101", "PW103"} <= codes  # hazards of the revisions that render offline


def test_apply_brings_it_to_head_as_plain_alembic_upgrade_head(
    mlflow: MlflowProject, plain: PlainRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(mlflow.folder)
    guarded = mlflow.copy()
    args = ["--alembic", str(mlflow.ini), "--database-url", guarded, "--env", "dev", "--restamp"]
    r = CliRunner().invoke(apply_cmd, [*args, "--journal-file", str(mlflow.folder / "j.jsonl")])
    assert r.exit_code == 0, r.output  # refused before: revision 90e64c465722 reads data
    ours, theirs = _schema(guarded), _schema(plain.db)
    assert ours == theirs
    assert ours["version"] == [(_revisions(mlflow)[0],)]
    assert ours["latest_metrics"][0][1] == 200  # one per (run, key), filled by 89d4b8295536
    assert "mlflow.user" in {
        key for key, _n in ours["tags"]
    }  # tags made from runs.user_id by 90e64c465722


_DML = {"InsertStmt", "UpdateStmt", "DeleteStmt", "SelectStmt", "TransactionStmt"}
_POSITIONS = ("location", "stmt_len", "_start", "_end")  # offsets in the statement text


def _shape(node: object) -> object:
    """A parse tree without source positions, to compare statements by meaning."""
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items() if not k.endswith(_POSITIONS)}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return node


def _sorted(trees: list[object]) -> list[str]:
    return sorted(json.dumps(t, sort_keys=True) for t in trees)


@dataclass(frozen=True, slots=True)
class PlainRun:
    """A copy upgraded by plain `alembic upgrade head` (in this process, mlflow's env.py),
    with the DDL pgwarden lints and the DDL Alembic executed, per revision."""

    db: str
    linted: dict[str, list[object]]
    executed: dict[str, list[object]]


@pytest.fixture(scope="module")
def plain(mlflow: MlflowProject) -> PlainRun:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from pgwarden.analysis.parse import parse
    from pgwarden.sources.alembic import read_alembic_sources

    db = mlflow.copy()
    sources = read_alembic_sources(mlflow.ini, database_url=db)
    linted: dict[str, list[object]] = {}
    for (text, stmts), rev in zip(sources.sources, sources.revisions, strict=True):
        assert Path(text.path).name.startswith(rev)
        linted[rev] = [
            _shape(s.tree) for s in stmts if s.kind not in _DML and "alembic_version" not in s.text
        ]
    executed: dict[str, list[object]] = {}
    pending: list[object] = []

    def capture(_conn: object, _cursor: object, statement: str, *_a: object) -> None:
        nonlocal pending
        head = statement.lstrip().upper()
        if "alembic_version" in statement and head.startswith(("UPDATE", "INSERT")):
            # Alembic writes the new revision as a literal: SET version_num='...' / VALUES ('...')
            executed[statement.split("'")[1]], pending = pending, []
        elif not head.startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "SHOW")):
            pending += [_shape(s.tree) for s in parse(statement) if s.kind not in _DML]

    cfg = Config(str(mlflow.ini))
    cfg.set_main_option("sqlalchemy.url", _sqlalchemy_url(db).replace("%", "%%"))
    event.listen(Engine, "before_cursor_execute", capture)
    try:
        command.upgrade(cfg, "head")
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    return PlainRun(db, linted, executed)


def test_what_lint_reads_is_the_ddl_alembic_executes(plain: PlainRun) -> None:
    """Per revision rendered offline, the DDL pgwarden lints equals the DDL plain
    `alembic upgrade head` sends to the server (captured from SQLAlchemy)."""
    assert set(plain.executed) == set(plain.linted) | ONLINE
    # as multisets: SQLAlchemy emits a create_table's indexes in its set order, which
    # differs between processes (and between two plain runs)
    differ = [r for r in plain.linted if _sorted(plain.linted[r]) != _sorted(plain.executed[r])]
    assert not differ, differ
    assert sum(len(v) for v in plain.linted.values()) > 100
