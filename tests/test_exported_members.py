"""The front door: every exported name resolves, and the three views of it agree."""

import ast
import subprocess
import sys
from pathlib import Path

import pgwarden


def test_all_names_resolve():
    for name in pgwarden.__all__:
        assert getattr(pgwarden, name) is not None, name


def test_exports_match_the_type_checking_block():
    """What mypy sees (the TYPE_CHECKING block) names exactly the exported table."""
    tree = ast.parse(Path(pgwarden.__file__).read_text())
    seen: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    seen.update(a.asname or a.name for a in stmt.names)
                elif isinstance(stmt, ast.Assign):
                    seen.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
                elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    seen.add(stmt.target.id)
    public = {n for n in seen if not n.startswith("_")}
    assert set(pgwarden._API) == public
    assert set(pgwarden.__all__) == public | {"PgwardenError", "__version__"}


def test_exported_names_are_the_public_objects():
    for name, (module, attr) in pgwarden._API.items():
        mod = __import__(module, fromlist=[attr])
        assert getattr(pgwarden, name) is getattr(mod, attr), name
        assert not attr.startswith("_"), name


def test_no_export_is_shadowed_by_a_subpackage():
    """`import pgwarden.lint` sets the attribute `pgwarden.lint` to the package."""
    import pkgutil

    subpackages = {m.name for m in pkgutil.iter_modules(pgwarden.__path__)}
    assert not subpackages & set(pgwarden.__all__)


def test_importing_pgwarden_does_not_import_the_parser():
    code = "import sys, pgwarden; print('pglast' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
