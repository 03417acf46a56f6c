"""The typed boundary of the parse tree: the node shapes pgwarden reads, and their readers.

A tree is libpg_query's JSON loaded by orjson into plain dicts (`analysis.parse`). The
TypedDicts here describe those dicts and add nothing at run time. Every field is
optional: the JSON leaves out false, zero and empty values. A field typed `Node` holds a
wrapped node, `{"KindName": {...}}`; a field typed with a node's own TypedDict holds that
node's fields bare (the C field has that type, e.g. `RangeVar *relation`). Field names
follow PostgreSQL's parsenodes.h (pglast's ast.py lists them).

The lock model (analysis/locks*.py) and the rules read trees only through these types
and the readers below, so mypy checks their logic field by field.
"""

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TypedDict, cast

__all__ = [
    "TYPE_ALIASES",
    "A_Const",
    "A_Expr",
    "Alias",
    "AlterDomainStmt",
    "AlterEnumStmt",
    "AlterObjectSchemaStmt",
    "AlterPolicyStmt",
    "AlterPublicationStmt",
    "AlterSeqStmt",
    "AlterTableCmd",
    "AlterTableStmt",
    "BoolExpr",
    "CallStmt",
    "ClusterStmt",
    "CollateClause",
    "ColumnDef",
    "ColumnRef",
    "CommentStmt",
    "CommonTableExpr",
    "Constraint",
    "CopyStmt",
    "CreateEnumStmt",
    "CreateFunctionStmt",
    "CreatePolicyStmt",
    "CreatePublicationStmt",
    "CreateSchemaStmt",
    "CreateSeqStmt",
    "CreateStatsStmt",
    "CreateStmt",
    "CreateSubscriptionStmt",
    "CreateTableAsStmt",
    "CreateTrigStmt",
    "CreatedbStmt",
    "DefElem",
    "DeleteStmt",
    "DiscardStmt",
    "DoStmt",
    "DropOwnedStmt",
    "DropStmt",
    "DropdbStmt",
    "ExplainStmt",
    "FuncCall",
    "FunctionParameter",
    "GrantStmt",
    "IndexElem",
    "IndexStmt",
    "InsertStmt",
    "IntoClause",
    "ListNode",
    "LockStmt",
    "Node",
    "NullTest",
    "ObjectWithArgs",
    "PartitionBoundSpec",
    "PartitionCmd",
    "PublicationObjSpec",
    "PublicationTable",
    "RangeVar",
    "ReassignOwnedStmt",
    "RefreshMatViewStmt",
    "ReindexStmt",
    "RenameStmt",
    "ReplicaIdentityStmt",
    "ResTarget",
    "RoleSpec",
    "RuleStmt",
    "SelectStmt",
    "String",
    "TableLikeClause",
    "TransactionStmt",
    "TruncateStmt",
    "TypeCast",
    "TypeName",
    "TypeOf",
    "UpdateStmt",
    "VacuumRelation",
    "VacuumStmt",
    "VariableSetStmt",
    "ViewStmt",
    "contains",
    "defnames",
    "dotted",
    "func_calls",
    "ident",
    "option_on",
    "quote",
    "range_vars",
    "regclass",
    "regclass_name",
    "relname",
    "role_names",
    "strings",
    "type_of",
    "walk",
]

# -- values --------------------------------------------------------------------------


class String(TypedDict, total=False):
    sval: str


class Integer(TypedDict, total=False):
    ival: int


class Float(TypedDict, total=False):
    fval: str


class Boolean(TypedDict, total=False):
    boolval: bool


class ListNode(TypedDict, total=False):
    items: list["Node"]


class A_Const(TypedDict, total=False):
    ival: Integer
    sval: String
    fval: Float
    boolval: Boolean
    isnull: bool
    location: int


# -- names and types -----------------------------------------------------------------


class Alias(TypedDict, total=False):
    aliasname: str
    colnames: list["Node"]


class RangeVar(TypedDict, total=False):
    catalogname: str
    schemaname: str
    relname: str
    inh: bool
    relpersistence: str
    alias: Alias
    location: int


