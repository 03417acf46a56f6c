"""`rehearse(...)`: run a migration on a throwaway copy under synthetic traffic.

Order: read the sources and options (fail fast, nothing started), start the
target, load the schema, fill synthetic rows, run the workload, trace the
steps under probe traffic, run the workload again, derive findings, write the
rehearsal record and the HTML report. Whatever happens, probes, sampler and
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
from pgwarden.findings import Finding
from pgwarden.plan import Plan, build_plan
from pgwarden.rehearse import datagen, schema, workload
from pgwarden.rehearse.blast import attach_blocking, blocked_ops
from pgwarden.rehearse.model import LoadedTable, RehearsalResult, StepTrace, WorkloadComparison
from pgwarden.rehearse.probes import ProbeSet
from pgwarden.rehearse.sampler import LockSampler
from pgwarden.rehearse.target import Target, open_target
from pgwarden.rehearse.trace import RehearsalInterrupted, Tracer
from pgwarden.rehearse.verdict import findings_for
from pgwarden.settings import Environment
from pgwarden.sources.alembic import AlembicSources, build_alembic_plan
from pgwarden.sources.sql_files import read_sources

if TYPE_CHECKING:
    from pgwarden.analysis.catalog import Catalog
    from pgwarden.commands import Sources

__all__ = ["DEFAULT_ROWS", "DEFAULT_ROWS_CAP", "RehearsalInterrupted", "rehearse"]

DEFAULT_ROWS_CAP = 200_000  # rows per table: loads and runs in well under a minute on 2 cores
DEFAULT_ROWS = 10_000  # rows per table when no stats snapshot says otherwise

Progress = Callable[[str, int, int], None]
Phase = Callable[[str], None]


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
    for name in tables:
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
) -> None:
    t0 = time.perf_counter()
    touched = _touched(plan, tables)
    sampler = LockSampler(target.dsn, t0)
    probes = ProbeSet(target.dsn, tables, touched, t0) if touched else None
    runner = psycopg.connect(target.dsn, autocommit=True, application_name="pgwarden-rehearse")
    observer = psycopg.connect(target.dsn, autocommit=True, application_name="pgwarden-observer")
    tracer = Tracer(runner, observer, sampler, probes, t0, target.major, on_step=on_step)
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
        st.extra["locks"] = [
            (h.relation, h.mode, h.start_s, h.end_s, h.granted)
            for h in sampler.held_between(0.0, float("inf"))
        ]
        st.extra["sampler"] = {"samples": sampler.samples, "max_gap_s": sampler.max_gap_s}


def _build(
    sources: Sources,
    *,
    catalog: Catalog | None = None,
    server_version: int | None = None,
    file_transaction: bool,
) -> Plan:
    if isinstance(sources, AlembicSources):
        return build_alembic_plan(sources.sources, catalog=catalog, server_version=server_version)
    return build_plan(
        sources,
        catalog=catalog,
        server_version=server_version,
        file_transaction=file_transaction,
    )


def rehearse(
    paths: Sequence[str | os.PathLike[str]],
    *,
    database_url: str | None = None,
    schema_file: str | os.PathLike[str] | None = None,
    schema_from: str | None = None,
    schema_sql: str | None = None,
    stats_file: str | os.PathLike[str] | None = None,
    snapshot: Snapshot | None = None,
    rows_cap: int = DEFAULT_ROWS_CAP,
    default_rows: int = DEFAULT_ROWS,
    workload_file: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    record_dir: str | os.PathLike[str] | None = None,
    write_record: bool = True,
    file_transaction: bool = True,
    environments: Mapping[str, Environment] | None = None,
    threshold: float = 1.5,
    pg_major: int | None = None,
    baseline_s: float = 0.2,
    on_progress: Progress | None = None,
    on_phase: Phase | None = None,
    on_step: Callable[[StepTrace], None] | None = None,
    sources: Sources | None = None,
) -> RehearsalResult:
    """Rehearse the migration in `paths` (or `sources`); see the module docstring.

    `sources` are parsed (SourceText, statements) pairs or an `AlembicSources`
    (`pgwarden.sources.alembic.read_alembic_sources`), as `commands.load_plan`
    takes them. Alembic's plan keeps Alembic's own BEGIN/COMMIT
    (`file_transaction` does not apply), its version table gets no synthetic
    rows, and its bookkeeping statements produce no findings. The schema to
    start from is the caller's (`schema_*`; `pgwarden rehearse --alembic`
    passes the revisions before the range, see docs/alembic.md).
    """
    started = time.perf_counter()
    phase = on_phase or (lambda _msg: None)
    if sources is None:
        sources = read_sources(paths)
    alembic = sources if isinstance(sources, AlembicSources) else None
    if alembic is not None and not alembic.revisions:
        raise UsageError("no Alembic revisions to rehearse", hint="the range is empty")
    if rows_cap < 1:
        raise UsageError("--rows-cap must be at least 1")
    fingerprint = _build(sources, file_transaction=file_transaction).fingerprint()
    snap = snapshot if snapshot is not None else (load_snapshot(stats_file) if stats_file else None)
    queries = workload.load_workload(workload_file) if workload_file else []
    if stats_file:
        queries += workload.snapshot_queries(stats_file)
    phase("resolving the schema")
    src = schema.resolve_schema(
        paths, schema_file=schema_file, schema_from=schema_from, schema_sql=schema_sql
    )
    st = _State(schema_origin=src.origin)
    pairs = sources.sources if isinstance(sources, AlembicSources) else sources
    st.extra["sources"] = [s.path for s, _ in pairs]
    status = "completed"
    interrupted: BaseException | None = None
    try:
        phase("starting the target")
        with open_target(database_url, environments=environments, major=pg_major) as target:
            st.target, st.version = target.description, target.server_version
            phase(f"loading the schema ({src.origin})")
            schema.apply_schema(target.dsn, src)
            with psycopg.connect(target.dsn, autocommit=True) as conn:
                tables = datagen.read_tables(conn)
                if alembic is not None:  # Alembic's bookkeeping, not user data
                    tables.pop(alembic.version_table, None)
                rows = _plan_rows(tables, snap, rows_cap, default_rows)
                phase("generating synthetic rows")
                t_load = time.perf_counter()
                datagen.fill(conn, tables, rows, progress=on_progress)
                st.load_s = time.perf_counter() - t_load
                st.tables = _loaded(conn, tables, snap)
                plan = _build(
                    sources,
                    catalog=read_catalog(conn),
                    server_version=target.major,
                    file_transaction=file_transaction,
                )
                st.plan = plan
                phase("running the workload before the migration")
                before = workload.run_queries(conn, queries) if queries else []
            phase("running the steps under probe traffic")
            _trace(target, plan, tables, st, on_step, baseline_s)
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
    plan_final = st.plan or _build(sources, file_transaction=file_transaction)
    findings: list[Finding] = findings_for(plan_final, st.traces, st.workload, threshold=threshold)
    if alembic is not None:  # Alembic's version-table statements are not the user's migration
        own = {s.index for s in plan_final.steps if alembic.is_bookkeeping(s)}
        findings = [f for f in findings if f.step not in own]
    if snap is None:
        st.notes.append(
            "no stats snapshot (--stats): tables got "
            f"{min(default_rows, rows_cap):,} rows each and nothing is extrapolated"
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
    if write_record:
        from pgwarden.rehearse.record import write_record as _write

        path = _write(result, Path(record_dir) if record_dir else None)
        result = replace(result, record_path=str(path))
    if report_path is not None:
        from pgwarden.rehearse.report_html import write_report

        write_report(result, Path(report_path))
        result = replace(result, report_path=str(report_path))
    if interrupted is not None:
        stop = RehearsalInterrupted(list(result.steps))
        stop.result = result
        raise stop from None
    return result
