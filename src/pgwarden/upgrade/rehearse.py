"""`upgrade rehearse`: the whole pg_upgrade on a copy, every phase timed, plans compared.

1. A copy of the database (the newest verified backup of it, else a fresh
   pg_dump) restored into a throwaway cluster of the source major, then
   ANALYZEd: production has statistics, so the copy must too.
2. The workload (`--workload FILE`, else the stats snapshot's top queries,
   else the source's pg_stat_statements top reads) runs on it: "before".
3. A fresh cluster of the target major; `pg_upgrade --check`, then
   `pg_upgrade` in the chosen mode (copy, link, clone, swap); the new server
   is started on the upgraded data.
4. The workload again at once: "right after". Before PostgreSQL 18,
   pg_upgrade carries no planner statistics, so this is what the first
   minutes after an upgrade look like; 18 carries them (extended statistics
   excepted), which the result records.
5. The vacuumdb commands pg_upgrade's completion banner asks for, read from its
   output and run in its order, each timed (and each stage of
   `--analyze-in-stages`): `--analyze-in-stages` before 18; on 18
   `--analyze-in-stages --missing-stats-only`, then `--analyze-only`. Then the
   workload a third time: "after analyze".

Plan changes and slowdowns against "before" are the regressions. Nothing
touches the user's database except the read-only catalog reads and pg_dump.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from pgwarden.backup.catalogue import Catalogue
from pgwarden.errors import EnvironmentProblem, InputError
from pgwarden.events import Observer, Phase
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster
from pgwarden.pg.connect import describe_dsn
from pgwarden.rehearse.model import QueryRun, WorkloadComparison
from pgwarden.rehearse.workload import Query, compare, load_workload, run_query, snapshot_queries
from pgwarden.upgrade.check_run import target_for
from pgwarden.upgrade.pg_upgrade import (
    DEFAULT_VACUUMDB,
    StatsStage,
    UpgradeOutcome,
    asked_vacuumdb,
    check_mode,
    run_pg_upgrade,
    run_vacuumdb,
)
from pgwarden.upgrade.pg_upgrade_output import Finding, PostStep
from pgwarden.upgrade.rehearse_copy import (
    CopyInfo,
    newest_verified,
    open_source,
    read_source,
    restored_copy,
)

__all__ = [
    "PhaseTime",
    "Regression",
    "RehearseUpgradeOptions",
    "UpgradeRehearsal",
    "rehearse_upgrade",
]

_PARAM = re.compile(r"\$\d+")
_READ = re.compile(r"^\s*(SELECT|WITH|VALUES|TABLE)\b", re.IGNORECASE)
# Catalog queries (pg_dump's, psql's, monitoring's, pgwarden's own) are not the workload.
_CATALOG = re.compile(r"\b(pg_\w+|information_schema)\b", re.IGNORECASE)
# A slowdown counts only above this many milliseconds: queries of a few milliseconds on a
# small copy, on a busy machine, vary by more than any ratio from one run to the next.
MIN_SLOWDOWN_MS = 5.0


@dataclass(frozen=True, slots=True)
class RehearseUpgradeOptions:
    """What `upgrade rehearse` does."""

    target_major: int
    mode: str = "copy"
    copy: str = "auto"  # auto, backup, dump
    catalogue: Catalogue | None = None
    backup_id: str | None = None
    workload_file: str | None = None
    stats_file: str | None = None
    top: int = 10
    repeat: int = 5
    threshold: float = 1.5
    jobs: int = 2


@dataclass(frozen=True, slots=True)
class PhaseTime:
    """One timed phase of the rehearsal."""

    name: str
    seconds: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": round(self.seconds, 3), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Regression:
    """A workload query that got slower or changed plan after the upgrade."""

    query: str
    when: str  # "right after pg_upgrade" or "after analyze"
    before_ms: float | None
    after_ms: float | None
    changes: tuple[str, ...]

    @property
    def ratio(self) -> float | None:
        if self.before_ms is None or self.after_ms is None:
            return None
        return self.after_ms / max(self.before_ms, 1e-3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "when": self.when,
            "before_ms": self.before_ms,
            "after_ms": self.after_ms,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "changes": list(self.changes),
        }


def _run_dict(run: QueryRun) -> dict[str, Any]:
    return {
        "median_ms": run.median_ms,
        "indexes": list(run.indexes),
        "seq_scans": list(run.seq_scans),
        "error": run.error,
    }


@dataclass(frozen=True, slots=True)
class UpgradeRehearsal:
    """Everything one `upgrade rehearse` measured."""

    status: str  # completed, failed
    database: str
    source_version: str
    target_version: str
    mode: str
    copy: CopyInfo | None
    phases: tuple[PhaseTime, ...]
    queries: tuple[Query, ...] = ()
    before: tuple[QueryRun, ...] = ()
    right_after: tuple[QueryRun, ...] = ()
    after_analyze: tuple[QueryRun, ...] = ()
    stats_carried: bool | None = None
    stats_stages: tuple[StatsStage, ...] = ()
    check: UpgradeOutcome | None = None
    upgrade: UpgradeOutcome | None = None
    regressions: tuple[Regression, ...] = ()
    workload_source: str = ""
    notes: tuple[str, ...] = field(default=())
    ran_on_copy: tuple[str, ...] = ()  # post-upgrade commands this rehearsal ran itself

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Checks pg_upgrade passed with a warning or a notice (--check, then the run)."""
        seen: dict[str, Finding] = {}
        for outcome in (self.check, self.upgrade):
            for f in () if outcome is None else outcome.findings:
                seen.setdefault(f.code, f)
        return tuple(seen.values())

    @property
    def post_upgrade(self) -> tuple[PostStep, ...]:
        """What pg_upgrade asked to do after the upgrade (its completion banner)."""
        return () if self.upgrade is None else self.upgrade.post_upgrade

    @property
    def total_s(self) -> float:
        return sum(p.seconds for p in self.phases)

    @property
    def downtime_s(self) -> float | None:
        """How long the database is down on this route: pg_upgrade and the restart."""
        if self.upgrade is None or not self.upgrade.ok:
            return None
        for p in self.phases:
            if p.name.startswith("pg_upgrade --") and p.name != "pg_upgrade --check":
                return p.seconds
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "database": self.database,
            "source_version": self.source_version,
            "target_version": self.target_version,
            "mode": self.mode,
            "copy": None if self.copy is None else self.copy.to_dict(),
            "phases": [p.to_dict() for p in self.phases],
            "total_seconds": round(self.total_s, 3),
            "downtime_seconds": None if self.downtime_s is None else round(self.downtime_s, 3),
            "statistics_carried_by_pg_upgrade": self.stats_carried,
            "statistics_stages": [
                {"stage": s.name, "seconds": round(s.seconds, 3)} for s in self.stats_stages
            ],
            "pg_upgrade_check": None if self.check is None else self.check.to_dict(),
            "pg_upgrade": None if self.upgrade is None else self.upgrade.to_dict(),
            "workload_source": self.workload_source,
            "workload": [
                {
                    "name": q.name,
                    "sql": q.sql,
                    "location": q.location,
                    "before": _run_dict(b),
                    "right_after": _run_dict(r) if r is not None else None,
                    "after_analyze": _run_dict(a) if a is not None else None,
                }
                for q, b, r, a in zip(
                    self.queries,
                    self.before,
                    _padded(self.right_after, len(self.queries)),
                    _padded(self.after_analyze, len(self.queries)),
                    strict=True,
                )
            ],
            "regressions": [r.to_dict() for r in self.regressions],
            "notes": list(self.notes),
            "pg_upgrade_findings": [f.to_dict() for f in self.findings],
            "post_upgrade": [
                {**p.to_dict(), "ran_on_copy": [c for c in p.commands if c in self.ran_on_copy]}
                for p in self.post_upgrade
            ],
        }


