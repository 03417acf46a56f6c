"""A SET NOT NULL that fails on rows the probe traffic inserted says so.

The backfill commits, then the probe writer (standing for the application, which
writes the table as it was before the migration) inserts rows without the new column
before SET NOT NULL runs: the failure is real in kind (the application's inserts in
that window fail it in production too), but the bare "contains null values" read as
a backfill that missed rows. Seen on wagtail's 0086 -> 0090 (71 probe rows).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.rehearse.conftest import write

SCHEMA = "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL);\n"


def test_probe_inserted_nulls_are_counted_in_the_failure(run: Any, tmp_path: Path) -> None:
    plan = write(
        tmp_path,
        "001.sql",
        "ALTER TABLE accounts ADD COLUMN code int;\n"
        "UPDATE accounts SET code = 1;\n"
        # steps in between: each waits for every probe to begin an operation after it
        "SELECT 1;\nSELECT 2;\nSELECT 3;\nSELECT 4;\n"
        "ALTER TABLE accounts ALTER COLUMN code SET NOT NULL;\n",
    )
    result = run([plan], file_transaction=False, schema_sql=SCHEMA, default_rows=500)
    failed = result.steps[-1]
    assert failed.status == "failed" and failed.error is not None, failed
    assert failed.error.sqlstate == "23502"
    said = re.search(
        r"; (\d+) of the (\d+) rows with NULL in code were inserted during the rehearsal by "
        r"the probe traffic, which writes the table as the application did before the "
        r"migration \(without the columns it adds\)",
        failed.error.message,
    )
    assert said is not None, failed.error.message
    assert said[1] == said[2] and int(said[1]) >= 1  # the backfill missed none of its rows