class TypeName(TypedDict, total=False):
    names: list["Node"]
    typmods: list["Node"]
    typemod: int
    arrayBounds: list["Node"]
    setof: bool
    pct_type: bool
    location: int


class ObjectWithArgs(TypedDict, total=False):
    objname: list["Node"]
    objargs: list["Node"]


class DefElem(TypedDict, total=False):
    defnamespace: str
    defname: str
    arg: "Node"
    defaction: str


# -- expressions ---------------------------------------------------------------------


class ColumnRef(TypedDict, total=False):
    fields: list["Node"]


class TypeCast(TypedDict, total=False):
    arg: "Node"
    typeName: TypeName


class FuncCall(TypedDict, total=False):
    funcname: list["Node"]
    args: list["Node"]


class A_Expr(TypedDict, total=False):
    kind: str
    name: list["Node"]
    lexpr: "Node"
    rexpr: "Node"


class BoolExpr(TypedDict, total=False):
    boolop: str
    args: list["Node"]


class NullTest(TypedDict, total=False):
    arg: "Node"
    nulltesttype: str


class ResTarget(TypedDict, total=False):
    name: str
    val: "Node"


# -- table parts ---------------------------------------------------------------------


class Constraint(TypedDict, total=False):
    contype: str
    conname: str
    deferrable: bool
    initdeferred: bool
    is_enforced: bool
    skip_validation: bool
    initially_valid: bool
    is_no_inherit: bool
    raw_expr: "Node"
    keys: list["Node"]
    exclusions: list["Node"]
    indexname: str
    indexspace: str
    including: list["Node"]
    options: list["Node"]
    nulls_not_distinct: bool
    generated_when: str
    generated_kind: str
    pktable: RangeVar
    fk_attrs: list["Node"]
    pk_attrs: list["Node"]
    fk_matchtype: str
    fk_upd_action: str
    fk_del_action: str
    where_clause: "Node"


class CollateClause(TypedDict, total=False):
    collname: list["Node"]


class ColumnDef(TypedDict, total=False):
    colname: str
    typeName: TypeName
    collClause: CollateClause
    is_not_null: bool
    raw_default: "Node"
    identity: str
    generated: str
    constraints: list["Node"]


class IndexElem(TypedDict, total=False):
    name: str
    expr: "Node"


class PartitionBoundSpec(TypedDict, total=False):
    strategy: str
    is_default: bool


class PartitionCmd(TypedDict, total=False):
    name: RangeVar
    bound: PartitionBoundSpec
    concurrent: bool


class ReplicaIdentityStmt(TypedDict, total=False):
    identity_type: str
    name: str


class TableLikeClause(TypedDict, total=False):
    relation: RangeVar
    options: int


class IntoClause(TypedDict, total=False):
    rel: RangeVar


class VacuumRelation(TypedDict, total=False):
    relation: RangeVar
    va_cols: list["Node"]


# `def` is a Python keyword: these two use the functional form.
AlterTableCmd = TypedDict(
    "AlterTableCmd",
    {
        "subtype": str,
        "name": str,
        "num": int,
        "def": "Node",
        "behavior": str,
        "missing_ok": bool,
        "recurse": bool,
    },
    total=False,
)

AlterDomainStmt = TypedDict(
    "AlterDomainStmt",
    {
        "subtype": str,
        "typeName": list["Node"],
        "name": str,
        "def": "Node",
        "behavior": str,
        "missing_ok": bool,
    },
    total=False,
)


# -- statements ----------------------------------------------------------------------


class AlterTableStmt(TypedDict, total=False):
    relation: RangeVar
    cmds: list["Node"]
    objtype: str
    missing_ok: bool


class IndexStmt(TypedDict, total=False):
    idxname: str
    relation: RangeVar
    accessMethod: str
    indexParams: list["Node"]
    indexIncludingParams: list["Node"]
    whereClause: "Node"
    unique: bool
    nulls_not_distinct: bool
    primary: bool
    isconstraint: bool
    concurrent: bool
    if_not_exists: bool


class ReindexStmt(TypedDict, total=False):
    kind: str
    relation: RangeVar
    name: str
    params: list["Node"]


class VacuumStmt(TypedDict, total=False):
    options: list["Node"]
    rels: list["Node"]
    is_vacuumcmd: bool


