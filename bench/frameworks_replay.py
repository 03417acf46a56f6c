"""Incident replay through the frameworks: Django's and Alembic's migrate, naive vs pgwarden.

The migration drops and re-creates the FK from `invoices` (1M rows by default)
to `payment_accounts` under API-like load (`pgwarden.replay`), with scenario (b):
a report transaction holds a lock on invoices when the migration arrives.

Projects (tests/contrib/bench_projects/): a Django app whose models map the
sample tables (0001 fake-applied; 0002 makes the FK nullable, so Django drops
the FK, alters the column and re-adds the FK) and an Alembic project (0001
stamped; 0002 drops and re-adds the FK with ON DELETE RESTRICT).

Tools:
  django-naive       manage.py migrate ledger
  django-pgwarden    manage.py pgwarden migrate ledger --env replay --yes --rewrite
  alembic-naive      alembic upgrade head (stock env.py path)
  alembic-pgwarden   alembic upgrade head with env.py's pgwarden.contrib.alembic.configure
                     (rewrite=True)
  (-norewrite variants: the pgwarden ones without the rewrite)

Per run: stall s (1-s buckets after the migration starts with fewer than half the
target rate of completed requests), peak sessions waiting on locks, peak
connections, client errors (requests failed after retries), migration s, and
whether the FKs of invoices end up valid, and the history table afterwards
(django_migrations rows of the app / alembic_version).

Usage: .venv/bin/python bench/frameworks_replay.py [--rows 1000000] [--tools ...]

Alembic wall time (`--alembic-upgrade`): a real project, mlflow's tracking-store
revisions (pip install 'pgwarden[test-alembic-real]'): a database made as mlflow
makes it (initial tables, `alembic upgrade 451aebb31d03`) with `--metric-rows`
metrics (400k by default) over 2,000 runs, upgraded to head on two copies by
plain `alembic upgrade head` and by `pgwarden apply --alembic` (59 revisions
rendered offline, 7 run online through Alembic inside the guarded executor);
prints each wall time (process start-up included), the ratio, and whether both
copies end with the same schema and alembic_version.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from pgwarden.pg.cluster import Cluster
from pgwarden.replay import ReplaySettings, Run, load_templates, run_one

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = ROOT / "tests" / "contrib" / "bench_projects"
DJANGO = PROJECTS / "django_incident"
ALEMBIC = PROJECTS / "alembic_incident"
UNUSED = ROOT / "examples" / "incident" / "001_recreate_invoice_fk.sql"  # run_one's argument

PY = sys.executable
DJANGO_ENV = (("PGWARDEN_DJANGO_DSN", "{dsn}"),)
DJANGO_PGWARDEN: tuple[str, ...] = (
    PY,
    "manage.py",
    "pgwarden",
    "migrate",
    "ledger",
    "--env",
    "replay",
    "--yes",
)
DJANGO_PGWARDEN += ("--restamp",)  # adopt the replay's copy (0001 recorded before pgwarden)
ALEMBIC_CMD = (PY, "-m", "alembic", "-c", str(ALEMBIC / "alembic.ini"), "upgrade", "head")
TOOLS: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    # name: (template, argv, env)
    "django-naive": ("tpl_django", (PY, "manage.py", "migrate", "ledger"), DJANGO_ENV),
    "django-pgwarden": (
        "tpl_django",
        (*DJANGO_PGWARDEN, "--rewrite", "--journal-file", "{journal}"),
        DJANGO_ENV,
    ),
    "django-pgwarden-norewrite": (
        "tpl_django",
        (*DJANGO_PGWARDEN, "--journal-file", "{journal}"),
        DJANGO_ENV,
    ),
    "alembic-naive": (
        "tpl_alembic",
        ALEMBIC_CMD,
        (("PGWARDEN_BENCH_URL", "{url}"), ("PGWARDEN_GUARDED", "0")),
    ),
    "alembic-pgwarden": (
        "tpl_alembic",
        ALEMBIC_CMD,
        (
            ("PGWARDEN_BENCH_URL", "{url}"),
            ("PGWARDEN_GUARDED", "1"),
            ("PGWARDEN_ENV", "replay"),
            ("PGWARDEN_REWRITE", "1"),
            ("PGWARDEN_JOURNAL", "{journal}"),
        ),
    ),
    "alembic-pgwarden-norewrite": (
        "tpl_alembic",
        ALEMBIC_CMD,
        (
            ("PGWARDEN_BENCH_URL", "{url}"),
            ("PGWARDEN_GUARDED", "1"),
            ("PGWARDEN_ENV", "replay"),
            ("PGWARDEN_JOURNAL", "{journal}"),
        ),
    ),
}


HISTORY = {
    "django": "SELECT name FROM django_migrations WHERE app = 'ledger' ORDER BY id",
    "alembic": "SELECT version_num FROM alembic_version",
}


def _framework_templates(cluster: Cluster, tools: list[str]) -> None:
    """tpl_django / tpl_alembic: tpl_b with migration 0001 recorded as applied."""
    env = cluster.tool_env()
    for tpl, cmd, cwd, extra in (
        (
            "tpl_django",
            [PY, "manage.py", "migrate", "ledger", "0001", "--fake"],
            DJANGO,
            {"PGWARDEN_DJANGO_DSN": cluster.dsn("tpl_django")},
        ),
        (
            "tpl_alembic",
            [*ALEMBIC_CMD[:-2], "stamp", "0001"],
            ALEMBIC,
            {"PGWARDEN_BENCH_URL": cluster.url("tpl_alembic")},
        ),
    ):
        if not any(TOOLS[t][0] == tpl for t in tools):
            continue
        with psycopg.connect(cluster.dsn(), autocommit=True) as c:
            c.execute(sql.SQL("CREATE DATABASE {} TEMPLATE tpl_b").format(sql.Identifier(tpl)))
        subprocess.run(cmd, cwd=cwd, env={**env, **extra}, check=True, capture_output=True)


MLFLOW_START = "451aebb31d03"
MLFLOW_DATA = """
INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage)
SELECT e, 'exp' || e, '/artifacts/' || e, 'active' FROM generate_series(1, 20) e;
SELECT setval('experiments_experiment_id_seq', 20);
INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status,
                  start_time, end_time, source_version, lifecycle_stage, artifact_uri,
                  experiment_id)
