"""A NOT NULL that fails on rows the application's traffic inserted after the backfill is
reported as the deploy hazard it is (RH103), with the steps that make the window and what
closes it, in the JSON, the terminal summary and the HTML report; not as a step that
failed (RH102) nor as a failed rehearsal. Seen on wagtail's 0086 -> 0090 (71 probe rows).

The backfill commits, then the probe writer (standing for the application, which
writes the table as it was before the migration) inserts rows without the new column
before SET NOT NULL runs: the failure is real in kind (the application's inserts in
that window fail it in production too).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from pgwarden.rehearse.model import RehearsalResult
from pgwarden.rehearse.report_html import render_html
from pgwarden.rehearse.report_text import render_text
from tests.rehearse.conftest import write

SCHEMA = "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL);\n"


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory, pg_cluster: Any) -> RehearsalResult:
    from pgwarden import commands
    from pgwarden.rehearse.api import RehearseOptions, rehearse

    tmp = tmp_path_factory.mktemp("window")
    plan = write(
        tmp,
        "001.sql",
        "ALTER TABLE accounts ADD COLUMN code int;\n"
        "UPDATE accounts SET code = 1;\n"
        # a step that writes rows while its transaction holds accounts: not the fill
        "BEGIN;\nALTER TABLE accounts ADD COLUMN note text;\n"
        "INSERT INTO changes (what) VALUES ('note');\nCOMMIT;\n"
        # steps in between: each waits for every probe to begin an operation after it
        "SELECT 1;\nSELECT 2;\nSELECT 3;\n"
        "ALTER TABLE accounts ALTER COLUMN code SET NOT NULL;\n",
    )
    options = RehearseOptions(
        database_url=pg_cluster.dsn(),
        schema_sql=SCHEMA + "CREATE TABLE changes (id bigserial PRIMARY KEY, what text);\n",
        default_rows=500,
        record_dir=tmp / "records",
    )
    return rehearse(commands.load_plan([plan], file_transaction=False), options)


def test_the_failed_not_null_is_reported_as_the_window_it_is(window: RehearsalResult) -> None:
    assert window.status == "failed"  # the JSON contract: the steps did not all run
    codes = [f.code for f in window.findings]
    assert "RH103" in codes and "RH102" not in codes, codes
    f = next(f for f in window.findings if f.code == "RH103")
    assert f.severity.value == "error" and f.step == 9
    assert f.name == "rows_inserted_between_backfill_and_not_null"
    assert f.message.startswith("accounts.code cannot be made NOT NULL here: ")
    assert "inserted by the probe traffic, which writes as the application did before the " \
        "migration, after step 1 (UPDATE accounts SET code = 1, 001.sql:2) filled it and " \
        "before this step" in f.message  # fmt: skip
    assert (
        "the column is added without a default by step 0 (ALTER TABLE accounts ADD COLUMN "
        "code int, 001.sql:1)" in f.message
    )
    assert "the other" not in f.message  # the fill missed none of its rows
    assert "SET DEFAULT" in f.help and "CHECK (code IS NOT NULL) NOT VALID" in f.help
    failed = window.steps[9]
    assert failed.error is not None and failed.error.null_rows is not None
    nulls = failed.error.null_rows
    assert (nulls.table, nulls.column) == ("accounts", "code")
    assert nulls.rows == nulls.inserted >= 1
    assert failed.error.sqlstate == "23502"
    said = re.search(  # the step's own error says it too (the steps table, Django's output)
        r"; (\d+) of the (\d+) rows with NULL in code were inserted during the rehearsal by "
        r"the probe traffic, which writes the table as the application did before the "
        r"migration \(without the columns it adds\)",
        failed.error.message,
    )
    assert said is not None and said[1] == said[2] == str(nulls.rows), failed.error.message
    doc = json.loads(json.dumps(window.to_dict()))
    assert doc["steps"][9]["error"]["null_rows"] == {
        "table": "accounts", "column": "code", "rows": nulls.rows, "inserted": nulls.inserted,
    }  # fmt: skip


def test_text_and_html_say_deploy_hazard(window: RehearsalResult) -> None:
    out = io.StringIO()
    render_text(Console(file=out, width=200, color_system=None), window)
    text = out.getvalue()
    first = text.splitlines()[0]
    assert first.startswith("rehearsal stopped at a deploy hazard ● on "), first
    assert "step 9 cannot run while the application inserts rows as it does now (RH103 " in text
    assert "error RH103 " in text
    html = render_html(window, charts=False)
    assert 'pgwarden rehearsal: <span class="status-failed">stopped at a deploy hazard' in html
    assert '<div class="hazard"><b>Deploy hazard (RH103 rows_inserted_between_backfill_and_' \
        "not_null) at step 9</b>" in html  # fmt: skip
    assert "<b>What to do:</b> close the window before the fill" in html


def test_a_not_null_without_a_fill_is_a_failed_step(run: Any, tmp_path: Path) -> None:
    plan = write(
        tmp_path,
        "001.sql",
        "ALTER TABLE accounts ADD COLUMN code int;\n"
        "ALTER TABLE accounts ALTER COLUMN code SET NOT NULL;\n",
    )
    result = run([plan], file_transaction=False, schema_sql=SCHEMA, default_rows=300)
    codes = [f.code for f in result.findings]
    assert "RH102" in codes and "RH103" not in codes, codes
    out = io.StringIO()
    render_text(Console(file=out, width=200, color_system=None), result)
    assert out.getvalue().startswith("rehearsal failed ● ")
