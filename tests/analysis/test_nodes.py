"""The typed boundary of the parse tree: one set of readers for the lock model and the rules."""

from __future__ import annotations

import tomllib
import typing
from pathlib import Path

import pglast.ast

from pgwarden.analysis import locks_altertable, locks_core, nodes
from pgwarden.analysis.catalog import Catalog, Column, Relation
from pgwarden.analysis.locks import analyse
from pgwarden.analysis.parse import parse_one
from pgwarden.rules import _sql


def _alter(sql: str) -> nodes.AlterTableStmt:
    return parse_one(sql)["AlterTableStmt"]


def test_readers_on_a_parsed_tree() -> None:
    stmt = _alter('ALTER TABLE "Sales".invoices ADD COLUMN "Note" varchar(20)[]')
    rv = stmt["relation"]
    assert nodes.relname(rv) == "Sales.invoices"
    assert nodes.regclass(rv) == '"Sales".invoices'
    assert nodes.regclass(_alter("ALTER TABLE public.t ADD COLUMN c int")["relation"]) == "t"
    col = stmt["cmds"][0]["AlterTableCmd"]["def"]["ColumnDef"]
    assert nodes.quote(col["colname"]) == '"Note"'
    assert nodes.type_of(col["typeName"]) == ("varchar", [20], True)
    assert nodes.dotted(col["typeName"]["names"]) == 'pg_catalog."varchar"'  # a keyword
    # quoted as regclass prints a name: upper case, symbols and keywords (not unreserved ones)
    assert nodes.regclass(_alter('ALTER TABLE "user" ADD c int')["relation"]) == '"user"'
    assert nodes.regclass(_alter('ALTER TABLE public."order" ADD c int')["relation"]) == '"order"'
    assert nodes.regclass(_alter("ALTER TABLE account ADD c int")["relation"]) == "account"
    assert nodes.quote("name") == "name"  # an unreserved keyword
    assert locks_altertable.type_name(col["typeName"]) == ("varchar[]", [20])
    assert _sql.type_text(col["typeName"]) == "varchar(20)[]"


def test_type_spellings_map_to_one_catalog_name() -> None:
    """The parser's names and format_type's output meet in the same alias table."""
    tn = _alter("ALTER TABLE t ALTER COLUMN c TYPE numeric(12, 2)")["cmds"][0]["AlterTableCmd"]
    assert nodes.type_of(tn["def"]["ColumnDef"]["typeName"]) == ("numeric", [12, 2], False)
    assert locks_altertable.parse_format_type("character varying(20)") == ("varchar", [20])
    assert locks_altertable.parse_format_type("timestamp with time zone[]") == (
        "timestamptz[]",
        [],
    )


def test_a_type_modifier_that_is_not_an_integer_keeps_the_rewrite() -> None:
    """geometry(Point, 4326) -> geometry(LineString, 4326): the integer modifiers alone are
    equal, yet the server converts every value, so the model keeps assuming a rewrite."""
    shapes = Relation(
        "shapes", "public", "shapes", "r", columns=(Column("g", "geometry(Point,4326)"),)
    )
    catalog = Catalog(relations=(shapes,), search_path=("public",), timezone="UTC")
    effects = analyse(
        parse_one("ALTER TABLE shapes ALTER COLUMN g TYPE geometry(LineString, 4326)"),
        catalog=catalog,
        server_version=16,
    )
    assert effects.rewrites == ("shapes",)


def test_the_lock_model_and_the_rules_share_the_readers() -> None:
    for name in ("quote", "strings", "dotted", "regclass", "relname", "option_on", "type_of"):
        assert getattr(_sql, name) is getattr(nodes, name), name
    for module in (locks_core, locks_altertable, _sql):
        for name in ("quote", "strings", "defnames", "type_of"):
            reader = getattr(module, name, None)
            assert reader is None or reader is getattr(nodes, name), (module.__name__, name)


def test_mypy_allows_no_any_in_the_rules_and_the_lock_model() -> None:
    config = tomllib.loads(Path("pyproject.toml").read_text())
    strict = {
        module
        for override in config["tool"]["mypy"]["overrides"]
        if override.get("disallow_any_expr")
        for module in override["module"]
    }
    assert {
        "pgwarden.analysis.nodes",
        "pgwarden.analysis.locks",
        "pgwarden.analysis.locks_core",
        "pgwarden.analysis.locks_altertable",
        "pgwarden.rules.*",
    } <= strict


def _typed_dicts() -> dict[str, type]:
    return {
        name: obj
        for name, obj in vars(nodes).items()
        if isinstance(obj, type) and typing.is_typeddict(obj) and not name.startswith("_")
    }


def test_every_typed_field_is_a_field_of_that_node_in_the_grammar() -> None:
    """A misspelt field would read as absent for ever: each one is checked against
    pglast's node classes (its `def_` is the JSON's `def`; A_Const's value is one of the
    value fields)."""
    wrong = {}
    for name, td in _typed_dicts().items():
        if name in ("Node", "ListNode"):
            continue
        if name == "A_Const":
            fields = {"ival", "sval", "fval", "boolval", "bsval", "isnull", "location"}
        else:
            slots = getattr(pglast.ast, name).__slots__
            fields = {"def" if f == "def_" else f for f in slots}
        extra = set(td.__annotations__) - fields
        if extra:
            wrong[name] = sorted(extra)
    assert wrong == {}


def test_node_maps_each_kind_to_its_own_fields() -> None:
    kinds = typing.get_type_hints(nodes.Node)
    for kind, fields in kinds.items():
        assert kind == "List" or hasattr(pglast.ast, kind), kind
        assert fields.__name__ in (kind, "ListNode", "_Empty"), (kind, fields)
    used = set(_typed_dicts()) - {"Node", "ListNode", "TypeOf"}
    assert used <= set(kinds), used - set(kinds)


def test_every_get_of_a_literal_key_names_a_known_field() -> None:
    """mypy types `node.get("typo")` as object without an error: every `.get("...")` in the
    code that reads trees (rules, lock model, plan, preflight, rehearsal verdicts) must name
    a field or node kind of analysis/nodes.py."""
    import ast

    from pgwarden.plan import Derived

    known = set(typing.get_type_hints(nodes.Node)) | set(Derived.__annotations__)
    for td in _typed_dicts().values():
        known |= set(td.__annotations__)
    src = Path(nodes.__file__).parent.parent
    files = [
        *src.glob("rules/*.py"),
        *src.glob("analysis/locks*.py"),
        src / "plan.py",
        src / "lint/preflight.py",
        src / "rehearse/verdict.py",
    ]
    unknown = set()
    for path in files:
        for call in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "get"
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)
                and call.args[0].value not in known
            ):
                unknown.add(f"{path.name}:{call.lineno} {call.args[0].value}")
    assert sorted(unknown) == []