class ClusterStmt(TypedDict, total=False):
    relation: RangeVar
    indexname: str
    params: list["Node"]


class TruncateStmt(TypedDict, total=False):
    relations: list["Node"]
    restart_seqs: bool
    behavior: str


class LockStmt(TypedDict, total=False):
    relations: list["Node"]
    mode: int
    nowait: bool


class DropStmt(TypedDict, total=False):
    objects: list["Node"]
    removeType: str
    behavior: str
    missing_ok: bool
    concurrent: bool


class CreateStmt(TypedDict, total=False):
    relation: RangeVar
    tableElts: list["Node"]
    inhRelations: list["Node"]
    partbound: PartitionBoundSpec
    if_not_exists: bool


class CreateTableAsStmt(TypedDict, total=False):
    query: "Node"
    into: IntoClause
    objtype: str
    if_not_exists: bool


class ViewStmt(TypedDict, total=False):
    view: RangeVar
    query: "Node"
    replace: bool


class RefreshMatViewStmt(TypedDict, total=False):
    concurrent: bool
    skipData: bool
    relation: RangeVar


class CreateTrigStmt(TypedDict, total=False):
    trigname: str
    relation: RangeVar


class RoleSpec(TypedDict, total=False):
    roletype: str
    rolename: str


class ReassignOwnedStmt(TypedDict, total=False):
    roles: list["Node"]
    newrole: RoleSpec


class DropOwnedStmt(TypedDict, total=False):
    roles: list["Node"]
    behavior: str


class CreatePolicyStmt(TypedDict, total=False):
    policy_name: str
    table: RangeVar


class AlterPolicyStmt(TypedDict, total=False):
    policy_name: str
    table: RangeVar


class RuleStmt(TypedDict, total=False):
    relation: RangeVar
    rulename: str
    replace: bool


class CreateStatsStmt(TypedDict, total=False):
    defnames: list["Node"]
    relations: list["Node"]


class PublicationTable(TypedDict, total=False):
    relation: RangeVar


class PublicationObjSpec(TypedDict, total=False):
    pubobjtype: str
    name: str
    pubtable: PublicationTable


class CreatePublicationStmt(TypedDict, total=False):
    pubname: str
    pubobjects: list["Node"]
    for_all_tables: bool


class AlterPublicationStmt(TypedDict, total=False):
    pubname: str
    pubobjects: list["Node"]
    action: str


class CreateSeqStmt(TypedDict, total=False):
    sequence: RangeVar
    options: list["Node"]
    if_not_exists: bool


class AlterSeqStmt(TypedDict, total=False):
    sequence: RangeVar
    options: list["Node"]


class RenameStmt(TypedDict, total=False):
    renameType: str
    relationType: str
    relation: RangeVar
    object: "Node"
    subname: str
    newname: str
    missing_ok: bool


class AlterObjectSchemaStmt(TypedDict, total=False):
    objectType: str
    relation: RangeVar
    object: "Node"
    newschema: str


class CommentStmt(TypedDict, total=False):
    objtype: str
    object: "Node"
    comment: str


class GrantStmt(TypedDict, total=False):
    is_grant: bool
    targtype: str
    objtype: str
    objects: list["Node"]


class OnConflictClause(TypedDict, total=False):
    action: str  # ONCONFLICT_NOTHING, ONCONFLICT_UPDATE
    infer: dict[str, object]  # the conflict target, when written


class InsertStmt(TypedDict, total=False):
    relation: RangeVar
    cols: list["Node"]
    selectStmt: "Node"
    onConflictClause: OnConflictClause


class CommonTableExpr(TypedDict, total=False):
    ctename: str
    ctequery: "Node"


class WithClause(TypedDict, total=False):
    ctes: list["Node"]


class UpdateStmt(TypedDict, total=False):
    relation: RangeVar
    targetList: list["Node"]
    whereClause: "Node"
    fromClause: list["Node"]
    withClause: WithClause


class DeleteStmt(TypedDict, total=False):
    relation: RangeVar
    usingClause: list["Node"]
    whereClause: "Node"
    withClause: WithClause


