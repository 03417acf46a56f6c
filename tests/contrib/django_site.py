"""Django projects for the tests that run Django in a subprocess.

`write_project` writes a one-app project to a tmp dir (settings module `proj.settings`);
`project_env` is the environment that runs it, `running` runs it in the background.
`manage_multi` runs the `manage.py` of a
copy of the django_multi sample project.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SRC = Path(__file__).parents[2] / "src"

SETTINGS = """
import os
from psycopg.conninfo import conninfo_to_dict

_p = conninfo_to_dict(os.environ["PGWARDEN_DJANGO_DSN"])
SECRET_KEY = "test-only"
{timezone}
INSTALLED_APPS = ["pgwarden.contrib.django", "{app}"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.postgresql", "NAME": _p["dbname"],
             "HOST": _p.get("host", ""), "PORT": _p.get("port", ""), "USER": _p.get("user", "")}}}}
"""


def write_project(
    root: Path,
    app: str,
    migrations: dict[str, str],
    models: str = "",
    *,
    timezone: str = "USE_TZ = True",
    modules: dict[str, str] | None = None,
) -> None:
    """Project `proj` in `root` with app `app`: its `migrations` by file name, `models.py`,
    other `modules` of the app by file name; `timezone`: the settings' USE_TZ/TIME_ZONE lines."""
    (root / "proj").mkdir()
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "settings.py").write_text(SETTINGS.format(app=app, timezone=timezone))
    folder = root / app / "migrations"
    folder.mkdir(parents=True)
    (root / app / "__init__.py").write_text("")
    if models:
        (root / app / "models.py").write_text(models)
    for name, text in (modules or {}).items():
        (root / app / name).write_text(text)
    (folder / "__init__.py").write_text("")
    for name, text in migrations.items():
        (folder / name).write_text(text)


def project_env(root: Path, dsn: str, **extra: str) -> dict[str, str]:
    """The environment that runs `python -m django` for the project `write_project` wrote."""
    env = dict(os.environ, PGWARDEN_DJANGO_DSN=dsn, DJANGO_SETTINGS_MODULE="proj.settings")
    paths = [str(root), str(SRC), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra)
    return env


@contextmanager
def running(
    root: Path, env: dict[str, str], args: list[str], err: Path
) -> Iterator[subprocess.Popen[str]]:
    """`python -m django <args>` started in `root`: stdout a pipe, stderr written to `err`;
    killed on exit if it still runs."""
    with err.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "django", *args],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=sink, text=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def manage_multi(project: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`manage.py` of `project`, a copy of tests/contrib/django_multi (no Django contrib apps)."""
    env = dict(os.environ, PGWARDEN_DJANGO_DSN=dsn, MULTISITE_CONTRIB="", COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, str(project / "manage.py"), *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def manage_fixture(
    project: Path, dsn: str, *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`manage.py` of a fixture project in tests/contrib (its own settings), run in `cwd`."""
    env = dict(os.environ, PGWARDEN_DJANGO_DSN=dsn, COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, str(project / "manage.py"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
