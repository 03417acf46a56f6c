"""`upgrade run`: blue/green through logical replication, resumable, with a bounded switchover.

Phases, each recorded on OLD before the next starts (see `journal`):
guardrails -> schema (pg_dump --schema-only of OLD into NEW) -> replication
(publication on OLD, subscription on NEW) -> initial_copy (progress from
pg_subscription_rel and pg_stat_progress_copy) -> catch_up (lag in bytes and
seconds) -> verify (row counts and checksums at one LSN, `verify`) ->
sequences -> switchover (`switchover`). A run that was interrupted (Ctrl-C, a
killed process, `upgrade cancel` from another terminal) is continued by running
the same command again, or removed by `upgrade cancel`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden.apply.local_journal import LocalJournal
from pgwarden.errors import ApplyFailed, EnvironmentProblem, PgwardenError, Refused
from pgwarden.events import (
    Event,
    Observer,
    UpgradeCopy,
    UpgradeLag,
    UpgradePhase,
    UpgradeVerified,
    fan_out,
)
from pgwarden.pg.binaries import Installation, find_installations
from pgwarden.pg.connect import describe_dsn
from pgwarden.pg.tool_conninfo import tool_connection
from pgwarden.upgrade import hook_process, logical
from pgwarden.upgrade.check import Severity, logical_readiness
from pgwarden.upgrade.journal import (
    PHASES,
    Record,
    cancel_requested,
    ensure_schema,
    find_active,
    find_latest,
    lock_run,
    save,
)
from pgwarden.upgrade.logical import Names, Sides, Table
from pgwarden.upgrade.sequences import copy_sequences
from pgwarden.upgrade.switchover import Deadline, Switch, SwitchFailed, switch_over, undo
from pgwarden.upgrade.verify import NotCaughtUp, compare, consistent_snapshots

__all__ = [
    "Interrupted",
    "Problem",
    "RunOptions",
    "UpgradeFailed",
    "guardrails",
    "run_upgrade",
    "undo_interrupted_switchover",
]

Conn = psycopg.Connection[tuple[object, ...]]


class UpgradeFailed(ApplyFailed):
    """The upgrade stopped; the record on OLD tells its state (exit 3)."""


class Interrupted(UpgradeFailed):
    """Ctrl-C, SIGTERM or `upgrade cancel` stopped the run before its switchover."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason the upgrade must not start (a guardrail)."""

    code: str
    message: str
    hint: str


# Readiness checks another module may provide: (OLD, NEW) -> problems.
ReadinessCheck = Callable[[Conn, Conn], list[Problem]]


@dataclass(frozen=True, slots=True)
class RunOptions:
    environment: str
    target_major: int | None = None  # None: whatever NEW runs (must be newer than OLD)
    switchover_timeout_s: float = 30.0
    switch_cmd: str | None = None
    write_check: bool = True
    max_lag_bytes: int = 1 << 20  # start the switchover only below this lag
    verify: bool = True
    verify_pause_s: float = 1.0
    journal_file: str | None = None
    poll_s: float = 0.5


