"""Alembic's `existing_type` tells the lint a column's current type, with no database.

From the SQL alone `ALTER COLUMN c TYPE varchar(255)` may rewrite the table (an error);
the revision knows better: autogenerate writes `existing_type=sa.VARCHAR(length=100)`.
`pgwarden lint --alembic` takes it (also inside `batch_alter_table`), so the type
change is graded as the catalog would grade it: a raised varchar limit or numeric
precision is done in place, int to bigint rewrites. A table the plan created itself
keeps the plan's word. (The server's own behaviour for these changes, relfilenode
kept or not, is checked by tests/analysis/lock_cases.py on every version.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("alembic")

from pgwarden.cli.analyse import lint as lint_cmd
from pgwarden.sources.alembic import build_alembic_plan, read_alembic_sources

SAMPLE = Path(__file__).parents[1] / "contrib" / "alembic_project"

ENV = """
from alembic import context

context.configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
with context.begin_transaction():
    context.run_migrations()
"""

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.alter_column("account", "name", existing_type=sa.VARCHAR(length=100),
                    type_=sa.String(length=255), existing_nullable=False)
    op.alter_column("invoice", "total", existing_type=sa.INTEGER(), type_=sa.BigInteger())
    with op.batch_alter_table("payment", schema="billing") as batch_op:
        batch_op.alter_column("amount", existing_type=sa.NUMERIC(precision=10, scale=2),
                              type_=sa.Numeric(precision=12, scale=2))
    op.alter_column("payment", "note", existing_type=sa.String(), type_=sa.String(length=80),
                    schema="billing")
    op.create_table("tag", sa.Column("label", sa.Integer()))
    op.alter_column("tag", "label", existing_type=sa.VARCHAR(length=10), type_=sa.String(20))
    op.alter_column("account", "mood", existing_type=sa.Enum("sad", "ok", name="mood"),
                    type_=sa.Text())
    op.alter_column("account", "kind", existing_type=sa.Enum("a", "bb", native_enum=False),
                    type_=sa.Text())
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "versions").mkdir()
    shutil.copy(SAMPLE / "alembic.ini", tmp_path / "alembic.ini")
    shutil.copy(SAMPLE / "script.py.mako", tmp_path / "script.py.mako")
    (tmp_path / "env.py").write_text(ENV)
    (tmp_path / "versions" / "0001_types.py").write_text(REVISION)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _rewrites(output: str) -> dict[int, str]:
    """PW104 findings by line of the revision: their severity."""
    doc: dict[str, Any] = json.loads(output)
    return {f["location"]["line"]: f["severity"] for f in doc["findings"] if f["code"] == "PW104"}


def test_existing_type_grades_the_type_change(project: Path) -> None:
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--format", "json"])
    assert r.exit_code == 1, r.output
    assert _rewrites(r.stdout) == {
        # line 10: varchar(100) -> varchar(255), in place (was an error: type not known)
        12: "error",  # int4 -> int8 rewrites
        # line 14: numeric(10,2) -> numeric(12,2) in batch_alter_table, in place
        16: "error",  # an unbounded varchar -> varchar(80): every row is checked (rewrite)
        20: "error",  # the enum mood -> text rewrites (was a warning: mostly from a varchar)
        22: "warning",  # a non-native Enum is VARCHAR(longest value), not the column's length:
        # not taken, so the current type stays unknown
    }


def test_facts_are_kept_per_revision_and_ignored_under_a_catalog(project: Path) -> None:
    from pgwarden.analysis.catalog import Catalog, Column, Relation

    sources = read_alembic_sources("alembic.ini").sources
    ((text, stmts),) = sources
    facts = {(f.schema, f.table, f.column): (f.type, f.nullable) for f in text.facts}
    assert facts == {
        (None, "account", "name"): ("varchar(100)", False),
        (None, "invoice", "total"): ("int4", None),
        ("billing", "payment", "amount"): ("numeric(10,2)", None),
        ("billing", "payment", "note"): ("varchar", None),
        (None, "tag", "label"): ("varchar(10)", None),
        (None, "account", "mood"): ("mood", None),
    }
    for fact in text.facts:  # each precedes the ALTER its alter_column wrote
        assert (
            f'"{fact.column}"' in stmts[fact.before].text or fact.column in stmts[fact.before].text
        )
    # the plan created tag.label as an integer: the plan's word wins (int4 -> varchar rewrites)
    (tag,) = [s for s in build_alembic_plan(sources).steps if "tag ALTER" in s.sql]
    assert tag.effects.rewrites
    # a live catalog wins: account.name is text there, so varchar(255) rewrites it
    account = Relation("account", "public", "account", "r", columns=(Column("name", "text", True),))
    plan = build_alembic_plan(sources, catalog=Catalog((account,)))
    (alter,) = [s for s in plan.steps if "account ALTER COLUMN name" in s.sql]
    assert alter.effects.rewrites


NULLABLE = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.alter_column("account", "nick", existing_type=sa.VARCHAR(length=40),
                    existing_nullable=True, nullable=True)
    op.alter_column("account", "email", existing_type=sa.VARCHAR(length=80),
                    existing_nullable=False, nullable=True)
    op.alter_column("account", "city", existing_type=sa.VARCHAR(length=80), nullable=True)
"""


