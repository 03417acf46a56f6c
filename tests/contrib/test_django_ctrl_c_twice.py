"""A second Ctrl-C while Django's executor runs a migration under `manage.py pgwarden migrate`.

The first Ctrl-C cancels the running statement; a RunPython busy in Python (not in the
database) does not notice, so the user presses again. That used to end in a
KeyboardInterrupt traceback. It must print one message and exit 3 (docs/django.md),
and the atomic migration must be rolled back with its django_migrations row.

The project is written to tmp_path: app `slow`, 0001 a table (a guarded SQL part),
0002 a RunPython that inserts a row, says it started, then works in Python for a minute.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.contrib.django_site import project_env, running, write_project

pytest.importorskip("django")

INITIAL = """
from django.db import migrations, models

class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True)),
                                        ("name", models.TextField())]),
    ]
"""

MODELS = """
from django.db import models


class Item(models.Model):
    name = models.TextField()
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
    write_project(root, "slow", {"0001_initial.py": INITIAL, "0002_busy.py": second}, MODELS)


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
    env = project_env(tmp_path, db, SLOW_STARTED=str(started))
    args = ["migrate", "--env", "test", "--yes", "--journal-file", str(tmp_path / "j.jsonl")]
    with running(tmp_path, env, ["pgwarden", *args], err) as proc:
        _wait(started.exists, proc, err)
        proc.send_signal(signal.SIGINT)
        _wait(lambda: "Ctrl-C again" in err.read_text(), proc, err)
        assert proc.poll() is None  # busy in Python: the statement cancel did not stop it
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)  # well before the minute of work ends
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
