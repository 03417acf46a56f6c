"""No migration on either side of a major-version upgrade in progress.

`pgwarden upgrade run` keeps OLD and NEW in step by logical replication until
`finish` (or `cancel` / `rollback`): OLD -> NEW before the switchover, NEW -> OLD
after it. Logical replication does not carry DDL, and pgwarden's history
(`pgwarden.applied`) is itself replicated: a migration on NEW after the switchover
stops the reverse replication at the first row that carries a new column (the
rollback is lost) and tells OLD it ran although OLD's schema lacks it; one on OLD
before the switchover leaves NEW without it and the switchover refuses, late. So
`apply`, `resume` and `backfill` refuse such a database before anything changes.

OLD records its upgrade in `pgwarden_upgrade.runs` (id, state); NEW has no record,
and neither does OLD for a role that may not read it: the publication and
subscription the upgrade created, named `pgwarden_up_<id>` (forward: publication on
OLD, subscription on NEW) and `pgwarden_up_<id>_rev` (reverse: publication on NEW,
subscription on OLD), tell which side this is. Every role may read these names.

The names are those of `pgwarden.upgrade` (which sits above apply and cannot be
imported here; tests/upgrade/test_apply_during_upgrade.py checks they agree).
"""

from __future__ import annotations

import psycopg

from pgwarden.errors import Refused

__all__ = ["ACTIVE", "PREFIX", "REVERSE", "STATE_SCHEMA", "refuse_during_upgrade"]

Conn = psycopg.Connection[tuple[object, ...]]

STATE_SCHEMA = "pgwarden_upgrade"
ACTIVE = ("running", "interrupted", "switching", "switched", "rolling_back", "cancelling")
PREFIX = "pgwarden_up_"
REVERSE = "_rev"
_AFTER = ("switched", "rolling_back")  # NEW serves the writes, replicated back to OLD

_WHY = "a schema change is not replicated (logical replication does not carry DDL): "
_SAFE = (
    "; nothing was changed. Applying the migration on each side instead does not work: "
    "pgwarden's history (pgwarden.applied) is replicated, so the other side would skip it"
)

_RECORD = """
SELECT r.id, r.state, r.phase
FROM pgwarden_upgrade.runs r
WHERE r.state = ANY(%s) AND r.database = current_database()
ORDER BY r.started_at DESC LIMIT 1
"""

_READABLE = """
SELECT has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = 'runs'
"""

# This database's publications and subscriptions named as an upgrade's (only columns
# every role may read: pg_subscription's conninfo is not one).
_OBJECTS = r"""
SELECT 'publication', pubname FROM pg_publication WHERE pubname LIKE 'pgwarden\_up\_%'
UNION ALL
SELECT 'subscription', s.subname FROM pg_subscription s
JOIN pg_database d ON d.oid = s.subdbid
WHERE d.datname = current_database() AND s.subname LIKE 'pgwarden\_up\_%'
ORDER BY 1, 2
"""


def refuse_during_upgrade(conn: Conn) -> None:
    """Raise `Refused` (exit 1) when this database is OLD or NEW of an upgrade that is
    not finished, cancelled or rolled back."""
    refusal = upgrade_in_progress(conn)
    if refusal is not None:
        raise refusal


def upgrade_in_progress(conn: Conn) -> Refused | None:
    """The refusal `refuse_during_upgrade` raises, or None (reads only)."""
    db = str(conn.info.dbname)
    record = _record(conn)
    objects = [(str(k), str(n)) for k, n in conn.execute(_OBJECTS).fetchall()]
    if record is not None:
        uid, state, phase = record
        return _on_old(db, uid, state, phase)
    for kind, name in objects:
        uid = name.removeprefix(PREFIX)
        reverse = uid.endswith(REVERSE)
        uid = uid.removesuffix(REVERSE)
        if kind == "subscription" and not reverse:  # NEW, receiving OLD's writes
            return _on_new(db, uid, name, switched=False)
        if kind == "publication" and reverse:  # NEW, sending its writes back to OLD
            return _on_new(db, uid, name, switched=True)
        # OLD, its record unreadable for this role
        state = "switched" if reverse else "before its switchover"
        return _on_old(db, uid, state, None, found=f"{kind} {name}")
    return None


def _record(conn: Conn) -> tuple[str, str, str] | None:
    row = conn.execute(_READABLE, (STATE_SCHEMA,)).fetchone()
    if row is None or not row[0]:
        return None
    found = conn.execute(_RECORD, (list(ACTIVE),)).fetchone()
    return None if found is None else (str(found[0]), str(found[1]), str(found[2]))


def _on_old(db: str, uid: str, state: str, phase: str | None, found: str = "") -> Refused:
    where = f"phase {phase}" if phase and state not in _AFTER else ""
    said = ", ".join(x for x in (state, where, found) if x)
    if state in _AFTER:
        what = (
            f"database {db!r} is OLD of upgrade {uid} ({said}), in progress: NEW serves the "
            "writes and replicates them back here for a rollback, but "
            + _WHY
            + "a migration here would be missing on NEW"
        )
        hint = (
            "end the upgrade first: `pgwarden upgrade finish --database-url OLD --target-url "
            "NEW` (no rollback afterwards), then apply on NEW; or `pgwarden upgrade rollback "
            "--database-url OLD --target-url NEW`, then apply here"
        )
    else:
        what = (
            f"database {db!r} is OLD of upgrade {uid} ({said}), in progress: it is replicated "
            "to NEW, but "
            + _WHY
            + "a migration here would be missing on NEW, and the switchover would refuse"
        )
        hint = (
            "let the upgrade switch over (`pgwarden upgrade run`) and `pgwarden upgrade "
            "finish` it, then apply on NEW; or `pgwarden upgrade cancel --database-url OLD "
            "--target-url NEW`, then apply here"
        )
    return Refused(what, hint=hint + _SAFE)


def _on_new(db: str, uid: str, name: str, *, switched: bool) -> Refused:
    if switched:
        what = (
            f"database {db!r} is NEW of upgrade {uid} (switched, in progress: publication "
            f"{name} replicates its writes back to OLD for a rollback), but "
            + _WHY
            + "a new column would stop the replication to OLD at the first row that carries "
            "it (the rollback would be lost), and OLD would receive the migration's record in "
            "pgwarden.applied without its schema change"
        )
        hint = (
            "end the upgrade first: `pgwarden upgrade finish --database-url OLD --target-url "
            "NEW` (no rollback afterwards), then apply here; or `pgwarden upgrade rollback "
            "--database-url OLD --target-url NEW`, then apply on OLD"
        )
    else:
        what = (
            f"database {db!r} is NEW of upgrade {uid} (before its switchover, in progress: "
            f"subscription {name} replicates OLD into it), but "
            + _WHY
            + "a migration here would be missing on OLD, and OLD's writes may no longer fit"
        )
        hint = (
            "let the upgrade switch over (`pgwarden upgrade run`) and `pgwarden upgrade "
            "finish` it, then apply here; or `pgwarden upgrade cancel --database-url OLD "
            "--target-url NEW`"
        )
    return Refused(what, hint=hint + _SAFE)
