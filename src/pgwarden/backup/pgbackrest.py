"""`backup verify --pgbackrest STANZA --set LABEL`: prove a pgBackRest set by restoring it.

The set is restored (`--type=immediate`, archiving off) into the data directory
of a throwaway cluster of the same major version, recovered to consistency and
promoted; then every table of every database is read in full (row counts and
content checksums, which makes the server read every heap page) and every
index must be valid. pgBackRest sets carry no pgwarden manifest, so the figures
are reported rather than compared.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from pgwarden.backup import content
from pgwarden.backup.catalogue import Catalogue
from pgwarden.backup.tools import ToolFailed, run_tool
from pgwarden.errors import EnvironmentProblem, Refused, UsageError
from pgwarden.pg.binaries import find_installation
from pgwarden.pg.cluster import Cluster

__all__ = ["PgBackRestResult", "verify_set"]


@dataclass(frozen=True, slots=True)
class PgBackRestResult:
    """The outcome of restoring and reading one pgBackRest backup set."""

    stanza: str
    set_label: str
    system_identifier: int
    stopped_at: datetime
    restore_seconds: float
    total_seconds: float
    tables: dict[str, int] = field(default_factory=dict)  # db.schema.table -> rows
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _pgbackrest() -> str:
    exe = shutil.which("pgbackrest")
    if exe is None:
        raise EnvironmentProblem(
            "pgbackrest is not installed", hint="install it (Debian: apt-get install pgbackrest)"
        )
    return exe


def _common(stanza: str, config: str | None) -> list[str]:
    return [f"--stanza={stanza}", *([f"--config={config}"] if config else [])]


def backup_sets(stanza: str, config: str | None = None) -> list[dict[str, Any]]:
    """The stanza's backup sets as `pgbackrest info --output=json` describes them."""
    proc = subprocess.run(
        [_pgbackrest(), *_common(stanza, config), "--output=json", "info"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise UsageError(
            f"pgbackrest info failed for stanza {stanza!r}: {proc.stderr.strip()[:500]}",
            hint="check the stanza name and --pgbackrest-config",
        )
    stanzas = json.loads(proc.stdout)
    if not stanzas or stanzas[0].get("status", {}).get("code") not in (0, 4):
        msg = stanzas[0]["status"]["message"] if stanzas else "no such stanza"
        raise UsageError(f"pgBackRest stanza {stanza!r}: {msg}")
    info = stanzas[0]
    dbs = {d["id"]: d for d in info.get("db", [])}
    sets = []
    for b in info.get("backup", []):
        b = dict(b)
        b["_db"] = dbs.get(b.get("database", {}).get("id"), {})
        sets.append(b)
    return sets


def _stop_server(cluster: Cluster) -> None:
    os.kill(cluster.pid, signal.SIGINT)
    deadline = time.monotonic() + 60
    while cluster.running:
        if time.monotonic() > deadline:
            raise EnvironmentProblem("the throwaway server did not stop for the restore")
        time.sleep(0.05)


def verify_set(
    stanza: str,
    set_label: str | None,
    catalogue: Catalogue,
    *,
    config: str | None = None,
    pg_major: int | None = None,
) -> PgBackRestResult:
    """Restore the set (None: the latest) into a throwaway cluster and read every table."""
    del catalogue  # pgBackRest keeps its own catalogue; nothing is recorded in ours
    started = time.monotonic()
    sets = backup_sets(stanza, config)
    if not sets:
        raise Refused(f"pgBackRest stanza {stanza!r} has no backup sets")
    chosen = (
        sets[-1] if set_label is None else next((s for s in sets if s["label"] == set_label), None)
    )
    if chosen is None:
        labels = ", ".join(s["label"] for s in sets[-5:])
        raise UsageError(
            f"pgBackRest stanza {stanza!r} has no set {set_label!r}", hint=f"latest: {labels}"
        )
    major = pg_major or int(str(chosen["_db"].get("version", "0")).split(".")[0])
    inst = find_installation(major)
    sysid = int(chosen["_db"].get("system-id", 0))
    stopped_at = datetime.fromtimestamp(int(chosen["timestamp"]["stop"]), UTC)
    problems: list[str] = []
    tables: dict[str, int] = {}
    with Cluster.start(inst, settings={"archive_mode": "off"}) as cluster:
        data = cluster.root / "data"
        st = cluster.root.stat()
        as_user = (st.st_uid, st.st_gid) if os.geteuid() == 0 else (None, None)
        _stop_server(cluster)
        shutil.rmtree(data)
        data.mkdir(mode=0o700)
        if as_user[0] is not None:
            os.chown(data, st.st_uid, st.st_gid)
        t0 = time.monotonic()
        try:
            run_tool(
                [
                    _pgbackrest(),
                    *_common(stanza, config),
                    f"--set={chosen['label']}",
                    f"--pg1-path={data}",
                    "--type=immediate",
                    "--target-action=promote",
                    "--archive-mode=off",
                    "--log-level-console=warn",
                    "--log-level-file=off",
                    "restore",
                ],
                user=as_user[0],
                group=as_user[1],
            )
            cluster.restart(mode="fast")
        except ToolFailed as exc:
            problems.append(f"pgbackrest restore failed: {exc.last_error}")
        except Exception as exc:  # the server did not come up: the set does not recover
            problems.append(f"restored cluster did not start: {exc}")
        restore_s = time.monotonic() - t0
        if not problems:
            problems += _read_everything(cluster, tables)
    return PgBackRestResult(
        stanza,
        str(chosen["label"]),
        sysid,
        stopped_at,
        round(restore_s, 3),
        round(time.monotonic() - started, 3),
        tables,
        tuple(problems),
    )


def _read_everything(cluster: Cluster, tables: dict[str, int]) -> list[str]:
    problems: list[str] = []
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        dbs = [
            str(r[0])
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate"
            ).fetchall()
        ]
    for db in dbs:
        try:
            with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
                content.pin_output_settings(conn)
                for check in content.checksum_all(conn, content.list_tables(conn)):
                    tables[f"{db}.{check.qualified}"] = check.rows
                problems += [
                    f"database {db}: {line.removeprefix('index ')}"
                    for line in content.schema_fingerprint(conn)
                    if line.endswith("(INVALID)")
                ]
        except psycopg.Error as exc:
            problems.append(f"database {db}: cannot read: {str(exc).strip()}")
    return problems
