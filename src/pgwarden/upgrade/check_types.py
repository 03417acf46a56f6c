"""What pg_upgrade refuses, found in the catalog before pg_upgrade is ever run.

pg_upgrade keeps the data files as they are, so a column whose on-disk form
means something else in the new major cannot be carried: reg* types store
OIDs of catalog rows that the new cluster numbers differently (only regclass,
regrole and regtype are kept, their OIDs being preserved), and `aclitem`
changed its format in 16. A type counts wherever it is used: directly, as an
array element, under a domain, inside a composite type or as a range subtype.
Each family applies only to the source/target majors pg_upgrade checks it for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pgwarden.upgrade.check import Conn, Issue, Severity, new_issue, rows

__all__ = ["cluster_readiness", "database_readiness", "pg_upgrade_readiness"]

# Columns (of tables, materialized views and indexes) whose type is, or contains, a type
# in the seed set. The recursion follows domains, arrays, composites and ranges.
_COLUMNS_USING = """
WITH RECURSIVE seed(oid) AS ({seed}),
used(oid) AS (
    SELECT oid FROM seed
  UNION
    SELECT more.oid FROM used u CROSS JOIN LATERAL (
        SELECT t.oid FROM pg_type t
        WHERE (t.typtype = 'd' AND t.typbasetype = u.oid)
           OR (t.typtype = 'b' AND t.typelem = u.oid AND t.typlen = -1)
      UNION ALL
        SELECT c.reltype FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
        WHERE a.atttypid = u.oid AND c.reltype <> 0
      UNION ALL
        SELECT r.rngtypid FROM pg_range r WHERE r.rngsubtype = u.oid
    ) more
)
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname),
       format_type(a.atttypid, a.atttypmod)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE a.atttypid IN (SELECT oid FROM used)
  AND c.relkind IN ('r', 'm', 'i')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
