"""SARIF's rule list gives each rule the level it can reach: the schema-design rules
(PW3xx) only ever say a note, and every SARIF rule entry said "error"."""

from __future__ import annotations

from pathlib import Path

from pgwarden import commands
from pgwarden.report.lint_ci import sarif


def test_design_rules_default_to_note_and_the_others_to_error(tmp_path: Path) -> None:
    f = tmp_path / "0001_t.sql"
    f.write_text("CREATE TABLE t (id integer PRIMARY KEY, at timestamp, note varchar(20));\n")
    _, result = commands.lint([f])
    log = sarif(result, root=tmp_path)
    levels = {
        r["id"]: r["defaultConfiguration"]["level"]
        for r in log["runs"][0]["tool"]["driver"]["rules"]
    }
    assert {levels[c] for c in ("PW301", "PW302", "PW303", "PW304", "PW305", "PW306")} == {"note"}
    assert levels["PW101"] == levels["PW135"] == "error"
    notes = {r["ruleId"] for r in log["runs"][0]["results"]}
    assert notes >= {"PW301", "PW302", "PW303"}
    assert {r["level"] for r in log["runs"][0]["results"]} == {"note"}
