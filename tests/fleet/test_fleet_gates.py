"""The HTTP and Prometheus gates against real servers.

A local HTTP server exports metrics (Prometheus text format) and a health
endpoint whose status the test sets. The Prometheus gate is checked against a
real Prometheus scraping that exporter when `prometheus` is installed (CI
installs it); otherwise against the exporter's own /api/v1/query, which serves
the query API's JSON for the metric it exports.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from pgwarden.errors import UsageError
from pgwarden.fleet.config import GateSpec
from pgwarden.fleet.gates import GateResult, evaluate, gate_url
from tests.fleet.conftest import cli

VALUES = {"t1": 0.01, "t2": 0.5}


class _Exporter(BaseHTTPRequestHandler):
    health = 200

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/metrics":
            lines = ["# TYPE app_error_ratio gauge"]
            lines += [f'app_error_ratio{{target="{t}"}} {v}' for t, v in VALUES.items()]
            self._send(200, ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4")
        elif url.path == "/health":
            self._send(type(self).health, b"ok", "text/plain")
        elif url.path == "/api/v1/query":  # the query API, for machines without Prometheus
            query = urllib.parse.parse_qs(url.query)["query"][0]
            m = re.search(r'target=~"([^"]*)"', query)
            wanted = re.compile(f"^(?:{m.group(1)})$") if m else None
            result = [
                {
                    "metric": {"target": t},  # as "max by (target)" gives it
                    "value": [time.time(), str(v)],
                }
                for t, v in VALUES.items()
                if wanted is None or wanted.match(t)
            ]
            doc = {"status": "success", "data": {"resultType": "vector", "result": result}}
            self._send(200, orjson.dumps(doc), "application/json")
        else:
            self._send(404, b"", "text/plain")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _ready(base: str) -> bool:
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": "app_error_ratio"})
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return len(orjson.loads(r.read())["data"]["result"]) == len(VALUES)
    except OSError:
        return False


@pytest.fixture(scope="module")
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the exporter every second (or the exporter itself)."""
    binary = shutil.which("prometheus")
    if binary is None:
        yield exporter
        return
    home = tmp_path_factory.mktemp("prometheus")
    target = exporter.removeprefix("http://")
    (home / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = _port()
    log = (home / "log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(base):
            assert proc.poll() is None, (home / "log").read_text()[-2000:]
            assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _gate(signal: str, **params: object) -> GateSpec:
    return GateSpec(name=signal, signal=signal, scope="wave", params=params)


def _one(gate: GateSpec, targets: list[str]) -> GateResult:
    (result,) = evaluate([gate], wave={}, fleet={}, wave_targets=targets, resolve=gate_url)
    return result


def test_prometheus_gate_holds_every_sample_of_the_waves_targets_to_its_threshold(
    prometheus: str,
) -> None:
    query = 'max by (target) (app_error_ratio{target=~"{targets}"})'
    gate = _gate("prometheus", url=prometheus, query=query, max=0.05)
    assert _one(gate, ["t1"]).ok
    failed = _one(gate, ["t1", "t2"])
    assert not failed.ok and failed.value == 0.5
    assert failed.reasons == ("target=t2: 0.5 (> 0.05)",)
    nobody = _one(gate, ["t9"])
    assert not nobody.ok and nobody.reasons == ("the query returned no sample",)
    assert _one(
        _gate("prometheus", url=prometheus, query=query, max=0.05, on_empty="pass"), ["t9"]
    ).ok
    low = _one(_gate("prometheus", url=prometheus, query=query, min=0.1), ["t1", "t2"])
    assert low.reasons == ("target=t1: 0.01 (< 0.1)",)


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs a real Prometheus")
def test_prometheus_rejecting_the_query_fails_the_gate(prometheus: str) -> None:
    result = _one(_gate("prometheus", url=prometheus, query="app_error_ratio{", max=1), ["t1"])
    assert not result.ok and "rejected the query (400)" in result.reasons[0]


def test_unreachable_endpoints_fail_their_gates() -> None:
    dead = f"http://127.0.0.1:{_port()}"
    prom = _one(_gate("prometheus", url=dead, query="up", max=1, timeout_s=2), ["t1"])
    assert not prom.ok and "could not be reached" in prom.reasons[0]
    http = _one(_gate("http", url=dead + "/health", timeout_s=2), [])
    assert not http.ok and "could not be reached" in http.reasons[0]


def test_http_gate_and_a_secret_url(exporter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _Exporter.health = 200
    assert _one(_gate("http", url=exporter + "/health"), []).ok
    _Exporter.health = 503
    try:
        monkeypatch.setenv("APP_HEALTH_URL", exporter + "/health?token=s3cret-token")
        result = _one(_gate("http", url_env="APP_HEALTH_URL"), [])
    finally:
        _Exporter.health = 200
    assert not result.ok
    assert result.reasons == ("$APP_HEALTH_URL answered 503 (expected 200)",)
    plain = _one(_gate("http", url=exporter + "/health?token=abc", expect_status=204), [])
    assert "token" not in plain.reasons[0] and "answered 200 (expected 204)" in plain.reasons[0]


def test_an_http_gate_halts_a_rollout_of_a_real_target(
    exporter: str, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate runs after the wave, on a real rollout: the change is there, the next
    wave is never started."""
    import psycopg

    from pgwarden import commands
    from pgwarden.apply.identity import stamp_database
    from pgwarden.fleet.config import fleet_config
    from pgwarden.fleet.rollout import RolloutOptions, run_rollout
    from pgwarden.fleet.targets import load_targets
    from pgwarden.settings import load_settings

    with psycopg.connect(db, autocommit=True) as c:
        stamp_database(c, "staging", protected=False, by="tests")
    monkeypatch.setenv("GATE_DB", db)
    monkeypatch.setenv("GATE_DB2", db + "_never")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pgwarden.toml").write_text(
        "[environments.staging]\nprotected = false\n[fleet.g]\n"
        f'journal_dir = "{tmp_path / "j"}"\n'
        'targets = [{ name = "a", dsn_env = "GATE_DB" }, { name = "b", dsn_env = "GATE_DB2" }]\n'
        "[[fleet.g.gates]]\n"
        f'signal = "http"\nurl = "{exporter}/health"\n'
        '[fleet.c]\non_error = "continue"\n'
        f'journal_dir = "{tmp_path / "j"}"\n'
        'targets = [{ name = "a", dsn_env = "GATE_DB" }]\n'
        f'[[fleet.c.gates]]\nsignal = "http"\nurl = "{exporter}/health"\n'
        "[fleet.unset]\n"
        f'journal_dir = "{tmp_path / "j"}"\n'
        'targets = [{ name = "a", dsn_env = "GATE_DB" }]\n'
        '[[fleet.unset.gates]]\nsignal = "http"\nurl_env = "FLEET_TEST_UNSET_URL"\n'
    )
    (tmp_path / "001.sql").write_text("CREATE TABLE gated (id int);\n")
    settings = load_settings()
    plan = commands.load_plan([tmp_path / "001.sql"], file_transaction=True)
    unset = fleet_config(settings, "unset")
    monkeypatch.delenv("FLEET_TEST_UNSET_URL", raising=False)
    with pytest.raises(UsageError, match="FLEET_TEST_UNSET_URL is not set"):
        run_rollout(plan, unset, load_targets(unset), RolloutOptions(env="staging"))
    with psycopg.connect(db, autocommit=True) as c:  # refused before anything ran
        assert c.execute("SELECT to_regclass('gated')").fetchone() == (None,)
    cfg = fleet_config(settings, "g")
    _Exporter.health = 500
    try:
        result = run_rollout(
            plan,
            cfg,
            load_targets(cfg),
            RolloutOptions(env="staging"),
            settings=settings,
        )
    finally:
        _Exporter.health = 200
    assert (result.state, result.halted_wave, result.reason) == ("halted", 1, "gate")
    assert {t.name: t.state for t in result.targets} == {"a": "done", "b": "pending"}
    assert "answered 500" in str(result.message)
    # on_error = continue goes past the failed gate, and still exits 1 so that CI notices
    _Exporter.health = 500
    try:
        went_on = cli(tmp_path, "fleet", "apply", "001.sql", "--fleet", "c", "--env", "staging")
    finally:
        _Exporter.health = 200
    assert went_on.returncode == 1, went_on.stdout + went_on.stderr
    assert "gate http failed after wave 1" in went_on.stdout
    assert "1 gate check failed (on_error = continue)" in went_on.stderr
