"""Run a plan over a fleet in waves: apply each target through apply's guarded runner,
check the health gates, bake, go on, or halt.

Each target is applied by `pgwarden.apply.api.apply_plan` with its own
identity stamp, environment check and advisory lock, exactly as `pgwarden
apply` would. A wave applies its targets on a bounded thread pool (`parallel`,
at most `max_connections // 3` at once over the fleet: one apply holds three
connections; at most `max_per_server` per server); the pool is closed at the
end of each wave, so no thread outlives it. A failed or refused target stops
the wave from starting more targets (those running finish their step), and
the rollout halts before the next wave; a failed gate halts it too; with
`on_error = continue` both are recorded and the rollout goes on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgwarden.apply.api import GuardPolicy, Limits, RunOptions, apply_plan
from pgwarden.apply.executor import build_units
from pgwarden.apply.journal import plan_from_records, plan_to_records, schema_exists, step_keys
from pgwarden.errors import ConnectionFailed, PgwardenError, Refused, UsageError
from pgwarden.events import (
    Event,
    FleetGate,
    FleetHalted,
    FleetTarget,
    FleetWave,
    HealthPause,
    LockWait,
    Observer,
    Reconnecting,
    Retry,
    WatchdogCancel,
)
from pgwarden.fleet.alembic import AlembicChange, online_lock
from pgwarden.fleet.config import FleetConfig, GateSpec
from pgwarden.fleet.gates import (
    GateResult,
    Reading,
    check_gate_urls,
    evaluate,
    gate_url,
    read_target,
)
from pgwarden.fleet.journal import RolloutJournal, journal_path, runner_lock
from pgwarden.fleet.targets import Redactor, Target, server_of
from pgwarden.fleet.waves import Wave, plan_waves
from pgwarden.fleet.words import count
from pgwarden.pg.connect import connect
from pgwarden.plan import Plan
from pgwarden.settings import Settings
from pgwarden.threads import Background

__all__ = [
    "RolloutOptions",
    "RolloutResult",
    "TargetOutcome",
    "check_plan",
    "resume_rollout",
    "run_rollout",
]

CONNECTIONS_PER_APPLY = 3  # the run's session, its journal and its watchdog
# a target in one of these states stops its wave (on_error = halt); "unreachable": it
# could not be connected to, so nothing of the change ran there
_FAILED = ("failed", "refused", "cancelled", "unreachable")


@dataclass(frozen=True, slots=True)
class RolloutOptions:
    """What the user said on the command line (or a library caller)."""

    env: str
    yes: bool = False  # the fleet was confirmed (typed, or --yes): protected targets may run
    accept_data_loss: str | None = None
    # adopt targets that hold data but were never stamped, as --env (apply's --restamp)
    restamp: bool = False
    limits: Limits = field(default_factory=Limits)
    selector: tuple[tuple[str, str], ...] = ()  # only targets carrying these labels
    on_error: str | None = None  # None: the fleet's
    # apply's --rewrite on every target (each target's own traffic snapshot decides)
    rewrite: bool = False


@dataclass(frozen=True, slots=True)
class TargetOutcome:
    name: str
    wave: int
    state: str  # pending (never touched), running, done, failed, refused, cancelled, unreachable
    run_id: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class RolloutResult:
    rollout_id: str
    state: str  # done, halted, cancelled
    halted_wave: int | None
    reason: str | None  # target, gate, cancelled
    message: str | None
    targets: tuple[TargetOutcome, ...]
    gates: tuple[tuple[int, GateResult], ...]
    journal: str

    def names(self, *states: str) -> list[str]:
        return [t.name for t in self.targets if t.state in states]

    @property
    def ok(self) -> bool:
        return self.state == "done"

    def failed_gates(self) -> list[tuple[int, GateResult]]:
        """The gates whose latest check after their wave failed (a resumed wave's gate is
        checked again: only the last check counts)."""
        last: dict[tuple[int, str], GateResult] = {}
        for wave, g in self.gates:
            last[(wave, g.gate)] = g
        return [(w, g) for (w, _n), g in last.items() if not g.ok]


def _new_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _selected(targets: Sequence[Target], selector: Sequence[tuple[str, str]]) -> list[Target]:
    want = dict(selector)
    chosen = [t for t in targets if all(t.label(k) == v for k, v in want.items())]
    if not chosen:
        raise UsageError(
            "no target of the fleet carries " + ", ".join(f"{k}={v}" for k, v in want.items()),
            hint="check --label against the targets' labels",
        )
    return chosen


_UNFINISHED = sql.SQL(
    "SELECT r.id FROM pgwarden.runs r WHERE r.plan_fingerprint = {} AND r.kind <> 'backfill' "
    "AND r.state <> 'done' AND NOT EXISTS (SELECT 1 FROM pgwarden.runs l WHERE l.resumes = r.id) "
    "ORDER BY r.started_at DESC LIMIT 1"
)


def unfinished_run(dsn: str, fingerprint: str) -> str | None:
    """The target's latest unfinished run of this plan that no later run continued (None:
    there is none, or its journal cannot be read: the apply then says why)."""
    try:
        with connect(dsn, application_name="pgwarden-fleet", connect_timeout_s=10) as conn:
            if not schema_exists(conn):
                return None
            row = conn.execute(_UNFINISHED.format(sql.Literal(fingerprint))).fetchone()
    except (PgwardenError, psycopg.Error):
        return None
    return None if row is None else str(row[0])


def _online_placeholder(_conn: psycopg.Connection[tuple[object, ...]]) -> None:
    raise AssertionError("only its key is read: the target's own runner runs the revision")


def check_plan(plan: Plan | AlembicChange, *, rewrite: bool = False) -> None:
    """Refuse, before any target is touched, a plan that `pgwarden apply` would refuse on
    every target for its shape alone: a statement that cannot run inside a transaction
    block (CREATE INDEX CONCURRENTLY, ...) put in one (`UsageError`, exit 2).

    With `rewrite`, each target's rewrite moves such statements out of the transaction.
    """
    if rewrite:
        return
    if isinstance(plan, AlembicChange):
        for key, each in plan.plans.items():
            online = {o.sql: _online_placeholder for o in plan.online.get(key, ())}
            build_units(each, step_keys(each), online)
        return
    build_units(plan, step_keys(plan))


def run_rollout(
    plan: Plan | AlembicChange,
    cfg: FleetConfig,
    targets: Sequence[Target],
    options: RolloutOptions,
    *,
    settings: Settings | None = None,
    observer: Observer | None = None,
    cancel: threading.Event | None = None,
    sources: Sequence[str] = (),
) -> RolloutResult:
    """Roll `plan` out over `targets` (already loaded from `cfg`) wave by wave.

    An `AlembicChange` gives each target the plan of the revisions it lacks.
    """
    chosen = _selected(targets, options.selector)
    check_plan(plan, rewrite=options.rewrite)
    alembic = plan if isinstance(plan, AlembicChange) else None
    single = plan if isinstance(plan, Plan) else None
    fingerprint = plan.fingerprint if isinstance(plan, AlembicChange) else plan.fingerprint()
    waves = plan_waves(cfg, chosen)
    check_gate_urls(cfg.gates)
    path = journal_path(cfg.journal_dir, cfg.name, dict(options.selector))
    with runner_lock(path):
        if path.exists():
            old = RolloutJournal.load(path)
            if (
                old.data.get("state") not in ("done", "cancelled")
                and old.data.get("plan_fingerprint") != fingerprint
            ):
                at = old.data.get("halted_wave")
                raise Refused(
                    f"rollout {old.data.get('rollout')} of fleet {cfg.name} is "
                    f"{old.data.get('state')}"
                    + (f" (halted at wave {at})" if at else "")
                    + " with another plan",
                    hint="finish it with `pgwarden fleet resume`, or stop it with "
                    "`pgwarden fleet cancel`, before rolling out a new plan",
                )
        rid = _new_id()
        user = os.environ.get("USER") or str(os.getuid())
        data: dict[str, Any] = {
            "version": 1,
            "rollout": rid,
            "fleet": cfg.name,
            "environment": options.env,
            "selector": dict(options.selector),
            "sources": list(sources),
            "plan_fingerprint": fingerprint,
            "plan": [] if single is None else plan_to_records(single, step_keys(single)),
            "server_version": None if single is None else single.server_version,
            "alembic": alembic.to_json() if alembic else None,
            "rewrite": options.rewrite,
            "state": "running",
            "halted_wave": None,
            "reason": None,
            "message": None,
            "started_at": time.time(),
            "by": f"{user}@{socket.gethostname()}",
            "accept_data_loss": options.accept_data_loss,
            "waves": [
                {
                    "index": w.index,
                    "name": w.name,
                    "targets": [t.name for t in w.targets],
                    "parallel": w.parallel,
                    "bake_s": w.bake_s,
                    "state": "pending",
                }
                for w in waves
            ],
            "targets": {
                t.name: {"wave": w.index, "state": "pending", "run_id": None, "message": None}
                for w in waves
                for t in w.targets
            },
            "before": {},
            "gates": [],
        }
        journal = RolloutJournal(path, data)
        journal.clear_cancel()
        journal.save()
        return _Runner(plan, cfg, chosen, waves, options, settings, observer, cancel, journal).run()


def _stored_change(d: dict[str, Any]) -> Plan | AlembicChange:
    """The plan a rollout journal holds (one plan, or the Alembic plans per target)."""
    if d.get("alembic"):
        return AlembicChange.from_json(d["alembic"], str(d["plan_fingerprint"]))
    return plan_from_records(d["plan"], d.get("server_version"))


def resume_rollout(
    cfg: FleetConfig,
    targets: Sequence[Target],
    options: RolloutOptions,
    *,
    settings: Settings | None = None,
    observer: Observer | None = None,
    cancel: threading.Event | None = None,
) -> RolloutResult:
    """Continue the halted (or interrupted) rollout of `cfg` from where it stopped."""
    check_gate_urls(cfg.gates)
    path = journal_path(cfg.journal_dir, cfg.name, dict(options.selector))
    with runner_lock(path):
        journal = RolloutJournal.load(path)
        d = journal.data
        if d["state"] == "done":
            raise UsageError(
                f"rollout {d['rollout']} of fleet {cfg.name} is done: nothing to resume",
                hint="`pgwarden fleet status` shows every target",
            )
        if d["environment"] != options.env:
            raise Refused(
                f"rollout {d['rollout']} runs against environment {d['environment']!r}, "
                f"not {options.env!r}",
                hint=f"pass --env {d['environment']}",
            )
        by_name = {t.name: t for t in targets}
        missing = [n for n in d["targets"] if n not in by_name]
        if missing:
            raise UsageError(
                f"{count(len(missing), 'target')} of rollout {d['rollout']} "
                f"{'is' if len(missing) == 1 else 'are'} no longer in fleet "
                f"{cfg.name}: {', '.join(missing[:5])}",
                hint="restore them in the targets source, or cancel this rollout and start "
                "a new one",
            )
        waves = [
            Wave(
                w["index"],
                w["name"],
                tuple(by_name[n] for n in w["targets"]),
                int(w["parallel"]),
                float(w["bake_s"]),
            )
            for w in d["waves"]
        ]
        plan = _stored_change(d)
        chosen = [by_name[n] for n in d["targets"]]
        accept = options.accept_data_loss or d.get("accept_data_loss")
        opts = RolloutOptions(
            env=options.env,
            yes=options.yes,
            accept_data_loss=accept,
            restamp=options.restamp,
            limits=options.limits,
            selector=options.selector,
            on_error=options.on_error,
            rewrite=bool(d.get("rewrite")),  # as the rollout started
        )
        journal.clear_cancel()

        def reopen(x: dict[str, Any]) -> None:
            x.update(state="running", reason=None, message=None)
            for w in x["waves"]:  # a finished wave with targets left out runs them again
                if w["state"] == "done" and any(
                    x["targets"][n]["state"] != "done" for n in w["targets"]
                ):
                    w["state"] = "applying"

        journal.update(reopen)
        runner = _Runner(plan, cfg, chosen, waves, opts, settings, observer, cancel, journal)
        return runner.run()


class _Runner:
    def __init__(
        self,
        plan: Plan | AlembicChange,
        cfg: FleetConfig,
        targets: list[Target],
        waves: list[Wave],
        options: RolloutOptions,
        settings: Settings | None,
        observer: Observer | None,
        cancel: threading.Event | None,
        journal: RolloutJournal,
    ) -> None:
        self.plan = plan
        self.cfg = cfg
        self.targets = targets
        self.waves = waves
        self.options = options
        self.settings = settings
        self.observer = observer
        self.cancel = cancel or threading.Event()
        self.journal = journal
        self.rid = str(journal.data["rollout"])
        self.redact = Redactor(targets)
        self.on_error = options.on_error or cfg.on_error
        self._emit_lock = threading.Lock()
        self._servers: dict[str, threading.Semaphore] = {}
        self._servers_lock = threading.Lock()
        self._workers = max(1, cfg.max_connections // CONNECTIONS_PER_APPLY)

    # -- plumbing -----------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        if self.observer is not None:
            with self._emit_lock:  # observers need not be thread-safe
                self.observer(event)

    def _server_slot(self, target: Target) -> threading.Semaphore:
        key = server_of(target)
        with self._servers_lock:
            sem = self._servers.get(key)
            if sem is None:
                sem = self._servers[key] = threading.BoundedSemaphore(self.cfg.max_per_server)
            return sem

    def _watch_cancel(self, stop: threading.Event) -> None:
        while not stop.wait(0.2):
            if self.journal.cancel_requested():
                self.cancel.set()
                return

    # -- the rollout --------------------------------------------------------------------

    def run(self) -> RolloutResult:
        stop_watch = threading.Event()
        watcher = Background(
            target=self._watch_cancel, args=(stop_watch,), name="pgwarden-fleet-cancel"
        )
        watcher.start()
        try:
            return self._run()
        except (PgwardenError, KeyboardInterrupt) as exc:
            # the journal must not say "running" for a runner that is gone
            why = exc.message if isinstance(exc, PgwardenError) else "interrupted"
            with contextlib.suppress(PgwardenError):
                self.journal.update(
                    lambda d: d.update(state="halted", reason="error", message=self.redact(why))
                )
            raise
        finally:
            stop_watch.set()
            watcher.join()

    def _run(self) -> RolloutResult:
        for wave in self.waves:
            wstate = self.journal.data["waves"][wave.index - 1]["state"]
            if wstate == "done":
                continue
            if not wave.targets:  # nothing to apply, nothing to check
                self._set_wave(wave, "done")
                continue
            halted = self._wave(wave)
            if halted is not None:
                reason, message = halted
                return self._halt(wave.index, reason, message)
        # with on_error = continue, failed targets leave the rollout incomplete (resumable)
        bad = [n for n, t in self.journal.data["targets"].items() if t["state"] != "done"]
        self.journal.update(
            lambda d: d.update(
                state="incomplete" if bad else "done",
                halted_wave=None,
                reason="target" if bad else None,
                message=f"{count(len(bad), 'target')} without the change: {', '.join(bad[:10])}"
                if bad
                else None,
                finished_at=time.time(),
            )
        )
        return self._result()

    def _halt(self, wave: int, reason: str, message: str) -> RolloutResult:
        state = "cancelled" if reason == "cancelled" else "halted"
        self.journal.update(
            lambda d: d.update(state=state, halted_wave=wave, reason=reason, message=message)
        )
        self.emit(FleetHalted(rollout=self.rid, wave=wave, reason=reason, message=message))
        return self._result()

    def _wave_event(self, wave: Wave, phase: str) -> None:
        self.emit(
            FleetWave(
                rollout=self.rid,
                wave=wave.index,
                name=wave.name,
                phase=phase,
                targets=tuple(t.name for t in wave.targets),
                parallel=wave.parallel,
                bake_s=wave.bake_s,
            )
        )

    def _set_wave(self, wave: Wave, state: str) -> None:
        self.journal.update(lambda d: d["waves"][wave.index - 1].update(state=state))

    def _wave(self, wave: Wave) -> tuple[str, str] | None:
        """Apply one wave and check its gates; (reason, message) when the rollout halts."""
        if self.cancel.is_set():
            return "cancelled", "cancelled before the wave started"
        self._wave_event(wave, "started")
        wave_state = self.journal.data["waves"][wave.index - 1]["state"]
        db_gates = [g for g in self.cfg.gates if g.signal not in ("http", "prometheus")]
        if wave_state == "pending":
            self._set_wave(wave, "applying")
            if db_gates:
                self._store_before(wave)
        if wave_state in ("pending", "applying"):
            failed = self._apply_wave(wave)
            if self.cancel.is_set():
                return "cancelled", "cancelled while the wave was applied"
            if failed and self.on_error == "halt":
                return "target", self._failed_message(wave, failed)
            self._set_wave(wave, "gating")
        if self.cfg.gates or wave.bake_s > 0:
            failed_gates = self._gates(wave, db_gates)
            if self.cancel.is_set():
                return "cancelled", "cancelled during the bake time"
            if failed_gates and self.on_error == "halt":
                return "gate", "; ".join(
                    f"gate {g.gate} ({g.signal}, {g.scope}): {g.reasons[0]}"
                    + (f" (+{len(g.reasons) - 1} more)" if len(g.reasons) > 1 else "")
                    for g in failed_gates
                )
        self._set_wave(wave, "done")
        self._wave_event(wave, "done")
        return None

    def _failed_message(self, wave: Wave, failed: list[str]) -> str:
        """`wave 3: 1 target failed (t04), 2 targets refused (t05, t06); t04: why`."""
        t = self.journal.data["targets"]
        by_state: dict[str, list[str]] = {}
        for name in failed:
            by_state.setdefault(str(t[name]["state"]), []).append(name)
        parts = [
            f"{count(len(names), 'target')} {state} ("
            + ", ".join(names[:10])
            + (" …" if len(names) > 10 else "")
            + ")"
            for state, names in by_state.items()
        ]
        first = failed[0]
        return f"wave {wave.index}: {', '.join(parts)}; {first}: {t[first]['message']}"

    # -- applying -----------------------------------------------------------------------

    def _apply_wave(self, wave: Wave) -> list[str]:
        todo = [t for t in wave.targets if self.journal.data["targets"][t.name]["state"] != "done"]
        halt = threading.Event()
        workers = max(1, min(wave.parallel, self._workers, len(todo) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pgwarden-fleet") as pool:
            states = list(pool.map(lambda t: self._apply_one(t, wave, halt), todo))
        return [t.name for t, s in zip(todo, states, strict=True) if s in _FAILED]

    def _apply_one(self, target: Target, wave: Wave, halt: threading.Event) -> str:
        if self.cancel.is_set() or (halt.is_set() and self.on_error == "halt"):
            return "pending"  # never started: untouched
        with self._server_slot(target):
            if self.cancel.is_set() or (halt.is_set() and self.on_error == "halt"):
                return "pending"
            prior = self.journal.data["targets"][target.name]
            # an earlier attempt of this rollout (failed, cancelled, cut off) may have moved it
            touched = prior["state"] != "pending" or prior.get("run_id") is not None
            self.journal.set_target(target.name, state="running", message=None)
            self.emit(
                FleetTarget(rollout=self.rid, wave=wave.index, target=target.name, state="running")
            )
            started = time.monotonic()
            state, run_id, message = self._apply(target, wave, halt, touched)
        if state in _FAILED:
            halt.set()
        self.journal.set_target(target.name, state=state, run_id=run_id, message=message)
        self.emit(
            FleetTarget(
                rollout=self.rid,
                wave=wave.index,
                target=target.name,
                state=state,
                run_id=run_id,
                message=message,
                duration_s=round(time.monotonic() - started, 3),
            )
        )
        return state

    def _waiting(self, target: Target, wave: Wave, lost: threading.Event) -> Observer:
        """Apply's events that mean a target is held up, as `waiting` FleetTarget events;
        `lost` is set once its connection was lost during the change."""

        def see(e: Event) -> None:
            what: str | None = None
            if isinstance(e, Reconnecting):
                lost.set()
            if isinstance(e, Retry):
                what = f"step {e.step}: retry in {e.delay_ms} ms ({e.reason}, attempt {e.attempt})"
            elif isinstance(e, WatchdogCancel):
                what = f"step {e.step}: watchdog cancelled it ({e.reason})"
            elif isinstance(e, HealthPause):
                what = "paused: " + "; ".join(e.reasons)
            elif isinstance(e, LockWait) and e.blockers:
                b = e.blockers[0]
                what = f"step {e.step}: waiting for pid {b.pid} ({b.application or '-'}, {b.state})"
            elif isinstance(e, Reconnecting):
                what = f"connection lost: waiting up to {e.timeout_s:.0f} s for the server"
            if what is not None:
                self.emit(
                    FleetTarget(
                        rollout=self.rid,
                        wave=wave.index,
                        target=target.name,
                        state="waiting",
                        run_id=None,
                        message=self.redact(what),
                    )
                )

        return see

    def _plan_for(self, target: Target, touched: bool) -> tuple[Plan | None, str | None]:
        """The target's plan, or (None, message) when it has nothing to run (Alembic: at
        head already); `Refused` when it must not run it (Alembic: moved since the rollout
        planned it)."""
        if not isinstance(self.plan, AlembicChange):
            return self.plan, None
        from pgwarden.sources.alembic import current_revisions

        change = self.plan
        plan = change.plans[change.key_of(target.name)]
        if not plan.steps:
            return None, f"alembic_version is {', '.join(change.heads)} (head) already"
        moved = change.moved(target.name, current_revisions(target.dsn), touched=touched)
        if moved is not None:
            raise Refused(
                moved,
                hint="`pgwarden fleet cancel`, then `pgwarden fleet apply --alembic` plans "
                "every target again from its alembic_version",
            )
        return plan, None

    def _apply(
        self, target: Target, wave: Wave, halt: threading.Event, touched: bool
    ) -> tuple[str, str | None, str | None]:
        policy = GuardPolicy(
            env=self.options.env,
            # the fleet was confirmed once (typed or --yes); without it a target whose own
            # stamp says protected is refused (there is no prompt per target)
            yes=self.options.yes,
            accept_data_loss=self.options.accept_data_loss,
            restamp=self.options.restamp,
        )
        journal_file = self.journal.path.with_suffix(".events.jsonl")
        lost = threading.Event()  # its connection was lost during the change
        try:
            plan, nothing = self._plan_for(target, touched)
            if plan is None:
                return "done", None, nothing
            runners = {}
            if isinstance(self.plan, AlembicChange):
                runners = self.plan.runners(target.name, target.dsn)
            # an earlier attempt cut off (a killed runner, a lost connection) left its run
            # unfinished there: this one continues it, as `pgwarden resume` would, so the
            # target's own status says "resumed", not "interrupted: pgwarden resume it"
            resumes = None
            if touched and not self.options.rewrite:
                resumes = unfinished_run(target.dsn, plan.fingerprint())
            with self._online_turn(bool(runners), target, wave, halt) as stopped:
                if stopped is not None:  # it never touched the database
                    return "pending", None, f"not started: {stopped} while it waited its turn"
                result = apply_plan(
                    plan,
                    database_url=target.dsn,
                    policy=policy,
                    options=RunOptions(
                        rewrite=self.options.rewrite,
                        limits=self.options.limits,
                        journal_file=journal_file,
                        runners=runners,
                        kind="apply" if resumes is None else "resume",
                        resumes=resumes,
                    ),
                    settings=self.settings,
                    observer=self._waiting(target, wave, lost),
                    cancel=self.cancel,
                )
        except ConnectionFailed as exc:
            # before the change started: unreachable; a reconnect that failed mid-change
            # is a failure of the change
            state = "failed" if lost.is_set() else "unreachable"
            return state, None, self.redact(target.cannot_connect(exc))
        except Refused as exc:
            return "refused", None, self._text(exc)
        except PgwardenError as exc:
            return "failed", None, self._text(exc)
        except Exception as exc:  # a bug must not leave the journal saying "running"
            return "failed", None, self.redact(f"internal error: {type(exc).__name__}: {exc}")
        if result.state == "done":
            return "done", result.run_id, None
        o = result.outcome
        message = (o.message if o is not None else None) or result.state
        # a cancelled target's hint is apply's own (`pgwarden resume` on that database):
        # in a rollout, `fleet resume` (the halt's hint) is the way on
        if o is not None and o.hint and result.state != "cancelled":
            message += f" (hint: {o.hint})"
        return result.state, result.run_id, self.redact(message)

    @contextlib.contextmanager
    def _online_turn(
        self, online: bool, target: Target, wave: Wave, halt: threading.Event
    ) -> Iterator[str | None]:
        """Hold `online_lock` for a target running Alembic revisions online (one such target
        at a time in the process); yields None to go on, or why not when the rollout was
        cancelled or the wave halted meanwhile."""
        if not online:
            yield None
            return
        if not online_lock.acquire(blocking=False):
            why = "waiting for another target's Alembic revision that runs online"
            self.emit(
                FleetTarget(
                    rollout=self.rid, wave=wave.index, target=target.name, state="waiting",
                    run_id=None, message=why,
                )
            )  # fmt: skip
            while not online_lock.acquire(timeout=0.2):
                if self.cancel.is_set():
                    yield "the rollout was cancelled"
                    return
                if halt.is_set() and self.on_error == "halt":
                    yield "the wave halted"
                    return
        try:
            yield None
        finally:
            online_lock.release()

    def _text(self, exc: PgwardenError) -> str:
        return self.redact(exc.message + (f" (hint: {exc.hint})" if exc.hint else ""))

    # -- gates ----------------------------------------------------------------------------

    def _scope(self, wave: Wave, gates: Sequence[GateSpec]) -> tuple[list[Target], list[Target]]:
        wave_t = list(wave.targets) if any(g.scope == "wave" for g in gates) else []
        fleet_t = list(self.targets) if any(g.scope == "fleet" for g in gates) else []
        return wave_t, fleet_t

    def _read_all(self, targets: Sequence[Target]) -> dict[str, Reading]:
        if not targets:
            return {}
        workers = max(1, min(8, self.cfg.max_connections, len(targets)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pgwarden-gate") as pool:
            readings = pool.map(lambda t: read_target(t, redact=self.redact), targets)
            return {t.name: r for t, r in zip(targets, readings, strict=True)}

    def _store_before(self, wave: Wave) -> None:
        db_gates = [g for g in self.cfg.gates if g.signal not in ("http", "prometheus")]
        wave_t, fleet_t = self._scope(wave, db_gates)
        uniq = {t.name: t for t in [*wave_t, *fleet_t]}
        before = self._read_all(list(uniq.values()))
        self.journal.update(lambda d: d.update(before={k: v.to_json() for k, v in before.items()}))

    def _baseline(self, name: str, start: Reading) -> Reading:
        """The target's reading from before its wave (kept in the journal, so a resumed
        wave compares with it), else the start of this window: a target that could not be
        read then (down, unreachable) and was fixed since is judged on what it says now,
        not failed again and again on the old error."""
        stored = self.journal.data.get("before", {}).get(name)
        if stored is None:
            return start
        before = Reading.from_json(stored)
        return start if before.error is not None else before

    def _gates(self, wave: Wave, db_gates: Sequence[GateSpec]) -> list[GateResult]:
        wave_t, fleet_t = self._scope(wave, db_gates)
        uniq = {t.name: t for t in [*wave_t, *fleet_t]}
        start = self._read_all(list(uniq.values()))
        self._wave_event(wave, "baking")
        if wave.bake_s > 0 and self.cancel.wait(wave.bake_s):
            return []
        if not self.cfg.gates:
            return []
        end = self._read_all(list(uniq.values()))
        before = {n: self._baseline(n, start[n]) for n in uniq}

        def windows(ts: Sequence[Target]) -> dict[str, tuple[Reading, Reading, Reading]]:
            return {t.name: (before[t.name], start[t.name], end[t.name]) for t in ts}

        results = evaluate(
            self.cfg.gates,
            wave=windows(wave_t),
            fleet=windows(fleet_t),
            wave_targets=[t.name for t in wave.targets],
            resolve=gate_url,
        )
        results = [
            GateResult(
                r.gate,
                r.signal,
                r.scope,
                r.ok,
                tuple(self.redact(x) for x in r.reasons),
                r.value,
                tuple(self.redact(x) for x in r.not_judged),
            )
            for r in results
        ]
        for r in results:
            self.emit(
                FleetGate(
                    rollout=self.rid,
                    wave=wave.index,
                    gate=r.gate,
                    signal=r.signal,
                    scope=r.scope,
                    ok=r.ok,
                    reasons=r.reasons,
                    not_judged=r.not_judged,
                )
            )
        self.journal.update(
            lambda d: d["gates"].append(
                {"wave": wave.index, "at": time.time(), "results": [r.to_json() for r in results]}
            )
        )
        return [r for r in results if not r.ok]

    # -- result ---------------------------------------------------------------------------

    def _result(self) -> RolloutResult:
        d = self.journal.data
        targets = tuple(
            TargetOutcome(n, int(t["wave"]), str(t["state"]), t.get("run_id"), t.get("message"))
            for n, t in d["targets"].items()
        )
        gates = tuple(
            (
                int(g["wave"]),
                GateResult.from_json(r),
            )
            for g in d["gates"]
            for r in g["results"]
        )
        return RolloutResult(
            str(d["rollout"]),
            str(d["state"]),
            d.get("halted_wave"),
            d.get("reason"),
            d.get("message"),
            targets,
            gates,
            str(self.journal.path),
        )