def _q(conn: Conn, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    return conn.execute(query, params).fetchall()


def _one(conn: Conn, query: str, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def guardrails(
    old: Conn, new: Conn, target_major: int | None, extra: tuple[ReadinessCheck, ...] = ()
) -> list[Problem]:
    """Every reason OLD -> NEW cannot be upgraded through logical replication."""
    problems: list[Problem] = []
    old_major = int(str(_one(old, "SHOW server_version_num"))) // 10000
    new_major = int(str(_one(new, "SHOW server_version_num"))) // 10000
    if target_major is not None and new_major != target_major:
        problems.append(
            Problem(
                "target-major",
                f"NEW runs PostgreSQL {new_major}, not {target_major}",
                "point --target-url at a server of the major you upgrade to",
            )
        )
    if new_major <= old_major:
        problems.append(
            Problem(
                "target-older",
                f"NEW runs PostgreSQL {new_major}, OLD {old_major}: not an upgrade",
                "point --target-url at a server of a newer major",
            )
        )
    for issue in logical_readiness(old):
        if issue.severity is Severity.BLOCKER:
            shown = ", ".join(issue.objects) + (f" and {issue.more} more" if issue.more else "")
            problems.append(
                Problem(issue.code, issue.message + (f" ({shown})" if shown else ""), issue.hint)
            )
    for side, conn in (("NEW", new),):
        level = str(_one(conn, "SHOW wal_level"))
        if level != "logical":
            problems.append(
                Problem(
                    "wal-level",
                    f"{side} has wal_level = {level}; logical replication needs logical",
                    f"ALTER SYSTEM SET wal_level = logical on {side} and restart it",
                )
            )
        free_slots = int(
            str(
                _one(
                    conn,
                    "SELECT current_setting('max_replication_slots')::int - "
                    "(SELECT count(*) FROM pg_replication_slots)",
                )
            )
        )
        need = 1
        if free_slots < need:
            problems.append(
                Problem(
                    "replication-slots",
                    f"{side} has {free_slots} free replication slots; the upgrade needs {need}",
                    "raise max_replication_slots (restart) or drop unused slots",
                )
            )
        senders = int(
            str(
                _one(
                    conn,
                    "SELECT current_setting('max_wal_senders')::int - "
                    "(SELECT count(*) FROM pg_stat_replication)",
                )
            )
        )
        if senders < need:
            problems.append(
                Problem(
                    "wal-senders",
                    f"{side} has {senders} free WAL senders; the upgrade needs {need}",
                    "raise max_wal_senders (restart)",
                )
            )

    available = {str(r[0]) for r in _q(new, "SELECT name FROM pg_available_extensions")}
    for (ext,) in _q(old, "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'"):
        if str(ext) not in available:
            problems.append(
                Problem(
                    "extension",
                    f"extension {ext} is installed on OLD but not available on NEW",
                    f"install {ext}'s package for NEW's major on NEW's host",
                )
            )
    roles_new = {str(r[0]) for r in _q(new, "SELECT rolname FROM pg_roles")}
    missing = [
        str(r[0])
        for r in _q(old, "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1")
        if str(r[0]) not in roles_new
    ]
    if missing:
        problems.append(
            Problem(
                "roles",
                f"roles of OLD missing on NEW: {', '.join(missing[:10])}"
                + (" ..." if len(missing) > 10 else ""),
                "copy them first: pg_dumpall --roles-only (from OLD) | psql (into NEW)",
            )
        )
    for side, conn in (("OLD", old), ("NEW", new)):
        if not bool(_one(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
            problems.append(
                Problem(
                    "role",
                    f"the role pgwarden connects to {side} as is not a superuser",
                    "connect as a superuser: publishing every table, subscribing and "
                    "ALTER DATABASE need it",
                )
            )
    for check in extra:
        problems.extend(check(old, new))
    return problems


def refuse_if_finished(old: Conn) -> None:
    """Refuse a new upgrade of an OLD whose last upgrade finished and is still read-only.

    Its data stopped at the switchover: NEW has served the writes since, so a second
    upgrade of OLD would copy stale data. Once OLD is made writable again on purpose,
    it is a database of its own and may be upgraded.
    """
    latest = find_latest(old)
    if latest is None or latest.state != "finished" or not logical.is_read_only(old):
        return
    db = str(_one(old, "SELECT current_database()"))
    raise Refused(
        f"upgrade {latest.id} of this database already finished: NEW ({latest.target}) "
        "serves the writes; OLD is read-only and stopped at the switchover",
        hint="to upgrade further, run against NEW (--database-url NEW); to start over "
        "from OLD, without NEW's writes, make it writable first (ALTER DATABASE "
        f"{sql.Identifier(db).as_string(old)} RESET default_transaction_read_only)",
    )


def _new_is_empty(new: Conn) -> list[Problem]:
    tables = logical.published_tables(new)
    if not tables:
        return []
    shown = ", ".join(t.qualified for t in tables[:5])
    return [
        Problem(
            "target-not-empty",
            f"NEW's database already holds tables ({shown}{' ...' if len(tables) > 5 else ''})",
            "point --target-url at an empty database (CREATE DATABASE on NEW)",
        )
    ]


def _tools(major: int) -> Installation:
    """Client programs able to dump OLD and restore into NEW: NEW's major, else newer."""
    found = sorted((i for i in find_installations() if i.major >= major), key=lambda i: i.major)
    for inst in found:
        if inst.tool("pg_dump").exists() and inst.tool("psql").exists():
            return inst
    raise EnvironmentProblem(
        f"no pg_dump and psql of PostgreSQL {major} or newer on this machine",
        hint="install NEW's client programs (postgresql-client-N) or set PGWARDEN_PG_BINDIR",
    )


def copy_schema(sides: Sides, new_major: int) -> None:
    """pg_dump --schema-only of OLD (no publications, no subscriptions, not pgwarden's
    upgrade record) restored into NEW with psql, stopping at the first error."""
    inst = _tools(new_major)
    src = tool_connection(sides.old_dsn)
    dst = tool_connection(sides.new_dsn)
    with tempfile.TemporaryDirectory(prefix="pgwarden-upgrade-") as tmp:
        dump = Path(tmp) / "schema.sql"
        os.chmod(tmp, 0o700)
        steps = [
            (
                [
                    str(inst.tool("pg_dump")),
                    "--schema-only",
                    "--no-publications",
                    "--no-subscriptions",
                    f"--exclude-schema={logical.STATE_SCHEMA}",
                    "-f",
                    str(dump),
                    "-d",
                    src.conninfo,
                ],
                src,
                "pg_dump of OLD",
            ),
            (
                [
                    str(inst.tool("psql")),
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-f",
                    str(dump),
                    "-d",
                    dst.conninfo,
                ],
                dst,
                "restoring the schema into NEW",
            ),
        ]
        for argv, conn, what in steps:
            proc = subprocess.run(
                argv,
                env=conn.env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
                timeout=3600,
            )
            if proc.returncode != 0:
                raise UpgradeFailed(
                    f"{what} failed: {conn.redact(proc.stderr.strip()[-1500:])}",
                    hint="fix the cause, recreate NEW's database empty, then "
                    "`pgwarden upgrade cancel` and run again",
                )


class _Runner:
    def __init__(
        self,
        sides: Sides,
        options: RunOptions,
        emit: Observer,
        cancel: threading.Event,
        extra_checks: tuple[ReadinessCheck, ...],
    ) -> None:
        self.sides = sides
        self.options = options
        self.emit = emit
        self.cancel = cancel
        self.extra_checks = extra_checks
        self.old = sides.old()
        self.record: Record | None = None
        self._last_poll = 0.0
        self._flag_read_at = 0.0
        self._flag = False
        self._guardrails_s = 0.0
        self.new_id = secrets.token_hex(4)  # the id of the upgrade, if a new one starts

    # -- helpers -----------------------------------------------------------------------

    def stopped(self) -> bool:
        """Ctrl-C here, or `upgrade cancel` in another terminal."""
        if self.cancel.is_set():
            return True
        assert self.record is not None
        return cancel_requested(self.old, self.record.id)

    def stop_asked(self) -> bool:
        """`stopped()` for the switchover's frequent checks: the record read twice a second."""
        if self.cancel.is_set():
            return True
        now = time.monotonic()
        if now - self._flag_read_at >= 0.5:
            self._flag_read_at = now
            self._flag = self.stopped()
        return self._flag

    def check_stop(self, where: str) -> None:
        if self.stopped():
            raise Interrupted(
                f"upgrade {self.rid} interrupted during {where}",
                hint="`pgwarden upgrade run` with the same arguments continues it; "
                "`pgwarden upgrade cancel` removes what it created",
            )

    @property
    def rid(self) -> str:
        assert self.record is not None
        return self.record.id

    def todo(self, name: str) -> bool:
        """Whether phase `name` is still to run (a resumed run skips the done ones)."""
        assert self.record is not None
        if PHASES.index(self.record.phase) <= PHASES.index(name):
            return True
        self.emit(
            UpgradePhase(
                upgrade_id=self.rid, phase=name, status="skipped", message="done by an earlier run"
            )
        )
        return False

    @contextmanager
    def phase(self, name: str, message: str) -> Iterator[None]:
        assert self.record is not None
        self.check_stop(f"the {name} phase")
        self.record.phase = name
        save(self.old, self.record)
        self.emit(UpgradePhase(upgrade_id=self.rid, phase=name, status="started", message=message))
        started = time.monotonic()
        try:
            yield
        except BaseException as exc:
            self.emit(
                UpgradePhase(
                    upgrade_id=self.rid,
                    phase=name,
                    status="failed",
                    message=getattr(exc, "message", None) or str(exc) or type(exc).__name__,
                    duration_s=time.monotonic() - started,
                )
            )
            raise
        took = time.monotonic() - started
        self.record.info.setdefault("phase_s", {})[name] = round(took, 3)
        nxt = PHASES.index(name) + 1
        if nxt < len(PHASES):
            self.record.phase = PHASES[nxt]
        save(self.old, self.record)
        self.emit(
            UpgradePhase(
                upgrade_id=self.rid, phase=name, status="done", message=message, duration_s=took
            )
        )

    # -- the run -----------------------------------------------------------------------

    def run(self) -> Record:
        new = self.sides.new()
        try:
            if find_active(self.old) is None:
                # a new upgrade: refused before anything is written to either side
                refuse_if_finished(self.old)
                self._guardrails(new)
            ensure_schema(self.old)
            if not lock_run(self.old):
                raise Refused(
                    "another pgwarden upgrade process is running against this database",
                    hint="`pgwarden upgrade status` shows it; wait for it or cancel it",
                )
            self.record = self._start_or_resume(new)
            self._phases(new)
        finally:
            new.close()
        return self.record

    def _guardrails(self, new: Conn) -> None:
        """Every guardrail, read-only; `Refused` listing each problem and its fix."""
        started = time.monotonic()
        self.emit(
            UpgradePhase(
                upgrade_id=self.new_id,
                phase="guardrails",
                status="started",
                message="checking OLD and NEW",
            )
        )
        problems = guardrails(self.old, new, self.options.target_major, self.extra_checks)
        problems += _new_is_empty(new)
        self._guardrails_s = round(time.monotonic() - started, 3)
        if problems:
            self.emit(
                UpgradePhase(
                    upgrade_id=self.new_id,
                    phase="guardrails",
                    status="failed",
                    message=f"{len(problems)} problem(s), nothing was changed",
                    duration_s=self._guardrails_s,
                )
            )
            n = len(problems)
            raise Refused(
                f"{n} guardrail{'s' if n > 1 else ''} refuse{'' if n > 1 else 's'} the upgrade "
                "(nothing was changed):\n"
                + "\n".join(
                    f"  ({i}) [{p.code}] {p.message}\n      fix: {p.hint}"
                    for i, p in enumerate(problems, 1)
                ),
                hint="fix each, then run the same command again; `pgwarden upgrade check "
                "--route logical` lists them without NEW",
            )
        self.emit(
            UpgradePhase(
                upgrade_id=self.new_id,
                phase="guardrails",
                status="done",
                message="OLD and NEW are ready",
                duration_s=self._guardrails_s,
            )
        )

    def _start_or_resume(self, new: Conn) -> Record:
        target = describe_dsn(self.sides.new_dsn)
        active = find_active(self.old)
        if active is not None:
            if active.target != target:
                raise Refused(
                    f"upgrade {active.id} of this database to {active.target} is not over "
                    f"({active.state})",
                    hint="finish it, roll it back or cancel it (`pgwarden upgrade status`)",
                )
            if active.state in ("switched", "rolling_back"):
                raise Refused(
                    f"upgrade {active.id} has already switched over to NEW",
                    hint="`pgwarden upgrade rollback` goes back to OLD; `pgwarden upgrade "
                    "status` shows it",
                )
            if active.info.get("new_stale"):
                raise Refused(
                    f"upgrade {active.id} lost NEW's sync with OLD in an interrupted switchover",
                    hint="`pgwarden upgrade cancel`, recreate NEW's database, and run again",
                )
            if active.state == "switching":
                undo_interrupted_switchover(
                    self.old, self.sides, active, self.emit, self.options.switch_cmd
                )
            active.state = "running"
            active.cancel_requested = False
            self.old.execute(
                f"UPDATE {logical.STATE_SCHEMA}.runs SET cancel_requested = false WHERE id = %s",
                (active.id,),
            )
            save(self.old, active)
            self._journal_file(active.id)
            self.emit(
                UpgradePhase(
                    upgrade_id=active.id,
                    phase=active.phase,
                    status="started",
                    message=f"resuming upgrade {active.id} at {active.phase}",
                )
            )
            return active
        major = int(str(_one(new, "SHOW server_version_num"))) // 10000
        db = str(_one(self.old, "SELECT current_database()"))
        record = Record(
            id=self.new_id,
            state="running",
            phase="schema",
            environment=self.options.environment,
            database=db,
            target=target,
            target_major=major,
            info={
                "old": describe_dsn(self.sides.old_dsn),
                "old_was_read_only": logical.is_read_only(self.old),
            },
        )
        self._journal_file(record.id)
        save(self.old, record)
        return record

    def _journal_file(self, rid: str) -> None:
        if self.options.journal_file:
            journal = LocalJournal(self.options.journal_file, rid)
            self.emit = fan_out([journal, self.emit])

    def _phases(self, new: Conn) -> None:
        assert self.record is not None
        record = self.record
        tables: list[Table] = []
        record.info.setdefault("phase_s", {}).setdefault("guardrails", self._guardrails_s)
        tables = logical.published_tables(self.old)
        names = Names(record.id)
        if self.todo("schema"):
            with self.phase("schema", "copying the schema to NEW (pg_dump --schema-only)"):
                if logical.published_tables(new):
                    raise UpgradeFailed(
                        "an earlier run stopped while copying the schema: NEW is half-filled",
                        hint="`pgwarden upgrade cancel`, recreate NEW's database empty, run again",
                    )
                copy_schema(self.sides, record.target_major)
                logical.ensure_marker(new)
                record.info["schema_fingerprint"] = logical.schema_fingerprint(self.old)
                record.info["new_schema_fingerprint"] = logical.schema_fingerprint(new)
        if self.todo("replication"):
            with self.phase("replication", "creating the publication on OLD, subscription on NEW"):
                logical.create_publication(self.old, names.forward, tables)
                logical.create_subscription(
                    new, names.forward, self.sides.source_conninfo, copy_data=True
                )
        estimates = {t.qualified: t.estimate for t in tables}
        if self.todo("initial_copy"):
            with self.phase("initial_copy", f"copying {len(tables)} tables to NEW"):
                while True:
                    progress = logical.copy_progress(new, names.forward, estimates)
                    self.emit(
                        UpgradeCopy(
                            upgrade_id=record.id,
                            tables_ready=progress.tables_ready,
                            tables_total=progress.tables_total,
                            rows_done=progress.rows_done,
                            rows_total=progress.rows_total,
                            copying=progress.copying,
                        )
                    )
                    if progress.done:
                        break
                    self._sub_errors(new, names.forward)
                    self.check_stop("the initial copy")
                    time.sleep(self.options.poll_s)
        if self.todo("catch_up"):
            with self.phase(
                "catch_up",
                f"waiting until NEW trails OLD by less than {self.options.max_lag_bytes:,} bytes",
            ):
                self._wait_lag(names.forward)
        if self.todo("verify"):
            if self.options.verify:
                with self.phase("verify", "comparing row counts and checksums at one LSN"):
                    self._verify(tables, names)
            else:
                with self.phase("verify", "verification skipped (--no-verify)"):
                    pass
        if self.todo("sequences"):
            with self.phase("sequences", "copying sequence values to NEW"):
                record.info["sequences"] = copy_sequences(self.old, new)
        self._check_ddl(new)
        self._wait_lag(names.forward)
        self.check_stop("the catch-up")
        sw = Switch(
            sides=self.sides,
            names=names,
            tables=tables,
            record=record,
            journal=self.old,
            emit=self.emit,
            switch_cmd=self.options.switch_cmd,
            write_check=self.options.write_check,
        )
        self.emit(
            UpgradePhase(
                upgrade_id=record.id,
                phase="switchover",
                status="started",
                message=f"switchover (timeout {self.options.switchover_timeout_s:g} s)",
            )
        )
        started = time.monotonic()
        try:
            switch_over(sw, Deadline(self.options.switchover_timeout_s, self.stop_asked))
        except SwitchFailed as exc:
            raise UpgradeFailed(
                f"switchover rolled back: {exc}",
                hint="OLD takes writes; "
                + (
                    "`pgwarden upgrade run` tries the switchover again"
                    if record.state == "running"
                    else "`pgwarden upgrade status` tells the state"
                ),
            ) from None
        record.info.setdefault("phase_s", {})["switchover"] = round(time.monotonic() - started, 3)
        self._restamp(new)
        save(self.old, record)

    def _sub_errors(self, new: Conn, name: str) -> None:
        """Raise when the subscription's workers keep failing (the server log has why)."""
        row = new.execute(
            "SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats "
            "WHERE subname = %s",
            (name,),
        ).fetchone()
        if row is not None and int(str(row[0])) >= 5:
            raise UpgradeFailed(
                f"the subscription on NEW failed {row[0]} times (see NEW's server log)",
                hint="fix the cause (a conflicting row, a missing column), then run again; "
                "or `pgwarden upgrade cancel`",
            )

    def _wait_lag(self, slot: str) -> None:
        assert self.record is not None
        while True:
            current = logical.lag(self.old, slot)
            if current is None:
                raise UpgradeFailed(
                    f"the replication slot {slot} is gone from OLD",
                    hint="`pgwarden upgrade cancel` and start again",
                )
            now = time.monotonic()
            if now - self._last_poll >= self.options.poll_s:
                self.emit(
                    UpgradeLag(
                        upgrade_id=self.record.id,
                        direction="forward",
                        lag_bytes=current.bytes,
                        lag_s=current.seconds,
                    )
                )
                self._last_poll = now
            if current.bytes <= self.options.max_lag_bytes:
                return
            self.check_stop("the catch-up")
            time.sleep(0.1)

    def _verify(self, tables: list[Table], names: Names) -> None:
        assert self.record is not None
        for _attempt in range(20):
            self.check_stop("the verification")
            self._wait_lag(names.forward)
            try:
                with consistent_snapshots(
                    self.sides.old,
                    self.sides.new,
                    tables,
                    names.forward,
                    pause_s=self.options.verify_pause_s,
                ) as snaps:
                    self.record.info["verify_pause_s"] = round(snaps.paused_s, 3)
                    bad = []
                    for check in compare(snaps, tables):
                        self.emit(
                            UpgradeVerified(
                                upgrade_id=self.record.id,
                                table=check.table,
                                lsn=snaps.lsn,
                                rows_old=check.rows_old,
                                rows_new=check.rows_new,
                                same=check.same,
                            )
                        )
                        if not check.same:
                            bad.append(check.table)
                    self.record.info["verified_lsn"] = snaps.lsn
                if bad:
                    raise UpgradeFailed(
                        f"NEW differs from OLD at LSN {snaps.lsn} in {', '.join(bad)}",
                        hint="look for writes made on NEW directly or a failing subscription; "
                        "`pgwarden upgrade cancel`",
                    )
                return
            except (NotCaughtUp, psycopg.errors.LockNotAvailable):
                time.sleep(1.0)
        raise UpgradeFailed(
            "could not take consistent snapshots of OLD and NEW: writes never paused long "
            "enough for NEW to catch up",
            hint="raise --verify-pause, or run in a quieter moment; --no-verify skips it",
        )

    def _check_ddl(self, new: Conn) -> None:
        """DDL is not replicated: refuse the switchover if OLD's schema changed since it was
        copied and NEW's did not (the same DDL applied on NEW lets it go on, reported)."""
        assert self.record is not None
        info = self.record.info
        old_now = logical.schema_fingerprint(self.old)
        new_now = logical.schema_fingerprint(new)
        if info.get("schema_fingerprint") in (None, old_now):
            return
        if info.get("new_schema_fingerprint") not in (None, new_now):
            self.emit(
                UpgradePhase(
                    upgrade_id=self.rid,
                    phase="sequences",
                    status="done",
                    message="DDL ran on OLD during the upgrade and NEW's schema changed too: "
                    "taken as the same DDL applied on NEW",
                )
            )
            info["schema_fingerprint"], info["new_schema_fingerprint"] = old_now, new_now
            save(self.old, self.record)
            return
        self.record.state = "interrupted"
        save(self.old, self.record)
        raise Refused(
            "the schema of OLD changed during the upgrade (DDL is not replicated): switching "
            "over would lose it on NEW",
            hint="apply the same DDL on NEW, then run again; or `pgwarden upgrade cancel`",
        )

    def _restamp(self, new: Conn) -> None:
        """NEW received OLD's pgwarden stamp: make it describe NEW (same environment)."""
        from pgwarden.apply.identity import read_identity, read_stamp, write_stamp

        try:
            stamp = read_stamp(new, lost_ok=True)
        except PgwardenError:
            return
        if stamp is None:
            return
        protected = stamp.protected if stamp.protected is not None else True
        write_stamp(
            new, stamp.environment, read_identity(new), "pgwarden upgrade run", protected=protected
        )


def run_upgrade(
    sides: Sides,
    options: RunOptions,
    emit: Observer,
    cancel: threading.Event | None = None,
    extra_checks: tuple[ReadinessCheck, ...] = (),
) -> Record:
    """Run (or continue) the upgrade of OLD to NEW; returns the record once switched.

    Raises `Refused` (guardrails), `Interrupted` (Ctrl-C/cancel: resumable), or
    `UpgradeFailed` (the record tells the state)."""
    runner = _Runner(sides, options, emit, cancel or threading.Event(), extra_checks)
    try:
        return runner.run()
    except Interrupted:
        if runner.record is not None:
            runner.record.state = "interrupted"
            save(runner.old, runner.record)
            if cancel_requested(runner.old, runner.record.id):
                from pgwarden.upgrade.cancel import clean_up

                clean_up(runner.old, sides, runner.record, runner.emit)
                raise Interrupted(
                    f"upgrade {runner.record.id} cancelled: OLD is as it was",
                    hint="NEW keeps what was copied: recreate its database before a new run",
                ) from None
        raise
    except UpgradeFailed:
        if runner.record is not None and runner.record.state == "running":
            runner.record.state = "interrupted"
            save(runner.old, runner.record)
        raise
    except KeyboardInterrupt:  # Ctrl-C twice: stop now, and say what is left
        record = runner.record
        if record is None:
            raise
        if record.state == "switching":
            raise UpgradeFailed(
                f"upgrade {record.id} stopped inside its switchover (Ctrl-C twice): OLD may "
                "be read-only and the application may be on NEW",
                hint="`pgwarden upgrade run` (same arguments) undoes the switchover and "
                "retries it; `pgwarden upgrade cancel --target-url NEW --switch-cmd CMD` "
                "undoes it and removes the upgrade",
            ) from None
        with contextlib.suppress(psycopg.Error, PgwardenError):
            if record.state == "running":
                record.state = "interrupted"
                with sides.old() as fresh:  # this process's connection may be mid-query
                    save(fresh, record)
        raise Interrupted(
            f"upgrade {record.id} stopped during {record.phase} (Ctrl-C twice); the "
            "replication it created keeps running",
            hint="`pgwarden upgrade run` with the same arguments continues it; "
            "`pgwarden upgrade cancel` removes what it created",
        ) from None
    finally:
        runner.old.close()


def undo_interrupted_switchover(
    old: Conn, sides: Sides | None, record: Record, emit: Observer, switch_cmd: str | None = None
) -> None:
    """Undo the switchover a killed process left half-done (see `switchover.undo`); if its
    hook had started, `switch_cmd` runs again with PGWARDEN_SWITCH_TO=old."""
    if sides is None:
        raise Refused(
            f"upgrade {record.id} stopped in the middle of its switchover",
            hint="pass --target-url so that pgwarden can undo it on both sides",
        )
    tables = logical.published_tables(old)
    sw = Switch(
        sides=sides,
        names=Names(record.id),
        tables=tables,
        record=record,
        journal=old,
        emit=emit,
        switch_cmd=switch_cmd,
        write_check=False,
    )
    stray = record.info.pop("hook_process", None)
    if hook_process.stop(stray):
        assert isinstance(stray, dict)
        emit(
            UpgradePhase(
                upgrade_id=record.id,
                phase="switchover",
                status="done",
                message=f"ended the switch hook the stopped process left running (process "
                f"group {stray['pgid']}): it would have moved the application to NEW later",
            )
        )
    elif hook_process.running(stray) is None:
        assert isinstance(stray, dict)
        emit(
            UpgradePhase(
                upgrade_id=record.id,
                phase="switchover",
                status="failed",
                message=f"the switch hook started on {stray.get('host')} (process group "
                f"{stray.get('pgid')}) may still be running there: stop it, or it may move "
                "the application to NEW",
            )
        )
    if record.info.get("hook_started") and not switch_cmd:
        emit(
            UpgradePhase(
                upgrade_id=record.id,
                phase="switchover",
                status="failed",
                message="the switch hook had started and no --switch-cmd was given to run it "
                "back: point the application at OLD yourself",
            )
        )
    undo(sw, "the process running the switchover stopped")


def events_of(record: Record) -> dict[str, object]:
    return record.to_dict()


_ = Event
