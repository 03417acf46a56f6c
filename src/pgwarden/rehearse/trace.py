"""Run the plan's steps one by one and record what each did.

Transaction blocks are kept as the source wrote them (`BEGIN`/`COMMIT` steps),
files a runner wraps in a transaction get one, and an autocommit step that may
run in a transaction runs as `BEGIN; step; <read>; COMMIT` so that its locks,
row counts and relfilenodes can be read in-transaction (pg_locks of the own
backend, pg_stat_xact_user_tables, pg_class). Before its transaction ends the
tracer waits until every probe has issued an operation after the step began
(at most `sync_s`), so a lock that blocks traffic is seen blocking it.
Statements that cannot run in a transaction block are observed by the sampler
only. A step the caller maps to an `OpaqueStep` (Django's executor running a
RunPython migration) runs on the caller's own session, sampled like the runner.
The static model's prediction for each step is recomputed with the
catalog as it is just before the step and compared with what was acquired.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import psycopg
from psycopg.pq import TransactionStatus

from pgwarden.analysis.catalog import read_catalog
from pgwarden.analysis.effects import LockMode
from pgwarden.analysis.locks import analyse
from pgwarden.plan import Plan, Step, TxMode
from pgwarden.rehearse.model import (
    HeldLock,
    ModelDiff,
    NullRows,
    RehearsalResult,
    StepError,
    StepTrace,
)
from pgwarden.rehearse.opaque import OPAQUE_KIND, OpaqueFailed, OpaqueStep
from pgwarden.rehearse.probes import ProbeSet
from pgwarden.rehearse.sampler import LockSampler
from pgwarden.sources.labels import statement_label

__all__ = ["RehearsalInterrupted", "Tracer", "step_ranges"]

Conn = psycopg.Connection[tuple[object, ...]]

_RELS = """
SELECT c.oid::int8, c.oid::regclass::text, c.relfilenode::int8, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid >= 16384 AND n.nspname NOT LIKE 'pg_toast%%'
"""
_OWN_LOCKS = """
SELECT relation::int8, mode FROM pg_locks
WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation >= 16384 AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_XACT = """
SELECT relid::regclass::text, seq_scan, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0),
       n_tup_ins + n_tup_upd + n_tup_del
FROM pg_stat_xact_user_tables
"""
_TEMP = """
SELECT temp_files, temp_bytes FROM pg_stat_database WHERE datname = current_database()
"""


class RehearsalInterrupted(KeyboardInterrupt):
    """Ctrl-C during the steps; carries the traces recorded so far."""

    def __init__(self, traces: list[StepTrace]) -> None:
        super().__init__("interrupted")
        self.traces = traces
        self.result: RehearsalResult | None = None  # set by `rehearse` once cleaned up


@dataclass(slots=True)
class _Before:
    rels: dict[int, tuple[str, int, str]]
    locks: set[tuple[str, str]]
    xact: dict[str, tuple[int, int, int]]
    model: set[tuple[str, str]]
    lsn: str


@dataclass(slots=True)
class _Tx:
    """The open transaction: its steps' traces so far (to fix up on failure)."""

    steps: list[int] = field(default_factory=list)
    synthetic: bool = False


def _title(pg_mode: str) -> str:
    return LockMode.from_pg_name(pg_mode).title