def _padded(runs: tuple[QueryRun, ...], n: int) -> list[QueryRun | None]:
    return [*runs, *([None] * (n - len(runs)))]


GENERIC = "(generic plan)"


def _plan_facts(node: dict[str, Any], indexes: set[str], seq: set[str]) -> None:
    if "Index Name" in node:
        indexes.add(str(node["Index Name"]))
    if node.get("Node Type") == "Seq Scan" and "Relation Name" in node:
        seq.add(str(node["Relation Name"]))
    for child in node.get("Plans", []) or []:
        _plan_facts(child, indexes, seq)


def generic_plan(conn: psycopg.Connection[tuple[object, ...]], q: Query) -> QueryRun:
    """The plan of a query with $n parameters whatever their values (no timing).

    pg_stat_statements replaces constants by $n, so its queries cannot run as they
    are; with plan_cache_mode = force_generic_plan, EXPLAIN EXECUTE of the prepared
    statement shows the plan the server uses for any value (EXPLAIN only, nothing runs).
    """
    name = "pgwarden_upgrade_generic"
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            conn.execute(f"PREPARE {name} AS ".encode() + q.sql.encode())
            row = conn.execute(
                "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = %s",
                (name,),
            ).fetchone()
            n = int(str(row[0])) if row is not None else 0
            args = ", ".join(["NULL"] * n)
            explain = f"EXPLAIN (FORMAT JSON) EXECUTE {name}" + (f"({args})" if n else "")
            plan_row = conn.execute(explain.encode()).fetchone()
    except psycopg.Error as exc:
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return QueryRun(None, error=f"{exc.sqlstate or ''} {msg}".strip())
    finally:
        # A prepared statement outlives the rolled-back transaction that made it.
        with contextlib.suppress(psycopg.Error):
            conn.execute(f"DEALLOCATE {name}".encode())
    assert plan_row is not None
    doc = plan_row[0]
    data: list[dict[str, Any]] = orjson.loads(doc) if isinstance(doc, str | bytes) else doc  # type: ignore[assignment]
    indexes: set[str] = set()
    seq: set[str] = set()
    _plan_facts(data[0]["Plan"], indexes, seq)
    return QueryRun(None, indexes=tuple(sorted(indexes)), seq_scans=tuple(sorted(seq)))


