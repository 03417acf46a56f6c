"""Output to a file or a CI log is never hard-wrapped (one message, one line)."""

from __future__ import annotations

import subprocess
import sys

_PRINT = (
    "from pgwarden.cli import out, err\n"
    "out.print('step ' + 'x' * 300 + ' end')\n"
    "err.print('warning ' + 'y' * 300 + ' end')\n"
)


def test_long_lines_stay_whole_when_not_a_terminal() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PRINT],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TERM": "xterm", "COLUMNS": "80"},
        check=True,
    )
    assert done.stdout.splitlines() == ["step " + "x" * 300 + " end"]
    assert done.stderr.splitlines() == ["warning " + "y" * 300 + " end"]