class Tracer:
    """Runs steps on `runner`, observed by `sampler`, under `probes`."""

    def __init__(
        self,
        runner: Conn,
        observer: Conn,
        sampler: LockSampler,
        probes: ProbeSet | None,
        t0: float,
        major: int,
        *,
        sync_s: float = 0.5,
        on_step: Callable[[StepTrace], None] | None = None,
        opaque: Mapping[int, OpaqueStep] | None = None,
        dsn: str = "",
    ) -> None:
        self.runner = runner
        self.observer = observer
        self.sampler = sampler
        self.probes = probes
        self.t0 = t0
        self.major = major
        self.sync_s = sync_s
        self.on_step = on_step
        self.opaque = dict(opaque or {})  # step index -> the caller's step
        self.dsn = dsn  # the target, for opaque steps' sessions
        self.traces: list[StepTrace] = []
        self._tx: _Tx | None = None
        self._temp = (0, 0)

    # -- helpers ---------------------------------------------------------------

    def _now(self) -> float:
        return time.perf_counter() - self.t0

    def _in_tx(self) -> bool:
        return self.runner.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def _read_temp(self) -> tuple[int, int]:
        self.observer.execute("SELECT pg_stat_clear_snapshot()")
        row = self.observer.execute(_TEMP).fetchone()
        return (int(str(row[0])), int(str(row[1]))) if row else (0, 0)

    def _named(self, held: list[HeldLock]) -> list[HeldLock]:
        """Names for relations the sampler knew only by OID: created in the migration's open
        transaction, so only the migration's own session sees them. Relations gone already
        (a rewrite's transient copy) are left out: nobody else can wait for them."""
        oids = sorted({int(h.relation) for h in held if h.relation.isdigit()})
        if not oids or self.runner.info.transaction_status == TransactionStatus.INERROR:
            return held
        rows = self.runner.execute(
            "SELECT c.oid::int8, c.oid::regclass::text FROM pg_class c WHERE c.oid = ANY (%s)",
            (oids,),
        ).fetchall()
        names = {str(r[0]): str(r[1]) for r in rows}
        return [
            replace(h, relation=names[h.relation]) if h.relation in names else h
            for h in held
            if not h.relation.isdigit() or h.relation in names
        ]

    def _before(self, step: Step) -> _Before:
        c = self.runner
        rels = {int(str(r[0])): (str(r[1]), int(str(r[2])), str(r[3])) for r in c.execute(_RELS)}
        locks = {
            (rels[int(str(r[0]))][0], str(r[1]))
            for r in c.execute(_OWN_LOCKS)
            if int(str(r[0])) in rels
        }
        xact = {
            str(r[0]): (int(str(r[1])), int(str(r[2])), int(str(r[3]))) for r in c.execute(_XACT)
        }
        effects = analyse(step.tree, catalog=read_catalog(c), server_version=self.major)
        model = {(lk.relation, lk.mode.pg_name) for lk in effects.locks}
        lsn_row = c.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        return _Before(rels, locks, xact, model, str(lsn_row[0]) if lsn_row else "0/0")

    def _after(self, before: _Before, trace: StepTrace) -> StepTrace:
        c = self.runner
        rels_after = {
            int(str(r[0])): (str(r[1]), int(str(r[2])), str(r[3])) for r in c.execute(_RELS)
        }
        names = {oid: v[0] for oid, v in before.rels.items()}
        locks = {
            (names[int(str(r[0]))], str(r[1]))
            for r in c.execute(_OWN_LOCKS)
            if int(str(r[0])) in names
        }
        acquired = locks - before.locks
        expected = before.model - before.locks
        existing = set(names.values())
        diffs = _diffs(
            {p for p in acquired if p[0] in existing}, {p for p in expected if p[0] in existing}
        )
        rewrites = sorted(
            name
            for oid, (name, node, kind) in before.rels.items()
            if node and oid in rels_after and rels_after[oid][1] != node and kind in ("r", "m", "p")
        )
        read = written = 0
        scanned: list[str] = []
        for r in c.execute(_XACT):
            name, seq, rows_r, rows_w = str(r[0]), int(str(r[1])), int(str(r[2])), int(str(r[3]))
            b = before.xact.get(name, (0, 0, 0))
            read += rows_r - b[1]
            written += rows_w - b[2]
            if seq > b[0]:
                scanned.append(name)
        size = 0
        for name in set(scanned) | set(rewrites):
            fn = "pg_total_relation_size" if name in rewrites else "pg_table_size"
            row = c.execute(f"SELECT {fn}(%s::regclass)".encode(), (name,)).fetchone()
            size += int(str(row[0])) if row else 0
        row = c.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s::pg_lsn)::int8", (before.lsn,)
        ).fetchone()
        return replace(
            trace,
            acquired=tuple(sorted((n, _title(m)) for n, m in acquired)),
            model_diffs=diffs,
            rewrites=tuple(rewrites),
            rows_read=max(0, read),
            rows_written=max(0, written),
            bytes_touched=size,
            wal_bytes=int(str(row[0])) if row else 0,
        )

    def _sync_probes(self, since: float) -> None:
        if self.probes is None:
            return
        deadline = time.perf_counter() + self.sync_s
        while time.perf_counter() < deadline:
            pending = [
                p
                for p in self.probes.probes
                if not (
                    any(op.start_s >= since for op in p.ops[-3:])
                    or (p.in_flight_since is not None and self.sampler.waited_since(p.pid, since))
                )
            ]
            if not pending:
                return
            time.sleep(0.001)

    # -- running ---------------------------------------------------------------

    def _exec(self, text: str) -> None:
        self.runner.execute(text.encode())

    def _begin(self) -> None:
        self._exec("BEGIN")

    def run(self, plan: Plan) -> list[StepTrace]:
        """Run every step; stop at the first failure (the rest are `skipped`)."""
        steps = list(plan.steps)
        last_in_tx: dict[int, int] = {}
        for s in steps:
            if s.transaction is not None:
                last_in_tx[s.transaction] = s.index
        failed = False
        self._temp = self._read_temp()
        for step in steps:
            if failed:
                self.traces.append(self._skeleton(step, "skipped"))
                continue
            try:
                op = self.opaque.get(step.index)
                trace = (
                    self._run_step(step, last_in_tx) if op is None else self._run_opaque(step, op)
                )
            except KeyboardInterrupt:
                self._abort()
                self.traces.append(
                    replace(self._skeleton(step, "interrupted"), start_s=self._now())
                )
                raise RehearsalInterrupted(list(self.traces)) from None
            self.traces.append(trace)
            if self.on_step is not None:
                self.on_step(trace)
            failed = trace.status == "failed"
        if self._in_tx():
            self._exec("COMMIT")
        return self.traces

    def _abort(self) -> None:
        try:
            if not self.runner.closed and self._in_tx():
                self._exec("ROLLBACK")
        except psycopg.Error:
            pass

    def _skeleton(self, step: Step, status: str) -> StepTrace:
        op = self.opaque.get(step.index)
        return StepTrace(
            index=step.index,
            sql=statement_label(step.sql, 160) if op is None else op.name,
            location=str(step.location) if op is None else op.location,
            kind=step.kind if op is None else OPAQUE_KIND,
            transaction=step.transaction,
            status=status,
        )

    def _run_step(self, step: Step, last_in_tx: dict[int, int]) -> StepTrace:
        trace = self._skeleton(step, "ok")
        synthetic = False
        if step.tx_mode is TxMode.FILE and not self._in_tx():
            self._begin()  # the runner's per-file transaction
        elif (
            step.tx_mode is TxMode.AUTOCOMMIT
            and step.effects.transactional
            and not step.is_transaction_control
        ):
            self._begin()
            synthetic = True
        observable = self._in_tx() and not step.is_transaction_control
        before = self._before(step) if observable else None
        start = self._now()  # the statement is sent now; the reads above are not counted
        try:
            self._exec(step.sql)
        except psycopg.Error as exc:
            return self._failed(step, trace, start, exc)
        trace = replace(trace, statement_s=self._now() - start)
        if before is not None:
            trace = self._after(before, trace)
            self._sync_probes(start)
        ends_tx = synthetic or (
            step.tx_mode is TxMode.FILE
            and step.transaction is not None
            and last_in_tx.get(step.transaction) == step.index
        )
        if ends_tx:
            try:
                self._exec("COMMIT")
            except psycopg.Error as exc:
                return self._failed(step, trace, start, exc)
        end = self._now()
        held = self._named(self.sampler.held_between(start, end))
        waited = [h for h in held if not h.granted]
        acquire = max((h.end_s - h.start_s for h in waited), default=0.0)
        trace = replace(trace, start_s=start, end_s=end, locks=tuple(held), acquire_s=acquire)
        if before is None and not step.is_transaction_control:
            trace = replace(trace, model_diffs=sampled_diffs(step, trace))
        if not self._in_tx():
            self.runner.execute(
                "SELECT pg_stat_force_next_flush()" if self.major >= 15 else "SELECT 1"
            )
            time.sleep(0.02)
            temp = self._read_temp()
            trace = replace(
                trace, temp_files=temp[0] - self._temp[0], temp_bytes=temp[1] - self._temp[1]
            )
            self._temp = temp
        return trace

    def _run_opaque(self, step: Step, op: OpaqueStep) -> StepTrace:
        """Run `op` on its own session, the sampler watching that session's backend."""
        if self._in_tx():
            self._exec("COMMIT")
        trace = self._skeleton(step, "ok")
        probes = [p.pid for p in self.probes.probes] if self.probes is not None else []
        start = self._now()
        try:
            pid = op.open(self.dsn)
            self.sampler.watch(pid, probes)
            start = self._now()
            outcome = op.run()
        except Exception as exc:
            end = self._now()
            if isinstance(exc, OpaqueFailed):
                error = StepError(exc.sqlstate, exc.message, exc.state)
            else:
                error = StepError(
                    getattr(exc, "sqlstate", None),
                    f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                    "failed in the caller's session",
                )
            held = self._named(self.sampler.held_between(start, end))
            return replace(
                trace, status="failed", start_s=start, end_s=end, locks=tuple(held), error=error
            )
        finally:
            op.close()
            self.sampler.watch(self.runner.info.backend_pid, probes)
        end = self._now()
        held = self._named(self.sampler.held_between(start, end))
        waited = [h for h in held if not h.granted]
        return replace(
            trace,
            start_s=start,
            end_s=end,
            statement_s=end - start,
            locks=tuple(held),
            acquire_s=max((h.end_s - h.start_s for h in waited), default=0.0),
            rows_written=outcome.rows_written,
        )

    def _probe_nulls(self, exc: psycopg.Error) -> NullRows | None:
        """For a NOT NULL violation: how many of the NULL rows the probe traffic inserted."""
        table, column = exc.diag.table_name, exc.diag.column_name
        if exc.sqlstate != "23502" or self.probes is None or not table or not column:
            return None
        counts = self.probes.null_rows(self.runner, table, column)
        if counts is None or counts[1] == 0:
            return None
        return NullRows(table, column, counts[0], counts[1])

    def _failed(self, step: Step, trace: StepTrace, start: float, exc: psycopg.Error) -> StepTrace:
        in_tx = self._in_tx()
        self._abort()
        done = [t.index for t in self.traces if t.status == "ok"]
        undone = [
            t.index
            for t in self.traces
            if t.status == "ok"
            and in_tx
            and t.transaction == step.transaction
            and step.transaction is not None
        ]
        committed = [i for i in done if i not in undone]
        state = (
            ("transaction rolled back" if in_tx else "statement failed in autocommit")
            + (f"; {step_ranges(undone)} of it undone" if undone else "")
            + (
                f"; committed before it: {step_ranges(committed)}"
                if committed
                else "; nothing was committed before it"
            )
        )
        # with rows written by the steps rolled back, the rows left do not show what it saw
        wrote = any(t.rows_written for t in self.traces if t.index in undone)
        nulls = None if wrote else self._probe_nulls(exc)
        message = str(exc).strip() or type(exc).__name__
        if nulls is not None:
            message += (
                f"; {nulls.inserted:,} of the {nulls.rows:,} rows with NULL in {nulls.column} "
                "were inserted during the rehearsal by the probe traffic, which writes the table "
                "as the application did before the migration (without the columns it adds): in "
                "production, rows the application inserts between the step that fills the "
                "column and this one would make it fail the same way"
            )
        return replace(
            trace,
            status="failed",
            start_s=start,
            end_s=self._now(),
            error=StepError(exc.sqlstate, message, state, nulls),
        )


