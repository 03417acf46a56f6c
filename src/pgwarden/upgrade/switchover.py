"""The switchover: OLD stops taking writes, NEW catches up, the application moves to NEW.

Bounded by one deadline (`--switchover-timeout`). In order:

1. EXCLUSIVE locks on every published table of OLD (reads go on, writers wait);
2. OLD's final LSN; wait until NEW has applied it;
3. sequences set on NEW from OLD;
4. the forward subscription dropped, the reverse replication NEW -> OLD created
   (its slot on NEW starts here: every later write on NEW flows back to OLD);
5. OLD read-only (ALTER DATABASE ... SET default_transaction_read_only, and its
   client sessions ended), then the locks released;
6. the switch hook (`--switch-cmd`) with PGWARDEN_SWITCH_TO=new;
7. a check that writes arrive on NEW.

Past the deadline, or on any failure, it is undone: before the hook, by putting
the forward replication back while OLD is still frozen and making OLD writable;
after the hook has run, by a switch back through the reverse replication
(`rollback.switch_back`), so no write made on NEW is lost, with the forward
replication put back before OLD takes writes. Either way NEW stays in sync and
the switchover can be tried again. The step reached is saved in the record after each
step, so a killed process is undone the same way by `cancel` or a new `run`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from pgwarden.events import Observer, UpgradeHook, UpgradeSwitchover
from pgwarden.pg.connect import describe_dsn
from pgwarden.pg.tool_conninfo import tool_connection
from pgwarden.upgrade import hook_process, logical
from pgwarden.upgrade.journal import Record, save
from pgwarden.upgrade.logical import Names, Sides, Table
from pgwarden.upgrade.sequences import copy_sequences
from pgwarden.upgrade.verify import ApplyFailing, lock_tables, wait_applied

__all__ = ["Deadline", "HookResult", "SwitchFailed", "run_hook", "switch_over", "undo"]

Conn = psycopg.Connection[tuple[object, ...]]

# The order of the steps; the record keeps the last one completed.
STEPS = ("locked", "caught_up", "sequences", "reversed", "old_read_only", "hook", "writes_seen")


class SwitchFailed(Exception):
    """A step of the switchover failed or ran past the deadline."""


class Deadline:
    """A monotonic deadline; `left()` is what remains (never below `floor`)."""

    def __init__(self, seconds: float, cancelled: Callable[[], bool] = lambda: False) -> None:
        self.at = time.monotonic() + seconds
        self.seconds = seconds
        self.cancelled = cancelled

    def left(self, floor: float = 0.05) -> float:
        return max(self.at - time.monotonic(), floor)

    def check(self, what: str) -> None:
        if self.cancelled():
            raise SwitchFailed(f"cancelled during {what}")
        if time.monotonic() >= self.at:
            raise SwitchFailed(f"the switchover timeout ({self.seconds:g} s) passed during {what}")


@dataclass(frozen=True, slots=True)
class HookResult:
    exit_code: int | None  # None: killed at the deadline
    output: str
    duration_s: float


def _hook_env(sides: Sides, switch_to: str, upgrade_id: str) -> dict[str, str]:
    """A clean environment: PATH, locale, and what the hook needs to know (no password)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "HOME")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        PGWARDEN_UPGRADE_ID=upgrade_id,
        PGWARDEN_SWITCH_TO=switch_to,
        PGWARDEN_OLD=describe_dsn(sides.old_dsn),
        PGWARDEN_NEW=describe_dsn(sides.new_dsn),
    )
    for side, dsn in (("OLD", sides.old_dsn), ("NEW", sides.new_dsn)):
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        for key in ("host", "port", "dbname", "user"):
            if params.get(key) is not None:
                env[f"PGWARDEN_{side}_{key.upper()}"] = str(params[key])
    return env


def run_hook(
    command: str,
    sides: Sides,
    switch_to: str,
    upgrade_id: str,
    timeout_s: float,
    on_start: Callable[[int], None] | None = None,
) -> HookResult:
    """Run `command` with /bin/sh, a clean environment and stdin closed; output captured
    (stdout and stderr, last 8 kB) with the DSNs' passwords masked; killed at the timeout,
    and when pgwarden itself is interrupted (a second Ctrl-C) while waiting for it.
    `on_start` gets the hook's process group id as soon as it runs."""
    env = _hook_env(sides, switch_to, upgrade_id)
    started = time.monotonic()
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        if on_start is not None:
            on_start(proc.pid)
        out, _ = proc.communicate(timeout=timeout_s)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        code = None
    except BaseException:
        # never leave it running behind pgwarden: it could move the application later
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    text = out.decode(errors="replace")[-8192:]
    for dsn in (sides.old_dsn, sides.new_dsn, sides.source_conninfo, sides.target_conninfo):
        text = tool_connection(dsn, {}).redact(text)
    return HookResult(code, text, time.monotonic() - started)


