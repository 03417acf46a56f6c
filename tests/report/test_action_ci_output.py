"""action.yml, the reusable GitHub Action: parsed, and its shell steps run against a project.

The `uses:` steps (setup-python, upload-sarif) are GitHub's own; every `run:`
step runs here as the runner would run it: bash, the step's env with the
inputs filled in, $GITHUB_ACTION_PATH at this repository and $GITHUB_OUTPUT a
file. pip installs pgwarden from the action's path into a fresh virtualenv
(the build backend comes from the package index; without one the test skips).
"""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
_EXPR = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def _action() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
    return doc


def _fill(text: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        expr = m.group(1)
        if expr.startswith("inputs."):
            return inputs[expr.removeprefix("inputs.")]
        if expr.startswith("steps.lint.outputs."):
            return outputs.get(expr.removeprefix("steps.lint.outputs."), "")
        raise AssertionError(f"unexpected expression in a run step's env: {expr}")

    return _EXPR.sub(value, text)


def _step(name: str) -> dict[str, Any]:
    return next(s for s in _action()["runs"]["steps"] if s.get("name") == name)


def _run_step(
    name: str, cwd: Path, venv: Path, inputs: dict[str, str], outputs: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    step = _step(name)
    assert step["shell"] == "bash"
    assert "${{" not in step["run"], "inputs reach the script through env only"
    out_file = cwd / ".github_output"
    out_file.write_text("")
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(cwd),
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_OUTPUT": str(out_file),
        **{k: _fill(str(v), inputs, outputs) for k, v in (step.get("env") or {}).items()},
    }
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    for line in out_file.read_text().splitlines():
        key, _, val = line.partition("=")
        outputs[key] = val
    return proc


def test_action_is_a_composite_that_installs_lints_and_uploads_sarif() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/setup-python@") for u in uses)
    upload = next(
        s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")
    )
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    assert "always()" in upload["if"]  # findings are uploaded although the lint exits 1
    names = [s.get("name") for s in steps]
    assert names.index("Install pgwarden") < names.index("Lint") < names.index("Upload SARIF")
    assert names[-1] == "Fail on findings"  # after the upload


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv where the install step puts pgwarden (dependencies from this
    test environment, so only the build backend is fetched)."""
    path = tmp_path_factory.mktemp("action") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    lib = next((path / "lib").glob("python3*")) / "site-packages"
    (lib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    inputs = {k: str(v.get("default", "")) for k, v in _action()["inputs"].items()}
    proc = _run_step("Install pgwarden", path.parent, path, inputs, {})
    if proc.returncode != 0 and re.search(r"hatchling|index|connect|resolve", proc.stderr, re.I):
        pytest.skip(f"pip could not fetch the build backend: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr
    assert (path / "bin" / "pgwarden").exists()
    return path


def _project(tmp_path: Path, sql: str) -> Path:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_index.sql").write_text(sql)
    return tmp_path


def _inputs(**given: str) -> dict[str, str]:
    inputs = {k: str(v.get("default", "")) for k, v in _action()["inputs"].items()}
    return {**inputs, **given}


def test_lint_step_writes_sarif_and_annotations_then_fails_after_upload(
    venv: Path, tmp_path: Path
) -> None:
    project = _project(tmp_path, "CREATE INDEX invoices_created_at_idx ON invoices (created_at);\n")
    outputs: dict[str, str] = {}
    lint = _run_step("Lint", project, venv, _inputs(), outputs)
    assert lint.returncode == 0, lint.stderr  # the upload still runs
    assert outputs["exit-code"] == "1"
    sarif = json.loads((project / "pgwarden.sarif").read_text())
    results = sarif["runs"][0]["results"]
    assert "PW101" in {r["ruleId"] for r in results}
    loc = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert loc == {"uri": "migrations/0001_index.sql", "uriBaseId": "%SRCROOT%"}
    assert "::error file=migrations/0001_index.sql,line=1" in lint.stdout
    fail = _run_step("Fail on findings", project, venv, _inputs(), outputs)
    assert fail.returncode == 1


def test_clean_project_passes_and_args_reach_pgwarden(venv: Path, tmp_path: Path) -> None:
    project = _project(
        tmp_path, "CREATE INDEX CONCURRENTLY invoices_created_at_idx ON invoices (created_at);\n"
    )
    outputs: dict[str, str] = {}
    args = "--no-file-transaction --fail-on error"
    lint = _run_step(
        "Lint", project, venv, _inputs(args=args, **{"sarif-file": "out.sarif"}), outputs
    )
    assert lint.returncode == 0, lint.stderr
    assert outputs["exit-code"] == "0"
    assert json.loads((project / "out.sarif").read_text())["runs"][0]["results"] == []
    assert _run_step("Fail on findings", project, venv, _inputs(), outputs).returncode == 0


def test_usage_error_fails_the_lint_step_with_the_message(venv: Path, tmp_path: Path) -> None:
    project = _project(tmp_path, "SELECT 1;\n")
    outputs: dict[str, str] = {}
    lint = _run_step("Lint", project, venv, _inputs(paths="nowhere.sql"), outputs)
    assert lint.returncode == 2
    assert "nowhere.sql" in lint.stderr
    assert "exit-code" not in outputs  # so neither the upload nor the last step runs
    assert not (project / "pgwarden.sarif").exists()


def test_inputs_are_not_spliced_into_scripts() -> None:
    for step in _action()["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step["name"]
    assert os.path.basename(_step("Install pgwarden")["run"].split()[-1]) == '"$GITHUB_ACTION_PATH"'