class MergeWhenClause(TypedDict, total=False):
    commandType: str  # CMD_INSERT, CMD_UPDATE, CMD_DELETE, CMD_NOTHING
    targetList: list["Node"]


class MergeStmt(TypedDict, total=False):
    relation: RangeVar
    sourceRelation: "Node"
    mergeWhenClauses: list["Node"]
    withClause: WithClause


class SelectStmt(TypedDict, total=False):
    intoClause: IntoClause
    targetList: list["Node"]
    fromClause: list["Node"]
    whereClause: "Node"
    valuesLists: list["Node"]
    lockingClause: list["Node"]


class CopyStmt(TypedDict, total=False):
    relation: RangeVar
    query: "Node"
    is_from: bool


class ExplainStmt(TypedDict, total=False):
    query: "Node"
    options: list["Node"]


class CreatedbStmt(TypedDict, total=False):
    dbname: str


class DropdbStmt(TypedDict, total=False):
    dbname: str
    missing_ok: bool


class CreateSubscriptionStmt(TypedDict, total=False):
    subname: str
    options: list["Node"]


class DiscardStmt(TypedDict, total=False):
    target: str


class AlterEnumStmt(TypedDict, total=False):
    typeName: list["Node"]
    oldVal: str
    newVal: str
    newValNeighbor: str
    newValIsAfter: bool
    skipIfNewValExists: bool


class CreateEnumStmt(TypedDict, total=False):
    typeName: list["Node"]
    vals: list["Node"]


class CreateSchemaStmt(TypedDict, total=False):
    schemaname: str
    if_not_exists: bool


class TransactionStmt(TypedDict, total=False):
    kind: str


class DoStmt(TypedDict, total=False):
    args: list["Node"]


class CallStmt(TypedDict, total=False):
    funccall: FuncCall


class FunctionParameter(TypedDict, total=False):
    name: str


class CreateFunctionStmt(TypedDict, total=False):
    is_procedure: bool
    replace: bool
    funcname: list["Node"]
    parameters: list["Node"]
    options: list["Node"]


class VariableSetStmt(TypedDict, total=False):
    kind: str
    name: str
    args: list["Node"]
    is_local: bool


class _Empty(TypedDict, total=False):
    """A node whose fields pgwarden does not read."""


class Node(TypedDict, total=False):
    """A wrapped node: exactly one of these keys, the node's kind, holding its fields."""

    String: String
    Integer: Integer
    Float: Float
    Alias: Alias
    Boolean: Boolean
    List: ListNode
    A_Const: A_Const
    A_Star: _Empty
    RangeVar: RangeVar
    TypeName: TypeName
    ObjectWithArgs: ObjectWithArgs
    DefElem: DefElem
    ColumnRef: ColumnRef
    TypeCast: TypeCast
    FuncCall: FuncCall
    SubLink: _Empty
    A_Expr: A_Expr
    BoolExpr: BoolExpr
    NullTest: NullTest
    ResTarget: ResTarget
    Constraint: Constraint
    CollateClause: CollateClause
    CommonTableExpr: CommonTableExpr
    WithClause: WithClause
    ColumnDef: ColumnDef
    FunctionParameter: FunctionParameter
    IndexElem: IndexElem
    PartitionBoundSpec: PartitionBoundSpec
    PartitionCmd: PartitionCmd
    ReplicaIdentityStmt: ReplicaIdentityStmt
    TableLikeClause: TableLikeClause
    IntoClause: IntoClause
    VacuumRelation: VacuumRelation
    AlterTableCmd: AlterTableCmd
    AlterTableStmt: AlterTableStmt
    AlterDomainStmt: AlterDomainStmt
    AlterEnumStmt: AlterEnumStmt
    AlterObjectSchemaStmt: AlterObjectSchemaStmt
    AlterSeqStmt: AlterSeqStmt
    CallStmt: CallStmt
    ClusterStmt: ClusterStmt
    CommentStmt: CommentStmt
    CopyStmt: CopyStmt
    CreateEnumStmt: CreateEnumStmt
    CreateFunctionStmt: CreateFunctionStmt
    CreateSchemaStmt: CreateSchemaStmt
    CreateSeqStmt: CreateSeqStmt
    CreateStmt: CreateStmt
    CreateTableAsStmt: CreateTableAsStmt
    CreateTrigStmt: CreateTrigStmt
    CreatePolicyStmt: CreatePolicyStmt
    AlterPolicyStmt: AlterPolicyStmt
    RuleStmt: RuleStmt
    CreateStatsStmt: CreateStatsStmt
    PublicationObjSpec: PublicationObjSpec
    PublicationTable: PublicationTable
    RoleSpec: RoleSpec
    DropOwnedStmt: DropOwnedStmt
    ReassignOwnedStmt: ReassignOwnedStmt
    CreatePublicationStmt: CreatePublicationStmt
    AlterPublicationStmt: AlterPublicationStmt
    CreateSubscriptionStmt: CreateSubscriptionStmt
    DiscardStmt: DiscardStmt
    CreatedbStmt: CreatedbStmt
    DeleteStmt: DeleteStmt
    MergeStmt: MergeStmt
    MergeWhenClause: MergeWhenClause
    OnConflictClause: OnConflictClause
    DoStmt: DoStmt
    DropStmt: DropStmt
    DropdbStmt: DropdbStmt
    ExplainStmt: ExplainStmt
    GrantStmt: GrantStmt
    IndexStmt: IndexStmt
    InsertStmt: InsertStmt
    LockStmt: LockStmt
    RefreshMatViewStmt: RefreshMatViewStmt
    ReindexStmt: ReindexStmt
    RenameStmt: RenameStmt
    SelectStmt: SelectStmt
    TransactionStmt: TransactionStmt
    TruncateStmt: TruncateStmt
    UpdateStmt: UpdateStmt
    VacuumStmt: VacuumStmt
    VariableSetStmt: VariableSetStmt
    ViewStmt: ViewStmt


