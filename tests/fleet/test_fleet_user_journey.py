"""What a new user met rolling changes out from docs/fleet.md, on a real cluster.

- A plan that `pgwarden apply` refuses for its shape alone (CREATE INDEX
  CONCURRENTLY inside the file's transaction) passed the dry run (exit 0), then
  failed on the canary (exit 3) with a journal to cancel: it is refused before
  any target, dry run included (exit 2).
- A target unreachable when its wave started kept its unreadable baseline in the
  rollout journal: once it was reachable again every `fleet resume` failed the
  gate on the old error.
- A gate whose window was too quiet to judge (fewer transactions than
  `min_transactions`) printed `gate ... ok`, as if the change had been checked.
- Drift compared targets with the same set of applied plans: a target that got
  001+002 at once was never compared with those that got 001 then 001+002, so a
  table created by hand on it went unseen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from pgwarden import commands
from pgwarden.apply.api import GuardPolicy, apply_plan
from pgwarden.pg.cluster import Cluster
from tests.fleet.conftest import (
    Member,
    cli,
    export,
    fleet_toml,
    has_column,
    make_members,
    make_template,
    runs_of,
)

FLEETS = {
    "shape": "",
    "gated": """
[[fleet.gated.waves]]
name = "canary"
count = 1
[[fleet.gated.waves]]
name = "rest"
percent = 100
[[fleet.gated.gates]]
name = "rollbacks"
signal = "rollback_ratio"
max = 0.05
""",
}


@pytest.fixture(scope="module")
def journey(
    pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, list[Member]]]:
    make_template(pg_cluster, "fleet_journey_tpl")
    members = make_members([pg_cluster], 3, "fj", template="fleet_journey_tpl")
    home = tmp_path_factory.mktemp("fleet-journey")
    (home / "pgwarden.toml").write_text(fleet_toml(FLEETS, members, journal_dir=home / "journal"))
    with pytest.MonkeyPatch.context() as mp:
        export(members, mp)
        mp.chdir(home)
        yield home, members


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_a_plan_apply_refuses_everywhere_is_refused_before_any_target(
    journey: tuple[Path, list[Member]],
) -> None:
    home, members = journey
    _write(
        home / "concurrent",
        {
            "001.sql": "ALTER TABLE accounts ADD COLUMN shape_a int;\n"
            "CREATE INDEX CONCURRENTLY accounts_shape_a ON accounts (shape_a);\n"
        },
    )
    args = ("fleet", "apply", "concurrent", "--fleet", "shape", "--env", "staging")
    dry = cli(home, *args, "--dry-run")
    assert dry.returncode == 2, dry.stdout + dry.stderr
    assert "001.sql:2:1: this statement cannot run inside a transaction block" in dry.stderr
    assert "--no-file-transaction" in dry.stderr
    real = cli(home, *args)
    assert real.returncode == 2, real.stdout + real.stderr
    assert "cannot run inside a transaction block" in real.stderr
    assert not (home / "journal" / "shape.json").exists()  # no rollout to resume or cancel
    assert all(not has_column(m.dsn, "shape_a") and not runs_of(m.dsn) for m in members)
    # as the hint says: the file not in one transaction goes through
    ok = cli(home, *args, "--no-file-transaction")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 targets have the change, 0 failed, 0 never touched" in ok.stdout
    assert all(has_column(m.dsn, "shape_a") for m in members)


def test_a_target_unreachable_when_its_wave_began_is_judged_afresh_on_resume(
    journey: tuple[Path, list[Member]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, members = journey
    _write(home / "gated", {"001.sql": "ALTER TABLE accounts ADD COLUMN gated_b int;\n"})
    down = members[1]
    monkeypatch.setenv(down.env_var, "postgresql://postgres@127.0.0.1:1/nowhere")
    args = ("--fleet", "gated", "--env", "staging")
    first = cli(home, "fleet", "apply", "gated", *args)
    assert first.returncode == 1, first.stdout + first.stderr  # unreachable: nothing ran
    assert "cannot connect" in first.stderr
    # resume runs the journal's plan; a corrected plan needs the rollout cancelled first
    assert "`pgwarden fleet cancel`, then `pgwarden fleet apply` it" in first.stderr
    monkeypatch.setenv(down.env_var, down.dsn)  # the server is back
    resumed = cli(home, "fleet", "resume", *args)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "gate rollbacks ok" in resumed.stderr
    assert all(has_column(m.dsn, "gated_b") for m in members)
    # nobody used these databases during the window: the gate says it judged nothing
    assert "gate rollbacks ok, not judged on 2 targets (rollback_ratio, wave)" in resumed.stderr
    assert "transactions in the window (min_transactions 20)" in resumed.stderr
    # the halt said what stopped which target, in words that count right
    assert f"wave 2: 1 target unreachable ({down.name}); {down.name}: cannot connect" in (
        first.stderr
    )
    assert "3 targets have the change" in resumed.stdout
    assert all(has_column(m.dsn, "gated_b") for m in members)


def test_targets_with_the_same_history_are_compared_whatever_plans_brought_it(
    journey: tuple[Path, list[Member]],
) -> None:
    home, members = journey
    one = _write(home / "h1", {"010_h.sql": "CREATE TABLE hist_a (id int);\n"})
    both = _write(
        home / "h12",
        {
            "010_h.sql": "CREATE TABLE hist_a (id int);\n",
            "020_h.sql": "CREATE TABLE hist_b (id int);\n",
        },
    )
    policy = GuardPolicy(env="staging")
    for m in members[:2]:  # 010 first, then the folder (010 skipped by their history)
        for folder in (one, both):
            plan = commands.load_plan([folder], file_transaction=True)
            assert apply_plan(plan, database_url=m.dsn, policy=policy).state == "done"
    late = members[2]  # the folder at once
    plan = commands.load_plan([both], file_transaction=True)
    assert apply_plan(plan, database_url=late.dsn, policy=policy).state == "done"
    import psycopg

    with psycopg.connect(late.dsn, autocommit=True) as c:
        c.execute("CREATE TABLE made_by_hand (id int)")
    done = cli(home, "fleet", "status", "--fleet", "shape", "--format", "json")
    assert done.returncode == 0, done.stderr
    by_name = {t["name"]: t for t in orjson.loads(done.stdout)["targets"]}
    assert len(by_name[members[0].name]["plans"]) != len(by_name[late.name]["plans"])
    assert by_name[late.name]["drift"] == [{"object": "table public.made_by_hand", "how": "extra"}]
    assert by_name[late.name]["peers"] == 2
    assert by_name[members[0].name]["drift"] == []
    text = cli(home, "fleet", "status", "--fleet", "shape")
    assert "1 target drifts from its peers: " + late.name in text.stdout, text.stdout


class _Hooks(BaseHTTPRequestHandler):
    posts: ClassVar[list[bytes]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).posts.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_rollout_refused_before_it_starts_tells_no_webhook(
    journey: tuple[Path, list[Member]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gate's URL variable not set is exit 2 with nothing run: the webhooks were told
    'fleet apply started' then 'failed' all the same (a page for a rollout that never
    began)."""
    _home, members = journey
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        gate = (
            '[[fleet.hooked.gates]]\nname = "app"\nsignal = "http"\nurl_env = "JOURNEY_APP_URL"\n'
        )
        (tmp_path / "pgwarden.toml").write_text(
            fleet_toml({"hooked": gate}, members, journal_dir=tmp_path / "journal")
            + '\n[[notify.webhooks]]\nurl_env = "JOURNEY_HOOK"\nformat = "json"\n'
        )
        _write(tmp_path / "m", {"001.sql": "ALTER TABLE accounts ADD COLUMN hooked_c int;\n"})
        monkeypatch.setenv("JOURNEY_HOOK", f"http://127.0.0.1:{server.server_address[1]}/h")
        monkeypatch.delenv("JOURNEY_APP_URL", raising=False)
        args = ("--fleet", "hooked", "--env", "staging")
        refused = cli(tmp_path, "fleet", "apply", "m", *args)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "JOURNEY_APP_URL is not set" in refused.stderr
        resumed = cli(tmp_path, "fleet", "resume", *args)
        assert resumed.returncode == 2, resumed.stdout + resumed.stderr
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert _Hooks.posts == []
    assert not any(has_column(m.dsn, "hooked_c") for m in members)


