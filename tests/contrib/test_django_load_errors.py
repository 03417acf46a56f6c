"""`manage.py pgwarden lint` on a migration Django cannot load (a Python syntax error, an
import that is not there, a dependency on a migration that does not exist) is one error
naming it, exit 2 (input error). Before, it was Django's traceback and exit 1, the code
pgwarden documents for findings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.contrib.django_site import manage_multi

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "django_multi"
PATH = "beta/migrations/0005_broken.py"
MIGRATION = """from django.db import migrations
{imports}

class Migration(migrations.Migration{close}:
    dependencies = [("beta", "{parent}")]
    operations = []
"""
OK = {"imports": "", "close": ")", "parent": "0004_shelf"}


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ({"close": ""}, [f"{PATH}:4", "SyntaxError"]),
        ({"imports": "import myapp.fields"}, [f"{PATH}:2", "No module named 'myapp'"]),
        ({"parent": "0099_nope"}, ["0005_broken", "('beta', '0099_nope')"]),
    ],
    ids=["syntax-error", "missing-import", "missing-dependency"],
)
def test_a_migration_django_cannot_load_is_one_clear_error(
    tmp_path: Path, db: str, case: dict[str, str], words: list[str]
) -> None:
    site = tmp_path / "site"
    shutil.copytree(PROJECT, site)
    (site / PATH).write_text(MIGRATION.format(**{**OK, **case}))
    r = manage_multi(site, db, "pgwarden", "lint", "--sql-only")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("error: "), r.stderr
    for word in words:
        assert word in r.stderr, r.stderr


CONCURRENT = """from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("beta", "0004_shelf")]
    operations = [
        AddIndexConcurrently("shelf", models.Index(fields=["label"], name="shelf_label_idx")),
    ]
"""


def test_a_concurrent_index_in_an_atomic_migration_says_to_set_atomic_false(
    tmp_path: Path, db: str
) -> None:
    """Django refuses AddIndexConcurrently in an atomic migration; the hint says the fix
    (atomic = False), not 'check its dependencies'."""
    site = tmp_path / "site"
    shutil.copytree(PROJECT, site)
    (site / PATH).write_text(CONCURRENT)
    r = manage_multi(site, db, "pgwarden", "lint", "--sql-only")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "set `atomic = False` on the migration" in r.stderr, r.stderr
    assert "check its dependencies" not in r.stderr, r.stderr