# -- readers -------------------------------------------------------------------------

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


@lru_cache(maxsize=4096)  # type: ignore[misc]  # typeshed's lru_cache is typed with Any
def quote(ident: str) -> str:
    """Quote an identifier as regclass output and quote_ident() do: upper case, symbols,
    and keywords that are not unreserved (`"user"`, `"order"`, `"Acct"`)."""
    if _PLAIN.fullmatch(ident) and ident not in (_KEYWORDS or _keywords()):
        return ident
    return '"' + ident.replace('"', '""') + '"'


_KEYWORDS: set[str] = set()  # what quote_ident() quotes, filled on first use (with pglast's)


def _keywords() -> set[str]:
    from pglast import keywords as kw

    _KEYWORDS.update(kw.COL_NAME_KEYWORDS, kw.RESERVED_KEYWORDS, kw.TYPE_FUNC_NAME_KEYWORDS)
    return _KEYWORDS


ident = quote  # `name` as an SQL identifier, quoted as quote_ident() does


def role_names(nodes: list["Node"] | None) -> list[str]:
    """The roles a list of RoleSpec nodes names (CURRENT_USER, SESSION_USER, ... as spelled)."""
    out = []
    for node in nodes or ():
        spec = node.get("RoleSpec", {})
        name = spec.get("rolename")
        kind = spec.get("roletype", "")
        out.append(name if name else kind.removeprefix("ROLESPEC_") or "?")
    return out


def strings(items: list[Node] | None) -> list[str]:
    """sval of each String node of a list (other nodes skipped)."""
    return [i["String"]["sval"] for i in items or () if "String" in i]


def dotted(items: list[Node] | None) -> str:
    """`a.b` of a list of String nodes, quoted as regclass does, without `public.`."""
    return ".".join(quote(s) for s in strings(items)).removeprefix("public.")


def regclass_name(schema: str | None, name: str) -> str:
    """regclass text of `schema.name` on the default search_path (`public.` left out)."""
    if schema and schema != "public":
        return f"{quote(schema)}.{quote(name)}"
    return quote(name)


def regclass(rangevar: RangeVar | None) -> str:
    """The relation of a RangeVar spelled as regclass prints it without a catalog ("?": none)."""
    if not rangevar:
        return "?"
    return regclass_name(rangevar.get("schemaname"), rangevar.get("relname", "?"))


