"""A second Ctrl-C while Django's executor runs a migration under `manage.py pgwarden migrate`.

The first Ctrl-C cancels the running statement; a RunPython busy in Python (not in the
database) does not notice, so the user presses again. That used to end in a
KeyboardInterrupt traceback. It must print one message and exit 3 (docs/django.md),
and the atomic migration must be rolled back with its django_migrations row.

The project is written to tmp_path: app `slow`, 0001 a table (a guarded SQL part),
0002 a RunPython that inserts a row, says it started, then works in Python for a minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

pytest.importorskip("django")

SRC = Path(__file__).parents[2] / "src"

SETTINGS = """
import os
from psycopg.conninfo import conninfo_to_dict

_p = conninfo_to_dict(os.environ["PGWARDEN_DJANGO_DSN"])
SECRET_KEY = "test-only"
USE_TZ = True
INSTALLED_APPS = ["pgwarden.contrib.django", "slow"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": _p["dbname"],
             "HOST": _p.get("host", ""), "PORT": _p.get("port", ""), "USER": _p.get("user", "")}}
"""

INITIAL = """
from django.db import migrations, models

class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True)),
                                        ("name", models.TextField())]),
    ]
"""

BUSY = """
import os
import time
from django.db import migrations

def busy(apps, schema_editor):
    apps.get_model("slow", "Item").objects.create(name="from 0002")
    open(os.environ["SLOW_STARTED"], "w").close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # Python work: a statement cancel does not stop it
        time.sleep(0.01)

class Migration(migrations.Migration):
    dependencies = [("slow", "0001_initial")]
    operations = [migrations.RunPython(busy, migrations.RunPython.noop)]
"""


def _project(root: Path, second: str = BUSY) -> None:
    """The project in `root`; `second` is the text of slow/migrations/0002_busy.py."""
    (root / "proj").mkdir()
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "settings.py").write_text(SETTINGS)
    migrations = root / "slow" / "migrations"
    migrations.mkdir(parents=True)
    (root / "slow" / "__init__.py").write_text("")
    (root / "slow" / "models.py").write_text(
        "from django.db import models\n\n\nclass Item(models.Model):\n"
        "    name = models.TextField()\n"
    )
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(INITIAL)
    (migrations / "0002_busy.py").write_text(second)


def _wait(check: Any, proc: subprocess.Popen[str], err: Path) -> None:
    deadline = time.monotonic() + 60
    while not check():
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)


def test_second_ctrl_c_in_djangos_executor_prints_one_message_and_exits_3(
    db: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _project(tmp_path)
    started, err = tmp_path / "started", tmp_path / "stderr.txt"
    env = dict(
        os.environ,
        PGWARDEN_DJANGO_DSN=db,
        DJANGO_SETTINGS_MODULE="proj.settings",
        SLOW_STARTED=str(started),
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(SRC)]),
    )
    args = ["migrate", "--env", "test", "--yes", "--journal-file", str(tmp_path / "j.jsonl")]
    with err.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "django", "pgwarden", *args],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=sink, text=True,
        )  # fmt: skip
    try:
        _wait(started.exists, proc, err)
        proc.send_signal(signal.SIGINT)
        _wait(lambda: "Ctrl-C again" in err.read_text(), proc, err)
        assert proc.poll() is None  # busy in Python: the statement cancel did not stop it
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)  # well before the minute of work ends
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = err.read_text()
    assert proc.returncode == 3, out + text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    assert "slow.0002_busy" in errors[0] and "interrupted" in errors[0]
    assert "it is atomic: rolled back whole, not recorded in django_migrations" in text
    assert conn.execute("SELECT count(*) FROM slow_item").fetchone() == (0,)
    recorded = conn.execute(
        "SELECT name FROM django_migrations WHERE app = 'slow' ORDER BY name"
    ).fetchall()
    assert recorded == [("0001_initial",)]