@dataclass
class Switch:
    """What one switchover attempt holds while it runs."""

    sides: Sides
    names: Names
    tables: list[Table]
    record: Record
    journal: Conn  # autocommit connection to OLD for the record
    emit: Observer
    switch_cmd: str | None
    write_check: bool
    locker: Conn | None = None
    final_lsn: str | None = None
    paused_at: float | None = None
    _last: float = 0.0

    def step(self, name: str, **info: object) -> None:
        now = time.monotonic()
        if self.paused_at is not None:  # each step's time, for status and the bench
            took = self.record.info.setdefault("switch_steps_s", {})
            took[name] = round(now - self._last or self.paused_at, 3)
        self._last = now
        self.record.info["switch_step"] = name
        self.record.info.update(info)
        save(self.journal, self.record)

    def outcome(self, outcome: str, paused_s: float, message: str) -> None:
        """Emit how this switchover to NEW ended (switched, rolled_back)."""
        self.emit(
            UpgradeSwitchover(
                upgrade_id=self.record.id,
                direction="to_new",
                outcome=outcome,
                final_lsn=self.final_lsn,
                writes_paused_s=paused_s,
                message=message,
            )
        )


def switch_over(sw: Switch, deadline: Deadline) -> None:
    """Run the switchover; raises `SwitchFailed` after undoing it."""
    sw.record.state = "switching"
    sw.record.phase = "switchover"
    sw.record.info.pop("switch_step", None)
    sw.record.info.pop("switch_steps_s", None)
    sw.step("started")
    try:
        _forward(sw, deadline)
    except (SwitchFailed, psycopg.Error, OSError) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        undo(sw, why)
        raise SwitchFailed(why) from None
    finally:
        if sw.locker is not None:
            sw.locker.close()
            sw.locker = None


