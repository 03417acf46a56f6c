"""Results of a rehearsal: plain frozen values, serialisable with `to_dict`.

Times are seconds since the rehearsal's first step started (`*_s`), or
milliseconds where the name says `_ms`. Production figures are estimates,
scaled linearly from the rehearsal's table sizes to the stats snapshot's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pgwarden.findings import Finding

__all__ = [
    "Blocking",
    "HeldLock",
    "LoadedTable",
    "ModelDiff",
    "NullRows",
    "QueryRun",
    "RehearsalResult",
    "StepError",
    "StepTrace",
    "WorkloadComparison",
]


@dataclass(frozen=True, slots=True)
class HeldLock:
    """A lock the migration's backend held (or waited for) over an interval."""

    relation: str
    mode: str  # SQL spelling: "ACCESS EXCLUSIVE"
    start_s: float
    end_s: float
    granted: bool = True


@dataclass(frozen=True, slots=True)
class ModelDiff:
    """A difference between the static lock model and what the server did."""

    relation: str
    observed: str | None  # mode the server took, None when it took none
    modelled: str | None  # mode the model predicted, None when it predicted none


@dataclass(frozen=True, slots=True)
class Blocking:
    """How long probe clients on one table were blocked during one step."""

    table: str
    reads_blocked_s: float  # longest single read wait overlapping the step
    writes_blocked_s: float
    reads: int  # probe reads that overlapped the step
    writes: int
    est_reads_blocked_s: float | None = None  # at production size (estimate)
    est_writes_blocked_s: float | None = None


@dataclass(frozen=True, slots=True)
class NullRows:
    """A NOT NULL that failed on NULLs: how many rows had one, and how many of them the
    probe traffic inserted (standing for the application) during the rehearsal."""

    table: str
    column: str
    rows: int  # rows with NULL in the column when the step failed
    inserted: int  # ... of them inserted by the probe writers


@dataclass(frozen=True, slots=True)
class StepError:
    """Why a step failed, and what state the cluster was left in."""

    sqlstate: str | None
    message: str
    cluster_state: str
    null_rows: NullRows | None = None  # a NOT NULL failed on rows the probes inserted


@dataclass(frozen=True, slots=True)
class StepTrace:
    """What one plan step did on the rehearsal cluster."""

    index: int
    sql: str
    location: str
    kind: str
    transaction: int | None
    status: str  # ok, failed, interrupted, skipped
    start_s: float = 0.0  # the statement was sent
    end_s: float = 0.0  # its transaction ended, or the next step began (locks still held)
    statement_s: float = 0.0  # the statement alone
    acquire_s: float = 0.0  # time the step waited for its locks
    locks: tuple[HeldLock, ...] = ()  # sampled from a second connection
    acquired: tuple[tuple[str, str], ...] = ()  # (relation, mode) read in-transaction
    model_diffs: tuple[ModelDiff, ...] = ()
    rewrites: tuple[str, ...] = ()
    rows_read: int = 0
    rows_written: int = 0
    bytes_touched: int = 0  # heap bytes of tables scanned, total bytes of tables rewritten
    wal_bytes: int = 0
    temp_files: int = 0
    temp_bytes: int = 0
    blocking: tuple[Blocking, ...] = ()
    scale: float | None = None  # production size / rehearsal size of the work done
    est_duration_s: float | None = None
    error: StepError | None = None

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    def strongest(self) -> dict[str, str]:
        """Strongest granted mode per relation, from the samples and the in-transaction read."""
        from pgwarden.analysis.effects import LockMode

        best: dict[str, LockMode] = {}
        pairs = [(lk.relation, lk.mode) for lk in self.locks if lk.granted] + list(self.acquired)
        for rel, mode in pairs:
            m = LockMode[mode.replace(" ", "_")]
            if m > best.get(rel, 0):
                best[rel] = m
        return {k: v.title for k, v in best.items()}


@dataclass(frozen=True, slots=True)
class LoadedTable:
    """A table filled with synthetic rows (or copied ones), and the production size it stands
    for."""

    name: str
    rows: int
    table_bytes: int
    total_bytes: int
    prod_rows: int | None = None
    prod_table_bytes: int | None = None
    prod_total_bytes: int | None = None
    copied: bool = False  # its rows were copied from the source database (copy_data)


@dataclass(frozen=True, slots=True)
class QueryRun:
    """A workload query's EXPLAIN (ANALYZE, BUFFERS) summary at one point in time."""

    median_ms: float | None
    indexes: tuple[str, ...] = ()
    seq_scans: tuple[str, ...] = ()
    triggers: tuple[tuple[str, float], ...] = ()  # (trigger, ms per execution)
    shared_hit: int = 0
    shared_read: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WorkloadComparison:
    """One workload query before and after the migration."""

    name: str
    sql: str
    location: str
    weight: float
    before: QueryRun
    after: QueryRun
    changes: tuple[str, ...] = ()  # plan changes in words

    @property
    def ratio(self) -> float | None:
        b, a = self.before.median_ms, self.after.median_ms
        if b is None or a is None:
            return None
        return a / max(b, 1e-3)


@dataclass(frozen=True, slots=True)
class RehearsalResult:
    """Everything one rehearsal found; `status` is completed, failed or interrupted."""

    fingerprint: str
    status: str
    target: str
    server_version: str
    schema_source: str
    tables: tuple[LoadedTable, ...] = ()
    steps: tuple[StepTrace, ...] = ()
    workload: tuple[WorkloadComparison, ...] = ()
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()
    load_s: float = 0.0
    total_s: float = 0.0
    record_path: str | None = None
    report_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the `--format json` contract, see docs/rehearse.md)."""
        data = asdict(self)
        data["findings"] = [finding_dict(f) for f in self.findings]
        for step, raw in zip(self.steps, data["steps"], strict=True):
            raw["duration_s"] = round(step.duration_s, 6)
            raw["strongest"] = step.strongest()
        for wl, raw in zip(self.workload, data["workload"], strict=True):
            raw["ratio"] = wl.ratio
        data.pop("extra")
        tz = self.extra.get("timezone")
        data["timezone"] = (
            {
                "name": tz,
                "source": self.extra.get("timezone_source", ""),
                "assumed": self.extra.get("timezone_assumed") or None,
            }
            if tz is not None
            else None
        )
        return data


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as in lint's JSON."""
    return {
        "code": f.code,
        "name": f.name,
        "severity": f.severity.value,
        "message": f.message,
        "help": f.help,
        "location": {"path": f.location.path, "line": f.location.line, "column": f.location.column},
        "fix": f.fix.sql if f.fix else None,
        "step": f.step,
    }