@pytest.mark.parametrize("gap_s", [0.0, 0.05])
def test_ctrl_c_twice_ends_with_the_fleet_s_exit_code_never_by_sigint(
    journey: tuple[Path, list[Member]], gap_s: float
) -> None:
    """Two Ctrl-C close together while the canary waits for a lock: the second press could
    land as the first one's cancel finished and kill the process by SIGINT after its
    report (exit -2 / 130), or end with apply's 'run the command again'."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psycopg

    home, members = journey
    _write(home / f"ctrl_c_{gap_s}", {"001.sql": "ALTER TABLE accounts ADD COLUMN ctrl_c int;\n"})
    holder = psycopg.connect(members[0].dsn)
    holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "pgwarden", "fleet", "apply", f"ctrl_c_{gap_s}",
             "--fleet", "shape", "--env", "staging"],
            cwd=home, env=dict(os.environ), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as runner:  # fmt: skip
            assert runner.stderr is not None
            seen = []
            for line in runner.stderr:  # until the canary says it is held up
                seen.append(line)
                if "retry in" in line or "waiting for pid" in line:
                    break
            runner.send_signal(signal.SIGINT)
            if gap_s:
                time.sleep(gap_s)
            runner.send_signal(signal.SIGINT)
            _out, rest = runner.communicate(timeout=60)
    finally:
        holder.rollback()
        holder.close()
    said = "".join(seen) + rest
    assert runner.returncode == 3, said
    assert "`pgwarden fleet resume`" in said and "run the command again" not in said
    assert not has_column(members[0].dsn, "ctrl_c")
    cancelled = cli(home, "fleet", "cancel", "--fleet", "shape")  # the next test starts clean
    assert cancelled.returncode in (0, 1), cancelled.stdout + cancelled.stderr
