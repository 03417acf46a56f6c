"""Probe traffic on tables whose unique keys hold few values: failed requests and blocked time.

A table keyed by a `char(2)` (1,296 values), a boolean pair (4) and a table whose
synthetic rows take every value of its key are rehearsed with `--steps` short
ACCESS EXCLUSIVE steps each (ADD COLUMN, then a `pg_sleep` holding the lock in
the same transaction). Printed per table: probe writes issued, how many failed
(and with which SQLSTATE), and how many steps saw the writer blocked, with the
median and longest write wait. Run it on two checkouts to compare:

    .venv/bin/python bench/rehearse_probe_keys.py [--steps 20] [--hold 0.05]
    PYTHONPATH=/path/to/other/src .venv/bin/python bench/rehearse_probe_keys.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import Counter
from pathlib import Path

SCHEMA = """
CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);
CREATE TABLE flags (a boolean NOT NULL, b boolean NOT NULL, PRIMARY KEY (a, b), note text);
CREATE TABLE codes (code varchar(3) UNIQUE NOT NULL, label text);
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--hold", type=float, default=0.05, help="seconds each step holds its lock")
    ap.add_argument("--rows", type=int, default=10_000)
    args = ap.parse_args()

    import pgwarden
    from pgwarden import commands
    from pgwarden.rehearse import probes as probes_mod
    from pgwarden.rehearse.api import RehearseOptions, rehearse

    seen: list[probes_mod.ProbeSet] = []
    original = probes_mod.ProbeSet.start

    def keep(self: probes_mod.ProbeSet) -> None:  # the probes, to count their failures
        seen.append(self)
        original(self)

    probes_mod.ProbeSet.start = keep  # type: ignore[method-assign]
    tables = ("countries", "flags", "codes")
    sql = "".join(
        f"BEGIN;\nALTER TABLE {t} ADD COLUMN c{i} int;\nSELECT pg_sleep({args.hold});\nCOMMIT;\n"
        for i in range(args.steps)
        for t in tables
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "001_steps.sql"
        path.write_text(sql)
        plan = commands.load_plan([path], file_transaction=False)
        result = rehearse(
            plan,
            RehearseOptions(
                schema_sql=SCHEMA,
                default_rows=args.rows,
                record_dir=Path(tmp) / "records",
                baseline_s=0.2,
            ),
        )
    print(f"pgwarden from {Path(pgwarden.__file__).parent}; status {result.status}")
    print(f"{args.steps} steps of {args.hold:.2f} s per table, {args.rows:,} rows asked")
    rows = {t.name: t.rows for t in result.tables}
    for table in tables:
        writer = next(p for s in seen for p in s.probes if p.table == table and p.kind == "write")
        failed = Counter(op.error for op in writer.ops if op.error)
        txs = {tr.transaction for tr in result.steps if f"ALTER TABLE {table} " in tr.sql}
        waits = [  # per transaction: the longest write wait on the table in any of its steps
            max(
                (
                    b.writes_blocked_s
                    for tr in result.steps
                    if tr.transaction == tx
                    for b in tr.blocking
                    if b.table == table
                ),
                default=0.0,
            )
            for tx in txs
        ]
        blocked = [w for w in waits if w > 0]
        print(
            f"  {table:<10} rows {rows.get(table, 0):>6,}  writes {len(writer.ops):>5}  "
            f"failed {sum(failed.values()):>5} {dict(failed) or ''}  "
            f"steps with writes blocked {len(blocked)}/{args.steps}  "
            f"median wait {statistics.median(blocked) if blocked else 0:.3f} s  "
            f"longest {max(blocked, default=0):.3f} s"
        )


if __name__ == "__main__":
    main()