def test_existing_nullable_true_makes_drop_not_null_a_no_op(project: Path) -> None:
    """`alter_column(..., existing_nullable=True, nullable=True)` (autogenerate writes it
    for columns that stay nullable) drops NOT NULL from a nullable column: nothing changes,
    so no PW211. Before, every such op was a warning (6 on one of redash's revisions)."""
    (project / "versions" / "0001_types.py").write_text(NULLABLE)
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--format", "json"])
    doc: dict[str, Any] = json.loads(r.stdout)
    lines = sorted(f["location"]["line"] for f in doc["findings"] if f["code"] == "PW211")
    assert lines == [12, 14], r.output  # NOT NULL before, or not said


NO_CAST = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.alter_column("account", "active", existing_type=sa.BOOLEAN(), type_=sa.Integer())
    op.alter_column("account", "ref", existing_type=sa.INTEGER(), type_=sa.Uuid())
    op.alter_column("account", "score", existing_type=sa.INTEGER(), type_=sa.Numeric(10, 2))
    op.alter_column("account", "flag", existing_type=sa.INTEGER(), type_=sa.Boolean(),
                    postgresql_using="flag::boolean")
"""


def test_a_change_postgresql_cannot_cast_on_its_own_is_an_error(project: Path) -> None:
    """Autogenerate writes `existing_type=sa.BOOLEAN(), type_=sa.Integer()` with no USING:
    PostgreSQL refuses it at deploy (no automatic cast), so PW134 says so from the
    revision alone; integer -> numeric converts on its own; USING given is trusted."""
    (project / "versions" / "0001_types.py").write_text(NO_CAST)
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--format", "json"])
    doc: dict[str, Any] = json.loads(r.stdout)
    found = {f["location"]["line"]: f["message"] for f in doc["findings"] if f["code"] == "PW134"}
    assert sorted(found) == [10, 11], r.output
    assert "from boolean to integer" in found[10]
    assert "from integer to uuid" in found[11]


ENUMS = """
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.alter_column("account", "status", existing_type=sa.VARCHAR(length=20),
                    type_=sa.Enum("new", "done", name="status_kind"))
    op.alter_column("account", "tier", type_=postgresql.ENUM("a", "b", name="tier_kind",
                    create_type=False))
    op.alter_column("account", "mood", existing_type=sa.Enum("sad", "ok", name="mood"),
                    type_=sa.Integer())
    op.alter_column("account", "level", existing_type=sa.Enum("x", "y", name="level_kind"),
                    type_=sa.String(length=40))
    op.alter_column("account", "state", existing_type=sa.VARCHAR(length=20),
                    type_=sa.Enum("on", "off", name="state_kind"),
                    postgresql_using="state::state_kind")
    op.alter_column("account", "kind", existing_type=sa.VARCHAR(length=20),
                    type_=sa.Enum("a", "bb", native_enum=False))
"""


def test_a_native_enum_alembic_names_is_known_as_an_enum(project: Path) -> None:
    """`alter_column(..., type_=sa.Enum(..., name="status_kind"))` writes `TYPE status_kind`
    with no USING (autogenerate's form; the enum was made by an earlier revision): no type
    converts to an enum on its own, so PostgreSQL refuses it at deploy. The revision says the
    type is an enum (type_ or existing_type, sa.Enum or postgresql.ENUM); before, only a
    CREATE TYPE in the linted range or a catalog did. A non-native Enum is a VARCHAR."""
    (project / "versions" / "0001_types.py").write_text(ENUMS)
    r = CliRunner().invoke(lint_cmd, ["--alembic", "--format", "json"])
    doc: dict[str, Any] = json.loads(r.stdout)
    found = {f["location"]["line"]: f for f in doc["findings"] if f["code"] == "PW134"}
    assert sorted(found) == [11, 13, 15], r.output
    assert "from varchar(20) to status_kind" in found[11]["message"]
    assert "USING status::status_kind" in found[11]["help"]  # from a string: a cast exists
    assert "USING tier::text::tier_kind" in found[13]["help"]  # current type not known
    assert "to tier_kind with no USING" in found[13]["message"]
    assert "from an enum to integer" in found[15]["message"]
    assert all(f["severity"] == "error" for f in found.values())
