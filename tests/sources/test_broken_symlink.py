"""A `.sql` in a migrations folder that is a symbolic link to nothing (its target moved,
or a checkout without it) is an error naming the link and its target, exit 2, as the
migration tool fails on it. Before, the folder's walk passed over it: lint reported the
other files and exit 0, so the migration was never linted and nobody was told."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgwarden.errors import InputError
from pgwarden.sources.sql_files import collect_sql_files


def test_a_broken_link_in_a_folder_is_refused_with_its_target(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "V1__init.sql").write_text("CREATE TABLE t (id bigint PRIMARY KEY);\n")
    (folder / "V2__close.sql").symlink_to("../shared/V2__close.sql")
    with pytest.raises(InputError) as err:
        collect_sql_files([folder])
    assert "V2__close.sql" in err.value.message and "../shared/V2__close.sql" in err.value.message
    assert "link" in err.value.message


def test_a_link_to_a_file_is_linted_as_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (tmp_path / "V2__close.sql").write_text("SELECT 1;\n")
    (folder / "V2__close.sql").symlink_to("../V2__close.sql")
    assert [p.name for p in collect_sql_files([folder])] == ["V2__close.sql"]
