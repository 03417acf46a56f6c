"""pg_upgrade between two throwaway clusters: `--check`, the real upgrade, the vacuumdb it asks for.

The source is a running `Cluster` of the old major (a restored copy); the
target is a fresh `Cluster` of the new major. Both are shut down cleanly
(pg_upgrade refuses a cluster that crashed), the target's data checksums are
set to match the source's (initdb 18 turns them on by default, pg_upgrade
refuses a mismatch), pg_upgrade runs as the clusters' owner in the target's
directory, and the target is started again on the upgraded data. Every child
process runs in its own process group and is killed on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg

from pgwarden.backup.tools import stream_process
from pgwarden.errors import ClusterError, UsageError
from pgwarden.pg.cluster import Cluster
from pgwarden.upgrade.pg_upgrade_output import Finding, PostStep, findings, post_steps

__all__ = [
    "MODES",
    "Mode",
    "StatsStage",
    "UpgradeOutcome",
    "VacuumdbRun",
    "asked_vacuumdb",
    "check_mode",
    "run_pg_upgrade",
    "run_vacuumdb",
]

Mode = Literal["copy", "link", "clone", "swap"]
MODES: tuple[str, ...] = ("copy", "link", "clone", "swap")
_MIN_TARGET = {"copy": 0, "link": 0, "clone": 12, "swap": 18}
_REPORT_FILE = re.compile(r"(/\S+\.txt)\s*$")
_STATUS = re.compile(r"^(\S.*?)\s{2,}(ok|fatal|failed|warning)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class UpgradeOutcome:
    """What one pg_upgrade run did."""

    ok: bool
    mode: str
    check_only: bool
    seconds: float
    failed_checks: tuple[str, ...] = ()
    reports: tuple[tuple[str, str], ...] = ()  # (file name, its content): objects at fault
    message: str = ""  # pg_upgrade's explanation when it failed
    notes: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()  # checks passed with a warning or a notice
    post_upgrade: tuple[PostStep, ...] = ()  # what pg_upgrade asks to run afterwards

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "check_only": self.check_only,
            "seconds": round(self.seconds, 3),
            "failed_checks": list(self.failed_checks),
            "reports": [{"file": f, "content": c} for f, c in self.reports],
            "message": self.message,
            "notes": list(self.notes),
            "findings": [f.to_dict() for f in self.findings],
            "post_upgrade": [p.to_dict() for p in self.post_upgrade],
        }


@dataclass(frozen=True, slots=True)
class StatsStage:
    """One stage of `vacuumdb --analyze-in-stages` and when it ended."""

    name: str
    seconds: float


@dataclass(slots=True)
class _Run:
    code: int
    lines: list[str] = field(default_factory=list)


def check_mode(mode: str, target_major: int) -> None:
    """Refuse a transfer mode the target's pg_upgrade does not have."""
    if mode not in MODES:
        raise UsageError(f"unknown pg_upgrade mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    if target_major < _MIN_TARGET[mode]:
        raise UsageError(
            f"pg_upgrade --{mode} needs PostgreSQL {_MIN_TARGET[mode]} or newer as the target",
            hint="use --mode copy or --mode link",
        )


def _owner(cluster: Cluster) -> tuple[int, int] | None:
    """(uid, gid) the cluster's server runs as, when pgwarden runs as root."""
    if os.geteuid() != 0:
        return None
    st = cluster.root.stat()
    return st.st_uid, st.st_gid


def _env() -> dict[str, str]:
    """The environment for the server tools: no PG* variable may redirect them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    return env


def _run(
    args: Sequence[str],
    owner: tuple[int, int] | None,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> _Run:
    """Run a server tool as the clusters' owner; stdout and stderr merged, line by line."""
    result = _Run(0)

    def take(line: str) -> None:
        result.lines.append(line.rstrip("\n"))
        if on_line is not None:
            on_line(line.rstrip("\n"))

    result.code = stream_process(
        args,
        take,
        merge_stdout=True,
        cwd=cwd,
        env=env if env is not None else _env(),
        user=owner[0] if owner else None,
        group=owner[1] if owner else None,
    )
    return result


def shutdown(cluster: Cluster) -> None:
    """Stop the cluster's server cleanly (fast mode), keeping its data directory."""
    run = _run(
        [
            str(cluster.installation.tool("pg_ctl")),
            "stop",
            "-D",
            str(cluster.root / "data"),
            "-m",
            "fast",
            "-w",
            "-t",
            "120",
        ],
        _owner(cluster),
        cluster.root,
    )
    if run.code != 0:
        raise ClusterError(
            f"could not stop the throwaway PostgreSQL {cluster.installation.version} cleanly: "
            + " ".join(run.lines[-3:]),
            hint="see the server log; pg_upgrade needs both clusters shut down cleanly",
        )


def data_checksums(cluster: Cluster) -> bool:
    """Whether the running cluster has data checksums on."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        row = conn.execute("SHOW data_checksums").fetchone()
    return row is not None and row[0] == "on"


def _server_up(cluster: Cluster) -> bool:
    """Whether the cluster's data directory has a running server (postmaster.pid)."""
    return (cluster.root / "data" / "postmaster.pid").exists()


def _controldata_checksums(cluster: Cluster) -> bool:
    """Whether the stopped cluster has data checksums on (pg_controldata)."""
    run = _run(
        [str(cluster.installation.tool("pg_controldata")), "-D", str(cluster.root / "data")],
        _owner(cluster),
        cluster.root,
    )
    for line in run.lines:
        if line.startswith("Data page checksum version:"):
            return line.split(":", 1)[1].strip() not in ("0", "")
    raise ClusterError(
        f"pg_controldata did not report the checksum setting of {cluster.root / 'data'}",
        hint=" ".join(run.lines[-3:]) or "see the server log",
    )


def _align_checksums(target: Cluster, want: bool) -> str:
    """Turn the stopped target's checksums on or off; a note saying what was done."""
    run = _run(
        [
            str(target.installation.tool("pg_checksums")),
            "--enable" if want else "--disable",
            "--no-sync",
            "-D",
            str(target.root / "data"),
        ],
        _owner(target),
        target.root,
    )
    if run.code != 0:
        raise ClusterError(
            "pg_checksums could not match the target's data checksums to the source's: "
            + " ".join(run.lines[-3:]),
            hint="initdb the target with the source's checksum setting",
        )
    state = "on" if want else "off"
    return f"data checksums turned {state} in the fresh target cluster to match the source"


def _reports(lines: list[str]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for line in lines:
        m = _REPORT_FILE.search(line.strip())
        if m is None:
            continue
        path = Path(m.group(1))
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        out.append((path.name, text[:8000]))
    return tuple(out)


def _failed_checks(lines: list[str]) -> tuple[str, ...]:
    """Names of the checks pg_upgrade reported as failed."""
    out: list[str] = []
    for line in lines:
        for part in line.split("failed check:")[1:]:
            out.append(part.strip())
        m = _STATUS.match(line)
        if (
            m is not None
            and m.group(2).lower() in ("fatal", "failed")
            and "failed check:" not in line
        ):
            out.append(m.group(1).strip())
    return tuple(dict.fromkeys(out))


def _explanation(lines: list[str]) -> str:
    """pg_upgrade's explanation of a failure, without file paths and status lines."""
    start = 0
    for i, line in enumerate(lines):
        m = _STATUS.match(line)
        if "failed check:" in line or (m is not None and m.group(2).lower() in ("fatal", "failed")):
            start = i + 1
            break
    else:
        start = max(0, len(lines) - 8)
    kept = [
        ln.strip()
        for ln in lines[start:]
        if ln.strip()
        and not ln.strip().startswith("failed check:")
        and _REPORT_FILE.search(ln.strip()) is None
        and _STATUS.match(ln) is None  # "Checking ...   ok" lines
        and set(ln.strip()) != {"-"}
        and ln.strip() not in ("Failure, exiting", "Performing Consistency Checks")
    ]
    text = " ".join(kept)
    text = re.sub(r"\s*A list of [^.:]* is in the file:", "", text)
    return re.sub(r"\s+", " ", text).strip()[:1500]


def run_pg_upgrade(
    source: Cluster,
    target: Cluster,
    *,
    mode: str = "copy",
    check_only: bool = False,
    jobs: int = 2,
    on_line: Callable[[str], None] | None = None,
) -> UpgradeOutcome:
    """pg_upgrade (`--check` when `check_only`) from the running `source` to the fresh
    `target` (running or stopped).

    `--check` runs against the live source (pg_upgrade's live check) and leaves the
    target stopped, ready for the real run. The real run shuts the source down and, on
    success, starts the target on the upgraded data; after a failure the source is
    started again (unless link mode may have touched it).
    """
    new_major = target.installation.major
    check_mode(mode, new_major)
    notes: list[str] = []
    want = data_checksums(source)
    if _server_up(target):
        shutdown(target)
    if _controldata_checksums(target) != want:
        notes.append(_align_checksums(target, want))
    if not check_only and _server_up(source):
        shutdown(source)
    args = [
        str(target.installation.tool("pg_upgrade")),
        "-b",
        str(source.installation.bindir),
        "-B",
        str(target.installation.bindir),
        "-d",
        str(source.root / "data"),
        "-D",
        str(target.root / "data"),
        "-U",
        "postgres",
        "-s",
        str(target.root),
        "-p",
        "50432",
        "-P",
        "50433",
        f"--jobs={max(1, jobs)}",
        f"--{mode}",
        "--retain",  # keep pg_upgrade_output.d: the files its warnings name are read after
    ]
    if new_major >= 15:
        args.append("--no-sync")
    if check_only:
        args.append("--check")
    t0 = time.monotonic()
    # On Ctrl-C, _run kills pg_upgrade's process group, the servers its pg_ctl started too.
    run = _run(args, _owner(target), target.root, on_line=on_line)
    seconds = time.monotonic() - t0
    failed = _failed_checks(run.lines)
    ok = run.code == 0
    reports = _reports(run.lines) if not ok else ()
    message = "" if ok else _explanation(run.lines)
    found = findings(run.lines, target.root)
    steps = post_steps(run.lines, found) if ok and not check_only else ()
    if not check_only:
        if ok:
            target.restart(mode="fast")
        elif mode != "link":
            # A source upgraded in link mode must never start again; otherwise it may.
            source.restart(mode="fast")
            notes.append("the source cluster was started again after the failed upgrade")
    return UpgradeOutcome(
        ok=ok,
        mode=mode,
        check_only=check_only,
        seconds=seconds,
        failed_checks=failed,
        reports=reports,
        message=message,
        notes=tuple(notes),
        findings=found,
        post_upgrade=steps,
    )


_STAGE = re.compile(r"processing database \"[^\"]*\": (.+)$")
# What pg_upgrade runs the statistics step with when its banner asks for nothing parsable.
DEFAULT_VACUUMDB = ("vacuumdb --all --analyze-in-stages",)


@dataclass(frozen=True, slots=True)
class VacuumdbRun:
    """One vacuumdb command run on the upgraded cluster, as pg_upgrade asked for it."""

    command: str  # as pg_upgrade printed it, without this machine's bindir and -U
    seconds: float
    stages: tuple[StatsStage, ...] = ()  # --analyze-in-stages: when each stage ended


def asked_vacuumdb(outcome: UpgradeOutcome) -> tuple[str, ...]:
    """The vacuumdb commands pg_upgrade's completion banner asks for, in its order
    (one before 18; `--analyze-in-stages --missing-stats-only` then `--analyze-only`
    on 18)."""
    found: list[str] = []
    for step in outcome.post_upgrade:
        for command in step.commands:
            words = shlex.split(command)
            if words and Path(words[0]).name == "vacuumdb":
                found.append(command)
    return tuple(found)


def run_vacuumdb(
    target: Cluster, command: str, *, on_stage: Callable[[str], None] | None = None
) -> VacuumdbRun:
    """Run `command` (a vacuumdb command line as pg_upgrade printed it) with the target's
    vacuumdb against the upgraded cluster; timed, and each stage of
    `--analyze-in-stages` timed."""
    words = shlex.split(command)
    if not words or Path(words[0]).name != "vacuumdb":
        raise UsageError(f"not a vacuumdb command: {command}", hint="pass a vacuumdb command")
    args = [str(target.installation.tool("vacuumdb")), *words[1:]]
    env = _env()
    env.update(PGHOST=str(target.root), PGPORT=str(target.port), PGUSER="postgres")
    stages: list[StatsStage] = []
    t0 = time.monotonic()
    current: list[str] = []

    def line(text: str) -> None:
        m = _STAGE.search(text)
        if m is None:
            return
        name = m.group(1).strip()
        if current and current[-1] != name:
            stages.append(StatsStage(current[-1], time.monotonic() - t0))
        if not current or current[-1] != name:
            current.append(name)
            if on_stage is not None:
                on_stage(name)

    run = _run(args, None, target.root, env=env, on_line=line)
    seconds = time.monotonic() - t0
    if run.code != 0:
        raise ClusterError(
            f"{command} failed on the upgraded cluster: " + " ".join(run.lines[-3:]),
            hint="see the message; the upgraded copy may be damaged",
        )
    if current:
        stages.append(StatsStage(current[-1], seconds))
    # Stages repeat per database; keep the time each stage name finished last.
    done: dict[str, float] = {}
    for s in stages:
        done[s.name] = s.seconds
    return VacuumdbRun(
        command, seconds, tuple(StatsStage(name, secs) for name, secs in done.items())
    )
