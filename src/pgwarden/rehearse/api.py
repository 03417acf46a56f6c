"""`rehearse(...)`: run a migration on a throwaway copy under synthetic traffic.

Order: read the sources and options (fail fast, nothing started; the tables to
copy are counted), start the target, load the schema, copy the reference
tables' rows (copy_data), fill the others with synthetic rows, run the
workload, trace the steps under probe traffic, run the workload again, derive
findings, write the rehearsal record and the HTML report. Whatever happens, probes, sampler and
cluster are stopped and removed before this returns; on Ctrl-C a partial
report is written and `RehearsalInterrupted` (a KeyboardInterrupt) is raised.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from pgwarden.analysis.catalog import read_catalog
from pgwarden.analysis.context import Snapshot, load_snapshot
from pgwarden.errors import UsageError
from pgwarden.events import FillProgress, Observer, Phase, RehearsalStep
from pgwarden.findings import Finding
from pgwarden.plan import Plan, Step
from pgwarden.rehearse import allowed, copydata, datagen, schema, workload
from pgwarden.rehearse import timezone as tzmod
from pgwarden.rehearse.blast import attach_blocking, blocked_ops
from pgwarden.rehearse.model import LoadedTable, RehearsalResult, StepTrace, WorkloadComparison
from pgwarden.rehearse.opaque import OpaqueStep
from pgwarden.rehearse.probes import ProbeSet
from pgwarden.rehearse.reanalyse import reanalyse
from pgwarden.rehearse.sampler import LockSampler
from pgwarden.rehearse.target import Target, open_target
from pgwarden.rehearse.trace import RehearsalInterrupted, Tracer
from pgwarden.rehearse.verdict import findings_for
from pgwarden.settings import Environment
from pgwarden.sources.placeholders import refuse_placeholders

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_ROWS",
    "DEFAULT_ROWS_CAP",
    "RehearsalInterrupted",
    "RehearseOptions",
    "rehearse",
]

DEFAULT_ROWS_CAP = 200_000  # rows per table: loads and runs in well under a minute on 2 cores
DEFAULT_ROWS = 10_000  # rows per table when no stats snapshot says otherwise


@dataclass(slots=True)
class _State:
    """What is known so far, for a partial report."""

    target: str = ""
    version: str = ""
    schema_origin: str = ""
    tables: list[LoadedTable] = field(default_factory=list)
    traces: list[StepTrace] = field(default_factory=list)
    workload: list[WorkloadComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)
    plan: Plan | None = None
    load_s: float = 0.0


def _plan_rows(
    tables: Mapping[str, datagen.Table], snapshot: Snapshot | None, rows_cap: int, default_rows: int
) -> list[datagen.TablePlan]:
    out = []
    for name, t in tables.items():
        if t.copied:  # its rows are the source's
            continue
        prod = snapshot.table(name) if snapshot is not None else None
        want = prod.rows if prod is not None else default_rows
        out.append(datagen.TablePlan(name, max(0, min(want, rows_cap))))
    return out


def _loaded(
    conn: psycopg.Connection[tuple[object, ...]],
    tables: Mapping[str, datagen.Table],
    snapshot: Snapshot | None,
) -> list[LoadedTable]:
    out = []
    for name, t in tables.items():
        row = conn.execute(
            "SELECT pg_table_size(%s::regclass), pg_total_relation_size(%s::regclass)", (name, name)
        ).fetchone()
        assert row is not None
        prod = snapshot.table(name) if snapshot is not None else None
        out.append(
            LoadedTable(
                name,
                t.rows,
                int(str(row[0])),
                int(str(row[1])),
                prod.rows if prod else None,
                prod.table_bytes if prod else None,
                prod.total_bytes if prod else None,
                copied=bool(t.copied),
            )
        )
    return out


def _touched(plan: Plan, tables: Mapping[str, datagen.Table]) -> list[str]:
    names: list[str] = []
    for step in plan.steps:
        for rel in [lk.relation for lk in step.effects.locks] + list(step.effects.scans):
            if rel in tables and rel not in names:
                names.append(rel)
    return names


def _trace(
    target: Target,
    plan: Plan,
    tables: Mapping[str, datagen.Table],
    st: _State,
    on_step: Callable[[StepTrace], None] | None,
    baseline_s: float,
    opaque: Mapping[int, OpaqueStep] | None = None,
) -> None:
    t0 = time.perf_counter()
    touched = _touched(plan, tables)
    for op in (opaque or {}).values():  # probe traffic also where the caller's steps work
        touched += [t for t in op.tables if t in tables and t not in touched]
    sampler = LockSampler(target.dsn, t0)
    probes = ProbeSet(target.dsn, tables, touched, t0) if touched else None
    runner = psycopg.connect(target.dsn, autocommit=True, application_name="pgwarden-rehearse")
    observer = psycopg.connect(target.dsn, autocommit=True, application_name="pgwarden-observer")
    tracer = Tracer(
        runner, observer, sampler, probes, t0, target.major,
        on_step=on_step, opaque=opaque, dsn=target.dsn,
    )  # fmt: skip
    try:
        if probes is not None:
            probes.start()
        sampler.watch(runner.info.backend_pid, [p.pid for p in probes.probes] if probes else [])
        sampler.start()
        time.sleep(baseline_s)
        try:
            st.traces = tracer.run(plan)
        except RehearsalInterrupted as exc:
            st.traces = exc.traces
            raise
        time.sleep(0.05)
    finally:
        if probes is not None:
            probes.stop()
        sampler.stop()
        runner.close()
        observer.close()
        plist = probes.probes if probes is not None else []
        waits = {p.pid: sampler.wait_spans(p.pid) for p in plist}
        loaded = {t.name: t for t in st.tables}
        st.traces = attach_blocking(plan, st.traces, plist, waits, loaded)
        st.extra["probe_blocked"] = [
            (p.table, p.kind, s, e) for p in plist for s, e in blocked_ops(p, waits.get(p.pid, []))
        ]
        st.extra["probe_ops"] = sum(len(p.ops) for p in plist)
        if probes is not None:
            st.notes += probes.notes(lambda t: _when(st.traces, t))
        st.extra["locks"] = [
            (h.relation, h.mode, h.start_s, h.end_s, h.granted)
            for h in sampler.held_between(0.0, float("inf"))
        ]
        st.extra["sampler"] = {"samples": sampler.samples, "max_gap_s": sampler.max_gap_s}


def _when(traces: Sequence[StepTrace], t: float) -> str:
    """When `t` (seconds since the trace began) was, by the steps: "during step 3"."""
    during = [tr.index for tr in traces if tr.start_s <= t <= tr.end_s]
    if during:
        return f"during step {during[-1]}"
    before = [tr.index for tr in traces if tr.end_s < t and tr.status != "skipped"]
    return f"after step {before[-1]}" if before else "before the first step"


@dataclass(frozen=True, slots=True)
class RehearseOptions:
    """Where to rehearse, what to start from, how much data, and where the results go."""

    database_url: str | None = None  # a server to rehearse on; None: a local throwaway cluster
    schema_file: str | os.PathLike[str] | None = None  # the schema to start from (--schema)
    schema_from: str | None = None  # ... or a database's schema (--schema-from)
    schema_sql: str | None = None  # ... or SQL text; none: the migrations folder's earlier files
    schema_label: str | None = None  # what `schema_sql` is, for the output ("given SQL")
    stats_file: str | os.PathLike[str] | None = None  # production sizes and queries
    snapshot: Snapshot | None = None  # ... or the snapshot itself
    rows_cap: int = DEFAULT_ROWS_CAP  # synthetic rows per table, at most
    default_rows: int = DEFAULT_ROWS  # rows per table when no snapshot says otherwise
    workload_file: str | os.PathLike[str] | None = None
    report_path: str | os.PathLike[str] | None = None  # the HTML report
    record_dir: str | os.PathLike[str] | None = None  # default: .pgwarden/rehearsals
    write_record: bool = True  # record the fingerprint (require_rehearsed)
    environments: Mapping[str, Environment] | None = None  # refuse protected targets
    threshold: float = 1.5  # latency ratio that makes a regression
    pg_major: int | None = None  # the local cluster's major version
    baseline_s: float = 0.2  # probe traffic before the first step
    # Alembic: the version table, which gets no synthetic rows and whose statements
    # (Alembic's bookkeeping) produce no findings.
    version_table: str | None = None
    # Steps the caller runs itself (Django's executor for a RunPython migration), by the
    # path of the source that stands for them: that source must have one statement, which
    # is not sent; see rehearse/opaque.py.
    opaque: Mapping[str, OpaqueStep] | None = None
    # Tables whose real rows are copied from `schema_from` instead of generated (with the
    # tables they reference), each refused above `copy_max_rows`; see rehearse/copydata.py.
    copy_data: tuple[str, ...] = ()
    copy_max_rows: int = copydata.DEFAULT_MAX_ROWS
    # The config file copy_data comes from (Settings.source), named in its hints.
    config: str | None = None
    # The values the application allows in a column, as text, by (table, column): the
    # synthetic rows take theirs from these (Django's field choices); see rehearse/allowed.py.
    choices: Mapping[tuple[str, str], Sequence[str]] | None = None
    # The session TimeZone the migrations run with in production (Django's); None: the
    # source's session default (`schema_from`), else the snapshot's; see rehearse/timezone.py.
    timezone: str | None = None
    timezone_origin: str = "the session TimeZone the migrations run with"  # said in notes


def _bookkeeping(step: Step, version_table: str) -> bool:
    """Whether `step` writes Alembic's version table (not the user's migration)."""
    tree = step.tree
    body = (
        tree.get("CreateStmt")
        or tree.get("InsertStmt")
        or tree.get("UpdateStmt")
        or tree.get("DeleteStmt")
    )
    return body is not None and body.get("relation", {}).get("relname") == version_table


def _opaque_steps(plan: Plan, by_source: Mapping[str, OpaqueStep]) -> dict[int, OpaqueStep]:
    """The caller's opaque steps by step index (each source stands for one step)."""
    out: dict[int, OpaqueStep] = {}
    for source, op in by_source.items():
        steps = [s.index for s in plan.steps if s.location.path == source]
        if len(steps) != 1:
            raise UsageError(
                f"{source}: a source standing for a step run by the caller has "
                f"{len(steps)} statements, not 1"
            )
        out[steps[0]] = op
    return out