ORDER BY 1
"""

_REG_TYPES = (
    "regcollation",
    "regconfig",
    "regdictionary",
    "regnamespace",
    "regoper",
    "regoperator",
    "regproc",
    "regprocedure",
)


@dataclass(frozen=True, slots=True)
class _TypeRule:
    code: str
    seed: str  # SQL returning the oids of the refused types
    applies: Callable[[int, int], bool]  # (source major, target major)
    message: str
    hint: str


_TYPE_RULES = (
    _TypeRule(
        "reg-types",
        "SELECT oid FROM pg_type WHERE typnamespace = 'pg_catalog'::regnamespace "
        "AND typname IN (" + ", ".join(f"'{t}'" for t in _REG_TYPES) + ")",
        lambda s, t: True,
        "column(s) of a reg* type that stores catalog OIDs ({types}): the new cluster "
        "numbers those objects differently, so pg_upgrade refuses the upgrade",
        "store the text form instead (ALTER TABLE ... ALTER COLUMN c TYPE text USING c::text), "
        "or use regclass/regtype/regrole, which pg_upgrade keeps; the logical route "
        "is not affected (it copies the text form)",
    ),
    _TypeRule(
        "aclitem",
        "SELECT 'pg_catalog.aclitem'::regtype::oid",
        lambda s, t: s <= 15 < t,
        "column(s) of type aclitem: its storage format changed in PostgreSQL 16, so "
        "pg_upgrade from {source} refuses them",
        "convert them to text (ALTER TABLE ... ALTER COLUMN c TYPE text) before the upgrade "
        "and back after it; the logical route is not affected",
    ),
    _TypeRule(
        "removed-types",
        "SELECT oid FROM pg_type WHERE typnamespace = 'pg_catalog'::regnamespace "
        "AND typname IN ('abstime', 'reltime', 'tinterval')",
        lambda s, t: s <= 11 < t,
        "column(s) of a type removed in PostgreSQL 12 ({types})",
        "convert them to timestamptz / interval before the upgrade",
    ),
    _TypeRule(
        "sql-identifier",
        "SELECT 'information_schema.sql_identifier'::regtype::oid",
        lambda s, t: s <= 11 < t,
        "column(s) of type information_schema.sql_identifier, whose storage changed in 12",
        "convert them to text or name before the upgrade",
    ),
)


def _type_issues(conn: Conn, source: int, target: int) -> list[Issue]:
    out: list[Issue] = []
    for rule in _TYPE_RULES:
        if not rule.applies(source, target):
            continue
        found = rows(conn, _COLUMNS_USING.format(seed=rule.seed))
        if not found:
            continue
        names = [f"{column} ({typ})" for column, typ in found]
        types = ", ".join(sorted({str(r[1]) for r in found}))
        out.append(
            new_issue(
                rule.code,
                Severity.BLOCKER,
                ("pg_upgrade",),
                f"{len(found)} " + rule.message.format(types=types, source=source),
                rule.hint,
                names,
            )
        )
    return out


def _simple(
    conn: Conn, query: str, code: str, message: str, hint: str, severity: Severity
) -> list[Issue]:
    names = [str(r[0]) for r in rows(conn, query)]
    if not names:
        return []
    return [new_issue(code, severity, ("pg_upgrade",), f"{len(names)} {message}", hint, names)]


def pg_upgrade_readiness(conn: Conn, source: int, target: int) -> list[Issue]:
    """What pg_upgrade `source` -> `target` refuses, in the connected database and its
    cluster: `database_readiness` and `cluster_readiness` together."""
    return database_readiness(conn, source, target) + cluster_readiness(conn)


def cluster_readiness(conn: Conn) -> list[Issue]:
    """Cluster-wide refusals: pg_* roles, databases pg_upgrade cannot connect to."""
    out: list[Issue] = []
    out += _simple(
        conn,
        "SELECT rolname::text FROM pg_roles WHERE rolname ~ '^pg_' AND oid >= 16384",
        "pg-role-prefix",
        "role(s) whose names start with pg_, a prefix reserved for system roles",
        "rename them (ALTER ROLE ... RENAME TO ...)",
        Severity.BLOCKER,
    )
    out += _simple(
        conn,
        "SELECT datname::text FROM pg_database WHERE datname <> 'template0' "
        "AND (NOT datallowconn OR datconnlimit = -2) ORDER BY 1",
        "databases-not-connectable",
        "database(s) refuse connections or are invalid (a DROP DATABASE interrupted half-way): "
        "pg_upgrade must connect to every database",
        "ALTER DATABASE ... ALLOW_CONNECTIONS true, or finish dropping an invalid database "
        "(DROP DATABASE)",
        Severity.BLOCKER,
    )
    return out


def database_readiness(conn: Conn, source: int, target: int) -> list[Issue]:
    """Objects of the connected database that pg_upgrade refuses (reg*/aclitem/removed
    types, postfix operators, encoding conversions, NOT NULL inconsistencies under
    inheritance)."""
    out = _type_issues(conn, source, target)
    if source <= 13:
        out += _simple(
            conn,
            "SELECT oid::regoperator::text FROM pg_operator WHERE oprright = 0 AND oid >= 16384",
            "postfix-operators",
            "user-defined postfix operator(s): PostgreSQL 14 removed postfix operators",
            "drop them (and what uses them) before the upgrade; rewrite uses as functions",
            Severity.BLOCKER,
        )
        out += _simple(
            conn,
            "SELECT conname::text FROM pg_conversion WHERE oid >= 16384",
            "encoding-conversions",
            "user-defined encoding conversion(s): their function signature changed in 14",
            "drop them before the upgrade and recreate them for the new major",
            Severity.BLOCKER,
        )
    if source <= 17 < target:
        out += _simple(
            conn,
            "SELECT DISTINCT format('%s.%s (NOT NULL in parent %s)', "
            "  cc.oid::regclass, quote_ident(ac.attname), pc.oid::regclass) "
            "FROM pg_inherits i "
            "JOIN pg_class pc ON pc.oid = i.inhparent AND pc.relkind = 'r' "
            "JOIN pg_class cc ON cc.oid = i.inhrelid "
            "JOIN pg_attribute ap ON ap.attrelid = pc.oid AND ap.attnum > 0 "
            "  AND NOT ap.attisdropped AND ap.attnotnull "
            "JOIN pg_attribute ac ON ac.attrelid = cc.oid AND ac.attname = ap.attname "
            "  AND NOT ac.attnotnull ORDER BY 1",
            "not-null-inheritance",
            "inherited column(s) are nullable while their parent's column is NOT NULL: "
            "PostgreSQL 18 requires the child to be NOT NULL too and pg_upgrade refuses",
            "ALTER TABLE child ALTER COLUMN c SET NOT NULL for each (after fixing NULL rows)",
            Severity.BLOCKER,
        )
    return out
