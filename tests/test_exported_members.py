import subprocess
import sys

import pgwarden


def test_all_names_resolve():
    for name in pgwarden.__all__:
        assert getattr(pgwarden, name) is not None, name


def test_importing_pgwarden_does_not_import_the_parser():
    code = "import sys, pgwarden; print('pglast' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