def rehearse(
    plan: Plan,
    options: RehearseOptions | None = None,
    *,
    observer: Observer | None = None,
) -> RehearsalResult:
    """Rehearse `plan` (as `commands.load_plan` builds it); see the module docstring.

    The steps' effects are analysed again against the rehearsal cluster's
    catalog once the schema is loaded. With `options.version_table` (Alembic)
    that table gets no synthetic rows and its statements produce no findings.
    The schema to start from is the caller's (`schema_*`; `pgwarden rehearse
    --alembic` passes the revisions before the range, see docs/alembic.md).
    Progress goes to `observer` as `Phase`, `FillProgress` and `RehearsalStep` events.
    """
    o = options or RehearseOptions()
    started = time.perf_counter()
    emit: Observer = observer or (lambda _e: None)

    def phase(message: str) -> None:
        emit(Phase(message=message))

    def on_step(trace: StepTrace) -> None:
        emit(
            RehearsalStep(
                step=trace.index,
                status=trace.status,
                sql=trace.sql,
                location=trace.location,
                duration_s=round(trace.duration_s, 3),
                acquire_s=round(trace.acquire_s, 3),
            )
        )

    def on_fill(table: str, done: int, total: int) -> None:
        emit(FillProgress(table=table, done=done, total=total))

    if o.rows_cap < 1:
        raise UsageError("--rows-cap must be at least 1")
    refuse_placeholders(((t.path, t.placeholders) for t in plan.texts), "rehearse")
    fingerprint = plan.fingerprint()
    opaque = _opaque_steps(plan, o.opaque or {})
    snapshot, stats_file = o.snapshot, o.stats_file
    snap = snapshot if snapshot is not None else (load_snapshot(stats_file) if stats_file else None)
    queries = workload.load_workload(o.workload_file) if o.workload_file else []
    if stats_file:
        queries += workload.snapshot_queries(stats_file)
    copy_plan: list[copydata.CopyTable] = []
    if o.copy_data:
        if o.schema_from is None:
            raise UsageError(
                "rehearse.copy_data needs the database to copy the rows from (--schema-from)",
                hint="rehearse with --schema-from, or leave copy_data out of the configuration",
            )
        phase("counting the rows of the tables to copy (copy_data)")
        copy_plan = copydata.plan_copy(o.schema_from, o.copy_data, o.copy_max_rows, config=o.config)
    phase("resolving the schema")
    src = schema.resolve_schema(
        plan.sources,
        schema_file=o.schema_file,
        schema_from=o.schema_from,
        schema_sql=o.schema_sql,
        schema_label=o.schema_label,
    )
    zone = tzmod.pick_timezone(
        o.timezone,
        o.schema_from,
        snap,
        given_origin=o.timezone_origin,
        stats_file=stats_file if snapshot is None else None,
    )
    tz = zone.name
    st = _State(schema_origin=src.origin)
    st.extra["timezone_assumed"] = zone.assumed
    if tz is not None:
        st.extra["timezone"] = tz
        st.extra["timezone_source"] = zone.origin
        if not tzmod.is_utc(tz):
            st.notes.append(
                f"the steps ran with TimeZone {tz!r} ({zone.origin}): a timestamp <-> "
                "timestamptz change rewrites the table outside UTC"
            )
    st.extra["sources"] = list(plan.sources)
    status = "completed"
    interrupted: BaseException | None = None
    try:
        phase("starting the target")
        with open_target(o.database_url, environments=o.environments, major=o.pg_major) as target:
            st.target, st.version = target.description, target.server_version
            with psycopg.connect(target.dsn, autocommit=True) as conn:
                if tz is not None:  # every session opened on the copy from now on starts with it
                    tzmod.set_database_timezone(conn, tz, zone.origin)
                else:  # nothing said production's: the target's own, said to be assumed
                    st.extra["timezone"] = tzmod.database_timezone(conn)
                    st.extra["timezone_source"] = zone.origin
            phase(f"loading the schema ({src.origin})")
            schema.apply_schema(target.dsn, src)
            with psycopg.connect(target.dsn, autocommit=True) as conn:
                tables = datagen.read_tables(conn)
                if o.version_table is not None:  # Alembic's bookkeeping, not user data
                    tables.pop(o.version_table, None)
                if copy_plan:
                    phase("copying reference tables from the database (copy_data)")
                    copied = copydata.copy_rows(o.schema_from or "", conn, copy_plan, tables)
                    for c in copied:
                        phase(c.said())
                    st.notes += [c.said() for c in copied]
                    st.extra["copied"] = [(c.name, c.rows, c.referenced_by) for c in copied]
                if o.choices:
                    used, kept = allowed.restrict(conn, tables, o.choices)
                    if used:
                        phase(f"synthetic values from the choices of {len(used)} column(s)")
                    for note in kept:
                        phase(note)
                    st.notes += kept
                rows = _plan_rows(tables, snap, o.rows_cap, o.default_rows)
                phase("generating synthetic rows")
                t_load = time.perf_counter()
                capped = datagen.fill(conn, tables, rows, progress=on_fill)
                for note in capped:
                    phase(note)
                st.notes += capped
                st.load_s = time.perf_counter() - t_load
                st.tables = _loaded(conn, tables, snap)
                on_target = reanalyse(
                    plan, read_catalog(conn), target.major, alembic=o.version_table is not None
                )
                st.plan = on_target
                if zone.assumed:
                    assumed = str(st.extra["timezone"])
                    steps = tzmod.zone_sensitive_steps(on_target)
                    st.notes.append(tzmod.assumed_note(assumed, zone.assumed, steps))
                phase("running the workload before the migration")
                before = workload.run_queries(conn, queries) if queries else []
            phase("running the steps under probe traffic")
            _trace(target, on_target, tables, st, on_step, o.baseline_s, opaque)
            if any(t.status == "failed" for t in st.traces):
                status = "failed"
            if queries:
                phase("running the workload after the migration")
                with psycopg.connect(target.dsn, autocommit=True) as conn:
                    after = workload.run_queries(conn, queries)
                st.workload = workload.compare(queries, before, after)
            phase("removing the target")
    except KeyboardInterrupt as exc:
        status = "interrupted"
        interrupted = exc
    plan_final = st.plan or plan
    findings: list[Finding] = findings_for(
        plan_final, st.traces, st.workload, threshold=o.threshold
    )
    if o.version_table is not None:  # Alembic's version-table statements are not the user's
        own = {s.index for s in plan_final.steps if _bookkeeping(s, o.version_table)}
        findings = [f for f in findings if f.step not in own]
    if snap is None:
        st.notes.append(
            "no stats snapshot (--stats): tables got "
            f"{min(o.default_rows, o.rows_cap):,} rows each and nothing is extrapolated"
        )
    result = RehearsalResult(
        fingerprint=fingerprint,
        status=status,
        target=st.target,
        server_version=st.version,
        schema_source=st.schema_origin,
        tables=tuple(st.tables),
        steps=tuple(st.traces),
        workload=tuple(st.workload),
        findings=tuple(findings),
        notes=tuple(st.notes),
        load_s=st.load_s,
        total_s=time.perf_counter() - started,
        extra=dict(st.extra),
    )
    if o.write_record:
        from pgwarden.rehearse.record import write_record as _write

        path = _write(result, Path(o.record_dir) if o.record_dir else None)
        result = replace(result, record_path=str(path))
    if o.report_path is not None:
        from pgwarden.rehearse.report_html import write_report

        write_report(result, Path(o.report_path))
        result = replace(result, report_path=str(o.report_path))
    if interrupted is not None:
        stop = RehearsalInterrupted(list(result.steps))
        stop.result = result
        raise stop from None
    return result