SELECT md5(r::text), 'run' || r, 'LOCAL', 'train.py', 'main', 'user' || (r % 7), 'FINISHED',
       1700000000000 + r, 1700000100000 + r, 'abc', 'active', '/artifacts/r' || r, 1 + r % 20
  FROM generate_series(1, 2000) r;
INSERT INTO metrics (key, value, timestamp, run_uuid, step)
SELECT 'm' || (i % 13), i * 0.5, 1700000000000 + i, md5((1 + i % 2000)::text), i / 2000
  FROM generate_series(1, {rows}) i;
INSERT INTO params (key, value, run_uuid)
SELECT 'p' || k, 'v' || r, md5(r::text) FROM generate_series(1, 2000) r, generate_series(1, 5) k;
INSERT INTO tags (key, value, run_uuid)
SELECT 'note', 'n' || r, md5(r::text) FROM generate_series(1, 2000) r;
ANALYZE;
"""
SCHEMA_SQL = """
SELECT 'c', table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
       || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'k', conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'i', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'v', version_num FROM alembic_version
ORDER BY 1, 2
"""


def _alembic_upgrade_wall_time(metric_rows: int, repeat: int) -> None:
    """Wall time of `pgwarden apply --alembic` vs plain `alembic upgrade head` on mlflow."""
    import atexit
    import shutil
    import tempfile

    try:
        import mlflow.store.db_migrations as migrations
        from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase
    except ImportError:
        sys.exit("needs mlflow's revisions: pip install 'pgwarden[test-alembic-real]'")
    from sqlalchemy import create_engine

    from pgwarden.sources.alembic import _sqlalchemy_url

    work = Path(tempfile.mkdtemp(prefix="pgwarden-mlflow-bench-"))
    atexit.register(shutil.rmtree, work, True)  # its alembic.ini files hold the cluster's URL
    (work / "pgwarden.toml").write_text("[environments.bench]\nprotected = false\n")
    location = Path(migrations.__file__).parent
    ini = work / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {location}\nsqlalchemy.url =\n")

    def plain_ini(url: str) -> Path:
        path = work / "plain.ini"
        path.write_text(ini.read_text().replace("sqlalchemy.url =", f"sqlalchemy.url = {url}"))
        return path

    def timed(argv: list[str]) -> float:
        t0 = time.monotonic()
        done = subprocess.run(argv, cwd=work, capture_output=True, text=True, check=False)
        took = time.monotonic() - t0
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv[:4])} ... failed:\n{done.stdout}{done.stderr}")
        return took

    with Cluster.start() as cluster:
        t = time.monotonic()
        tpl = cluster.create_database("mlflow_tpl")
        engine = create_engine(_sqlalchemy_url(tpl))
        InitialBase.metadata.create_all(engine)
        engine.dispose()
        url = _sqlalchemy_url(tpl).replace("%", "%%")
        timed([PY, "-m", "alembic", "-c", str(plain_ini(url)), "upgrade", MLFLOW_START])
        with psycopg.connect(tpl, autocommit=True) as c:
            c.execute(MLFLOW_DATA.format(rows=int(metric_rows)).encode())
        print(
            f"mlflow at {MLFLOW_START} with {metric_rows:,} metrics, 2,000 runs "
            f"({time.monotonic() - t:.0f} s to load)",
            flush=True,
        )
        apply_argv = [PY, "-m", "pgwarden", "apply", "--alembic", str(ini), "--env", "bench"]
        apply_argv += ["--restamp", "--yes", "--journal-file", "j.jsonl"]
        plain_s: list[float] = []
        ours_s: list[float] = []
        for i in range(repeat):
            plain = cluster.create_database(f"mlflow_plain_{i}", template="mlflow_tpl")
            ours = cluster.create_database(f"mlflow_pgwarden_{i}", template="mlflow_tpl")
            url = _sqlalchemy_url(plain).replace("%", "%%")
            plain_s.append(
                timed([PY, "-m", "alembic", "-c", str(plain_ini(url)), "upgrade", "head"])
            )
            ours_s.append(timed([*apply_argv, "--database-url", ours]))
            with psycopg.connect(plain) as a, psycopg.connect(ours) as b:
                same = a.execute(SCHEMA_SQL).fetchall() == b.execute(SCHEMA_SQL).fetchall()
            print(
                f"  run {i + 1}: alembic upgrade head {plain_s[-1]:6.1f} s   "
                f"pgwarden apply --alembic {ours_s[-1]:6.1f} s   "
                f"ratio {ours_s[-1] / plain_s[-1]:.2f}   same schema and version: "
                f"{'yes' if same else 'NO'}",
                flush=True,
            )
        best_plain, best_ours = min(plain_s), min(ours_s)
        print(
            f"best of {repeat}: alembic upgrade head {best_plain:.1f} s, pgwarden apply --alembic "
            f"{best_ours:.1f} s, ratio {best_ours / best_plain:.2f}"
        )


WAGTAIL = ROOT / "tests" / "contrib" / "django_wagtail"
DJANGO_SCHEMA_SQL = """
SELECT 'c', table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
       || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'k', conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'i', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'm', app || '.' || name FROM django_migrations
