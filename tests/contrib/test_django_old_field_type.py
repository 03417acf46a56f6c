"""Django's old field tells `manage.py pgwarden lint` a column's current type, with no catalog.

From the SQL alone `ALTER COLUMN c TYPE varchar(255)` may rewrite the table (an error);
the AlterField knows the old field. With `--sql-only` (no catalog) the type change is
graded as the catalog would grade it: a raised max_length or decimal precision is done
in place, IntegerField to BigIntegerField rewrites.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.contrib.django_site import project_env, write_project

pytest.importorskip("django")

INITIAL = """
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("name", models.CharField(max_length=100)),
                ("stock", models.IntegerField()),
                ("price", models.DecimalField(max_digits=10, decimal_places=2)),
            ],
        ),
        migrations.CreateModel(
            name="Brand",
            fields=[("code", models.CharField(max_length=10, primary_key=True))],
        ),
        migrations.CreateModel(
            name="Label",
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("brand", models.ForeignKey("shop.brand", models.CASCADE)),
            ],
        ),
    ]
"""

ALTER = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AlterField("item", "name", models.CharField(max_length=255)),
        migrations.AlterField("item", "stock", models.BigIntegerField()),
        migrations.AlterField(
            "item", "price", models.DecimalField(max_digits=12, decimal_places=2)
        ),
        migrations.AlterField(
            "brand", "code", models.CharField(max_length=20, primary_key=True)
        ),
    ]
"""


def _manage(project: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=project, env=project_env(project, dsn), capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_alter_field_is_graded_from_the_old_field(db: str, tmp_path: Path) -> None:
    write_project(tmp_path, "shop", {"0001_initial.py": INITIAL, "0002_wider.py": ALTER})
    r = _manage(tmp_path, db, "migrate", "shop", "0001", "--verbosity", "0")
    assert r.returncode == 0, r.stdout + r.stderr

    r = _manage(tmp_path, db, "pgwarden", "lint", "--unapplied", "--sql-only", "--format", "json")
    assert r.returncode == 1, r.stdout + r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    rewrites = {
        f["location"]["line"]: f["severity"]
        for f in doc["findings"]
        if f["code"] == "PW104" and f["location"]["path"].endswith("0002_wider.py")
    }
    # line 8: varchar(100) -> varchar(255), in place (was an error: the type was not known)
    # lines 10-12: numeric(10,2) -> numeric(12,2), in place (was an error)
    # lines 13-15: brand.code and label.brand_id (Django changes the foreign key along with
    # the primary key) varchar(10) -> varchar(20), in place (were errors)
    assert rewrites == {9: "error"}  # integer -> bigint rewrites
