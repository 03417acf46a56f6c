"""The study of real type changes (bench/alter_type_study.json) and what lint does with it.

- every distinct change of the study, replayed on a live server (an empty table with a
  column of the old type, the change in a transaction, the relfilenode compared), rewrites
  exactly when the study says so, in a non-UTC and in a UTC session;
- the target families lint reports as a warning without a catalog are those the study's
  documented threshold selects, with the study's counts;
- from the SQL alone, a change to text is a warning (setting unknown_type_change =
  "warning", the default) or an error ("error"); a change to varchar(n) or bigint stays an
  error; with a catalog the answer is exact.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pgwarden.analysis.locks_altertable import MOSTLY_IN_PLACE
from pgwarden.commands import lint
from pgwarden.errors import ConfigError
from pgwarden.findings import Severity
from pgwarden.settings import Settings, load_settings

STUDY = json.loads(
    (Path(__file__).resolve().parents[2] / "bench" / "alter_type_study.json").read_text()
)
CHANGES: list[dict[str, Any]] = STUDY["changes"]
DISTINCT = sorted({(c["old_type"], c["new_type"], c["using"] or "") for c in CHANGES})


def _rewrites(conn: psycopg.Connection[Any], old: str, new: str, using: str, tz: str) -> bool:
    with conn.transaction(force_rollback=True):
        conn.execute(f"SET LOCAL TimeZone = '{tz}'")
        conn.execute("CREATE TYPE tokentypes AS ENUM ('Bearer')")
        conn.execute(f"CREATE TABLE t (id int, c {old})")
        before = conn.execute("SELECT pg_relation_filenode('t')").fetchone()
        conn.execute(
            f"ALTER TABLE t ALTER COLUMN c TYPE {new}" + (f" USING {using}" if using else "")
        )
        after = conn.execute("SELECT pg_relation_filenode('t')").fetchone()
    return before != after


def test_study_rewrites_are_the_servers(conn: psycopg.Connection[Any]) -> None:
    """Each distinct (old type, new type, USING) of the study, on the server."""
    wrong = []
    for old, new, using in DISTINCT:
        said = [
            c
            for c in CHANGES
            if (c["old_type"], c["new_type"], c["using"] or "") == (old, new, using)
        ]
        for tz, key in (("Europe/Berlin", "rewrites"), ("UTC", "rewrites_if_session_utc")):
            expected = said[0].get(key, said[0]["rewrites"])
            if _rewrites(conn, old, new, using, tz) != expected:
                wrong.append(f"{old} -> {new} USING {using or '-'} ({tz}): study says {expected}")
    assert not wrong, "\n".join(wrong)


def _wilson_low(k: int, n: int, z: float = 1.96) -> float:
    p = k / n
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (p + z * z / (2 * n) - spread) / (1 + z * z / n)


def test_warning_families_follow_the_threshold() -> None:
    """MOSTLY_IN_PLACE holds exactly the families whose 95% Wilson lower bound of the
    in-place share is above 0.5, with the study's counts."""
    assert len(CHANGES) == STUDY["statements"] >= 80
    assert len({c["repo"] for c in CHANGES}) == STUDY["repositories"] >= 25
    tally: dict[str, list[int]] = {}
    for c in CHANGES:
        t = tally.setdefault(c["family"], [0, 0])
        t[0] += not c["rewrites"]
        t[1] += 1
    chosen = {f for f, (k, n) in tally.items() if _wilson_low(k, n) > 0.5}
    assert chosen == set(MOSTLY_IN_PLACE)
    for family, studied in MOSTLY_IN_PLACE.items():
        assert [studied.in_place, studied.total] == tally[family]


SQL = """\
ALTER TABLE orders ALTER COLUMN note TYPE text;
ALTER TABLE orders ALTER COLUMN ref TYPE varchar(64);
ALTER TABLE orders ALTER COLUMN qty TYPE bigint;
"""


def _severities(tmp_path: Path, settings: Settings) -> list[Severity]:
    f = tmp_path / "m.sql"
    f.write_text(SQL)
    _, result = lint([f], settings=settings)
    return [x.severity for x in result.findings if x.code == "PW104"]


def test_sql_alone_text_is_a_warning_by_default(tmp_path: Path) -> None:
    assert _severities(tmp_path, Settings()) == [Severity.WARNING, Severity.ERROR, Severity.ERROR]


def test_setting_keeps_errors(tmp_path: Path) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text('unknown_type_change = "error"\n')
    settings = load_settings(config)
    assert _severities(tmp_path, settings) == [Severity.ERROR] * 3


def test_setting_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "pgwarden.toml"
    config.write_text('unknown_type_change = "maybe"\n')
    with pytest.raises(ConfigError, match="unknown_type_change must be error or warning"):
        load_settings(config)
