import subprocess
import sys

import pgwarden.guard


def test_guard_never_imports_the_parser():
    code = (
        "import sys, pgwarden.guard, pgwarden.guard.metrics\n"
        "bad = sorted(m for m in sys.modules if m == 'pglast' or m.startswith('pglast.')"
        " or m.startswith('pgwarden.analysis') or m == 'pgwarden.plan')\n"
        "print(','.join(bad))\n"
        "assert 'pglast' not in sys.modules, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_exports_are_importable():
    for name in pgwarden.guard.__all__:
        assert hasattr(pgwarden.guard, name), name


def test_errors_derive_from_the_root():
    from pgwarden.errors import PgwardenError

    for cls in (
        pgwarden.guard.GuardError,
        pgwarden.guard.Shed,
        pgwarden.guard.CircuitOpen,
        pgwarden.guard.LimitReached,
        pgwarden.guard.DatabaseUnavailable,
        pgwarden.guard.GuardConfigError,
    ):
        assert issubclass(cls, PgwardenError)