# Why the source's pg_stat_statements gave no workload (the note names the fix).
_NO_PGSS = (
    "no workload: pass --workload FILE, or --stats with a snapshot that has top queries, or {fix}"
)


def _no_top_queries(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    """The note saying why pg_stat_statements gave nothing and what to do."""
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'),"
                " 'pg_stat_statements' = ANY(string_to_array(replace("
                "current_setting('shared_preload_libraries'), ' ', ''), ','))"
            ).fetchone()
    except psycopg.Error:
        row = None
    installed, loaded = (bool(row[0]), bool(row[1])) if row is not None else (False, False)
    if installed and not loaded:
        fix = (
            "load pg_stat_statements on the source (it is installed but not in "
            "shared_preload_libraries; a restart is needed)"
        )
    elif installed:
        fix = "let pg_stat_statements collect the application's reads first (it has none)"
    else:
        fix = "CREATE EXTENSION pg_stat_statements on the source (and preload it)"
    return _NO_PGSS.format(fix=fix)


def _top_queries(conn: psycopg.Connection[tuple[object, ...]], limit: int) -> list[Query]:
    """The source's most expensive reads from pg_stat_statements (those with $n
    parameters are compared by their generic plans)."""
    try:
        with conn.transaction():
            found = conn.execute(
                "SELECT s.query, s.calls FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid AND d.datname = current_database() "
                "ORDER BY s.total_exec_time DESC LIMIT 200"
            ).fetchall()
    except psycopg.Error:
        return []
    out: list[Query] = []
    for i, (text, calls) in enumerate(found):
        query = str(text)
        if not _READ.match(query) or _CATALOG.search(query):
            continue
        where = f"pg_stat_statements #{i + 1}" + (f" {GENERIC}" if _PARAM.search(query) else "")
        out.append(Query(f"top{len(out) + 1}", query, where, float(str(calls))))
        if len(out) >= limit:
            break
    return out


def _workload(
    conn: psycopg.Connection[tuple[object, ...]], options: RehearseUpgradeOptions
) -> tuple[list[Query], str, str]:
    """(queries, where they come from, the note when there are none)."""
    if options.workload_file:
        return load_workload(options.workload_file), options.workload_file, ""
    if options.stats_file:
        queries = snapshot_queries(options.stats_file, limit=options.top)
        none = _NO_PGSS.format(fix="take a snapshot where pg_stat_statements is loaded")
        return queries, f"{options.stats_file} (top queries)", "" if queries else none
    queries = _top_queries(conn, options.top)
    if queries:
        return queries, "pg_stat_statements of the source (top reads by total time)", ""
    return [], "", _no_top_queries(conn)


