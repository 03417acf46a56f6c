"""Alembic: lint revisions in-process (offline SQL), --unapplied, guarded upgrade via env.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")

from pgwarden import commands
from pgwarden.analysis.parse import parse
from pgwarden.cli.analyse import lint as lint_cmd
from pgwarden.findings import Finding
from pgwarden.pg.cluster import Cluster
from pgwarden.plan import SourceText
from pgwarden.sources.alembic import _sqlalchemy_url, read_alembic_sources

PROJECT = Path(__file__).parent / "alembic_project"
INI = PROJECT / "alembic.ini"
VERSIONS = PROJECT / "versions"

# The SQL the revisions 0002..0005 render to, one raw file per revision.
RAW_SQL = {
    "0002.sql": "ALTER TABLE invoices ADD CONSTRAINT invoices_account_id_fkey\n"
    "  FOREIGN KEY (account_id) REFERENCES payment_accounts (id);\n",
    "0003.sql": "CREATE INDEX invoices_account_id_idx ON invoices (account_id);\n",
    "0004.sql": "ALTER TABLE invoices ADD COLUMN currency TEXT;\n"
    "UPDATE invoices SET currency = 'EUR';\n"
    "ALTER TABLE invoices ALTER COLUMN currency SET NOT NULL;\n",
    "0005.sql": "ALTER TABLE invoices RENAME customer_name TO billing_name;\n",
}


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if needle in text)


def _codes(findings: tuple[Finding, ...]) -> list[str]:
    return sorted(f.code for f in findings)


def _alembic_lint(**kw: object) -> tuple[object, tuple[Finding, ...]]:
    src = read_alembic_sources(INI, **kw)  # type: ignore[arg-type]
    plan, result = commands.lint([], sources=src)
    return plan, result.findings


def test_lint_finds_the_same_hazards_as_the_raw_sql() -> None:
    _, alembic_findings = _alembic_lint(revision_range="0001:head")
    raw = [(SourceText(name, text), parse(text, name)) for name, text in RAW_SQL.items()]
    # Alembic runs each revision in one transaction (transaction_per_migration = True
    # in the sample's env.py), like a runner that wraps each raw file in one.
    _, raw_result = commands.lint([], sources=raw, file_transaction=True)
    assert {"PW101", "PW102", "PW103", "PW120", "PW203"} <= set(_codes(alembic_findings))
    assert _codes(alembic_findings) == _codes(raw_result.findings)
    raw_where = [(Path(f.location.path).stem, f.code) for f in raw_result.findings]
    alembic_where = [(Path(f.location.path).stem[:4], f.code) for f in alembic_findings]
    assert sorted(raw_where) == sorted(alembic_where)


def test_findings_point_at_the_op_call_in_the_revision_file() -> None:
    _, findings = _alembic_lint(revision_range="0001:head")
    by_code = {f.code: f for f in findings}
    fk = by_code["PW102"]
    fk_file = VERSIONS / "0002_invoices_account_fk.py"
    assert Path(fk.location.path).resolve() == fk_file.resolve()
    assert fk.location.line == _line_of(fk_file, "op.create_foreign_key(")
    idx = by_code["PW101"]
    idx_file = VERSIONS / "0003_invoices_account_index.py"
    assert Path(idx.location.path).resolve() == idx_file.resolve()
    assert idx.location.line == _line_of(idx_file, "op.create_index(")
    nn = by_code["PW103"]
    nn_file = VERSIONS / "0004_invoices_currency_not_null.py"
    assert nn.location.line == _line_of(nn_file, "op.alter_column(")
    ren = by_code["PW203"]
    assert ren.location.line == _line_of(VERSIONS / "0005_rename_customer_name.py", "op.alter")


def test_version_table_bookkeeping_is_not_linted() -> None:
    plan, findings = _alembic_lint()
    steps = {s.index: s for s in plan}  # type: ignore[attr-defined]
    assert any("alembic_version" in s.sql for s in steps.values())
    assert not [f for f in findings if "alembic_version" in steps[f.step or 0].sql]


def test_transaction_per_migration_gives_one_transaction_per_revision() -> None:
    plan, _ = _alembic_lint()
    by_file: dict[str, set[int | None]] = {}
    for s in plan:  # type: ignore[attr-defined]
        by_file.setdefault(Path(s.location.path).name, set()).add(s.transaction)
    assert len(by_file) == 5
    assert all(len(txs) == 1 and None not in txs for txs in by_file.values())
    assert len({next(iter(t)) for t in by_file.values()}) == 5


def test_one_transaction_for_the_whole_run_without_transaction_per_migration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAMPLE_TRANSACTION_PER_MIGRATION", "0")
    plan, findings = _alembic_lint(revision_range="0001:head")
    txs = {s.transaction for s in plan}  # type: ignore[attr-defined]
    assert txs == {0}
    # the ACCESS EXCLUSIVE of the index/column steps is now held across revisions
    assert "PW121" in _codes(findings)


def test_cli_lint_alembic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT)
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--range", "0001:head", "--format", "github"])
    assert r.exit_code == 1, r.output
    fk_line = _line_of(VERSIONS / "0002_invoices_account_fk.py", "op.create_foreign_key(")
    assert f"file=versions/0002_invoices_account_fk.py,line={fk_line}" in r.output
    assert "PW102" in r.output
    r = CliRunner().invoke(lint_cmd, ["--alembic", "alembic.ini", "--fix"])
    assert r.exit_code == 2 and "--fix" in r.output
    r = CliRunner().invoke(lint_cmd, ["--range", "0001:head"])
    assert r.exit_code == 2 and "--alembic" in r.output


def _alembic(
    db: str, *args: str, guarded: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "PGWARDEN_GUARDED": "1" if guarded else "0",
        "PGWARDEN_ENV": "dev",
        **(env or {}),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(INI),
            "-x",
            f"url={_sqlalchemy_url(db)}",
            *args,
        ],
        capture_output=True,
        text=True,
        env=full,
        cwd=PROJECT,
        timeout=120,
    )


def _version(db: str) -> list[str]:
    with psycopg.connect(db, autocommit=True) as c:
        return [str(r[0]) for r in c.execute("SELECT version_num FROM alembic_version")]


def test_unapplied_lints_only_revisions_after_the_database(db: str) -> None:
    done = _alembic(db, "upgrade", "0002")
    assert done.returncode == 0, done.stderr
    assert _version(db) == ["0002"]
    plan, findings = _alembic_lint(unapplied=True, database_url=db)
    files = {Path(s.location.path).name for s in plan}  # type: ignore[attr-defined]
    assert files == {
        "0003_invoices_account_index.py",
        "0004_invoices_currency_not_null.py",
        "0005_rename_customer_name.py",
    }
    assert "PW102" not in _codes(findings)
    assert {"PW101", "PW103", "PW203"} <= set(_codes(findings))
    assert _alembic(db, "upgrade", "head").returncode == 0
    plan, findings = _alembic_lint(unapplied=True, database_url=db)
    assert len(plan) == 0 and not findings  # type: ignore[arg-type]


def test_guarded_upgrade_keeps_alembic_version_right(db: str, tmp_path: Path) -> None:
    env: dict[str, str] = {}
    first = _alembic(db, "upgrade", "0002", guarded=True, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert _version(db) == ["0002"]
    with psycopg.connect(db, autocommit=True) as c:
        fk = c.execute(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'invoices_account_id_fkey'"
        ).fetchone()
        assert fk == (1,)
        runs = c.execute("SELECT count(*) FROM pgwarden.runs").fetchone()
        assert runs is not None and runs[0] >= 1  # went through pgwarden's journal
    rest = _alembic(db, "upgrade", "head", guarded=True, env=env)
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert _version(db) == ["0005"]
    with psycopg.connect(db, autocommit=True) as c:
        cols = {
            str(r[0])
            for r in c.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'invoices'"
            )
        }
    assert {"billing_name", "currency"} <= cols and "customer_name" not in cols
    again = _alembic(db, "upgrade", "head", guarded=True, env=env)
    assert again.returncode == 0, again.stderr
    assert _version(db) == ["0005"]


def test_failed_revision_leaves_alembic_version_consistent(db: str) -> None:
    assert _alembic(db, "upgrade", "0003", guarded=True).returncode == 0
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("INSERT INTO invoices (amount_cents) VALUES (100)")
        # the NOT NULL step of 0004 fails: make the backfill miss this row
        c.execute(
            "CREATE FUNCTION keep_null() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN NEW.currency := NULL; RETURN NEW; END$$"
        )
        c.execute(
            "CREATE TRIGGER keep_null BEFORE UPDATE ON invoices FOR EACH ROW "
            "EXECUTE FUNCTION keep_null()"
        )
    failed = _alembic(db, "upgrade", "head", guarded=True)
    assert failed.returncode != 0
    assert "upgrade failed" in failed.stderr + failed.stdout
    assert _version(db) == ["0003"]
    with psycopg.connect(db, autocommit=True) as c:
        cols = {
            str(r[0])
            for r in c.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'invoices'"
            )
        }
    assert "currency" not in cols  # 0004 rolled back together with its version bump


def test_cli_apply_alembic_unapplied_keeps_alembic_version_right(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pgwarden.cli.apply import apply as apply_cmd

    assert _alembic(db, "upgrade", "0001").returncode == 0
    monkeypatch.chdir(PROJECT)
    args = ["--alembic", "--unapplied", "--database-url", db, "--env", "dev", "--restamp"]
    journal = ["--journal-file", str(tmp_path / "journal.jsonl")]
    r = CliRunner().invoke(apply_cmd, [*args, *journal])
    assert r.exit_code == 0, r.output
    assert _version(db) == ["0005"]
    r = CliRunner().invoke(apply_cmd, [*args, "--dry-run"])
    assert r.exit_code == 0, r.output  # nothing left to apply


# --- rehearse --------------------------------------------------------------------------


def test_rehearse_fk_revision_points_the_traffic_finding_at_the_revision(
    pg_cluster: Cluster, tmp_path: Path
) -> None:
    from pgwarden.cli.rehearse import alembic_schema_before
    from pgwarden.commands import load_plan
    from pgwarden.rehearse.api import RehearseOptions, rehearse

    src = read_alembic_sources(INI, revision_range="0001:0002")
    assert src.revisions == ("0002",)
    before = alembic_schema_before(str(INI), "0001")
    assert before is not None and "CREATE TABLE invoices" in before[0]
    # Synthetic rows only respect FKs of the starting schema: a second, helper FK on
    # the same column keeps account_id values valid for the FK the revision adds.
    helper = (
        "ALTER TABLE invoices ADD CONSTRAINT helper_fk"
        " FOREIGN KEY (account_id) REFERENCES payment_accounts (id);\n"
    )
    result = rehearse(
        load_plan([], sources=src),
        RehearseOptions(
            schema_sql=before[0] + helper,
            database_url=pg_cluster.dsn(),
            default_rows=5_000,
            record_dir=tmp_path / "records",
            version_table=src.version_table,
        ),
    )
    assert result.status == "completed"
    fk_file = VERSIONS / "0002_invoices_account_fk.py"
    fk_steps = [s for s in result.steps if "FOREIGN KEY" in s.sql]
    assert len(fk_steps) == 1
    assert ("invoices", "SHARE ROW EXCLUSIVE") in fk_steps[0].acquired
    rh101 = [f for f in result.findings if f.code == "RH101"]
    assert rh101 and all(f.step == fk_steps[0].index for f in rh101)
    assert Path(rh101[0].location.path).resolve() == fk_file.resolve()
    assert rh101[0].location.line == _line_of(fk_file, "op.create_foreign_key(")
    # alembic_version gets no synthetic rows and its UPDATE no findings
    assert "alembic_version" not in [t.name for t in result.tables]
    book = {s.index for s in result.steps if "alembic_version" in s.sql}
    assert book and not [f for f in result.findings if f.step in book]
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as c:  # scratch db dropped
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_cli_rehearse_alembic_from_base_and_range(
    pg_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orjson

    from pgwarden.cli.rehearse import rehearse as rehearse_cmd

    monkeypatch.chdir(PROJECT)
    monkeypatch.setenv("PGWARDEN_REHEARSALS", str(tmp_path / "records"))
    common = ["--database-url", pg_cluster.dsn(), "--rows-cap", "3000", "--format", "json"]
    # the revisions base:0002 build the schema (untraced), 0003 is rehearsed
    r = CliRunner().invoke(rehearse_cmd, ["--alembic", "--range", "0002:0003", *common])
    assert r.exit_code == 1, r.output  # CREATE INDEX blocks writes: an error finding
    data = orjson.loads(r.stdout)
    assert data["status"] == "completed"
    assert not any("FOREIGN KEY" in s["sql"] for s in data["steps"])
    assert any(
        f["code"] == "RH101" and "0003_invoices_account_index.py" in str(f["location"])
        for f in data["findings"]
    )
    # from base on the empty scratch database: every revision runs and is traced
    r = CliRunner().invoke(
        rehearse_cmd, ["--alembic", "alembic.ini", "--range", "base:0001", *common]
    )
    assert r.exit_code == 0, r.output
    data = orjson.loads(r.stdout)
    assert data["status"] == "completed"
    assert any("CREATE TABLE invoices" in s["sql"] for s in data["steps"])
    r = CliRunner().invoke(rehearse_cmd, ["--range", "0001:head", *common])
    assert r.exit_code == 2 and "--alembic" in r.output
    r = CliRunner().invoke(rehearse_cmd, ["--alembic", "x.sql", "--unapplied"])
    assert r.exit_code == 2


def test_cli_rehearse_alembic_unapplied(
    db: str, pg_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orjson

    from pgwarden.cli.rehearse import rehearse as rehearse_cmd

    done = _alembic(db, "upgrade", "0002")
    assert done.returncode == 0, done.stderr
    monkeypatch.chdir(PROJECT)
    monkeypatch.setenv("PGWARDEN_REHEARSALS", str(tmp_path / "records"))
    # alembic_version of --database-url says 0002: 0003..0005 are rehearsed on a
    # scratch database of the same server, from the schema of base:0002
    args = ["--alembic", "--unapplied", "--database-url", db, "--rows-cap", "3000"]
    r = CliRunner().invoke(rehearse_cmd, [*args, "--format", "json"])
    assert r.exit_code == 1, r.output
    data = orjson.loads(r.stdout)
    assert data["status"] == "completed"
    sqls = [s["sql"] for s in data["steps"]]
    assert not any("FOREIGN KEY" in s for s in sqls)
    assert any("CREATE INDEX invoices_account_id_idx" in s for s in sqls)
    assert any("billing_name" in s for s in sqls)
    assert _version(db) == ["0002"]  # read-only


def test_cancel_while_waiting_for_a_lock_leaves_alembic_version_consistent(db: str) -> None:
    import signal
    import time

    assert _alembic(db, "upgrade", "0001", guarded=True).returncode == 0
    env = {**os.environ, "PGWARDEN_GUARDED": "1", "PGWARDEN_ENV": "dev"}
    with psycopg.connect(db, autocommit=True) as watch, psycopg.connect(db) as blocker:
        blocker.execute("LOCK TABLE invoices IN ROW EXCLUSIVE MODE")  # 0002's FK must wait
        proc = subprocess.Popen(
            [sys.executable, "-m", "alembic", "-c", str(INI), "-x",
             f"url={_sqlalchemy_url(db)}", "upgrade", "0002"],
            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            retried = False
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not retried:
                has_events = watch.execute("SELECT to_regclass('pgwarden.events')").fetchone()
                if has_events != (None,):
                    row = watch.execute(
                        "SELECT count(*) FROM pgwarden.events WHERE kind = 'retry'"
                    ).fetchone()
                    retried = bool(row and int(str(row[0])) > 0)
                time.sleep(0.1)
            assert retried, "the revision never retried behind the lock"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        blocker.rollback()
    assert proc.returncode != 0, out + err
    assert _version(db) == ["0001"]
    with psycopg.connect(db, autocommit=True) as c:
        fk = c.execute(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'invoices_account_id_fkey'"
        ).fetchone()
    assert fk == (0,)
    done = _alembic(db, "upgrade", "0002", guarded=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _version(db) == ["0002"]