UNION ALL
SELECT 'p', app_label || '.' || codename FROM auth_permission p
  JOIN django_content_type c ON c.id = p.content_type_id
ORDER BY 1, 2
"""


def _django_upgrade_wall_time(repeat: int) -> None:
    """Wall time of `manage.py pgwarden migrate` vs plain `manage.py migrate` on the wagtail
    4.1 -> installed upgrade of tests/contrib/django_wagtail (42 migrations, 8 apps,
    RunPython data migrations, thousands of rows), each on a fresh copy of one template."""
    import tempfile

    try:
        import wagtail  # type: ignore[import-untyped]
    except ImportError:
        sys.exit("needs wagtail: pip install 'pgwarden[test-django-real]'")
    work = Path(tempfile.mkdtemp(prefix="pgwarden-wagtail-bench-"))
    config = work / "pgwarden.toml"
    config.write_text("[environments.bench]\nprotected = false\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def timed(dsn: str, *args: str) -> tuple[float, str]:
        t0 = time.monotonic()
        done = subprocess.run(
            [PY, "manage.py", *args], cwd=WAGTAIL, env={**env, "PGWARDEN_DJANGO_DSN": dsn},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        took = time.monotonic() - t0
        if done.returncode != 0:
            sys.exit(f"manage.py {' '.join(args[:3])} ... failed:\n{done.stdout}{done.stderr}")
        return took, done.stdout + done.stderr

    with Cluster.start() as cluster:
        t = time.monotonic()
        timed(cluster.create_database("wagtail_tpl"), "wagtailrelease")
        print(
            f"wagtail 4.1 leaves with rows, upgraded to {wagtail.__version__} "
            f"({time.monotonic() - t:.0f} s to load)",
            flush=True,
        )
        ours_argv = ["pgwarden", "migrate", "--env", "bench", "--yes", "--restamp"]
        ours_argv += ["--config", str(config), "--journal-file", str(work / "j.jsonl")]
        plain_s: list[float] = []
        ours_s: list[float] = []
        for i in range(repeat):
            plain = cluster.create_database(f"wagtail_plain_{i}", template="wagtail_tpl")
            ours = cluster.create_database(f"wagtail_pgwarden_{i}", template="wagtail_tpl")
            took, _ = timed(plain, "migrate", "--verbosity", "0")
            plain_s.append(took)
            took, out = timed(ours, *ours_argv)
            ours_s.append(took)
            waited = sum(
                float(w) for w in re.findall(r"retry \d+/\d+ in ([0-9.]+) s", out)
            )  # the guard's own waits (backoff before a retry); none without contention
            with psycopg.connect(plain) as a, psycopg.connect(ours) as b:
                same = (
                    a.execute(DJANGO_SCHEMA_SQL).fetchall()
                    == b.execute(DJANGO_SCHEMA_SQL).fetchall()
                )
            print(
                f"  run {i + 1}: manage.py migrate {plain_s[-1]:6.1f} s   "
                f"manage.py pgwarden migrate {ours_s[-1]:6.1f} s (guard waits {waited:.1f} s)  "
                f"ratio {ours_s[-1] / plain_s[-1]:.2f}   same schema, history and "
                f"permissions: {'yes' if same else 'NO'}",
                flush=True,
            )
        best_plain, best_ours = min(plain_s), min(ours_s)
        print(
            f"best of {repeat}: manage.py migrate {best_plain:.1f} s, manage.py pgwarden migrate "
            f"{best_ours:.1f} s, ratio {best_ours / best_plain:.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--hold", type=float, default=10.0, help="report transaction hold, s")
    ap.add_argument(
        "--tools", default="django-naive,django-pgwarden,alembic-naive,alembic-pgwarden"
    )
    ap.add_argument("--verbose", action="store_true", help="print each migration's output")
    ap.add_argument(
        "--alembic-upgrade",
        action="store_true",
        help="instead: wall time of pgwarden apply --alembic vs alembic upgrade head (mlflow)",
    )
    ap.add_argument(
        "--django-upgrade",
        action="store_true",
        help="instead: wall time of manage.py pgwarden migrate vs manage.py migrate (wagtail)",
    )
    ap.add_argument("--metric-rows", type=int, default=400_000, help="with --alembic-upgrade")
    ap.add_argument("--repeat", type=int, default=2, help="with --alembic/--django-upgrade")
    args = ap.parse_args()
    if args.alembic_upgrade:
        _alembic_upgrade_wall_time(args.metric_rows, args.repeat)
        return
    if args.django_upgrade:
        _django_upgrade_wall_time(args.repeat)
        return
    tools = args.tools.split(",")
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        ap.error(f"unknown tool(s): {', '.join(unknown)}; known: {', '.join(TOOLS)}")
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)
    runs: list[Run] = []
    os.environ.pop("PGWARDEN_DATABASE_URL", None)
    with Cluster.start() as cluster:
        t = time.monotonic()
        load_templates(cluster, args.rows, scenario_a=False)
        _framework_templates(cluster, tools)
        print(f"loaded {args.rows:,} invoices in {time.monotonic() - t:.0f} s", flush=True)
        for tool in tools:
            tpl, argv, env = TOOLS[tool]
            cfg = ReplaySettings(
                rate_per_s=args.rate,
                report_hold_s=args.hold,
                command=argv,
                command_env=env,
                command_cwd=str(DJANGO if tool.startswith("django") else ALEMBIC),
                constraint=None,
                check_sql=HISTORY[tool.split("-")[0]],
            )
            run = run_one(cluster, tpl, "b", tool.replace("-", "_"), UNUSED, cfg)
            run.tool = tool
            runs.append(run)
            print(
                f"  (b) {tool:<26} stall {run.stall_s:>3} s  "
                f"peak lock waits {run.peak_lock_waits:>4}  "
                f"peak connections {run.peak_connections:>4}  errors {run.errors:>4}  "
                f"migration {run.duration_s:6.1f} s (exit {run.migration_rc})  "
                f"constraint valid {'yes' if run.constraint_valid else 'NO'}  "
                f"history {[str(r[0]) for r in run.check]}",
                flush=True,
            )
            if run.migration_rc != 0 or args.verbose:
                print(run.output)
    print()
    print(
        f"{'tool':<28}{'stall s':>8}{'lock waits':>11}{'conns':>7}"
        f"{'errors':>7}{'migration s':>12}{'valid':>6}{'recovered':>10}"
    )
    for r in runs:
        print(
            f"{r.tool:<28}{r.stall_s:>8}{r.peak_lock_waits:>11}"
            f"{r.peak_connections:>7}{r.errors:>7}{r.duration_s:>12.1f}"
            f"{'yes' if r.constraint_valid else 'NO':>6}{'yes' if r.recovered else 'NO':>10}"
        )


if __name__ == "__main__":
    main()