def _runs(dsn: str, queries: list[Query], repeat: int) -> tuple[QueryRun, ...]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return tuple(
            generic_plan(conn, q)
            if q.location.endswith(GENERIC)
            else run_query(conn, q, repeat=repeat)
            for q in queries
        )


def _stats_rows(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stats WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema')"
        ).fetchone()
    return 0 if row is None else int(str(row[0]))


def regressions(
    comparisons: list[WorkloadComparison], when: str, threshold: float
) -> list[Regression]:
    """Queries whose plan changed for the worse or that got `threshold` times slower."""
    out: list[Regression] = []
    for c in comparisons:
        b, a = c.before.median_ms, c.after.median_ms
        slower = b is not None and a is not None and a >= b * threshold and a - b >= MIN_SLOWDOWN_MS
        if c.changes or slower:
            out.append(Regression(c.name, when, b, a, c.changes))
    return out


def _vacuumdb_phase(command: str) -> str:
    """The phase name of a vacuumdb command pg_upgrade asked for."""
    if "--analyze-in-stages" in command.split():
        return "analyze in stages"
    if "--analyze-only" in command.split():
        return "analyze"
    return command


class _Clock:
    """Collects phase times; emits a Phase event when each starts."""

    def __init__(self, emit: Observer) -> None:
        self.emit = emit
        self.phases: list[PhaseTime] = []

    def run(self, name: str, message: str) -> _Timer:
        self.emit(Phase(message=message))
        return _Timer(self, name)


class _Timer:
    def __init__(self, clock: _Clock, name: str) -> None:
        self.clock = clock
        self.name = name
        self.detail = ""
        self.t0 = 0.0

    def __enter__(self) -> _Timer:
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.clock.phases.append(PhaseTime(self.name, time.monotonic() - self.t0, self.detail))


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _room_for(size: int, *, dumped: bool, copied: bool) -> None:
    """Refuse before starting when the temp directory cannot hold the rehearsal.

    The restored copy takes about the database's size; a fresh dump up to as much
    again (a backup is read in place); pg_upgrade --copy writes the data files a second
    time (--link, --clone and --swap do not).
    """
    need = size * (1 + int(dumped) + int(copied))
    where = tempfile.gettempdir()
    free = shutil.disk_usage(where).free
    if free < need:
        raise EnvironmentProblem(
            f"{where} has {_size(free)} free; rehearsing the upgrade of this "
            f"{_size(size)} database needs about {_size(need)} there",
            hint="point TMPDIR at a larger volume"
            + (", or use --mode link (no second copy of the data files)" if copied else ""),
        )


