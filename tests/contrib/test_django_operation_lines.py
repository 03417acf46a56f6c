"""Each operation of a Django migration is located at its own line, however the
`operations` list is built.

Real migrations (zulip's, for one) build it in several steps: `operations = [...]`
then `operations += [...]`, `.extend(...)` or `.append(...)`, a list comprehension
over a helper, `*helper()` inside the list. Before, only a plain `operations = [...]`
was read: the others' operations were all located at `class Migration`, and with a
`*helper()` in the list the operations after it were located at the wrong line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("django")

from pgwarden.contrib.django.source import _operation_lines

HEAD = """from django.db import migrations, models


def index(field):
    return migrations.AddIndex(model_name="m", index=models.Index(fields=[field], name=field))


class Migration(migrations.Migration):
    dependencies = []
"""


def _lines(tmp_path: Path, body: str, count: int) -> list[int]:
    path = tmp_path / "0002_x.py"
    path.write_text(HEAD + body)
    class_line, lines = _operation_lines(str(path), count)
    assert class_line == 8
    assert len(lines) == count
    return [line for line, _col in lines]


def _at(body: str, needle: str) -> int:
    """The file line of the first body line holding `needle`."""
    base = len(HEAD.splitlines())
    return base + next(i for i, t in enumerate(body.splitlines(), 1) if needle in t)


def test_a_list_then_augmented_assignments_and_calls(tmp_path: Path) -> None:
    body = """    operations = [
        migrations.RunSQL("SELECT 1"),
    ]
    operations += [migrations.RunSQL("SELECT 2")]
    operations.extend([migrations.RunSQL("SELECT 3"), migrations.RunSQL("SELECT 4")])
    operations.append(migrations.RunSQL("SELECT 5"))
"""
    assert _lines(tmp_path, body, 5) == [_at(body, f"SELECT {n}") for n in range(1, 6)]


def test_a_comprehension_then_a_literal(tmp_path: Path) -> None:
    body = """    operations = [index(f) for f in ["a", "b"]]
    operations += [
        migrations.RunSQL("CREATE INDEX c ON t (c)"),
    ]
"""
    comp, sql = _at(body, "index(f)"), _at(body, "CREATE INDEX c")
    assert _lines(tmp_path, body, 3) == [comp, comp, sql]


def test_a_starred_helper_inside_the_list(tmp_path: Path) -> None:
    body = """    operations = [
        migrations.RunSQL("SELECT 1"),
        *[index(f) for f in ["a", "b", "c"]],
        migrations.RunSQL("SELECT 2"),
    ]
"""
    star = _at(body, "*[index")
    assert _lines(tmp_path, body, 5) == [
        _at(body, "SELECT 1"),
        star,
        star,
        star,
        _at(body, "SELECT 2"),
    ]


def test_a_sum_of_lists(tmp_path: Path) -> None:
    body = """    operations = [migrations.RunSQL("SELECT 1")] + [
        migrations.RunSQL("SELECT 2"),
    ]
"""
    assert _lines(tmp_path, body, 2) == [_at(body, "SELECT 1"), _at(body, "SELECT 2")]


def test_under_an_if_the_branch_with_the_right_count(tmp_path: Path) -> None:
    body = """    if True:
        operations = [migrations.RunSQL("SELECT 1")]
    else:
        operations = [migrations.RunSQL("SELECT 2"), migrations.RunSQL("SELECT 3")]
"""
    assert _lines(tmp_path, body, 2) == [_at(body, "SELECT 2"), _at(body, "SELECT 3")]