def relname(rangevar: RangeVar | None) -> str:
    """`schema.name` or `name` of a RangeVar, as written ("?": none)."""
    if not rangevar:
        return "?"
    name = rangevar.get("relname", "?")
    schema = rangevar.get("schemaname")
    return f"{schema}.{name}" if schema else name


def defnames(options: list[Node] | None) -> list[tuple[str | None, str]]:
    """(namespace, name) of each DefElem of an option list."""
    out: list[tuple[str | None, str]] = []
    for opt in options or ():
        body = opt.get("DefElem")
        if body:
            out.append((body.get("defnamespace"), body["defname"]))
    return out


def option_on(options: list[Node] | None, name: str) -> bool:
    """Whether a DefElem option list (VACUUM, REINDEX, EXPLAIN) turns `name` on."""
    for opt in options or ():
        body = opt.get("DefElem", {})
        if body.get("defname") != name:
            continue
        arg = body.get("arg")
        if arg is None:
            return True
        if "Integer" in arg:  # the parser leaves out an ival of 0
            value = str(arg["Integer"].get("ival", 0))
        else:
            value = str(arg.get("String", {}).get("sval", "1"))
        return value.lower() not in ("false", "off", "0", "no")
    return False


# Type spellings mapped to the catalog's type names: the parser's (an unqualified name it
# leaves alone) and format_type's output. "char" stays: the one-byte internal type.
TYPE_ALIASES = {
    "integer": "int4",
    "int": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "character varying": "varchar",
    "character": "bpchar",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "bit varying": "varbit",
    "double precision": "float8",
    "real": "float4",
    "boolean": "bool",
}


# A TypeName read: (the catalog's name, lower case, without schema; its integer type
# modifiers; whether it is an array), e.g. ("varchar", [20], False) for `varchar(20)`.
TypeOf = tuple[str, list[int], bool]


def type_of(type_name: TypeName) -> TypeOf:
    """The catalog type name, integer typmods and array flag of a TypeName."""
    names = strings(type_name.get("names"))
    base = names[-1].lower() if names else ""
    mods = [
        m["A_Const"]["ival"].get("ival", 0)
        for m in type_name.get("typmods") or ()
        if "ival" in m.get("A_Const", {})
    ]
    return TYPE_ALIASES.get(base, base), mods, bool(type_name.get("arrayBounds"))


# -- walking expressions ----------------------------------------------------------------


def range_vars(node: object, out: list[RangeVar]) -> list[RangeVar]:
    """Every wrapped RangeVar below `node` (FROM lists, subqueries, CTEs), in order."""
    # A parse tree holds only dicts, lists and scalars: no call for a scalar (most fields).
    cls = type(node)
    if cls is dict:
        fields = cast("dict[str, object]", node)
        for key, value in fields.items():
            if key == "RangeVar":
                out.append(cast(RangeVar, value))
            elif type(value) is dict or type(value) is list:
                range_vars(value, out)
    elif cls is list:
        items = cast("list[object]", node)
        for item in items:
            if type(item) is dict or type(item) is list:
                range_vars(item, out)
    return out


def func_calls(node: object, out: list[FuncCall]) -> list[FuncCall]:
    """Every function call below `node`, outermost first."""
    if isinstance(node, dict):
        fields: dict[str, object] = node
        for key, value in fields.items():
            if key == "FuncCall":
                out.append(cast(FuncCall, value))
            func_calls(value, out)
    elif isinstance(node, list):
        items: list[object] = node
        for item in items:
            func_calls(item, out)
    return out


def contains(node: object, kind: str) -> bool:
    """Whether a node of `kind` (e.g. "SubLink") is anywhere below `node`."""
    if isinstance(node, dict):
        fields: dict[str, object] = node
        return any(key == kind or contains(value, kind) for key, value in fields.items())
    if isinstance(node, list):
        items: list[object] = node
        return any(contains(item, kind) for item in items)
    return False


def walk(node: object) -> Iterator[tuple[str, object]]:
    """(key, value) of every field below `node`, depth first."""
    if isinstance(node, dict):
        fields: dict[str, object] = node
        for key, value in fields.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        items: list[object] = node
        for item in items:
            yield from walk(item)