def step_ranges(indexes: Sequence[int]) -> str:
    """Step numbers as runs: `step 4`, `steps 0-91`, `steps 0-3, 5, 7-9`."""
    runs: list[list[int]] = []
    for i in sorted(set(indexes)):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    single = len(runs) == 1 and runs[0][0] == runs[0][1]
    return f"{'step' if single else 'steps'} {text}"


def _diffs(observed: set[tuple[str, str]], expected: set[tuple[str, str]]) -> tuple[ModelDiff, ...]:
    """Per relation where the (relation, mode) pairs differ: observed and modelled modes."""
    out: list[ModelDiff] = []
    for rel in sorted({r for r, _ in observed ^ expected}):
        obs = sorted((LockMode.from_pg_name(m) for r, m in observed if r == rel), reverse=True)
        exp = sorted((LockMode.from_pg_name(m) for r, m in expected if r == rel), reverse=True)
        out.append(
            ModelDiff(
                rel,
                ", ".join(m.title for m in obs) or None,
                ", ".join(m.title for m in exp) or None,
            )
        )
    return tuple(out)


def sampled_diffs(step: Step, trace: StepTrace) -> tuple[ModelDiff, ...]:
    """For steps observed only by sampling: relations locked stronger than modelled."""
    model = step.effects.strongest()
    out = []
    for rel, title in trace.strongest().items():
        mode = LockMode[title.replace(" ", "_")]
        if rel in model and mode > model[rel]:
            out.append(ModelDiff(rel, title, model[rel].title))
    return tuple(out)


def interval_overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Length of the overlap of two intervals."""
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