def rehearse_upgrade(
    dsn: str, options: RehearseUpgradeOptions, *, observer: Observer | None = None
) -> UpgradeRehearsal:
    """Rehearse the pg_upgrade of the database at `dsn` to `options.target_major`."""
    emit: Observer = observer or (lambda _e: None)
    check_mode(options.mode, options.target_major)
    if options.copy == "schema":
        raise InputError(
            "upgrade rehearse needs the data: --copy schema would time nothing real",
            hint="use --copy auto (newest verified backup, else a dump), backup or dump",
        )
    with open_source(dsn) as conn:
        facts = read_source(conn)
        # The version first: an older --to is refused as such, installed or not.
        target_for(facts.major, options.target_major)
        target_inst = find_installation(options.target_major)
        queries, workload_source, no_workload = _workload(conn, options)
    # `auto` dumps the database when the catalogue has no verified backup of it
    dumped = options.copy == "dump" or (
        options.copy == "auto"
        and options.backup_id is None
        and (options.catalogue is None or newest_verified(options.catalogue, facts) is None)
    )
    _room_for(facts.size_bytes, dumped=dumped, copied=options.mode == "copy")
    notes: list[str] = []
    if not queries:
        notes.append(no_workload or "no workload: the workload file has no queries")
    clock = _Clock(emit)

    def result(status: str, **measured: Any) -> UpgradeRehearsal:
        return UpgradeRehearsal(
            status=status,
            database=describe_dsn(dsn),
            source_version=facts.version,
            target_version=target_inst.version,
            mode=options.mode,
            phases=tuple(clock.phases),
            queries=tuple(queries),
            workload_source=workload_source,
            notes=tuple(notes),
            **measured,
        )

    with restored_copy(
        dsn,
        facts,
        kind=options.copy,
        catalogue=options.catalogue,
        backup_id=options.backup_id,
        jobs=options.jobs,
        observer=emit,
    ) as restored:
        copy = restored.info
        if copy.dump_s:
            clock.phases.append(PhaseTime("dump", copy.dump_s, copy.label))
        clock.phases.append(PhaseTime("restore", copy.restore_s, copy.label))
        notes += copy.notes
        with (
            clock.run("analyze source", "ANALYZE on the copy (production has statistics)"),
            psycopg.connect(restored.dsn, autocommit=True) as c,
        ):
            c.execute("ANALYZE")
        with clock.run("workload before", f"workload on PostgreSQL {facts.version}"):
            before = _runs(restored.dsn, queries, options.repeat)
        with clock.run("start target", f"fresh PostgreSQL {target_inst.version} cluster"):
            target = Cluster.start(target_inst)
        with target:
            with clock.run("pg_upgrade --check", "pg_upgrade --check"):
                check = run_pg_upgrade(restored.cluster, target, check_only=True, jobs=options.jobs)
            if not check.ok:
                notes.append(f"pg_upgrade --check failed: {check.message}")
                return result("failed", copy=copy, before=before, check=check)
            with clock.run(
                f"pg_upgrade --{options.mode}",
                f"pg_upgrade --{options.mode} and start the new server",
            ) as timer:
                upgrade = run_pg_upgrade(
                    restored.cluster, target, mode=options.mode, jobs=options.jobs
                )
                timer.detail = f"pg_upgrade itself {upgrade.seconds:.1f} s"
            notes += upgrade.notes
            if not upgrade.ok:
                notes.append(f"pg_upgrade failed: {upgrade.message}")
                return result("failed", copy=copy, before=before, check=check, upgrade=upgrade)
            new_dsn = target.dsn(facts.database)
            carried = _stats_rows(new_dsn) > 0
            with clock.run("workload right after", "workload right after pg_upgrade"):
                right_after = _runs(new_dsn, queries, options.repeat)
            # What pg_upgrade's banner asks for, in its order (two commands on 18).
            commands = asked_vacuumdb(upgrade) or DEFAULT_VACUUMDB
            stages: list[StatsStage] = []
            for command in commands:
                name = _vacuumdb_phase(command)
                with clock.run(name, command) as timer:
                    ran = run_vacuumdb(
                        target, command, on_stage=lambda s: emit(Phase(message=f"statistics: {s}"))
                    )
                    timer.detail = command
                stages += ran.stages
            with clock.run("workload after analyze", "workload after the statistics"):
                after = _runs(new_dsn, queries, options.repeat)
    found = regressions(
        compare(queries, list(before), list(right_after)),
        "right after pg_upgrade",
        options.threshold,
    ) + regressions(compare(queries, list(before), list(after)), "after analyze", options.threshold)
    if carried:
        notes.append(
            f"PostgreSQL {options.target_major}'s pg_upgrade carried the planner statistics "
            "over (extended statistics excepted): the first minutes need no ANALYZE"
        )
    elif queries:
        notes.append(
            "pg_upgrade carried no planner statistics: until ANALYZE finishes, the planner "
            "guesses (the 'right after' column)"
        )
    healed = sorted(
        {g.query for g in found if g.when == "right after pg_upgrade"}
        - {g.query for g in found if g.when == "after analyze"}
    )
    if healed and stages:
        notes.append(
            f"{len(healed)} quer{'y' if len(healed) == 1 else 'ies'} ({', '.join(healed[:5])}) "
            "regress until the statistics are back: keep traffic off the new server until "
            f"vacuumdb --analyze-in-stages has finished ({stages[-1].seconds:.1f} s on this "
            "copy; it grows with the tables), or ANALYZE their tables first"
        )
    return result(
        "completed",
        copy=copy,
        before=before,
        right_after=right_after,
        after_analyze=after,
        stats_carried=carried,
        stats_stages=tuple(stages),
        check=check,
        upgrade=upgrade,
        regressions=tuple(found),
        ran_on_copy=tuple(commands),
    )
