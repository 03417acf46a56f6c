"""docs/guard.md's Starlette example, run as written: its endpoints answer, and the
/metrics path it exempts serves the metrics `instrument` registers. A money column is
numeric, read as Decimal: the example answered 500 (JSON cannot encode a Decimal)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "guard.md"

# Runs in a child: `instrument` registers in prometheus_client's global registry.
CHILD = """
import os, sys
from pathlib import Path
from starlette.testclient import TestClient
text = Path(sys.argv[1]).read_text()
section = text[text.index("## Starlette (or FastAPI)"):]
start = section.index("```python\\n") + len("```python\\n")
namespace = {"__name__": "guard_docs_example"}
exec(compile(section[start:section.index("```", start)], sys.argv[1], "exec"), namespace)
with TestClient(namespace["app"]) as client:
    for path in ("/invoices/7", "/invoices/1000", "/healthz", "/metrics"):
        r = client.get(path)
        ours = [ln for ln in r.text.splitlines() if not ln.startswith(("#", "python_", "process_"))]
        print(path, r.status_code, r.headers.get("content-type"), " | ".join(ours))
"""


@pytest.mark.parametrize(("amount", "shown"), [("int", '"70"'), ("numeric(12,2)", '"70.00"')])
def test_the_example_serves_invoices_health_and_metrics(
    amount: str, shown: str, invoices_db: str
) -> None:
    with psycopg.connect(invoices_db, autocommit=True) as c:
        c.execute(f"ALTER TABLE invoices ALTER amount TYPE {amount}")
    env = {**os.environ, "DATABASE_URL": invoices_db}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(DOCS)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = {line.split(" ", 1)[0]: line for line in out.stdout.splitlines()}
    invoice = '{"invoice":{"id":7,"amount":' + shown + "}}"
    assert lines["/invoices/7"].startswith("/invoices/7 200 application/json " + invoice)
    assert lines["/invoices/1000"].startswith('/invoices/1000 404 application/json {"error"')
    assert lines["/healthz"].startswith("/healthz 200")
    metrics = lines["/metrics"]
    assert metrics.startswith("/metrics 200 text/plain"), metrics
    assert 'pgwarden_guard_breaker_state{guard="main"} 0.0' in metrics
    assert 'pgwarden_guard_finished_total{guard="main",outcome="success"} 2.0' in metrics
