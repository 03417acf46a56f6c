"""`fleet apply --alembic` and `fleet apply --rewrite` on six databases over two real clusters
(PostgreSQL 15 and 18, or 17 where 18 is missing).

One Alembic project (0001 adds a column, 0002 a plain index, 0003 a CHECK) and
targets left at different revisions: each gets what it lacks, wave by wave. The
target of wave 2 whose rows violate the CHECK fails, halting the rollout with
the later waves untouched; `fleet resume` after its rows are fixed finishes.
A revision reading data is refused before anything runs. `--rewrite` turns the
plain CREATE INDEX of a .sql plan into CREATE INDEX CONCURRENTLY on every target.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import psycopg
import pytest

from pgwarden.errors import PostgresNotFound
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from tests.fleet.conftest import Member, cli, export, fleet_toml, make_members, make_template

pytest.importorskip("alembic")

PROJECT = Path(__file__).resolve().parents[1] / "contrib" / "alembic_project"

_REVISION = '''"""{doc}"""

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade() -> None:
    {body}
'''
REVISIONS = {
    "0001": ("email column", 'op.add_column("accounts", sa.Column("email", sa.Text))'),
    "0002": ("email index", 'op.create_index("accounts_email_idx", "accounts", ["email"])'),
    "0003": (
        "balance is never negative",
        'op.create_check_constraint("balance_nonneg", "accounts", "balance >= 0")',
    ),
}
# what each revision did, to leave a target at a revision as if plain Alembic had run it
BY_HAND = {
    "0001": "ALTER TABLE accounts ADD COLUMN email text",
    "0002": "CREATE INDEX accounts_email_idx ON accounts (email)",
    "0003": "ALTER TABLE accounts ADD CONSTRAINT balance_nonneg CHECK (balance >= 0)",
}
# n -> the revision it starts at ("" : none); 4 holds a row the CHECK of 0003 rejects
START = {1: "", 2: "0001", 3: "", 4: "0002", 5: "0003", 6: "0001"}
BAD = 4
WAVES = """
[[fleet.{name}.waves]]
name = "canary"
count = 1
[[fleet.{name}.waves]]
name = "second"
count = 3
[[fleet.{name}.waves]]
name = "rest"
percent = 100
parallel = 2
"""


def _write_revision(versions: Path, rev: str, down: str | None, doc: str, body: str) -> None:
    (versions / f"{rev}_r.py").write_text(
        _REVISION.format(doc=doc, rev=rev, down=repr(down), body=body)
    )


def _project(home: Path) -> Path:
    root = home / "migrations"
    (root / "versions").mkdir(parents=True)
    for name in ("alembic.ini", "env.py", "script.py.mako"):
        shutil.copy(PROJECT / name, root / name)
    down = None
    for rev, (doc, body) in REVISIONS.items():
        _write_revision(root / "versions", rev, down, doc, body)
        down = rev
    return root / "alembic.ini"


def _at(dsn: str, rev: str) -> None:
    """Leave the database at `rev`, as `alembic upgrade rev` would."""
    if not rev:
        return
    with psycopg.connect(dsn, autocommit=True) as c:
        for r in BY_HAND:
            if r <= rev:
                c.execute(BY_HAND[r])
        c.execute(  # as Alembic creates it
            "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        c.execute("INSERT INTO alembic_version VALUES (%s)", (rev,))


def _version(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as c:
        if c.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,):
            return ""
        row = c.execute("SELECT version_num FROM alembic_version").fetchone()
        return "" if row is None else str(row[0])


def _runs(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as c:
        if c.execute("SELECT to_regclass('pgwarden.runs')").fetchone() == (None,):
            return []
        return [str(r[0]) for r in c.execute("SELECT state FROM pgwarden.runs ORDER BY 1")]


@pytest.fixture(scope="module")
def clusters() -> Iterator[list[Cluster]]:
    installs = [find_installation(15)]
    try:
        installs.append(find_installation(18))
    except PostgresNotFound:
        installs.append(find_installation(17))
    started: list[Cluster] = []
    try:
        for inst in installs:
            started.append(Cluster.start(inst))
        for c in started:
            make_template(c)
        yield started
    finally:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda c: c.stop(), started))


@pytest.fixture(scope="module")
def fleet(
    clusters: list[Cluster], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[Member]]]:
    members = make_members(clusters, len(START), "fa")
    for m in members:
        _at(m.dsn, START[m.n])
    with psycopg.connect(members[BAD - 1].dsn, autocommit=True) as c:
        c.execute("UPDATE accounts SET balance = -1 WHERE id = 7")
    home = tmp_path_factory.mktemp("fleet-alembic")
    (home / "pgwarden.toml").write_text(
        fleet_toml(
            {"tenants": WAVES.format(name="tenants"), "rw": ""},
            members,
            journal_dir=home / "journal",
        )
    )
    _project(home)
    with pytest.MonkeyPatch.context() as mp:
        export(members, mp)
        mp.chdir(home)
        yield home, members


def _status(home: Path, fleet: str) -> dict[str, dict[str, object]]:
    done = cli(home, "fleet", "status", "--fleet", fleet, "--format", "json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    return {t["name"]: t for t in report["targets"]} | {"": report["rollout"]}


def test_alembic_targets_at_different_revisions_reach_head_in_waves(
    fleet: tuple[Path, list[Member]],
) -> None:
    home, members = fleet
    args = ("fleet", "apply", "--alembic", "migrations/alembic.ini", "--fleet", "tenants")
    dry = cli(home, *args, "--env", "staging", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "fa004: alembic_version 0002 -> 0003: 1 revision: 0003;" in dry.stdout, dry.stdout
    assert "fa001: alembic_version base -> 0003: 3 revisions: 0001, 0002, 0003;" in dry.stdout
    assert "fa005: alembic_version 0003 -> 0003: nothing to run" in dry.stdout

    first = cli(home, *args, "--env", "staging")
    assert first.returncode == 3, first.stdout + first.stderr
    assert "fa004 (wave 2) failed" in first.stdout and "balance_nonneg" in first.stdout
    versions = {m.n: _version(m.dsn) for m in members}
    # waves 1-2 reached head, the failed target is as it was (0003 rolled back whole),
    # wave 3 never touched
    assert versions == {1: "0003", 2: "0003", 3: "0003", 4: "0002", 5: "0003", 6: "0001"}
    assert _runs(members[5].dsn) == [] and _runs(members[4].dsn) == []

    st = _status(home, "tenants")
    assert st[""]["state"] == "halted" and st[""]["alembic_heads"] == ["0003"]
    assert (st["fa002"]["alembic_before"], st["fa002"]["alembic_version"]) == (["0001"], ["0003"])
    assert st["fa002"]["change"] == "applied"
    assert (st["fa004"]["alembic_before"], st["fa004"]["alembic_version"]) == (["0002"], ["0002"])
    assert st["fa004"]["change"] == "none" and "balance_nonneg" in str(st["fa004"]["last_failure"])
    assert st["fa006"]["change"] == "none" and st["fa006"]["rollout_state"] == "pending"
    assert st["fa005"]["change"] == "applied"  # at head before the rollout
    text = cli(home, "fleet", "status", "--fleet", "tenants").stdout
    line = "fa001: wave 1 done; change applied; 1 plan applied; alembic_version base -> 0003"
    assert line in text, text

    with psycopg.connect(members[BAD - 1].dsn, autocommit=True) as c:
        c.execute("UPDATE accounts SET balance = 0 WHERE balance < 0")
    resumed = cli(home, "fleet", "resume", "--fleet", "tenants", "--env", "staging")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert all(_version(m.dsn) == "0003" for m in members)
    assert _runs(members[4].dsn) == []  # at head already: nothing run there
    st = _status(home, "tenants")
    assert st[""]["state"] == "done"
    assert all(st[m.name]["change"] == "applied" for m in members)
    assert st["fa006"]["alembic_before"] == ["0001"]
    with psycopg.connect(members[BAD - 1].dsn, autocommit=True) as c:
        assert c.execute(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'balance_nonneg'"
        ).fetchone() == (1,)


def test_alembic_revision_reading_data_runs_online_on_every_target(
    fleet: tuple[Path, list[Member]],
) -> None:
    """A revision that cannot render offline runs online through Alembic on each target, as
    `pgwarden apply --alembic` runs it (one such target at a time: wave 3 has parallel 2)."""
    home, members = fleet
    versions = home / "migrations" / "versions"
    body = (
        'n = op.get_bind().execute(sa.text("SELECT count(*) FROM accounts")).scalar()\n'
        "    op.execute(f\"COMMENT ON TABLE accounts IS 'rows: {n}'\")"
    )
    _write_revision(versions, "0004", "0003", "reads data", body)
    args = ("fleet", "apply", "--alembic", "migrations/alembic.ini", "--fleet", "tenants")
    dry = cli(home, *args, "--env", "staging", "--dry-run")
    assert "fa001: alembic_version 0003 -> 0004: 1 revision: 0004 (online);" in dry.stdout, (
        dry.stdout + dry.stderr
    )
    done = cli(home, *args, "--env", "staging")
    assert done.returncode == 0, done.stdout + done.stderr
    for m in members:
        assert _version(m.dsn) == "0004", m.name
        with psycopg.connect(m.dsn, autocommit=True) as c:
            row = c.execute("SELECT obj_description('accounts'::regclass)").fetchone()
            assert row == ("rows: 20",), m.name
    st = _status(home, "tenants")
    assert all(st[m.name]["change"] == "applied" for m in members)
    assert not any(st[m.name]["drift"] for m in members), [st[m.name]["drift"] for m in members]
    # targets that reached 0004 through different plans are compared with each other
    with psycopg.connect(members[2].dsn, autocommit=True) as c:
        c.execute("CREATE TABLE by_hand (id int)")
    st = _status(home, "tenants")
    assert st["fa003"]["drift"] == [{"object": "table public.by_hand", "how": "extra"}]
    assert not any(st[m.name]["drift"] for m in members if m.n != 3)


def test_rewrite_makes_the_index_concurrent_on_every_target(
    fleet: tuple[Path, list[Member]],
) -> None:
    home, members = fleet
    (home / "idx.sql").write_text("CREATE INDEX accounts_balance_idx ON accounts (balance);\n")
    done = cli(home, "fleet", "apply", "idx.sql", "--rewrite", "--fleet", "rw", "--env", "staging")
    assert done.returncode == 0, done.stdout + done.stderr
    for m in members:
        with psycopg.connect(m.dsn, autocommit=True) as c:
            row = c.execute(
                "SELECT plan::text FROM pgwarden.runs ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
            assert row is not None and "CREATE INDEX CONCURRENTLY" in str(row[0]), m.name
            valid = c.execute(
                "SELECT indisvalid FROM pg_index "
                "WHERE indexrelid = 'accounts_balance_idx'::regclass"
            ).fetchone()
            assert valid == (True,)
    st = _status(home, "rw")
    assert st[""]["rewrite"] is True
    assert all(st[m.name]["change"] == "applied" for m in members)  # its own rewritten plan


def test_alembic_change_with_an_online_revision_survives_the_rollout_journal(
    tmp_path: Path,
) -> None:
    """What `fleet resume` reads back: the same plans, and a runner for the online revision."""
    from pgwarden.fleet.alembic import AlembicChange, alembic_change

    ini = _project(tmp_path)
    body = 'op.get_bind().execute(sa.text("SELECT 1")).scalar()'
    _write_revision(ini.parent / "versions", "0004", "0003", "reads data", body)
    change = alembic_change(ini, {"a": ("0002",), "b": (), "c": ("0002",)})
    assert sorted(change.plans) == ["0002", "base"]
    assert change.revisions["0002"] == ("0003", "0004")
    back = AlembicChange.from_json(orjson.loads(orjson.dumps(change.to_json())), "fp")
    assert back.online == change.online and back.before == change.before
    for key, plan in change.plans.items():
        assert [s.sql for s in back.plans[key].steps] == [s.sql for s in plan.steps]
    # part-way through its own plan is fine (its history resumes it), elsewhere is not
    assert back.moved("a", ("0002",), touched=False) is None
    assert back.moved("a", ("0004",), touched=True) is None
    assert back.moved("b", ("0003",), touched=True) is None
    # something else migrated a target this rollout never applied to
    assert "planned this target from 0002" in str(back.moved("a", ("0004",), touched=False))
    assert "planned this target from 0002" in str(back.moved("a", ("0001",), touched=True))
    dsn = "host=/tmp port=5432 dbname=a user=u"
    assert list(back.runners("a", dsn)) == [change.online["0002"][0].sql]