def _forward(sw: Switch, deadline: Deadline) -> None:
    old, new = sw.journal, sw.sides.new()
    try:
        # 1. writes to the published tables wait behind our locks
        sw.locker = sw.sides.old(autocommit=False)
        sw.paused_at = time.monotonic()
        lock_tables(sw.locker, sw.tables, int(deadline.left() * 1000))
        sw.step("locked")
        # 2. final LSN, NEW applies it
        try:
            sw.final_lsn = wait_applied(old, new, deadline.at, subscription=sw.names.forward)
        except ApplyFailing as exc:
            raise SwitchFailed(
                f"NEW's subscription failed to apply OLD's last writes ({exc.errors} apply "
                "error(s); the reason is in NEW's server log)"
            ) from None
        if sw.final_lsn is None:
            deadline.check("the catch-up of NEW")
            raise SwitchFailed("NEW did not apply OLD's last writes in time")
        sw.record.info["final_lsn"] = sw.final_lsn
        sw.step("caught_up")
        # 3. sequences
        deadline.check("the catch-up of NEW")
        _statement_timeout(new, deadline)
        sw.record.info["sequences"] = copy_sequences(old, new)
        sw.step("sequences")
        # 4. reverse replication; the forward one ends here
        deadline.check("setting the sequences")
        _statement_timeout(old, deadline)
        logical.drop_subscription(new, sw.names.forward)
        # not the stamp (pgwarden.target): NEW's is rewritten for NEW after the switch, and
        # sent back it would overwrite OLD's with NEW's identity (apply on OLD after a
        # rollback then refused it as a copy)
        back = [t for t in sw.tables if (t.schema, t.name) != ("pgwarden", "target")]
        logical.create_publication(new, sw.names.reverse, back)
        logical.create_subscription(
            old, sw.names.reverse, sw.sides.target_conninfo, copy_data=False
        )
        sw.step("reversed")
        # 5. OLD read-only for every new session, its sessions ended, locks released
        deadline.check("creating the reverse replication")
        logical.set_read_only(old, True)
        sw.record.info["old_read_only"] = True
        logical.terminate_clients(old, keep=(sw.locker.info.backend_pid,))
        if logical.is_read_only(new):  # left so by a switchover undone earlier
            logical.set_read_only(new, False)
        sw.step("old_read_only")
        sw.locker.rollback()
        baseline = logical.write_count(new)
        # 6. the hook moves the application
        deadline.check("making OLD read-only")
        if sw.switch_cmd:
            sw.step("hook", hook_started=True)

            def started(pgid: int) -> None:  # a later pgwarden can end it (kill -9 of this one)
                sw.record.info["hook_process"] = hook_process.describe(pgid)
                save(sw.journal, sw.record)

            result = run_hook(
                sw.switch_cmd, sw.sides, "new", sw.record.id, deadline.left(), on_start=started
            )
            sw.record.info.pop("hook_process", None)
            sw.emit(
                UpgradeHook(
                    upgrade_id=sw.record.id,
                    switch_to="new",
                    exit_code=result.exit_code,
                    duration_s=result.duration_s,
                    output=result.output,
                )
            )
            if result.exit_code is None:
                raise SwitchFailed("the switch hook ran past the switchover timeout")
            if result.exit_code != 0:
                raise SwitchFailed(f"the switch hook failed (exit {result.exit_code})")
        else:
            sw.step("hook", hook_started=True)
        paused = time.monotonic() - (sw.paused_at or time.monotonic())
        if deadline.cancelled():  # Ctrl-C or `upgrade cancel` while the hook ran
            deadline.check("the switch hook")
        # 7. writes arrive on NEW
        if sw.write_check:
            while logical.write_count(new) <= baseline:
                if deadline.cancelled():
                    deadline.check("waiting for writes on NEW")
                if time.monotonic() >= deadline.at:
                    raise SwitchFailed(_no_writes(sw.switch_cmd))
                time.sleep(0.05)
        sw.step("writes_seen")
    finally:
        new.close()
    logical.drop_publication(old, sw.names.forward)  # nothing subscribes to it any more
    sw.record.info["writes_paused_s"] = round(paused, 3)
    # From here a rollback needs the reverse replication; status bounds the risk by it.
    sw.record.info["switched_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    sw.record.state = "switched"
    sw.step("switched")
    sw.outcome("switched", paused, "OLD is read-only and receives NEW's changes")


def _no_writes(switch_cmd: str | None) -> str:
    """Why the write check failed, naming what should have moved the application."""
    if switch_cmd:
        return (
            "no write reached NEW within the switchover timeout: did the hook move "
            "the application? (for a quiet application, pass --no-write-check)"
        )
    return (
        "no write reached NEW within the switchover timeout: no --switch-cmd was given, so "
        "nothing moved the application (pass --switch-cmd CMD that points it at NEW, or "
        "--no-write-check to move it yourself after the switchover)"
    )


def _statement_timeout(conn: Conn, deadline: Deadline) -> None:
    conn.execute(
        sql.SQL("SET statement_timeout = {}").format(
            sql.Literal(f"{max(int(deadline.left() * 1000), 100)}ms")
        )
    )


def undo(sw: Switch, why: str, *, bound_s: float = 30.0) -> None:
    """Undo a switchover that stopped at `record.info['switch_step']` (see module doc)."""
    from pgwarden.upgrade.rollback import switch_back

    step = str(sw.record.info.get("switch_step", "started"))
    started = sw.paused_at or time.monotonic()
    if step in ("hook", "writes_seen") and sw.record.info.get("hook_started"):
        # the application may be on NEW already: back through the reverse replication
        switch_back(
            sw.sides,
            sw.names,
            sw.tables,
            sw.record,
            sw.journal,
            sw.emit,
            sw.switch_cmd,
            Deadline(bound_s),
            keep_forward=True,
        )
        sw.outcome(
            "rolled_back",
            time.monotonic() - started,
            f"{why}; switched back to OLD with NEW's writes, NEW replicates again: run again "
            "to retry",
        )
        return
    old = sw.journal
    old.execute("SET statement_timeout = '30s'")
    new = sw.sides.new()
    try:
        new.execute("SET statement_timeout = '30s'")
        if sw.locker is None or sw.locker.closed or step in ("old_read_only",):
            # OLD's own locks are gone: keep writers out while replication is put back
            logical.terminate_clients(old, writers_only=True)
        # reverse replication away
        logical.drop_subscription(old, sw.names.reverse)
        logical.drop_publication(new, sw.names.reverse)
        logical.drop_slot(new, sw.names.reverse)
        # forward replication back (OLD took no write since NEW applied its final LSN)
        stale = False
        if step in ("sequences", "reversed", "old_read_only", "hook"):
            try:
                logical.create_publication(old, sw.names.forward, sw.tables)
                logical.create_subscription(
                    new, sw.names.forward, sw.sides.source_conninfo, copy_data=False
                )
            except psycopg.Error:
                stale = True
        logical.set_read_only(old, False)
        sw.record.info["old_read_only"] = False
    finally:
        new.close()
        if sw.locker is not None and not sw.locker.closed:
            sw.locker.rollback()
    sw.record.state = "interrupted" if stale else "running"
    sw.record.phase = "sequences"
    sw.record.info.pop("switch_step", None)
    sw.record.info.pop("hook_started", None)
    if stale:
        sw.record.info["new_stale"] = True
    save(sw.journal, sw.record)
    sw.outcome(
        "rolled_back",
        time.monotonic() - started,
        f"{why}; OLD takes writes again"
        + (
            "; NEW could not be put back in sync: cancel and start over"
            if stale
            else "; NEW is still replicating: run again to retry"
        ),
    )
